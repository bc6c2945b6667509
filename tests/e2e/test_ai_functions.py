"""The AI query engine: ai.if, ai.generate, ai.rank (scalar, array, cursor, reranking).

Against the session emulator's fakes (database ``ai_functions``), and against an emulator in live
mode whose Vertex AI and Discovery Engine base URLs point at the project's fake model server run
in this process, whose ``received`` requests show the wire format (docs/ai-functions.md).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from emulator.fakes.knobs import FakeKnobs
from emulator.fakes.server import FakeModelServer
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.http_servers import CaptureServer, Reply, ScriptedServer, Seen

DB = "ai_functions"
IF_SCHEMA = {"type": "STRING", "enum": ["true", "false"]}
RANKING_PATH = "/v1/projects/p/locations/global/rankingConfigs/default_ranking_config:rank"


def _fresh_database(emulator: Emulator, name: str) -> str:
    with emulator.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = emulator.dsn_for(dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")
        conn.execute(f"ALTER DATABASE {name} SET google_ml_integration.enable_ai_query_engine = on")
    return dsn


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    return _fresh_database(emulator, DB)


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


# -- scalar forms ------------------------------------------------------------------------------


def test_if_answers_by_the_fake_rules(db: psycopg.Connection[Any]) -> None:
    assert one(db, "SELECT ai.if('Is this review positive? I love it, great product')") is True
    assert one(db, "SELECT ai.if('Is this review positive? terrible, it arrived broken')") is False
    assert one(db, "SELECT google_ml.if('Is this about delivery? the delivery was late',"
                   " 'gemini-2.5-flash-lite')") is True


def test_the_optimized_form_given_a_model_is_refused_with_a_hint(
        db: psycopg.Connection[Any]) -> None:
    # troubleshoot/troubleshoot-optimized-func: "If you pass the model_id parameter together with
    # the embedding column when calling ai.if(), AlloyDB doesn't use the trained proxy model and
    # generates an error like ... ERROR:  function ai.if(text, vector, unknown) does not exist"
    db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    db.execute("DROP TABLE IF EXISTS restaurant_reviews")
    db.execute("CREATE TABLE restaurant_reviews (review text, review_embedding vector(3))")
    db.execute("INSERT INTO restaurant_reviews VALUES ('Great food', '[1,2,3]')")
    with pytest.raises(psycopg.errors.UndefinedFunction) as info:
        db.execute("select ai.if('Is the rating positive?' || review, review_embedding, "
                   "'gemini-2.5-pro') from restaurant_reviews;")
    assert info.value.diag.message_primary == "function ai.if(text, vector, unknown) does not exist"
    assert info.value.diag.statement_position == "8"
    assert "which takes no model_id" in (info.value.diag.message_hint or "")
    # Without the model: the optimized form answers.
    assert one(db, "select ai.if('Is the rating positive?' || review, review_embedding) "
                   "from restaurant_reviews") is not None


def test_embedding_of_a_name_vertex_ai_does_not_know_fails_as_on_alloydb(
        db: psycopg.Connection[Any]) -> None:
    """embedding() takes an unregistered name as a Vertex AI model's, as AlloyDB does; the fake
    Vertex AI answers an unknown one 404, as Vertex AI does: an error, not 768 numbers."""
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT embedding('not_existing_model_id', 'test document')")
    diag = caught.value.diag
    assert caught.value.sqlstate == "38000"
    assert diag.message_primary == ('model "not_existing_model_id": the provider answered '
                                    "HTTP 404")
    assert "Publisher Model" in str(diag.message_detail) and "not found" in str(
        diag.message_detail)


def test_generate_returns_the_text(db: psycopg.Connection[Any]) -> None:
    assert one(db, "SELECT ai.generate('Say hello')") == (
        "Fake answer from gemini-2.5-flash-lite: Say hello")
    assert one(db, "SELECT google_ml.generate(prompt => 'Say hello')").startswith("Fake answer")


def test_rank_returns_a_number(db: psycopg.Connection[Any]) -> None:
    score = one(db, "SELECT ai.rank('Score from 1 to 10 how much this is about delivery? "
                    "the delivery was late')")
    assert isinstance(score, float) and 1 <= score <= 10
    assert one(db, "SELECT google_ml.rank('How much is this about delivery? nice color')") == 0.0


def test_null_prompt_answers_null(db: psycopg.Connection[Any]) -> None:
    assert one(db, "SELECT ai.if(NULL::text)") is None


def test_functions_are_immutable_and_parallel_safe(db: psycopg.Connection[Any]) -> None:
    rows = db.execute(
        "SELECT n.nspname, p.proname, p.provolatile, p.proparallel FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname IN ('ai', 'google_ml') AND p.proname IN ('if', 'generate', 'rank')"
    ).fetchall()
    # three forms each, plus reranking and the cost-optimized ai.if(prompt, embedding) of 1.5.8,
    # in both schemas; that one is PARALLEL RESTRICTED (its warning keeps state in a setting);
    # the cursor forms read and open cursors: VOLATILE, PARALLEL UNSAFE, as on AlloyDB
    assert len(rows) == 2 * (3 * 3 + 2)
    assert {(r[2], r[3]) for r in rows} == {("i", "s"), ("i", "r"), ("v", "u")}
    assert db.execute(
        "SELECT count(*) FROM pg_proc WHERE provolatile = 'v' AND proname IN ('if', 'generate', 'rank') "
        "AND pg_get_function_identity_arguments(oid) LIKE '%input_cursor refcursor%'").fetchone() == (6,)
    assert db.execute(
        "SELECT count(*) FROM pg_proc WHERE proname = 'if' AND proparallel = 'r' "
        "AND pg_get_function_identity_arguments(oid) = 'prompt text, embedding real[]'"
    ).fetchone() == (2,)


def test_cursor_forms_are_volatile_so_explain_does_not_run_them(db: psycopg.Connection[Any]) -> None:
    """AlloyDB declares the cursor forms without IMMUTABLE (VOLATILE, PARALLEL UNSAFE), as copies
    of its definitions in a mock set-up that runs on AlloyDB Omni show. An IMMUTABLE call with
    constant arguments would run while the statement is planned: EXPLAIN would read the input
    cursor to its end and call the model."""
    with db.transaction():
        db.execute("DECLARE c1 CURSOR FOR SELECT 'hello ' || g FROM generate_series(1, 3) AS g")
        for function in ("if", "generate", "rank", "summarize", "analyze_sentiment"):
            db.execute(f"EXPLAIN SELECT ai.{function}('Say: ', 'c1'::refcursor)")
        assert len(db.execute("FETCH ALL FROM c1").fetchall()) == 3


def test_unknown_and_wrong_type_models_are_clear_errors(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.UndefinedObject, match='"nope"'):
        db.execute("SELECT ai.if('x?', 'nope')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="llm"):
        db.execute("SELECT ai.generate('x', 'text-embedding-005')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="reranking"):
        db.execute("SELECT * FROM ai.rank('gemini-2.5-flash-lite', 'q', ARRAY['a'])")


# -- array forms -------------------------------------------------------------------------------


def test_array_forms_answer_each_item_in_order(db: psycopg.Connection[Any]) -> None:
    prompts = ["Is this positive? I love it", "Is this positive? awful and broken", None,
               "Is this positive? great, excellent"]
    assert one(db, "SELECT ai.if(%s::text[], 2)", [prompts]) == [True, False, None, True]
    scores = one(db, "SELECT google_ml.rank(%s::text[])",
                 [["How much about delivery? late delivery", "How much about delivery? red"]])
    assert scores == [0.5, 0.0]
    texts = one(db, "SELECT ai.generate(ARRAY['a', 'b', 'c'], batch_size => 2)")
    assert texts == [f"Fake answer from gemini-2.5-flash-lite: {x}" for x in "abc"]


def test_array_answers_match_the_scalar_answers(db: psycopg.Connection[Any]) -> None:
    prompts = [f"Is this about delivery? item {i} {'late parcel' if i % 3 else 'blue'}"
               for i in range(23)]
    batched = one(db, "SELECT ai.if(%s::text[])", [prompts])
    scalar = [one(db, "SELECT ai.if(%s::text)", [p]) for p in prompts]
    assert batched == scalar


def test_array_rejects_a_bad_batch_size(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch_size"):
        db.execute("SELECT ai.if(ARRAY['x'], 0)")


# -- cursor forms ------------------------------------------------------------------------------


def test_cursor_forms_read_to_the_end(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:  # a transaction: cursors live in it
        conn.execute("CREATE TEMP TABLE inputs AS SELECT i, 'review ' || i || "
                     "CASE WHEN i % 2 = 0 THEN ' I love it' ELSE ' it broke' END AS body "
                     "FROM generate_series(1, 25) AS i")
        conn.execute("DECLARE reviews CURSOR FOR SELECT body, i FROM inputs ORDER BY i")
        name = one(conn, "SELECT ai.if('Is this positive? ', 'reviews'::refcursor, 4)")
        rows = conn.execute(f'FETCH ALL FROM "{name}"').fetchall()
        assert len(rows) == 25
        assert [r[0] for r in rows] == [f"review {i}" + (" I love it" if i % 2 == 0 else " it broke")
                                        for i in range(1, 26)]
        assert [r[1] for r in rows] == [i % 2 == 0 for i in range(1, 26)]

        conn.execute("DECLARE texts CURSOR FOR SELECT body FROM inputs WHERE i <= 3 ORDER BY i")
        name = one(conn, "SELECT google_ml.generate('Summarize: ', 'texts'::refcursor)")
        rows = conn.execute(f'FETCH ALL FROM "{name}"').fetchall()
        assert [r[1] for r in rows] == [
            f"Fake answer from gemini-2.5-flash-lite: Summarize: review {i} it broke"
            if i % 2 else f"Fake answer from gemini-2.5-flash-lite: Summarize: review {i} I love it"
            for i in range(1, 4)]

        conn.execute("DECLARE docs CURSOR FOR VALUES ('late delivery'), ('red shoes')")
        name = one(conn, "SELECT ai.rank('How much about delivery? ', 'docs'::refcursor, 10)")
        assert conn.execute(f'FETCH ALL FROM "{name}"').fetchall() == [
            ("late delivery", 0.5), ("red shoes", 0.0)]


# -- reranking ---------------------------------------------------------------------------------


def test_reranking_sorts_by_score_with_one_based_indexes(db: psycopg.Connection[Any]) -> None:
    rows = db.execute(
        "SELECT index, score FROM ai.rank('semantic-ranker-default-003', 'late delivery', "
        "ARRAY['the color is nice', 'delivery was late', 'slow delivery service'])").fetchall()
    assert [r[0] for r in rows] == [2, 3, 1]
    assert rows[0][1] > rows[1][1] > rows[2][1]
    top = db.execute("SELECT * FROM google_ml.rank(model_id => 'semantic-ranker-default-003', "
                     "search_string => 'late delivery', documents => ARRAY['red', 'late delivery'], "
                     "top_n => 1)").fetchall()
    assert [r[0] for r in top] == [2]


def test_reranking_more_than_200_documents_merges_the_requests(db: psycopg.Connection[Any]) -> None:
    documents = [f"document {i} about cats" for i in range(450)]
    documents[321] = "late delivery of the parcel"
    documents[7] = "delivery"
    rows = db.execute("SELECT index FROM ai.rank('semantic-ranker-default-003', "
                      "'late delivery', %s::text[], 3)", [documents]).fetchall()
    assert [r[0] for r in rows][:2] == [322, 8]
    assert len(rows) == 3
    total = one(db, "SELECT count(*) FROM ai.rank('semantic-ranker-default-003', 'cats', %s::text[])",
                [documents])
    assert total == 450


# -- flag gating -------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "SELECT ai.if('x?')",
    "SELECT google_ml.generate('x')",
    "SELECT ai.rank('x')",
    "SELECT ai.if(ARRAY['x'])",
    "SELECT ai.generate(ARRAY['x'], 2)",
    "SELECT * FROM ai.rank('semantic-ranker-default-003', 'q', ARRAY['a'])",
])
def test_query_engine_flag_off_is_p0001_naming_the_setting(db: psycopg.Connection[Any],
                                                           sql: str) -> None:
    db.execute("SET google_ml_integration.enable_ai_query_engine = off")
    with pytest.raises(psycopg.errors.RaiseException,
                       match="google_ml_integration.enable_ai_query_engine") as info:
        db.execute(sql)
    assert info.value.sqlstate == "P0001"


def test_cursor_form_is_gated_too(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET google_ml_integration.enable_ai_query_engine = off")
        conn.execute("DECLARE c CURSOR FOR SELECT 'a'")
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("SELECT ai.if('x? ', 'c'::refcursor)")


# -- warm-up -----------------------------------------------------------------------------------


def test_where_ai_if_gives_the_same_answer_with_the_warm_up_on_and_off(
        db: psycopg.Connection[Any]) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS reviews (id int PRIMARY KEY, body text)")
    db.execute("TRUNCATE reviews")
    db.execute("INSERT INTO reviews SELECT i, 'review ' || i || ': ' || "
               "(ARRAY['great product', 'terrible, broken', 'ok', 'love it', 'awful'])[1 + i % 5] "
               "FROM generate_series(1, 1000) AS i")
    query = "SELECT count(*) FROM reviews WHERE ai.if('Is this positive? ' || body)"
    warmed = one(db, query)
    db.execute("SET google_ml_integration.emulator_warmup = off")
    cold = one(db, query)
    db.execute("RESET google_ml_integration.emulator_warmup")
    assert warmed == cold == 400
    ranked = db.execute("SELECT id FROM reviews WHERE id <= 30 "
                        "ORDER BY ai.rank('How positive is this? ' || body) DESC, id").fetchall()
    db.execute("SET google_ml_integration.emulator_warmup = off")
    ranked_cold = db.execute("SELECT id FROM reviews WHERE id <= 30 "
                             "ORDER BY ai.rank('How positive is this? ' || body) DESC, id").fetchall()
    assert ranked == ranked_cold


# -- wire format, against a local HTTP server ------------------------------------------------


class FakeServerThread:
    """The project's fake model server on an event loop of its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: None)  # shutdown noise
        self.server = FakeModelServer(FakeKnobs())
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.port = asyncio.run_coroutine_threadsafe(
            self.server.start("127.0.0.1", 0), self.loop).result(10)

    def take(self) -> list[tuple[str, Any]]:
        requests = [(r.path, r.json()) for r in list(self.server.received)]
        self.server.received.clear()
        return requests

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, FakeServerThread]]:
    fake = FakeServerThread()
    base = f"http://127.0.0.1:{fake.port}"
    emulator = start_emulator("--models", "live", "--vertex-base-url", base,
                              "--discovery-engine-base-url", base, "--google-project", "p",
                              "--cache-size", "0")
    try:
        dsn = _fresh_database(emulator, "ai_functions_live")
        with psycopg.connect(dsn, autocommit=True) as conn:
            # The local server needs no token.
            conn.execute("UPDATE google_ml.models SET auth_type = NULL "
                         "WHERE id IN ('gemini-2.5-flash-lite', 'semantic-ranker-default-003')")
        yield dsn, fake
    finally:
        stop_emulator(emulator)
        fake.close()


