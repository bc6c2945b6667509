"""Benchmark: the 10,000-row backfill UPDATE with 50 ms of latency per provider request.

Not a test. It runs, in one invocation, each mode in an emulator of its own:

- fake: `alloydb-ai-emulator serve --fake-latency-ms 50` (the fakes answer in process, every
  provider request waits 50 ms);
- live (`--live`, on by default; `--no-live` skips it): `alloydb-ai-emulator fake-models
  --fake-latency-ms 50` as a separate process speaking Vertex AI's wire format over HTTP, and
  `serve --models live --vertex-base-url http://127.0.0.1:P`: the path users take with a real
  provider;
- remote (`--remote`, off by default): live mode whose provider costs no CPU on this machine, as a
  real one would not: `fake-models --repeat-answers-mb 512`, primed with the same batches (the
  statement run once on a copy of the table, through another connection; then the warm cache
  is truncated), so each measured request is answered from memory after its 50 ms. It says
  what the emulator and PostgreSQL cost when the provider computes elsewhere.

In each it loads `--rows` distinct sentences and runs

    UPDATE docs SET emb = google_ml.embedding('text-embedding-005', content)::vector
     WHERE emb IS NULL

then, in the same database, the PostgreSQL floor: the same number of rows updated from
precomputed vectors (`UPDATE docs_floor SET emb = pre.emb FROM pre WHERE docs_floor.id =
pre.id`, the vectors the backfill just wrote; the median of three runs). It prints wall time, the provider requests the
engine made and the most it had in flight at once (from the emulator's Prometheus metrics), the
emulator process's peak RSS (VmHWM: its own memory, not PostgreSQL's), and the ratios to the
floor, to the fake mode and to one request per row (rows x latency, computed: 10,000 x 50 ms =
500 s). With `--off-rows N` > 0 the live statement also runs with the warm-up off on N other
rows (one request per row, in turn) and is extrapolated to `--rows` (it says so). The CPU each
process spent on the statement closes each mode's report: the session's PostgreSQL backend, the
emulator, the provider, and the backends of the engine's own connections, which store the
batches (binary COPYs, and INSERTs of numbers left as text: the warm-up's store,
docs/internals.md; they are gone by the end, so their CPU is read from the postmaster's reaped
children).

Targets (issue 12): live <= 3 x floor + 0.2 s, fake <= 2 x floor + 0.2 s, live peak RSS <= 300 MB
(remote is held to live's). With `--dense` the provider (live and remote modes) answers
`fake-models --dense-embeddings`: every number non-zero and written with 17 digits, as real
providers write theirs; PostgreSQL then parses what it parses in production (the fakes' own
vectors are sparse: mostly `0.0`, far cheaper to read).

    python bench/backfill.py [--rows 10000] [--latency-ms 50] [--no-live] [--no-fake] [--remote]
                             [--dense] [--off-rows 0] [--rounds 1]

With `--rounds N` both modes run N times, alternately, each in fresh emulators, and the medians
close the report.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx
import psycopg

from bench.proc import cpu_seconds, parent_pid, peak_rss_mb, reaped_children_cpu_seconds
from tests.support.emulators import Emulator, free_port, start_emulator, stop_emulator

MODEL = "text-embedding-005"
BACKFILL = (f"UPDATE {{table}} SET emb = google_ml.embedding('{MODEL}', content)::vector "
            "WHERE emb IS NULL")
FLOOR = ("UPDATE docs_floor SET emb = pre.emb FROM pre WHERE docs_floor.id = pre.id")
FLOOR_RUNS = 3  # the floor is the median of three runs, each on a freshly loaded table
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


Conn = psycopg.Connection[tuple[object, ...]]


def load(conn: Conn, table: str, rows: int, tag: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, content text NOT NULL,"
                 " emb vector(768))")
    with conn.cursor().copy(f"COPY {table} (id, content) FROM STDIN") as copy:
        for i in range(rows):
            copy.write_row((i + 1, sentence(i, tag)))
    conn.execute(f"ANALYZE {table}")
    conn.execute("CHECKPOINT")


def metric(metrics_url: str, name: str) -> int:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(int(float(v)) for v in re.findall(
        r"^alloydb_ai_emulator_" + name + r'\{[^}]*model="' + re.escape(MODEL)
        + r'"[^}]*\} (\S+)$', text, re.MULTILINE))


@dataclass
class Run:
    mode: str
    rows: int
    seconds: float
    requests: int
    max_in_flight: int
    floor: float
    peak_rss: float
    cpu: dict[str, float]  # CPU seconds the statement cost each process: backend, emulator, provider
    off: tuple[int, float, int] | None = None  # rows, seconds, requests with the warm-up off


def timed(conn: Conn, sql: str) -> tuple[float, int]:
    started = time.perf_counter()
    cur = conn.execute(sql)
    return time.perf_counter() - started, cur.rowcount


def prime(dsn: str, rows: int) -> None:
    """The statement once on a copy of the table, through a connection of its own: the provider
    sees (and keeps) the very batches the measured statement will send. The warm cache is then
    emptied (TRUNCATE, as on a fresh database), so the measured run finds what it would have."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        load(conn, "docs_prime", rows, "on")
        updated = conn.execute(BACKFILL.format(table="docs_prime")).rowcount
        assert updated == rows
        conn.execute("DROP TABLE docs_prime")
        conn.execute("TRUNCATE google_ml._warm_cache")
        conn.execute("CHECKPOINT")


