"""The extension's flags behave as AlloyDB's: ALTER SYSTEM and reload, SET, SHOW,
current_setting(), ALTER DATABASE/ROLE ... SET, and pg_settings shows them."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.emulators import Emulator

FLAG = "google_ml_integration.enable_model_support"


@pytest.fixture(scope="module")
def flags_db(emulator: Emulator) -> Iterator[str]:
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS flags_test WITH (FORCE)")
        conn.execute("CREATE DATABASE flags_test")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'flag_user'").fetchone():
            conn.execute("CREATE ROLE flag_user LOGIN")
    dsn = emulator.dsn_for(dbname="flags_test")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")
    yield dsn
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS flags_test WITH (FORCE)")
        conn.execute(f"ALTER SYSTEM RESET {FLAG}")
        conn.execute("SELECT pg_reload_conf()")


def setting_in_pg_settings(conn: psycopg.Connection[tuple[object, ...]], name: str) -> object:
    row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
    return None if row is None else row[0]


def embedding_works(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether model endpoint management answers (google_ml.embedding needs the flag; the
    public embedding() answers without it, as AlloyDB's older embeddings page shows)."""
    try:
        conn.execute("SELECT google_ml.embedding('text-embedding-005', 'flag check')")
        return True
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return False


def test_defaults_are_visible_in_pg_settings(flags_db: str) -> None:
    with psycopg.connect(flags_db, autocommit=True) as conn:
        assert setting_in_pg_settings(conn, FLAG) == "on"
        assert setting_in_pg_settings(conn, "google_ml_integration.enable_ai_query_engine") == "off"
        assert setting_in_pg_settings(conn, "google_ml_integration.allow_http_endpoints") == "off"


def test_set_show_and_current_setting_agree(flags_db: str) -> None:
    with psycopg.connect(flags_db, autocommit=True) as conn:
        conn.execute(f"SET {FLAG} = off")
        assert conn.execute(f"SHOW {FLAG}").fetchone() == ("off",)
        assert conn.execute("SELECT current_setting(%s)", (FLAG,)).fetchone() == ("off",)
        assert setting_in_pg_settings(conn, FLAG) == "off"
        assert not embedding_works(conn)
        conn.execute(f"RESET {FLAG}")
        assert embedding_works(conn)


def test_alter_system_then_reload_reaches_new_sessions(flags_db: str) -> None:
    with psycopg.connect(flags_db, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET {FLAG} = off")
        conn.execute("SELECT pg_reload_conf()")
    try:
        with psycopg.connect(flags_db, autocommit=True) as conn:
            assert setting_in_pg_settings(conn, FLAG) == "off"
            assert not embedding_works(conn)
    finally:
        with psycopg.connect(flags_db, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET {FLAG} = on")
            conn.execute("SELECT pg_reload_conf()")
    with psycopg.connect(flags_db, autocommit=True) as conn:
        assert setting_in_pg_settings(conn, FLAG) == "on"
        assert embedding_works(conn)


def test_alter_database_set_applies_to_that_database(emulator: Emulator, flags_db: str) -> None:
    with psycopg.connect(flags_db, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE flags_test SET {FLAG} = off")
    try:
        with psycopg.connect(flags_db, autocommit=True) as conn:
            assert conn.execute(f"SHOW {FLAG}").fetchone() == ("off",)
            assert not embedding_works(conn)
    finally:
        with psycopg.connect(flags_db, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE flags_test RESET {FLAG}")


def test_alter_role_set_applies_to_that_role(emulator: Emulator, flags_db: str) -> None:
    with psycopg.connect(flags_db, autocommit=True) as conn:
        conn.execute("ALTER ROLE flag_user SET google_ml_integration.enable_ai_query_engine = on")
    try:
        with psycopg.connect(emulator.dsn_for(user="flag_user", dbname="flags_test"),
                             autocommit=True) as conn:
            assert conn.execute(
                "SELECT current_setting('google_ml_integration.enable_ai_query_engine')"
            ).fetchone() == ("on",)
        with psycopg.connect(flags_db, autocommit=True) as conn:
            assert setting_in_pg_settings(
                conn, "google_ml_integration.enable_ai_query_engine") == "off"
    finally:
        with psycopg.connect(flags_db, autocommit=True) as conn:
            conn.execute("ALTER ROLE flag_user RESET google_ml_integration.enable_ai_query_engine")