GEMINI_PATH = ("/v1/projects/p/locations/us-central1/publishers/google/models/"
               "gemini-2.5-flash-lite:generateContent")


def _live(live: tuple[str, FakeServerThread], sql: str, params: Any = None) -> tuple[Any, list[Any]]:
    dsn, fake = live
    fake.take()
    with psycopg.connect(dsn, autocommit=True) as conn:
        value = one(conn, sql, params)
    return value, fake.take()


def test_live_scalar_if_asks_for_an_enum(live: tuple[str, FakeServerThread]) -> None:
    value, requests = _live(live, "SELECT ai.if('Is this positive? I love it')")
    assert value is True
    [(path, body)] = requests
    assert path == GEMINI_PATH
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Is this positive? I love it"}]}]
    assert body["generationConfig"]["responseSchema"] == IF_SCHEMA


def test_live_scalar_rank_asks_for_a_number_and_generate_for_text(
        live: tuple[str, FakeServerThread]) -> None:
    value, [(path, body)] = _live(live, "SELECT ai.rank('How much about delivery? late delivery')")
    assert value == 0.5
    assert path == GEMINI_PATH
    assert body["generationConfig"]["responseSchema"] == {"type": "NUMBER"}
    value, [(_, body)] = _live(live, "SELECT ai.generate('Say hi')")
    assert value.endswith("Say hi")
    assert "generationConfig" not in body


