"""The warm-up in live mode, over HTTP, end to end (issue 12): the engine carries the number
tokens of the provider's JSON into the ``real[]`` literals without making floats, and the result
is exactly what the per-row path (the extension's output transform, in SQL) gives.

An emulator in live mode points its Vertex AI base URL at a local capture server that answers
as Vertex AI does (the fake models), or with hand-written JSON: numbers spelled every way JSON
allows, a null among the numbers, a number out of range for ``real``, a 429 with Retry-After.
Each statement runs with the warm-up on and off and the two results (or errors) must be equal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from emulator.engine.extract import could_underflow_real
from tests.support.databases import fresh_database
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.http_servers import HANG, CaptureServer, Reply, Seen
from tests.unit.engine.test_extract import NEAR_UNDERFLOW

DB = "e2e_live_warmup"
MODEL = "text-embedding-005"
BACKFILL = f"UPDATE docs SET emb = google_ml.embedding('{MODEL}', content) WHERE emb IS NULL"
VERTEX_BATCH = 250


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module")
def live(capture: CaptureServer) -> Iterator[Emulator]:
    emu = start_emulator("--models", "live", "--vertex-base-url", capture.url,
                         "--google-project", "p", "--cache-size", "0", "--max-retries", "2")
    try:
        yield emu
    finally:
        stop_emulator(emu)


@pytest.fixture(scope="module")
def dsn(live: Emulator) -> str:
    url = fresh_database(live, DB)
    with psycopg.connect(url, autocommit=True) as conn:
        # The capture server wants no token.
        conn.execute(f"UPDATE google_ml.models SET auth_type = NULL WHERE id = '{MODEL}'")
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, content text, emb real[])")
    return url


@pytest.fixture
def conn(dsn: str, capture: CaptureServer) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    capture.responder = None
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("TRUNCATE docs")
        yield connection
    capture.responder = None


def fill(conn: psycopg.Connection[Any], texts: list[str]) -> None:
    conn.cursor().executemany("INSERT INTO docs (id, content) VALUES (%s, %s)",
                              list(enumerate(texts)))


def run_both(conn: psycopg.Connection[Any], capture: CaptureServer) -> dict[str, Any]:
    """The backfill with the warm-up on, then off: (error or None, rows, requests made)."""
    results = {}
    for mode in ("on", "off"):
        conn.execute("UPDATE docs SET emb = NULL")
        conn.execute(f"SET google_ml_integration.emulator_warmup = {mode}")
        before = len(capture.requests)
        error = None
        try:
            conn.execute(BACKFILL)
        except psycopg.Error as exc:
            error = (exc.sqlstate, str(exc).splitlines()[0])
        rows = conn.execute("SELECT id, emb::text FROM docs ORDER BY id").fetchall()
        results[mode] = (error, rows, list(capture.requests)[before:])
    conn.execute("RESET google_ml_integration.emulator_warmup")
    return results


def test_live_backfill_is_batched_and_equals_the_per_row_path(
        conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    texts = [f"sentence number {i} about {'cats' if i % 3 else 'databases'}" for i in range(600)]
    fill(conn, texts)
    results = run_both(conn, capture)
    (error_on, rows_on, made_on), (error_off, rows_off, made_off) = (
        results["on"], results["off"])
    assert error_on is None and error_off is None
    assert rows_on == rows_off
    assert all(emb is not None and emb.count(",") == 767 for _, emb in rows_on)
    assert len(made_on) == math.ceil(len(texts) / VERTEX_BATCH)
    assert len(made_off) == len(texts)


def _vertex_answer(seen: Seen, values_for: Any) -> Reply:
    """A Vertex AI answer written by hand: ``values_for(text)`` is the JSON text of the array."""
    instances = seen.json()["instances"]
    predictions = ",".join(
        '{"embeddings": {"statistics": {"truncated": false, "token_count": 3},\n'
        f' "values": {values_for(i["content"])}}}}}' for i in instances)
    return Reply(200, ('{"predictions": [' + predictions + '], "metadata": {}}').encode())


SPELLINGS = ["0", "-0", "1E-2", "-1.5e+3", "12345678901234567890", "3.4028234e38", "1e-40",
             "0.1000000000000000055511151231257827", "7", "-2.5E0", "-0.0", "4.9e-45"]


def _spelled(text: str, spellings: list[str] = SPELLINGS) -> str:
    n = int(text.split()[-1])
    tokens = [spellings[(n + k) % len(spellings)] for k in range(768)]
    return "[ " + " ,\n".join(tokens) + " ]"


@pytest.mark.parametrize("pgvector", [True, False])
def test_number_spellings_reach_real_exactly_as_the_output_transform_reads_them(
        conn: psycopg.Connection[Any], capture: CaptureServer, pgvector: bool) -> None:
    # The warm-up parses with pgvector's input where the database has pgvector, else with
    # real[]'s own: the same floats either way.
    capture.responder = lambda seen: _vertex_answer(seen, _spelled)
    texts = [f"text {i}" for i in range(12)]
    fill(conn, texts)
    if not pgvector:
        conn.execute("DROP EXTENSION vector")
    try:
        found = conn.execute("SELECT google_ml._pgvector_type() IS NOT NULL").fetchone()
        assert found == (pgvector,)
        conn.execute(BACKFILL)
    finally:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    warmed = conn.execute("SELECT emb::text FROM docs ORDER BY id").fetchall()
    # What the built-in output transform makes of the very bytes the provider sent.
    transformed = [conn.execute(
        "SELECT google_ml.vertexai_text_embedding_output_transform('m', json_build_object("
        "'predictions', json_build_array(json_build_object('embeddings', json_build_object("
        "'values', %s::json)))))::text", (_spelled(t),)).fetchone() for t in texts]
    assert warmed == transformed
    assert any("-0" in row[0] for row in warmed)  # the sign of a negative zero survives


def test_number_spellings_give_the_same_rows_with_and_without_the_warmup(
        conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    # The per-row path loses the sign of a negative zero (the engine re-serializes the JSON, and
    # the extension reads it as jsonb, whose numeric has no -0); the warm-up keeps it, as the
    # output transform applied to the provider's bytes does (the test above). Every other
    # spelling reads the same both ways.
    spellings = [s for s in SPELLINGS if s not in ("-0", "-0.0")]
    capture.responder = lambda seen: _vertex_answer(seen, lambda t: _spelled(t, spellings))
    fill(conn, [f"text {i}" for i in range(12)])
    results = run_both(conn, capture)
    assert results["on"][0] is None and results["off"][0] is None
    for (_, on), (_, off) in zip(results["on"][1], results["off"][1], strict=True):
        differ = [(a, b) for a, b in zip(on.split(","), off.split(","), strict=True) if a != b]
        assert not differ, differ[:3]
    assert len(results["on"][2]) == 1  # one batch: the warm-up answered every row


@pytest.mark.parametrize(("bad", "fails"),
                         [("null", False), ('"0.5"', False), ("1e39", True), ("[1]", True),
                          ("1e-46", True)])
def test_an_answer_the_byte_reader_declines_gives_what_the_per_row_path_gives(
        conn: psycopg.Connection[Any], capture: CaptureServer, bad: str, fails: bool) -> None:
    # A null or a string among the numbers: the warm-up leaves the batch to the per-row path,
    # whose transform reads them (NULL, 0.5); out of range (too large, or too small: pgvector's
    # input, which the warm-up uses, would read 1e-46 as 0) or nested: both fail alike.
    def values(text: str) -> str:
        return "[" + ",".join([bad if text == "bad" else "0.25"] + ["1"] * 767) + "]"

    capture.responder = lambda seen: _vertex_answer(seen, values)
    fill(conn, ["good one", "bad", "good two"])
    results = run_both(conn, capture)
    assert (results["on"][0] is not None) is fails
    assert results["on"][1] == results["off"][1]
    if fails:
        # Same SQLSTATE; the message quotes the number as the provider wrote it ("1e39"), where
        # the per-row path, which reads the answer as jsonb, quotes numeric's spelling of it.
        assert results["on"][0][0] == results["off"][0][0]


def test_a_429_with_retry_after_delays_only_its_batch(
        conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    texts = [f"retry text {i}" for i in range(3 * VERTEX_BATCH)]
    fill(conn, texts)
    capture.script(":predict", Reply(429, {"error": {"code": 429, "message": "quota",
                                                     "status": "RESOURCE_EXHAUSTED"}},
                                     {"Retry-After": "0"}))
    conn.execute("SET google_ml_integration.emulator_warmup = on")
    before = len(capture.requests)
    conn.execute(BACKFILL)
    made = list(capture.requests)[before:]
    # three batches, one of them sent twice; no row fell back to a request of its own
    assert len(made) == 3 + 1
    assert all(len(r.json()["instances"]) == VERTEX_BATCH for r in made)
    left = conn.execute("SELECT count(*) FROM docs WHERE emb IS NULL").fetchone()
    assert left == (0,)


def test_a_cancelled_warmup_abandons_its_batches_and_the_session_goes_on(
        conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    """The warm-up's batches are streamed (emulator/engine/streams.py): a statement cancelled
    while it waits for them makes the engine drop the stream, so the requests still in flight
    are abandoned at once rather than left running; the next statement is served as usual."""
    fill(conn, [f"cancel text {i}" for i in range(3 * VERTEX_BATCH)])
    capture.closed_while_waiting.clear()
    capture.script(":predict", HANG, HANG, HANG)  # held open until the client leaves (30 s)
    conn.execute("SET google_ml_integration.emulator_warmup = on")
    conn.execute("SET statement_timeout = '1s'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute(BACKFILL)
    conn.execute("SET statement_timeout = 0")
    assert capture.closed_while_waiting.wait(10)
    before = len(capture.requests)
    conn.execute(BACKFILL)
    assert len(capture.requests) - before == 3  # batched again, no row alone
    assert conn.execute("SELECT count(*) FROM docs WHERE emb IS NULL").fetchone() == (0,)


def test_ai_if_rows_go_to_gemini_ten_prompts_a_request(
        conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    """25 rows of ai.if in a WHERE clause: with the warm-up, three generateContent requests of
    10, 10 and 5 prompts (AlloyDB's default batch size); without it, one request per row; the
    same rows either way."""
    conn.execute("UPDATE google_ml.models SET auth_type = NULL WHERE id = 'gemini-2.5-flash-lite'")
    conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
    conn.execute("DROP TABLE IF EXISTS reviews")
    conn.execute("CREATE TABLE reviews (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO reviews SELECT i, 'review ' || i || ': ' || "
                 "(ARRAY['great', 'awful', 'fine'])[1 + i % 3] FROM generate_series(1, 25) AS i")
    query = ("SELECT id FROM reviews WHERE ai.if('Is this review positive? ' || body) "
             "ORDER BY id")
    found = {}
    for mode in ("on", "off"):
        conn.execute(f"SET google_ml_integration.emulator_warmup = {mode}")
        before = len(capture.requests)
        found[mode] = conn.execute(query).fetchall()
        made = [r for r in list(capture.requests)[before:] if ":generateContent" in r.path]
        prompts = [len(json.loads(r.json()["contents"][0]["parts"][0]["text"])) for r in made
                   ] if mode == "on" else [1] * len(made)
        assert sorted(prompts, reverse=True) == ([10, 10, 5] if mode == "on" else [1] * 25)
    conn.execute("RESET google_ml_integration.emulator_warmup")
    assert found["on"] == found["off"]
    assert 0 < len(found["on"]) < 25


def test_the_engine_knows_which_numbers_real_refuses_as_too_small(
        conn: psycopg.Connection[Any]) -> None:
    # The warm-up parses with pgvector's input, which reads those as 0: the engine must leave
    # exactly them to the per-row path (emulator/engine/extract.py could_underflow_real).
    for token in NEAR_UNDERFLOW:
        row = conn.execute("SELECT pg_input_is_valid(%s, 'real')", (token,)).fetchone()
        assert row is not None
        assert could_underflow_real(f"{{{token}}}".encode()) is (not row[0]), token
