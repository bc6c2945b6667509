"""Benchmark: model-call throughput through the emulator vs raw HTTP to the fake model server.

Not a test. Issue 4's benchmark:

- emulator: `alloydb-ai-emulator serve` (fake models, zero latency) and `--clients` connections
  (threads with psycopg, one connection each) running the prepared statement
  `SELECT google_ml.embedding('text-embedding-005', $1)` with distinct texts (so the response
  cache never answers) for `--seconds`; calls per second. Every call goes client -> proxy ->
  PostgreSQL -> dblink -> callback endpoint -> engine -> in-process fake -> back, and the client
  decodes the 768-float real[].
- baseline: the standalone fake server (`alloydb-ai-emulator fake-models`, a subprocess) and one
  Python process issuing the same number of concurrent raw HTTP requests with httpx (one
  AsyncClient, `--clients` tasks, Vertex AI `:predict` bodies with one distinct text each, each
  response decoded as JSON) for `--seconds`; requests per second.
- the ratio emulator / baseline (issue 4's target: >= 0.5).
- also (unless --no-live): the emulator in `--models live` mode pointed at that same fake-models
  server (the model's IAM auth switched off, the fake needs no token), so that every call makes
  a real HTTP request as the baseline does; its ratio too.

    python bench/model_calls.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx
import psycopg

from bench.proc import cpu_seconds
from tests.support.emulators import free_port, start_emulator, stop_emulator

MODEL = "text-embedding-005"
STATEMENT = f"SELECT google_ml.embedding('{MODEL}', %s)"
PREDICT_PATH = f"/v1/projects/bench/locations/us-central1/publishers/google/models/{MODEL}:predict"


def text_for(client: int, i: int, run: str) -> str:
    return f"benchmark {run} client {client} call {i}: a distinct sentence about vectors"


def emulator_throughput(dsn: str, clients: int, seconds: float, warmup: float,
                        pid: int) -> tuple[int, float, float]:
    """Calls completed by `clients` threads in `seconds` (after `warmup` seconds discarded), and
    the CPU seconds the emulator process `pid` spent meanwhile."""
    counts = [0] * clients
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)
    phase = {"measuring": False, "stop": False}

    def worker(k: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(STATEMENT, (text_for(k, -1, "prepare"),), prepare=True)
                start.wait()
                i = 0
                while not phase["stop"]:
                    row = conn.execute(STATEMENT, (text_for(k, i, "run"),), prepare=True).fetchone()
                    assert row is not None and len(row[0]) == 768
                    i += 1
                    if phase["measuring"]:
                        counts[k] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait(timeout=60)
    time.sleep(warmup)
    phase["measuring"] = True
    began, cpu_began = time.perf_counter(), cpu_seconds(pid)
    time.sleep(seconds)
    phase["measuring"] = False
    elapsed, cpu = time.perf_counter() - began, cpu_seconds(pid) - cpu_began
    phase["stop"] = True
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]
    return sum(counts), elapsed, cpu


async def http_throughput(base: str, clients: int, seconds: float, warmup: float) -> tuple[int, float]:
    counts = [0] * clients
    phase = {"measuring": False, "stop": False}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker(k: int) -> None:
            i = 0
            while not phase["stop"]:
                body = {"instances": [{"content": text_for(k, i, "http")}]}
                response = await client.post(PREDICT_PATH, json=body)
                response.raise_for_status()
                values = response.json()["predictions"][0]["embeddings"]["values"]
                assert len(values) == 768
                i += 1
                if phase["measuring"]:
                    counts[k] += 1

        tasks = [asyncio.create_task(worker(k)) for k in range(clients)]
        await asyncio.sleep(warmup)
        phase["measuring"] = True
        began = time.perf_counter()
        await asyncio.sleep(seconds)
        phase["measuring"] = False
        elapsed = time.perf_counter() - began
        phase["stop"] = True
        await asyncio.gather(*tasks)
    return sum(counts), elapsed


def start_fake_models() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "fake-models", "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready:"):
        proc.kill()
        raise RuntimeError(f"fake-models did not start: {line}")
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return proc, f"http://127.0.0.1:{port}"


def cache_hits(metrics_url: str) -> int:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(int(float(v)) for v in re.findall(
        r'^alloydb_ai_emulator_model_cache_hits_total\{[^}]*\} (\S+)$', text, re.MULTILINE))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup-seconds", type=float, default=1.0)
    parser.add_argument("--no-live", action="store_true",
                        help="skip the extra run with the emulator in live mode against the "
                             "same fake-models server")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"statement: {STATEMENT.replace('%s', '$1')}, {args.clients} clients, "
          f"{args.seconds:g} s, distinct texts")

    emu_rate = run_emulator(args, [], "emulator (fake models in process)")

    proc, base = start_fake_models()
    try:
        requests, elapsed = asyncio.run(
            http_throughput(base, args.clients, args.seconds, args.warmup_seconds))
        http_rate = requests / elapsed
        print(f"baseline: {requests} raw HTTP requests (httpx, {args.clients} concurrent) to "
              f"`alloydb-ai-emulator fake-models` in {elapsed:.2f} s = {http_rate:,.0f} requests/s")
        live_rate = None
        if not args.no_live:
            # The same fake server behind the emulator: every call is a real HTTP request too.
            live_rate = run_emulator(
                args, ["--models", "live", "--vertex-base-url", base, "--google-project", "bench"],
                "emulator (--models live -> the same fake-models server over HTTP)",
                no_auth=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ratio = emu_rate / http_rate
    print(f"ratio emulator / raw HTTP: {ratio:.2f} (target >= 0.5: "
          f"{'met' if ratio >= 0.5 else 'NOT met'})")
    if live_rate is not None:
        print(f"ratio emulator over HTTP / raw HTTP: {live_rate / http_rate:.2f}")


def run_emulator(args: argparse.Namespace, extra: list[str], label: str,
                 no_auth: bool = False) -> float:
    metrics_port = free_port()
    emulator = start_emulator("--metrics-port", str(metrics_port), "--log-level", "warning",
                              *extra)
    try:
        with emulator.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
            if no_auth:  # the fake server needs no token
                conn.execute("UPDATE google_ml.models SET auth_type = NULL WHERE id = %s",
                             (MODEL,))
        time.sleep(0.2)
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        hits_before = cache_hits(metrics)
        calls, elapsed, cpu = emulator_throughput(emulator.dsn, args.clients, args.seconds,
                                                  args.warmup_seconds, emulator.process.pid)
        hits = cache_hits(metrics) - hits_before
    finally:
        stop_emulator(emulator)
    rate = calls / elapsed
    print(f"{label}: {calls} calls in {elapsed:.2f} s = {rate:,.0f} calls/s "
          f"({rate / args.clients:,.0f} per client; response-cache hits: {hits}); emulator CPU "
          f"{cpu * 1e6 / max(calls, 1):,.0f} µs per call")
    return rate


if __name__ == "__main__":
    main()
