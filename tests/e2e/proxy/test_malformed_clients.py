"""Clients that break the protocol (raw sockets): each gets a FATAL ErrorResponse where the
protocol allows one, or a clean close, never a hang; other sessions never notice."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from proxy import protocol as pq
from tests.support import wire


@pytest.fixture
def bystander(emulator: Any) -> Iterator[psycopg.Connection[Any]]:
    """A normal session open while a client misbehaves; it must keep working."""
    with emulator.connect() as connection:
        connection.execute("SELECT 1")
        yield connection
        assert connection.execute("SELECT 'bystander ok'").fetchone() == ("bystander ok",)


def log_lines_about(emulator: Any, sock_name: tuple[str, int]) -> list[str]:
    """The emulator's log lines about the client at ``sock_name``, once at least one is in."""
    marker = f"client {sock_name[0]}:{sock_name[1]}:"
    for _ in range(500):
        lines = [line for line in list(emulator.output) if marker in line]
        if lines:
            return lines
        time.sleep(0.01)
    return []


def assert_fatal_or_clean_close(sock: socket.socket, sqlstate: str = "08P01") -> None:
    replies = wire.read_until_closed(sock)  # raises TimeoutError on a hang
    if not replies:
        return  # a clean close
    first = replies[0]
    assert first.type == b"E", replies
    assert first.fields["S"] == "FATAL"
    assert first.fields["C"] == sqlstate
    assert len(replies) == 1


def assert_fatal(sock: socket.socket, sqlstate: str = "08P01") -> dict[str, str]:
    replies = wire.read_until_closed(sock)
    assert [r.type for r in replies] == [b"E"], replies
    fields = replies[0].fields
    assert (fields["S"], fields["C"]) == ("FATAL", sqlstate), fields
    return fields


# -- before the StartupMessage ---------------------------------------------------------------


def test_http_request_instead_of_startup_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert_fatal(sock)


def test_random_garbage_before_startup_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(bytes(range(256)) * 4)
        assert_fatal_or_clean_close(sock)


@pytest.mark.parametrize("length", [0, 3, 7, 100_000, 0x7FFF_FFFF, 0xFFFF_FFFF])
def test_bad_startup_length_with_a_full_header_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any], length: int) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(struct.pack("!II", length, pq.PROTOCOL_3_0))
        assert_fatal(sock)


@pytest.mark.parametrize("length", [0, 3, 100_000])
def test_bad_startup_length_alone_is_refused_without_waiting_for_more(
        emulator: Any, bystander: psycopg.Connection[Any], length: int) -> None:
    """PostgreSQL judges the length as soon as its four bytes arrive."""
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(struct.pack("!I", length))
        assert_fatal_or_clean_close(sock)


def test_unsupported_protocol_version_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(wire.startup_packet(version=2 << 16))
        replies = wire.read_until_closed(sock)
    assert [r.type for r in replies] == [b"E"]
    assert replies[0].fields["S"] == "FATAL"


def test_direct_tls_hello_on_a_proxy_without_direct_tls_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32)
        assert_fatal_or_clean_close(sock)


def test_startup_cut_off_midway_then_closed_leaves_no_trace(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    packet = wire.startup_packet()
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(packet[: len(packet) // 2])
    with emulator.connect() as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)


def test_cancel_request_with_an_unknown_key_is_closed_quietly(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(struct.pack("!IIII", 16, pq.CANCEL_REQUEST_CODE, 1, 12345))
        assert wire.read_until_closed(sock) == []


# -- GSSENCRequest and SSLRequest on a proxy without TLS -------------------------------------


def test_gssenc_request_is_answered_n_then_startup_works(emulator: Any) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(wire.gssenc_request())
        assert wire.recv_exactly(sock, 1) == b"N"
        sock.sendall(wire.startup_packet())
        assert wire.read_until_ready(sock)[-1].type == b"Z"
        assert wire.data_values(wire.simple_query(sock, "SELECT 'after gss'")) == [
            [b"after gss"]]


def test_gssenc_then_ssl_request_then_startup_in_one_packet_works(emulator: Any) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(wire.gssenc_request() + wire.ssl_request() + wire.startup_packet())
        assert wire.recv_exactly(sock, 2) == b"NN"
        assert wire.read_until_ready(sock)[-1].type == b"Z"


def test_ssl_request_is_answered_n_by_a_proxy_without_tls(emulator: Any) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(wire.ssl_request())
        assert wire.recv_exactly(sock, 1) == b"N"
        sock.sendall(wire.startup_packet())
        assert wire.read_until_ready(sock)[-1].type == b"Z"


@pytest.mark.parametrize("second", ["ssl", "gss"])
def test_a_second_negotiation_after_ssl_request_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any], second: str) -> None:
    """PostgreSQL allows SSLRequest once and GSSENCRequest only before it."""
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(wire.ssl_request())
        assert wire.recv_exactly(sock, 1) == b"N"
        sock.sendall(wire.ssl_request() if second == "ssl" else wire.gssenc_request())
        replies = wire.read_until_closed(sock)
    assert [r.type for r in replies] == [b"E"]
    assert replies[0].fields["S"] == "FATAL"


# -- after the StartupMessage ----------------------------------------------------------------


@pytest.mark.parametrize("mtype", [b"A", b"z", b"\x00", b"\xff", b"Z", b"T"])
def test_unknown_message_type_after_startup_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any], mtype: bytes) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(pq.message(mtype, b"whatever"))
        assert_fatal(sock)


