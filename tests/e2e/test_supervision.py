"""Faults of the PostgreSQL behind the proxy (emulator/supervisor.py): a killed embedded server
is restarted with every committed row, clients in between get a SQLSTATE, repeated crashes end
the emulator with a clear message; an unreachable --upstream gives 08006 until it returns; on
SIGTERM every client gets 57P01 before its socket closes."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from emulator import healthcheck
from emulator.embedded import EmbeddedPostgres, server_environment
from emulator.malloc import SERVER_MALLOC_TUNABLES
from tests.support import wire
from tests.support.emulators import Emulator, start_emulator, stop_emulator

RECOVERY_SECONDS = 45  # a bound against hangs, not a timing assertion


def postmaster_pid(emulator: Emulator) -> int:
    with emulator.connect() as conn:
        row = conn.execute("SELECT split_part(pg_read_file('postmaster.pid'), E'\\n', 1)::int"
                           ).fetchone()
    assert row is not None
    return int(str(row[0]))


def try_session(emulator: Emulator) -> str | None:
    """None when a session starts; otherwise the SQLSTATE of the FATAL the client got
    ("closed" for a close without one)."""
    with wire.connect(emulator.host, emulator.port) as sock:
        sock.sendall(wire.startup_packet())
        for reply in wire.read_until_closed_or_ready(sock):
            if reply.type == b"E":
                return reply.fields.get("C", "no SQLSTATE")
            if reply.type == b"Z":
                return None
    return "closed"


def wait_for_service(emulator: Emulator) -> set[str]:
    """Connect until a session starts again; the SQLSTATEs of the refusals meanwhile."""
    refusals: set[str] = set()
    deadline = time.monotonic() + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        refusal = try_session(emulator)
        if refusal is None:
            return refusals
        refusals.add(refusal)
        time.sleep(0.05)
    raise AssertionError(f"not serving again after {RECOVERY_SECONDS} s; refusals {refusals}")


def kill_and_wait_for_exit(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):  # until the supervisor has noticed (and reaped it)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    time.sleep(0.05)
                    continue
        except FileNotFoundError:
            return
        time.sleep(0.05)


def test_a_killed_postgresql_is_restarted_and_repeated_crashes_end_the_emulator() -> None:
    emu = start_emulator()
    try:
        with emu.connect() as conn:
            conn.execute("CREATE TABLE kept (i int)")
            conn.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
        kill_and_wait_for_exit(postmaster_pid(emu))
        refusals = wait_for_service(emu)
        # Every refusal had a SQLSTATE: never a bare close.
        assert refusals <= {"57P03", "08006"}, refusals
        with emu.connect() as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
        assert any("stopped unexpectedly (killed by signal SIGKILL)" in line
                   for line in emu.output)
        assert any("serves again" in line for line in emu.output)
        # Two more within the minute: the emulator gives up, with a message and a status.
        kill_and_wait_for_exit(postmaster_pid(emu))
        wait_for_service(emu)
        kill_and_wait_for_exit(postmaster_pid(emu))
        status = emu.process.wait(timeout=RECOVERY_SECONDS)
        assert status == 3
        time.sleep(0.2)  # the output drain thread
        assert any("stopped 3 times within 60 s; giving up" in line for line in emu.output)
    finally:
        if emu.process.poll() is None:
            stop_emulator(emu)


def test_an_unreachable_upstream_gives_08006_and_service_resumes_when_it_returns() -> None:
    data = Path(tempfile.mkdtemp(prefix="alloydb-emu-upstream-"))
    data.chmod(0o755)  # the server may run as a user of its own (as root: embedded.py)
    server = EmbeddedPostgres(data / "pgdata")
    server.prepare()
    server.launch()
    emu: Emulator | None = None
    try:
        server.wait_ready()
        emu = start_emulator("--upstream", f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
        with emu.connect() as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS one")
        assert server.pid is not None
        os.kill(server.pid, signal.SIGINT)  # a fast shutdown; the data stays
        while server.exit_status() is None:
            time.sleep(0.05)
        assert try_session(emu) == "08006"
        # The container's health check fails meanwhile (pg_isready would pass: see its module).
        problem = healthcheck.check(emu.host, emu.port)
        assert problem is not None and problem.startswith("08006")
        server.launch()
        server.wait_ready()
        with emu.connect() as conn:
            assert conn.execute("SELECT one FROM t").fetchone() == (1,)
        assert healthcheck.check(emu.host, emu.port) is None
    finally:
        if emu is not None:
            stop_emulator(emu)
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_on_sigterm_every_client_gets_57p01_before_the_socket_closes() -> None:
    emu = start_emulator()
    idle, _ = wire.open_session(emu.host, emu.port)
    busy, _ = wire.open_session(emu.host, emu.port)
    try:
        wire.simple_query(busy, "BEGIN")
        emu.process.send_signal(signal.SIGTERM)
        for sock in (idle, busy):
            replies = wire.read_until_closed(sock)
            errors = [r.fields for r in replies if r.type == b"E"]
            assert errors and errors[-1]["C"] == "57P01" and errors[-1]["S"] == "FATAL", replies
        assert emu.process.wait(timeout=30) == 0
    finally:
        idle.close()
        busy.close()
        if emu.process.poll() is None:
            stop_emulator(emu)


def test_the_embedded_server_runs_with_the_malloc_tunables(emulator: Emulator) -> None:
    # The session's emulator inherits this process's environment: a GLIBC_TUNABLES set here
    # (the user's own) wins over the server's default.
    pid = postmaster_pid(emulator)
    with open(f"/proc/{pid}/environ", "rb") as environ:
        variables = dict(item.split(b"=", 1) for item in environ.read().split(b"\0") if b"=" in item)
    expected = os.environ.get("GLIBC_TUNABLES", SERVER_MALLOC_TUNABLES).encode()
    # glibc reads the variable in place and may leave only its first setting there (it cuts the
    # string at the first ':' while parsing): a non-empty prefix of what the server was given.
    found = variables.get(b"GLIBC_TUNABLES", b"")
    assert found and expected.startswith(found), (found, expected)


def test_a_users_glibc_tunables_win_over_the_servers() -> None:
    assert server_environment({"PATH": "/bin"}) == {
        "PATH": "/bin", "GLIBC_TUNABLES": SERVER_MALLOC_TUNABLES}
    mine = "glibc.malloc.arena_max=2"
    assert server_environment({"GLIBC_TUNABLES": mine})["GLIBC_TUNABLES"] == mine
