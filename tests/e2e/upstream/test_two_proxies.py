"""Several emulators in front of one PostgreSQL (DESIGN.md, "Scale beyond one machine"): each
session's model calls come back to the proxy it came through."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.emulators import Emulator, start_emulator, stop_emulator


@pytest.fixture(scope="module")
def second_proxy(emulator: Emulator) -> Iterator[Emulator]:
    other = start_emulator("--upstream", emulator.direct_dsn)
    try:
        yield other
    finally:
        stop_emulator(other)


def test_both_proxies_serve_model_calls_in_one_database(
        emulator: Emulator, second_proxy: Emulator) -> None:
    with psycopg.connect(emulator.dsn, autocommit=True) as first, \
            psycopg.connect(second_proxy.dsn, autocommit=True) as second:
        first.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        second.execute("SELECT 1")  # a session of the second proxy registers it too
        for conn in (first, second, first, second):
            row = conn.execute("SELECT array_length(embedding('text-embedding-005', 'lb'), 1)")
            assert row.fetchone() == (768,)
        instances = {r[0] for r in first.execute("SELECT instance FROM google_ml._engine_endpoint")}
        assert len(instances) >= 2


def test_each_session_knows_its_own_proxy(emulator: Emulator, second_proxy: Emulator) -> None:
    setting = "SHOW google_ml_integration.emulator_instance"
    with psycopg.connect(emulator.dsn) as first, psycopg.connect(second_proxy.dsn) as second:
        a = first.execute(setting).fetchone()
        b = second.execute(setting).fetchone()
    assert a is not None and b is not None and a != b


def test_the_client_options_are_kept(emulator: Emulator) -> None:
    with psycopg.connect(emulator.dsn, options="-c work_mem=7MB") as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
