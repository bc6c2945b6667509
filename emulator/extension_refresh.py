"""Renew google_ml_integration in databases that another build of the emulator created.

Plan
----
The extension's versions are AlloyDB's numbers, and the emulator's own machinery (the callback
channel, the warm-up, the request checks) is changed in place under them
(emulator/sql/src/README.md). So a database kept in a data directory holds the functions of the
build that created its extension, and a newer emulator would run beside older SQL than its own.

Each build's scripts leave a fingerprint in the database, ``google_ml._emulator_build()``: a hash
of the version's functions, views and comments (``code``) and one of the rest (``schema``), see
emulator/extension_build.py. At start-up, before the proxy takes a client, ``renew_databases``
visits every database of the embedded server that has the extension:

- the same fingerprint: nothing to do;
- another ``code`` with the same ``schema``, or no fingerprint (a build older than this
  mechanism): the version is renewed in place. PostgreSQL runs the build's ``refresh_script``
  as an update to a transient version and back (``ALTER EXTENSION ... UPDATE TO``), in one
  transaction: functions, views and aggregates are replaced (their owners, privileges and the
  user's objects that depend on them stay), new ones become members of the extension, and the
  extension's functions this build does not define are dropped. The two script files exist only
  for that transaction, so ``pg_available_extension_versions`` never lists the transient version;
- another ``schema`` (tables, types, rows or grants changed): not renewed; a warning says how to
  re-create the extension.

A renewal that fails (a user's view on a function that is gone, a changed result type) rolls back
whole and is reported; the database stays as it was. Only the embedded server is renewed: the
emulator writes its extension directory. A server of the user's own (``--upstream``) is told
(``stale_databases``) and left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from emulator.extension_build import (
    FINGERPRINT_FUNCTION,
    NAME,
    VERSIONS,
    refresh_script,
    version_parts,
)


@dataclass(frozen=True, slots=True)
class Found:
    """google_ml_integration in one database: its version and the fingerprint its build left
    (None: a build older than fingerprints)."""

    dbname: str
    version: str
    fingerprint: str | None

    def current(self) -> bool:
        return self.version in VERSIONS and self.fingerprint == _expected(self.version)

    def renewable(self) -> bool:
        """Only the functions differ (or a build before fingerprints: try, in a transaction)."""
        if self.version not in VERSIONS:
            return False
        if self.fingerprint is None:
            return True
        return _part(self.fingerprint, "schema") == _part(_expected(self.version), "schema")


def _expected(version: str) -> str:
    return version_parts(version).fingerprint()


def _part(fingerprint: str, name: str) -> str | None:
    for item in fingerprint.split():
        key, _, value = item.partition("=")
        if key == name:
            return value
    return None


def _databases(conninfo: str) -> list[str]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname"
        ).fetchall()
    return [str(name) for (name,) in rows]


def inspect(conn: psycopg.Connection[tuple[object, ...]], dbname: str) -> Found | None:
    """The extension in the database `conn` is connected to, or None."""
    row = conn.execute(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s", (NAME,)
    ).fetchone()
    if row is None:
        return None
    has_fingerprint = conn.execute(
        "SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL", (f"{FINGERPRINT_FUNCTION}()",)
    ).fetchone()
    fingerprint = None
    if has_fingerprint is not None and has_fingerprint[0]:
        value = conn.execute(f"SELECT {FINGERPRINT_FUNCTION}()").fetchone()
        fingerprint = None if value is None else str(value[0])
    return Found(dbname, str(row[0]), fingerprint)


def stale_databases(conninfo: str) -> list[Found]:
    """The databases whose google_ml_integration another build made (`conninfo`: a superuser's
    connection to any database of the server)."""
    stale: list[Found] = []
    for dbname in _databases(conninfo):
        with psycopg.connect(make_conninfo(conninfo, dbname=dbname), autocommit=True) as conn:
            found = inspect(conn, dbname)
        if found is not None and not found.current():
            stale.append(found)
    return stale


@contextlib.contextmanager
def _transient_scripts(extension_dir: Path, version: str) -> Iterator[str]:
    """The update scripts to a transient version and back, for as long as the renewal runs."""
    transient = f"{version}-emulator-refresh-{os.getpid()}"
    there = extension_dir / f"{NAME}--{version}--{transient}.sql"
    back = extension_dir / f"{NAME}--{transient}--{version}.sql"
    try:
        there.write_text(refresh_script(version))
        back.write_text(f"-- {NAME} {transient} is {version} renewed: nothing to change.\n")
        for path in (there, back):
            path.chmod(0o644)
        yield transient
    finally:
        there.unlink(missing_ok=True)
        back.unlink(missing_ok=True)


def renew(conn: psycopg.Connection[tuple[object, ...]], found: Found,
          extension_dir: Path) -> str | None:
    """Renew the extension in the database `conn` is connected to; None when done, else why
    not (the database is then as it was)."""
    if found.version not in VERSIONS:
        return f"this build does not offer version {found.version}"
    if not found.renewable():
        return ("its tables, types or grants differ from this build's, which cannot be renewed "
                "in place")
    with _transient_scripts(extension_dir, found.version) as transient:
        update = sql.SQL("ALTER EXTENSION {} UPDATE TO {}")
        try:
            with conn.transaction():
                conn.execute(update.format(sql.Identifier(NAME), sql.Literal(transient)))
                conn.execute(update.format(sql.Identifier(NAME), sql.Literal(found.version)))
        except psycopg.Error as exc:
            return f"renewing failed, nothing was changed: {exc.diag.message_primary or exc}"
    return None


def renew_databases(conninfo: str, extension_dir: Path) -> list[str]:
    """Renew google_ml_integration wherever another build made it; returns one line per
    database that was renewed or could not be (the command prints them)."""
    lines: list[str] = []
    for found in stale_databases(conninfo):
        with psycopg.connect(make_conninfo(conninfo, dbname=found.dbname),
                             autocommit=True) as conn:
            why_not = renew(conn, found, extension_dir)
        if why_not is None:
            line = (f"database {found.dbname!r}: {NAME} {found.version} was made by another "
                    "build of the emulator; its functions were renewed to this build's")
        else:
            line = (f"database {found.dbname!r}: {NAME} {found.version} was made by another "
                    f"build of the emulator and is kept as it is: {why_not}. To use this "
                    f"build's: DROP EXTENSION {NAME} CASCADE; CREATE EXTENSION {NAME} "
                    f"VERSION '{found.version}' (CASCADE also drops the objects that use it)")
        lines.append(line)
    return lines
