"""proxy/tls.py without sockets: the client leg's TLS state (ClientTLS) fed bytes, with a real
TLS client on memory buffers for direct TLS, as ClientSide drives it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from emulator.cli import _tls_context
from proxy import protocol as pq
from proxy import startup
from proxy.relay import ClientSide, UpstreamSide
from proxy.session import ExtensionStandIn
from proxy.tls import ALPN, ClientTLS, DirectTLSError
from tests.support import wire
from tests.support.certificates import self_signed_certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = _tls_context(*certificate)  # the proxy's own (--tls-cert/--tls-key), ALPN set
    assert context is not None
    return context


class Client:
    """A TLS client over memory buffers that checks the proxy's certificate."""

    def __init__(self, certificate: tuple[Path, Path], *, alpn: bool = True) -> None:
        context = ssl.create_default_context(cafile=str(certificate[0]))
        if alpn:
            context.set_alpn_protocols([ALPN])
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    def handshake_step(self, from_server: bytes) -> tuple[bool, bytes]:
        """Feed the server's bytes: (handshake done, bytes for the server)."""
        self.incoming.write(from_server)
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            return False, self.outgoing.read()
        return True, self.outgoing.read()

    def send(self, plaintext: bytes) -> bytes:
        self.tls.write(plaintext)
        return self.outgoing.read()

    def receive(self, ciphertext: bytes) -> bytes:
        self.incoming.write(ciphertext)
        return self.tls.read(65536)


def direct_handshake(tls: ClientTLS, client: Client, *, piece: int = 1 << 20) -> bytes:
    """Run the handshake the way ClientSide does: the negotiation sees the ClientHello first,
    then every client byte goes through ``tls.receive`` (in pieces of ``piece`` bytes). What
    the proxy received as plaintext during it."""
    _, hello = client.handshake_step(b"")
    [event] = startup.StartupNegotiation(tls=tls.offered).receive(hello)
    assert isinstance(event, startup.DirectTLS) and event.hello == hello
    tls.start_direct()
    to_server, plaintext = event.hello, b""
    done = False
    while not done or to_server:
        reply = b""
        for start in range(0, len(to_server), piece):
            text, back = tls.receive(to_server[start:start + piece])
            plaintext += text
            reply += back
        done, to_server = client.handshake_step(reply)
    return plaintext


def test_without_tls_bytes_pass_as_they_are_both_ways() -> None:
    tls = ClientTLS(None)
    assert not tls.offered and tls.passthrough
    assert tls.receive(b"Q\x00\x00\x00\x05") == (b"Q\x00\x00\x00\x05", b"")
    assert tls.send(b"Z\x00\x00\x00\x05I") == b"Z\x00\x00\x00\x05I"


def test_a_client_hello_without_tls_configured_is_closed_on() -> None:
    with pytest.raises(DirectTLSError, match="without --tls-cert"):
        ClientTLS(None).start_direct()


def test_starttls_is_never_granted_without_tls() -> None:
    with pytest.raises(RuntimeError):
        ClientTLS(None).start_tls()


def test_starttls_answers_s_and_refuses_bytes_until_the_handshake_is_done(
        server_context: ssl.SSLContext) -> None:
    tls = ClientTLS(server_context)
    assert tls.offered and tls.passthrough
    assert tls.start_tls() == b"S"
    assert tls.upgrading and not tls.passthrough
    # CVE-2021-23214: plaintext sent before the handshake must not be read as the session's.
    with pytest.raises(pq.ProtocolViolation, match=startup.BEFORE_TLS_HANDSHAKE):
        tls.receive(wire.startup_packet())
    tls.upgraded()  # asyncio's TLS transport decrypts from here: nothing left to do here
    assert tls.passthrough
    assert tls.receive(b"x") == (b"x", b"")
    assert tls.send(b"y") == b"y"


