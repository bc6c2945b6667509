"""The warm-up's binary store, end to end (issue 12; emulator/engine/warm_copy.py, binary.py).

In READ COMMITTED the engine COPYs each answered batch of 17-digit numbers (what real providers
write) into the caller's statement cache in binary over its own connection, and the session
stores nothing. The rows must be exactly what the per-row path gives: a batch holding a number
that a double would round differently from strtof, a subnormal, an integer -0, takes the text
path instead. REPEATABLE READ keeps the text path (its snapshot would not see the rows); a COPY
that fails sends the batch as text. The metrics say which path each batch took.
"""

from __future__ import annotations

import random
import re
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from emulator.engine.engine import WARM_KINDS
from proxy.warmup import MODEL_CALLS
from tests.support.databases import fresh_database
from tests.support.emulators import Emulator, free_port, start_emulator, stop_emulator
from tests.support.http_servers import CaptureServer, Reply, Seen

MODEL = "text-embedding-005"
BACKFILL = f"UPDATE docs SET emb = google_ml.embedding('{MODEL}', content) WHERE emb IS NULL"
COPIED = "alloydb_ai_emulator_warmup_batches_copied_total"
FAILED = "alloydb_ai_emulator_warmup_copy_failures_total"
# A decimal just above the midpoint of 1 and the next float: read as a double it lands exactly
# on that midpoint, and the double rounds to 1.0 (ties to even), where strtof reads 1.0000001.
OFF_MIDPOINT = "1.0000000596046448"


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module")
def live(capture: CaptureServer) -> Iterator[tuple[Emulator, int]]:
    port = free_port()
    emu = start_emulator("--models", "live", "--vertex-base-url", capture.url,
                         "--google-project", "p", "--cache-size", "0", "--metrics-port", str(port),
                         env={"ALLOYDB_AI_EMULATOR_SECRET_OAKEY": "sk-warm-binary"})
    try:
        yield emu, port
    finally:
        stop_emulator(emu)


def database(live: tuple[Emulator, int], name: str) -> str:
    url = fresh_database(live[0], name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE google_ml.models SET auth_type = NULL WHERE id = '{MODEL}'")
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, content text, emb real[])")
    return url


@pytest.fixture(scope="module")
def dsn(live: tuple[Emulator, int]) -> str:
    return database(live, "e2e_warm_binary")


@pytest.fixture
def conn(dsn: str, capture: CaptureServer) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    capture.responder = lambda seen: vertex_answer(seen, dense)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("TRUNCATE docs")
        yield connection
    capture.responder = None


