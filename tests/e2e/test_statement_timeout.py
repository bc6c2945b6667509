"""statement_timeout stops a slow model call: dblink cannot be interrupted while it waits, so the
engine keeps the caller's timeout and abandons the provider request."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.emulators import Emulator, start_emulator, stop_emulator


@pytest.fixture(scope="module")
def slow_models() -> Iterator[Emulator]:
    # Ten minutes per model request: only the timeout can end a call.
    emulator = start_emulator("--fake-latency-ms", "600000")
    try:
        with psycopg.connect(emulator.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        yield emulator
    finally:
        stop_emulator(emulator)


def test_statement_timeout_ends_a_slow_model_call_in_time(slow_models: Emulator) -> None:
    with psycopg.connect(slow_models.dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '400ms'")
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT embedding('text-embedding-005', 'a slow call')")


def test_the_session_is_usable_after_a_timed_out_call(slow_models: Emulator) -> None:
    with psycopg.connect(slow_models.dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT embedding('text-embedding-005', 'first')")
        conn.execute("SET statement_timeout = 0")
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        conn.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):  # and the engine channel still works
            conn.execute("SELECT embedding('text-embedding-005', 'second')")
