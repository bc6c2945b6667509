"""Benchmark: `SELECT count(*) FROM reviews WHERE ai.if('Is this positive? ' || body)` over 1,000
rows against a Gemini endpoint with 50 ms of latency per HTTP request, warm-up on and off.

Not a test. It starts the fake model server (emulator/fakes/server.py) with `--latency-ms` of
latency, and two emulators in live mode pointed at it (`--models live --vertex-base-url
http://127.0.0.1:P --google-project bench`), one with the warm-up on and one with it off, and
counts the HTTP requests the fake server received. With the warm-up off every row is one request
in turn, so that run is capped at `--off-rows` rows and extrapolated to 1,000 (it says so).

    python bench/ai_if.py [--rows 1000] [--off-rows 200] [--latency-ms 50] [--repeat N]
                          [--py-spy FILE]

With `--off-rows 0` the warm-up-off run is skipped. Each run also prints the CPU time (utime +
stime) the emulator process and the statement's PostgreSQL backend spent on it: on a shared
machine the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg

from bench.proc import cpu_seconds
from emulator.fakes.knobs import FakeKnobs
from emulator.fakes.server import FakeModelServer
from tests.support.emulators import Emulator, start_emulator, stop_emulator

QUERY = "SELECT count(*) FROM reviews WHERE ai.if('Is this positive? ' || body)"
WORDS = ("great", "terrible", "late", "lovely", "broken", "fine", "excellent", "awful", "slow", "nice")


class TimedFakeServer(FakeModelServer):
    """The fake server, noting when each request arrived and when its answer was ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: list[float] = []
        self.answers: list[float] = []

    async def _answer(self, *args: Any, **kwargs: Any) -> bytes | None:
        self.arrivals.append(time.perf_counter())
        try:
            return await super()._answer(*args, **kwargs)
        finally:
            self.answers.append(time.perf_counter())


class FakeServerThread:
    """The fake model server on an event loop of its own thread."""

    def __init__(self, latency: float) -> None:
        self.loop = asyncio.new_event_loop()
        # The fake server logs a spurious traceback for each keep-alive connection the engine
        # closes at shutdown; they say nothing about the benchmark.
        self.loop.set_exception_handler(lambda loop, context: None)
        self.server = TimedFakeServer(FakeKnobs(latency=latency), keep_requests=1_000_000)
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.port = asyncio.run_coroutine_threadsafe(
            self.server.start("127.0.0.1", 0), self.loop).result(10)

    def count(self) -> int:
        return len(self.server.received)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def prepare(emulator: Emulator, rows: int) -> str:
    with emulator.connect() as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_ai_if")
        conn.execute("CREATE DATABASE bench_ai_if")
    dsn = emulator.dsn_for(dbname="bench_ai_if")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")
        # The fake server needs no token: no IAM auth for the benchmark's model.
        conn.execute("UPDATE google_ml.models SET auth_type = NULL WHERE id = 'gemini-2.5-flash-lite'")
        conn.execute("CREATE TABLE reviews (id int PRIMARY KEY, body text)")
        conn.execute(
            "INSERT INTO reviews SELECT i, 'review ' || i || ': ' || (%s::text[])[1 + i %% 10] "
            "|| ' product, ' || (%s::text[])[1 + (i / 10) %% 10] || ' delivery' "
            "FROM generate_series(1, %s) AS i", [list(WORDS), list(WORDS), rows])
    return dsn


@dataclass
class Timing:
    count: int
    elapsed: float
    engine_cpu: float  # the emulator process (proxy + engine)
    backend_cpu: float  # the PostgreSQL backend that ran the statement
    first_request: float = 0.0  # seconds from the statement's start to the first request
    last_answer: float = 0.0  # seconds from the statement's start to the last answer


def phases(timing: Timing, server: TimedFakeServer, started: float, before: int) -> None:
    arrivals, answers = server.arrivals[before:], server.answers[before:]
    if arrivals and answers:
        timing.first_request = min(arrivals) - started
        timing.last_answer = max(answers) - started


def run(dsn: str, limit: int | None, emulator_pid: int, server: TimedFakeServer) -> Timing:
    query = QUERY if limit is None else QUERY.replace(
        "FROM reviews", f"FROM reviews WHERE id <= {limit} AND", 1).replace("WHERE ai.if", "ai.if")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        engine_before, backend_before = cpu_seconds(emulator_pid), cpu_seconds(backend[0])
        seen = len(server.arrivals)
        started = time.perf_counter()
        row = conn.execute(query).fetchone()
        elapsed = time.perf_counter() - started
        engine_cpu = cpu_seconds(emulator_pid) - engine_before
        backend_cpu = cpu_seconds(backend[0]) - backend_before
    assert row is not None
    timing = Timing(int(row[0]), elapsed, engine_cpu, backend_cpu)
    phases(timing, server, started, seen)
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--off-rows", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the warm-up-on statement this many times (each line printed)")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="record the emulator with py-spy (raw, --native) during the warm-up-on runs")
    args = parser.parse_args()

    fake = FakeServerThread(args.latency_ms / 1000)
    base = ["--models", "live", "--vertex-base-url", f"http://127.0.0.1:{fake.port}",
            "--google-project", "bench", "--cache-size", "0"]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"query: {QUERY}")
    print(f"provider: fake Gemini over HTTP, {args.latency_ms:g} ms per request")
    results = {}
    modes: list[tuple[str, int | None]] = [("on", None)]
    if args.off_rows > 0:
        modes.append(("off", args.off_rows))
    for warmup, limit in modes:
        emulator = start_emulator(*base, "--warmup", warmup)
        spy = None
        try:
            dsn = prepare(emulator, args.rows)
            if args.py_spy and limit is None:
                spy = subprocess.Popen(["py-spy", "record", "--native", "--rate", "250",
                                        "--format", "raw", "--output", args.py_spy,
                                        "--pid", str(emulator.process.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            timings = []
            for _ in range(args.repeat if limit is None else 1):
                before = fake.count()
                timing = run(dsn, limit, emulator.process.pid, fake.server)
                timings.append((timing, fake.count() - before))
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            stop_emulator(emulator)
        rows = args.rows if limit is None else min(limit, args.rows)
        for timing, requests in timings:
            line = (f"warm-up {warmup:>3}: {rows} rows, count={timing.count}, "
                    f"{timing.elapsed:.2f} s, {requests} HTTP requests; CPU: emulator "
                    f"{timing.engine_cpu:.2f} s, PostgreSQL backend {timing.backend_cpu:.2f} s; "
                    f"first request at {timing.first_request:.2f} s, last answer at "
                    f"{timing.last_answer:.2f} s")
            print(line)
        timing, requests = min(timings, key=lambda t: t[0].elapsed)
        count, elapsed = timing.count, timing.elapsed
        results[warmup] = (count, elapsed, requests, rows)
        if len(timings) > 1:
            print(f"warm-up {warmup:>3}: best of {len(timings)}: {elapsed:.2f} s")
        line = ""
        if rows < args.rows:
            scale = args.rows / rows
            line += (f"  -> extrapolated to {args.rows} rows: ~{elapsed * scale:.1f} s, "
                     f"~{round(requests * scale)} requests (measured on the first {rows} rows)")
            print(line.lstrip())
    if "off" in results:
        on, off = results["on"], results["off"]
        off_full = off[1] * args.rows / off[3]
        print(f"speed-up: ~{off_full / on[1]:.0f}x (warm-up on vs extrapolated off)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    fake.close()


if __name__ == "__main__":
    main()
