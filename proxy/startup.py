"""The untyped startup packets, before a session's first typed message: sans-io.

Plan
----
A PostgreSQL connection opens with packets that have a length and a code but no type byte:
SSLRequest, GSSENCRequest, CancelRequest, then the StartupMessage; or, since PostgreSQL 17,
a TLS ClientHello straight away (direct TLS). ``StartupNegotiation`` takes the bytes a client
sends, in whatever pieces, and says what to do with them as *events*: a reply to write, TLS to
start, a cancel to relay, the StartupMessage, or a refusal with its SQLSTATE. It decides as
PostgreSQL's ProcessStartupPacket does; it writes nothing and knows no socket, so both the relay
(proxy/relay.py) and the callback endpoint (proxy/callback.py) use it, and tests drive it with
bytes alone.

Rules kept from PostgreSQL: a length is judged as soon as its four bytes are in (a client that
sent a bad one may wait for an answer forever); SSL and GSS encryption are each negotiated once,
SSL before or after GSS, never GSS after SSL (no TLS inside TLS); nothing may follow an SSLRequest
that is answered ``S`` before the handshake (CVE-2021-23214).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from proxy import protocol as pq

_HEADER = struct.Struct("!II")
_LENGTH = struct.Struct("!I")
_TLS_FIRST_BYTE = bytes((pq.TLS_HANDSHAKE_FIRST_BYTE,))


@dataclass(frozen=True, slots=True)
class Reply:
    """Write these bytes, then go on feeding (``N`` to an encryption request)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StartTLS:
    """Write ``S`` and run the TLS handshake; feed the plaintext that follows it."""


@dataclass(frozen=True, slots=True)
class DirectTLS:
    """The client opened with a TLS ClientHello: ``hello`` is the ciphertext so far."""

    hello: bytes


@dataclass(frozen=True, slots=True)
class Cancel:
    """A CancelRequest (the whole packet); the connection ends after it."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class Startup:
    """The StartupMessage: the session begins. ``rest``: bytes that came after it."""

    packet: bytes
    version: int
    params: dict[str, str]
    rest: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """End the connection with a FATAL ErrorResponse."""

    sqlstate: str
    text: str


Event = Reply | StartTLS | DirectTLS | Cancel | Startup | Refused

BEFORE_TLS_HANDSHAKE = "bytes received before the TLS handshake completed"


class StartupNegotiation:
    """Startup packets in, events out. ``tls``: whether an SSLRequest may be answered ``S``."""

    __slots__ = ("_buffer", "_done", "_gss_negotiated", "_ssl_negotiated", "tls")

    def __init__(self, *, tls: bool) -> None:
        self.tls = tls
        self._buffer = bytearray()
        self._ssl_negotiated = False
        self._gss_negotiated = False
        self._done = False  # a final event was given: nothing more is a startup packet

    @property
    def missing(self) -> int:
        """How many more bytes complete the packet being received (at least 1 while its header
        is incomplete): a reader may ask for exactly that many and never read past it."""
        buf = self._buffer
        if len(buf) < 4:
            return 8 - len(buf)
        length: int = _LENGTH.unpack_from(buf, 0)[0]
        return max(length, 8) - len(buf)

    def receive(self, data: bytes) -> list[Event]:
        """The events these bytes complete, in order. Every event but a Reply is the last one
        of its call; after StartTLS and DirectTLS, feed the plaintext of the TLS connection."""
        if self._done:
            raise RuntimeError("startup is over: feed the session, not the negotiation")
        events: list[Event] = []
        self._buffer += data
        while True:
            event = self._next_event()
            if event is None:
                return events
            events.append(event)
            if not isinstance(event, Reply):
                # After TLS starts, the plaintext is startup packets again.
                self._done = not isinstance(event, (StartTLS, DirectTLS))
                return events

    def _next_event(self) -> Event | None:
        buf = self._buffer
        if buf[:1] == _TLS_FIRST_BYTE and not self._ssl_negotiated:
            # Always the first byte of a packet: packets are taken whole.
            self._ssl_negotiated = self._gss_negotiated = True
            hello = bytes(buf)
            buf.clear()
            return DirectTLS(hello)
        if len(buf) < 4:
            return None
        (length,) = _LENGTH.unpack_from(buf, 0)
        if length < 8 or length > pq.MAX_STARTUP_PACKET:
            return Refused("08P01", f"invalid startup packet length {length}")
        if len(buf) < length:
            return None
        _, code = _HEADER.unpack_from(buf, 0)
        packet = bytes(buf[:length])
        del buf[:length]
        if code == pq.SSL_REQUEST_CODE and not self._ssl_negotiated:
            self._ssl_negotiated = self._gss_negotiated = True
            if not self.tls:
                return Reply(b"N")
            if buf:
                return Refused("08P01", BEFORE_TLS_HANDSHAKE)
            return StartTLS()
        if code == pq.GSSENC_REQUEST_CODE and not self._gss_negotiated:
            self._gss_negotiated = True
            return Reply(b"N")
        if code == pq.CANCEL_REQUEST_CODE:
            return Cancel(packet)
        if code in (pq.PROTOCOL_3_0, pq.PROTOCOL_3_2) or (code >> 16) == 3:
            rest = bytes(buf)
            buf.clear()
            return Startup(packet, code, pq.parse_startup_parameters(packet[8:]), rest)
        return Refused("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")


class UpstreamRefused(Exception):
    """The session gets no upstream connection: send ``response`` (upstream_refusal's FATAL
    ErrorResponse) and close. ``cause``: the connection error, if connecting failed."""

    def __init__(self, response: bytes, cause: BaseException | None = None) -> None:
        super().__init__("upstream refused")
        self.response = response
        self.cause = cause


def upstream_refusal(upstream_state: str, error: BaseException | None = None) -> bytes | None:
    """The FATAL ErrorResponse that refuses a session its upstream connection, as PostgreSQL
    answers when it cannot take one: 57P03 while the embedded server is being restarted
    (``upstream_state`` "starting"), 08006 once connecting failed with ``error``. None: go on
    (connect, or the connection was made)."""
    if upstream_state == "starting":
        return pq.error_response(
            "57P03", "the database system is starting up", severity="FATAL",
            detail="The AlloyDB AI emulator is restarting its PostgreSQL server, which "
                   "stopped unexpectedly.", hint="Try again in a few seconds.")
    if error is None:
        return None
    return pq.error_response(
        "08006", "the AlloyDB AI emulator could not reach its PostgreSQL server",
        severity="FATAL", detail=str(error) or None)
