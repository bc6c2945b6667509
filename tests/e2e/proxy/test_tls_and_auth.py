"""TLS termination and password authentication through the proxy, on extra emulators:
one with ``--tls-cert/--tls-key``, one that also requires a password (SCRAM relayed to the
embedded server untouched)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.support import wire
from tests.support.certificates import self_signed_certificate
from tests.support.databases import cancel_while_sleeping
from tests.support.emulators import Emulator, start_emulator, stop_emulator

PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_emulator(certificate: tuple[Path, Path]) -> Iterator[Emulator]:
    cert, key = certificate
    emulator = start_emulator("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        yield emulator
    finally:
        stop_emulator(emulator)


@pytest.fixture(scope="module")
def password_emulator(certificate: tuple[Path, Path]) -> Iterator[Emulator]:
    cert, key = certificate
    emulator = start_emulator("--password", PASSWORD, "--tls-cert", str(cert),
                              "--tls-key", str(key))
    try:
        yield emulator
    finally:
        stop_emulator(emulator)


def connect(emulator: Emulator, **kwargs: Any) -> psycopg.Connection[Any]:
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("connect_timeout", 10)
    return psycopg.connect(emulator.dsn, **kwargs)


# -- TLS -------------------------------------------------------------------------------------


def test_sslmode_require_gives_a_tls_session(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 'over tls'").fetchone() == ("over tls",)


def test_sslmode_verify_full_accepts_the_configured_certificate(
        tls_emulator: Emulator, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    with connect(tls_emulator, sslmode="verify-full", sslrootcert=str(cert)) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 'verified'").fetchone() == ("verified",)


def test_sslmode_disable_still_works_on_a_tls_proxy(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="disable") as conn:
        assert not conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_ten_megabyte_row_over_tls_both_directions(tls_emulator: Emulator) -> None:
    value = "t" * (10 * 1024 * 1024)
    with connect(tls_emulator, sslmode="require") as conn:
        assert conn.execute("SELECT %s::text", (value,)).fetchone() == (value,)


def test_copy_and_pipeline_over_tls(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="require") as conn:
        with conn.cursor().copy("COPY (SELECT generate_series(1, 20000)) TO STDOUT") as copy:
            out = b"".join(bytes(c) for c in copy)
        assert out.count(b"\n") == 20000
        with conn.pipeline():
            cursors = [conn.execute("SELECT %s::int", (i,)) for i in range(50)]
        assert [c.fetchone() for c in cursors] == [(i,) for i in range(50)]


def test_cancel_over_tls_stops_the_query(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="require") as conn, \
            connect(tls_emulator, sslmode="require") as observer:
        cancel_while_sleeping(conn, observer, lambda: conn.cancel_safe(timeout=10))
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_asyncpg_with_ssl_require(tls_emulator: Emulator) -> None:
    async def main() -> Any:
        conn = await asyncpg.connect(tls_emulator.dsn, ssl="require")
        try:
            return await conn.fetchval("SELECT $1::text", "asyncpg over tls")
        finally:
            await conn.close()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == "asyncpg over tls"


def test_plaintext_bytes_after_ssl_request_in_the_same_packet_are_refused(
        tls_emulator: Emulator) -> None:
    """CVE-2021-23214: nothing may be accepted between SSLRequest and the handshake."""
    with wire.connect(tls_emulator.host, tls_emulator.port) as sock:
        sock.sendall(wire.ssl_request() + wire.startup_packet())
        replies = wire.read_until_closed(sock)
    assert [r.type for r in replies] == [b"E"]
    assert (replies[0].fields["S"], replies[0].fields["C"]) == ("FATAL", "08P01")


def test_plaintext_startup_after_the_s_answer_gets_no_session(tls_emulator: Emulator) -> None:
    with wire.connect(tls_emulator.host, tls_emulator.port) as sock:
        sock.sendall(wire.ssl_request())
        assert wire.recv_exactly(sock, 1) == b"S"
        sock.sendall(wire.startup_packet())
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    assert b"Z" not in received[:1]  # never an authenticated session
    assert not received.startswith(b"R")


def test_a_failed_handshake_does_not_disturb_a_tls_session(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="require") as conn:
        with wire.connect(tls_emulator.host, tls_emulator.port) as sock:
            sock.sendall(wire.ssl_request())
            assert wire.recv_exactly(sock, 1) == b"S"
            sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        assert conn.execute("SELECT 'fine'").fetchone() == ("fine",)


def test_tls_session_from_the_ssl_module_directly(tls_emulator: Emulator) -> None:
    """The handshake and the first message arrive back to back; the proxy must not mistake
    the StartupMessage for bytes sent before the handshake."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for _ in range(20):
        raw = socket.create_connection((tls_emulator.host, tls_emulator.port), timeout=15)
        raw.sendall(wire.ssl_request())
        assert wire.recv_exactly(raw, 1) == b"S"
        with context.wrap_socket(raw) as sock:
            sock.settimeout(15)
            sock.sendall(wire.startup_packet() + wire.query("SELECT 'hi'"))
            replies = wire.read_until_ready(sock)
            assert replies[-1].type == b"Z"
            assert wire.data_values(wire.read_until_ready(sock)) == [[b"hi"]]