def test_live_array_call_is_one_request_per_batch(live: tuple[str, FakeServerThread]) -> None:
    prompts = [f"Is this positive? {w}" for w in ("great", "awful", "love it", "broken", "nice")]
    value, requests = _live(live, "SELECT ai.if(%s::text[], 2)", [prompts])
    assert value == [True, False, True, False, True]
    assert len(requests) == 3
    # The batches go out concurrently: match each request to its batch by its prompts.
    sent = sorted(requests, key=lambda r: prompts.index(
        json.loads(r[1]["contents"][0]["parts"][0]["text"])[0]))
    for (path, body), batch in zip(sent, (prompts[0:2], prompts[2:4], prompts[4:5])):
        assert path == GEMINI_PATH
        n = len(batch)
        assert body["generationConfig"]["responseSchema"] == {
            "type": "ARRAY", "items": IF_SCHEMA, "minItems": n, "maxItems": n}
        [content] = body["contents"]
        [part] = content["parts"]
        assert json.loads(part["text"]) == batch
        assert f"JSON array of {n} prompts" in body["systemInstruction"]["parts"][0]["text"]
    value, requests = _live(live, "SELECT ai.rank(%s::text[])", [prompts])
    assert len(requests) == 1
    assert requests[0][1]["generationConfig"]["responseSchema"]["items"] == {"type": "NUMBER"}


