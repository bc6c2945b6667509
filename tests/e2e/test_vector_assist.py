# mypy: disable-error-code="index,misc"
"""vector_assist: AlloyDB's vector assist on the emulator (docs/search-and-forecasting.md).

The statements are those of Google's pages (ai/use-vector-assist, reference/ai/vector-assist),
with the placeholders filled in, and the SQL that the two clients send, as they send it: the MCP
Toolbox's vector-assist-* tools (pgx placeholders, here through asyncpg) and LangChain's AlloyDB
packages (SQLAlchemy ``text()`` over asyncpg). Recommendations are checked by running them: the
index must be a real one that the planner uses, the embeddings must be in the table.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.databases import empty_database, fresh_database
from tests.support.emulators import Emulator

DB = "vector_assist_tests"
ROWS = 3000


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = fresh_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # as printed on ai/use-vector-assist
        assert conn.execute("CREATE EXTENSION vector_assist CASCADE;").statusmessage == "CREATE EXTENSION"
    return dsn


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def make_items(db: psycopg.Connection[Any], name: str, rows: int = ROWS, dims: int = 3) -> None:
    """A table with one vector column filled with distinct vectors, and a category column."""
    db.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    db.execute(f'CREATE TABLE "{name}" (id int PRIMARY KEY, content text, category text, '
               f"embedding vector({dims}))")
    parts = ", ".join(f"sin(i * {k + 1} * 0.37)" for k in range(dims))
    db.execute(f'INSERT INTO "{name}" SELECT i, \'item \' || i, \'c\' || (i % 3), '
               f"ARRAY[{parts}]::vector FROM generate_series(1, {rows}) i")
    db.execute(f'ANALYZE "{name}"')


def queries(rows: list[tuple[Any, ...]]) -> list[str]:
    return [r[4] for r in rows]


def sqlstate(db: psycopg.Connection[Any], sql: str) -> tuple[str | None, str]:
    with pytest.raises(psycopg.Error) as caught:
        db.execute(sql)
    return caught.value.sqlstate, str(caught.value)


# -- the pages --------------------------------------------------------------------------------

def test_the_extension_is_there_as_the_page_says(db: psycopg.Connection[Any]) -> None:
    assert db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector_assist'"
                      ).fetchone() == ("1.0",)
    assert db.execute("SELECT to_regnamespace('vector_assist') IS NOT NULL").fetchone() == (True,)
    # LangChain's vector store sends this before each call
    db.execute("CREATE EXTENSION IF NOT EXISTS vector_assist")


def test_define_spec_as_printed_recommends_a_tuned_hnsw_index(db: psycopg.Connection[Any]) -> None:
    make_items(db, "page_items")
    # ai/use-vector-assist, "Define your vector spec", placeholders filled in
    rows = db.execute("""
SELECT
  recommendation_id,
  REGEXP_REPLACE(query, 'SET hnsw.ef_search TO \\d+', 'SET hnsw.ef_search TO') AS query_1,
  recommendation,
  vector_spec_id,
  table_name,
  applied,
  modified
