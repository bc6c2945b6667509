"""psql (a subprocess, as people use it) through the proxy: meta-commands that drive COPY and
client-side variables, multi-statement lines, its default sslmode, and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from emulator.embedded import bin_dir

EMBEDDED_BIN = bin_dir()
PSQLS = {
    "debian": Path("/usr/bin/psql"),
    "embedded": EMBEDDED_BIN / "psql",
}


@pytest.fixture(params=sorted(PSQLS))
def psql(request: pytest.FixtureRequest) -> Path:
    path = PSQLS[request.param]
    if not path.exists():
        pytest.skip(f"no psql at {path}")
    return path


@pytest.fixture
def ssl_psql(psql: Path) -> Path:
    """A psql whose libpq has TLS (the embedded one is built without it and never asks)."""
    probe = subprocess.run([str(psql), "-X", "-d", "host=/nonexistent sslmode=require", "-c", ""],
                           capture_output=True, text=True, timeout=30, check=False)
    if "not compiled in" in probe.stderr:
        pytest.skip(f"{psql} is built without SSL support")
    return psql


def run_psql(psql: Path, conninfo: str, *args: str, stdin: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return subprocess.run(
        [str(psql), "-X", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-d", conninfo, *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def conninfo(emulator: Any, **extra: str) -> str:
    params = {"host": emulator.host, "port": str(emulator.port), "user": "postgres",
              "dbname": "postgres", **extra}
    return " ".join(f"{k}={v}" for k, v in params.items())


def test_script_with_copy_multi_statement_line_and_gset(
        psql: Path, emulator: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("".join(f"{i},name {i}\n" for i in range(1, 101)))
    target = tmp_path / "out.csv"
    script = f"""
DROP TABLE IF EXISTS psql_t; CREATE TABLE psql_t (id int, name text); SELECT 1 AS one;
\\copy psql_t FROM '{source}' WITH (FORMAT csv)
SELECT count(*) AS n, max(id) AS top FROM psql_t \\gset
\\echo counted :n rows, top :top
SELECT name FROM psql_t WHERE id = :top;
\\copy (SELECT * FROM psql_t ORDER BY id) TO '{target}' WITH (FORMAT csv)
DROP TABLE psql_t;
"""
    result = run_psql(psql, conninfo(emulator), "-At", stdin=script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "counted 100 rows, top 100" in lines
    assert "name 100" in lines
    assert target.read_text() == source.read_text()


def test_default_sslmode_prefer_falls_back_to_plaintext(ssl_psql: Path, emulator: Any) -> None:
    """libpq sends SSLRequest first; the proxy without TLS answers 'N' and the login goes on."""
    result = run_psql(ssl_psql, conninfo(emulator, sslmode="prefer"), "-At",
                      "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                      "-c", "\\conninfo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "f"
    assert "SSL connection" not in result.stdout


def test_sslmode_require_is_refused_by_a_proxy_without_tls(ssl_psql: Path,
                                                          emulator: Any) -> None:
    result = run_psql(ssl_psql, conninfo(emulator, sslmode="require"), "-c", "SELECT 1")
    assert result.returncode != 0
    assert "server does not support SSL" in result.stderr


def test_ctrl_c_cancels_the_running_query(psql: Path, emulator: Any,
                                          conn: psycopg.Connection[Any]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    proc = subprocess.Popen(
        [str(psql), "-X", "-d", conninfo(emulator, application_name="psql_ctrl_c"),
         "-c", "SELECT pg_sleep(30)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(2000):
            row = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'psql_ctrl_c' "
                "AND state = 'active' AND query LIKE '%pg_sleep%'").fetchone()
            if row:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "canceling statement due to user request" in stderr
    assert proc.returncode != 0


def test_an_error_in_a_script_is_reported_with_its_sqlstate(psql: Path, emulator: Any) -> None:
    result = run_psql(psql, conninfo(emulator), "-v", "VERBOSITY=verbose",
                      stdin="SELECT 1;\nSELECT * FROM psql_missing_table;\nSELECT 2;\n")
    assert result.returncode == 3
    assert "42P01" in result.stderr


def test_pg_dump_of_a_table_through_the_proxy(emulator: Any,
                                              conn: psycopg.Connection[Any]) -> None:
    pg_dump = EMBEDDED_BIN / "pg_dump"
    if not pg_dump.exists():
        pytest.skip("no pg_dump next to the embedded PostgreSQL")
    conn.execute("DROP TABLE IF EXISTS dump_t")
    conn.execute("CREATE TABLE dump_t AS SELECT g AS id, md5(g::text) AS h "
                 "FROM generate_series(1, 2000) g")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            [str(pg_dump), "-d", conninfo(emulator), "-t", "dump_t"],
            capture_output=True, text=True, timeout=60, env=env, check=False)
    finally:
        conn.execute("DROP TABLE dump_t")
    assert result.returncode == 0, result.stderr
    assert "COPY public.dump_t (id, h) FROM stdin;" in result.stdout
    assert result.stdout.count("\n2000\t") == 1
