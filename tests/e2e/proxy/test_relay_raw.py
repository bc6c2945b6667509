"""Exact protocol sequences over raw sockets: what a proxy must pass through untouched.

The differential tests send the same bytes straight to PostgreSQL and through the proxy and
compare every reply byte for byte (pgcat's method)."""

from __future__ import annotations

import itertools
import socket
import struct
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import protocol as pq
from tests.support import wire
from tests.support.databases import cancel_while_sleeping, wait_until_active
from tests.support.wire import FLUSH, SYNC, bind, copy_data, describe, execute, parse, query

END_MARKER = "end of script"


def close(kind: bytes, name: str) -> bytes:
    return pq.message(b"C", kind + name.encode() + b"\x00")


def function_call(oid: int, args: list[bytes]) -> bytes:
    body = struct.pack("!IH", oid, 0) + struct.pack("!H", len(args))
    for arg in args:
        body += struct.pack("!i", len(arg)) + arg
    body += struct.pack("!H", 0)
    return pq.message(b"F", body)


def run_script(host: str, port: int, messages: list[bytes], cuts: tuple[int, ...] | list[int] = ()) -> bytes:
    """Send a script after login (cut into pieces at ``cuts``, each its own send), then a
    marker query; every byte the server sends back."""
    sock, _ = wire.open_session(host, port)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = b"".join(messages) + query(f"SELECT '{END_MARKER}'")
        bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(stream)), len(stream)]
        for start, end in itertools.pairwise(bounds):
            sock.sendall(stream[start:end])
        received = b""
        marker = END_MARKER.encode()
        while not (marker in received and received.endswith(pq.ready_for_query(b"I"))):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


SCRIPTS: dict[str, list[bytes]] = {
    "simple_multi_statement_with_error": [
        query("SELECT 1; SELECT 1/0; SELECT 2"), query("SELECT 'after'")],
    "extended_error_mid_pipeline_skips_to_sync": [
        parse("", "SELECT $1::int", (23,)), bind("", "", [b"1"]), execute(""),
        parse("", "SELECT 1/0"), bind("", "", []), execute(""),
        parse("", "SELECT 3"), bind("", "", []), execute(""), SYNC,
        parse("", "SELECT 4"), bind("", "", []), execute(""), SYNC],
    "describe_and_close": [
        parse("s1", "SELECT $1::text AS t, 2 AS n", (25,)), describe(b"S", "s1"),
        bind("p1", "s1", [b"x"]), describe(b"P", "p1"), execute("p1"),
        close(b"P", "p1"), close(b"S", "s1"), SYNC],
    "portal_suspended_and_resumed": [
        query("BEGIN"),
        parse("", "SELECT generate_series(1, 10)"), bind("cur", "", []),
        execute("cur", 3), execute("cur", 3), execute("cur", 0), SYNC, query("COMMIT")],
    "empty_query": [query(""), parse("", ""), bind("", "", []), execute(""), SYNC],
    "function_call_int4pl": [function_call(177, [b"2", b"3"])],
    "copy_in_extended_with_sync_before_the_data": [
        query("CREATE TEMP TABLE raw_copy (v text)"),
        parse("", "COPY raw_copy FROM STDIN"), bind("", "", []), execute(""), SYNC,
        copy_data(b"a\n"), copy_data(b"b\n"), pq.message(b"c", b""), SYNC,
        query("SELECT string_agg(v, ',') FROM raw_copy")],
    "copy_in_failed_by_the_client": [
        query("CREATE TEMP TABLE raw_copy2 (v text)"), query("COPY raw_copy2 FROM STDIN"),
        copy_data(b"a\n"), pq.message(b"f", b"no thanks\x00"),
        query("SELECT count(*) FROM raw_copy2")],
    "copy_out": [query("COPY (SELECT g, 'x' FROM generate_series(1, 100) g) TO STDOUT")],
    "transaction_states": [
        query("BEGIN"), query("SELECT 1/0"), query("SELECT 1"), query("ROLLBACK")],
    "notice_from_the_server": [
        query("DO $$ BEGIN RAISE NOTICE 'raw notice'; END $$")],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_through_the_proxy_equal_replies_from_postgresql(emulator: Any,
                                                                 name: str) -> None:
    script = SCRIPTS[name]
    direct = run_script(emulator.direct_host, emulator.direct_port, script)
    proxied = run_script(emulator.host, emulator.port, script)
    assert proxied == direct


ALL_SCRIPTS = [m for name in sorted(SCRIPTS) for m in SCRIPTS[name]]


@pytest.fixture(scope="module")
def direct_reply_to_all_scripts(emulator: Any) -> bytes:
    return run_script(emulator.direct_host, emulator.direct_port, ALL_SCRIPTS)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, len(b"".join(ALL_SCRIPTS))), max_size=60))