def metric(live: tuple[Emulator, int], name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{live[1]}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"no {name} in the metrics"
    return float(found.group(1))


def dense(text: str) -> list[str]:
    """768 numbers of 17 significant digits, the same for the same text."""
    rng = random.Random(text)
    return [repr(rng.uniform(-0.1, 0.1)) for _ in range(768)]


def vertex_answer(seen: Seen, numbers: Any) -> Reply:
    predictions = ",".join(
        '{"embeddings": {"statistics": {"truncated": false, "token_count": 3}, "values": ['
        + ",".join(numbers(i["content"])) + "]}}" for i in seen.json()["instances"])
    return Reply(200, ('{"predictions": [' + predictions + "]}").encode())


def fill(conn: psycopg.Connection[Any], texts: list[str]) -> None:
    conn.cursor().executemany("INSERT INTO docs (id, content) VALUES (%s, %s)",
                              list(enumerate(texts)))


def rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT id, emb::text FROM docs ORDER BY id").fetchall()


def per_row(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """The same backfill without the warm-up: one request per row, the output transform in SQL."""
    conn.execute("UPDATE docs SET emb = NULL")
    conn.execute("SET google_ml_integration.emulator_warmup = off")
    try:
        conn.execute(BACKFILL)
    finally:
        conn.execute("RESET google_ml_integration.emulator_warmup")
    return rows(conn)


def transformed(conn: psycopg.Connection[Any], numbers: list[str]) -> str:
    """What the built-in output transform makes of these number tokens."""
    row = conn.execute(
        "SELECT google_ml.vertexai_text_embedding_output_transform('m', json_build_object("
        "'predictions', json_build_array(json_build_object('embeddings', json_build_object("
        "'values', %s::json)))))::text", ("[" + ",".join(numbers) + "]",)).fetchone()
    assert row is not None
    return str(row[0])


def test_dense_batches_are_copied_in_binary_and_equal_the_per_row_path(
        conn: psycopg.Connection[Any], live: tuple[Emulator, int]) -> None:
    texts = [f"dense text {i}" for i in range(300)]  # two batches: 250 and 50
    fill(conn, texts)
    copied = metric(live, COPIED)
    conn.execute(BACKFILL)
    assert metric(live, COPIED) == copied + 2
    warmed = rows(conn)
    assert all(emb is not None and emb.count(",") == 767 for _, emb in warmed)
    assert warmed == per_row(conn)
    # The session stored nothing itself: the committed rows are the engine's, under this
    # session's statement keys only.
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()
    keys = conn.execute("SELECT DISTINCT split_part(statement_key, ':', 1)::int"
                        " FROM google_ml._warm_cache").fetchall()
    assert pid is not None and keys == [(pid[0],)]


def test_openai_batches_are_copied_in_input_order(
        conn: psycopg.Connection[Any], capture: CaptureServer, live: tuple[Emulator, int]) -> None:
    # The answer lists the embeddings backwards, each with its index: stored by index.
    conn.execute("SET google_ml_integration.allow_http_endpoints = on")
    conn.execute("CALL google_ml.create_sm_secret(secret_id => 'oakey', secret_path =>"
                 " 'projects/p/secrets/oakey/versions/1')")
    conn.execute(
        """CALL google_ml.create_model(model_id => 'oa', model_provider => 'open_ai',
             model_request_url => %s, model_type => 'text_embedding',
             model_qualified_name => 'text-embedding-3-small', model_auth_type => 'secret_manager',
             model_auth_id => 'oakey')""", (f"{capture.url}/v1/embeddings",))

    def openai(seen: Seen) -> Reply:
        given = seen.json()["input"]
        texts = [given] if isinstance(given, str) else given
        data = ",".join(f'{{"index": {i}, "embedding": [{",".join(dense(t))}]}}'
                        for i, t in reversed(list(enumerate(texts))))
        return Reply(200, ('{"data": [' + data + '], "usage": {"prompt_tokens": 3}}').encode())

    capture.responder = openai
    fill(conn, [f"openai text {i}" for i in range(40)])
    copied = metric(live, COPIED)
    backfill = BACKFILL.replace(MODEL, "oa")
    conn.execute(backfill)
    assert metric(live, COPIED) == copied + 1
    assert capture.requests[-1].headers["authorization"] == "Bearer sk-warm-binary"
    warmed = rows(conn)
    conn.execute("UPDATE docs SET emb = NULL")
    conn.execute("SET google_ml_integration.emulator_warmup = off")
    conn.execute(backfill)
    conn.execute("RESET google_ml_integration.emulator_warmup")
    assert warmed == rows(conn)
    assert all(emb is not None for _, emb in warmed)
    conn.execute("CALL google_ml.drop_model('oa')")
    conn.execute("CALL google_ml.drop_sm_secret('oakey')")


@pytest.mark.parametrize("odd", [OFF_MIDPOINT, "1e-40", "-1.2e-39", "-0", "3.4028235e38"])
def test_a_number_binary_would_read_differently_sends_its_batch_as_text(
        conn: psycopg.Connection[Any], capture: CaptureServer, live: tuple[Emulator, int],
        odd: str) -> None:
    # Each row holds the odd number among dense ones; the result must be what the output
    # transform reads from the provider's very bytes (3.4028235e38, beyond real, fails alike).
    def numbers(text: str) -> list[str]:
        return [odd, *dense(text)[1:]]

    capture.responder = lambda seen: vertex_answer(seen, numbers)
    texts = [f"odd text {i}" for i in range(5)]
    fill(conn, texts)
    copied, requests = metric(live, COPIED), len(capture.requests)
    try:
        conn.execute(BACKFILL)
    except psycopg.errors.NumericValueOutOfRange:
        assert odd == "3.4028235e38"
        return
    # Stored by the engine as text, parsed by PostgreSQL's own input as the session would
    # parse it: no row made its own call.
    assert metric(live, COPIED) == copied + 1
    assert len(capture.requests) - requests == 1
    assert [emb for _, emb in rows(conn)] == [transformed(conn, numbers(t)) for t in texts]
    if odd == OFF_MIDPOINT:
        assert all(emb.startswith("{1.0000001,") for _, emb in rows(conn))


def short(text: str) -> list[str]:
    """768 numbers of a few digits, as the fakes write theirs: too short to be worth reading
    in Python, so the engine stores them as text."""
    rng = random.Random(text)
    return [rng.choice(("0", "-0.5", "0.125", "1e-3", "-2E+1", "0.0625", "3"))
            for _ in range(768)]


@pytest.mark.parametrize("pgvector", [True, False])
def test_short_numbers_are_stored_by_the_engine_as_text_and_equal_the_per_row_path(
        capture: CaptureServer, live: tuple[Emulator, int], pgvector: bool) -> None:
    # The engine's INSERT parses them as the session would (pgvector's input with pgvector,
    # real[]'s without), the items whatever characters they hold.
    dsn = database(live, f"e2e_warm_text_{pgvector}")
    capture.responder = lambda seen: vertex_answer(seen, short)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if not pgvector:
                conn.execute("DROP EXTENSION vector")
            texts = ["tab\there", "line\nbreak\r\n", "back\\slash \\N", "{a,\"b\"}", "NULL",
                     "'quoted'", "ünïcødé ✓", " ", *(f"short text {i}" for i in range(300))]
            fill(conn, texts)
            copied, failed = metric(live, COPIED), metric(live, FAILED)
            requests = len(capture.requests)
            conn.execute(BACKFILL)
            assert metric(live, COPIED) == copied + 2 and metric(live, FAILED) == failed
            assert len(capture.requests) - requests == 2  # 308 texts: two batches, no row's own
            warmed = rows(conn)
            assert warmed == per_row(conn)
            assert [emb for _, emb in warmed] == [transformed(conn, short(t)) for t in texts]
    finally:
        capture.responder = None


def test_a_row_that_asks_after_its_stream_has_gone_reads_what_was_stored(
        conn: psycopg.Connection[Any], live: tuple[Emulator, int]) -> None:
    # The race: a row misses the cache, its batch is stored meanwhile, the stream (all of its
    # batches stored) goes, and the row's stream_wait hears 'x'. The row must read the cache
    # again, not make its own call. Here the stream never existed: the engine answers 'x' alike.
    key = "0:race"
    conn.execute("INSERT INTO google_ml._warm_cache (statement_key, kind, model_id, item,"
                 " embedding) VALUES (%s, 'embedding', 'm', 'stored text', '{1,2,3}')", (key,))
    try:
        with conn.transaction():  # the warm-up's setting is the transaction's, as here
            conn.execute("SELECT set_config('google_ml_integration.emulator_warm_streams', %s,"
                         " true)", (f"{key} gone",))
            found = conn.execute("SELECT google_ml._warm_wait(%s, 'm', 'stored text')::text",
                                 (key,)).fetchone()
            assert found == ("{1,2,3}",)  # read from the cache
            # and the setting is cleared: later rows, which read the cache first, ask no more
            streams = conn.execute("SELECT current_setting("
                                   "'google_ml_integration.emulator_warm_streams')").fetchone()
            assert streams == ("",)
    finally:
        conn.execute("DELETE FROM google_ml._warm_cache WHERE statement_key = %s", (key,))


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ"])
def test_a_warmup_in_chunks_streams_each_and_equals_the_per_row_path(
        dsn: str, conn: psycopg.Connection[Any], capture: CaptureServer,
        live: tuple[Emulator, int], isolation: str) -> None:
    # One invoke_batch is one jsonb, bounded at 256 MB: a large warm-up goes in chunks, a
    # stream each (64 MB of request bodies; here a byte, so that each request is its own).
    capture.responder = lambda seen: vertex_answer(seen, short)
    texts = [f"chunk text {i}" for i in range(600)]
    fill(conn, texts)
    expected = per_row(conn)
    conn.execute("UPDATE docs SET emb = NULL")
    with psycopg.connect(dsn) as other:
        other.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        other.execute("SET LOCAL google_ml_integration.emulator_warmup_chunk_bytes = 1")
        other.execute("SET LOCAL track_functions = 'pl'")
        copied, requests = metric(live, COPIED), len(capture.requests)
        other.execute(BACKFILL)
        assert len(capture.requests) - requests == 3  # ceil(600 / 250): no row's own call
        streams = other.execute(
            "SELECT pg_stat_get_xact_function_calls('google_ml._warm_stream(text, text, text[],"
            " jsonb[], text, integer[], integer[])'::regprocedure)").fetchone()
        assert streams == (3,)  # a stream per request
        assert rows(other) == expected
        stored = metric(live, COPIED) - copied
        assert stored == (3 if isolation == "READ COMMITTED" else 0)


def labelled(live: tuple[Emulator, int], name: str, label: str, value: str) -> float:
    """A labelled counter of the emulator's metrics (0 before its first count)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{live[1]}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(rf'^alloydb_ai_emulator_{name}_total{{{label}="{value}"}} (\S+)$', text,
                      re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def fallbacks(live: tuple[Emulator, int], sqlstate: str) -> float:
    return labelled(live, "warmup_fallbacks", "sqlstate", sqlstate)


def test_a_warmup_that_fails_is_counted_by_its_sqlstate_and_the_rows_go_on(
        dsn: str, conn: psycopg.Connection[Any], capture: CaptureServer,
        live: tuple[Emulator, int]) -> None:
    # The warm-up swallows its own errors (the per-row calls report what is theirs); the
    # emulator counts them, so that one failing on its own bounds is seen. Here a chunk size
    # that is no number fails it (22P02).
    capture.responder = lambda seen: vertex_answer(seen, short)
    texts = [f"fallback text {i}" for i in range(5)]
    fill(conn, texts)
    expected = per_row(conn)
    conn.execute("UPDATE docs SET emb = NULL")
    before, requests = fallbacks(live, "22P02"), len(capture.requests)
    with psycopg.connect(dsn) as other:
        other.execute("SET LOCAL google_ml_integration.emulator_warmup_chunk_bytes = 'many'")
        other.execute(BACKFILL)
        assert rows(other) == expected
    assert len(capture.requests) - requests == 5  # each row its own call
    assert fallbacks(live, "22P02") == before + 1


def misses(live: tuple[Emulator, int], kind: str) -> float:
    return labelled(live, "warmup_row_misses", "kind", kind)


def test_a_row_of_a_warmed_statement_that_finds_no_warmed_answer_is_counted(
        conn: psycopg.Connection[Any], capture: CaptureServer,
        live: tuple[Emulator, int]) -> None:
    # The warm-up covers the calls outside subqueries. Each row's call inside one finds nothing
    # warmed and makes its own request, silently but for this count; a warmed row counts nothing.
    capture.responder = lambda seen: vertex_answer(seen, short)
    fill(conn, [f"miss text {i}" for i in range(4)])
    before, requests = misses(live, "embedding"), len(capture.requests)
    conn.execute(BACKFILL)
    assert len(capture.requests) - requests == 1
    assert misses(live, "embedding") == before
    conn.execute("UPDATE docs SET emb = NULL")
    requests = len(capture.requests)
    conn.execute(f"{BACKFILL} AND (SELECT google_ml.embedding('{MODEL}', content || ' again')) "
                 "IS NOT NULL")
    assert len(capture.requests) - requests == 1 + 4  # the warmed batch, a request per row
    assert misses(live, "embedding") == before + 4
    assert conn.execute("SELECT count(*) FROM docs WHERE emb IS NOT NULL").fetchone() == (4,)


def test_the_miss_counts_labels_are_the_warm_ups_kinds_whatever_a_caller_sends(
        conn: psycopg.Connection[Any], live: tuple[Emulator, int]) -> None:
    # Any user can reach the engine's op: a label per made-up kind would grow without bound.
    assert WARM_KINDS == {kind for kind, *_ in MODEL_CALLS.values()}
    before, generate = misses(live, "other"), misses(live, "generate")
    conn.execute("SELECT google_ml._warm_missed(k) FROM unnest(ARRAY['x1', 'x2', 'generate']) k")
    assert misses(live, "other") == before + 2
    assert misses(live, "generate") == generate + 1


def test_repeatable_read_keeps_the_text_path(
        dsn: str, conn: psycopg.Connection[Any], live: tuple[Emulator, int]) -> None:
    fill(conn, [f"rr text {i}" for i in range(20)])
    expected = per_row(conn)
    conn.execute("UPDATE docs SET emb = NULL")
    copied = metric(live, COPIED)
    with psycopg.connect(dsn) as other:
        other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        other.execute(BACKFILL)
        assert rows(other) == expected
    assert metric(live, COPIED) == copied


def test_a_caller_cannot_name_the_statement_key_the_engine_stores_under(
        conn: psycopg.Connection[Any], live: tuple[Emulator, int]) -> None:
    # A hand-made streamed request naming another backend's key: _authorized_request puts the
    # caller's own in its place (and the engine would refuse a key of another pid).
    request = ('{"op": "invoke_batch", "stream": true, "extract": "vertex_embeddings",'
               ' "store": {"key": "1:forged", "model_id": "x"}, "pipeline": true,'
               ' "requests": [{"model_id": "'
               + MODEL + '", "body": {"instances": [{"content": "forged"}]}}]}')
    copied = metric(live, COPIED)
    stream = conn.execute("SELECT google_ml._call_engine_text(%s::jsonb)", (request,)).fetchone()
    assert stream is not None
    assert stream[0].startswith("p:")  # a pipelined warm-up: the engine stores its batches
    answer = conn.execute("SELECT google_ml._call_engine_text(jsonb_build_object("
                          "'op', 'stream_wait', 'streams', jsonb_build_array(%s::text),"
                          " 'model_id', 'x', 'item', 'forged'))", (stream[0][2:],)).fetchone()
    # Stored by the engine: "s", or "x" when the batch had ended and its stream gone before
    # the wait came (a busy machine: the stream goes once its every batch is stored)
    assert answer in {("s",), ("x",)}
    assert metric(live, COPIED) == copied + 1
    stored = conn.execute("SELECT statement_key, model_id FROM google_ml._warm_cache"
                          " WHERE item = 'forged'").fetchall()
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert pid is not None and len(stored) == 1
    assert stored[0][0].startswith(f"{pid[0]}:") and stored[0][1] == "x"


def test_a_copy_that_fails_sends_the_batch_as_text(
        live: tuple[Emulator, int], capture: CaptureServer) -> None:
    # Its own database: after a failure the engine leaves that database to the text path for a
    # while. The trigger refuses the engine's own connection only.
    url = database(live, "e2e_warm_binary_refused")
    capture.responder = lambda seen: vertex_answer(seen, dense)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION refuse_engine() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('application_name') = 'alloydb-ai-emulator' THEN
                    RAISE EXCEPTION 'no copies here';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_engine BEFORE INSERT ON google_ml._warm_cache
                FOR EACH ROW EXECUTE FUNCTION refuse_engine();""")
        fill(conn, [f"refused text {i}" for i in range(30)])
        copied, failed = metric(live, COPIED), metric(live, FAILED)
        conn.execute(BACKFILL)
        assert metric(live, FAILED) == failed + 1 and metric(live, COPIED) == copied
        requests = len(capture.requests)
        warmed = rows(conn)
        assert all(emb is not None for _, emb in warmed)
        assert warmed == per_row(conn)
        assert len(capture.requests) - requests == 30  # the per-row run; the warm-up had them all


def test_the_engine_leaves_the_database_once_the_warmup_is_over(
        live: tuple[Emulator, int], capture: CaptureServer) -> None:
    # Its connections would make DROP DATABASE fail ("being accessed by other users").
    url = database(live, "e2e_warm_binary_dropped")
    capture.responder = lambda seen: vertex_answer(seen, dense)
    copied = metric(live, COPIED)
    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, [f"dropped text {i}" for i in range(260)])
        conn.execute(BACKFILL)
    assert metric(live, COPIED) == copied + 2
    with live[0].connect() as admin:
        admin.execute("DROP DATABASE e2e_warm_binary_dropped")


