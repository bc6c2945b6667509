"""One client connection relayed to one upstream connection, full duplex: the asyncio shell.

Plan
----
``ClientSide`` is the asyncio Protocol of the accepted socket, ``UpstreamSide`` the one of the
connection to PostgreSQL. They move bytes, run TLS handshakes and flow control, and leave every
decision to sans-io objects: before the StartupMessage, proxy/startup.py says how to answer the
untyped startup packets (SSLRequest, GSSENCRequest, CancelRequest, direct TLS) and
proxy/tls.py's ``ClientTLS`` what the client's TLS makes of its bytes (refused during a STARTTLS
handshake, decrypted and encrypted under direct TLS); from it on, both directions are framed
message by message with ``MessageScanner`` and proxy/session.py's ``Session`` says what to send:

* client -> server: Query and Parse that pass the byte prefilter go to
  ``Session.client_segments`` (rewritten or not); everything else streams through as received.
* server -> client: headers are walked; the few inspected messages (BackendKeyData,
  ParameterStatus, ReadyForQuery when needed) go to ``Session.server_message``; bytes go out as
  they came, one write per read.
* a *prelude* (proxy/session.py), a statement of the proxy's own that a rewrite asks to run
  before a client message: sent upstream, the client direction held until its ReadyForQuery
  (every server message inspected meanwhile), then the message or what stands in for it.

The session answers bytes and *steps* (``Step``), which ``ClientSide._take`` runs: record the
session by its backend pid, or register the engine endpoint. Registering *holds* the client
direction (proxy/session.py's ``HoldQueue`` keeps what arrives; the socket stops being read) so
that it lands between two client messages; opening the upstream holds it the same way.

Server-initiated messages (notices, notifications, parameter changes) need no special case: the
server direction never waits for the client. Flow control crosses the pair: when one side's
write buffer is above its high-water mark, the other side stops reading.

Interfaces: ``SessionHost`` is the server as sessions see it (listener.ProxyServer);
``ClientEnd`` is the client side as its upstream side sees it.

The per-chunk paths check one flag each: ``data_received`` whether the session relays plaintext
as it arrives (else ``_layered_bytes``: startup, or through ``ClientTLS``), ``write`` whether
direct TLS wraps what goes out.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

from proxy import protocol as pq
from proxy import startup
from proxy.session import (
    RESULTS,
    STARTUP_INSPECT,
    Databases,
    HoldQueue,
    Prelude,
    RewriteConfig,
    Session,
    Step,
    client_scanner,
)
from proxy.tls import HANDSHAKE_TIMEOUT, ClientTLS, DirectTLSError

log = logging.getLogger("alloydb_ai_emulator.proxy")

WRITE_HIGH_WATER = 512 * 1024
WRITE_LOW_WATER = 128 * 1024

_READY = frozenset(b"Z")  # server ReadyForQuery: counted, to know which answers a statement


class SessionConfig(RewriteConfig, Protocol):
    """What a session reads of the proxy's configuration (listener.ProxyConfig)."""

    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...


class SessionHost(Databases, Protocol):
    """The proxy server as its sessions see it (listener.ProxyServer): all a session may ask
    of what sessions share. The server knows sessions only as ClientSide objects it created."""

    bytes_from_clients: int  # counters, read by emulator/metrics.py
    bytes_to_clients: int

    @property
    def config(self) -> SessionConfig: ...
    @property
    def instance(self) -> str: ...

    def connection_opened(self, client: ClientSide) -> None: ...
    def connection_closed(self, client: ClientSide) -> None: ...
    def session_started(self, session: ClientSide) -> bool:
        """Record the session's backend pid; True when its database still needs the engine
        endpoint registered (at the ReadyForQuery that ends startup)."""
        ...
    async def open_upstream(self, make: Callable[[], UpstreamSide]) -> UpstreamSide:
        """The session's connection to PostgreSQL; startup.UpstreamRefused when it gets none."""
        ...
    def relay_cancel(self, packet: bytes) -> None: ...
    def register_endpoint(self, dbname: str) -> Coroutine[Any, Any, None]: ...


class ClientEnd(Protocol):
    """The client side as its upstream side sees it (ClientSide): where the server's bytes go,
    and what the server's connection may ask of the client's."""

    def write(self, data: bytes) -> None:
        """Server bytes, to the client as they are."""
        ...
    def server_message(self, msg: pq.Message) -> bytes:
        """An inspected server message: the bytes to forward instead."""
        ...
    def protocol_error(self, sqlstate: str, text: str) -> None:
        """End the session with a FATAL ErrorResponse."""
        ...
    def close(self) -> None: ...
    def pause_reading(self) -> None:
        """The server's connection cannot take more for now: stop reading from the client."""
        ...
    def resume_reading(self) -> None: ...


