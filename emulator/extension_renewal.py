"""Renew the emulator's extensions in databases that another build of the emulator created.

Plan
----
The extensions' versions are AlloyDB's numbers, and the emulator's own SQL (google_ml_integration's
machinery, alloydb_ai_nl's composer, ...) is changed in place under them
(emulator/sql/src/README.md). So a database kept in a data directory holds the functions of the
build that created its extension, and a newer emulator would run beside older SQL than its own.

**The fingerprint.** Each install and update script ends with the build's fingerprint of the
version it leaves, a function ``<schema>._emulator_build()`` (``fingerprint_function``):

- ``code=<hash>``: the version's functions, procedures, aggregates, views, comments, REVOKEs
  and event triggers, what ``CREATE OR REPLACE`` (an event trigger: a drop and a create) can
  renew in place (owners, privileges and the user's objects
  that depend on them stay; REVOKEs only take away);
- ``schema=<hash>``: the rest (schemas, tables, types, rows, triggers, and GRANTs, which could
  undo a user's REVOKE).

``split_sql`` makes the two parts from a script's parse tree (libpg_query, through pglast). Each
renewable CREATE becomes CREATE OR REPLACE, proved by parsing it again: the same tree but for its
``replace`` flag.

**The renewal.** At start-up on a kept data directory, before the proxy takes a client,
``renew_databases`` visits every database of the embedded server, for each ``Renewable``
extension it has:

- the same fingerprint: nothing to do;
- another ``code`` with the same ``schema``, or no fingerprint (a build older than this
  mechanism): PostgreSQL runs ``renewal_script`` as an update to a transient version and back
  (``ALTER EXTENSION ... UPDATE TO``), in one transaction. Its functions, views and aggregates
  are replaced (a view only in its last definition: an older one would drop columns), new ones
  become members of the extension, and the extension's functions this build does not define
  (pg_proc rows the transaction did not write) are dropped, so that an old overload cannot make a
  call ambiguous. The two script files exist only for that transaction, so
  ``pg_available_extension_versions`` never lists the transient version;
- another ``schema``: left as it is, and said so.

A function whose result type (or a parameter's name, or its defaults) changed cannot be
replaced: PostgreSQL refuses with 42P13 and a HINT naming it (``Use DROP FUNCTION ... first``).
``renew`` then runs the renewal again with that DROP before the script's statements (RESTRICT:
a user's view on it stops the renewal), and so on for each such function. A renewal that fails
(a user's object on a function that is gone or must be dropped) rolls back whole; the database
stays as it was. Only the embedded server is renewed: the emulator writes its
extension directory. The command prints one line per database renewed or not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from pglast.parser import parse_sql_json
from psycopg import sql
from psycopg.conninfo import make_conninfo


class ExtensionRenewalError(Exception):
    """A script's statement cannot be made CREATE OR REPLACE faithfully."""


# -- the scripts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionParts:
    """A version's statements, in the order its install script runs them, split in two."""

    code: tuple[str, ...]  # each CREATE made CREATE OR REPLACE
    schema: tuple[str, ...]

    def fingerprint(self) -> str:
        def digest(statements: tuple[str, ...]) -> str:
            return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()[:16]

        return f"code={digest(self.code)} schema={digest(self.schema)}"


# A script's renewable statements (each with a view's name, or None) and the others.
Split = tuple[tuple[tuple[str, str | None], ...], tuple[str, ...]]

_CREATE = re.compile(r"\A((?:\s+|--[^\n]*\n|/\*.*?\*/)*CREATE)\s+(?=FUNCTION|PROCEDURE|VIEW|AGGREGATE)",
                     re.DOTALL | re.IGNORECASE)
# Positions in a parse tree: a statement's, a node's, an ARRAY[...] list's bounds
_LOCATION = re.compile(r',?"(?:\w*location|list_start|list_end)":-?\d+')
_REPLACEABLE = frozenset({"CreateFunctionStmt", "ViewStmt", "DefineStmt"})
_PSQL_GUARD = re.compile(r"^\\echo .*$", re.MULTILINE)


def _renewable(kind: str, node: dict[str, Any]) -> bool:
    # an event trigger is the extension's code too (its function's): renewed by drop and create
    if kind in ("CreateFunctionStmt", "ViewStmt", "CommentStmt", "CreateEventTrigStmt"):
        return True
    if kind == "DefineStmt":
        return bool(node.get("kind") == "OBJECT_AGGREGATE")
    return kind == "GrantStmt" and not node.get("is_grant")


def _tree(text: str) -> list[dict[str, Any]]:
    """The statements' parse trees (libpg_query's JSON), without their positions."""
    return list(json.loads(_LOCATION.sub("", parse_sql_json(text)))["stmts"])


