"""The proxy server: accepts clients, opens their upstream connections, knows every session.

Plan
----
``ProxyServer`` listens for clients and creates a ``ClientSide`` per connection; it is the
``relay.SessionHost`` its sessions see. It owns what sessions share: where the upstream is and
whether a session may have a connection to it now (startup.upstream_refusal), the TLS context,
the registry of backend pids (so the callback endpoint can tell a session that came through the
proxy from one that did not, and so a CancelRequest can be relayed), and the registration of the
engine's callback endpoint in each database (docs/internals.md): the first session of a
database, any session that creates or updates the extension, and a model-calling statement in a
database where the extension was not seen (at most once a second) write the endpoint row before
the session's next statement runs. When to register is the session's decision
(proxy/session.py); the row is written here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg

from proxy.callback import CallbackServer
from proxy.relay import ClientSide, UpstreamSide
from proxy.session import ExtensionStandIn
from proxy.startup import UpstreamRefused, upstream_refusal

log = logging.getLogger("alloydb_ai_emulator.proxy")

# How long to wait for PostgreSQL to close a relayed cancel connection (it closes once it
# has signalled the backend).
CANCEL_ACK_SECONDS = 5.0


@dataclass(slots=True)
class Upstream:
    """Where PostgreSQL is, for the relay (raw sockets) and for the proxy's own SQL."""

    host: str = "127.0.0.1"
    port: int = 5432
    unix_socket: str | None = None  # a socket file path; preferred when set
    admin_socket_dir: str | None = None  # where the proxy's own SQL connects, if not as above
    admin_user: str = "postgres"
    admin_password: str | None = None
    admin_dbname: str = "postgres"
    sslmode: str = "disable"  # disable, allow, prefer, require, verify-ca, verify-full
    sslrootcert: str | None = None

    def admin_conninfo(self, dbname: str | None = None) -> str:
        host = self.admin_socket_dir or (
            self.unix_socket.rsplit("/", 1)[0] if self.unix_socket else self.host
        )
        params = {
            "host": host,
            "port": str(self.port),
            "user": self.admin_user,
            "dbname": dbname or self.admin_dbname,
            "application_name": "alloydb-ai-emulator",
            "connect_timeout": "10",
            "sslmode": "disable" if host.startswith("/") else self.sslmode,
        }
        if self.admin_password:
            params["password"] = self.admin_password
        if self.sslrootcert and not host.startswith("/"):
            params["sslrootcert"] = self.sslrootcert
        return psycopg.conninfo.make_conninfo(**params)

    def tls_context(self) -> ssl.SSLContext | None:
        """The client-side TLS context for the relay's own connections, or None for plaintext."""
        if self.unix_socket or self.sslmode in ("disable", "allow"):
            return None
        if self.sslmode in ("verify-ca", "verify-full"):
            context = ssl.create_default_context(cafile=self.sslrootcert)
            context.check_hostname = self.sslmode == "verify-full"
        else:  # prefer, require: encrypted, not verified (as libpq)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(slots=True)
class ProxyConfig:
    host: str = "127.0.0.1"
    port: int = 6432
    upstream: Upstream = field(default_factory=Upstream)
    ssl_context: ssl.SSLContext | None = None
    # The address the database uses to reach the callback endpoint.
    callback_host: str = "127.0.0.1"
    callback_connect_host: str | None = None
    warmup: bool = True  # batch per-row model calls (proxy/warmup.py)
    # Set when the upstream lacks the extension's files: the statements that stand in for
    # CREATE, ALTER ... UPDATE and DROP EXTENSION (emulator/extension_files.ExtensionEmulation).
    extension_emulation: ExtensionStandIn | None = None
    # The google_ml_integration.* flags: full name -> default, is a bool (emulator/flags.py),
    # for SHOW in a database without the extension (rewrites.py).
    flags: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