def test_live_reranking_request_and_split(live: tuple[str, FakeServerThread]) -> None:
    value, [(path, body)] = _live(
        live, "SELECT array_agg(index) FROM ai.rank('semantic-ranker-default-003', 'late delivery', "
              "ARRAY['red', 'late delivery'], 1)")
    assert value == [2]
    assert path == RANKING_PATH
    assert body == {"model": "semantic-ranker-default-003", "query": "late delivery",
                    "records": [{"id": "1", "content": "red"}, {"id": "2", "content": "late delivery"}],
                    "topN": 1, "ignoreRecordDetailsInResponse": True}
    documents = [f"doc {i}" for i in range(450)]
    value, requests = _live(live, "SELECT count(*) FROM ai.rank('semantic-ranker-default-003', "
                                  "'doc 7', %s::text[])", [documents])
    assert value == 450
    assert [len(b["records"]) for _, b in requests] == [200, 200, 50]
    assert sorted(int(r["id"]) for _, b in requests for r in b["records"]) == list(range(1, 451))


def test_live_warm_up_batches_per_row_calls_by_ten(live: tuple[str, FakeServerThread]) -> None:
    dsn, _ = live
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id int, body text)")
        conn.execute("TRUNCATE notes")
        conn.execute("INSERT INTO notes SELECT i, 'note ' || i || "
                     "CASE WHEN i % 2 = 0 THEN ' great' ELSE ' awful' END FROM generate_series(1, 25) i")
    value, requests = _live(live, "SELECT count(*) FROM notes WHERE ai.if('Is this positive? ' || body)")
    assert value == 12
    assert len(requests) == 3
    assert sorted(b["generationConfig"]["responseSchema"]["minItems"] for _, b in requests) == [5, 10, 10]


