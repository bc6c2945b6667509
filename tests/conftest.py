"""Shared fixtures: one real emulator for the whole test session.

The emulator is started as users start it, with the ``alloydb-ai-emulator serve`` command, in a
subprocess. By default it runs its embedded PostgreSQL 18. To run the suite against another
PostgreSQL:

* ``ALLOYDB_AI_EMULATOR_TEST_UPSTREAM=postgresql://user:pw@host:port/db`` fronts that server;
* ``ALLOYDB_AI_EMULATOR_TEST_PG_BIN=/usr/lib/postgresql/15/bin`` makes a throwaway cluster with
  those binaries (initdb, pg_ctl) and fronts it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

# CI draws the same examples on every run, so a submission passes or fails on its own code, not
# on the luck of the draw; a developer's run (no CI variable) explores new examples each time.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Emulator:
    host: str
    port: int
    direct_host: str
    direct_port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    @property
    def direct_dsn(self) -> str:
        return f"postgresql://postgres@{self.direct_host}:{self.direct_port}/postgres"

    def dsn_for(self, *, user: str = "postgres", dbname: str = "postgres",
                password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def connect(self, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(*extra_args: str, env: dict[str, str] | None = None,
                   timeout: float = 90.0) -> Emulator:
    """Start ``alloydb-ai-emulator serve`` and wait for its ready line."""
    port = free_port()
    cmd = [sys.executable, "-m", "emulator.cli", "serve", "--port", str(port), *extra_args]
    if "--upstream" not in extra_args and "--data-dir" not in extra_args:
        cmd.append("--ephemeral")
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    direct: tuple[str, int] | None = None
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator exited before it was ready:\n" + "".join(lines))
        lines.append(line)
        match = re.match(r"upstream: postgresql://[^@]*@([^:/]+):(\d+)/", line)
        if match:
            direct = (match.group(1), int(match.group(2)))
        if line.startswith("models:"):
            break
    else:
        proc.kill()
        raise RuntimeError("the emulator did not become ready:\n" + "".join(lines))
    if direct is None:
        direct = ("127.0.0.1", port)
    emulator = Emulator("127.0.0.1", port, direct[0], direct[1], proc, lines)
    _drain_in_background(proc, lines)
    return emulator


def _drain_in_background(proc: subprocess.Popen[str], lines: list[str]) -> None:
    import threading

    def drain() -> None:
        assert proc.stdout is not None
        lines.extend(proc.stdout)

    threading.Thread(target=drain, daemon=True).start()


def stop_emulator(emulator: Emulator) -> None:
    emulator.process.send_signal(signal.SIGTERM)
    try:
        emulator.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        emulator.process.kill()
        emulator.process.wait()


class ExternalCluster:
    """A throwaway cluster made with another PostgreSQL's binaries (e.g. Debian's 15)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="alloydb-emu-ext-"))
        self.port = free_port()
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "alloydb-emulator"],
                           capture_output=True, check=False)
            self.user = pwd.getpwnam("alloydb-emulator")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def _run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True,
                       user=self.user.pw_uid if self.user else None,
                       group=self.user.pw_gid if self.user else None)

    def start(self) -> str:
        data = self.dir / "data"
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l",
                  str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast",
                      "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _extension_files_in(extension_dir: Path) -> set[Path]:
    from emulator.extension_files import EXTENSION_NAMES

    return {p for name in EXTENSION_NAMES
            for p in (*extension_dir.glob(f"{name}--*.sql"), extension_dir / f"{name}.control")
            if p.exists()}


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    upstream = os.environ.get("ALLOYDB_AI_EMULATOR_TEST_UPSTREAM")
    pg_bin = os.environ.get("ALLOYDB_AI_EMULATOR_TEST_PG_BIN")
    cluster: ExternalCluster | None = None
    args: list[str] = []
    installed: set[Path] = set()
    if pg_bin:
        cluster = ExternalCluster(Path(pg_bin))
        upstream = cluster.start()
        extension_dir = Path(subprocess.run(
            [str(Path(pg_bin) / "pg_config"), "--sharedir"], capture_output=True, text=True,
            check=True).stdout.strip()) / "extension"
        before = _extension_files_in(extension_dir)
        install = subprocess.run(
            [sys.executable, "-m", "emulator.cli", "install-extension", "--pg-config",
             str(Path(pg_bin) / "pg_config")], capture_output=True, text=True, cwd=REPO,
            check=False)
        if install.returncode != 0:
            print("install-extension:", install.stdout, install.stderr)
        # removed again at the end: their presence changes what tests/e2e/upstream/ can test
        installed = _extension_files_in(extension_dir) - before
    if upstream:
        args = ["--upstream", upstream]
    emu = start_emulator(*args)
    if upstream:
        match = re.match(r"postgresql://[^@]*@([^:/]+):(\d+)", upstream)
        if match:
            emu.direct_host, emu.direct_port = match.group(1), int(match.group(2))
    try:
        yield emu
    finally:
        stop_emulator(emu)
        if cluster is not None:
            cluster.stop()
        for path in installed:
            path.unlink(missing_ok=True)


@pytest.fixture
def conn(emulator: Emulator) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit psycopg connection through the proxy."""
    with emulator.connect() as connection:
        yield connection