@pytest.mark.parametrize("length", [0, 1, 3, 0x4000_0000, 0xFFFF_FFFF])
def test_bad_message_length_after_startup_gets_a_fatal_error(
        emulator: Any, bystander: psycopg.Connection[Any], length: int) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(b"Q" + struct.pack("!I", length) + b"SELECT 1\x00")
        assert_fatal(sock)


def test_bad_length_after_a_valid_query_in_the_same_packet_answers_the_query_first(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(wire.query("SELECT 1") + b"Q" + struct.pack("!I", 2))
        replies = wire.read_until_closed(sock)
    assert replies and replies[-1].type == b"E"
    assert replies[-1].fields["C"] == "08P01"


def test_connection_dropped_mid_message_does_not_disturb_others(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port, application_name="half-a-query")
    message = wire.query("SELECT 'never finished'")
    sock.sendall(message[:7])
    sock.close()
    with emulator.connect() as fresh:
        assert fresh.execute("SELECT 3").fetchone() == (3,)


def test_connection_dropped_mid_copy_does_not_disturb_others(
        emulator: Any, bystander: psycopg.Connection[Any]) -> None:
    bystander.execute("CREATE TABLE IF NOT EXISTS dropped_copy (v text)")
    sock, _ = wire.open_session(emulator.host, emulator.port)
    sock.sendall(wire.query("COPY dropped_copy FROM STDIN"))
    assert wire.read_message(sock).type == b"G"  # CopyInResponse
    sock.sendall(pq.message(b"d", b"line one\n") + pq.message(b"d", b"line")[:8])
    sock.close()
    assert bystander.execute("SELECT 1").fetchone() == (1,)
    bystander.execute("DROP TABLE dropped_copy")


def test_terminate_closes_the_connection_cleanly(emulator: Any) -> None:
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(pq.message(b"X", b""))
        assert wire.read_until_closed(sock) == []


def test_many_misbehaving_clients_in_a_row_leave_the_proxy_serving(emulator: Any) -> None:
    for i in range(20):
        with wire.connect(emulator.host, emulator.port) as sock:
            sock.sendall(bytes([i]) * 40)
            try:
                wire.read_until_closed(sock)
            except ConnectionResetError:
                pass
    with emulator.connect() as fresh:
        assert fresh.execute("SELECT 4").fetchone() == (4,)


# -- what the operator sees ------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\n\r\n",
    wire.startup_packet() + pq.message(b"A", b""),
    wire.startup_packet() + b"Q" + struct.pack("!I", 1),
])
def test_a_malformed_client_is_logged_in_one_line_without_a_traceback(
        emulator: Any, garbage: bytes) -> None:
    with wire.connect(emulator.host, emulator.port) as sock:
        name = sock.getsockname()
        sock.sendall(garbage)
        wire.read_until_closed(sock)
    lines = log_lines_about(emulator, name)
    assert len(lines) == 1, lines
    assert "closing the connection" in lines[0]


def test_nothing_so_far_made_the_emulator_log_a_traceback(emulator: Any) -> None:
    assert not [line for line in emulator.output if "Traceback" in line], "".join(emulator.output)