def test_live_warm_up_batches_the_cost_optimized_if_too(live: tuple[str, FakeServerThread]) -> None:
    dsn, _ = live
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS embedded_notes (id int, body text, emb real[])")
        conn.execute("TRUNCATE embedded_notes")
        conn.execute("INSERT INTO embedded_notes SELECT i, 'note ' || i || CASE WHEN i % 2 = 0 "
                     "THEN ' great' ELSE ' awful' END, ARRAY[i, 1]::real[] "
                     "FROM generate_series(1, 25) i")
        conn.execute("ALTER DATABASE ai_functions_live "
                     "SET google_ml_integration.enable_cost_optimized_ai_functions = on")
    value, requests = _live(live, "SELECT count(*) FROM embedded_notes "
                                  "WHERE ai.if('Is this positive? ' || body, emb)")
    assert value == 12
    assert len(requests) == 3  # batched like ai.if(prompt), not one request per row


# -- ai.summarize, ai.analyze_sentiment (preview in 1.5.7, AI query engine from 1.6.1)----------------

REPORT = ("The quarterly report shows revenue grew by twelve percent while costs stayed flat. "
          "The board approved a new plan.")


def test_summarize_and_sentiment_need_the_ai_query_engine_flag_from_1_6_1(
        db: psycopg.Connection[Any]) -> None:
    # 1.6.1 (the default's line): the AI query engine's flag gates them, the preview flag does not.
    db.execute("SET google_ml_integration.enable_preview_ai_functions = off")
    assert one(db, "SELECT ai.analyze_sentiment('I love this product, great quality')") == "positive"
    db.execute("SET google_ml_integration.enable_ai_query_engine = off")
    db.execute("SET google_ml_integration.enable_preview_ai_functions = on")
    for sql in ("SELECT ai.summarize('text')", "SELECT google_ml.analyze_sentiment('text')",
                "SELECT ai.analyze_sentiment(NULL)", "SELECT ai.agg_summarize(t) FROM (VALUES ('a')) v(t)"):
        with pytest.raises(psycopg.errors.RaiseException) as caught:
            db.execute(sql)
        assert caught.value.sqlstate == "P0001"
        assert "google_ml_integration.enable_ai_query_engine is off" in str(caught.value)
        if "summarize" not in sql:
            assert str(caught.value).startswith(
                "ai.analyze_sentiment (since version 1.6.1 gated by the AI query engine, no longer "
                "by enable_preview_ai_functions) is disabled")


def test_in_1_5_7_summarize_and_sentiment_are_preview_functions(emulator: Emulator) -> None:
    dsn = _fresh_database(emulator, "ai_functions_157")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP EXTENSION google_ml_integration")
        conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.7'")
        for sql in ("SELECT ai.summarize('text')", "SELECT google_ml.analyze_sentiment('text')",
                    "SELECT ai.analyze_sentiment(NULL)"):
            with pytest.raises(psycopg.errors.RaiseException) as caught:
                conn.execute(sql)
            assert caught.value.sqlstate == "P0001"
            assert "(a preview function) is disabled: google_ml_integration." \
                   "enable_preview_ai_functions is off" in str(caught.value)
        conn.execute("SET google_ml_integration.enable_preview_ai_functions = on")
        conn.execute("SET google_ml_integration.enable_ai_query_engine = off")
        assert one(conn, "SELECT ai.analyze_sentiment('I love it, great')") == "positive"
        # The update to 1.6.1 and later moves them under the AI query engine's flag.
        conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '1.6.1'")
        with pytest.raises(psycopg.errors.RaiseException, match="enable_ai_query_engine is off"):
            conn.execute("SELECT ai.analyze_sentiment('I love it, great')")


def test_analyze_sentiment_labels_the_text(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_preview_ai_functions = on")
    assert one(db, "SELECT ai.analyze_sentiment('I love this product, great quality')") == "positive"
    assert one(db, "SELECT ai.analyze_sentiment(prompt => 'Terrible: it arrived broken and late')"
               ) == "negative"
    assert one(db, "SELECT google_ml.analyze_sentiment('The package arrived on Tuesday')") == "neutral"
    assert one(db, "SELECT ai.analyze_sentiment(NULL)") is None


def test_summarize_returns_text_and_checks_the_model(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_preview_ai_functions = on")
    summary = one(db, "SELECT ai.summarize(%s)", (REPORT,))
    assert summary.startswith("Fake answer from gemini-2.5-flash-lite: The quarterly report")
    assert one(db, "SELECT ai.summarize(%s, 'gemini-2.5-flash-lite')", (REPORT,)) == summary
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="ai.summarize"):
        db.execute("SELECT ai.summarize('x', model_id => 'text-embedding-005')")
    rows = db.execute(
        "SELECT p.provolatile, p.proparallel FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname IN ('ai', 'google_ml') "
        "AND p.proname IN ('summarize', 'analyze_sentiment')").fetchall()
    # scalar and array forms; the cursor forms are VOLATILE PARALLEL UNSAFE, as on AlloyDB
    assert len(rows) == 12 and sorted(set(rows)) == [("i", "s"), ("v", "u")]
    assert rows.count(("v", "u")) == 4


def test_live_warm_up_batches_per_row_preview_calls(live: tuple[str, FakeServerThread]) -> None:
    dsn, _ = live
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER DATABASE ai_functions_live "
                     "SET google_ml_integration.enable_preview_ai_functions = on")
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id int, body text)")
        conn.execute("TRUNCATE notes")
        conn.execute("INSERT INTO notes SELECT i, 'note ' || i || "
                     "CASE WHEN i % 2 = 0 THEN ' great' ELSE ' awful' END FROM generate_series(1, 25) i")
    sql = ("SELECT string_agg(ai.analyze_sentiment(body), ',' ORDER BY id) "
           "FROM notes WHERE id > 0")
    warmed, requests = _live(live, sql)
    assert len(requests) == 3  # 10 + 10 + 5 texts, not one request per row
    assert warmed.split(",") == ["negative", "positive"] * 12 + ["negative"]
    summaries, requests = _live(live, "SELECT count(ai.summarize(body)) FROM notes WHERE id > 0")
    assert summaries == 25 and len(requests) == 3


