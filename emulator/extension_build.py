"""Build google_ml_integration's versioned scripts from its sources, laid out by concern.

Plan
----
The extension's SQL lives in ``emulator/sql/src/<concern>.sql`` (registry, calls, AI
functions, ...). Inside a source file, a line ``-- @version X.Y.Z`` starts a block that AlloyDB's
version X.Y.Z introduced (see emulator/sql/src/README.md). From these, ``extension_files()``
builds what PostgreSQL needs, for every version in ``VERSIONS``:

* ``google_ml_integration--V.sql``: every block of version <= V, concern by concern, in order;
* ``google_ml_integration--A--B.sql`` for consecutive offered versions A, B: the blocks with
  A < version <= B, concern by concern;
* ``google_ml_integration.control``, ``default_version`` = the newest offered version.

Each script ends with the build's fingerprint of the version it leaves the database at,
``google_ml._emulator_build()``: a hash of that version's functions, views and comments (what a
new build may change in place, see emulator/sql/src/README.md) and one of the rest (tables, types,
rows, grants). ``refresh_script(V)`` renews the first part in a database already at V, made by
another build: emulator/extension_refresh.py runs it at start-up.

The scripts are built when they are installed (emulator/extension_files.py), never committed,
so the sources are the only copy. Facts about the model providers (default request URLs, batch
limits) are written in the provider catalogue, ``emulator/providers.py``: a source says
``{{NAME}}`` where the build puts ``providers.sql_constants()[NAME]``.
``python -m emulator.extension_build DIR`` writes the scripts into DIR to read them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pglast.parser import parse_sql_json

from emulator.providers import sql_constants

NAME = "google_ml_integration"

# AlloyDB's version numbers whose content the emulator offers, oldest first (docs/extension.md
# says what each brings and why the list starts and stops where it does).
VERSIONS: tuple[str, ...] = ("1.2", "1.3", "1.4.2", "1.5.2", "1.5.3", "1.5.4", "1.5.6", "1.5.7",
                             "1.5.8", "1.5.9", "1.6.1", "1.6.4")
DEFAULT_VERSION = VERSIONS[-1]

# The concern files, in the order their blocks run. A block may use what blocks of earlier
# concerns (of the same or an older version) and earlier blocks of its own file create.
CONCERNS: tuple[str, ...] = (
    "schemas",
    "flags",
    "catalog",
    "secrets",
    "registry",
    "transforms",
    "engine_channel",
    "calls",
    "warmup",
    "embeddings",
    "multimodal",
    "ai_functions",
    "auto_embeddings",
    "forecasting",
    "hybrid_search",
)

_MARKER = re.compile(r"^-- @version (\S+)\s*$", re.MULTILINE)
_CONSTANT = re.compile(r"\{\{(\w+)\}\}")

_CONTROL = f"""\
# {NAME}: the AlloyDB AI extension, emulated on stock PostgreSQL.
# Built by emulator/extension_build.py from emulator/sql/src/ (do not edit).
# SQL only; model calls reach the emulator engine through dblink's C functions,
# which the extension declares itself (so no `requires = 'dblink'`).
comment = 'AlloyDB AI google_ml_integration, emulated (model registry, secrets, model calls)'
default_version = '{DEFAULT_VERSION}'
relocatable = false
superuser = true
"""


class ExtensionBuildError(Exception):
    """A source file breaks the layout's rules; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class Block:
    concern: str
    version: tuple[int, ...]
    sql: str


def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise ExtensionBuildError(f"not a version number: {version!r}") from None


def source_dir() -> Path:
    return Path(str(resources.files("emulator") / "sql" / "src"))


def fill_constants(concern: str, text: str) -> str:
    """The source with each ``{{NAME}}`` replaced by the provider catalogue's SQL for it."""
    constants = sql_constants()

    def constant(match: re.Match[str]) -> str:
        try:
            return constants[match.group(1)]
        except KeyError:
            raise ExtensionBuildError(
                f"{concern}.sql: {match.group(0)} is not a constant of emulator/providers.py "
                f"(known: {', '.join(sorted(constants))})") from None

    return _CONSTANT.sub(constant, text)


def parse_source(concern: str, text: str) -> list[Block]:
    """The blocks of one source file. Before the first marker only comments may appear; the
    versions of a file's blocks never go down."""
    parts = _MARKER.split(text)
    preamble = parts[0]
    if any(line.strip() and not line.lstrip().startswith("--") for line in preamble.splitlines()):
        raise ExtensionBuildError(
            f"{concern}.sql: SQL before the first '-- @version' line; put it in a block")
    blocks: list[Block] = []
    for version, body in zip(parts[1::2], parts[2::2], strict=True):
        key = version_key(version)
        if blocks and key < blocks[-1].version:
            raise ExtensionBuildError(
                f"{concern}.sql: block {version} after a block of a later version")
        blocks.append(Block(concern, key, body.strip("\n") + "\n"))
    return blocks


