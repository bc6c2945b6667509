"""md5 password authentication is relayed untouched (issue 2: trust, md5 and SCRAM-SHA-256):
the proxy neither knows nor needs the password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.emulators import Emulator, ExternalCluster, start_emulator, stop_emulator

PG15 = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="needs PostgreSQL 15 binaries")


@pytest.fixture(scope="module")
def md5_upstream() -> Iterator[Emulator]:
    cluster = ExternalCluster(PG15)
    dsn = cluster.start()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET password_encryption = 'md5'")
        conn.execute("CREATE ROLE md5_user LOGIN PASSWORD 'md5-secret'")
    (cluster.dir / "data" / "pg_hba.conf").write_text(
        "local all all trust\n"
        "host all md5_user 127.0.0.1/32 md5\n"
        "host all all 127.0.0.1/32 trust\n")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    emulator = start_emulator("--upstream", dsn)
    try:
        yield emulator
    finally:
        stop_emulator(emulator)
        cluster.stop()


def test_md5_with_the_right_password_gets_in(md5_upstream: Emulator) -> None:
    dsn = md5_upstream.dsn_for(user="md5_user", password="md5-secret")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("md5_user",)


def test_md5_with_a_wrong_password_is_refused_by_the_server(md5_upstream: Emulator) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(md5_upstream.dsn_for(user="md5_user", password="nope"))
