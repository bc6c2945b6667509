"""An upstream PostgreSQL that accepts only TLS connections, with SCRAM passwords: the proxy
speaks TLS to it (sslmode from the --upstream URL) and hides SCRAM-SHA-256-PLUS from clients,
whose own connection to the proxy is plaintext."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.certificates import self_signed_certificate
from tests.support.emulators import Emulator, ExternalCluster, start_emulator, stop_emulator

PG15 = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="needs PostgreSQL 15 binaries")
PASSWORD = "tls-only-secret"


def write_self_signed(directory: Path, owner: tuple[int, int] | None) -> None:
    for path in self_signed_certificate(directory):
        if owner is not None:
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
