"""Benchmark: `SELECT count(*) FROM reviews WHERE ai.if('Is this positive? ' || body)` over 1,000
rows against a Gemini endpoint with 50 ms of latency per HTTP request, warm-up on and off.

Not a test. It starts the fake model server (emulator/fakes/server.py) with `--latency-ms` of
latency, and two emulators in live mode pointed at it (`--models live --vertex-base-url
http://127.0.0.1:P --google-project bench`), one with the warm-up on and one with it off, and
counts the HTTP requests the fake server received. With the warm-up off every row is one request
in turn, so that run is capped at `--off-rows` rows and extrapolated to 1,000 (it says so).

    python bench/ai_if.py [--rows 1000] [--off-rows 200] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg

from emulator.fakes.knobs import FakeKnobs
from emulator.fakes.server import FakeModelServer
from tests.support.emulators import Emulator, start_emulator, stop_emulator

QUERY = "SELECT count(*) FROM reviews WHERE ai.if('Is this positive? ' || body)"
WORDS = ("great", "terrible", "late", "lovely", "broken", "fine", "excellent", "awful", "slow", "nice")


class FakeServerThread:
    """The fake model server on an event loop of its own thread."""

    def __init__(self, latency: float) -> None:
        self.loop = asyncio.new_event_loop()
        # The fake server logs a spurious traceback for each keep-alive connection the engine
        # closes at shutdown; they say nothing about the benchmark.
        self.loop.set_exception_handler(lambda loop, context: None)
        self.server = FakeModelServer(FakeKnobs(latency=latency), keep_requests=1_000_000)
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


def run(dsn: str, limit: int | None) -> tuple[int, float]:
    query = QUERY if limit is None else QUERY.replace(
        "FROM reviews", f"FROM reviews WHERE id <= {limit} AND", 1).replace("WHERE ai.if", "ai.if")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
        started = time.perf_counter()
        row = conn.execute(query).fetchone()
        elapsed = time.perf_counter() - started
    assert row is not None
    return int(row[0]), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--off-rows", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    fake = FakeServerThread(args.latency_ms / 1000)
    base = ["--models", "live", "--vertex-base-url", f"http://127.0.0.1:{fake.port}",
            "--google-project", "bench", "--cache-size", "0"]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"query: {QUERY}")
    print(f"provider: fake Gemini over HTTP, {args.latency_ms:g} ms per request")
    results = {}
    for warmup, limit in (("on", None), ("off", args.off_rows)):
        emulator = start_emulator(*base, "--warmup", warmup)
        try:
            dsn = prepare(emulator, args.rows)
            before = fake.count()
            count, elapsed = run(dsn, limit)
            requests = fake.count() - before
        finally:
            stop_emulator(emulator)
        rows = args.rows if limit is None else min(limit, args.rows)
        results[warmup] = (count, elapsed, requests, rows)
        line = (f"warm-up {warmup:>3}: {rows} rows, count={count}, {elapsed:.2f} s, "
                f"{requests} HTTP requests")
        if rows < args.rows:
            scale = args.rows / rows
            line += (f"  -> extrapolated to {args.rows} rows: ~{elapsed * scale:.1f} s, "
                     f"~{round(requests * scale)} requests (measured on the first {rows} rows)")
        print(line)
    on, off = results["on"], results["off"]
    off_full = off[1] * args.rows / off[3]
    print(f"speed-up: ~{off_full / on[1]:.0f}x (warm-up on vs extrapolated off)")
    fake.close()


if __name__ == "__main__":
    main()