@cache
def all_blocks() -> tuple[Block, ...]:
    directory = source_dir()
    present = {p.stem for p in directory.glob("*.sql")}
    missing = [c for c in CONCERNS if c not in present]
    unlisted = sorted(present - set(CONCERNS))
    if missing or unlisted:
        raise ExtensionBuildError(
            f"emulator/sql/src and extension_build.CONCERNS disagree: missing files {missing}, "
            f"files not in CONCERNS {unlisted}")
    blocks: list[Block] = []
    for concern in CONCERNS:
        text = fill_constants(concern, (directory / f"{concern}.sql").read_text())
        blocks.extend(parse_source(concern, text))
    newest = version_key(DEFAULT_VERSION)
    for block in blocks:
        if block.version > newest:
            raise ExtensionBuildError(
                f"{block.concern}.sql: block {_dotted(block.version)} is newer than the newest "
                f"offered version {DEFAULT_VERSION}; add it to VERSIONS")
    return tuple(blocks)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _assemble(blocks: list[Block], title: str, guard: str, leaves_at: str) -> str:
    out = [
        f"-- {title}",
        "-- Built by emulator/extension_build.py from emulator/sql/src/ (do not edit this file).",
        "",
        f'\\echo Use "{guard}" to load this file. \\quit',
        "",
    ]
    for block in blocks:
        out.append(f"-- ---- {block.concern}.sql, AlloyDB {_dotted(block.version)} ----\n")
        out.append(block.sql)
    out.append(_fingerprint_function(leaves_at))
    return "\n".join(out)


def install_script(version: str) -> str:
    """``google_ml_integration--<version>.sql``: every block up to that version."""
    if version not in VERSIONS:
        raise ExtensionBuildError(f"{NAME} {version} is not offered; offered: {', '.join(VERSIONS)}")
    key = version_key(version)
    return _assemble([b for b in all_blocks() if b.version <= key],
                     f"{NAME} {version}", f"CREATE EXTENSION {NAME}", version)


def upgrade_script(old: str, new: str) -> str:
    """``google_ml_integration--<old>--<new>.sql``: the blocks after old, up to new."""
    low, high = version_key(old), version_key(new)
    return _assemble([b for b in all_blocks() if low < b.version <= high],
                     f"{NAME} {old} -> {new}", f"ALTER EXTENSION {NAME} UPDATE", new)


# -- the build's fingerprint, and renewing a version in place -----------------------------------
# A database keeps the functions of the build that created (or last updated) its extension: the
# emulator's own machinery is changed in place, under AlloyDB's version numbers, so a newer
# build's CREATE EXTENSION scripts never reach it. What can be renewed in place: functions,
# procedures and aggregates (CREATE OR REPLACE keeps their privileges, owner and dependants),
# views (CREATE OR REPLACE VIEW, whose columns may only grow), comments, and REVOKEs (they only
# take away). Everything else (tables, types, rows, triggers, GRANTs, which could undo a
# user's REVOKE) is the version's *schema*: a build that changes it cannot renew a database in
# place (emulator/extension_refresh.py says so instead).

FINGERPRINT_FUNCTION = "google_ml._emulator_build"


@dataclass(frozen=True, slots=True)
class VersionParts:
    """A version's statements, as its install script runs them, split in two."""

    code: tuple[str, ...]  # each CREATE made CREATE OR REPLACE
    schema: tuple[str, ...]

    def fingerprint(self) -> str:
        def digest(statements: tuple[str, ...]) -> str:
            return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()[:16]

        return f"code={digest(self.code)} schema={digest(self.schema)}"


_CREATE = re.compile(r"\A((?:\s+|--[^\n]*\n|/\*.*?\*/)*CREATE)\s+(?=FUNCTION|PROCEDURE|VIEW|AGGREGATE)",
                     re.DOTALL | re.IGNORECASE)


_LOCATION = re.compile(r',?"\w*location":-?\d+')
_REPLACEABLE = frozenset({"CreateFunctionStmt", "ViewStmt", "DefineStmt"})


def _renewable(kind: str, node: dict[str, Any]) -> bool:
    if kind in ("CreateFunctionStmt", "ViewStmt", "CommentStmt"):
        return True
    if kind == "DefineStmt":
        return bool(node.get("kind") == "OBJECT_AGGREGATE")
    return kind == "GrantStmt" and not node.get("is_grant")


def _tree(sql: str) -> list[dict[str, Any]]:
    """The statements' parse trees (libpg_query's JSON), without their positions."""
    return list(json.loads(_LOCATION.sub("", parse_sql_json(sql)))["stmts"])