def measure(mode: str, emulator: Emulator, metrics_url: str, rows: int, off_rows: int,
            prepare: str | None = None, provider_pid: int | None = None) -> Run:
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE IF EXISTS bench_backfill")
        admin.execute("CREATE DATABASE bench_backfill")
    dsn = emulator.dsn_for(dbname="bench_backfill")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")
        conn.execute("CREATE EXTENSION vector")
        if prepare:
            conn.execute(prepare)
        if mode == "remote":
            prime(dsn, rows)
        load(conn, "docs", rows, "on")
        before = metric(metrics_url, "provider_requests_total")
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pids = {"backend": int(row[0]), "emulator": emulator.process.pid}
        if provider_pid is not None:
            pids["provider"] = provider_pid
        postmaster = parent_pid(pids["backend"])
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        gone_before = reaped_children_cpu_seconds(postmaster)
        seconds, updated = timed(conn, BACKFILL.format(table="docs"))
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        time.sleep(0.3)  # the engine closes its COPY connections once the warm-up is over
        cpu["copy backends"] = reaped_children_cpu_seconds(postmaster) - gone_before
        requests = metric(metrics_url, "provider_requests_total") - before
        in_flight = metric(metrics_url, "provider_requests_in_flight_max")
        left = conn.execute("SELECT count(*) FROM docs WHERE emb IS NULL").fetchone()
        assert left == (0,) and updated == rows, f"{left} rows left without an embedding"
        peak = peak_rss_mb(emulator.process.pid)

        conn.execute("CREATE TABLE pre AS SELECT id, emb FROM docs")
        conn.execute("ANALYZE pre")
        floors = []
        for _ in range(FLOOR_RUNS):
            load(conn, "docs_floor", rows, "on")
            seconds_floor, floor_rows = timed(conn, FLOOR)
            assert floor_rows == rows
            floors.append(seconds_floor)
        floor = statistics.median(floors)

        off = None
        if off_rows > 0:
            load(conn, "docs_off", off_rows, "off")  # other texts: no cache hits
            conn.execute("SET google_ml_integration.emulator_warmup = off")
            before = metric(metrics_url, "provider_requests_total")
            off_seconds, _ = timed(conn, BACKFILL.format(table="docs_off"))
            off = (off_rows, off_seconds, metric(metrics_url, "provider_requests_total") - before)
    return Run(mode, rows, seconds, requests, in_flight, floor, peak, cpu, off)