def test_preview_answers_are_the_same_with_the_warm_up_on_and_off(
        db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_preview_ai_functions = on")
    db.execute("CREATE TABLE IF NOT EXISTS preview_notes (id int, body text)")
    db.execute("TRUNCATE preview_notes")
    db.execute("INSERT INTO preview_notes SELECT i, 'note ' || i || CASE WHEN i % 3 = 0 "
               "THEN ' great' WHEN i % 3 = 1 THEN ' awful' ELSE ' on Tuesday' END "
               "FROM generate_series(1, 23) i")
    sql = ("SELECT id, ai.analyze_sentiment(body), ai.summarize(body) FROM preview_notes "
           "WHERE id > 0 ORDER BY id")
    warmed = db.execute(sql).fetchall()
    db.execute("SET google_ml_integration.emulator_warmup = off")
    assert db.execute(sql).fetchall() == warmed
    db.execute("RESET google_ml_integration.emulator_warmup")


def test_live_preview_requests_carry_the_task_as_system_instruction(
        live: tuple[str, FakeServerThread]) -> None:
    dsn, _ = live
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER DATABASE ai_functions_live "
                     "SET google_ml_integration.enable_preview_ai_functions = on")
    value, [(path, body)] = _live(live, "SELECT ai.analyze_sentiment('I love it, great')")
    assert value == "positive" and path == GEMINI_PATH
    assert body["contents"] == [{"role": "user", "parts": [{"text": "I love it, great"}]}]
    assert body["generationConfig"]["responseSchema"] == {
        "type": "STRING", "enum": ["positive", "negative", "neutral"]}
    assert "sentiment" in body["systemInstruction"]["parts"][0]["text"]
    value, [(_, body)] = _live(live, "SELECT ai.summarize(%s)", (REPORT,))
    assert REPORT[:40] in value
    assert body["contents"][0]["parts"] == [{"text": REPORT}]
    assert "Summarize" in body["systemInstruction"]["parts"][0]["text"]
    assert "generationConfig" not in body


# -- a custom llm model with its own batch transforms (Google's Jev codelab) -------------------
# codelabs.developers.google.com/alloydb-ai-jev ("Using TypeSafe AI's Jev model with AlloyDB AI
# Functions"), its SQL as a public project adapted it: the batch input transform and the header
# functions of a real instance's mock set-up declare system_instructions JSON, and an array
# call goes through the batch transforms, one request per batch.

JEV_TRANSFORMS = """
CREATE OR REPLACE FUNCTION public.jev_model_input_transform(
    model_id VARCHAR(100), input_text TEXT, generation_config JSON, system_instruction TEXT
) RETURNS JSON LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN json_build_object(
        'model', 'jev-latest',
        'state', COALESCE(generation_config->>'state', 'Evaluate the question accurately based on the provided text.'),
        'questions', json_build_object('q_1', json_build_object('type', 'noul', 'instructions', input_text)));
END;
$$;

CREATE OR REPLACE FUNCTION public.jev_model_output_transform(
    model_id VARCHAR(100), response_json JSON
) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    q_ans JSON := response_json->'answers'->'q_1';
BEGIN
    RETURN CASE WHEN (q_ans->>'noul')::FLOAT >= 0.50 THEN 'true' ELSE 'false' END;
END;
$$;

-- Array of prompts -> ONE Jev request with questions q_1..q_N (batching)
CREATE OR REPLACE FUNCTION public.jev_model_batch_input_transform(
    model_id VARCHAR(100), prompts TEXT[], generation_config JSON, system_instructions JSON
) RETURNS JSON LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    questions_obj JSONB := '{}'::JSONB;
    enum_json JSON;
    i INT;
BEGIN
    enum_json := COALESCE(
        generation_config->'generationConfig'->'responseSchema'->'items'->'enum',
        generation_config->'generationConfig'->'responseSchema'->'enum',
        generation_config->'responseSchema'->'items'->'enum',
        generation_config->'responseSchema'->'enum');
    FOR i IN 1 .. COALESCE(array_length(prompts, 1), 0) LOOP
        questions_obj := questions_obj || jsonb_build_object('q_' || i::TEXT,
            jsonb_build_object('type', 'noul', 'instructions', prompts[i]));
    END LOOP;
    RETURN json_build_object(
        'model', 'jev-latest',
        'enum', enum_json,
        'system', system_instructions,
        'questions', questions_obj::JSON);
END;
$$;

-- Batch response -> answers in q_1..q_N order
CREATE OR REPLACE FUNCTION public.jev_model_batch_output_transform(
    model_id VARCHAR(100), response JSON
) RETURNS TEXT[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    results TEXT[] := ARRAY[]::TEXT[];
    answers JSON := response->'answers';
    i INT := 1;
    q_ans JSON;
BEGIN
    LOOP
        q_ans := answers->('q_' || i::TEXT);
        EXIT WHEN q_ans IS NULL;
        results := array_append(results, CASE WHEN (q_ans->>'noul')::FLOAT >= 0.50 THEN 'true' ELSE 'false' END);
        i := i + 1;
    END LOOP;
    RETURN results;
END;
$$;
"""

