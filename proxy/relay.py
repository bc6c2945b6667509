"""One client connection relayed to one upstream connection, full duplex.

Plan
----
``ClientSide`` is the asyncio Protocol of the accepted socket, ``UpstreamSide`` the one of the
connection to PostgreSQL. Before the StartupMessage the client side answers the untyped startup
packets (SSLRequest, GSSENCRequest, CancelRequest, direct TLS) as proxy/startup.py decides; from
the StartupMessage on, both
directions are relayed message by message with ``MessageScanner``:

* client -> server: Query and Parse are inspected (a byte prefilter first, pglast only when it
  matches) and possibly rewritten; everything else streams through as received.
* server -> client: headers are walked to learn BackendKeyData, ParameterStatus and
  ReadyForQuery; bytes go out as they came, one write per read.

Server-initiated messages (notices, notifications, parameter changes) need no special case: the
server direction never waits for the client. Flow control crosses the pair: when one side's
write buffer is above its high-water mark, the other side stops reading.

The session can *hold* the client direction (queue what arrives, stop reading: proxy/session.py's
HoldQueue) while the proxy
does work that must land between two client messages: registering the engine endpoint after the
extension was created, before the client's next statement runs.
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
from proxy.rewrites import rewrite
from proxy.session import STARTUP_INSPECT, HoldQueue, Session, Step
from proxy.statements import worth_parsing
from proxy.tls import DirectTLSError, ServerTLS

log = logging.getLogger("alloydb_ai_emulator.proxy")

# The command tag PostgreSQL answers each stand-in extension command with.
_EXTENSION_TAGS = {"create": b"CREATE EXTENSION", "update": b"ALTER EXTENSION",
                   "drop": b"DROP EXTENSION"}

WRITE_HIGH_WATER = 512 * 1024
WRITE_LOW_WATER = 128 * 1024

_CLIENT_INSPECT = frozenset(b"QP")
_READY = frozenset(b"Z")  # server ReadyForQuery: counted, to know which answers a statement
_ANSWERED_BY_READY = frozenset(b"QS")  # client Query and Sync: one ReadyForQuery each


class SessionConfig(Protocol):
    """What a session reads of the proxy's configuration (listener.ProxyConfig)."""

    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...
    @property
    def warmup(self) -> bool: ...
    @property
    def extension_emulation(self) -> Any: ...


class SessionHost(Protocol):
    """The proxy server as its sessions see it (listener.ProxyServer): all a session may ask
    of what sessions share. The server knows sessions only as ClientSide objects it created."""

    bytes_from_clients: int  # counters, read by emulator/metrics.py
    bytes_to_clients: int

    @property
    def config(self) -> SessionConfig: ...
    @property
    def instance(self) -> str: ...
    @property
    def upstream_state(self) -> str: ...
    @property
    def databases_with_extension(self) -> set[str]: ...

    def connection_opened(self, client: ClientSide) -> None: ...
    def connection_closed(self, client: ClientSide) -> None: ...
    def session_started(self, session: ClientSide) -> bool:
        """Record the session's backend pid; True when its database still needs the engine
        endpoint registered (at the ReadyForQuery that ends startup)."""
        ...
    async def open_upstream(self, make: Callable[[], UpstreamSide]) -> UpstreamSide: ...
    def relay_cancel(self, packet: bytes) -> None: ...
    def extension_check_due(self, dbname: str) -> bool: ...
    def register_endpoint(self, dbname: str) -> Coroutine[Any, Any, None]: ...


