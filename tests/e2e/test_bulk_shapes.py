"""Model calls in every shape SQL allows, end to end, with and without the warm-up (issue 5).

Each shape runs through the real emulator (proxy, embedded PostgreSQL 18, the built-in fakes)
twice: with the warm-up the proxy splices in (proxy/warmup.py), and with it switched off in SQL
(``SET google_ml_integration.emulator_warmup = off``); the results must be identical, compared
exactly (vectors as PostgreSQL prints them: shortest exact float4 text). One comparison runs
against a second emulator started with ``--warmup off`` (no splice at all).

That the warm-up really applies is shown by counting provider requests: a custom model with batch
transforms points at a local capture server; with the warm-up N rows of D distinct texts make
ceil(D / batch) requests, each text once; without it, N requests.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.databases import fresh_database
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.http_servers import CaptureServer, Reply, Seen

DB = "e2e_bulk_shapes"
MODEL = "text-embedding-005"
DIMENSION = 768  # text-embedding-005's
CUSTOM_BATCH = 100  # the engine's batch size for custom models with batch transforms

TEXTS = [
    "The cat sat on the mat", "Dogs chase cats", "PostgreSQL is a database",
    "AlloyDB runs PostgreSQL", "It's a quoted 'text'", "Ünïcödé façade — ok", "",
    "The cat sat on the mat",  # duplicate
    "Dogs chase cats",  # duplicate
    "vector search with pgvector", "rain in Spain", "   padded   ",
]
ROWS = [(i + 1, TEXTS[i % len(TEXTS)] + (f" #{i // len(TEXTS)}" if i >= 24 else ""))
        for i in range(30)]


def fake_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[0] / 255, digest[1] / 255, float(len(text))]


def capture_respond(seen: Seen) -> Reply:
    body = seen.json()
    if "prompts" in body:
        return Reply(200, {"vectors": [fake_vector(t) for t in body["prompts"]]})
    return Reply(200, {"vector": fake_vector(body["prompt"])})


SETUP = """
CREATE TABLE docs (id int PRIMARY KEY, content text, emb vector(768), emb3 real[]);
CREATE TABLE out_t (id int, emb vector(768), emb3 real[]);
CREATE FUNCTION bulk_batch_in(model_id text, input text[]) RETURNS json
  LANGUAGE sql AS $$ SELECT json_build_object('prompts', to_json(input)) $$;
CREATE FUNCTION bulk_batch_out(model_id text, model_output json) RETURNS real[][]
  LANGUAGE sql AS $$
    SELECT array_agg(ARRAY(SELECT json_array_elements_text(v)::real) ORDER BY i)
      FROM json_array_elements(model_output -> 'vectors') WITH ORDINALITY AS a (v, i) $$;
CREATE FUNCTION bulk_in(model_id varchar(100), input_text text) RETURNS json
  LANGUAGE sql AS $$ SELECT json_build_object('prompt', input_text) $$;
CREATE FUNCTION bulk_out(model_id varchar(100), response_json json) RETURNS real[]
  LANGUAGE sql AS $$ SELECT ARRAY(SELECT json_array_elements_text(response_json -> 'vector')::real) $$;
