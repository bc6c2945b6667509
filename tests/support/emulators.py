"""Emulators for the tests: ``alloydb-ai-emulator serve`` started as users start it, in a child
process (``emulator.pytest_plugin.EmulatorProcess``, the pytest plugin's own), and throwaway
clusters of another PostgreSQL's binaries for it to front.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from emulator.pytest_plugin import EmulatorProcess


@dataclass
class Emulator:
    """A started emulator: the proxy's address, its PostgreSQL's (``direct_*``), its process."""

    host: str
    port: int
    direct_host: str
    direct_port: int
    runner: EmulatorProcess = field(repr=False)
    process: subprocess.Popen[str] = field(init=False, repr=False)
    output: list[str] = field(init=False, repr=False)  # what it printed, read on in the background

    def __post_init__(self) -> None:
        assert self.runner.process is not None, "start the runner first"
        self.process = self.runner.process
        self.output = self.runner.output

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


def start_emulator(*extra_args: str, env: Mapping[str, str] | None = None) -> Emulator:
    """Start ``alloydb-ai-emulator serve`` (``--ephemeral`` unless given ``--upstream`` or
    ``--data-dir``; no call inspector unless given ``--inspector-port``) and wait for its
    start-up lines."""
    runner = EmulatorProcess(list(extra_args), env=env, inspector=False)
    started = runner.start()
    emulator = Emulator(started.host, started.port, started.host, started.port, runner)
    direct = re.match(r"postgresql://[^@]*@([^:/]+):(\d+)/", runner.upstream_url or "")
    if direct:
        emulator.direct_host, emulator.direct_port = direct.group(1), int(direct.group(2))
    return emulator


def stop_emulator(emulator: Emulator) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within 30 s."""
    emulator.runner.stop()


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


def extension_files_in(extension_dir: Path) -> set[Path]:
    """The project's extension files present in a PostgreSQL's extension directory (with the
    scripts that name pgvector's AlloyDB versions)."""
    from emulator.extension_files import EXTENSION_NAMES, pgvector_label_files

    ours = {p for name in EXTENSION_NAMES
            for p in (*extension_dir.glob(f"{name}--*.sql"), extension_dir / f"{name}.control")
            if p.exists()}
    return ours | {extension_dir / name for name in pgvector_label_files(extension_dir)
                   if (extension_dir / name).exists()}