# The codelab's registration, with the loopback URL; its secret lines need Secret Manager
# (tests/e2e/test_model_calls_e2e.py covers secrets), so this model has none.
JEV_MODEL = """CALL google_ml.create_model(
    model_id                     => 'jev-model',
    model_request_url            => %s,
    model_provider               => 'custom',
    model_type                   => 'llm',
    model_qualified_name         => 'jev-latest',
    model_in_transform_fn        => 'jev_model_input_transform',
    model_out_transform_fn       => 'jev_model_output_transform',
    model_batch_in_transform_fn  => 'jev_model_batch_input_transform',
    model_batch_out_transform_fn => 'jev_model_batch_output_transform'
);"""


def _jev_reply(seen: Seen) -> Reply:
    """Jev's answer: a yes probability per question, yes when the question names a vegetable."""
    questions = seen.json()["questions"]
    return Reply(200, {"answers": {key: {"type": "noul", "noul": 0.9 if "vegetable" in q["instructions"]
                                         else 0.1} for key, q in questions.items()}})


def test_llm_model_with_batch_transforms_answers_arrays_through_them(
        db: psycopg.Connection[Any]) -> None:
    with ScriptedServer(_jev_reply) as jev:
        db.execute("SET google_ml_integration.allow_http_endpoints = on")
        db.execute(JEV_TRANSFORMS)
        db.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM google_ml.model_info_view "
                   "WHERE model_id = 'jev-model') THEN CALL google_ml.drop_model('jev-model'); "
                   "END IF; END $$;")
        db.execute(JEV_MODEL, (f"{jev.url}/v1/systemone",))  # was refused: 42P13
        prompts = ["Recipe: Dal. Ingredients: lentils, vegetable", "Recipe: Chicken curry",
                   "Recipe: Salad. Ingredients: vegetable"]
        answers = one(db, "SELECT ai.if(prompts => %s::text[], model_id => 'jev-model')", (prompts,))
        assert answers == [True, False, True]
        (request,) = jev.requests  # the three prompts in one request, through the batch transform
        body = request.json()
        assert [q["instructions"] for q in body["questions"].values()] == prompts
        assert body["enum"] == ["true", "false"]  # the batch's generation_config
        assert isinstance(body["system"], str)  # a JSON parameter gets the instruction as a string
        assert one(db, "SELECT ai.if(prompts => %s::text[], batch_size => 2, model_id => 'jev-model')",
                   (prompts,)) == [True, False, True]
        assert len(jev.requests) == 3  # two more: batches of 2 and 1
        assert one(db, "SELECT ai.if('Is it made of vegetable?', 'jev-model')") is True
        assert "q_1" in jev.requests[-1].json()["questions"]  # the scalar transform


# The same mock set-up (it runs on AlloyDB Omni) replaces AlloyDB's own ai.generate, ai.if and
# ai.rank with copies whose model_id defaults to a model it registered; the copies keep AlloyDB's
# bodies, which first call google_ml.inc_call_count_impl(<function number>).
AI_FUNCTION_OVERRIDES = """
CREATE OR REPLACE FUNCTION ai.generate(prompts text[], batch_size integer DEFAULT NULL, model_id varchar(100) DEFAULT 'gemini-2.5-flash-lite')
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE COST 2e+08
AS $function$
    SELECT google_ml.inc_call_count_impl(20);
    SELECT google_ml.generate(prompts => prompts, batch_size => batch_size, model_id => model_id);
$function$;

CREATE OR REPLACE FUNCTION ai.generate(prompt text, input_cursor refcursor, batch_size integer DEFAULT NULL, model_id varchar(100) DEFAULT 'gemini-2.5-flash-lite')
 RETURNS refcursor
 LANGUAGE sql
 COST 2e+08
AS $function$
      SELECT google_ml.inc_call_count_impl(20);
      SELECT google_ml.generate(prompt => prompt, input_cursor => input_cursor, batch_size => batch_size, model_id => model_id);
$function$;

CREATE OR REPLACE FUNCTION ai.generate(prompt text, model_id varchar(100) DEFAULT 'gemini-2.5-flash-lite')
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE COST 5e+07
AS $function$
    SELECT google_ml.inc_call_count_impl(12);
    SELECT google_ml.generate(prompt => prompt, model_id => model_id);
$function$;

CREATE OR REPLACE FUNCTION ai.if(prompt text, model_id varchar(100) DEFAULT 'gemini-2.5-flash-lite')
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE COST 5e+07
AS $function$
    SELECT google_ml.inc_call_count_impl(11);
    SELECT google_ml.if(prompt => prompt, model_id => model_id);
$function$;

CREATE OR REPLACE FUNCTION ai.rank(prompts text[], batch_size integer DEFAULT NULL, model_id varchar(100) DEFAULT 'gemini-2.5-flash-lite')
 RETURNS real[]
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE COST 2e+08
AS $function$
    SELECT google_ml.inc_call_count_impl(21);
    SELECT google_ml.rank(prompts => prompts, batch_size => batch_size, model_id => model_id);
$function$;
"""