class ProxyServer:
    def __init__(self, config: ProxyConfig, callback: CallbackServer) -> None:
        self.config = config
        self.callback = callback
        self.sessions: dict[int, ClientSide] = {}
        self.clients: set[ClientSide] = set()  # every open client connection
        # "up", or, while the embedded PostgreSQL is restarted (emulator/supervisor.py),
        # "starting" (new clients get 57P03) or "down" (08006).
        self.upstream_state = "up"
        self._registered: set[str] = set()
        self.databases_with_extension: set[str] = set()
        self._extension_checked: dict[str, float] = {}
        self._server: asyncio.AbstractServer | None = None
        self._upstream_tls = config.upstream.tls_context()
        self.instance = ""  # set by start(): names this proxy among several fronting one server
        self.connections_total = 0
        self.connections_open = 0
        self.bytes_from_clients = 0  # counted by relay.ClientSide, read by emulator/metrics.py
        self.bytes_to_clients = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientSide(self), self.config.host, self.config.port, reuse_address=True
        )
        if self.config.port == 0:
            self.config.port = self._server.sockets[0].getsockname()[1]
        self.instance = f"{socket.gethostname()}:{self.config.port}"  # stable across restarts

    async def close(self) -> None:
        """Stop listening and end every client connection as PostgreSQL's own shutdown does:
        FATAL 57P01, then the socket closes."""
        if self._server is not None:
            self._server.close()
            for client in list(self.clients):
                client.terminate("57P01", "terminating connection due to administrator command")
            await self._server.wait_closed()

    # -- sessions -------------------------------------------------------------------------

    def connection_opened(self, client: ClientSide) -> None:
        self.connections_total += 1
        self.connections_open += 1
        self.clients.add(client)

    def connection_closed(self, client: ClientSide) -> None:
        self.clients.discard(client)
        self.connections_open -= 1
        if client.backend_pid is not None and self.sessions.get(client.backend_pid) is client:
            del self.sessions[client.backend_pid]

    def session_started(self, session: ClientSide) -> bool:
        """Record the session by its backend pid; True when its database still needs the
        engine endpoint registered."""
        assert session.backend_pid is not None
        self.sessions[session.backend_pid] = session
        return session.dbname not in self._registered

    def extension_check_due(self, dbname: str) -> bool:
        """Whether a statement that may call a model should first make sure the engine endpoint
        is registered in ``dbname``: the extension was not there when this proxy last looked
        (another proxy, or a direct connection, may have created it since). At most once a
        second per database."""
        if dbname in self.databases_with_extension:
            return False
        now = time.monotonic()
        if now - self._extension_checked.get(dbname, 0.0) < 1.0:
            return False
        self._extension_checked[dbname] = now
        return True

    def is_fronted_pid(self, pid: int) -> bool:
        return pid in self.sessions

    # -- upstream -------------------------------------------------------------------------

    async def open_upstream(self, make: Callable[[], UpstreamSide]) -> UpstreamSide:
        """A connection to PostgreSQL (TLS negotiated as configured) for ``make``'s protocol;
        startup.UpstreamRefused while the server restarts or cannot be reached."""
        refusal = upstream_refusal(self.upstream_state)
        if refusal is not None:
            raise UpstreamRefused(refusal)
        loop = asyncio.get_running_loop()
        up = self.config.upstream
        try:
            if up.unix_socket:
                _, protocol = await loop.create_unix_connection(make, up.unix_socket)
            else:
                _, protocol = await loop.create_connection(make, up.host, up.port)
                context = self._upstream_tls
                if context is not None:
                    await protocol.start_tls(context, up.host, required=up.sslmode != "prefer")
        except (OSError, TimeoutError) as exc:
            response = upstream_refusal(self.upstream_state, exc)
            assert response is not None
            raise UpstreamRefused(response, exc) from exc
        return protocol

    def relay_cancel(self, packet: bytes) -> None:
        async def send() -> None:
            up = self.config.upstream
            try:
                if up.unix_socket:
                    reader, writer = await asyncio.open_unix_connection(up.unix_socket)
                else:
                    reader, writer = await asyncio.open_connection(up.host, up.port)
                writer.write(packet)
                await writer.drain()
                # PostgreSQL closes the connection once it has signalled the backend. Wait
                # for that: abandoning the model call first would let the backend finish
                # its statement and take the late signal as a cancel of the next one.
                try:
                    await asyncio.wait_for(reader.read(), CANCEL_ACK_SECONDS)
                finally:
                    writer.close()
            except (OSError, TimeoutError) as exc:
                log.warning("could not relay a cancel request: %s", exc)
            # A backend waiting on a model call only notices the cancel once the engine
            # answers (dblink drains its connection on error): abandon the call too.
            if len(packet) >= 16:
                (pid,) = struct.unpack_from("!I", packet, 8)
                session = self.sessions.get(pid)
                if session is not None and session.backend_key == packet[12:]:
                    self.callback.cancel_calls_of(pid)

        asyncio.get_running_loop().create_task(send())

    # -- the engine endpoint in each database ---------------------------------------------

    async def register_endpoint(self, dbname: str) -> None:
        # Until the row is written, a session that starts in this database registers too
        # (e.g. a client that creates the extension, disconnects and reconnects at once).
        self._registered.discard(dbname)
        conninfo = self.callback.conninfo(self.config.callback_connect_host)
        try:
            async with await psycopg.AsyncConnection.connect(
                self.config.upstream.admin_conninfo(dbname), autocommit=True
            ) as conn:
                cur = await conn.execute("SELECT to_regclass('google_ml._engine_endpoint')")
                row = await cur.fetchone()
                if row is None or row[0] is None:
                    self._registered.add(dbname)  # no extension here (yet)
                    self.databases_with_extension.discard(dbname)
                    return
                await conn.execute(
                    "INSERT INTO google_ml._engine_endpoint (instance, conninfo) VALUES (%s, %s)"
                    " ON CONFLICT (instance) DO UPDATE"
                    " SET conninfo = excluded.conninfo, updated_at = now()",
                    (self.instance, conninfo),
                )
                self._registered.add(dbname)
                self.databases_with_extension.add(dbname)
        except psycopg.Error as exc:
            log.warning("could not register the engine endpoint in database %r: %s", dbname, exc)