def test_ssl_request_inside_tls_is_refused_not_answered_s(tls_emulator: Emulator) -> None:
    """No TLS inside TLS: PostgreSQL answers a second SSLRequest with a FATAL error."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((tls_emulator.host, tls_emulator.port), timeout=15)
    raw.sendall(wire.ssl_request())
    assert wire.recv_exactly(raw, 1) == b"S"
    with context.wrap_socket(raw) as sock:
        sock.settimeout(15)
        sock.sendall(wire.ssl_request())
        replies = wire.read_until_closed(sock)
    assert [r.type for r in replies] == [b"E"]
    assert replies[0].fields["S"] == "FATAL"


# -- passwords -------------------------------------------------------------------------------


def test_wrong_password_fails_with_28p01(password_emulator: Emulator) -> None:
    async def main() -> None:
        await asyncpg.connect(password_emulator.dsn_for(password="wrong"))

    with pytest.raises(asyncpg.InvalidPasswordError) as caught:
        asyncio.run(asyncio.wait_for(main(), 30))
    assert caught.value.sqlstate == "28P01"


def test_wrong_password_fails_for_psycopg_too(password_emulator: Emulator) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(password_emulator.dsn_for(password="wrong"), sslmode="disable",
                        connect_timeout=10)


def test_no_password_is_refused(password_emulator: Emulator) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(password_emulator.dsn, sslmode="disable", connect_timeout=10,
                        passfile="/nonexistent")


def test_right_password_works_over_plaintext_with_scram(password_emulator: Emulator) -> None:
    with psycopg.connect(password_emulator.dsn_for(password=PASSWORD), sslmode="disable",
                         autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_plaintext_client_is_offered_scram_without_channel_binding(
        password_emulator: Emulator) -> None:
    """libpq refuses SCRAM-SHA-256-PLUS over a connection without TLS."""
    with wire.connect(password_emulator.host, password_emulator.port) as sock:
        sock.sendall(wire.startup_packet())
        reply = wire.read_message(sock)
    assert reply.type == b"R"
    assert reply.body[:4] == (10).to_bytes(4, "big")  # AuthenticationSASL
    mechanisms = [m for m in reply.body[4:].split(b"\x00") if m]
    assert mechanisms == [b"SCRAM-SHA-256"]


def test_right_password_works_over_tls(password_emulator: Emulator) -> None:
    with psycopg.connect(password_emulator.dsn_for(password=PASSWORD), sslmode="require",
                         autocommit=True, connect_timeout=10) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_right_password_works_for_asyncpg(password_emulator: Emulator) -> None:
    async def main() -> Any:
        conn = await asyncpg.connect(password_emulator.dsn_for(password=PASSWORD), ssl=False)
        try:
            return await conn.fetchval("SELECT 'scram ok'")
        finally:
            await conn.close()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == "scram ok"


def test_cancel_with_a_password_protected_server(password_emulator: Emulator) -> None:
    with psycopg.connect(password_emulator.dsn_for(password=PASSWORD), sslmode="disable",
                         autocommit=True) as conn, \
            psycopg.connect(password_emulator.dsn_for(password=PASSWORD), sslmode="disable",
                            autocommit=True) as observer:
        cancel_while_sleeping(conn, observer, conn.cancel)


# -- direct TLS (PostgreSQL 17+ clients, sslnegotiation=direct) -----------------------------

needs_libpq_17 = pytest.mark.skipif(psycopg.pq.version() < 170000,
                                    reason="sslnegotiation=direct needs libpq 17+")


@needs_libpq_17
def test_direct_tls_gives_a_tls_session_without_ssl_request(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="require", sslnegotiation="direct") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 'direct'").fetchone() == ("direct",)
        big = conn.execute("SELECT repeat('x', 3000000)").fetchone()
        assert big is not None and len(big[0]) == 3_000_000


@needs_libpq_17
def test_direct_tls_carries_model_calls(tls_emulator: Emulator) -> None:
    with connect(tls_emulator, sslmode="require", sslnegotiation="direct") as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        row = conn.execute("SELECT array_length(embedding('text-embedding-005', 'tls'), 1)")
        assert row.fetchone() == (768,)


def test_direct_tls_without_alpn_is_refused(tls_emulator: Emulator) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # no ALPN set: PostgreSQL refuses such a client too
    with wire.connect(tls_emulator.host, tls_emulator.port) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(wire.startup_packet())
                answer = tls.recv(1)
        except (ssl.SSLError, ConnectionError):
            answer = b""
    assert answer == b""  # closed, never answered


def test_direct_tls_on_a_proxy_without_tls_closes(emulator: Emulator) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["postgresql"])
    with wire.connect(emulator.host, emulator.port) as raw, pytest.raises(
            (ssl.SSLError, ConnectionError, OSError)):
        context.wrap_socket(raw, server_hostname="localhost")
