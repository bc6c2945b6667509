"""docs/quickstart.md cannot rot: every ```sql block runs, in order, through the emulator with
psql (as the page tells readers to), in a fresh database; a ```text block that directly follows a
```sql block is the output psql must print."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.config import DEFAULT_PORT
from tests.support.emulators import Emulator
from tests.support.paths import REPO

QUICKSTART = REPO / "docs" / "quickstart.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


@dataclass
class Block:
    lang: str
    text: str
    start: int
    end: int


def fenced_blocks(markdown: str) -> list[Block]:
    return [Block(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(markdown)]


def sql_steps(markdown: str) -> list[tuple[str, str | None]]:
    """Each SQL block with the output block that directly follows it, if any."""
    blocks = fenced_blocks(markdown)
    steps: list[tuple[str, str | None]] = []
    for i, block in enumerate(blocks):
        if block.lang != "sql":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        expected = None
        if (following is not None and following.lang == "text"
                and not markdown[block.end:following.start].strip()):
            expected = following.text
        steps.append((block.text, expected))
    return steps


@pytest.fixture
def database(emulator: Emulator) -> Iterator[str]:
    name = f"quickstart_{secrets.token_hex(4)}"
    with emulator.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield emulator.dsn_for(dbname=name)
    finally:
        with emulator.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def psql() -> str:
    from emulator.embedded import bin_dir

    return str(Path(bin_dir()) / "psql")


def normalize(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_quickstart_sql_runs_and_prints_what_the_page_shows(database: str) -> None:
    steps = sql_steps(QUICKSTART.read_text())
    assert len(steps) >= 15
    for number, (sql, expected) in enumerate(steps, 1):
        result = subprocess.run(
            [psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", "-"],
            input=sql, capture_output=True, text=True, timeout=60, check=False,
        )
        problems = [line for line in result.stderr.splitlines() if "NOTICE:" not in line]
        assert result.returncode == 0 and not problems, (
            f"SQL block {number} of docs/quickstart.md failed:\n{sql}\n{result.stderr}")
        if expected is not None:
            assert normalize(result.stdout) == normalize(expected), (
                f"SQL block {number} printed something else than the page shows:\n{sql}\n"
                f"--- page\n{expected}\n--- psql\n{result.stdout}")


def test_quickstart_shows_the_ready_line_serve_prints(emulator: Emulator) -> None:
    page = QUICKSTART.read_text()
    shown = re.search(r"^ready: accepting connections at (\S+)$", page, re.MULTILINE)
    assert shown is not None
    assert shown.group(1) == f"postgresql://postgres@127.0.0.1:{DEFAULT_PORT}/postgres"
    printed = next(line for line in emulator.output if line.startswith("ready:"))
    assert re.sub(r":\d+/", f":{DEFAULT_PORT}/", printed.strip()) == shown.group(0)


def test_sql_extraction_pairs_outputs_with_their_blocks() -> None:
    doc = "```sql\nSELECT 1;\n```\n\n```text\n one\n```\nprose\n```sql\nSELECT 2;\n```\nx\n```text\nno\n```\n"
    assert sql_steps(doc) == [("SELECT 1;\n", " one\n"), ("SELECT 2;\n", None)]