@pytest.mark.parametrize("piece", [1 << 20, 1, 7], ids=["whole", "byte-by-byte", "7-bytes"])
def test_direct_tls_gives_the_session_plaintext_both_ways(
        certificate: tuple[Path, Path], server_context: ssl.SSLContext, piece: int) -> None:
    tls = ClientTLS(server_context)
    client = Client(certificate)
    assert direct_handshake(tls, client, piece=piece) == b""
    assert not tls.passthrough
    assert client.tls.selected_alpn_protocol() == ALPN
    packet = wire.startup_packet()
    ciphertext = client.send(packet)
    plaintext = b"".join(tls.receive(ciphertext[i:i + piece])[0]
                         for i in range(0, len(ciphertext), piece))
    assert plaintext == packet
    [event] = startup.StartupNegotiation(tls=True).receive(plaintext)
    assert isinstance(event, startup.Startup)
    answer = pq.message(b"Z", b"I")
    wrapped = tls.send(answer)
    assert wrapped != answer
    assert client.receive(wrapped) == answer


def test_direct_tls_without_alpn_postgresql_is_refused(
        certificate: tuple[Path, Path], server_context: ssl.SSLContext) -> None:
    with pytest.raises(DirectTLSError, match="ALPN"):
        direct_handshake(ClientTLS(server_context), Client(certificate, alpn=False))


def test_a_broken_client_hello_fails_the_handshake(server_context: ssl.SSLContext) -> None:
    tls = ClientTLS(server_context)
    tls.start_direct()
    hello = bytes((pq.TLS_HANDSHAKE_FIRST_BYTE,)) + b"\x03\x01\x00\x05garbage-and-more"
    with pytest.raises(DirectTLSError, match="handshake failed"):
        tls.receive(hello)


# -- the shell (relay.ClientSide) on this object, with stub transports and no socket --------


class StubTransport:
    """What ClientSide and UpstreamSide call of an asyncio transport; keeps what is written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data

    def set_write_buffer_limits(self, high: int, low: int) -> None: ...
    def get_extra_info(self, name: str) -> object: return ("127.0.0.1", 5)
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_closing(self) -> bool: return self.closed
    def close(self) -> None: self.closed = True


@dataclass
class StubConfig:
    ssl_context: ssl.SSLContext | None
    warmup: bool = False
    extension_emulation: ExtensionStandIn | None = None
    flags: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class StubServer:
    """relay.SessionHost without a listener: the upstream it opens writes into a StubTransport."""

    config: StubConfig
    instance: str = "127.0.0.1:5"
    bytes_from_clients: int = 0
    bytes_to_clients: int = 0
    databases_with_extension: frozenset[str] = frozenset()
    upstream_transport: StubTransport = field(default_factory=StubTransport)

    def connection_opened(self, client: ClientSide) -> None: ...
    def connection_closed(self, client: ClientSide) -> None: ...
    def session_started(self, session: ClientSide) -> bool: return False
    def relay_cancel(self, packet: bytes) -> None: ...
    def extension_check_due(self, dbname: str) -> bool: return False
    async def register_endpoint(self, dbname: str) -> None: ...

    async def open_upstream(self, make: Callable[[], UpstreamSide]) -> UpstreamSide:
        upstream = make()
        upstream.connection_made(cast(asyncio.Transport, self.upstream_transport))
        return upstream


def test_client_side_runs_a_direct_tls_session_through_client_tls(
        certificate: tuple[Path, Path], server_context: ssl.SSLContext) -> None:
    async def session() -> None:
        server = StubServer(StubConfig(server_context))
        side, socket = ClientSide(server), StubTransport()
        side.connection_made(cast(asyncio.Transport, socket))
        client = Client(certificate)
        done, to_proxy = client.handshake_step(b"")
        while to_proxy:
            side.data_received(to_proxy)
            done, to_proxy = client.handshake_step(socket.take())
        assert done and not socket.closed
        side.data_received(client.send(wire.startup_packet(user="tls")))
        await asyncio.sleep(0)  # the upstream connection opens
        upstream = server.upstream_transport.take()
        [event] = startup.StartupNegotiation(tls=False).receive(upstream)
        assert isinstance(event, startup.Startup) and event.params["user"] == "tls"
        query = pq.message(b"Q", b"SELECT 1\x00")
        side.data_received(client.send(query))  # decrypted: never the plaintext fast path
        assert server.upstream_transport.take() == query
        assert side.upstream is not None
        notice = pq.message(b"N", b"SNOTICE\x00Mhello\x00\x00")
        side.upstream.data_received(notice)
        assert client.receive(socket.take()) == notice  # encrypted on the way out
        assert not socket.closed

    asyncio.run(session())
