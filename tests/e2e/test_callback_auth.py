"""The callback endpoint (docs/internals.md) lets in only the database it serves, and only for
sessions that came through the emulator."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from tests.support.emulators import Emulator


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
        # the blanket grant does not reach the machinery (row level security hides the row too)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM google_ml._engine_endpoint")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT google_ml._engine_connect('x')")


def test_a_forged_request_cannot_send_google_credentials_elsewhere(emulator: Emulator) -> None:
    """A superuser can read the callback password and forge an engine request for a session
    of their own; the engine still sends Google credentials only to Google's hosts (the
    session's emulator answers google models with fakes, so a custom model asks for them)."""
    from tests.support.http_servers import Reply, ScriptedServer

    info = endpoint(emulator)
    with (
        ScriptedServer(lambda seen: Reply(200, {})) as elsewhere,
        psycopg.connect(emulator.dsn, autocommit=True) as session,
    ):
        pid = session.execute("SELECT pg_backend_pid()").fetchone()
        assert pid is not None
        request = {"op": "invoke", "model_id": "forged", "provider": "custom",
                   "model_type": "llm", "url": f"{elsewhere.url}/v1/x:generateContent",
                   "headers": {}, "auth": {"type": "alloydb_service_agent_iam"},
                   "body": {"contents": []}}
        with (
            psycopg.connect(host=info["host"], port=info["port"], user=info["user"],
                            dbname="callback", password=info["password"], sslmode="disable",
                            application_name=str(pid[0]), autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege,
                          match="Google credentials are not sent"),
        ):
            conn.execute(json.dumps(request).encode())
        assert elsewhere.requests == []
