"""Databases of the end-to-end tests and SQL they share: a fresh database with the extensions,
psql on a script, waiting for a backend's statement, the seed page's custom-model transforms.

They run against the real ``alloydb-ai-emulator serve`` (tests/support/emulators.py).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.support.emulators import Emulator

# The seed page's custom model (Cymbal): its input and output transforms, verbatim.
CYMBAL_TRANSFORMS = """
-- Input Transform Function corresponding to the custom model endpoint
CREATE OR REPLACE FUNCTION cymbal_text_input_transform(model_id VARCHAR(100), input_text TEXT)
RETURNS JSON
LANGUAGE plpgsql
AS $$
DECLARE
  transformed_input JSON;
  model_qualified_name TEXT;
BEGIN
  SELECT json_build_object('prompt', json_build_array(input_text))::JSON INTO transformed_input;
  RETURN transformed_input;
END;
$$;
-- Output Transform Function corresponding to the custom model endpoint
CREATE OR REPLACE FUNCTION cymbal_text_output_transform(model_id VARCHAR(100), response_json JSON)
RETURNS REAL[]
LANGUAGE plpgsql
AS $$
DECLARE
  transformed_output REAL[];
BEGIN
  SELECT ARRAY(SELECT json_array_elements_text(response_json->0)) INTO transformed_output;
  RETURN transformed_output;
END;
$$;
"""


def empty_database(emulator: Emulator, name: str) -> str:
    """(Re)create database ``name`` through the proxy, with no extension; the DSN of a
    superuser connection to it."""
    with emulator.connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return emulator.dsn_for(dbname=name)


def fresh_database(emulator: Emulator, name: str, *extensions: str) -> str:
    """(Re)create database ``name`` through the proxy with ``google_ml_integration``, pgvector
    and ``extensions``; the DSN of a superuser connection to it."""
    dsn = empty_database(emulator, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for ext in extensions:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    return dsn


def psql(
    dsn: str, sql: str, *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` with psql (no psqlrc, stop at the first error, unaligned tuples only)."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
        input=sql, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed ({result.returncode}):\n{result.stderr}")
    return result


def wait_until_active(observer: psycopg.Connection[Any], pid: int, text: str) -> None:
    """Block until backend ``pid`` is running a statement containing ``text`` (a cancel sent
    before it runs would find nothing to cancel)."""
    for _ in range(2000):
        row = observer.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active' "
            "AND query LIKE %s", (pid, f"%{text}%")).fetchone()
        if row:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never ran {text!r}")


def cancel_while_sleeping(conn: psycopg.Connection[Any], observer: psycopg.Connection[Any],
                          cancel: Callable[[], None], seconds: int = 30) -> None:
    """Run ``SELECT pg_sleep(seconds)`` on ``conn``; once ``observer`` sees it running, call
    ``cancel`` from another thread. The statement must end with QueryCanceled. Give concurrent
    callers different ``seconds``: the statement is found by its text."""
    pid = conn.info.backend_pid

    def cancel_when_running() -> None:
        wait_until_active(observer, pid, f"pg_sleep({seconds})")
        cancel()

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(f"SELECT pg_sleep({seconds})")
    finally:
        canceller.join()
