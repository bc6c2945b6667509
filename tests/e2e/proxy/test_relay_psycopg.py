"""psycopg 3 through the proxy: the simple and extended protocols, pipelines, COPY, big rows,
asynchronous server messages, cancel, and sessions that do not disturb each other."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, pq

from tests.support import wire
from tests.support.databases import cancel_while_sleeping, wait_until_active

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def other(emulator: Any) -> Iterator[psycopg.Connection[Any]]:
    """A second session through the proxy."""
    with emulator.connect() as connection:
        yield connection


# -- queries ---------------------------------------------------------------------------------


def test_simple_query_returns_its_rows(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute("SELECT 1, 'two', NULL").fetchall() == [(1, "two", None)]


def test_several_statements_in_one_simple_query_return_every_result(
        conn: psycopg.Connection[Any]) -> None:
    cur = conn.execute("SELECT 1; SELECT 'b', 2; SELECT generate_series(1, 3)")
    results = [cur.fetchall()]
    while cur.nextset():
        results.append(cur.fetchall())
    assert results == [[(1,)], [("b", 2)], [(1,), (2,), (3,)]]


def test_text_parameters_go_through_bind(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("SELECT %s::int + 1, %s::text || '!', %s::int IS NULL",
                       (41, "hé", None)).fetchone()
    assert row == (42, "hé!", True)


def test_binary_parameters_and_results(conn: psycopg.Connection[Any]) -> None:
    cur = conn.cursor(binary=True)
    cur.execute("SELECT %b::bytea, %b::float8, %b::int8[]", (b"\x00\xff\x00", 1.5, [1, 2, 3]))
    assert cur.fetchone() == (b"\x00\xff\x00", 1.5, [1, 2, 3])


def test_named_prepared_statement_is_reused(conn: psycopg.Connection[Any]) -> None:
    for i in range(5):
        assert conn.execute("SELECT %s::int * 2", (i,), prepare=True).fetchone() == (i * 2,)
    names = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert names is not None and names[0] >= 1


def test_server_side_cursor_fetches_in_batches(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(), conn.cursor(name="big") as cur:
        cur.itersize = 7
        cur.execute("SELECT generate_series(1, 100)")
        assert [r[0] for r in cur] == list(range(1, 101))


def test_an_error_leaves_the_session_usable(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.DivisionByZero):
        conn.execute("SELECT 1 / 0")
    assert conn.execute("SELECT 'fine'").fetchone() == ("fine",)


def test_parameter_status_changes_reach_the_client(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET application_name = 'through-the-proxy'")
    assert conn.info.parameter_status("application_name") == "through-the-proxy"


def test_a_non_utf8_client_encoding_round_trips_text(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET client_encoding TO 'LATIN1'")
    assert conn.info.encoding == "iso8859-1"
    assert conn.execute("SELECT %s::text || 'ü'", ("é",)).fetchone() == ("éü",)
    conn.execute("RESET client_encoding")


# -- transactions ----------------------------------------------------------------------------


def status(conn: psycopg.Connection[Any]) -> pq.TransactionStatus:
    """As libpq last heard it in a ReadyForQuery (a function, so mypy does not narrow it)."""
    return conn.info.transaction_status


def test_transaction_status_follows_begin_and_commit(conn: psycopg.Connection[Any]) -> None:
    assert status(conn) == pq.TransactionStatus.IDLE
    conn.execute("BEGIN")
    assert status(conn) == pq.TransactionStatus.INTRANS
    conn.execute("COMMIT")
    assert status(conn) == pq.TransactionStatus.IDLE


def test_transaction_status_follows_an_error_and_rollback(conn: psycopg.Connection[Any]) -> None:
    conn.execute("BEGIN")
    with pytest.raises(errors.UndefinedTable):
        conn.execute("SELECT * FROM no_such_table_here")
    assert status(conn) == pq.TransactionStatus.INERROR
    with pytest.raises(errors.InFailedSqlTransaction):
        conn.execute("SELECT 1")
    conn.execute("ROLLBACK")
    assert status(conn) == pq.TransactionStatus.IDLE


def test_rolled_back_rows_are_gone_and_committed_rows_stay(
        conn: psycopg.Connection[Any], other: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS tx_probe (v int)")
    conn.execute("DROP TABLE IF EXISTS tx_shared")
    conn.execute("CREATE TABLE tx_shared (v int)")
    try:
        with conn.transaction():
            conn.execute("INSERT INTO tx_shared VALUES (1)")
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute("INSERT INTO tx_shared VALUES (2)")
            raise RuntimeError("roll it back")
        assert other.execute("SELECT array_agg(v) FROM tx_shared").fetchone() == ([1],)
    finally:
        conn.execute("DROP TABLE tx_shared")


# -- pipeline mode ---------------------------------------------------------------------------


def test_pipeline_of_several_queries_returns_each_result(conn: psycopg.Connection[Any]) -> None:
    with conn.pipeline():
        cursors = [conn.execute("SELECT %s::int", (i,)) for i in range(20)]
    assert [c.fetchone() for c in cursors] == [(i,) for i in range(20)]


def test_pipeline_error_in_the_middle_aborts_the_rest_then_recovers(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP TABLE IF EXISTS pipe_t")
    conn.execute("CREATE TABLE pipe_t (v int)")
    try:
        with pytest.raises(errors.DivisionByZero), conn.pipeline() as pipeline:
            conn.execute("INSERT INTO pipe_t VALUES (1)")
            pipeline.sync()  # first batch commits
            conn.execute("INSERT INTO pipe_t VALUES (2)")
            conn.execute("SELECT 1 / 0")
            conn.execute("INSERT INTO pipe_t VALUES (3)")  # skipped by the server
        assert status(conn) == pq.TransactionStatus.IDLE
        with conn.pipeline():
            after = conn.execute("SELECT array_agg(v ORDER BY v) FROM pipe_t")
            more = conn.execute("SELECT %s::text", ("recovered",))
        assert after.fetchone() == ([1],)
        assert more.fetchone() == ("recovered",)
    finally:
        conn.execute("DROP TABLE pipe_t")


# -- COPY ------------------------------------------------------------------------------------


@pytest.fixture
def copy_table(conn: psycopg.Connection[Any]) -> Iterator[str]:
    conn.execute("DROP TABLE IF EXISTS copy_t")
    conn.execute("CREATE TABLE copy_t (id int, label text, payload bytea)")
    yield "copy_t"
    conn.execute("DROP TABLE IF EXISTS copy_t")


ROWS = [(i, f"row {i}\twith tab", bytes(range(i % 256)) * 3) for i in range(500)]


def test_binary_copy_in_then_binary_copy_out_round_trips(
        conn: psycopg.Connection[Any], copy_table: str) -> None:
    with conn.cursor() as cur:
        with cur.copy(f"COPY {copy_table} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "text", "bytea"])
            for row in ROWS:
                copy.write_row(row)
        with cur.copy(f"COPY {copy_table} TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "text", "bytea"])
            out = list(copy.rows())
    assert sorted(out) == ROWS


def test_text_copy_in_then_text_copy_out_round_trips(
        conn: psycopg.Connection[Any], copy_table: str) -> None:
    lines = "".join(f"{i}\tlabel {i}\t\\\\x{i:02x}\n" for i in range(200))
    with conn.cursor() as cur:
        with cur.copy(f"COPY {copy_table} FROM STDIN") as copy:
            copy.write(lines)
        assert cur.rowcount == 200
        with cur.copy(f"COPY {copy_table} TO STDOUT") as copy:
            out = b"".join(bytes(chunk) for chunk in copy)
    assert out.decode() == lines


def test_copy_in_that_fails_on_the_server_leaves_the_session_usable(
        conn: psycopg.Connection[Any], copy_table: str) -> None:
    with pytest.raises(errors.InvalidTextRepresentation), \
            conn.cursor().copy(f"COPY {copy_table} (id) FROM STDIN") as copy:
        copy.write("1\nnot-a-number\n")
    assert conn.execute(f"SELECT count(*) FROM {copy_table}").fetchone() == (0,)


def test_copy_in_aborted_by_the_client_leaves_the_session_usable(
        conn: psycopg.Connection[Any], copy_table: str) -> None:
    with pytest.raises(errors.QueryCanceled), \
            conn.cursor().copy(f"COPY {copy_table} (id) FROM STDIN") as copy:
        copy.write("1\n")
        raise errors.QueryCanceled("client changed its mind")  # sends CopyFail
    assert conn.execute(f"SELECT count(*) FROM {copy_table}").fetchone() == (0,)


# -- big rows --------------------------------------------------------------------------------


def test_a_ten_megabyte_value_goes_up_as_a_parameter_and_comes_back(
        conn: psycopg.Connection[Any]) -> None:
    value = "abcdefghij" * (TEN_MB // 10)
    row = conn.execute("SELECT length(%s::text), md5(%s::text), %s::text",
                       (value, value, value)).fetchone()
    assert row is not None
    assert row[0] == TEN_MB
    assert row[2] == value


def test_a_ten_megabyte_literal_in_a_simple_query_comes_back(
        conn: psycopg.Connection[Any]) -> None:
    value = "x" * TEN_MB
    cur = conn.execute(f"SELECT '{value}'::text")
    assert cur.fetchone() == (value,)


def test_a_twenty_megabyte_query_larger_than_the_inspect_limit_still_runs(
        conn: psycopg.Connection[Any]) -> None:
    value = "y" * (2 * TEN_MB)
    cur = conn.execute(f"SELECT length('{value}')")
    assert cur.fetchone() == (2 * TEN_MB,)


def test_a_ten_megabyte_row_generated_by_the_server_arrives_whole(
        conn: psycopg.Connection[Any]) -> None:
    cur = conn.cursor(binary=True)
    cur.execute("SELECT repeat('z', %s)::bytea", (TEN_MB,))
    assert cur.fetchone() == (b"z" * TEN_MB,)


# -- asynchronous server messages ------------------------------------------------------------


def test_notification_reaches_an_idle_listener(emulator: Any) -> None:
    with emulator.connect() as listener, emulator.connect() as sender:
        listener.execute("LISTEN proxy_channel")
        sender_pid = sender.info.backend_pid
        sender.execute("SELECT pg_notify('proxy_channel', 'hello from the other session')")
        received = list(listener.notifies(timeout=10, stop_after=1))
    assert [(n.channel, n.payload) for n in received] == [
        ("proxy_channel", "hello from the other session")]
    assert received[0].pid == sender_pid


def test_notifications_keep_their_order(emulator: Any) -> None:
    with emulator.connect() as listener, emulator.connect() as sender:
        listener.execute("LISTEN ordered")
        for i in range(50):
            sender.execute("SELECT pg_notify('ordered', %s)", (str(i),))
        received = list(listener.notifies(timeout=10, stop_after=50))
    assert [n.payload for n in received] == [str(i) for i in range(50)]


def test_raise_notice_reaches_the_client(conn: psycopg.Connection[Any]) -> None:
    notices: list[tuple[str | None, str | None]] = []
    conn.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
    conn.execute("DO $$ BEGIN RAISE NOTICE 'first %', 1; RAISE WARNING 'second'; END $$")
    assert notices == [
        ("NOTICE", "first 1"), ("WARNING", "second")]


# -- cancel and disconnect -------------------------------------------------------------------


def test_cancel_stops_a_long_query_and_the_session_stays_usable(
        conn: psycopg.Connection[Any], other: psycopg.Connection[Any]) -> None:
    pid = conn.info.backend_pid
    cancel_while_sleeping(conn, other, conn.cancel, 30)
    assert conn.execute("SELECT 'still here'").fetchone() == ("still here",)
    assert conn.info.backend_pid == pid


def test_cancel_safe_stops_a_long_query(conn: psycopg.Connection[Any],
                                        other: psycopg.Connection[Any]) -> None:
    """libpq 17's cancel API (PQcancelConn), which negotiates the connection like a login."""
    cancel_while_sleeping(conn, other, lambda: conn.cancel_safe(timeout=10), 31)
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_cancel_of_one_session_does_not_touch_another(
        emulator: Any, other: psycopg.Connection[Any]) -> None:
    with emulator.connect() as victim, emulator.connect() as bystander:
        result: list[object] = []

        def bystander_sleeps() -> None:
            result.append(bystander.execute("SELECT pg_sleep(0.5), 'done'").fetchone())

        worker = threading.Thread(target=bystander_sleeps)
        worker.start()
        cancel_while_sleeping(victim, other, victim.cancel, 32)
        worker.join()
    assert result == [("", "done")]


