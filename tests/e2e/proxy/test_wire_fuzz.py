"""Malformed wire input, generated (hypothesis): random bytes, bad lengths, truncated messages,
oversized startup packets, before and after the startup. Whatever a client sends, the proxy
answers with a FATAL ErrorResponse or PostgreSQL's own replies, or closes, within a bound; a
neighbour session keeps working; nothing is logged as a traceback.

Each client half-closes its socket after sending, as a client that gives up would, so a message
that announces more bytes than it carries ends too. Example counts are small and fixed
(derandomized) so the file runs in seconds.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import protocol as pq
from tests.support import wire

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def neighbour(emulator: Any) -> Iterator[psycopg.Connection[Any]]:
    """A session in an open transaction all along: it must never notice the others."""
    with emulator.connect(autocommit=False) as conn:
        conn.execute("CREATE TEMP TABLE seen (n int)")
        yield conn
        conn.rollback()


def send_and_finish(emulator: Any, data: bytes, *, session: bool) -> list[wire.Reply]:
    """Send ``data`` (after a normal startup when ``session``), half-close, and read every
    reply until the proxy closes; a hang raises TimeoutError."""
    with wire.connect(emulator.host, emulator.port) as sock:
        if session:
            sock.sendall(wire.startup_packet())
            wire.read_until_ready(sock)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return []  # the proxy already closed: refused early
        try:
            return wire.read_until_closed(sock)
        except ConnectionResetError:
            return []


def check_neighbour(conn: psycopg.Connection[Any], n: int) -> None:
    conn.execute("INSERT INTO seen VALUES (%s)", (n,))
    assert conn.execute("SELECT count(*) FROM seen WHERE n = %s", (n,)).fetchone() != (0,)


def assert_answer_is_a_fatal_or_nothing(replies: list[wire.Reply]) -> None:
    errors = [r for r in replies if r.type == b"E"]
    for error in errors:
        assert len(error.fields.get("C", "")) == 5, error  # always a SQLSTATE


# -- before the StartupMessage ------------------------------------------------------------------

STARTUP = wire.startup_packet()

PRE_STARTUP = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.tuples(st.integers(0, 0xFFFF_FFFF), st.integers(0, 0xFFFF_FFFF), st.binary(max_size=64))
    .map(lambda t: struct.pack("!II", t[0], t[1]) + t[2]),
    # a startup packet cut short, or with a length that lies
    st.tuples(st.integers(0, 200), st.integers(-20, 20)).map(
        lambda t: struct.pack("!I", max(0, len(STARTUP) + t[1])) + STARTUP[4:t[0]]),
    # oversized: more than PostgreSQL's 10,000-byte limit, announced and (partly) sent
    st.integers(pq.MAX_STARTUP_PACKET + 1, 0x7FFF_FFFF).map(
        lambda n: struct.pack("!II", n, pq.PROTOCOL_3_0) + b"user\x00" + b"x" * 12_000),
)


@FUZZ
@given(data=PRE_STARTUP)
def test_malformed_input_before_startup(emulator: Any, neighbour: psycopg.Connection[Any],
                                        data: bytes) -> None:
    replies = send_and_finish(emulator, data, session=False)
    assert_answer_is_a_fatal_or_nothing(replies)
    assert not any(r.type == b"Z" for r in replies) or data.startswith(wire.startup_packet())
    check_neighbour(neighbour, len(data))


# -- after it: a session that then sends garbage ------------------------------------------------

MESSAGE = st.one_of(
    # a valid type with a random length and body (truncated or not)
    st.tuples(st.sampled_from(sorted(pq.CLIENT_MESSAGE_TYPES - {ord("X")})),
              st.integers(0, 0xFFFF_FFFF), st.binary(max_size=80))
    .map(lambda t: bytes([t[0]]) + struct.pack("!I", t[1]) + t[2]),
    # a well-framed message with a random body
    st.tuples(st.sampled_from(sorted(pq.CLIENT_MESSAGE_TYPES - {ord("X")})),
              st.binary(max_size=80))
    .map(lambda t: pq.message(bytes([t[0]]), t[1])),
    # any type byte at all
    st.binary(min_size=5, max_size=60),
)


@FUZZ
@given(messages=st.lists(MESSAGE, min_size=1, max_size=4))
def test_malformed_messages_after_startup(emulator: Any, neighbour: psycopg.Connection[Any],
                                          messages: list[bytes]) -> None:
    replies = send_and_finish(emulator, b"".join(messages), session=True)
    assert_answer_is_a_fatal_or_nothing(replies)
    check_neighbour(neighbour, len(messages))


def test_nothing_made_the_emulator_log_a_traceback(emulator: Any) -> None:
    assert not [line for line in emulator.output if "Traceback" in line], "".join(emulator.output)
