"""Benchmark: the 10,000-row backfill UPDATE with 50 ms of latency per provider request (issue 5).

Not a test. It starts `alloydb-ai-emulator serve --fake-latency-ms 50 --metrics-port P` (fake
models: every provider request, batched or not, waits 50 ms), loads `--rows` distinct sentences
and runs

    UPDATE docs SET emb = google_ml.embedding('text-embedding-005', content)::vector
     WHERE emb IS NULL

then reports wall time, rows per second, the provider requests the engine made (read from the
emulator's Prometheus metrics, `alloydb_ai_emulator_provider_requests_total`), and the ratio to
the one-request-per-row baseline (rows x latency, computed, not run: 10,000 x 50 ms = 500 s).

The same statement with the warm-up switched off (`SET google_ml_integration.emulator_warmup =
off`: each row is one request in turn) runs on `--off-rows` other distinct sentences only, and is
extrapolated to `--rows` (it says so).

    python bench/backfill.py [--rows 10000] [--off-rows 300] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx
import psycopg

from tests.conftest import free_port, start_emulator, stop_emulator

MODEL = "text-embedding-005"
BACKFILL = (f"UPDATE {{table}} SET emb = google_ml.embedding('{MODEL}', content)::vector "
            "WHERE emb IS NULL")
VERTEX_BATCH = 250

SUBJECTS = ("The cat", "A database", "Our team", "The river", "An old map", "My neighbour",
            "The compiler", "A small bird", "The council", "This recipe")
VERBS = ("describes", "ignores", "follows", "rebuilds", "admires", "questions", "carries",
         "measures", "paints", "forgets")
OBJECTS = ("the morning light", "a forgotten index", "seven green apples", "the last train",
           "a quiet harbour", "the vector space", "an unfinished song", "the winter market",
           "a broken umbrella", "the northern road")


def sentence(i: int, tag: str) -> str:
    return (f"{SUBJECTS[i % 10]} {VERBS[(i // 10) % 10]} {OBJECTS[(i // 100) % 10]} "
            f"({tag} sentence {i}).")


def load(conn: psycopg.Connection[tuple[object, ...]], table: str, rows: int, tag: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, content text NOT NULL,"
                 " emb vector(768))")
    with conn.cursor().copy(f"COPY {table} (id, content) FROM STDIN") as copy:
        for i in range(rows):
            copy.write_row((i + 1, sentence(i, tag)))
    conn.execute(f"ANALYZE {table}")


def provider_requests(metrics_url: str) -> int:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(int(float(v)) for v in re.findall(
        r'^alloydb_ai_emulator_provider_requests_total\{[^}]*model="' + re.escape(MODEL)
        + r'"[^}]*\} (\S+)$', text, re.MULTILINE))


def backfill(conn: psycopg.Connection[tuple[object, ...]], table: str,
             metrics_url: str) -> tuple[float, int, int]:
    before = provider_requests(metrics_url)
    started = time.perf_counter()
    cur = conn.execute(BACKFILL.format(table=table))
    elapsed = time.perf_counter() - started
    made = provider_requests(metrics_url) - before
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE emb IS NULL").fetchone()
    assert row == (0,), f"{row} rows left without an embedding"
    return elapsed, cur.rowcount, made


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--off-rows", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"statement: {BACKFILL.format(table='docs')}")
    print(f"provider: built-in fake {MODEL}, {args.latency_ms:g} ms per request "
          f"(--fake-latency-ms {args.latency_ms:g})")
    metrics_port = free_port()
    emulator = start_emulator("--fake-latency-ms", f"{args.latency_ms:g}",
                              "--metrics-port", str(metrics_port), "--log-level", "warning")
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        with emulator.connect() as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_backfill")
            admin.execute("CREATE DATABASE bench_backfill")
        with psycopg.connect(emulator.dsn_for(dbname="bench_backfill"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION google_ml_integration")
            conn.execute("CREATE EXTENSION vector")
            load(conn, "docs", args.rows, "on")
            load(conn, "docs_off", args.off_rows, "off")  # other texts: no cache hits

            on_time, on_rows, on_requests = backfill(conn, "docs", metrics)
            conn.execute("SET google_ml_integration.emulator_warmup = off")
            off_time, off_rows, off_requests = backfill(conn, "docs_off", metrics)
    finally:
        stop_emulator(emulator)

    baseline = args.rows * latency
    print(f"warm-up on : {on_rows} rows in {on_time:.2f} s = {on_rows / on_time:,.0f} rows/s; "
          f"{on_requests} provider requests (expected ceil({args.rows}/{VERTEX_BATCH}) = "
          f"{math.ceil(args.rows / VERTEX_BATCH)})")
    print(f"baseline   : one request per row, {args.rows} x {args.latency_ms:g} ms = "
          f"{baseline:.0f} s (computed, not run)")
    print(f"ratio      : {baseline / on_time:.0f}x faster than the per-row baseline "
          f"(target: <= 5 s, >= 100x; longer goal <= 2 s)")
    scale = args.rows / off_rows
    print(f"warm-up off: {off_rows} rows in {off_time:.2f} s = {off_rows / off_time:,.1f} rows/s; "
          f"{off_requests} provider requests; extrapolated to {args.rows} rows: "
          f"~{off_time * scale:.0f} s, ~{round(off_requests * scale)} requests "
          f"(measured on {off_rows} rows, scaled)")
    print(f"gain       : ~{off_time * scale / on_time:.0f}x (warm-up on vs extrapolated off)")


if __name__ == "__main__":
    main()