class FakeModels:
    """`alloydb-ai-emulator fake-models` in a process of its own."""

    def __init__(self, latency_ms: float, repeat_answers_mb: int = 0, dense: bool = False) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "fake-models", "--port", str(self.port),
             "--fake-latency-ms", f"{latency_ms:g}", "--log-level", "warning",
             "--repeat-answers-mb", str(repeat_answers_mb),
             *(["--dense-embeddings"] if dense else [])],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready:"):
            self.proc.kill()
            raise RuntimeError(f"fake-models did not start: {line}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_mode(mode: str, args: argparse.Namespace) -> Run:
    metrics_port = free_port()
    common = ["--metrics-port", str(metrics_port), "--log-level", "warning"]
    fakes = None
    prepare = None
    if mode == "fake":
        emulator = start_emulator("--fake-latency-ms", f"{args.latency_ms:g}", *common)
    else:
        fakes = FakeModels(args.latency_ms, 512 if mode == "remote" else 0, args.dense)
        emulator = start_emulator(
            "--models", "live", "--vertex-base-url", f"http://127.0.0.1:{fakes.port}",
            "--google-project", "bench", "--cache-size", "0", *common)
        # The fake provider needs no token: no IAM authentication for the benchmark's model.
        prepare = f"UPDATE google_ml.models SET auth_type = NULL WHERE id = '{MODEL}'"
    try:
        return measure(mode, emulator, f"http://127.0.0.1:{metrics_port}/metrics", args.rows,
                       args.off_rows if mode == "live" else 0, prepare,
                       fakes.proc.pid if fakes is not None else None)
    finally:
        stop_emulator(emulator)
        if fakes is not None:
            fakes.close()


def report(run: Run, rows: int, latency: float, fake: Run | None) -> None:
    baseline = rows * latency
    target = (2 if run.mode == "fake" else 3) * run.floor + 0.2
    print(f"{run.mode:>6}: {run.rows} rows in {run.seconds:.2f} s "
          f"({run.rows / run.seconds:,.0f} rows/s); {run.requests} provider requests "
          f"(ceil({rows}/{VERTEX_BATCH}) = {math.ceil(rows / VERTEX_BATCH)}), "
          f"at most {run.max_in_flight} in flight; emulator peak RSS {run.peak_rss:.0f} MB")
    line = (f"        floor {run.floor:.2f} s -> {run.seconds / run.floor:.1f}x the floor "
            f"(target <= {target:.2f} s: {'met' if run.seconds <= target else 'MISSED'}); "
            f"{baseline / run.seconds:,.0f}x faster than one request per row "
            f"({rows} x {latency * 1000:g} ms = {baseline:.0f} s, computed)")
    if fake is not None and fake is not run:
        line += f"; {run.seconds / fake.seconds:.2f}x the fake mode"
    print(line)
    provider = ("the fake provider, answering from memory" if run.mode == "remote"
                else "the fake provider")
    print("        CPU of the statement: " + ", ".join(
        f"{name} {seconds:.2f} s" for name, seconds in run.cpu.items())
        + f" (the PostgreSQL backend, the emulator, {provider}; the backends of the engine's"
        " COPYs and INSERTs, reaped)")
    if run.off is not None:
        off_rows, off_seconds, off_requests = run.off
        scale = rows / off_rows
        print(f"        warm-up off: {off_rows} rows in {off_seconds:.2f} s, {off_requests} "
              f"requests; extrapolated to {rows} rows ~{off_seconds * scale:.0f} s "
              f"(measured on {off_rows} rows, scaled): ~{off_seconds * scale / run.seconds:.0f}x "
              "slower than the warm-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--off-rows", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--live", action=argparse.BooleanOptionalAction, default=True,
                        help="also run live mode against `fake-models` over HTTP (default on)")
    parser.add_argument("--fake", action=argparse.BooleanOptionalAction, default=True,
                        help="run fake mode (default on)")
    parser.add_argument("--remote", action=argparse.BooleanOptionalAction, default=False,
                        help="also run live mode with a provider that answers repeated requests "
                             "from memory, primed: its CPU out of the way (default off)")
    parser.add_argument("--dense", action=argparse.BooleanOptionalAction, default=False,
                        help="the provider answers dense embeddings, every number written with "
                             "17 digits as real providers write them (live and remote modes; "
                             "fake mode keeps the fakes' sparse vectors)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run both modes this many times, alternately, and also print the "
                             "medians (identical runs on a shared 2-core machine vary by 25%%)")
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"statement: {BACKFILL.format(table='docs')}")
    print(f"provider: {MODEL}, {args.latency_ms:g} ms per request"
          + (", dense embeddings (live and remote)" if args.dense else ""))
    runs: dict[str, list[Run]] = {"fake": [], "live": [], "remote": []}
    for round_number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {round_number} of {args.rounds} "
                  f"(load average {os.getloadavg()[0]:.2f})")
        fake = run_mode("fake", args) if args.fake else None
        if fake is not None:
            report(fake, args.rows, latency, fake)
            runs["fake"].append(fake)
        if args.live:
            live = run_mode("live", args)
            report(live, args.rows, latency, fake)
            runs["live"].append(live)
        if args.remote:
            remote = run_mode("remote", args)
            report(remote, args.rows, latency, fake)
            runs["remote"].append(remote)
    if args.rounds > 1:
        for mode, done in runs.items():
            if done:
                summarize(mode, done)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def summarize(mode: str, runs: list[Run]) -> None:
    """The medians of a mode's rounds: wall time, ratio to each round's floor, CPU per process."""
    seconds = statistics.median(run.seconds for run in runs)
    ratio = statistics.median(run.seconds / run.floor for run in runs)
    cpu = {name: statistics.median(run.cpu.get(name, 0.0) for run in runs) for name in runs[0].cpu}
    print(f"{mode:>6}, median of {len(runs)} rounds: {seconds:.2f} s, {ratio:.1f}x the floor "
          f"(walls {', '.join(f'{run.seconds:.2f}' for run in runs)} s); CPU "
          + ", ".join(f"{name} {value:.2f} s" for name, value in cpu.items()))


if __name__ == "__main__":
    main()
