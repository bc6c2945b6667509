"""A server without the extension's files: the proxy creates the extension's objects itself.

Uses Debian's PostgreSQL 15 binaries (a different major version than the embedded 18, and an
installation the emulator did not install the extension into).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from emulator import extension_build
from tests.support.emulators import Emulator, ExternalCluster, start_emulator, stop_emulator

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


def test_alter_extension_update_goes_from_the_recorded_version(bare_upstream: Emulator) -> None:
    newest = extension_build.DEFAULT_VERSION
    array_form = "SELECT to_regprocedure('ai.if(text[],integer,varchar)') IS NOT NULL"
    preview = "SELECT to_regprocedure('ai.summarize(text,varchar)') IS NOT NULL"
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedObject, match="does not exist"):
            conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
        conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.3'")
        assert conn.execute("SELECT google_ml._stand_in_version()").fetchone() == ("1.5.3",)
        said: list[str] = []
        conn.add_notice_handler(lambda diag: said.append(str(diag.message_primary)))
        conn.execute("CALL google_ml.upgrade_to_preview_version()")
        assert said == ["google_ml_integration (the emulator's stand-in) is at version 1.5.3"]
        cur = conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '1.5.4'")
        assert cur.statusmessage == "ALTER EXTENSION"
        assert conn.execute(array_form).fetchone() == (True,)
        assert conn.execute(preview).fetchone() == (False,)
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match='no update path from version "1.5.4" to version "1.5.3"'):
            conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '1.5.3'")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="no update path"):
            conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '9.9$x$'")
        conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
        assert conn.execute(preview).fetchone() == (True,)
        assert conn.execute("SELECT google_ml._stand_in_version()").fetchone() == (newest,)
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))
        conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
        assert notices == [(f'version "{newest}" of extension "google_ml_integration" '
                           "is already installed")]
        # What the update made is what a fresh install of the newest version makes.
        updated = _functions(conn)
        conn.execute("DROP EXTENSION google_ml_integration")
        conn.execute("CREATE EXTENSION google_ml_integration")
        assert _functions(conn) == updated
        conn.execute("DROP EXTENSION google_ml_integration")


def test_update_without_a_recorded_version_says_what_to_do(bare_upstream: Emulator) -> None:
    # A stand-in made before the version was recorded (here: its record dropped).
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.3'")
        conn.execute("DROP FUNCTION google_ml._stand_in_version()")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
            conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
        assert "cannot tell which version" in str(caught.value)
        assert "DROP EXTENSION google_ml_integration" in str(caught.value.diag.message_hint)
        conn.execute("DROP EXTENSION google_ml_integration")


def _functions(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, CASE WHEN p.prokind = 'a' THEN 'aggregate' "
        "ELSE pg_get_functiondef(p.oid) END FROM pg_proc p "
        "WHERE p.pronamespace IN ('google_ml'::regnamespace, 'ai'::regnamespace) ORDER BY 1")
    return [(str(a), str(b)) for a, b in rows.fetchall()]


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




def test_the_stand_in_alloydb_scann_needs_pgvector(bare_upstream: Emulator) -> None:
    # Debian's PostgreSQL 15 here has no pgvector: the stand-in says what PostgreSQL would.
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match='"vector"'):
            conn.execute("CREATE EXTENSION alloydb_scann")
        assert conn.execute("SELECT count(*) FROM pg_am WHERE amname = 'scann'").fetchone() == (0,)



def test_the_stand_in_parameterized_views_creates_and_runs_views(bare_upstream: Emulator) -> None:
    # Another major version (15): the parameter's type is still PostgreSQL's own inference.
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        cur = conn.execute("CREATE EXTENSION IF NOT EXISTS parameterized_views CASCADE")
        assert cur.statusmessage == "CREATE EXTENSION"
        try:
            conn.execute("CREATE TABLE pv_items (id int, owner_id int)")
            conn.execute("INSERT INTO pv_items VALUES (1, 7), (2, 8)")
            cur = conn.execute("CREATE VIEW pv_mine WITH (security_barrier) AS "
                               "SELECT id FROM pv_items WHERE owner_id = $@app_user_id")
            assert cur.statusmessage == "CREATE VIEW"
            rows = conn.execute(
                "SELECT * FROM parameterized_views.execute_parameterized_query("
                "'SELECT * FROM pv_mine', ARRAY['app_user_id'], ARRAY['8'])").fetchall()
            assert rows == [({"id": 2},)]
        finally:
            conn.execute("DROP TABLE IF EXISTS pv_items CASCADE")
            conn.execute("DROP EXTENSION IF EXISTS parameterized_views")
        assert conn.execute("SELECT to_regnamespace('parameterized_views')").fetchone() == (None,)


def test_the_stand_in_vector_assist_needs_pgvector(bare_upstream: Emulator) -> None:
    # vector_assist requires vector and google_ml_integration; without pgvector the stand-in
    # fails as CASCADE would, naming vector, and leaves nothing behind.
    with psycopg.connect(bare_upstream.dsn, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").fetchone() != (0,):
            pytest.skip("this PostgreSQL 15 has pgvector")
        with pytest.raises(psycopg.Error, match='"vector"'):
            conn.execute("CREATE EXTENSION vector_assist CASCADE")
        assert conn.execute("SELECT to_regnamespace('vector_assist'), to_regnamespace('google_ml')"
                            ).fetchone() == (None, None)