def test_replies_are_the_same_however_the_client_cuts_its_stream(
        emulator: Any, direct_reply_to_all_scripts: bytes, cuts: list[int]) -> None:
    proxied = run_script(emulator.host, emulator.port, ALL_SCRIPTS, cuts)
    assert proxied == direct_reply_to_all_scripts


def test_parse_describe_flush_is_answered_before_any_sync(emulator: Any) -> None:
    """asyncpg's way: it waits for these answers before it sends Bind/Execute/Sync."""
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(parse("stmt", "SELECT $1::int + 1 AS n") + describe(b"S", "stmt") + FLUSH)
        replies = [wire.read_message(sock) for _ in range(3)]
        assert [r.type for r in replies] == [b"1", b"t", b"T"]
        sock.sendall(bind("", "stmt", [b"41"]) + execute("") + FLUSH)
        replies = [wire.read_message(sock) for _ in range(3)]
        assert [r.type for r in replies] == [b"2", b"D", b"C"]
        assert wire.data_values(replies) == [[b"42"]]
        sock.sendall(SYNC)
        assert wire.read_message(sock) == wire.Reply(b"Z", b"I")


def test_an_error_before_sync_arrives_without_waiting_for_the_sync(emulator: Any) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(parse("", "SELECT * FROM raw_no_such_table") + FLUSH)
        reply = wire.read_message(sock)
        assert reply.type == b"E" and reply.fields["C"] == "42P01"
        sock.sendall(SYNC)
        assert wire.read_message(sock) == wire.Reply(b"Z", b"I")


def test_a_query_sent_one_byte_at_a_time_is_answered(emulator: Any) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in query("SELECT 'slow ' || 'client'"):
            sock.send(bytes([byte]))
        assert wire.data_values(wire.read_until_ready(sock)) == [[b"slow client"]]


def test_notification_arrives_while_the_client_sends_nothing(emulator: Any,
                                                             conn: psycopg.Connection[Any]
                                                             ) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        wire.simple_query(sock, "LISTEN raw_chan")
        conn.execute("NOTIFY raw_chan, 'idle delivery'")
        reply = wire.read_message(sock)
    assert reply.type == b"A"  # NotificationResponse
    assert reply.body[4:] == b"raw_chan\x00idle delivery\x00"


def test_parameter_status_arrives_when_a_setting_changes(emulator: Any) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        replies = wire.simple_query(sock, "SET application_name TO 'raw-app'")
    assert wire.Reply(b"S", b"application_name\x00raw-app\x00") in replies


def test_negotiate_protocol_version_is_passed_through(emulator: Any) -> None:
    """A client asking for 3.9999 and an unknown protocol option gets the server's answer."""
    sock = wire.connect(emulator.host, emulator.port)
    with sock:
        sock.sendall(wire.startup_packet(version=(3 << 16) | 9999, params={"_pq_.no_such": "on"}))
        replies = wire.read_until_ready(sock)
    first = replies[0]
    assert first.type == b"v"
    (newest, count) = struct.unpack_from("!ii", first.body, 0)
    assert newest in (pq.PROTOCOL_3_0, pq.PROTOCOL_3_2)
    assert count == 1 and b"_pq_.no_such" in first.body