FROM vector_assist.define_spec(
  table_name => 'page_items',
  vector_column_name => 'embedding',
  target_recall => 0.99,
  tune_vector_index => true
);""").fetchall()
    assert [r[1] for r in rows] == [
        ("CREATE INDEX IF NOT EXISTS page_items_embedding_hnsw_cosine_m48_efc192_idx ON public.page_items USING hnsw "
        "(embedding vector_cosine_ops) WITH (m = 48, ef_construction = 192)"),
        "SET hnsw.ef_search TO",
    ]
    assert len({r[3] for r in rows}) == 1 and all(r[4] == "page_items" for r in rows)
    assert all(r[5] is False and r[6] is False for r in rows)
    assert "tuned for a target recall of 0.99" in rows[0][2]
    spec_id = rows[0][3]
    # the spec is stored, with what was inferred
    spec = db.execute("SELECT schema_name, vector_column_name, vector_index_type, "
                      "embeddings_available, num_vectors, dimensionality, distance_func, "
                      "quantization, target_recall, target_top_k FROM vector_assist.vector_specs "
                      "WHERE spec_id = %s", (spec_id,)).fetchone()
    assert spec == ("public", "embedding", "hnsw", True, ROWS, 3, "cosine", "none", 0.99, 10)
    # the ef_search line: 16 candidates per result at 0.99 recall, top 10
    full = db.execute("SELECT query FROM vector_assist.get_recommendations(spec_id => %s)",
                      (spec_id,)).fetchall()
    assert full[-1] == ("SET hnsw.ef_search TO 160",)


def test_defaults_are_pgvectors_and_apply_runs_each_step(db: psycopg.Connection[Any]) -> None:
    make_items(db, "apply_items")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(spec_id => 'apply-spec', "
                      "table_name => 'apply_items')").fetchall()
    assert queries(rows) == [
        ("CREATE INDEX IF NOT EXISTS apply_items_embedding_hnsw_cosine_m16_efc64_idx ON public.apply_items USING hnsw "
        "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"),
        "SET hnsw.ef_search TO 40",
    ]
    assert [r[0] for r in rows] == ["apply-spec-01", "apply-spec-02"]
    # ai/use-vector-assist, "Apply vector assist recommendations": one, then the whole spec
    assert db.execute("SELECT vector_assist.apply_recommendation(recommendation_id => 'apply-spec-01');"
                      ).fetchone() == (True,)
    assert db.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'apply_items_embedding_hnsw_cosine_m16_efc64_idx'"
                      ).fetchone() == (1,)
    db.execute("SET hnsw.ef_search TO 10")
    assert db.execute("SELECT vector_assist.apply_spec(spec_id => 'apply-spec');").fetchone() == (True,)
    assert db.execute("SHOW hnsw.ef_search").fetchone() == ("40",)  # the session's, as applied
    # ai/use-vector-assist, "View vector assist recommendations", as printed (a composite per row)
    viewed = db.execute("SELECT vector_assist.get_recommendations(\n  spec_id => 'apply-spec'\n);").fetchall()
    assert len(viewed) == 2 and all(",t,f," in r[0] for r in viewed)
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT id FROM apply_items ORDER BY embedding <=> '[1,0,0]' LIMIT 5").fetchall())
    assert "apply_items_embedding_hnsw_cosine_m16_efc64_idx" in plan
    # an applied step is not run again
    with db.cursor() as cur:
        notices: list[str] = []
        db.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        cur.execute("SELECT vector_assist.apply_recommendation('apply-spec-01')")
        assert notices == ['recommendation "apply-spec-01" is already applied, skipping']


def test_a_text_column_gets_its_embeddings_generated(db: psycopg.Connection[Any]) -> None:
    db.execute("DROP TABLE IF EXISTS notes")
    db.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    db.execute("INSERT INTO notes SELECT i, 'note about topic ' || (i % 7) FROM generate_series(1, 40) i")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(spec_id => 'notes-spec', "
                      "table_name => 'notes', text_column_name => 'body')").fetchall()
    assert queries(rows) == [
        "ALTER TABLE public.notes ADD COLUMN body_embedding vector(768)",
        "SET google_ml_integration.enable_faster_embedding_generation TO on",
        ("CALL ai.initialize_embeddings(model_id => 'text-embedding-005', table_name => 'public.notes', "
        "content_column => 'body', embedding_column => 'body_embedding', "
        "incremental_refresh_mode => 'transactional')"),
        ("CREATE INDEX IF NOT EXISTS notes_body_embedding_hnsw_cosine_m16_efc64_idx ON public.notes USING hnsw "
        "(body_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"),
        "SET hnsw.ef_search TO 40",
    ]
    spec = db.execute("SELECT embeddings_available, embedding_model, dimensionality, num_vectors "
                      "FROM vector_assist.vector_specs WHERE spec_id = 'notes-spec'").fetchone()
    assert spec == (False, "text-embedding-005", 768, 40)
    assert db.execute("SELECT vector_assist.apply_spec(table_name => 'notes')").fetchone() == (True,)
    assert db.execute("SELECT count(*), count(body_embedding), min(vector_dims(body_embedding)) "
                      "FROM notes").fetchone() == (40, 40, 768)
    # 'transactional' refresh: a new row is embedded as it is written
    db.execute("INSERT INTO notes VALUES (41, 'note about topic 3')")
    assert db.execute("SELECT body_embedding IS NOT NULL FROM notes WHERE id = 41").fetchone() == (True,)
    # generate_query's search_text is embedded with the spec's model; the generated SQL runs
    sql = db.execute("SELECT vector_assist.generate_query(spec_id => 'notes-spec', "
                     "search_text => 'note about topic 3', output_column_names => ARRAY['id', 'body'], "
                     "top_k => 3)").fetchone()[0]
    assert "embedding('text-embedding-005', 'note about topic 3')::vector" in sql
    db.execute(sql)
    found = db.execute(sql.split("\n")[-1]).fetchall()
    assert len(found) == 3 and all(body == "note about topic 3" for _, body in found)
    # a vector column named that does not exist yet is the one added
    named = db.execute("SELECT query FROM vector_assist.define_spec(table_name => 'notes', "
                       "text_column_name => 'body', vector_column_name => 'body_vec', "
                       "embedding_model => 'text-embedding-005', dimensionality => 768) LIMIT 1").fetchone()
    assert named == ("ALTER TABLE public.notes ADD COLUMN body_vec vector(768)",)


def test_ivfflat_lists_and_probes_follow_pgvectors_advice(db: psycopg.Connection[Any]) -> None:
    make_items(db, "ivf_items")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'ivf_items', "
                      "vector_index_type => 'ivfflat', distance_func => 'l2', num_vectors => 250000)"
                      ).fetchall()
    # 250,000 rows / 1000 = 250 lists; probes ceil(sqrt(250) * 2) = 32 at 0.95 recall
    assert queries(rows) == [
        ("CREATE INDEX IF NOT EXISTS ivf_items_embedding_ivfflat_l2_lists250_idx ON public.ivf_items "
        "USING ivfflat (embedding vector_l2_ops) WITH (lists = 250)"),
        "SET ivfflat.probes TO 32",
    ]
    spec_id = rows[0][1]
    # without num_vectors, the rows present: 3 lists
    db.execute("SELECT vector_assist.modify_spec(spec_id => %s, num_vectors => %s)", (spec_id, ROWS))
    assert queries(db.execute("SELECT * FROM vector_assist.get_recommendations(%s)", (spec_id,)).fetchall()) == [
        ("CREATE INDEX IF NOT EXISTS ivf_items_embedding_ivfflat_l2_lists3_idx ON public.ivf_items "
        "USING ivfflat (embedding vector_l2_ops) WITH (lists = 3)"),
        "SET ivfflat.probes TO 3",
    ]
    assert db.execute("SELECT vector_assist.apply_spec(spec_id => %s)", (spec_id,)).fetchone() == (True,)
    assert db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ivf_items_embedding_ivfflat_l2_lists3_idx'"
                      ).fetchone() == (("CREATE INDEX ivf_items_embedding_ivfflat_l2_lists3_idx ON public.ivf_items "
                                       "USING ivfflat (embedding) WITH (lists='3')"),)  # l2: the default class
    assert db.execute("SHOW ivfflat.probes").fetchone() == ("3",)


def test_quantization_and_the_memory_budget(db: psycopg.Connection[Any]) -> None:
    make_items(db, "wide_items", rows=50, dims=2500)
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'wide_items')").fetchall()
    # more than 2000 dimensions: a full-precision HNSW index cannot hold them, halfvec can
    assert queries(rows)[0] == (
        "CREATE INDEX IF NOT EXISTS wide_items_embedding_hnsw_cosine_halfvec_m16_efc64_idx ON public.wide_items USING hnsw "
        "((embedding::halfvec(2500)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)")
    # applied, the index is the one generate_query's search uses
    spec_id = rows[0][1]
    db.execute("SELECT vector_assist.apply_spec(spec_id => %s)", (spec_id,))
    probe = "[" + ",".join(["0.5"] * 2500) + "]"
    sql = db.execute("SELECT vector_assist.generate_query(spec_id => %s, search_vector => %s::vector, "
                     "top_k => 3)", (spec_id, probe)).fetchone()[0]
    search = sql.split("\n")[-1]
    assert search.startswith("SELECT * FROM public.wide_items ORDER BY embedding::halfvec(2500) <=> ")
    db.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + search.rstrip(";")).fetchall())
    db.execute("RESET enable_seqscan")
    assert "wide_items_embedding_hnsw_cosine_halfvec_m16_efc64_idx" in plan
    assert len(db.execute(search).fetchall()) == 3
    state, message = sqlstate(db, "SELECT vector_assist.define_spec(table_name => 'wide_items', "
                                  "quantization => 'none')")
    assert state == "22023" and "at most 2000 dimensions" in message
    make_items(db, "budget_items")
    # 3000 vectors of 3 dimensions: about 700 kB in full precision or halfvec; 100 kB takes bit
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'budget_items', "
                      "memory_budget_kb => 100)").fetchall()
    assert queries(rows) == [
        "SET maintenance_work_mem TO '1024kB'",
        ("CREATE INDEX IF NOT EXISTS budget_items_embedding_hnsw_cosine_bit_m16_efc64_idx ON public.budget_items USING hnsw "
        "((binary_quantize(embedding)::bit(3)) bit_hamming_ops) WITH (m = 16, ef_construction = 64)"),
        "SET hnsw.ef_search TO 40",
    ]
    assert db.execute("SELECT vector_assist.apply_spec(table_name => 'budget_items')").fetchone() == (True,)
    sql = db.execute("SELECT vector_assist.generate_query(table_name => 'budget_items', "
                     "search_vector => '[0.1, 0.2, 0.3]', top_k => 5)").fetchone()[0]
    assert "binary_quantize(embedding)::bit(3) <~> binary_quantize('[0.1,0.2,0.3]'::vector)" in sql
    db.execute(sql)
    assert len(db.execute(sql.split("\n")[-1]).fetchall()) == 5


def test_generate_query_finds_the_nearest_rows(db: psycopg.Connection[Any]) -> None:
    make_items(db, "search_items")
    spec_id = db.execute("SELECT vector_spec_id FROM vector_assist.define_spec(table_name => 'search_items', "
                         "prefilter_column_names => ARRAY['category']) LIMIT 1").fetchone()[0]
    assert queries(db.execute("SELECT * FROM vector_assist.get_recommendations(%s)", (spec_id,)).fetchall())[1:] == [
        "CREATE INDEX IF NOT EXISTS search_items_category_idx ON public.search_items (category)",
        "SET hnsw.iterative_scan TO relaxed_order",
        "SET hnsw.ef_search TO 40",
    ]
    db.execute("SELECT vector_assist.apply_spec(spec_id => %s)", (spec_id,))
    # ai/use-vector-assist, "Generate search queries" (TOP_K quoted, as printed)
    sql = db.execute(f"""
