"""An upstream PostgreSQL that accepts only TLS connections, with SCRAM passwords: the proxy
speaks TLS to it (sslmode from the --upstream URL) and hides SCRAM-SHA-256-PLUS from clients,
whose own connection to the proxy is plaintext."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.emulators import Emulator, ExternalCluster, start_emulator, stop_emulator

PG15 = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="needs PostgreSQL 15 binaries")
PASSWORD = "tls-only-secret"


def write_self_signed(directory: Path, owner: tuple[int, int] | None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    if owner is not None:
        for path in (directory / "server.crt", key_path):
            os.chown(path, *owner)


@pytest.fixture(scope="module")
def tls_only() -> Iterator[Emulator]:
    cluster = ExternalCluster(PG15)
    dsn = cluster.start()
    data = cluster.dir / "data"
    owner = (cluster.user.pw_uid, cluster.user.pw_gid) if cluster.user else None
    write_self_signed(data, owner)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET ssl = on")
        conn.execute("ALTER SYSTEM SET password_encryption = 'scram-sha-256'")
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(f"ALTER ROLE postgres PASSWORD '{PASSWORD}'")
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 127.0.0.1/32 reject\n")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    upstream = (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{cluster.port}/postgres"
                "?sslmode=require")
    emulator = start_emulator("--upstream", upstream)
    try:
        yield emulator
    finally:
        stop_emulator(emulator)
        cluster.stop()


def test_clients_reach_a_tls_only_server_through_the_proxy(tls_only: Emulator) -> None:
    dsn = tls_only.dsn_for(password=PASSWORD) + "?sslmode=disable"
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)  # the proxy's leg to the server is TLS


def test_a_wrong_password_is_still_refused_by_the_server(tls_only: Emulator) -> None:
    dsn = tls_only.dsn_for(password="wrong") + "?sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn)


def test_channel_binding_is_not_offered_across_the_proxy(tls_only: Emulator) -> None:
    # The server offers SCRAM-SHA-256-PLUS on its TLS leg; the proxy must not pass it on.
    dsn = tls_only.dsn_for(password=PASSWORD) + "?sslmode=disable&channel_binding=require"
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(dsn)
    with psycopg.connect(tls_only.dsn_for(password=PASSWORD) + "?channel_binding=prefer") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
