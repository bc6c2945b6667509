"""`alloydb-ai-emulator env-init`: export lines for a running emulator."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from emulator.cli import main
from tests.support.emulators import Emulator
from tests.support.paths import REPO


@pytest.fixture
def listener() -> Iterator[int]:
    """Something that accepts TCP connections, standing for a running emulator."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def exports(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, line
        name, _, value = words[1].partition("=")
        values[name] = value
    return values


def test_prints_pg_variables_and_database_url(listener: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env-init", "--port", str(listener)]) == 0
    assert exports(capsys.readouterr().out) == {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(listener),
        "PGUSER": "postgres",
        "PGDATABASE": "postgres",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{listener}/postgres",
    }


def test_reads_the_same_variables_as_serve(listener: int, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ALLOYDB_AI_EMULATOR_HOST", "0.0.0.0")  # serve's "all addresses"
    monkeypatch.setenv("ALLOYDB_AI_EMULATOR_PORT", str(listener))
    monkeypatch.setenv("POSTGRES_PASSWORD", "s3cret:/@")
    assert main(["env-init"]) == 0
    values = exports(capsys.readouterr().out)
    assert values["PGHOST"] == "127.0.0.1" and values["PGPORT"] == str(listener)
    assert values["PGPASSWORD"] == "s3cret:/@"
    assert values["DATABASE_URL"] == (
        f"postgresql://postgres:s3cret%3A%2F%40@127.0.0.1:{listener}/postgres")
    assert psycopg.conninfo.conninfo_to_dict(values["DATABASE_URL"])["password"] == "s3cret:/@"


def test_ipv6_host_is_bracketed_in_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env-init", "--host", "::", "--port", "5488", "--no-check"]) == 0
    values = exports(capsys.readouterr().out)
    assert values["PGHOST"] == "::1"
    assert values["DATABASE_URL"] == "postgresql://postgres@[::1]:5488/postgres"


def test_fails_when_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        assert main(["env-init", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no emulator answers at 127.0.0.1:{port}" in captured.err


def test_eval_in_a_shell_points_libpq_at_the_emulator(emulator: Emulator) -> None:
    script = (f'eval "$({shlex.quote(sys.executable)} -m emulator.cli env-init '
              f'--port {emulator.port})" && psql -XAtc "SELECT 40 + 2" && '
              'psql -XAt "$DATABASE_URL" -c "SELECT current_user"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "ALLOYDB_AI_"))}
    env.pop("POSTGRES_PASSWORD", None)
    psql_dir = _psql_dir()
    env["PATH"] = psql_dir + os.pathsep + env.get("PATH", "")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "postgres"]


def _psql_dir() -> str:
    from emulator.embedded import bin_dir

    return str(bin_dir())