SELECT vector_assist.generate_query(
  spec_id => '{spec_id}',
  search_vector => '[0.5, -0.2, 0.1]',
  top_k => '5',
  target_recall => 0.95,
  filter_expression => 'category = ''c1'''
);""").fetchone()[0]
    assert sql == ("SET hnsw.ef_search TO 40;\nSELECT * FROM public.search_items WHERE (category = 'c1') "
                   "ORDER BY embedding <=> '[0.5,-0.2,0.1]'::vector LIMIT 5;")
    db.execute(sql)
    approximate = [r[0] for r in db.execute(sql.split("\n")[-1]).fetchall()]
    db.execute("SET enable_indexscan = off")
    exact = [r[0] for r in db.execute(sql.split("\n")[-1]).fetchall()]
    db.execute("RESET enable_indexscan")
    # HNSW is approximate (and its graph random): most of the exact answer, all of the filter
    assert len(exact) == 5 and len(set(approximate) & set(exact)) >= 4
    assert all(i % 3 == 1 for i in approximate)


def test_modify_and_delete(db: psycopg.Connection[Any]) -> None:
    make_items(db, "change_items")
    db.execute("SELECT vector_assist.define_spec(spec_id => 'change-spec', table_name => 'change_items')")
    db.execute("SELECT vector_assist.apply_spec(spec_id => 'change-spec')")
    # a new spec regenerates the steps: nothing applied yet
    rows = db.execute("SELECT * FROM vector_assist.modify_spec(spec_id => 'change-spec', "
                      "distance_func => 'ip', target_top_k => 50)").fetchall()
    assert queries(rows) == [
        ("CREATE INDEX IF NOT EXISTS change_items_embedding_hnsw_ip_m16_efc64_idx ON public.change_items USING hnsw "
        "(embedding vector_ip_ops) WITH (m = 16, ef_construction = 64)"),
        "SET hnsw.ef_search TO 200",
    ]
    assert not any(r[6] for r in rows)
    # LangChain's live test: a step replaced by SELECT 1, then applied as changed
    assert db.execute("SELECT vector_assist.modify_recommendation(recommendation_id => 'change-spec-02', "
                      "modified_query => 'SELECT 1')").fetchone() == (True,)
    got = db.execute("SELECT query, modified FROM vector_assist.recommendations "
                     "WHERE recommendation_id = 'change-spec-02'").fetchone()
    assert got == ("SELECT 1", True)
    db.execute("SET hnsw.ef_search TO 11")
    db.execute("SELECT vector_assist.apply_recommendation('change-spec-02')")
    assert db.execute("SHOW hnsw.ef_search").fetchone() == ("11",)
    # ai/use-vector-assist, "List your vector specs"
    listed = db.execute("SELECT vector_assist.list_specs(spec_id => 'change-spec', "
                        "table_name => 'change_items');").fetchall()
    assert len(listed) == 1 and "change-spec" in listed[0][0]
    # the Toolbox's vector-assist-get-spec
    assert db.execute("SELECT distance_func, target_top_k FROM vector_assist.get_spec(spec_id => 'change-spec')"
                      ).fetchall() == [("ip", 50)]
    # the Toolbox's vector-assist-list-specs: by table and column
    assert db.execute("SELECT spec_id FROM vector_assist.list_specs(table_name => 'change_items', "
                      "column_name => 'embedding')").fetchall() == [("change-spec",)]
    assert db.execute("SELECT count(*) FROM vector_assist.list_specs(table_name => 'change_items', "
                      "column_name => 'content')").fetchone() == (0,)
    assert db.execute("SELECT * FROM vector_assist.delete_spec(spec_id => 'change-spec')").fetchone() == (True,)
    assert db.execute("SELECT count(*) FROM vector_assist.vector_specs WHERE spec_id = 'change-spec'"
                      ).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM vector_assist.recommendations "
                      "WHERE vector_spec_id = 'change-spec'").fetchone() == (0,)
    assert db.execute("SELECT deleted_at IS NOT NULL FROM vector_assist.vector_specs_internal "
                      "WHERE spec_id = 'change-spec'").fetchone() == (True,)
    state, _ = sqlstate(db, "SELECT * FROM vector_assist.get_recommendations('change-spec')")
    assert state == "42704"
    assert sqlstate(db, "SELECT * FROM vector_assist.get_spec('change-spec')")[0] == "42704"
    # the id can be used again
    db.execute("SELECT vector_assist.define_spec(spec_id => 'change-spec', table_name => 'change_items')")


@pytest.mark.parametrize(("call", "state", "words"), [
    ("table_name => 'no_such_table'", "42P01", 'relation "no_such_table" does not exist'),
    ("table_name => 'err_items', vector_column_name => 'nope'", "42703", 'column "nope"'),
    ("table_name => 'err_items', vector_column_name => 'content'", "42804", "must be vector or halfvec"),
    ("table_name => 'err_items', vector_index_type => 'scann'", "0A000", "does not recommend ScaNN"),
    ("table_name => 'err_items', vector_index_type => 'flat'", "22023", "'hnsw' or 'ivfflat'"),
    ("table_name => 'err_items', distance_func => 'hamming'", "22023", "distance_func must be"),
    ("table_name => 'err_items', vector_index_type => 'ivfflat', distance_func => 'l1'", "22023",
     "ivfflat indexes do not support"),
    ("table_name => 'err_items', quantization => 'int8'", "22023", "quantization must be"),
    ("table_name => 'err_items', target_recall => 1.5", "22023", "target_recall"),
    ("table_name => 'err_items', dimensionality => 4", "22023", "does not match"),
    ("table_name => 'err_items', prefilter_column_names => ARRAY['missing']", "42703", 'column "missing"'),
    ("table_name => 'err_two'", "22023", "more than one vector column (a, b)"),
    ("table_name => 'err_text'", "22023", "has no vector column; pass text_column_name"),
    ("table_name => 'err_text', text_column_name => 'body', embedding_model => 'no-such-model'", "42704",
     "no-such-model"),
    ("table_name => 'err_text', text_column_name => 'n'", "42804", "must be text"),
])
def test_what_alloydb_refuses(db: psycopg.Connection[Any], call: str, state: str, words: str) -> None:
    make_items(db, "err_items", rows=10)
    db.execute("CREATE TABLE IF NOT EXISTS err_two (a vector(2), b vector(2))")
    db.execute("CREATE TABLE IF NOT EXISTS err_text (body text, n int)")
    got, message = sqlstate(db, f"SELECT * FROM vector_assist.define_spec({call})")
    assert got == state, message
    assert words in message


def test_refusals_of_the_other_functions(db: psycopg.Connection[Any]) -> None:
    make_items(db, "dup_items", rows=10)
    db.execute("SELECT vector_assist.define_spec(spec_id => 'dup', table_name => 'dup_items')")
    assert sqlstate(db, "SELECT vector_assist.define_spec(spec_id => 'dup', table_name => 'dup_items')"
                    )[0] == "42710"
    assert sqlstate(db, "SELECT vector_assist.apply_recommendation('nope-01')")[0] == "42704"
    assert sqlstate(db, "SELECT vector_assist.apply_spec(spec_id => 'nope')")[0] == "42704"
    assert sqlstate(db, "SELECT vector_assist.apply_spec()")[0] == "22023"
    assert sqlstate(db, "SELECT vector_assist.modify_recommendation('dup-01', '')")[0] == "22023"
    state, message = sqlstate(db, "SELECT vector_assist.generate_query(spec_id => 'dup')")
    assert state == "22023" and "search_text and search_vector" in message
    state, message = sqlstate(db, "SELECT vector_assist.generate_query(spec_id => 'dup', search_vector => '[1,2]')")
    assert state == "22000" and "2 dimensions" in message
    state, message = sqlstate(db, "SELECT vector_assist.generate_query(spec_id => 'dup', search_text => 'x')")
    assert state == "22023" and "no embedding_model" in message
    # a failing step stops apply_spec with its own error; nothing is marked applied
    db.execute("SELECT vector_assist.modify_recommendation('dup-01', 'SELECT 1/0')")
    assert sqlstate(db, "SELECT vector_assist.apply_spec(spec_id => 'dup')")[0] == "22012"
    assert db.execute("SELECT bool_or(applied) FROM vector_assist.get_recommendations('dup')"
                      ).fetchone() == (False,)
    # the flag, when it is turned off
    db.execute("SET vector_assist.enabled = off")
    state, message = sqlstate(db, "SELECT vector_assist.define_spec(table_name => 'dup_items')")
    assert state == "55000" and "vector_assist.enabled" in message
    db.execute("RESET vector_assist.enabled")


def test_only_the_owner_changes_a_spec(db: psycopg.Connection[Any], dsn: str) -> None:
    make_items(db, "owned_items", rows=10)
    db.execute("SELECT vector_assist.define_spec(spec_id => 'owned', table_name => 'owned_items')")
    db.execute("DROP ROLE IF EXISTS va_other")
    db.execute("CREATE ROLE va_other LOGIN")
    db.execute("GRANT SELECT ON owned_items TO va_other")
    try:
        other = dsn.replace("postgres@", "va_other@", 1)
        with psycopg.connect(other, autocommit=True) as conn:
            # readable by all, changeable by the owner only: no one rewrites SQL another applies
            assert conn.execute("SELECT count(*) FROM vector_assist.get_recommendations('owned')"
                                ).fetchone() == (2,)
            assert sqlstate(conn, "SELECT vector_assist.modify_recommendation('owned-01', 'DROP TABLE owned_items')"
                            )[0] == "42501"
            assert sqlstate(conn, "SELECT vector_assist.delete_spec('owned')")[0] == "42501"
            # a spec of their own: defined, but applied with their rights (not the table's owner)
            conn.execute("SELECT vector_assist.define_spec(spec_id => 'theirs', table_name => 'owned_items')")
            state, message = sqlstate(conn, "SELECT vector_assist.apply_spec(spec_id => 'theirs')")
            assert state == "42501" and "must be owner of table owned_items" in message
            assert conn.execute("SELECT vector_assist.delete_spec('theirs')").fetchone() == (True,)
        assert db.execute("SELECT modified FROM vector_assist.recommendations "
                          "WHERE recommendation_id = 'owned-01'").fetchone() == (False,)
    finally:
        db.execute("DROP OWNED BY va_other")
        db.execute("DROP ROLE va_other")


# -- the clients --------------------------------------------------------------------------------

# googleapis/mcp-toolbox, internal/tools/postgres/vectorassistdefinespec (pgx, $n placeholders)
TOOLBOX_DEFINE_SPEC = """
\t\tSELECT recommendation_id, vector_spec_id, table_name, schema_name, query, recommendation, applied, modified, created_at 
\t\tFROM vector_assist.define_spec(table_name => $1::TEXT, schema_name => $2::TEXT, spec_id => $3::TEXT, 
\t\t\tvector_column_name => $4::TEXT, text_column_name => $5::TEXT, 
\t\t\tvector_index_type => $6::TEXT, embeddings_available => $7::BOOLEAN, 
\t\t\tnum_vectors => $8::INTEGER, dimensionality => $9::INTEGER, 
\t\t\tembedding_model => $10::TEXT, prefilter_column_names => $11, 
\t\t\tdistance_func => $12::TEXT, quantization => $13::TEXT, 
\t\t\tmemory_budget_kb => $14::INTEGER, target_recall => $15::FLOAT, 
\t\t\ttarget_top_k =>$16::INTEGER, tune_vector_index =>$17::BOOLEAN);
"""
# ... vectorassistapplyspec and vectorassistgeneratequery (pgx named arguments, as $n here)
TOOLBOX_APPLY_SPEC = """
    SELECT * FROM vector_assist.apply_spec(spec_id => $1::TEXT, table_name => $2::TEXT,
    column_name => $3::TEXT, schema_name => $4::TEXT);