"""


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        server.responder = capture_respond
        yield server


@pytest.fixture(scope="module")
def dsn(emulator: Emulator, capture: CaptureServer) -> str:
    url = fresh_database(emulator, DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
        conn.cursor().executemany("INSERT INTO docs (id, content) VALUES (%s, %s)", ROWS)
        conn.execute(f'ALTER DATABASE "{DB}" SET google_ml_integration.allow_http_endpoints = on')
        conn.execute("SET google_ml_integration.allow_http_endpoints = on")
        conn.execute(
            """CALL google_ml.create_model(model_id => 'bulk-m', model_request_url => %s,
                 model_provider => 'custom', model_type => 'text_embedding',
                 model_in_transform_fn => 'bulk_in', model_out_transform_fn => 'bulk_out',
                 model_batch_in_transform_fn => 'bulk_batch_in',
                 model_batch_out_transform_fn => 'bulk_batch_out')""",
            (f"{capture.url}/bulk/embed",))
        conn.execute("DROP ROLE IF EXISTS bulk_user")
        conn.execute("CREATE ROLE bulk_user LOGIN")
        conn.execute("GRANT ALL ON docs, out_t TO bulk_user")
    return url


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("UPDATE docs SET emb = NULL")
        connection.execute("TRUNCATE out_t")
        yield connection


@pytest.fixture(scope="module")
def reference(dsn: str) -> dict[str | None, str | None]:
    """content -> embedding text, one literal call per distinct text, warm-up off."""
    out: dict[str | None, str | None] = {None: None}
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET google_ml_integration.emulator_warmup = off")
        for text in {c for _, c in ROWS if c is not None}:
            row = connection.execute(f"SELECT embedding('{MODEL}', %s)::vector::text",
                                     (text,)).fetchone()
            assert row is not None
            out[text] = row[0]
    return out


def both(conn: psycopg.Connection[Any], run: Any) -> Any:
    """``run(conn)`` with the warm-up on, then off; the two results must be identical."""
    results = {}
    for mode in ("on", "off"):
        conn.execute(f"SET google_ml_integration.emulator_warmup = {mode}")
        results[mode] = run(conn)
    conn.execute("RESET google_ml_integration.emulator_warmup")
    assert results["on"] == results["off"]
    return results["on"]


def docs_embeddings(conn: psycopg.Connection[Any], table: str = "docs") -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT id, emb::text FROM {table} ORDER BY id").fetchall()


def expected_docs(reference: dict[str | None, str | None]) -> list[tuple[Any, ...]]:
    return [(i, reference[c]) for i, c in ROWS]


# -- the shapes ---------------------------------------------------------------------------------


BACKFILL = f"UPDATE docs SET emb = google_ml.embedding('{MODEL}', content)::vector WHERE emb IS NULL"


def test_backfill_update(conn: psycopg.Connection[Any], reference: dict[Any, Any]) -> None:
    def run(c: psycopg.Connection[Any]) -> Any:
        c.execute("UPDATE docs SET emb = NULL")
        cur = c.execute(BACKFILL)
        return cur.rowcount, docs_embeddings(c)

    rowcount, rows = both(conn, run)
    assert rowcount == len(ROWS)
    assert rows == expected_docs(reference)


def test_insert_values_from_a_driver(conn: psycopg.Connection[Any],
                                     reference: dict[Any, Any]) -> None:
    def run(c: psycopg.Connection[Any]) -> Any:
        c.execute("TRUNCATE out_t")
        with c.cursor() as cur:
            for i, text in ROWS:
                cur.execute(f"INSERT INTO out_t (id, emb) VALUES (%s, embedding('{MODEL}', %s)::vector)",
                            (i, text), prepare=True)
            cur.executemany(
                f"INSERT INTO out_t (id, emb) VALUES (%s, embedding('{MODEL}', %s)::vector)",
                [(i + 100, t) for i, t in ROWS])
        return docs_embeddings(c, "out_t")

    rows = both(conn, run)
    assert rows == expected_docs(reference) + [(i + 100, e) for i, e in expected_docs(reference)]


def test_select_target_list_and_where_clause(conn: psycopg.Connection[Any],
                                             reference: dict[Any, Any]) -> None:
    def run(c: psycopg.Connection[Any]) -> Any:
        listed = c.execute(
            f"SELECT id, embedding('{MODEL}', content)::vector::text FROM docs ORDER BY id"
        ).fetchall()
        near = c.execute(
            f"SELECT id FROM docs WHERE embedding('{MODEL}', content)::vector"
            f" <=> embedding('{MODEL}', 'cats and dogs')::vector < 0.95 ORDER BY id").fetchall()
        nearest = c.execute(
            f"SELECT id, content FROM docs WHERE content IS NOT NULL ORDER BY"
            f" google_ml.embedding('{MODEL}', content)::vector"
            f" <=> google_ml.embedding('{MODEL}', 'a cat on a mat')::vector, id LIMIT 3").fetchall()
        return listed, near, nearest

    listed, near, nearest = both(conn, run)
    assert listed == expected_docs(reference)
    assert near and len(near) < len(ROWS)
    assert nearest[0][1].startswith("The cat sat on the mat")


def test_trigger(conn: psycopg.Connection[Any], reference: dict[Any, Any]) -> None:
    conn.execute("""
        DROP TABLE IF EXISTS trig_docs;
        CREATE TABLE trig_docs (id int, content text, emb vector(768));
        CREATE OR REPLACE FUNCTION trig_embed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.emb := embedding('text-embedding-005', NEW.content)::vector;
            RETURN NEW;
        END $$;
        CREATE TRIGGER trig_docs_embed BEFORE INSERT OR UPDATE OF content ON trig_docs
            FOR EACH ROW EXECUTE FUNCTION trig_embed();""")

    def run(c: psycopg.Connection[Any]) -> Any:
        c.execute("TRUNCATE trig_docs")
        c.execute("INSERT INTO trig_docs (id, content) SELECT id, content FROM docs")
        c.execute("INSERT INTO trig_docs (id, content) VALUES (%s, %s)", (99, "one more row"))
        c.execute("UPDATE trig_docs SET content = content || '!' WHERE id <= 3")
        return docs_embeddings(c, "trig_docs")

    rows = both(conn, run)
    expected = dict(expected_docs(reference))
    for i, emb in rows:
        if i > 3 and i != 99:
            assert emb == expected[i]
    assert len(rows) == len(ROWS) + 1


def test_generated_column(conn: psycopg.Connection[Any], reference: dict[Any, Any]) -> None:
    def run(c: psycopg.Connection[Any]) -> Any:
        c.execute("DROP TABLE IF EXISTS gen_docs")
        c.execute("CREATE TABLE gen_docs (id int, c text)")
        c.execute("INSERT INTO gen_docs SELECT id, content FROM docs")
        c.execute("ALTER TABLE gen_docs ADD COLUMN e vector(768) GENERATED ALWAYS AS"
                  " (embedding('text-embedding-005', c)::vector) STORED")
        c.execute("INSERT INTO gen_docs (id, c) VALUES (%s, %s)", (200, TEXTS[0]))
        c.execute("INSERT INTO gen_docs (id, c) SELECT id + 300, c FROM gen_docs WHERE id <= 5")
        return c.execute("SELECT id, e::text FROM gen_docs ORDER BY id").fetchall()

    rows = both(conn, run)
    expected = dict(expected_docs(reference))
    by_id = dict(rows)
    assert all(by_id[i] == expected[i] for i, _ in ROWS)
    assert by_id[200] == reference[TEXTS[0]]
    assert all(by_id[i + 300] == expected[i] for i in range(1, 6))


def test_view_and_plpgsql_function(conn: psycopg.Connection[Any],
                                   reference: dict[Any, Any]) -> None:
    conn.execute("""
        CREATE OR REPLACE VIEW doc_vectors AS
            SELECT id, content, google_ml.embedding('text-embedding-005', content) AS e FROM docs;
        CREATE OR REPLACE FUNCTION embed_all() RETURNS TABLE (id int, e text)
        LANGUAGE plpgsql AS $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT d.id, d.content FROM docs d ORDER BY d.id LOOP
                id := r.id;
                e := ai.embedding('text-embedding-005', r.content)::vector::text;
                RETURN NEXT;
            END LOOP;
        END $$;""")

    def run(c: psycopg.Connection[Any]) -> Any:
        view = c.execute("SELECT id, e::vector::text FROM doc_vectors ORDER BY id").fetchall()
        func = c.execute("SELECT id, e FROM embed_all()").fetchall()
        return view, func

    view, func = both(conn, run)
    assert view == func == expected_docs(reference)


def test_insert_select_cte_and_lateral(conn: psycopg.Connection[Any],
                                       reference: dict[Any, Any]) -> None:
    def run(c: psycopg.Connection[Any]) -> Any:
        c.execute("TRUNCATE out_t")
        c.execute(f"INSERT INTO out_t (id, emb) SELECT id, embedding('{MODEL}', content)::vector"
                  " FROM docs WHERE id > 0")
        inserted = docs_embeddings(c, "out_t")
        cte = c.execute(
            f"WITH v AS (SELECT id, google_ml.embedding('{MODEL}', content) AS e FROM docs)"
            " SELECT id, e::vector::text FROM v ORDER BY id").fetchall()
        lateral = c.execute(
            "SELECT d.id, l.e::text FROM docs d CROSS JOIN LATERAL"
            f" (SELECT embedding('{MODEL}', d.content)::vector AS e) l ORDER BY d.id").fetchall()
        return inserted, cte, lateral

    inserted, cte, lateral = both(conn, run)
    assert inserted == cte == lateral == expected_docs(reference)


def test_rolled_back_transaction(conn: psycopg.Connection[Any], dsn: str,
                                 reference: dict[Any, Any]) -> None:
    conn.execute("DELETE FROM google_ml._warm_cache")

    def run(c: psycopg.Connection[Any]) -> Any:
        c.autocommit = False
        try:
            c.execute(BACKFILL)
            inside = docs_embeddings(c)
            c.execute(f"INSERT INTO out_t SELECT id, embedding('{MODEL}', content)::vector FROM docs")
            c.rollback()
        finally:
            c.autocommit = True
        after = docs_embeddings(c)
        out_rows = c.execute("SELECT count(*) FROM out_t").fetchone()
        return inside, after, out_rows

    # the warm-up did run inside the transaction (its cache rows exist until the rollback)
    conn.autocommit = False
    conn.execute(BACKFILL)
    in_transaction = conn.execute("SELECT count(*) FROM google_ml._warm_cache").fetchone()
    # Embeddings are stored parsed (the per-row calls hand them on as they are), never as text
    stored = conn.execute(
        "SELECT count(*) FILTER (WHERE embedding IS NULL OR result IS NOT NULL),"
        " min(pg_catalog.cardinality(embedding)) FROM google_ml._warm_cache").fetchone()
    conn.rollback()
    conn.autocommit = True
    assert in_transaction is not None and in_transaction[0] > 0
    assert stored == (0, DIMENSION)

    inside, after, out_rows = both(conn, run)
    assert inside == expected_docs(reference)
    assert after == [(i, None) for i, _ in ROWS]  # the table is unchanged
    assert out_rows == (0,)
    # In READ COMMITTED the engine stored the batches itself, committed (engine/warm_copy.py):
    # rows of the rolled-back statement stay, under its key, which no later statement reads;
    # the session's next warm-up deletes them.
    cache = conn.execute("SELECT count(*) FROM google_ml._warm_cache").fetchone()
    assert cache is not None and cache[0] > 0
    conn.execute(BACKFILL)
    assert conn.execute(
        "SELECT count(DISTINCT statement_key) FROM google_ml._warm_cache").fetchone() == (1,)
    conn.execute("UPDATE docs SET emb = NULL")
    conn.execute("DELETE FROM google_ml._warm_cache")

    # In REPEATABLE READ the session stores them itself: nothing is left behind.
    with psycopg.connect(dsn) as other:
        other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        other.execute(BACKFILL)
        assert docs_embeddings(other) == expected_docs(reference)
        in_transaction = other.execute("SELECT count(*) FROM google_ml._warm_cache").fetchone()
        assert in_transaction is not None and in_transaction[0] > 0
        other.rollback()
        assert other.execute("SELECT count(*) FROM google_ml._warm_cache").fetchone() == (0,)


def test_parallel_query_workers(conn: psycopg.Connection[Any], reference: dict[Any, Any]) -> None:
    conn.execute("SET debug_parallel_query = on")
    conn.execute("SET parallel_setup_cost = 0")
    conn.execute("SET parallel_tuple_cost = 0")
    plan = "\n".join(r[0] for r in conn.execute(
        f"EXPLAIN (ANALYZE, COSTS OFF) SELECT id, embedding('{MODEL}', content) FROM docs"))
    assert "Gather" in plan and "Workers Launched: 1" in plan  # calls made in a worker

    def run(c: psycopg.Connection[Any]) -> Any:
        return c.execute(
            f"SELECT id, embedding('{MODEL}', content)::vector::text FROM docs ORDER BY id"
        ).fetchall()

    rows = both(conn, run)
    assert rows == expected_docs(reference)
    conn.execute("RESET debug_parallel_query")


def test_non_superuser(emulator: Emulator, conn: psycopg.Connection[Any],
                       reference: dict[Any, Any]) -> None:
    with psycopg.connect(emulator.dsn_for(user="bulk_user", dbname=DB), autocommit=True) as user:
        assert user.execute("SELECT usesuper FROM pg_user WHERE usename = current_user"
                            ).fetchone() == (False,)

        def run(c: psycopg.Connection[Any]) -> Any:
            c.execute("UPDATE docs SET emb = NULL")
            c.execute(BACKFILL)
            selected = c.execute(
                f"SELECT id, embedding('{MODEL}', content)::vector::text FROM docs ORDER BY id"
            ).fetchall()
            return docs_embeddings(c), selected

        updated, selected = both(user, run)
    assert updated == selected == expected_docs(reference)


def test_against_an_emulator_started_with_warmup_off(
        conn: psycopg.Connection[Any], reference: dict[Any, Any]) -> None:
    conn.execute(BACKFILL)
    warmed = docs_embeddings(conn)
    emu = start_emulator("--warmup", "off")
    try:
        url = fresh_database(emu, "e2e_bulk_nowarm")
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("CREATE TABLE docs (id int PRIMARY KEY, content text, emb vector(768))")
            other.cursor().executemany("INSERT INTO docs (id, content) VALUES (%s, %s)", ROWS)
            other.execute(BACKFILL)
            assert docs_embeddings(other) == warmed == expected_docs(reference)
    finally:
        stop_emulator(emu)


# -- the warm-up applies: provider requests counted -----------------------------------------------


COUNTED = {
    "update": "UPDATE docs SET emb3 = google_ml.embedding('bulk-m', content) WHERE id > 0",
    "select": "SELECT id, embedding('bulk-m', content)::text FROM docs ORDER BY id",
    "insert-select": "INSERT INTO out_t (id, emb3) SELECT id, embedding('bulk-m', content) FROM docs",
    "where": "SELECT id FROM docs WHERE (embedding('bulk-m', content))[3] > 5 ORDER BY id",
}


@pytest.mark.parametrize("shape", sorted(COUNTED))
def test_warmup_batches_and_sends_each_text_once(
        shape: str, conn: psycopg.Connection[Any], capture: CaptureServer) -> None:
    sql = COUNTED[shape]
    texts = [c for _, c in ROWS if c is not None]
    distinct = set(texts)
    assert len(distinct) < len(texts)  # the table has duplicates

    def counted(c: psycopg.Connection[Any]) -> tuple[list[Seen], Any]:
        c.execute("UPDATE docs SET emb3 = NULL")
        c.execute("TRUNCATE out_t")
        before = len(capture.requests)
        cur = c.execute(sql)
        rows = cur.fetchall() if cur.description else None
        table = [c.execute(f"SELECT id, emb3::text FROM {t} ORDER BY id").fetchall()
                 for t in ("docs", "out_t")]
        return list(capture.requests)[before:], (rows, table)

    conn.execute("SET google_ml_integration.emulator_warmup = on")
    warm_requests, warm_result = counted(conn)
    conn.execute("SET google_ml_integration.emulator_warmup = off")
    cold_requests, cold_result = counted(conn)
    conn.execute("RESET google_ml_integration.emulator_warmup")
    assert warm_result == cold_result
    # off: one request per row that has a text
    assert len(cold_requests) == len(texts)
    # on: the distinct texts in batches, each sent once
    assert len(warm_requests) == math.ceil(len(distinct) / CUSTOM_BATCH)
    sent = [t for r in warm_requests for t in r.json()["prompts"]]
    assert sorted(sent) == sorted(distinct)


def test_warmup_batches_for_a_non_superuser(emulator: Emulator, conn: psycopg.Connection[Any],
                                            capture: CaptureServer) -> None:
    texts = [c for _, c in ROWS if c is not None]
    with psycopg.connect(emulator.dsn_for(user="bulk_user", dbname=DB), autocommit=True) as user:
        before = len(capture.requests)
        user.execute(COUNTED["update"])
        made = list(capture.requests)[before:]
    assert len(made) < len(texts), "the warm-up did not apply for a non-superuser"
    assert len(made) == math.ceil(len(set(texts)) / CUSTOM_BATCH)


def test_a_non_superuser_stores_parsed_embeddings_only_under_its_own_statement(
        emulator: Emulator, conn: psycopg.Connection[Any]) -> None:
    # _warm_add_embeddings runs dynamic SQL as its owner and is the caller's (_warm_stream runs
    # as the caller): what it writes is keyed by the caller's backend and statement, its cast
    # is to the type it looks up itself.
    with psycopg.connect(emulator.dsn_for(user="bulk_user", dbname=DB), autocommit=True) as user:
        row = user.execute(
            "SELECT google_ml._statement_key(), google_ml._warm_add_embeddings("
            "'m', '{NULL,a,b}', E'7\\n[1,2]\\n{3}')").fetchone()
        assert row is not None
        key = row[0]
        stored = conn.execute(
            "SELECT statement_key, item, embedding FROM google_ml._warm_cache "
            "WHERE model_id = 'm' ORDER BY item").fetchall()
    conn.execute("DELETE FROM google_ml._warm_cache WHERE model_id = 'm'")
    assert stored == [(key, "a", [1.0, 2.0]), (key, "b", [3.0])]


def test_null_content_fails_the_same_way_with_and_without_warmup(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO docs (id, content) VALUES (1000, NULL)")
    try:
        def run(c: psycopg.Connection[Any]) -> Any:
            try:
                c.execute(BACKFILL)
            except psycopg.Error as exc:
                return exc.sqlstate, docs_embeddings(c)
            return None, docs_embeddings(c)

        sqlstate, rows = both(conn, run)
        assert all(emb is None for _, emb in rows)  # the statement as a whole failed
        assert sqlstate is not None
    finally:
        conn.execute("DELETE FROM docs WHERE id = 1000")


# -- property: warm-up on == warm-up off -----------------------------------------------------------

WORDS = st.sampled_from(["cat", "dog", "db", "vector", "O'Neil", "naïve", "", " ", "a|b", "x\ny"])
TEXT = st.lists(WORDS, max_size=4).map(" ".join)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXT, min_size=0, max_size=12))
def test_property_warmup_never_changes_results(conn: psycopg.Connection[Any],
                                               texts: list[str | None]) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS prop (id int, content text, emb vector(768))")
    conn.execute("TRUNCATE prop")
    conn.cursor().executemany("INSERT INTO prop (id, content) VALUES (%s, %s)",
                              list(enumerate(texts)))

    def run(c: psycopg.Connection[Any]) -> Any:
        c.execute("UPDATE prop SET emb = NULL")
        c.execute(f"UPDATE prop SET emb = embedding('{MODEL}', content)::vector")
        updated = c.execute("SELECT id, emb::text FROM prop ORDER BY id").fetchall()
        selected = c.execute(
            f"SELECT id, google_ml.embedding('{MODEL}', lower(content) || '.')::vector::text"
            " FROM prop WHERE id % 2 = 0 ORDER BY id").fetchall()
        return updated, selected

    both(conn, run)
