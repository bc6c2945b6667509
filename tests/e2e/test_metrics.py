"""`serve --metrics-port`: Prometheus text after model calls through the emulator; the debug
line per model call; the startup banner. The engine's counters alone are unit tests
(tests/unit/engine/test_stats.py)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.emulators import Emulator, free_port, start_emulator, stop_emulator


@pytest.fixture(scope="module")
def metered() -> Iterator[tuple[Emulator, int]]:
    port = free_port()
    emu = start_emulator("--metrics-port", str(port), "--log-level", "debug")
    try:
        yield emu, port
    finally:
        stop_emulator(emu)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample; labels given must all match."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_model_calls_latency_tokens_and_cache_hits_are_scraped(metered: tuple[Emulator, int]) -> None:
    emu, port = metered
    with emu.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        for _ in range(2):  # the second call is a cache hit
            conn.execute("SELECT google_ml.embedding('text-embedding-005', 'metrics please')")
        conn.execute("""SELECT google_ml.predict_row('gemini-1.5-pro:generateContent',
            '{"contents": [{"role": "user", "parts": [{"text": "count my tokens"}]}]}')""")
    text = scrape(port)
    emb = {"model": "text-embedding-005", "provider": "google"}
    gem = {"model": "gemini-1.5-pro:generateContent", "provider": "google"}
    assert sample(text, "alloydb_ai_emulator_model_calls_total", **emb) == 2
    assert sample(text, "alloydb_ai_emulator_model_cache_hits_total", **emb) == 1
    assert sample(text, "alloydb_ai_emulator_provider_requests_total", **emb) == 1
    assert sample(text, "alloydb_ai_emulator_model_call_duration_seconds_count", **emb) == 2
    assert sample(text, "alloydb_ai_emulator_model_call_duration_seconds_bucket", le="+Inf",
                  **emb) == 2
    assert sample(text, "alloydb_ai_emulator_model_tokens_total", direction="output", **gem) > 0
    assert sample(text, "alloydb_ai_emulator_model_tokens_total", direction="input", **gem) > 0
    assert sample(text, "alloydb_ai_emulator_http_requests_total") == 0
    assert sample(text, "alloydb_ai_emulator_build_info", models="fake") == 1


def test_warmup_streams_are_counted_and_none_is_left_open(metered: tuple[Emulator, int]) -> None:
    emu, port = metered
    with emu.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        conn.execute("CREATE TABLE stream_docs (id int, content text, emb real[])")
        conn.execute("INSERT INTO stream_docs SELECT i, 'streamed text ' || i "
                     "FROM generate_series(1, 600) AS i")
        before = sample(scrape(port), "alloydb_ai_emulator_warmup_streams_total")
        conn.execute("UPDATE stream_docs SET emb = google_ml.embedding('text-embedding-005', "
                     "content) WHERE emb IS NULL")
        assert conn.execute("SELECT count(*) FROM stream_docs WHERE emb IS NULL").fetchone() == (0,)
    text = scrape(port)
    assert sample(text, "alloydb_ai_emulator_warmup_streams_total") == before + 1
    assert sample(text, "alloydb_ai_emulator_warmup_streams_open") == 0
    assert sample(text, "alloydb_ai_emulator_warmup_batches_held") == 0


def test_errors_are_counted_by_sqlstate(metered: tuple[Emulator, int]) -> None:
    emu, port = metered
    with emu.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        conn.execute("""CALL google_ml.create_model(model_id => 'metrics-dead-end',
            model_request_url => 'https://127.0.0.1:9/never', model_provider => 'custom',
            model_type => 'generic')""")
        conn.execute("SET statement_timeout = '20s'")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT google_ml.predict_row('metrics-dead-end', '{}')")
    text = scrape(port)
    labels = {"model": "metrics-dead-end", "provider": "custom"}
    assert sample(text, "alloydb_ai_emulator_model_call_errors_total", sqlstate="08001",
                  **labels) == 1
    assert sample(text, "alloydb_ai_emulator_model_call_retries_total", **labels) >= 1


def test_proxy_connections_and_bytes_are_scraped(metered: tuple[Emulator, int]) -> None:
    emu, port = metered
    before = scrape(port)
    with emu.connect() as conn:
        conn.execute("SELECT repeat('x', 100000)").fetchall()
        during = scrape(port)
    assert sample(during, "alloydb_ai_emulator_proxy_connections_open") >= 1
    assert (sample(during, "alloydb_ai_emulator_proxy_connections_total")
            == sample(before, "alloydb_ai_emulator_proxy_connections_total") + 1)
    sent = (sample(during, "alloydb_ai_emulator_proxy_sent_bytes_total")
            - sample(before, "alloydb_ai_emulator_proxy_sent_bytes_total"))
    assert sent > 100000
    assert sample(during, "alloydb_ai_emulator_proxy_received_bytes_total") > 0


def test_other_paths_are_404(metered: tuple[Emulator, int]) -> None:
    _, port = metered
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=10)
    assert info.value.code == 404


def test_debug_log_has_one_line_per_model_call_without_the_prompt(
    metered: tuple[Emulator, int],
) -> None:
    emu, _ = metered
    secret_prompt = "do-not-log-this-prompt"
    with emu.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        conn.execute("SELECT google_ml.embedding('text-embedding-005', %s)", [secret_prompt])
    # The line is read from the emulator's output in the background: wait until it is the last
    # model_call line (earlier tests' lines, this model's too, may still be arriving before it).
    wanted = re.compile(r'model_call model="text-embedding-005" provider=google status=ok '
                        r"latency_ms=\d")
    deadline = time.monotonic() + 15
    lines = [line for line in emu.output if "model_call " in line]
    while not (lines and wanted.search(lines[-1])) and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = [line for line in emu.output if "model_call " in line]
    assert lines, "".join(emu.output)
    assert wanted.search(lines[-1]), lines
    assert not any(secret_prompt in line for line in emu.output)


def test_banner_follows_the_ready_line(metered: tuple[Emulator, int]) -> None:
    emu, port = metered
    stdout = [line for line in emu.output if not re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert stdout[0].startswith("ready: accepting connections at postgresql://")
    banner = "".join(stdout)
    assert "emulated: AlloyDB AI's google_ml_integration" in banner
    assert "not emulated:" in banner
    assert "model calls: " in banner and "local fakes" in banner
    assert f"metrics: http://127.0.0.1:{port}/metrics" in banner


def test_metrics_port_0_prints_the_port_it_bound() -> None:
    """--metrics-port 0 picks a free port: the banner gives that port, which answers, not 0."""
    emu = start_emulator("--metrics-port", "0")
    try:
        deadline = time.monotonic() + 30
        while not (lines := [line for line in emu.output if line.startswith("metrics: ")]):
            assert time.monotonic() < deadline, "".join(emu.output)
            time.sleep(0.05)
        found = re.fullmatch(r"metrics: http://127\.0\.0\.1:(\d+)/metrics\n?", lines[0])
        assert found is not None and found.group(1) != "0", lines
        assert "alloydb_ai_emulator_" in scrape(int(found.group(1)))
    finally:
        stop_emulator(emu)