class ClientSide(asyncio.Protocol):
    """The accepted client socket; owns the session (a ClientEnd to its upstream side)."""

    def __init__(self, server: SessionHost) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamSide | None = None
        self.peer = "?"
        self.tls = ClientTLS(server.config.ssl_context)  # this leg's TLS, sans-io (proxy/tls.py)
        self._negotiation = startup.StartupNegotiation(tls=self.tls.offered)
        self._relaying = False  # the StartupMessage was seen: the session's messages follow
        # Relaying, and the socket's bytes are the session's as they are (no TLS of ours on
        # them): the one check data_received makes before the relay's fast path.
        self._relaying_plain = False
        self._encrypt: Callable[[bytes], bytes] | None = None  # direct TLS: every write's wrap
        self._closed = False
        self.scanner = client_scanner()
        self.session = Session()  # statement accounting, sans-io (proxy/session.py)
        self._held = HoldQueue()
        self._paused_by_upstream = False
        self._paused_by_hold = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        peer = self.transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.session.peer = self.peer
        self.server.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.server.bytes_from_clients += len(data)
        if not self._relaying_plain:
            self._layered_bytes(data)
            return
        self._relay_client_bytes(data)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server.connection_closed(self)
        if self.upstream is not None:
            self.upstream.close()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # -- startup ----------------------------------------------------------------------------

    def _startup_bytes(self, data: bytes) -> None:
        for event in self._negotiation.receive(data):
            if isinstance(event, startup.Reply):
                self._write(event.data)
            elif isinstance(event, startup.Startup):
                self._start_session(event)
            elif isinstance(event, startup.StartTLS):
                self._write(self.tls.start_tls())
                asyncio.get_running_loop().create_task(self._upgrade_tls())
            elif isinstance(event, startup.DirectTLS):
                self._start_direct_tls(event.hello)
            elif isinstance(event, startup.Cancel):
                self.server.relay_cancel(event.packet)
                self.close()
            else:
                self.protocol_error(event.sqlstate, event.text)

    def _layered_bytes(self, data: bytes) -> None:
        """Bytes off the relay's fast path: startup packets, or anything under direct TLS;
        proxy/tls.py's ClientTLS says what they are."""
        try:
            data, reply = self.tls.receive(data)
        except pq.ProtocolViolation as exc:
            self.protocol_error("08P01", str(exc))
            return
        except DirectTLSError as exc:
            self._tls_failed(exc)
            return
        if reply:
            assert self.transport is not None
            self.transport.write(reply)
        if not data:
            return
        if self._relaying:
            self._relay_client_bytes(data)
        else:
            self._startup_bytes(data)

    def _start_direct_tls(self, hello: bytes) -> None:
        try:
            self.tls.start_direct()
        except DirectTLSError as exc:
            self._tls_failed(exc)
            return
        self._encrypt = self.tls.send
        self._layered_bytes(hello)

    def _tls_failed(self, exc: DirectTLSError) -> None:
        log.warning("client %s: %s; closing the connection", self.peer, exc)
        self.close()

    async def _upgrade_tls(self) -> None:
        """STARTTLS: asyncio runs the handshake, reading it from the socket; its transport
        decrypts from then on."""
        assert self.transport is not None and self.tls.context is not None
        loop = asyncio.get_running_loop()
        try:
            new_transport = await loop.start_tls(
                self.transport, self, self.tls.context, server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.info("client %s: TLS handshake failed: %s", self.peer, exc)
            self.close()
            return
        if new_transport is None:
            self.close()
            return
        self.transport = new_transport
        self.tls.upgraded()

    def _start_session(self, event: startup.Startup) -> None:
        self.session.client_filter = self.scanner.set_wanted
        try:
            packet = self.session.start(event.version, event.params, self.server.instance)
        except startup.UpstreamRefused as refused:  # a startup parameter it cannot take
            self._write(refused.response)
            self.close()
            return
        self._relaying = True
        self._relaying_plain = self.tls.passthrough
        self._held.hold()  # until the upstream connection exists
        self._keep(event.rest, framed=False)
        asyncio.get_running_loop().create_task(self._connect_upstream(packet))

    async def _connect_upstream(self, startup_packet: bytes) -> None:
        try:
            upstream = await self.server.open_upstream(lambda: UpstreamSide(self))
        except startup.UpstreamRefused as refused:
            if refused.cause is not None:
                log.warning("client %s: upstream unreachable: %s", self.peer, refused.cause)
            self._write(refused.response)
            self.close()
            return
        if self._closed:
            upstream.close()
            return
        self.upstream = upstream
        upstream.write(startup_packet)
        self._release()

    def terminate(self, sqlstate: str, text: str) -> None:
        """End the connection with a FATAL ErrorResponse, written only between two server
        messages (never inside one already partly forwarded), then close it."""
        upstream = self.upstream
        if not self.tls.upgrading and (upstream is None or upstream.scanner.at_boundary):
            self._write(pq.error_response(sqlstate, text, severity="FATAL"))
        self.close()

    # -- relay: client -> server ------------------------------------------------------------

    def _relay_client_bytes(self, data: bytes) -> None:
        """The session's plaintext, framed and sent on: the relay's fast path."""
        if self._held.holding:
            self._keep(data, framed=False)
            return
        try:
            segments = self.scanner.scan(data)
        except pq.ProtocolViolation as exc:
            self.protocol_error("08P01", f"invalid frontend message: {exc}")
            return
        if segments is None:  # nothing to inspect: the chunk goes on as it came
            assert self.upstream is not None
            self.upstream.write(data)
            return
        self._client_segments(segments)

    def _client_segments(self, segments: list[bytes | pq.Message]) -> None:
        for item in self.session.client_segments(segments, self.server.config, self.server):
            if isinstance(item, Step):
                self._take(item)
            elif isinstance(item, Prelude):
                self._prelude(item)
            else:
                self._send_upstream(item)
        scanner = self.scanner
        if scanner.following:
            if scanner.unfollowed:  # a Parse or Bind too long to frame went by
                scanner.unfollowed = 0
                self.session.lose_track()
            if not self.session.follows:
                scanner.unfollow()
        self._update_server_inspect()

    def _prelude(self, prelude: Prelude) -> None:
        """A statement of the proxy's own before a client message (proxy/session.py): started
        now, or in its place among the bytes held."""
        if self._held.holding:
            self._held.keep_prelude(prelude)
            self._stop_reading_while_held()
        else:
            self._start_prelude(prelude)

    def _start_prelude(self, prelude: Prelude) -> None:
        """Send the prelude and hold the client direction until its ReadyForQuery
        (Step.PRELUDE_DONE)."""
        assert self.upstream is not None
        self._held.hold()
        self.upstream.write(self.session.start_prelude(prelude))
        self._update_server_inspect()

    def _send_upstream(self, data: bytes) -> None:
        """Framed (scanned, rewritten) client bytes: upstream now, or after the hold."""
        if self._held.holding:
            self._keep(data, framed=True)
        elif data:
            assert self.upstream is not None
            self.upstream.write(data)

    # -- relay: server -> client ------------------------------------------------------------

    @property
    def dbname(self) -> str:
        return self.session.dbname

    @property
    def params(self) -> dict[str, str]:
        return self.session.params

    @property
    def backend_pid(self) -> int | None:
        return self.session.backend_pid

    @property
    def backend_key(self) -> bytes | None:
        return self.session.backend_key

    def _update_server_inspect(self) -> None:
        if self.upstream is not None:
            self.upstream.scanner.set_inspect(self.session.server_inspect)

    def server_message(self, msg: pq.Message) -> bytes:
        """Called by the upstream side for each inspected server message; the bytes to forward."""
        raw, step = self.session.server_message(msg)
        if step is not None:
            self._take(step)
        self._update_server_inspect()
        return raw

    def _take(self, step: Step) -> None:
        """Run a step the session asked for (proxy/session.py)."""
        if step is Step.REGISTER_ENDPOINT:
            self._run_held(self.server.register_endpoint(self.dbname))
        elif step is Step.PRELUDE_DONE:
            data = self.session.after_prelude()
            if data and self._held.holds_besides_one:
                self._held.keep_first(data)  # another hold began meanwhile: it goes first then
            elif data:
                assert self.upstream is not None
                self.upstream.write(data)
            self._release()
        elif step is Step.READ_ONLY_BREACH:
            # after the rest of this chunk (its ReadyForQuery), before any client byte
            asyncio.get_running_loop().call_soon(
                self.terminate, "25006", self.session.read_only_breach)
        elif step is Step.BACKEND_KEY and self.server.session_started(self):
            self.session.register_after(1)  # the ReadyForQuery that ends startup

    def _run_held(self, work: Coroutine[Any, Any, None]) -> None:
        """Hold the client direction until ``work`` is done: what the client sends meanwhile
        reaches the server after it, in order."""
        self._held.hold()

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("client %s: background work failed", self.peer)
            finally:
                self._release()

        asyncio.get_running_loop().create_task(run())

    # -- holding (proxy/session.py's HoldQueue) ---------------------------------------------

    def _keep(self, data: bytes, *, framed: bool) -> None:
        if data:
            self._held.keep(data, framed=framed)
            self._stop_reading_while_held()

    def _stop_reading_while_held(self) -> None:
        if not self._paused_by_hold and self.transport is not None:
            self._paused_by_hold = True
            self.transport.pause_reading()

    def _release(self) -> None:
        items = self._held.release()
        if self._held.holding:
            return
        if self._paused_by_hold and self.transport is not None and not self._closed:
            self._paused_by_hold = False
            if not self._paused_by_upstream:
                self.transport.resume_reading()
        for index, item in enumerate(items):
            if self._closed:
                return
            if self._held.holding:  # a released statement started work of its own
                self._held.requeue(items[index:])
                self._stop_reading_while_held()
                return
            if item.prelude is not None:
                self._start_prelude(item.prelude)
            elif item.framed:
                assert self.upstream is not None
                self.upstream.write(item.data)
            else:
                self._relay_client_bytes(item.data)

    # -- helpers ----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.server.bytes_to_clients += len(data)
            if self._encrypt is not None:
                data = self._encrypt(data)
            self.transport.write(data)

    write = _write  # the server direction's path for every answer: one call, not two

    def pause_reading(self) -> None:
        if self.transport is not None and not self._paused_by_upstream:
            self._paused_by_upstream = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self._paused_by_upstream:
            self._paused_by_upstream = False
            if not self._paused_by_hold:
                self.transport.resume_reading()

    def protocol_error(self, sqlstate: str, text: str) -> None:
        log.warning("client %s: %s; closing the connection", self.peer, text)
        self._write(pq.error_response(sqlstate, text, severity="FATAL"))
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.transport is not None:
            self.transport.close()
        if self.upstream is not None:
            self.upstream.close()


class UpstreamSide(asyncio.Protocol):
    """The connection to PostgreSQL for one client."""

    def __init__(self, client: ClientEnd) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.scanner = pq.MessageScanner(STARTUP_INSPECT, count=_READY, within=RESULTS)
        self._closed = False
        self._paused = False
        self._ssl_answer: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    async def start_tls(self, context: ssl.SSLContext, host: str, *, required: bool) -> None:
        """SSLRequest, then TLS on this connection, before the client's startup goes through."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._ssl_answer = loop.create_future()
        self.transport.write(struct.pack("!II", 8, pq.SSL_REQUEST_CODE))
        answer = await asyncio.wait_for(self._ssl_answer, HANDSHAKE_TIMEOUT)
        self._ssl_answer = None
        if answer == b"N":
            if required:
                raise ConnectionRefusedError("the PostgreSQL server does not accept TLS connections")
            return
        if answer != b"S":
            raise ConnectionError(f"unexpected answer {answer!r} to SSLRequest")
        transport = await loop.start_tls(
            self.transport, self, context, server_hostname=host, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
        )
        if transport is None:
            raise ConnectionError("TLS handshake with the PostgreSQL server failed")
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._ssl_answer is not None:
            if not self._ssl_answer.done():
                self._ssl_answer.set_result(data[:1])
            return  # nothing may follow the answer before the handshake (CVE-2021-23214)
        client = self.client
        try:
            segments = self.scanner.scan(data)
        except pq.ProtocolViolation as exc:
            log.error("upstream sent an invalid message stream: %s", exc)
            client.protocol_error("08P01", "the PostgreSQL server sent an invalid message")
            return
        if segments is None:  # nothing to inspect: the chunk goes on as it came
            client.write(data)
            return
        out: list[bytes] = []
        for segment in segments:
            if type(segment) is pq.Message:
                out.append(client.server_message(segment))
            else:
                out.append(segment)  # type: ignore[arg-type]
        client.write(b"".join(out))

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.client.close()

    def pause_writing(self) -> None:
        self.client.pause_reading()

    def resume_writing(self) -> None:
        self.client.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self._paused and not self._closed:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self._paused and not self._closed:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if not self._closed and self.transport is not None:
            self._closed = True
            self.transport.close()