def _or_replace(text: str, kind: str, node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The statement as CREATE OR REPLACE, and the tree it must parse to."""
    if kind not in _REPLACEABLE or node.get("replace"):
        return text, {kind: node}
    return _CREATE.sub(r"\1 OR REPLACE ", text, count=1), {kind: {**node, "replace": True}}


def _view_name(kind: str, node: dict[str, Any]) -> str | None:
    if kind != "ViewStmt":
        return None
    view = node["view"]
    return f"view {view.get('schemaname', '')}.{view['relname']}"


def joined(statements: Sequence[str]) -> str:
    return "".join(f"{statement}\n;\n\n" for statement in statements)


def _event_trigger_drops(statements: Sequence[str]) -> str:
    """DROP EVENT TRIGGER IF EXISTS for each event trigger ``statements`` create (there is no
    CREATE OR REPLACE EVENT TRIGGER)."""
    names = [tree["stmt"]["CreateEventTrigStmt"]["trigname"] for tree in _tree(joined(statements))
             if "CreateEventTrigStmt" in tree["stmt"]]
    return "".join(f"DROP EVENT TRIGGER IF EXISTS {sql.Identifier(name).as_string()};\n"
                   for name in names)


@lru_cache(maxsize=256)
def split_sql(script: str) -> Split:
    """A script's renewable statements (made CREATE OR REPLACE; with a view's name) and the
    others, each cut from its text at the parser's bounds (byte offsets); psql's guard line
    (``\\echo ... \\quit``) is no statement."""
    script = _PSQL_GUARD.sub("", script)
    data = script.encode()
    code: list[str] = []
    views: list[str | None] = []
    expected: list[dict[str, Any]] = []
    schema: list[str] = []
    parsed = parse_sql_json(script)
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
    if code and [t["stmt"] for t in _tree(joined(code))] != expected:
        raise ExtensionRenewalError(
            "CREATE OR REPLACE of its statements parses differently: it cannot be renewed in place")
    return tuple(zip(code, views, strict=True)), tuple(schema)


def merge(splits: Iterable[Split]) -> VersionParts:
    """The parts of scripts run one after the other (a version's blocks, a chain of updates)."""
    code: dict[str, str] = {}  # a view by its name (its last definition), else by its text
    schema: list[str] = []
    for split_code, split_schema in splits:
        for statement, view in split_code:
            # A view that a later script widens: an older definition would drop the later
            # columns, which CREATE OR REPLACE VIEW refuses. A function may run each definition
            # in turn: the last one stays.
            code.pop(view or statement, None)
            code[view or statement] = statement
        schema += split_schema
    return VersionParts(tuple(code.values()), tuple(schema))


def fingerprint_function(function: str, title: str, parts: VersionParts) -> str:
    return (f"-- The build's fingerprint of {title} (emulator/extension_renewal.py).\n"
            f"CREATE OR REPLACE FUNCTION {function}()\n"
            "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE\n"
            f"AS $$ SELECT '{parts.fingerprint()}'::text $$;\n")


def _drop_leftovers(extension: str) -> str:
    """Functions of the extension that the renewal did not write (pg_proc rows it did not
    touch): what an older build had and this one has not. A user's object that depends on one
    makes the renewal fail as a whole."""
    return f"""\
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
                              WHERE e.extname = '{extension}')
           AND p.xmin OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id()::xid
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', leftover);
    END LOOP;
END;
$renew$;
"""


def renewal_script(extension: str, version: str, function: str, parts: VersionParts,
                   drops: Sequence[str] = ()) -> str:
    """The update script that renews, in a database at `version`, what a build may change in
    place, and drops the extension's functions this build does not define. `drops`: routines
    to drop first (``FUNCTION name(types)``, as PostgreSQL's HINT names them), whose new
    definition CREATE OR REPLACE cannot put in their place."""
    return "\n".join([
        f"-- {extension} {version}: its functions, views and comments renewed (do not edit).",
        "",
        f'\\echo Use "ALTER EXTENSION {extension} UPDATE" to load this file. \\quit',
        "",
        "".join(f"DROP {routine};\n" for routine in drops),
        _event_trigger_drops(parts.code),
        joined(parts.code),
        fingerprint_function(function, f"{extension} {version}", parts),
        _drop_leftovers(extension),
    ])


# -- the databases --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Renewable:
    """An extension the emulator can renew: its fingerprint function, the versions this build
    offers, and each version's parts."""

    name: str
    function: str
    versions: tuple[str, ...]
    parts: Callable[[str], VersionParts]

    def expected(self, version: str) -> str:
        return self.parts(version).fingerprint()

    def script(self, version: str, drops: Sequence[str] = ()) -> str:
        return renewal_script(self.name, version, self.function, self.parts(version), drops)


@dataclass(frozen=True, slots=True)
class Found:
    """An extension in one database: its version and the fingerprint its build left (None: a
    build older than fingerprints)."""

    extension: Renewable
    dbname: str
    version: str
    fingerprint: str | None

    def current(self) -> bool:
        return (self.version in self.extension.versions
                and self.fingerprint == self.extension.expected(self.version))

    def why_not_renewable(self) -> str | None:
        if self.version not in self.extension.versions:
            return f"this build does not offer version {self.version}"
        if self.fingerprint is not None and (
                _part(self.fingerprint, "schema")
                != _part(self.extension.expected(self.version), "schema")):
            return ("its tables, types or grants differ from this build's, which cannot be "
                    "renewed in place")
        return None


def _part(fingerprint: str, name: str) -> str | None:
    for item in fingerprint.split():
        key, _, value = item.partition("=")
        if key == name:
            return value
    return None


Connection = psycopg.Connection[tuple[object, ...]]


def inspect(conn: Connection, extension: Renewable, dbname: str) -> Found | None:
    """`extension` in the database `conn` is connected to, or None."""
    row = conn.execute("SELECT e.extversion, n.nspname FROM pg_catalog.pg_extension AS e "
                       "JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace "
                       "WHERE e.extname = %s", (extension.name,)).fetchone()
    if row is None:
        return None
    function = extension.function
    if "." not in function:  # an extension without a schema of its own: in the one it is in
        function = f"{sql.Identifier(str(row[1])).as_string(conn)}.{function}"
    fingerprint = None
    known = conn.execute("SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL",
                         (f"{function}()",)).fetchone()
    if known is not None and known[0]:
        value = conn.execute(f"SELECT {function}()").fetchone()
        fingerprint = None if value is None else str(value[0])
    return Found(extension, dbname, str(row[0]), fingerprint)


@contextlib.contextmanager
def _transient_scripts(extension_dir: Path, found: Found, drops: Sequence[str]) -> Iterator[str]:
    """The update scripts to a transient version and back, for as long as the renewal runs."""
    name, version = found.extension.name, found.version
    transient = f"{version}-emulator-renewal-{os.getpid()}"
    there = extension_dir / f"{name}--{version}--{transient}.sql"
    back = extension_dir / f"{name}--{transient}--{version}.sql"
    try:
        there.write_text(found.extension.script(version, drops))
        back.write_text(f"-- {name} {transient} is {version} renewed: nothing to change.\n")
        for path in (there, back):
            path.chmod(0o644)
        yield transient
    finally:
        there.unlink(missing_ok=True)
        back.unlink(missing_ok=True)


# PostgreSQL's HINT when CREATE OR REPLACE cannot replace a routine (pg_proc.c): what to drop.
_DROP_FIRST = re.compile(r"\AUse DROP ((?:FUNCTION|PROCEDURE|AGGREGATE) .+) first\.\Z", re.DOTALL)
_MAX_DROPS = 64  # routines dropped and re-created in one renewal, at most


def renew(conn: Connection, found: Found, extension_dir: Path) -> str | None:
    """Renew the extension in the database `conn` is connected to; None when done, else why
    not (the database is then as it was). A routine whose new definition CREATE OR REPLACE
    refuses (42P13: another result type) is dropped first, in another attempt."""
    why_not = found.why_not_renewable()
    if why_not is not None:
        return why_not
    drops: list[str] = []
    while True:
        with _transient_scripts(extension_dir, found, drops) as transient:
            update = sql.SQL("ALTER EXTENSION {} UPDATE TO {}")
            name = sql.Identifier(found.extension.name)
            try:
                with conn.transaction():
                    conn.execute(update.format(name, sql.Literal(transient)))
                    conn.execute(update.format(name, sql.Literal(found.version)))
                return None
            except psycopg.errors.InvalidFunctionDefinition as exc:
                drop = _DROP_FIRST.match(exc.diag.message_hint or "")
                if drop is None or drop[1] in drops or len(drops) >= _MAX_DROPS:
                    return f"renewing failed, nothing was changed: {exc.diag.message_primary}"
                drops.append(drop[1])
            except psycopg.Error as exc:
                return f"renewing failed, nothing was changed: {exc.diag.message_primary or exc}"


def renew_databases(conninfo: str, extension_dir: Path,
                    extensions: Sequence[Renewable]) -> list[str]:
    """Renew `extensions` wherever another build made them (`conninfo`: a superuser's
    connection to any database of the server); one line per extension and database renewed,
    or left as it was and why."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        databases = [str(name) for (name,) in conn.execute(
            "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname")]
    lines: list[str] = []
    for dbname in databases:
        with psycopg.connect(make_conninfo(conninfo, dbname=dbname), autocommit=True) as conn:
            for extension in extensions:
                found = inspect(conn, extension, dbname)
                if found is None or found.current():
                    continue
                why_not = renew(conn, found, extension_dir)
                made = (f"database {dbname!r}: {extension.name} {found.version} was made by "
                        "another build of the emulator")
                if why_not is None:
                    lines.append(f"{made}; its functions were renewed to this build's")
                else:
                    lines.append(
                        f"{made} and is kept as it is: {why_not}. To use this build's: DROP "
                        f"EXTENSION {extension.name} CASCADE; CREATE EXTENSION {extension.name} "
                        f"VERSION '{found.version}' (CASCADE also drops the objects that use it)")
    return lines
