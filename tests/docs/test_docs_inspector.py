"""docs/inspector.md's walk-through runs as printed: `fake-models` stands in for the custom
endpoint, `serve` runs with its inspector, and the page's SQL goes through one psql session
(only the fake server's port differs); the error it shows, the empty vector, and the calls
the inspector kept are what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.docs.test_docs_quickstart import fenced_blocks, psql
from tests.support.databases import empty_database
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.paths import REPO

PAGE = REPO / "docs" / "inspector.md"
PRINTED_ENDPOINT = "http://127.0.0.1:8089/"


@pytest.fixture(scope="module")
def fake_models() -> Iterator[str]:
    """`alloydb-ai-emulator fake-models`, as the page starts it (on a free port); its URL."""
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "fake-models", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    ready = re.match(r"ready: fake models listening on (http://\S+)", process.stdout.readline())
    try:
        assert ready, "fake-models did not start"
        yield ready.group(1) + "/"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def with_inspector() -> Iterator[Emulator]:
    emulator = start_emulator("--inspector-port", "0")
    try:
        yield emulator
    finally:
        stop_emulator(emulator)


def test_the_walk_through_runs_as_printed(fake_models: str, with_inspector: Emulator) -> None:
    page = PAGE.read_text()
    blocks = fenced_blocks(page)
    sql = [b.text for b in blocks if b.lang == "sql"]
    walk_through = sql[:3]  # register, fix the input, fix the output
    assert PRINTED_ENDPOINT in walk_through[0], "the page's endpoint changed: update this test"
    script = "\n".join([*walk_through, "SELECT google_ml.embedding('my-embedder', 'hello');",
                        sql[3]])  # "Call it again", then the calls from SQL
    result = subprocess.run(
        [psql(), "-X", "-d", empty_database(with_inspector, "inspector_page"), "-f", "-"],
        input=script.replace(PRINTED_ENDPOINT, fake_models), capture_output=True, text=True,
        timeout=60, check=False)

    shown_error = next(b.text for b in blocks if b.lang == "text" and "ERROR:" in b.text)
    for line in shown_error.splitlines():  # the page's ERROR and DETAIL, as psql prints them
        assert line in result.stderr
    assert result.stderr.count("ERROR:") == 1, result.stderr
    assert "\n embedding \n-----------\n {}\n(1 row)" in result.stdout  # the empty vector
    vectors = re.findall(r"^ \{([^}]+)\}$", result.stdout, re.MULTILINE)
    assert [len(v.split(",")) for v in vectors] == [768]  # after the output fix
    kept = re.findall(r"^ my-embedder \|\s+(\d+) \|\s*(\w*)\s*\|", result.stdout, re.MULTILINE)
    assert kept == [("200", ""), ("200", ""), ("400", "38000")]  # newest first