"""
TOOLBOX_GENERATE_QUERY = """
    SELECT vector_assist.generate_query(
        spec_id => $1::TEXT, table_name => $2::TEXT,
        schema_name => $3::TEXT, column_name => $4::TEXT,
        search_text => $5::TEXT, search_vector => $6::vector,
        output_column_names => $7,
        top_k => $8::INTEGER,
        filter_expressions => $9,
        target_recall => $10::FLOAT,
        iterative_index_search => $11::BOOLEAN
      );
"""


def test_the_toolbox_tools(db: psycopg.Connection[Any], dsn: str) -> None:
    make_items(db, "toolbox_items")

    async def scenario() -> tuple[list[asyncpg.Record], Any, str]:
        conn = await asyncpg.connect(dsn)
        try:
            # the tool passes every parameter, NULL when the agent left it out
            defined = await conn.fetch(TOOLBOX_DEFINE_SPEC, "toolbox_items", None, None, "embedding",
                                       None, None, None, None, None, None, ["category"], "l2", None,
                                       None, 0.9, 20, None)
            applied = await conn.fetchval(TOOLBOX_APPLY_SPEC, None, "toolbox_items", "embedding", None)
            generated = await conn.fetchval(TOOLBOX_GENERATE_QUERY, None, "toolbox_items", None, None,
                                            None, "[0.1,0.2,0.3]", ["id"], 4, ["category <> 'c0'"],
                                            None, True)
            return defined, applied, generated
        finally:
            await conn.close()

    defined, applied, generated = asyncio.run(scenario())
    assert [r["query"] for r in defined][-1] == "SET hnsw.ef_search TO 40"  # 20 results * 2 at 0.9
    assert "vector_l2_ops" in defined[0]["query"] and defined[0]["schema_name"] == "public"
    assert applied is True
    assert generated == ("SET hnsw.ef_search TO 40;\nSET hnsw.iterative_scan TO relaxed_order;\n"
                         "SELECT id FROM public.toolbox_items WHERE (category <> 'c0') "
                         "ORDER BY embedding <-> '[0.1,0.2,0.3]'::vector LIMIT 4;")


# langchain-google-alloydb-pg: the vector store's methods and the engine's (newest sources)
LC_DEFINE = ("SELECT * FROM vector_assist.define_spec(table_name => :table_name, "
             "vector_column_name => :embedding_column)")
LC_APPLY_BY_TABLE = ("SELECT * FROM vector_assist.apply_spec(table_name => :table_name, "
                     "column_name => :embedding_column)")
LC_GET = "SELECT * FROM vector_assist.get_recommendations(spec_id => :spec_id)"
LC_LATEST_SPEC = (
    "SELECT spec_id FROM vector_assist.vector_specs "
    "WHERE table_name = :table_name "
    "AND schema_name = COALESCE(CAST(:schema_name AS TEXT), current_schema()) "
    "AND vector_column_name = :embedding_column "
    "ORDER BY created_at DESC, spec_id DESC LIMIT 1"
)
LC_ENGINE_DEFINE = ("SELECT * FROM vector_assist.define_spec(table_name => :table_name, "
                    "schema_name => :schema_name, vector_column_name => :embedding_column, "
                    "embedding_model => :embedding_model)")


def test_langchains_call_sequence(db: psycopg.Connection[Any], dsn: str) -> None:
    db.execute('DROP TABLE IF EXISTS "lc_docs"')
    # the vector store's table (init_vectorstore_table's shape), filled before the spec
    db.execute('CREATE TABLE "lc_docs" (langchain_id uuid PRIMARY KEY, content text NOT NULL, '
               "embedding vector(3) NOT NULL, langchain_metadata json)")
    db.execute("INSERT INTO lc_docs SELECT gen_random_uuid(), 'doc ' || i, "
               "ARRAY[sin(i), cos(i), sin(i * 0.5)]::vector, '{}' FROM generate_series(1, 500) i")
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def scenario() -> dict[str, Any]:
        engine = create_async_engine(url)
        text = sqlalchemy.text
        seen: dict[str, Any] = {}
        try:
            async with engine.connect() as conn:
                # AsyncAlloyDBVectorStore.adefine_vector_assist_spec (quoted, qualified name)
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector_assist"))
                result = await conn.execute(text(LC_DEFINE), {"table_name": '"public"."lc_docs"',
                                                              "embedding_column": "embedding"})
                seen["defined"] = [dict(r) for r in result.mappings()]
                await conn.commit()
                # aget_vector_assist_recommendations defines again, then reads the first spec's
                again = await conn.execute(text(LC_DEFINE), {"table_name": '"public"."lc_docs"',
                                                             "embedding_column": "embedding"})
                spec_id = next(dict(r) for r in again.mappings())["vector_spec_id"]
                seen["recommendations"] = [dict(r) for r in (await conn.execute(
                    text(LC_GET), {"spec_id": str(spec_id)})).mappings()]
                await conn.commit()
                # aapply_vector_assist_spec without spec_id: by table and column
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector_assist"))
                seen["applied"] = [dict(r) for r in (await conn.execute(
                    text(LC_APPLY_BY_TABLE), {"table_name": "lc_docs",
                                              "embedding_column": "embedding"})).mappings()]
                await conn.commit()
                # AlloyDBEngine: define with the schema and model, find the latest spec, delete
                await conn.execute(text(LC_ENGINE_DEFINE), {
                    "table_name": "lc_docs", "schema_name": "public",
                    "embedding_column": "embedding", "embedding_model": "text-embedding-005"})
                await conn.commit()
                latest = (await conn.execute(text(LC_LATEST_SPEC), {
                    "table_name": "lc_docs", "schema_name": None,
                    "embedding_column": "embedding"})).mappings().first()
                seen["latest"] = latest["spec_id"] if latest else None
                seen["apply_latest"] = (await conn.execute(
                    text("SELECT vector_assist.apply_spec(spec_id => :spec_id)"),
                    {"spec_id": seen["latest"]})).scalar()
                ids = (await conn.execute(text(
                    "SELECT spec_id FROM vector_assist.vector_specs WHERE table_name = :t"),
                    {"t": "lc_docs"})).scalars().all()
                for spec in ids:
                    await conn.execute(text("SELECT * FROM vector_assist.delete_spec(spec_id => :spec_id)"),
                                       {"spec_id": spec})
                await conn.commit()
                seen["left"] = (await conn.execute(text(
                    "SELECT count(*) FROM vector_assist.vector_specs WHERE table_name = 'lc_docs'"))).scalar()
        finally:
            await engine.dispose()
        return seen

    seen = asyncio.run(scenario())
    defined = seen["defined"]
    assert [r["table_name"] for r in defined] == ["lc_docs", "lc_docs"]
    assert set(defined[0]) == {"recommendation_id", "vector_spec_id", "table_name", "schema_name",
                               "query", "recommendation", "applied", "modified", "created_at"}
    assert len(seen["recommendations"]) == 2
    assert seen["applied"] == [{"apply_spec": True}]
    assert seen["apply_latest"] is True
    assert seen["left"] == 0
    assert db.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'lc_docs_embedding_hnsw_cosine_m16_efc64_idx'"
                      ).fetchone() == (1,)
    assert math.isclose(float(db.execute("SELECT count(*) FROM lc_docs").fetchone()[0]), 500)


# googleapis/mcp-toolbox, vectorassistimprovequeryrecall (pgx named arguments, as $n here)
TOOLBOX_IMPROVE_RECALL = """
  SELECT output_ef_search AS ef_search
  FROM vector_assist.find_ef_search_for_target_recall(
    table_name => $1::TEXT,
    schema_name => $2::TEXT,
    column_name => $3::TEXT,
    top_k => $4::INT,
    target_recall => $5::FLOAT,
    distance_func => $6::TEXT
  );
