"""The proxy's own work inside a session: registering the engine endpoint in a database before
the client's next statement runs (the client direction is held meanwhile), and the statement
rewrites as a client sees them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.support import wire

_names = itertools.count()


@pytest.fixture
def database(emulator: Any) -> Iterator[str]:
    """A fresh database, created and dropped over a direct connection (not through the proxy)."""
    name = f"proxy_ext_{next(_names)}"
    with psycopg.connect(emulator.direct_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield name
    with psycopg.connect(emulator.direct_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def direct(emulator: Any, dbname: str) -> psycopg.Connection[Any]:
    dsn = emulator.direct_dsn.rsplit("/", 1)[0] + "/" + dbname
    return psycopg.connect(dsn, autocommit=True)


def proxied(emulator: Any, dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(emulator.dsn_for(dbname=dbname), autocommit=True)


def endpoint_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM google_ml._engine_endpoint").fetchone()
    assert row is not None
    return int(row[0])


def test_create_extension_through_the_proxy_registers_the_endpoint_before_the_next_statement(
        emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration CASCADE")
        assert endpoint_rows(conn) == 1


def test_create_extension_in_a_transaction_registers_after_commit(
        emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        with conn.transaction():
            conn.execute("CREATE EXTENSION google_ml_integration CASCADE")
        assert endpoint_rows(conn) == 1


def test_first_session_in_a_database_with_the_extension_finds_the_endpoint_registered(
        emulator: Any, database: str) -> None:
    with direct(emulator, database) as admin:
        admin.execute("CREATE EXTENSION google_ml_integration CASCADE")
        assert endpoint_rows(admin) == 0
    with proxied(emulator, database) as conn:
        assert endpoint_rows(conn) == 1  # the very first statement of the session


def test_a_pipeline_sent_while_the_session_is_held_comes_out_in_order(
        emulator: Any, database: str) -> None:
    with direct(emulator, database) as admin:
        admin.execute("CREATE EXTENSION google_ml_integration CASCADE")
    with proxied(emulator, database) as conn:
        with conn.pipeline():
            cursors = [conn.execute("SELECT %s::int", (i,)) for i in range(100)]
        assert [c.fetchone() for c in cursors] == [(i,) for i in range(100)]


def test_pg_settings_read_shows_the_extension_flags_once_it_is_installed(
        emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration CASCADE")
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings "
            "WHERE name = 'google_ml_integration.enable_model_support'").fetchall()
        extended = conn.execute(
            "SELECT name FROM pg_settings WHERE name LIKE 'google_ml_integration.%%' "
            "AND %s", (True,)).fetchall()
    assert rows == [("google_ml_integration.enable_model_support", "on")]
    assert ("google_ml_integration.enable_model_support",) in extended


def test_vector_operators_reach_postgresql_unchanged_in_a_rewritten_statement(
        emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration CASCADE")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        row = conn.execute(
            "SELECT '[1,0]'::vector <=> '[0,1]', '[1,0]'::vector <-> '[0,1]', "
            "'[1,2]'::vector <#> '[3,4]', '[1,2]'::vector <+> '[3,5]', count(*) "
            "FROM pg_settings WHERE name LIKE 'google_ml_integration.%'").fetchone()
    assert row is not None
    assert row[:4] == (1.0, pytest.approx(2 ** 0.5), -11.0, 5.0)
    assert row[4] >= 1


def test_pg_settings_read_without_the_extension_still_runs(emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        rows = conn.execute("SELECT name FROM pg_settings "
                            "WHERE name LIKE 'google_ml_integration.%'").fetchall()
    assert rows == []


def test_create_extension_pipelined_behind_another_statement_registers_the_endpoint(
        emulator: Any, database: str) -> None:
    """The ReadyForQuery of the statement before must not stand in for the one after
    CREATE EXTENSION: registering then finds no extension yet (it commits half a second later,
    with the rest of its multi-statement query)."""
    sock = wire.connect(emulator.host, emulator.port)
    with sock:
        sock.sendall(wire.startup_packet(database=database))
        wire.read_until_ready(sock)
        sock.sendall(wire.query("SELECT 1") + wire.query(
            "CREATE EXTENSION google_ml_integration CASCADE; SELECT pg_sleep(0.5)"))
        wire.read_until_ready(sock)
        second = wire.read_until_ready(sock)
        assert [r.type for r in second if r.type == b"E"] == []
        rows = wire.simple_query(sock, "SELECT count(*) FROM google_ml._engine_endpoint")
    with proxied(emulator, database) as later:
        later_rows = endpoint_rows(later)
    assert (wire.data_values(rows), later_rows) == ([[b"1"]], 1)


def test_a_model_call_in_the_same_message_as_create_extension_works(
        emulator: Any, database: str) -> None:
    # One simple Query: the endpoint row cannot be written in between, the embedded server's
    # endpoint file answers instead.
    with proxied(emulator, database) as conn:
        cur = conn.execute(
            "CREATE EXTENSION google_ml_integration; "
            "SELECT array_length(embedding('text-embedding-005', 'same message'), 1)")
        assert cur.statusmessage == "CREATE EXTENSION"
        assert cur.nextset()
        assert cur.fetchone() == (768,)


def test_a_model_call_in_a_transaction_that_created_the_extension_works(
        emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn, conn.transaction():
        conn.execute("CREATE EXTENSION google_ml_integration")
        row = conn.execute(
            "SELECT array_length(embedding('text-embedding-005', 'same transaction'), 1)")
        assert row.fetchone() == (768,)


# -- command tags of prepared statements ---------------------------------------------------------
# The proxy answers `SHOW <AlloyDB flag>` with a SELECT of its own and renames the tag back. A
# prepared statement's tag comes with each of its Executes, and only with them.

SHOW_FLAG = "SHOW google_ml_integration.enable_model_support"


def test_a_prepared_show_keeps_its_tag_at_every_execution(emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        cur = conn.cursor()
        for _ in range(8):  # psycopg prepares a statement from its 5th execution on
            cur.execute(SHOW_FLAG)
            assert (cur.statusmessage, cur.fetchall()) == ("SHOW", [("on",)])
        cur.execute(SHOW_FLAG, prepare=True)
        cur.execute(SHOW_FLAG, prepare=True)
        assert cur.statusmessage == "SHOW"
        cur.execute("SELECT 42")
        assert cur.statusmessage == "SELECT 1"


def test_a_show_prepared_and_never_run_leaves_other_statements_tags_alone(
        emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        conn.pgconn.send_prepare(b"never_run", SHOW_FLAG.encode())
        while conn.pgconn.get_result() is not None:
            pass
        cur = conn.execute("SELECT 42", prepare=False)
        assert cur.statusmessage == "SELECT 1"
        cur = conn.execute("SELECT 42", prepare=True)
        assert cur.statusmessage == "SELECT 1"


def test_in_a_pipeline_only_the_shows_result_is_renamed(emulator: Any, database: str) -> None:
    with proxied(emulator, database) as conn:
        with conn.pipeline():
            first, show, last = conn.cursor(), conn.cursor(), conn.cursor()
            first.execute("SELECT 7")
            show.execute(SHOW_FLAG)
            last.execute("SELECT 8")
        assert [c.statusmessage for c in (first, show, last)] == ["SELECT 1", "SHOW", "SELECT 1"]


def test_asyncpg_runs_a_prepared_show_again_and_again(emulator: Any, database: str) -> None:
    async def run() -> list[str]:
        conn = await asyncpg.connect(emulator.dsn_for(dbname=database))
        try:
            statement = await conn.prepare(SHOW_FLAG)
            tags = []
            for _ in range(3):
                assert [tuple(r) for r in await statement.fetch()] == [("on",)]
                tags.append(statement.get_statusmsg())
            other = await conn.prepare("SELECT 42")
            await other.fetch()
            return [*tags, other.get_statusmsg()]
        finally:
            await conn.close()

    assert asyncio.run(run()) == ["SHOW", "SHOW", "SHOW", "SELECT 1"]


def test_a_bind_too_long_to_frame_does_not_leave_a_portal_renamed(
        emulator: Any, database: str) -> None:
    """The unnamed portal ran the prepared SHOW; a 17 MB Bind (over what the proxy frames) puts
    another statement in it unseen. That statement's tag stays PostgreSQL's."""
    with proxied(emulator, database) as conn:
        cur = conn.cursor()
        cur.execute(SHOW_FLAG, prepare=True)
        assert cur.statusmessage == "SHOW"
        cur.execute("SELECT length(%s)", ["x" * 17_000_000], prepare=False)
        assert (cur.statusmessage, cur.fetchall()) == ("SELECT 1", [(17_000_000,)])
        cur.execute("SELECT 42")
        assert cur.statusmessage == "SELECT 1"
