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
rows, grants). emulator/extension_renewal.py renews the first part at start-up, in a database
already at V that another build made.

The scripts are built when they are installed (emulator/extension_files.py), never committed,
so the sources are the only copy. Facts about the model providers (default request URLs, batch
limits) are written in the provider catalogue, ``emulator/providers.py``: a source says
``{{NAME}}`` where the build puts ``providers.sql_constants()[NAME]``.
``python -m emulator.extension_build DIR`` writes the scripts into DIR to read them.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from emulator.extension_renewal import (
    ExtensionRenewalError,
    Split,
    VersionParts,
    fingerprint_function,
    merge,
    split_sql,
)
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


# -- the build's fingerprint, and renewing a version in place (emulator/extension_renewal.py) ----

FINGERPRINT_FUNCTION = "google_ml._emulator_build"


def _block_parts(block: Block) -> Split:
    try:
        return split_sql(block.sql)
    except ExtensionRenewalError as exc:
        raise ExtensionBuildError(
            f"{block.concern}.sql, block {_dotted(block.version)}: {exc}") from None


@cache
def version_parts(version: str) -> VersionParts:
    """What a database at `version` holds, split into what can be renewed in place and not."""
    key = version_key(version)
    return merge(_block_parts(b) for b in all_blocks() if b.version <= key)


def _fingerprint_function(version: str) -> str:
    return fingerprint_function(FINGERPRINT_FUNCTION, f"{NAME} {version}",
                                version_parts(version))


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