def test_a_mock_set_up_replaces_the_ai_functions_with_alloydbs_bodies(emulator: Emulator) -> None:
    dsn = _fresh_database(emulator, "ai_function_overrides")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
        conn.execute(AI_FUNCTION_OVERRIDES)
        assert one(conn, "SELECT ai.generate('Say hello')").startswith("Fake answer")
        assert len(one(conn, "SELECT ai.generate(ARRAY['Say hello', 'Say bye'])")) == 2
        assert one(conn, "SELECT ai.if('Is Paris in France?')") in (True, False)
        assert len(one(conn, "SELECT ai.rank(ARRAY['a pen', 'a book'])")) == 2
        # a no-op here: AlloyDB's call counter has nothing to count in the emulator
        conn.execute("SELECT google_ml.inc_call_count_impl(11)")


def test_llm_header_functions_may_declare_json_system_instructions(
        db: psycopg.Connection[Any]) -> None:
    # A real instance's mock set-up: a scalar and a batch header function, both with
    # system_instructions JSON, registered for a custom llm model with Gemini's transforms.
    db.execute("""CREATE OR REPLACE FUNCTION google_ml.fake_gemini_headers(
    model_id character varying,
    prompts text[],
    generation_config json,
    system_instructions json
)
RETURNS json
LANGUAGE sql
AS $$
  SELECT '{"Authorization": "FakeToken"}'::json;
$$;

CREATE OR REPLACE FUNCTION google_ml.fake_gemini_headers(
    model_id character varying,
    prompt text,
    generation_config json,
    system_instructions json
)
RETURNS json
LANGUAGE sql
AS $$
  SELECT '{"Authorization": "FakeToken"}'::json;
$$;""")
    with CaptureServer() as gemini:
        db.execute("SET google_ml_integration.allow_http_endpoints = on")
        db.execute("DELETE FROM google_ml.models WHERE id = 'gemini-mock'")
        db.execute("""CALL google_ml.create_model(
    model_id => 'gemini-mock',
    model_request_url => %s,
    model_provider => 'custom',
    model_type => 'llm',
    model_qualified_name => 'gemini-2.5-flash-lite',
    generate_headers_fn => 'google_ml.fake_gemini_headers',
    model_in_transform_fn => 'google_ml.gemini_llm_input_transform',
    model_out_transform_fn => 'google_ml.gemini_llm_output_transform',
    model_batch_in_transform_fn => 'google_ml.gemini_llm_batch_input_transform',
    model_batch_out_transform_fn => 'google_ml.gemini_llm_batch_output_transform'
);""", ((f"{gemini.url}/v1/projects/p/locations/us-central1/publishers/google/models/"
         "gemini-2.5-flash-lite:generateContent"),))
        assert one(db, "SELECT ai.generate('Say hello', 'gemini-mock')").startswith("Fake answer")
        assert one(db, "SELECT ai.generate(ARRAY['Say hello', 'Say bye'], model_id => 'gemini-mock')"
                   )[1].startswith("Fake answer")
        assert [r.headers["authorization"] for r in gemini.requests] == ["FakeToken", "FakeToken"]


def test_live_a_call_of_a_warmed_statement_that_finds_nothing_warmed_is_counted(
        live: tuple[str, FakeServerThread]) -> None:
    # The warm-up answers the calls outside subqueries; each row's call inside one misses the
    # cache and makes its own request, which _warm_lookup tells the engine (its metric,
    # warmup_row_misses_total, is tested in test_warm_binary.py).
    dsn, fake = live
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS missed_notes (id int, body text)")
        conn.execute("TRUNCATE missed_notes")
        conn.execute("INSERT INTO missed_notes SELECT i, 'note ' || i FROM generate_series(1, 5) i")
    fake.take()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL track_functions = 'pl'")
        conn.execute("SELECT ai.if('Is this positive? ' || body), "
                     "(SELECT ai.if('Really? ' || body)) FROM missed_notes").fetchall()
        missed = one(conn, "SELECT pg_stat_get_xact_function_calls("
                           "'google_ml._warm_missed(text)'::regprocedure)")
    assert missed == 5
    assert len(fake.take()) == 1 + 5  # one warmed batch, then a request per row