"""
EF_STEPS = [10, 20, 40, 80, 100, 200, 400, 800, 1000]


def measured_recall(db: psycopg.Connection[Any], ef: int, samples: list[str], k: int) -> float:
    """The mean recall of the HNSW index at ``ef`` against exact answers, measured here (never
    prepared: a prepared plan would keep the scan chosen under the settings of its first runs)."""
    nearest = f"SELECT id FROM recall_items ORDER BY embedding <=> %s::vector LIMIT {k}"
    hits = wanted = 0
    for sample in samples:
        db.execute("SET enable_indexscan = off")
        exact = {r[0] for r in db.execute(nearest, (sample,), prepare=False)}
        db.execute("RESET enable_indexscan")
        db.execute(f"SET hnsw.ef_search = {ef}")
        db.execute("SET enable_seqscan = off")
        approximate = {r[0] for r in db.execute(nearest, (sample,), prepare=False)}
        db.execute("RESET enable_seqscan")
        hits, wanted = hits + len(exact & approximate), wanted + len(exact)
    return hits / wanted


def test_the_toolboxs_recall_tuning_is_measured(db: psycopg.Connection[Any], dsn: str) -> None:
    make_items(db, "recall_items", dims=24)
    # a coarse graph, so that recall depends on ef_search
    db.execute("CREATE INDEX recall_items_hnsw ON recall_items USING hnsw (embedding vector_cosine_ops) "
               "WITH (m = 2, ef_construction = 4)")

    async def tune(goal: float) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(TOOLBOX_IMPROVE_RECALL, "recall_items", "public",
                                           "embedding", 10, goal, "cosine"))
        finally:
            await conn.close()

    samples = [r[0] for r in db.execute("SELECT embedding::text FROM recall_items "
                                        "ORDER BY md5(ctid::text) LIMIT 20")]
    db.execute("SET hnsw.ef_search = 33")
    for goal in (0.8, 0.99):
        ef = asyncio.run(tune(goal))
        assert ef in EF_STEPS
        if ef < 1000:
            assert measured_recall(db, ef, samples, 10) >= goal
        if ef > EF_STEPS[0]:
            assert measured_recall(db, EF_STEPS[EF_STEPS.index(ef) - 1], samples, 10) < goal
    # its own settings are put back (here: within its transaction, and the session's after)
    db.execute("SET hnsw.ef_search = 33")
    assert db.execute("SELECT (SELECT output_ef_search FROM vector_assist.find_ef_search_for_target_recall("
                      "'recall_items')) > 0, current_setting('hnsw.ef_search'), "
                      "current_setting('enable_seqscan')").fetchone() == (True, "33", "on")
    state, message = sqlstate(db, "SELECT * FROM vector_assist.find_ef_search_for_target_recall("
                                  "'recall_items', distance_func => 'l2')")
    assert state == "42704" and "no HNSW index for l2 distance" in message


def test_schemas_and_names_that_need_quoting(db: psycopg.Connection[Any]) -> None:
    db.execute("DROP SCHEMA IF EXISTS \"Other Schema\" CASCADE")
    db.execute("CREATE SCHEMA \"Other Schema\"")
    db.execute('CREATE TABLE "Other Schema"."My ""Items""" (id int, "Emb" vector(2))')
    db.execute('INSERT INTO "Other Schema"."My ""Items""" SELECT i, ARRAY[i, 1]::vector '
               "FROM generate_series(1, 20) i")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'My \"Items\"', "
                      "schema_name => 'Other Schema')").fetchall()
    assert rows[0][2:4] == ('My "Items"', "Other Schema")
    assert queries(rows)[0] == (
        'CREATE INDEX IF NOT EXISTS "My ""Items""_Emb_hnsw_cosine_m16_efc64_idx" ON "Other Schema"."My ""Items""" '
        'USING hnsw ("Emb" vector_cosine_ops) WITH (m = 16, ef_construction = 64)')
    assert db.execute("SELECT vector_assist.apply_spec(table_name => 'My \"Items\"', "
                      "schema_name => 'Other Schema')").fetchone() == (True,)
    assert db.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'Other Schema' "
                      "AND indexname = 'My \"Items\"_Emb_hnsw_cosine_m16_efc64_idx'").fetchone() == (1,)
    # without schema_name: the schema comes from the search_path
    db.execute('SET search_path TO "Other Schema", public')
    spec = db.execute("SELECT schema_name FROM vector_assist.define_spec(table_name => 'My \"Items\"') "
                      "LIMIT 1").fetchone()
    db.execute("RESET search_path")
    assert spec == ("Other Schema",)
    # not on the search_path: no such table
    assert sqlstate(db, "SELECT vector_assist.define_spec(table_name => 'My \"Items\"')")[0] == "42P01"


