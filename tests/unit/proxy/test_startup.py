"""proxy/startup.py without sockets: startup packets in, events out (as h11 tests its Connection)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from proxy import protocol as pq
from proxy import startup
from proxy.startup import (
    Cancel,
    DirectTLS,
    Refused,
    Reply,
    StartTLS,
    Startup,
    StartupNegotiation,
)

SSL_REQUEST = struct.pack("!II", 8, pq.SSL_REQUEST_CODE)
GSSENC_REQUEST = struct.pack("!II", 8, pq.GSSENC_REQUEST_CODE)
STARTUP = pq.startup_message(pq.PROTOCOL_3_0, {"user": "alice", "database": "shop"})
CANCEL = struct.pack("!IIII", 16, pq.CANCEL_REQUEST_CODE, 4242, 77)


def test_a_startup_message_starts_the_session_with_its_parameters() -> None:
    [event] = StartupNegotiation(tls=False).receive(STARTUP)
    assert event == Startup(STARTUP, pq.PROTOCOL_3_0, {"user": "alice", "database": "shop"}, b"")


def test_bytes_after_the_startup_message_are_handed_on() -> None:
    query = pq.message(pq.QUERY, b"SELECT 1\x00")
    [event] = StartupNegotiation(tls=False).receive(STARTUP + query)
    assert isinstance(event, Startup) and event.rest == query


def test_ssl_request_without_tls_is_answered_n_and_startup_follows() -> None:
    events = StartupNegotiation(tls=False).receive(SSL_REQUEST + STARTUP)
    assert events[0] == Reply(b"N")
    assert isinstance(events[1], Startup)


def test_ssl_request_with_tls_starts_tls_then_takes_the_plaintext_startup() -> None:
    negotiation = StartupNegotiation(tls=True)
    assert negotiation.receive(SSL_REQUEST) == [StartTLS()]
    [event] = negotiation.receive(STARTUP)
    assert isinstance(event, Startup)


def test_bytes_after_an_ssl_request_answered_s_are_refused() -> None:
    # CVE-2021-23214: nothing may be buffered across the TLS handshake.
    [event] = StartupNegotiation(tls=True).receive(SSL_REQUEST + STARTUP)
    assert event == Refused("08P01", startup.BEFORE_TLS_HANDSHAKE)


def test_gss_then_ssl_in_one_packet_are_each_answered_n() -> None:
    events = StartupNegotiation(tls=False).receive(GSSENC_REQUEST + SSL_REQUEST + STARTUP)
    assert events[:2] == [Reply(b"N"), Reply(b"N")]
    assert isinstance(events[2], Startup)


def test_a_second_ssl_request_is_an_unsupported_protocol() -> None:
    events = StartupNegotiation(tls=False).receive(SSL_REQUEST + SSL_REQUEST)
    assert events == [Reply(b"N"), Refused("0A000", "unsupported frontend protocol 1234.5679")]


def test_gss_after_ssl_is_refused() -> None:
    events = StartupNegotiation(tls=False).receive(SSL_REQUEST + GSSENC_REQUEST)
    assert events[0] == Reply(b"N")
    assert isinstance(events[1], Refused) and events[1].sqlstate == "0A000"


def test_a_cancel_request_is_handed_on_whole() -> None:
    assert StartupNegotiation(tls=False).receive(CANCEL) == [Cancel(CANCEL)]


def test_a_client_hello_first_is_direct_tls() -> None:
    hello = bytes((pq.TLS_HANDSHAKE_FIRST_BYTE,)) + b"\x03\x01\x02\x00rest"
    assert StartupNegotiation(tls=True).receive(hello) == [DirectTLS(hello)]


def test_a_client_hello_after_gss_is_direct_tls() -> None:
    hello = bytes((pq.TLS_HANDSHAKE_FIRST_BYTE,)) + b"\x03\x01"
    events = StartupNegotiation(tls=True).receive(GSSENC_REQUEST + hello)
    assert events == [Reply(b"N"), DirectTLS(hello)]


def test_a_bad_length_is_refused_as_soon_as_its_four_bytes_are_in() -> None:
    negotiation = StartupNegotiation(tls=False)
    assert negotiation.receive(b"\x00\x00") == []
    assert negotiation.receive(b"\x00\x04") == [
        Refused("08P01", "invalid startup packet length 4")]


def test_an_oversized_startup_packet_is_refused() -> None:
    [event] = StartupNegotiation(tls=False).receive(struct.pack("!I", pq.MAX_STARTUP_PACKET + 1))
    assert isinstance(event, Refused) and event.sqlstate == "08P01"


def test_an_unknown_protocol_version_is_refused() -> None:
    packet = struct.pack("!II", 8, 2 << 16)
    assert StartupNegotiation(tls=False).receive(packet) == [
        Refused("0A000", "unsupported frontend protocol 2.0")]


def test_missing_says_how_many_bytes_complete_the_packet() -> None:
    negotiation = StartupNegotiation(tls=False)
    assert negotiation.missing == 8
    assert negotiation.receive(STARTUP[:8]) == []
    assert negotiation.missing == len(STARTUP) - 8
    assert isinstance(negotiation.receive(STARTUP[8:])[0], Startup)


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_any_split_of_the_stream_gives_the_same_events(cuts: list[int]) -> None:
    stream = GSSENC_REQUEST + SSL_REQUEST + STARTUP + b"Q\x00\x00\x00\x05x"
    whole = StartupNegotiation(tls=False).receive(stream)
    negotiation = StartupNegotiation(tls=False)
    events: list[startup.Event] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        if pos >= len(stream):
            break
        events += negotiation.receive(stream[pos:pos + cut])
        pos += cut
        if events and isinstance(events[-1], Startup):
            break
    startup_event = events[-1]
    assert isinstance(startup_event, Startup)
    # The bytes after the StartupMessage are split too: those received with it are handed on.
    assert events[:-1] == whole[:-1]
    assert startup_event.params == {"user": "alice", "database": "shop"}
    after_startup = stream[stream.index(STARTUP) + len(STARTUP):]
    assert after_startup.startswith(startup_event.rest)


def test_no_upstream_connection_while_the_server_restarts_57p03() -> None:
    refusal = startup.upstream_refusal("starting")
    assert refusal is not None
    fields = pq.parse_error_fields(refusal[5:])
    assert (fields["S"], fields["C"]) == ("FATAL", "57P03")
    assert fields["M"] == "the database system is starting up" and "H" in fields


def test_an_unreachable_upstream_is_08006_with_the_reason() -> None:
    assert startup.upstream_refusal("down") is None  # still worth trying to connect
    assert startup.upstream_refusal("up") is None
    refusal = startup.upstream_refusal("down", ConnectionRefusedError("connection refused"))
    assert refusal is not None
    fields = pq.parse_error_fields(refusal[5:])
    assert (fields["S"], fields["C"], fields["D"]) == ("FATAL", "08006", "connection refused")
    # Restarting meanwhile: the client is told to come back, not that the server is gone.
    late = startup.upstream_refusal("starting", TimeoutError())
    assert late is not None and pq.parse_error_fields(late[5:])["C"] == "57P03"
