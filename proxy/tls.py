"""Direct TLS (PostgreSQL 17+, ``sslnegotiation=direct``): the client's first bytes are a TLS
ClientHello, with no SSLRequest before it.

By the time the proxy sees the first byte it has read the ClientHello, so asyncio's start_tls
(which reads the handshake from the socket itself) cannot be used. ``ServerTLS`` runs TLS over
memory buffers instead: ciphertext in, plaintext out, and the other way round. As PostgreSQL
does, it requires the ALPN protocol ``postgresql`` for a direct connection.
"""

from __future__ import annotations

import ssl

ALPN = "postgresql"


class DirectTLSError(Exception):
    """The handshake failed or the client did not ask for ALPN ``postgresql``."""


class ServerTLS:
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