def test_an_older_google_ml_integration_is_named(emulator: Emulator) -> None:
    # ai.initialize_embeddings (and the model checks behind it) came with 1.5.6
    with psycopg.connect(empty_database(emulator, "vector_assist_old"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.3'")
        conn.execute("CREATE EXTENSION vector_assist CASCADE")
        conn.execute("CREATE TABLE notes (id int, body text)")
        state, message = sqlstate(conn, "SELECT vector_assist.define_spec(table_name => 'notes', "
                                        "text_column_name => 'body')")
        assert state == "55000" and "google_ml_integration 1.5.6 or later" in message
        assert "(installed: 1.5.3)" in message
        # existing vectors need no model
        conn.execute("CREATE TABLE items (id int, embedding vector(2))")
        assert len(conn.execute("SELECT * FROM vector_assist.define_spec(table_name => 'items')").fetchall()) == 2


def test_an_index_the_column_already_has_is_not_made_twice(db: psycopg.Connection[Any]) -> None:
    make_items(db, "indexed_items", rows=200)
    db.execute("CREATE INDEX my_hnsw ON indexed_items USING hnsw (embedding vector_cosine_ops)")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'indexed_items')").fetchall()
    assert queries(rows) == ["SET hnsw.ef_search TO 40"]
    assert 'for the existing index "my_hnsw"' in rows[0][5]
    # another distance, or a tuned build, is another index
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'indexed_items', "
                      "distance_func => 'l2')").fetchall()
    assert queries(rows)[0].startswith("CREATE INDEX IF NOT EXISTS indexed_items_embedding_hnsw_l2_m16_efc64_idx")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'indexed_items', "
                      "tune_vector_index => true)").fetchall()
    assert queries(rows)[0].startswith("CREATE INDEX IF NOT EXISTS indexed_items_embedding_hnsw_cosine_m16_efc64_idx")
    # IVFFlat: the probes follow the existing index's lists
    db.execute("CREATE INDEX my_ivf ON indexed_items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 16)")
    rows = db.execute("SELECT * FROM vector_assist.define_spec(table_name => 'indexed_items', "
                      "vector_index_type => 'ivfflat')").fetchall()
    assert queries(rows) == ["SET ivfflat.probes TO 8"]  # ceil(sqrt(16) * 2)
    assert 'of the 16 lists' in rows[0][5] and '"my_ivf"' in rows[0][5]