def test_a_copy_waiting_on_the_callers_own_lock_gives_up_and_goes_as_text(
        live: tuple[Emulator, int], capture: CaptureServer) -> None:
    # The caller's transaction holds the cache locked; the engine's COPY would wait for it while
    # the caller waits for the COPY. It gives up after its lock timeout (1 s), and so do the
    # warm-up's other batches at once: the statement ends, with the rows it must have.
    url = database(live, "e2e_warm_binary_locked")
    capture.responder = lambda seen: vertex_answer(seen, dense)
    with psycopg.connect(url) as conn:
        fill(conn, [f"locked text {i}" for i in range(3 * 250)])  # three batches
        conn.commit()
        failed = metric(live, FAILED)
        conn.execute("LOCK TABLE google_ml._warm_cache IN ACCESS EXCLUSIVE MODE")
        conn.execute(BACKFILL)
        warmed = rows(conn)
        conn.rollback()
        assert metric(live, FAILED) == failed + 3
        assert all(emb is not None and emb.count(",") == 767 for _, emb in warmed)


def test_two_sessions_warming_up_at_once_each_get_their_own_rows(
        dsn: str, capture: CaptureServer, live: tuple[Emulator, int]) -> None:
    # Both COPY through the engine's two connections to this database at the same time, each
    # under its own statement's key; neither sees the other's rows, and both equal the per-row
    # path.
    capture.responder = lambda seen: vertex_answer(seen, dense)
    tables = ("docs_a", "docs_b")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, content text, emb real[])")
            conn.cursor().executemany(f"INSERT INTO {table} (id, content) VALUES (%s, %s)",
                                      [(i, f"{table} text {i}") for i in range(260)])
    copied = metric(live, COPIED)

    def backfill(table: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(BACKFILL.replace("docs", table))
            return conn.execute(f"SELECT id, emb::text FROM {table} ORDER BY id").fetchall()

    with ThreadPoolExecutor(2) as pool:
        warmed = list(pool.map(backfill, tables))
    assert metric(live, COPIED) == copied + 4  # 260 texts each: two batches each
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET google_ml_integration.emulator_warmup = off")
        for table, rows_warmed in zip(tables, warmed, strict=True):
            conn.execute(f"UPDATE {table} SET emb = NULL")
            conn.execute(BACKFILL.replace("docs", table))
            assert rows_warmed == conn.execute(
                f"SELECT id, emb::text FROM {table} ORDER BY id").fetchall()
            assert all(emb is not None for _, emb in rows_warmed)
            conn.execute(f"DROP TABLE {table}")


def test_rows_are_updated_while_the_last_batch_is_still_being_answered(
        live: tuple[Emulator, int], capture: CaptureServer) -> None:
    # Pipelined: the warm-up starts the batches and lets the rows go; a row whose batch is not
    # stored yet waits for that batch alone. The provider answers the last batch only once a row
    # has been updated (a sequence, which other sessions see at once, counts them): without the
    # pipeline the statement would wait for that answer first, and the provider would give up
    # waiting (30 s) with no row updated.
    url = database(live, "e2e_warm_pipelined")
    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, [f"piped text {i}" for i in range(750)])  # three batches, in scan order
        conn.execute("""
            CREATE SEQUENCE progress;
            CREATE FUNCTION count_row() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM nextval('progress');
                RETURN NEW;
            END $$;
            CREATE TRIGGER count_row BEFORE UPDATE ON docs
                FOR EACH ROW EXECUTE FUNCTION count_row();""")
        updated_before_the_last_answer: list[int] = []

        def responder(seen: Seen) -> Reply:
            if "piped text 749" in (i["content"] for i in seen.json()["instances"]):
                with psycopg.connect(url, autocommit=True) as watcher:
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        row = watcher.execute(
                            "SELECT last_value, is_called FROM progress").fetchone()
                        if row is not None and row[1]:
                            updated_before_the_last_answer.append(row[0])
                            break
                        time.sleep(0.05)
            return vertex_answer(seen, dense)

        capture.responder = responder
        try:
            requests = len(capture.requests)
            conn.execute(BACKFILL)
            assert len(capture.requests) - requests == 3
        finally:
            capture.responder = None
        assert updated_before_the_last_answer and updated_before_the_last_answer[0] >= 1
        warmed = rows(conn)
        capture.responder = lambda seen: vertex_answer(seen, dense)
        try:
            assert warmed == per_row(conn)
        finally:
            capture.responder = None


