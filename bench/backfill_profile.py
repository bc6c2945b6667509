"""Profile of the backfill: where one 10,000-row warm-up's time goes, per process.

Not a test. Starts `alloydb-ai-emulator fake-models --fake-latency-ms 50` and an emulator in
live mode against it (as bench/backfill.py does; with `--fake`, only an emulator whose fakes
answer in process after 50 ms, with its default response cache), loads the rows once, then runs
the backfill UPDATE `--runs` times, each in a transaction that is rolled back. For each run it prints the
wall time, the CPU time (utime + stime) of the PostgreSQL backend, the emulator and the fake
provider, and the extension's functions by self time (`track_functions = all`; wall-clock
milliseconds, so waiting counts too: `_dblink_get_result` is the wait for the engine).

    python bench/backfill_profile.py [--fake] [--runs 1] [--rows 10000] [--py-spy FILE]
                                     [--perf FILE] [--remote] [--dense]

`--py-spy FILE` records the emulator (raw format, `--native`); `--perf FILE` records the
backend with `perf record --call-graph dwarf` (FILE.0, FILE.1, ... per run; read them with
`perf report -i FILE.0 --no-children`); `--perf-all FILE` records every process during the
statement, without call graphs (`perf report -i FILE.0 --sort pid,sym`: the engine's COPY and
INSERT backends are the postgres pids other than the session's, printed). Later runs in one invocation see the rolled-back rows
of the earlier ones in the warm cache (dead tuples until a vacuum), which slows their
lookups: compare first runs. In fake mode the later runs are also answered from the response
cache. With `--remote` the provider answers from memory (bench/backfill.py's remote mode: primed
with the same batches, its CPU out of the way).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg

from bench.backfill import BACKFILL, MODEL, FakeModels, load, prime
from bench.proc import cpu_seconds
from tests.support.emulators import start_emulator, stop_emulator

FUNCTIONS = ("SELECT funcname, calls, total_time, self_time FROM pg_stat_xact_user_functions "
             "ORDER BY self_time DESC LIMIT 30")


def recorder(command: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the statement starts
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--fake", action="store_true", help="the fakes in process, no provider")
    parser.add_argument("--remote", action="store_true",
                        help="a provider answering from memory, primed (its CPU out of the way)")
    parser.add_argument("--dense", action="store_true",
                        help="the provider writes dense 17-digit numbers (fake-models "
                             "--dense-embeddings), as real providers do")
    parser.add_argument("--py-spy", metavar="FILE")
    parser.add_argument("--perf", metavar="FILE")
    parser.add_argument("--perf-all", metavar="FILE")
    args = parser.parse_args()

    fakes = None if args.fake else FakeModels(args.latency_ms, 512 if args.remote else 0,
                                              args.dense)
    if fakes is None:
        emulator = start_emulator("--fake-latency-ms", f"{args.latency_ms:g}",
                                  "--log-level", "warning")
    else:
        emulator = start_emulator(
            "--models", "live", "--vertex-base-url", f"http://127.0.0.1:{fakes.port}",
            "--google-project", "bench", "--cache-size", "0", "--log-level", "warning")
    spy = None
    try:
        with emulator.connect() as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_profile")
            admin.execute("CREATE DATABASE bench_profile")
        dsn = emulator.dsn_for(dbname="bench_profile")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION google_ml_integration")
            conn.execute("CREATE EXTENSION vector")
            conn.execute(f"UPDATE google_ml.models SET auth_type = NULL WHERE id = '{MODEL}'")
            if args.remote:
                prime(dsn, args.rows)
            load(conn, "docs", args.rows, "on")
        if args.py_spy:
            spy = recorder(["py-spy", "record", "--rate", "200", "--format", "raw",
                            "--output", args.py_spy, "--pid", str(emulator.process.pid)])
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        for run in range(args.runs):
            profile_run(dsn, run, args, emulator.process.pid,
                        None if fakes is None else fakes.proc.pid)
    finally:
        stop(spy)
        stop_emulator(emulator)
        if fakes is not None:
            fakes.close()


def profile_run(dsn: str, run: int, args: argparse.Namespace, emulator_pid: int,
                provider_pid: int | None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pids = {"backend": int(row[0]), "emulator": emulator_pid}
        if provider_pid is not None:
            pids["provider"] = provider_pid
        conn.execute("SET track_functions = 'all'")
        conn.execute("BEGIN")
        perf = None
        if args.perf:
            perf = recorder(["perf", "record", "-F", "499", "-e", "cpu-clock", "--call-graph",
                             "dwarf,16384", "-o", f"{args.perf}.{run}", "-p", str(pids["backend"])])
        elif args.perf_all:
            perf = recorder(["perf", "record", "-a", "-F", "999", "-e", "cpu-clock",
                             "-o", f"{args.perf_all}.{run}"])
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        updated = conn.execute(BACKFILL.format(table="docs")).rowcount
        elapsed = time.perf_counter() - started
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        stop(perf)
        functions = conn.execute(FUNCTIONS).fetchall()
        conn.execute("ROLLBACK")
    print(f"run {run}: {updated} rows in {elapsed:.2f} s; CPU " + ", ".join(
        f"{name} {seconds:.2f} s" for name, seconds in cpu.items())
        + f"; load average {os.getloadavg()[0]:.2f}")
    for name, calls, total, self_ms in functions:
        print(f"    {name:<46} {calls:>6} calls  total {total:8.1f} ms  self {self_ms:8.1f} ms")


if __name__ == "__main__":
    main()