def _or_replace(text: str, kind: str, node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The statement as CREATE OR REPLACE, and the tree it must parse to."""
    if kind not in _REPLACEABLE or node.get("replace"):
        return text, {kind: node}
    return _CREATE.sub(r"\1 OR REPLACE ", text, count=1), {kind: {**node, "replace": True}}


def _joined(statements: Sequence[str]) -> str:
    return "".join(f"{statement}\n;\n\n" for statement in statements)


def _view_name(kind: str, node: dict[str, Any]) -> str | None:
    if kind != "ViewStmt":
        return None
    view = node["view"]
    return f"view {view.get('schemaname', '')}.{view['relname']}"


@cache
def _split(block: Block) -> tuple[tuple[tuple[str, str | None], ...], tuple[str, ...]]:
    """A block's renewable statements (made CREATE OR REPLACE; with a view's name) and the
    others, each cut from its text at the parser's bounds (byte offsets). The renewed statements
    are proved by parsing them again: the same trees but for their `replace` flags."""
    data = block.sql.encode()
    code: list[str] = []
    views: list[str | None] = []
    expected: list[dict[str, Any]] = []
    schema: list[str] = []
    parsed = parse_sql_json(block.sql)
    trees = json.loads(_LOCATION.sub("", parsed))["stmts"]
    for raw, tree in zip(json.loads(parsed)["stmts"], trees, strict=True):
        start = raw.get("stmt_location", 0)
        end = start + raw["stmt_len"] if raw.get("stmt_len") else len(data)
        text = data[start:end].decode().strip()
        ((kind, node),) = tree["stmt"].items()
        if _renewable(kind, node):
            renewed, tree_of_renewed = _or_replace(text, kind, node)
            code.append(renewed)
            views.append(_view_name(kind, node))
            expected.append(tree_of_renewed)
        else:
            schema.append(text)
    if code and [t["stmt"] for t in _tree(_joined(code))] != expected:
        raise ExtensionBuildError(
            f"{block.concern}.sql: a block of {_dotted(block.version)} cannot be renewed in place "
            "(CREATE OR REPLACE of its statements parses differently)")
    return tuple(zip(code, views, strict=True)), tuple(schema)


@cache
def version_parts(version: str) -> VersionParts:
    key = version_key(version)
    code: dict[str, str] = {}  # a view by its name (its last definition), else by its text
    schema: list[str] = []
    for block in all_blocks():
        if block.version <= key:
            block_code, block_schema = _split(block)
            for statement, view in block_code:
                # A view that a later block widens: an older definition would drop the later
                # columns, which CREATE OR REPLACE VIEW refuses. Functions may run each definition
                # in turn: the last one stays.
                code.pop(view or statement, None)
                code[view or statement] = statement
            schema += block_schema
    return VersionParts(tuple(code.values()), tuple(schema))


def _fingerprint_function(version: str) -> str:
    return (f"-- The build's fingerprint of {NAME} {version} (emulator/extension_refresh.py).\n"
            f"CREATE OR REPLACE FUNCTION {FINGERPRINT_FUNCTION}()\n"
            "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE\n"
            f"AS $$ SELECT '{version_parts(version).fingerprint()}'::text $$;\n")


# Functions of the extension that the renewal did not write (pg_proc rows it did not touch)
# are what an older build had and this one has not: dropped, so that an old overload cannot make
# a call ambiguous. A user's object that depends on one makes the renewal fail as a whole.
_DROP_LEFTOVERS = f"""\
DO $renew$
DECLARE
    leftover regprocedure;
BEGIN
    FOR leftover IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_depend AS d
          JOIN pg_catalog.pg_proc AS p ON p.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension AS e
                              WHERE e.extname = '{NAME}')
           AND p.xmin OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id()::xid
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', leftover);
    END LOOP;
END;
$renew$;
"""


def refresh_script(version: str) -> str:
    """The update script that renews, in a database at `version`, what a build may change in
    place, and drops the extension's functions this build does not define."""
    if version not in VERSIONS:
        raise ExtensionBuildError(f"{NAME} {version} is not offered; offered: {', '.join(VERSIONS)}")
    return "\n".join([
        f"-- {NAME} {version}: its functions, views and comments renewed (do not edit this file).",
        "",
        f'\\echo Use "ALTER EXTENSION {NAME} UPDATE" to load this file. \\quit',
        "",
        _joined(version_parts(version).code),
        _fingerprint_function(version),
        _DROP_LEFTOVERS,
    ])


def extension_files() -> dict[str, str]:
    """File name -> content, as they go into PostgreSQL's extension directory."""
    files = {f"{NAME}.control": _CONTROL}
    for version in VERSIONS:
        files[f"{NAME}--{version}.sql"] = install_script(version)
    for old, new in itertools.pairwise(VERSIONS):
        files[f"{NAME}--{old}--{new}.sql"] = upgrade_script(old, new)
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m emulator.extension_build DIRECTORY", file=sys.stderr)
        return 2
    target = Path(argv[0])
    target.mkdir(parents=True, exist_ok=True)
    for name, content in extension_files().items():
        (target / name).write_text(content)
    print(f"wrote {len(VERSIONS)} install and {len(VERSIONS) - 1} upgrade scripts to {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
