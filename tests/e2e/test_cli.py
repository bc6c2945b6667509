"""The command a person types: ready line, clean shutdown, plain errors, kept data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.emulators import Emulator, free_port, start_emulator, stop_emulator
from tests.support.paths import REPO

CLI = [sys.executable, "-m", "emulator.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*CLI, *args], check=False, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def postgres_processes_for(data_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eww", "-o", "args"], check=False, capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines() if "postgres" in line and str(data_dir) in line]


def test_port_in_use_is_reported_plainly(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-made"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--data-dir", str(data_dir), "--port", str(port))
    assert result.returncode == 2
    assert result.stderr == (
        f"alloydb-ai-emulator: cannot listen on 127.0.0.1:{port}: Address already in use; is an "
        "emulator already running there? Stop it, or choose another --port\n")
    assert not data_dir.exists(), "said before the embedded PostgreSQL was prepared"


def test_unusable_data_dir_is_reported_plainly(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = run_cli("serve", "--data-dir", str(not_a_dir), "--port", str(free_port()))
    assert result.returncode != 0
    assert "not a directory" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_data_directory_it_cannot_write_is_reported_plainly() -> None:
    """An OSError while preparing the data directory (as a user: a directory of another user's;
    here, as root too: a pg_hba.conf that is a directory) is a message, not a traceback."""
    parent = Path(tempfile.mkdtemp(prefix="alloydb-emu-cli-"))
    parent.chmod(0o755)  # as root, the server's user must be able to enter it
    data_dir = parent / "pgdata"
    (data_dir / "pg_hba.conf").mkdir(parents=True)
    (data_dir / "PG_VERSION").write_text("18\n")
    try:
        result = run_cli("serve", "--data-dir", str(data_dir), "--port", str(free_port()))
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    assert result.returncode == 2
    assert f"cannot use the data directory {data_dir}: " in result.stderr
    assert "choose another with --data-dir, or --ephemeral" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_fake_models_on_a_port_in_use_is_reported_plainly() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("fake-models", "--port", str(port), timeout=30)
    assert result.returncode == 2
    assert f"alloydb-ai-emulator: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("flags", "says"), [
    (["--models", "replay", "--cassette", "/nonexistent/session.jsonl"], "record it first"),
    (["--models", "replay"], "needs --cassette"),
    (["--models", "live", "--cassette", "x.jsonl"], "--cassette goes with"),
    (["--inspector-port", "0", "--inspector-max-calls", "0"], "max_calls"),
])
def test_bad_cassette_and_inspector_flags_are_reported_plainly(flags: list[str], says: str) -> None:
    result = run_cli("serve", "--ephemeral", "--port", str(free_port()), *flags)
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("command", "flag", "content", "says"), [
    ("serve", "--secrets-file", None, "--secrets-file: cannot read "),
    ("serve", "--secrets-file", "not json", "--secrets-file: cannot read "),
    ("serve", "--secrets-file", '["a list"]', "must hold a JSON object of secret paths"),
    ("serve", "--fake-rules", None, "cannot read rules file "),
    ("fake-models", "--fake-rules", "{not json", "is not valid"),
])
def test_a_file_flag_that_cannot_be_read_stops_the_start(
        tmp_path: Path, command: str, flag: str, content: str | None, says: str) -> None:
    """Said at start-up, not by the first model call that needs the file."""
    file = tmp_path / "given.json"
    if content is not None:
        file.write_text(content)
    ephemeral = ["--ephemeral"] if command == "serve" else []  # should it start after all
    result = run_cli(command, *ephemeral, "--port", str(free_port()), flag, str(file), timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith(f"alloydb-ai-emulator: {flag}: ")
    assert says in result.stderr and str(file) in result.stderr
    assert "ready:" not in result.stdout and "Traceback" not in result.stderr


def test_unreachable_upstream_is_reported_plainly() -> None:
    result = run_cli("serve", "--upstream", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
                     "--port", str(free_port()))
    assert result.returncode != 0
    assert "cannot connect to the --upstream PostgreSQL: " in result.stderr
    assert "Connection refused" in result.stderr


def test_an_upstream_that_refuses_the_login_is_not_called_unreachable(emulator: Emulator) -> None:
    """It was 'the upstream PostgreSQL is unreachable: ... role "nobody" does not exist'."""
    result = run_cli("serve", "--upstream",
                     f"postgresql://nobody@{emulator.direct_host}:{emulator.direct_port}/postgres",
                     "--port", str(free_port()))
    assert result.returncode == 2
    assert "unreachable" not in result.stderr
    assert "cannot connect to the --upstream PostgreSQL: " in result.stderr
    assert 'role "nobody" does not exist' in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_port_comes_from_the_environment() -> None:
    port = free_port()
    emulator = start_emulator(env={"ALLOYDB_AI_EMULATOR_PORT": str(port)})
    try:
        # start_emulator passes --port too; the flag wins, so check the variable alone here.
        assert emulator.port != 0
    finally:
        stop_emulator(emulator)
    env = dict(os.environ, ALLOYDB_AI_EMULATOR_PORT=str(port))
    proc = subprocess.Popen([*CLI, "serve", "--ephemeral"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready: ") and f":{port}/" in line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def emulator_with_a_kept_row(value: str) -> tuple[Emulator, Path]:
    """``serve`` on a new persistent data directory holding table ``kept`` with one row."""
    # Not pytest's tmp_path: as root, PostgreSQL runs as another user, who must be able to
    # enter every parent directory (the emulator says so plainly otherwise).
    parent = Path(tempfile.mkdtemp(prefix="alloydb-emu-cli-"))
    parent.chmod(0o755)
    data_dir = parent / "pgdata"
    emulator = start_emulator("--data-dir", str(data_dir))
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES (%s)", (value,))
    assert postgres_processes_for(data_dir)
    return emulator, data_dir


def assert_restarts_with_the_row(data_dir: Path, value: str) -> None:
    """A new ``serve`` on ``data_dir`` starts and still has the row; then everything is gone."""
    second = start_emulator("--data-dir", str(data_dir))
    try:
        with psycopg.connect(second.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(value,)]
    finally:
        stop_emulator(second)
    assert postgres_processes_for(data_dir) == []
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_sigterm_stops_the_embedded_server_and_keeps_the_data() -> None:
    first, data_dir = emulator_with_a_kept_row("still here")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    assert postgres_processes_for(data_dir) == []
    assert_restarts_with_the_row(data_dir, "still here")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_the_emulator_leaves_no_server_behind() -> None:
    first, data_dir = emulator_with_a_kept_row("committed before the kill")
    first.process.kill()
    first.process.wait(timeout=30)
    deadline = time.monotonic() + 60
    while postgres_processes_for(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = postgres_processes_for(data_dir)
    if orphans:  # do not leave them to the rest of the suite
        subprocess.run(["pkill", "-INT", "-f", f"-D {data_dir} "], check=False)
    assert orphans == []

    # the data directory is free again (no "in use by another PostgreSQL server"), data kept
    assert_restarts_with_the_row(data_dir, "committed before the kill")


def test_sigint_exits_cleanly() -> None:
    emulator = start_emulator()
    emulator.process.send_signal(signal.SIGINT)
    assert emulator.process.wait(timeout=30) == 0
    assert "Traceback" not in "".join(emulator.output)


def test_install_extension_reports_a_bad_pg_config() -> None:
    result = run_cli("install-extension", "--pg-config", "/nonexistent/pg_config")
    assert result.returncode != 0
    assert "pg_config" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--tls-cert"])
def test_half_a_tls_configuration_is_refused(flag: str, tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    result = run_cli("serve", "--ephemeral", "--port", str(free_port()), flag, str(cert))
    assert result.returncode != 0
    assert "--tls-cert and --tls-key go together" in result.stderr