def test_protocol_3_2_long_cancel_key_is_relayed_and_cancels(emulator: Any,
                                                            conn: psycopg.Connection[Any]
                                                            ) -> None:
    """PostgreSQL 18 hands out 32-byte cancel keys under protocol 3.2."""
    sock = wire.connect(emulator.host, emulator.port)
    with sock:
        sock.sendall(wire.startup_packet(version=pq.PROTOCOL_3_2))
        replies = wire.read_until_ready(sock)
        key_data = next(r for r in replies if r.type == b"K")
        pid, key = struct.unpack_from("!I", key_data.body)[0], key_data.body[4:]
        assert len(key) == 32
        sock.sendall(query("SELECT pg_sleep(30)"))
        wait_until_active(conn, pid, "pg_sleep")
        cancel = struct.pack("!II", 8 + 4 + len(key), pq.CANCEL_REQUEST_CODE)
        cancel += struct.pack("!I", pid) + key
        with wire.connect(emulator.host, emulator.port) as canceller:
            canceller.sendall(cancel)
            assert wire.read_until_closed(canceller) == []
        replies = wire.read_until_ready(sock)
    errors_seen = [r.fields["C"] for r in replies if r.type == b"E"]
    assert errors_seen == ["57014"]


def test_psycopg_with_protocol_3_2_cancels(emulator: Any, conn: psycopg.Connection[Any]) -> None:
    if psycopg.pq.version() < 180000:
        pytest.skip("libpq < 18 speaks protocol 3.0 only")
    with psycopg.connect(emulator.dsn, autocommit=True, max_protocol_version="3.2") as c32:
        cancel_while_sleeping(c32, conn, lambda: c32.cancel_safe(timeout=10))
        assert c32.execute("SELECT 1").fetchone() == (1,)


def command_tags(reply: bytes) -> list[bytes]:
    """The CommandComplete tags of a stream of server messages, in order."""
    scanner = pq.MessageScanner(frozenset(b"C"))
    return [m.body.rstrip(b"\x00") for m in scanner.feed(reply) if isinstance(m, pq.Message)]


def test_syncs_the_server_ignores_during_copy_in_do_not_shift_which_answer_is_renamed(
        emulator: Any) -> None:
    """libpq and pgjdbc send a COPY's Sync before its data; PostgreSQL ignores a Sync in copy-in.
    The proxy's count of the client's Syncs must not run ahead of the server's ReadyForQuery
    from there on: the SHOW of an AlloyDB flag is still the statement whose tag is renamed."""
    show = "SHOW google_ml_integration.enable_model_support"
    reply = run_script(emulator.host, emulator.port, [
        query("CREATE TEMP TABLE raw_copy3 (v text)"),
        parse("", "COPY raw_copy3 FROM STDIN"), bind("", "", []), execute(""), SYNC,
        copy_data(b"a\n"), FLUSH, SYNC, pq.message(b"c", b""), SYNC,
        query(show), query("SELECT 42"),
        parse("s", show), bind("", "s", []), execute(""), SYNC,
        parse("", "SELECT 43"), bind("", "", []), execute(""), SYNC])
    assert command_tags(reply) == [b"CREATE TABLE", b"COPY 1", b"SHOW", b"SELECT 1", b"SHOW",
                                   b"SELECT 1", b"SELECT 1"]


def test_a_parse_or_close_postgresql_did_not_run_leaves_the_statement_renamed(
        emulator: Any) -> None:
    """A Parse of a name that exists fails (42P05), and a Close or Parse after an error of its
    Sync's span is skipped: the statement is still the SHOW of an AlloyDB flag, and its tag is
    still renamed. (Each Sync's answer is read before the next is sent, as drivers do.)"""
    show = "SHOW google_ml_integration.enable_model_support"
    steps = [
        parse("s", show) + SYNC,
        parse("s", "SELECT 1") + SYNC,
        bind("", "s", []) + execute("") + SYNC,
        parse("", "SELECT 1/0") + bind("", "", []) + execute("") + close(b"S", "s")
        + parse("s", "SELECT 2") + SYNC,
        bind("", "s", []) + execute("") + SYNC,
    ]
    sock, _ = wire.open_session(emulator.host, emulator.port)
    replies: list[wire.Reply] = []
    with sock:
        for step in steps:
            sock.sendall(step)
            replies += wire.read_until_ready(sock)
    assert [r.fields["C"] for r in replies if r.type == b"E"] == ["42P05", "22012"]
    assert [r.body.rstrip(b"\x00") for r in replies if r.type == b"C"] == [b"SHOW", b"SHOW"]
