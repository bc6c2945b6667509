"""Benchmark: what PostgreSQL pays to turn 10,000 embedding literals into `vector` (issue 12, item 3).

Not a test. In an emulator's embedded PostgreSQL it stores 10,000 768-number literals as text
and as binary `real[]`, for three kinds of numbers: the fakes' sparse vectors as their literal
writes them (`0` for each zero), the same as the fake provider's JSON writes them (`0.0`), and
dense 17-digit numbers (what real providers answer), then times, best of three:

- text -> real[] -> vector     (array_in: what the warm-up paid before it used pgvector's input)
- text '[..]' -> vector        (the vector text handed straight to the column type)
- '[..]' -> vector -> real[]   (what the warm-up stores where the database has pgvector)
- text -> real[]               (what it stores without pgvector)
- binary real[] -> vector      (a binary warm cache: no number parsing left)
- reading the text only

and then the other side, in the emulator's Python, for the same numbers as a Vertex AI answer's
JSON (40 answers of 250): the text path's extraction (its number tokens validated and copied as
they are, `emulator/engine/extract.py`) against the values the binary store makes of them
(`emulator/engine/binary.py`: msgspec's doubles, rounded to float4 by numpy, with the checks that
keep every float what strtof reads).

    python bench/literal_parse.py
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import msgspec
import psycopg

from emulator.engine.binary import raw_vertex_binary
from emulator.engine.extract import raw_vertex_embeddings
from emulator.fakes.embeddings import embed
from tests.support.emulators import start_emulator, stop_emulator

ROWS = 10_000
CASES = (
    ("text -> real[] -> vector", "SELECT count(t::real[]::vector) FROM t_{name}"),
    ("text '[..]' -> vector", "SELECT count(('[' || btrim(t, '{{}}') || ']')::vector) FROM t_{name}"),
    # what the warm-up stores with pgvector: the engine writes '[..]', read as vector, then real[]
    ("'[..]' -> vector -> real[]", "SELECT count(v::vector::real[]) FROM t_{name}"),
    ("text -> real[]", "SELECT count(t::real[]) FROM t_{name}"),
    ("binary real[] -> vector", "SELECT count(r::vector) FROM b_{name}"),
    ("read the text only", "SELECT count(length(t)) FROM t_{name}"),
)


def main() -> None:
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    sparse = [embed(f"sentence {i} about things", 768).literal() for i in range(ROWS)]
    # The same vectors as the fake provider's JSON writes them (0.0 for each zero)
    encode = msgspec.json.Encoder().encode
    json_numbers = ["{" + encode(list(embed(f"sentence {i} about things", 768))).decode()[1:-1]
                    + "}" for i in range(ROWS)]
    rng = random.Random(12)
    dense = ["{" + ",".join(repr(rng.uniform(-0.1, 0.1)) for _ in range(768)) + "}"
             for _ in range(ROWS)]
    emulator = start_emulator("--log-level", "warning")
    try:
        with emulator.connect() as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_literals")
            admin.execute("CREATE DATABASE bench_literals")
        with psycopg.connect(emulator.dsn_for(dbname="bench_literals"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            for name, literals in (("sparse", sparse), ("json", json_numbers), ("dense", dense)):
                conn.execute(f"CREATE UNLOGGED TABLE t_{name} (id int, t text, v text)")
                conn.execute(f"ALTER TABLE t_{name} ALTER COLUMN t SET STORAGE EXTERNAL")
                conn.execute(f"ALTER TABLE t_{name} ALTER COLUMN v SET STORAGE EXTERNAL")
                with conn.cursor().copy(f"COPY t_{name} FROM STDIN") as copy:
                    for i, literal in enumerate(literals):
                        copy.write_row((i, literal, "[" + literal[1:-1] + "]"))
                conn.execute(f"CREATE UNLOGGED TABLE b_{name} AS SELECT id, t::real[] AS r "
                             f"FROM t_{name}")
                for label, sql in CASES:
                    best = float("inf")
                    for _ in range(3):
                        started = time.perf_counter()
                        conn.execute(sql.format(name=name)).fetchone()
                        best = min(best, time.perf_counter() - started)
                    print(f"{name:6} {label:27} {best:.3f} s for {ROWS} rows")
    finally:
        stop_emulator(emulator)
    for name, literals in (("json", json_numbers), ("dense", dense)):
        engine_side(name, literals)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def engine_side(name: str, literals: list[str]) -> None:
    """The emulator's CPU per 10,000 embeddings: the text literals of the text path, and the
    binary store's values (emulator/engine/binary.py: msgspec's doubles, rounded to float4 by
    numpy, with the checks that keep them exactly what strtof reads)."""
    answers = [("{\"predictions\":[" + ",".join(
        '{"embeddings":{"values":[' + literal[1:-1] + "]}}"
        for literal in literals[first:first + 250]) + "]}").encode()
        for first in range(0, len(literals), 250)]
    for label, extract in (("extract literals (text)", lambda a: raw_vertex_embeddings(a, b"[]")),
                           ("binary real[] values", raw_vertex_binary)):
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for answer in answers:
                extract(answer)
            best = min(best, time.process_time() - started)
        print(f"{name:6} emulator: {label:27} {best:.3f} s CPU for {ROWS} embeddings")


if __name__ == "__main__":
    main()
