"""The client leg's TLS, sans-io: which TLS a client connection runs, and what that means for
its bytes.

Plan
----
A client gets TLS one of two ways. STARTTLS: an SSLRequest answered ``S``, then the handshake;
asyncio's start_tls runs it and from then on the transport itself decrypts, so the proxy sees
plaintext and nothing here touches the bytes. Direct TLS (PostgreSQL 17+,
``sslnegotiation=direct``): the client's first bytes are a TLS ClientHello, with no SSLRequest
before it. By the time the proxy sees the first byte it has read the ClientHello, so start_tls
(which reads the handshake from the socket itself) cannot be used: ``ServerTLS`` runs TLS over
memory buffers instead, ciphertext in, plaintext out, and the other way round. As PostgreSQL
does, it requires the ALPN protocol ``postgresql`` for a direct connection.

``ClientTLS`` is the state of one client connection: no TLS (or STARTTLS done), a STARTTLS
handshake under way (no byte may arrive then: CVE-2021-23214), or direct TLS. It says what to
answer an SSLRequest, turns what the client sends into plaintext plus the handshake bytes to send
back, and wraps what goes to the client. It knows no socket: proxy/relay.py's ``ClientSide``
feeds it, and runs the one asynchronous part (start_tls) when ``start_tls`` says so.
"""

from __future__ import annotations

import ssl

from proxy import protocol as pq
from proxy.startup import BEFORE_TLS_HANDSHAKE

ALPN = "postgresql"
HANDSHAKE_TIMEOUT = 15  # seconds, for every TLS handshake the proxy runs (as libpq's default)


class DirectTLSError(Exception):
    """The handshake failed, the client did not ask for ALPN ``postgresql``, or the proxy has no
    TLS to answer a ClientHello with: close the connection (nothing can be said in plaintext)."""


class ServerTLS:
    """TLS over memory buffers, server side: a direct TLS connection's encryption."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshake_done = False

    def receive(self, ciphertext: bytes) -> tuple[bytes, bytes]:
        """Feed bytes from the client: (plaintext for the proxy, ciphertext to send back)."""
        self._incoming.write(ciphertext)
        if not self.handshake_done:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return b"", self._outgoing.read()
            except ssl.SSLError as exc:
                raise DirectTLSError(f"TLS handshake failed: {exc.reason or exc}") from exc
            if self._tls.selected_alpn_protocol() != ALPN:
                raise DirectTLSError(
                    "direct TLS connections must use ALPN protocol \"postgresql\""
                )
            self.handshake_done = True
        plaintext: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            except ssl.SSLError as exc:
                raise DirectTLSError(f"TLS error: {exc.reason or exc}") from exc
            if not chunk:
                break
            plaintext.append(chunk)
        return b"".join(plaintext), self._outgoing.read()

    def send(self, plaintext: bytes) -> bytes:
        """Encrypt bytes for the client."""
        self._tls.write(plaintext)
        return self._outgoing.read()


class ClientTLS:
    """One client connection's TLS. ``context``: the proxy's (``--tls-cert``), None when it
    offers no TLS.

    STARTTLS: ``start_tls()`` gives the ``S`` to write; the shell runs the handshake with
    ``context`` and calls ``upgraded()``. Direct TLS: ``start_direct()``, then feed the
    ClientHello and everything after it to ``receive``. ``passthrough``: the client's bytes are
    the session's plaintext as they arrive, and what the proxy writes goes out as it is."""

    __slots__ = ("_direct", "context", "upgrading")

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context
        self.upgrading = False  # ``S`` answered, handshake not done
        self._direct: ServerTLS | None = None

    @property
    def offered(self) -> bool:
        """Whether an SSLRequest may be answered ``S`` (startup.StartupNegotiation's ``tls``)."""
        return self.context is not None

    @property
    def passthrough(self) -> bool:
        return not self.upgrading and self._direct is None

    def start_tls(self) -> bytes:
        """The SSLRequest was granted: the answer to write before the handshake."""
        if self.context is None:
            raise RuntimeError("STARTTLS on a proxy without TLS: the negotiation answers N")
        self.upgrading = True
        return b"S"

    def upgraded(self) -> None:
        """The STARTTLS handshake is done: the transport decrypts from now on."""
        self.upgrading = False

    def start_direct(self) -> None:
        """The client opened with a ClientHello (startup.DirectTLS): TLS over memory buffers."""
        if self.context is None:
            # Nothing to answer a ClientHello with (PostgreSQL closes too).
            raise DirectTLSError("direct TLS without --tls-cert")
        self._direct = ServerTLS(self.context)

    def receive(self, data: bytes) -> tuple[bytes, bytes]:
        """Bytes from the client: (the session's plaintext, handshake bytes to send back).
        Raises pq.ProtocolViolation for bytes during a STARTTLS handshake (they would be read
        as if encrypted), DirectTLSError when direct TLS fails."""
        if self.upgrading:
            raise pq.ProtocolViolation(BEFORE_TLS_HANDSHAKE)
        if self._direct is None:
            return data, b""
        return self._direct.receive(data)

    def send(self, plaintext: bytes) -> bytes:
        """Bytes for the client as they must go on the wire."""
        if self._direct is None:
            return plaintext
        return self._direct.send(plaintext)