def test_a_client_that_vanishes_mid_query_does_not_disturb_another_session(
        emulator: Any, conn: psycopg.Connection[Any]) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port, application_name="vanishing")
    pid = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'vanishing'").fetchone()
    assert pid is not None
    sock.sendall(wire.query("SELECT pg_sleep(30)"))
    wait_until_active(conn, pid[0], "pg_sleep(30)")
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    # The other session keeps working, and the abandoned backend can be cleaned up by it.
    assert conn.execute("SELECT 'unaffected'").fetchone() == ("unaffected",)
    conn.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
    with emulator.connect() as fresh:
        assert fresh.execute("SELECT 2").fetchone() == (2,)


def test_a_psycopg_connection_killed_mid_query_fails_only_itself(
        emulator: Any, conn: psycopg.Connection[Any]) -> None:
    doomed = emulator.connect()
    pid = doomed.info.backend_pid
    failure: list[BaseException] = []

    def run() -> None:
        try:
            doomed.execute("SELECT pg_sleep(30)")
        except psycopg.Error as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until_active(conn, pid, "pg_sleep(30)")
    socket.socket(fileno=socket.dup(doomed.fileno())).shutdown(socket.SHUT_RDWR)
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], psycopg.OperationalError)
    doomed.close()
    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert conn.execute("SELECT 'unaffected'").fetchone() == ("unaffected",)


def test_many_sessions_open_and_close_without_leaking_state(emulator: Any) -> None:
    for i in range(30):
        with emulator.connect() as c:
            assert c.execute("SELECT %s::int", (i,)).fetchone() == (i,)