def test_two_warmups_in_one_statement_each_answer_their_own_rows(
        conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    # Two pipelined streams in one statement: each row waits on the stream of its own call.
    conn.execute("DROP TABLE IF EXISTS pairs")
    conn.execute("CREATE TABLE pairs (id int PRIMARY KEY, content text, a real[], b real[])")
    conn.cursor().executemany("INSERT INTO pairs (id, content) VALUES (%s, %s)",
                              [(i, f"pair text {i}") for i in range(300)])
    both = (f"UPDATE pairs SET a = google_ml.embedding('{MODEL}', content),"
            f" b = google_ml.embedding('{MODEL}', content || ' again')")
    requests = len(capture.requests)
    conn.execute(both)
    assert len(capture.requests) - requests == 4  # two batches for each call, no row's own
    warmed = conn.execute("SELECT id, a::text, b::text FROM pairs ORDER BY id").fetchall()
    conn.execute("UPDATE pairs SET a = NULL, b = NULL")
    conn.execute("SET google_ml_integration.emulator_warmup = off")
    try:
        conn.execute(both)
    finally:
        conn.execute("RESET google_ml_integration.emulator_warmup")
    assert warmed == conn.execute("SELECT id, a::text, b::text FROM pairs ORDER BY id").fetchall()
    assert all(a != b for _, a, b in warmed)


def test_a_warmup_of_an_older_build_that_asks_store_alone_gets_its_batches_as_text(
        conn: psycopg.Connection[Any], live: tuple[Emulator, int]) -> None:
    # A database whose extension an older build created: its _warm_stream sends "store" without
    # "pipeline" and takes the batches with stream_next, which must still give it their lines.
    request = ('{"op": "invoke_batch", "stream": true, "extract": "vertex_embeddings",'
               ' "store": {"model_id": "' + MODEL + '"}, "requests": [{"model_id": "'
               + MODEL + '", "body": {"instances": [{"content": "older"}]}}]}')
    copied = metric(live, COPIED)
    stream = conn.execute("SELECT google_ml._call_engine_text(%s::jsonb)", (request,)).fetchone()
    assert stream is not None and not stream[0].startswith("p:")
    chunk = conn.execute("SELECT google_ml._call_engine_text(jsonb_build_object("
                         "'op', 'stream_next', 'stream', %s::text))", (stream[0],)).fetchone()
    assert chunk is not None
    position, line = chunk[0].split("\n")
    assert position == "0" and line.startswith("{") and line.count(",") == 767
    assert metric(live, COPIED) == copied