class ClientSide(asyncio.Protocol):
    """The accepted client socket; owns the session."""

    def __init__(self, server: SessionHost) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamSide | None = None
        self.peer = "?"
        self._negotiation = startup.StartupNegotiation(tls=server.config.ssl_context is not None)
        self._relaying = False
        self._tls_pending = False
        self._direct_tls: ServerTLS | None = None  # TLS over memory buffers (proxy/tls.py)
        self._closed = False
        self.scanner = pq.MessageScanner(
            _CLIENT_INSPECT,
            valid_types=pq.CLIENT_MESSAGE_TYPES,
            wanted=worth_parsing,
            count=_ANSWERED_BY_READY,
        )
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
        self.server.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.server.bytes_from_clients += len(data)
        if self._direct_tls is not None:
            self._tls_bytes(data)
        elif self._relaying:
            self._relay_client_bytes(data)
        elif not self._tls_pending:
            self._startup_bytes(data)
        else:
            self._protocol_error("08P01", startup.BEFORE_TLS_HANDSHAKE)

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
                self._write(b"S")
                self._tls_pending = True
                assert self.server.config.ssl_context is not None
                asyncio.get_running_loop().create_task(
                    self._upgrade_tls(self.server.config.ssl_context))
            elif isinstance(event, startup.DirectTLS):
                self._start_direct_tls(event.hello)
            elif isinstance(event, startup.Cancel):
                self.server.relay_cancel(event.packet)
                self._close()
            else:
                self._protocol_error(event.sqlstate, event.text)

    def _start_direct_tls(self, hello: bytes) -> None:
        context = self.server.config.ssl_context
        if context is None:
            # No TLS configured: nothing to answer a ClientHello with (PostgreSQL closes too).
            log.warning("client %s: direct TLS without --tls-cert; closing the connection",
                        self.peer)
            self._close()
            return
        self._direct_tls = ServerTLS(context)
        self._tls_bytes(hello)

    def _tls_bytes(self, ciphertext: bytes) -> None:
        assert self._direct_tls is not None and self.transport is not None
        try:
            plaintext, reply = self._direct_tls.receive(ciphertext)
        except DirectTLSError as exc:
            log.warning("client %s: %s; closing the connection", self.peer, exc)
            self._close()
            return
        if reply:
            self.transport.write(reply)
        if not plaintext:
            return
        if self._relaying:
            self._relay_client_bytes(plaintext)
        else:
            self._startup_bytes(plaintext)

    async def _upgrade_tls(self, ssl_context: Any) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            new_transport = await loop.start_tls(
                self.transport, self, ssl_context, server_side=True, ssl_handshake_timeout=15
            )
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.info("client %s: TLS handshake failed: %s", self.peer, exc)
            self._close()
            return
        if new_transport is None:
            self._close()
            return
        self.transport = new_transport
        self._tls_pending = False

    def _start_session(self, event: startup.Startup) -> None:
        self.session.params = event.params
        packet = self._with_instance_option(event.version)
        self._relaying = True
        self._held.hold()  # until the upstream connection exists
        self._keep(event.rest, framed=False)
        asyncio.get_running_loop().create_task(self._connect_upstream(packet))

    def _with_instance_option(self, version: int) -> bytes:
        """The StartupMessage with this proxy's instance name added to its ``options``, so the
        session's model calls come back to this proxy when several front one server."""
        params = dict(self.session.params)
        option = f"-c google_ml_integration.emulator_instance={self.server.instance}"
        params["options"] = f"{params['options']} {option}" if params.get("options") else option
        return pq.startup_message(version, params)

    async def _connect_upstream(self, startup_packet: bytes) -> None:
        if self.server.upstream_state == "starting":
            self._refuse_startup(None)
            return
        try:
            upstream = await self.server.open_upstream(lambda: UpstreamSide(self))
        except (OSError, TimeoutError) as exc:
            log.warning("client %s: upstream unreachable: %s", self.peer, exc)
            self._refuse_startup(exc)
            return
        if self._closed:
            upstream.close()
            return
        self.upstream = upstream
        upstream.write(startup_packet)
        self._release()

    def _refuse_startup(self, exc: BaseException | None) -> None:
        """FATAL with a SQLSTATE, as PostgreSQL answers when it cannot take a session: 57P03
        while the embedded server is being restarted, 08006 while it is unreachable."""
        if self.server.upstream_state == "starting":
            error = pq.error_response(
                "57P03", "the database system is starting up", severity="FATAL",
                detail="The AlloyDB AI emulator is restarting its PostgreSQL server, which "
                       "stopped unexpectedly.", hint="Try again in a few seconds.")
        else:
            error = pq.error_response(
                "08006", "the AlloyDB AI emulator could not reach its PostgreSQL server",
                severity="FATAL", detail=str(exc) if exc is not None else None)
        self._write(error)
        self._close()

    def terminate(self, sqlstate: str, text: str) -> None:
        """End the connection with a FATAL ErrorResponse, written only between two server
        messages (never inside one already partly forwarded), then close it."""
        upstream = self.upstream
        if not self._tls_pending and (upstream is None or upstream.scanner.at_boundary):
            self._write(pq.error_response(sqlstate, text, severity="FATAL"))
        self._close()

    # -- relay: client -> server ------------------------------------------------------------

    def _relay_client_bytes(self, data: bytes) -> None:
        if self._held.holding:
            self._keep(data, framed=False)
            return
        try:
            segments = self.scanner.scan(data)
        except pq.ProtocolViolation as exc:
            self._protocol_error("08P01", f"invalid frontend message: {exc}")
            return
        if segments is None:  # nothing to inspect: the chunk goes on as it came
            assert self.upstream is not None
            self.upstream.write(data)
            return
        out: list[bytes] = []
        for segment in segments:
            if type(segment) is pq.Message:
                if self.server.extension_check_due(self.dbname):
                    # A statement that may call a model, in a database where this proxy has
                    # not seen the extension (created since, elsewhere): make sure the engine
                    # endpoint is registered before the statement reaches the server.
                    self._send_upstream(b"".join(out))
                    out = []
                    self._run_held(self.server.register_endpoint(self.dbname))
                out.append(self._client_message(segment))
            else:
                out.append(bytes(segment))  # type: ignore[arg-type]
        self._send_upstream(b"".join(out))

    def _send_upstream(self, data: bytes) -> None:
        """Framed (scanned, rewritten) client bytes: upstream now, or after the hold."""
        if self._held.holding:
            self._keep(data, framed=True)
        elif data:
            assert self.upstream is not None
            self.upstream.write(data)

    def _client_message(self, msg: pq.Message) -> bytes:
        """The bytes to send upstream for an inspected Query or Parse."""
        raw = msg.raw
        session = self.session
        if session.client_encoding not in ("UTF8", "SQL_ASCII"):
            return raw
        try:
            if msg.type == pq.QUERY:
                sql_bytes, _ = pq.cstring(raw, 5)
                prefix, suffix = b"", b""
            else:
                name, offset = pq.cstring(raw, 5)
                sql_bytes, after = pq.cstring(raw, offset)
                prefix, suffix = name + b"\x00", raw[after:]
            sql = sql_bytes.decode("utf-8")
        except (pq.ProtocolViolation, UnicodeDecodeError):
            return raw  # PostgreSQL will say what is wrong with it
        try:
            result = rewrite(
                sql,
                warmup=self.server.config.warmup,
                extension_installed=self.dbname in self.server.databases_with_extension,
            )
        except Exception:  # a rewrite must never break a statement that would have run
            log.exception("client %s: rewrite failed; statement forwarded unchanged", self.peer)
            return raw
        if result.error_hint is not None:
            session.add_error_hint(result.error_hint)
        if result.touches_extension:
            # Register at the ReadyForQuery that answers this statement: a Query is answered by
            # its own, a Parse by the next Sync's. Server ReadyForQuery ordinals run one ahead
            # of the client's Query/Sync count (the server sends one after startup).
            answered_by = msg.ordinal if msg.type == pq.QUERY else msg.ordinal + 1
            session.register_after(answered_by + 1)
        for old, new in result.rename_tags:
            session.rename_next_tag(old, new)
        emulation = self.server.config.extension_emulation
        command = result.extension_command
        if emulation is not None and command is not None and emulation.handles(command.name):
            # A server without the extension's files: create its objects instead.
            if command.kind == "create":
                result.sql = emulation.create_sql(
                    command.name, command.if_not_exists_or_if_exists, command.version)
            elif command.kind == "update":
                result.sql = emulation.update_sql(command.name, command.version)
            else:
                result.sql = emulation.drop_sql(command.name, command.if_not_exists_or_if_exists)
            session.rename_next_tag(b"DO", _EXTENSION_TAGS[command.kind])
        self._update_server_inspect()
        if result.sql is None:
            return raw
        for note in result.notes:
            log.info("client %s: %s", self.peer, note)
        body = prefix + result.sql.encode("utf-8") + b"\x00" + suffix
        return pq.message(msg.type, body)

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
        if step is Step.REGISTER_ENDPOINT:
            self._run_held(self.server.register_endpoint(self.dbname))
        elif step is Step.BACKEND_KEY and self.server.session_started(self):
            self.session.register_after(1)  # the ReadyForQuery that ends startup
        self._update_server_inspect()
        return raw

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
            if item.framed:
                assert self.upstream is not None
                self.upstream.write(item.data)
            else:
                self._relay_client_bytes(item.data)

    # -- helpers ----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.server.bytes_to_clients += len(data)
            if self._direct_tls is not None:
                data = self._direct_tls.send(data)
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

    def _protocol_error(self, sqlstate: str, text: str) -> None:
        log.warning("client %s: %s; closing the connection", self.peer, text)
        self._write(pq.error_response(sqlstate, text, severity="FATAL"))
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.transport is not None:
            self.transport.close()
        if self.upstream is not None:
            self.upstream.close()


class UpstreamSide(asyncio.Protocol):
    """The connection to PostgreSQL for one client."""

    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.scanner = pq.MessageScanner(STARTUP_INSPECT, count=_READY)
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
        answer = await asyncio.wait_for(self._ssl_answer, 15)
        self._ssl_answer = None
        if answer == b"N":
            if required:
                raise ConnectionRefusedError("the PostgreSQL server does not accept TLS connections")
            return
        if answer != b"S":
            raise ConnectionError(f"unexpected answer {answer!r} to SSLRequest")
        transport = await loop.start_tls(
            self.transport, self, context, server_hostname=host, ssl_handshake_timeout=15
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
            client._protocol_error("08P01", "the PostgreSQL server sent an invalid message")
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
        self.client._close()

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
