"""A server without the extension's files: the proxy creates the extension's objects itself.

Uses Debian's PostgreSQL 15 binaries (a different major version than the embedded 18, and an
installation the emulator did not install the extension into).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Emulator, ExternalCluster, start_emulator, stop_emulator

PG15 = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="needs PostgreSQL 15 binaries")


@pytest.fixture(scope="module")
def bare_upstream() -> Iterator[Emulator]:
    share = Path("/usr/share/postgresql/15/extension/google_ml_integration.control")
    if share.exists():
        pytest.skip("the extension files are installed in PostgreSQL 15's share directory")
    cluster = ExternalCluster(PG15)
    emulator = start_emulator("--upstream", cluster.start())
    try:
        yield emulator
    finally:
        stop_emulator(emulator)
        cluster.stop()


def test_the_emulator_says_it_stands_in_for_the_extension(bare_upstream: Emulator) -> None:
    assert any("not installed on the upstream" in line for line in bare_upstream.output)


def test_create_extension_answers_as_postgresql_does(bare_upstream: Emulator) -> None:
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        cur = conn.execute("CREATE EXTENSION google_ml_integration")
        assert cur.statusmessage == "CREATE EXTENSION"
        cur = conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        assert cur.statusmessage == "CREATE EXTENSION"
        with pytest.raises(psycopg.errors.DuplicateObject):
            conn.execute("CREATE EXTENSION google_ml_integration")
        conn.execute("DROP EXTENSION google_ml_integration")


def test_the_stand_in_extension_calls_models(bare_upstream: Emulator) -> None:
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        row = conn.execute("SELECT array_length(embedding('text-embedding-005', 'hi'), 1)").fetchone()
        assert row == (768,)
        setting = conn.execute(
            "SELECT setting FROM pg_settings "
            "WHERE name = 'google_ml_integration.enable_model_support'").fetchone()
        assert setting == ("on",)
        conn.execute("DROP EXTENSION google_ml_integration")


def test_drop_extension_removes_everything_and_knows_if_exists(bare_upstream: Emulator) -> None:
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")
        cur = conn.execute("DROP EXTENSION google_ml_integration")
        assert cur.statusmessage == "DROP EXTENSION"
        assert conn.execute("SELECT to_regnamespace('google_ml')").fetchone() == (None,)
        assert conn.execute("SELECT to_regproc('public.embedding')").fetchone() == (None,)
        conn.execute("DROP EXTENSION IF EXISTS google_ml_integration")
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("DROP EXTENSION google_ml_integration")


def test_the_stand_in_installs_the_version_asked_for(bare_upstream: Emulator) -> None:
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.3'")
        array_form = "SELECT to_regprocedure('ai.if(text[],integer,varchar)') IS NOT NULL"
        assert conn.execute(array_form).fetchone() == (False,)
        assert conn.execute("SELECT to_regprocedure('ai.if(text,varchar)') IS NOT NULL"
                            ).fetchone() == (True,)
        conn.execute("DROP EXTENSION google_ml_integration")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="nor update path"):
            conn.execute("CREATE EXTENSION google_ml_integration VERSION '9.9'")
        assert conn.execute("SELECT to_regnamespace('google_ml')").fetchone() == (None,)


def test_the_stand_in_creates_what_alloydb_ai_nl_requires_first(bare_upstream: Emulator) -> None:
    # alloydb_ai_nl requires google_ml_integration (stood in for), vector and pg_trgm. Debian's
    # PostgreSQL 15 has no pgvector: the statement fails as CASCADE would, naming vector, and
    # leaves nothing behind (google_ml_integration, created first, goes with it).
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        available = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        if available != (0,):
            conn.execute("CREATE EXTENSION alloydb_ai_nl CASCADE")
            assert conn.execute("SELECT to_regproc('alloydb_ai_nl.get_sql') IS NOT NULL, "
                                "to_regnamespace('google_ml') IS NOT NULL").fetchone() == (True, True)
            conn.execute("DROP EXTENSION alloydb_ai_nl")
            conn.execute("DROP EXTENSION google_ml_integration")
            return
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("CREATE EXTENSION alloydb_ai_nl CASCADE")
        assert "vector" in str(caught.value)
        assert conn.execute("SELECT to_regnamespace('google_ml'), to_regnamespace('alloydb_ai_nl')"
                            ).fetchone() == (None, None)
