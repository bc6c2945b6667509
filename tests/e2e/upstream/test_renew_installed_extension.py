"""``install-extension --renew URL``: on a server the user runs (Debian's PostgreSQL 15), a
database whose google_ml_integration an older build made gets this build's functions
(emulator/extension_renewal.py), as the embedded server's do at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from emulator import extension_build
from tests.support.emulators import ExternalCluster, extension_files_in
from tests.support.paths import REPO

PG15 = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="needs PostgreSQL 15 binaries")


def _install(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emulator.cli", "install-extension",
                           "--pg-config", str(PG15 / "pg_config"), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def _statement_key_source(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SELECT prosrc FROM pg_proc "
                       "WHERE oid = 'google_ml._statement_key()'::regprocedure").fetchone()
    assert row is not None
    return str(row[0])


def test_install_extension_renew_renews_what_an_older_build_made() -> None:
    sharedir = subprocess.run([str(PG15 / "pg_config"), "--sharedir"], capture_output=True,
                              text=True, check=True).stdout.strip()
    extension_dir = Path(sharedir) / "extension"
    before = extension_files_in(extension_dir)
    cluster = ExternalCluster(PG15)
    try:
        dsn = cluster.start()
        assert _install().returncode == 0
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION google_ml_integration")
            this_builds = _statement_key_source(conn)
            # What an older build left: another body and its own fingerprint.
            conn.execute("CREATE OR REPLACE FUNCTION google_ml._statement_key() RETURNS text "
                         "LANGUAGE sql AS $$ SELECT 'older build'::text $$")
            schema = extension_build.version_parts(
                extension_build.DEFAULT_VERSION).fingerprint().split("schema=")[1]
            conn.execute(f"CREATE OR REPLACE FUNCTION {extension_build.FINGERPRINT_FUNCTION}() "
                         f"RETURNS text LANGUAGE sql AS $$ SELECT 'code=0 schema={schema}' $$")
        renewed = _install("--renew", dsn)
        assert renewed.returncode == 0, renewed.stderr
        assert ("database 'postgres': google_ml_integration "
                f"{extension_build.DEFAULT_VERSION} was made by another build") in renewed.stdout
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert _statement_key_source(conn) == this_builds
        again = _install("--renew", dsn)
        assert "no database holds an extension that another build made" in again.stdout
        unreachable = _install("--renew", "postgresql://postgres@127.0.0.1:1/postgres")
        assert unreachable.returncode != 0 and "cannot renew" in unreachable.stderr
        assert "Traceback" not in unreachable.stderr
    finally:
        cluster.stop()
        for path in extension_files_in(extension_dir) - before:
            path.unlink()
