"""The callback endpoint (docs/internals.md) lets in only the database it serves, and only for
sessions that came through the emulator."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from tests.conftest import Emulator


def endpoint(emulator: Emulator) -> dict[str, str]:
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        row = conn.execute("SELECT conninfo FROM google_ml._engine_endpoint").fetchone()
    assert row is not None
    return dict(re.findall(r"(\w+)=(\S+)", str(row[0])))


def test_a_stranger_without_the_password_is_refused(emulator: Emulator) -> None:
    info = endpoint(emulator)
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(host=info["host"], port=info["port"], user=info["user"],
                        dbname="callback", password="guess", sslmode="disable")


def test_another_user_name_is_refused(emulator: Emulator) -> None:
    info = endpoint(emulator)
    with pytest.raises(psycopg.OperationalError, match="not a callback user"):
        psycopg.connect(host=info["host"], port=info["port"], user="postgres",
                        dbname="callback", password=info["password"], sslmode="disable")


def test_a_call_for_a_session_the_emulator_does_not_front_is_refused(emulator: Emulator) -> None:
    info = endpoint(emulator)
    request = {"op": "invoke", "model_id": "text-embedding-005", "provider": "google",
               "model_type": "text_embedding", "url": "publishers/google/models/x:predict",
               "headers": {}, "auth": None, "body": {"instances": [{"content": "x"}]}}
    with (
        psycopg.connect(host=info["host"], port=info["port"], user=info["user"],
                        dbname="callback", password=info["password"], sslmode="disable",
                        application_name="1", autocommit=True) as conn,
        pytest.raises(psycopg.errors.SqlserverRejectedEstablishmentOfSqlconnection,
                      match="through the emulator"),
    ):
        conn.execute(json.dumps(request).encode())


def test_the_password_is_not_readable_by_a_non_superuser(emulator: Emulator) -> None:
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'curious'").fetchone():
            conn.execute("CREATE ROLE curious LOGIN")
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml "
                     "TO curious")
    with psycopg.connect(emulator.dsn_for(user="curious"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM google_ml._engine_endpoint").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT google_ml._engine_connect('x')")
