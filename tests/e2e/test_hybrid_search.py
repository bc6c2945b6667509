"""ai.hybrid_search and ai.g_to_tsquery as Google's pages print them.

Pages: ai/run-hybrid-vector-similarity-search (the example, statement by statement) and
reference/ai/hybrid-search-function-parameters (every parameter). The fakes' embeddings put texts
that share words near each other, so the fused order is predictable without being hard-coded:
the tests compare it with Reciprocal Rank Fusion computed here from each component's own query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.databases import fresh_database
from tests.support.emulators import Emulator

DB = "hybrid_search_tests"

# ai/run-hybrid-vector-similarity-search, "Prepare your data and create indexes", as printed
PREPARE = [
    """CREATE TABLE documents (
  doc_id TEXT PRIMARY KEY,
  content TEXT,
  text_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
  text_embedding vector(3072) GENERATED ALWAYS AS (embedding('gemini-embedding-001', content)) STORED 
);""",
    """INSERT INTO documents (doc_id, content) VALUES
  ('doc1', 'AlloyDB is a fully managed, PostgreSQL-compatible database service.'),
  ('doc2', 'It offers enterprise-grade performance, availability, and security.'),
  ('doc3', 'You can use it for demanding transactional and analytical workloads.'),
  ('doc4', 'AlloyDB integrates with Google Cloud services like Gemini Enterprise Agent Platform.'),
  ('doc5', 'The database supports vector embeddings for semantic search.'),
  ('doc6', 'alloydb_scann is an AlloyDB specific extension that provides scann index for vector search.'),
  ('doc7', 'alloydb_scann extension depends upon pgvector extension '),
  ('doc8', 'With alloydb_scann extension'),
  ('doc9', 'customers can create scann index'),
  ('doc10', 'to speed up their vector search workloads');""",
    """CREATE EXTENSION IF NOT EXISTS alloydb_scann;
CREATE INDEX documents_text_embedding_idx
ON documents USING scann (text_embedding cosine)
WITH(num_leaves = 10, quantizer = 'SQ8');

CREATE INDEX documents_text_tsv_idx ON documents USING GIN (text_tsv);""",
]

HYBRID = """SELECT *
FROM ai.hybrid_search(
  search_inputs => ARRAY[
      '{
        "data_type": "vector",
        "weight": 0.5,
        "table_name": "documents",
        "key_column": "doc_id",
        "vec_column": "text_embedding",
        "distance_operator": "public.<=>",
        "limit": 5,
        "query_vector": "ai.embedding(''gemini-embedding-001'', ''managed database'')::vector"
      }'::JSONB,
      '{
        "data_type": "text",
        "weight": 0.5,
        "table_name": "documents",
        "key_column": "doc_id",
        "text_column": "text_tsv",
        "limit": 5,
        "ranking_function": "ts_rank",
        "query_text_input": "database"
      }'::JSONB
  ],
  include_json_output => false
);"""


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = fresh_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # "Before you begin", as printed (for this test's connections: the database default)
        conn.execute(f"ALTER DATABASE {DB} SET google_ml_integration.enable_preview_ai_functions = true")
        for statement in PREPARE:
            conn.execute(statement)
    return dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def component(conn: psycopg.Connection[tuple[Any, ...]], sql: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(sql).fetchall()]


def rrf(lists: list[tuple[float, list[str]]]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for weight, keys in lists:
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (60 + rank)
    return scores


def test_the_documented_hybrid_search_fuses_both_components(
    conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    rows = conn.execute(HYBRID).fetchall()
    vector = component(conn, "SELECT doc_id FROM documents ORDER BY text_embedding <=> "
                       "ai.embedding('gemini-embedding-001', 'managed database')::vector, doc_id "
                       "LIMIT 5")
    text = component(conn, "SELECT doc_id FROM documents WHERE text_tsv @@ "
                     "ai.g_to_tsquery('database') ORDER BY ts_rank(text_tsv, "
                     "ai.g_to_tsquery('database')) DESC, doc_id LIMIT 5")
    expected = rrf([(0.5, vector), (0.5, text)])
    assert {r[0] for r in rows} == set(expected)
    for key, score, detail in rows:
        assert score == pytest.approx(expected[key])
        assert detail is None  # include_json_output => false
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert "doc1" in text and "doc5" in text  # the two that say "database"


def test_json_output_explains_each_score(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    rows = conn.execute(HYBRID.replace("include_json_output => false",
                                       "include_json_output => true")).fetchall()
    _doc, score, detail = next(r for r in rows if r[0] == "doc1")
    assert detail["item_id"] == "doc1"
    assert detail["final_score"] == pytest.approx(score)
    parts = detail["calculation"]
    assert set(parts) <= {"component_1", "component_2"} and parts
    for part in parts.values():
        assert set(part) == {"rank", "weight", "data_type", "component_score", "execute_time_ms"}
        assert part["component_score"] == pytest.approx(1 / (60 + part["rank"]))
        assert part["weight"] == 0.5
    assert parts["component_2"]["data_type"] == "text"


def test_id_type_casts_the_key_as_documented(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    # "Specify the data type of the final return type", without its RUM index (see docs)
    conn.execute("""DROP TABLE IF EXISTS product_logs;
CREATE TABLE product_logs (
    log_id_str TEXT PRIMARY KEY,
    content TEXT,
    content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);

INSERT INTO product_logs (log_id_str, content)
VALUES ('999', 'system start and services initialized');""")
    rows = conn.execute("""SELECT
    id,
    pg_typeof(id)
FROM ai.hybrid_search(
    ARRAY['{
        "data_type": "text",
        "table_name": "product_logs",
        "key_column": "log_id_str",
        "text_column": "content_tsv",
        "query_text_input": "system",
        "limit": 1
    }'::jsonb],
    id_type => NULL::INTEGER
);""").fetchall()
    assert rows == [(999, "integer")]
    rows = conn.execute("""SELECT
    id,
    pg_typeof(id),
    score
FROM ai.hybrid_search(
    ARRAY['{
        "data_type": "text",
        "table_name": "product_logs",
        "key_column": "log_id_str",
        "text_column": "content_tsv",
        "query_text_input": "system",
        "limit": 1
    }'::jsonb],
    id_type => NULL::INTEGER --- CAST to INT
);""").fetchall()
    assert rows == [(999, "integer", pytest.approx(1 / 61))]  # one component: weight 1


def test_filters_text_columns_parsers_and_weights(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    rows = conn.execute("""SELECT id, score FROM ai.hybrid_search(ARRAY[
        '{"data_type": "text", "table_name": "public.documents", "key_column": "doc_id",
          "text_column": "content", "query_text_input": "alloydb_scann extension",
          "query_parser": "plainto_tsquery", "ranking_function": "ts_rank_cd", "limit": 10,
          "filter_condition": "doc_id <> ''doc7''", "weight": 0.25}'::jsonb,
        '{"data_type": "vector", "table_name": "documents", "key_column": "doc_id",
          "vec_column": "text_embedding", "distance_operator": "<->", "limit": 3,
          "query_vector": "embedding(''gemini-embedding-001'', ''scann index'')::vector"}'::jsonb
    ])""").fetchall()
    keys = [r[0] for r in rows]
    assert "doc7" not in keys[:1] and "doc8" in keys  # doc8 matches both words; doc7 filtered
    text = component(conn, "SELECT doc_id FROM documents WHERE to_tsvector(content) @@ "
                     "plainto_tsquery('alloydb_scann extension') AND doc_id <> 'doc7' "
                     "ORDER BY ts_rank_cd(to_tsvector(content), "
                     "plainto_tsquery('alloydb_scann extension')) DESC, doc_id LIMIT 10")
    vector = component(conn, "SELECT doc_id FROM documents ORDER BY text_embedding <-> "
                       "embedding('gemini-embedding-001', 'scann index')::vector, doc_id LIMIT 3")
    expected = rrf([(0.25, text), (0.75, vector)])  # the unweighted one gets what is left
    assert dict(rows) == pytest.approx(expected)


def test_g_to_tsquery(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    (plain,) = conn.execute("SELECT ai.g_to_tsquery('managed databases')::text").fetchone()  # type: ignore[misc]
    assert "'manag'" in plain and "'databas'" in plain
    assert conn.execute("SELECT ai.g_to_tsquery('fat & rat')::text").fetchone() == ("'fat' & 'rat'",)
    # a document with one of the two words still matches, one with both ranks higher
    one, both = conn.execute(
        "SELECT ts_rank(to_tsvector('a managed service'), q), "
        "ts_rank(to_tsvector('a managed database'), q) "
        "FROM ai.g_to_tsquery('english', 'managed database') AS q").fetchone()  # type: ignore[misc]
    assert 0 < one < both


@pytest.mark.parametrize(("inputs", "extra", "sqlstate", "fragment"), [
    ("ARRAY[]::jsonb[]", "", "22023", "at least one search component"),
    ("""ARRAY['{"data_type": "image"}'::jsonb]""", "", "22023", "data_type must be 'vector' or 'text'"),
    ("""ARRAY['{"data_type": "text", "table_name": "documents", "key_column": "doc_id",
        "text_column": "text_tsv", "query_text_input": "x"}'::jsonb]""", "", "22023",
     "limit is required"),
    ("""ARRAY['{"data_type": "text", "table_name": "documents", "key_column": "doc_id",
        "text_column": "text_tsv", "query_text_input": "x", "limit": 0}'::jsonb]""", "", "22023",
     "limit must be a positive integer"),
    ("""ARRAY['{"data_type": "text", "table_name": "documents", "key_column": "doc_id",
        "text_column": "text_tsv", "query_text_input": "x", "limit": 2, "weight": 3}'::jsonb]""",
     "", "22023", "weight must be from 0.0 to 1.0"),
    ("""ARRAY['{"data_type": "text", "table_name": "documents", "key_column": "doc_id",
        "text_column": "text_tsv", "query_text_input": "x", "limit": 2, "colour": 1}'::jsonb]""",
     "", "22023", 'unknown field "colour"'),
    ("""ARRAY['{"data_type": "vector", "table_name": "documents", "key_column": "doc_id",
        "vec_column": "text_embedding", "distance_operator": "; DROP TABLE documents",
        "query_vector": "NULL", "limit": 2}'::jsonb]""", "", "22023", "is not an operator"),
    ("""ARRAY['{"data_type": "text", "table_name": "documents", "key_column": "doc_id",
        "text_column": "text_tsv", "query_text_input": "x", "limit": 2}'::jsonb]""",
     ", fusion_algorithm => 'linear'", "0A000", "fusion_algorithm 'linear' is not supported"),
])
def test_bad_input_is_refused_clearly(
    conn: psycopg.Connection[tuple[Any, ...]], inputs: str, extra: str, sqlstate: str,
    fragment: str
) -> None:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(f"SELECT * FROM ai.hybrid_search({inputs}{extra})")
    assert info.value.sqlstate == sqlstate
    assert fragment in str(info.value)


def test_identifiers_are_quoted_and_run_with_the_callers_rights(
    conn: psycopg.Connection[tuple[Any, ...]], dsn: str
) -> None:
    search = """SELECT id FROM ai.hybrid_search(ARRAY['{"data_type": "text",
        "table_name": "documents", "key_column": "doc_id; DROP TABLE documents",
        "text_column": "text_tsv", "query_text_input": "database", "limit": 2}'::jsonb])"""
    with pytest.raises(psycopg.errors.UndefinedColumn, match='"doc_id; DROP TABLE documents"'):
        conn.execute(search)
    conn.execute("DROP ROLE IF EXISTS hybrid_reader")
    conn.execute("CREATE ROLE hybrid_reader LOGIN")
    try:
        reader = psycopg.connect(dsn.replace("postgres@", "hybrid_reader@"), autocommit=True)
        with reader, pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(search.replace("doc_id; DROP TABLE documents", "doc_id"))
    finally:
        conn.execute("DROP ROLE hybrid_reader")


def test_the_preview_flag_gates_it(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    conn.execute("SET google_ml_integration.enable_preview_ai_functions = off")
    with pytest.raises(psycopg.errors.RaiseException, match="enable_preview_ai_functions"):
        conn.execute(HYBRID)
    conn.execute("SET google_ml_integration.enable_preview_ai_functions = true;")  # as printed
    assert conn.execute(HYBRID).fetchall()


def test_json_detail_is_valid_json_text(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    (text,) = conn.execute(  # type: ignore[misc]
        "SELECT detail_json::text FROM ai.hybrid_search(ARRAY['{\"data_type\": \"text\", "
        "\"table_name\": \"documents\", \"key_column\": \"doc_id\", \"text_column\": \"text_tsv\", "
        "\"query_text_input\": \"vector\", \"limit\": 1}'::jsonb], include_json_output => true)"
    ).fetchone()
    assert json.loads(text)["calculation"]["component_1"]["rank"] == 1


def test_the_vector_component_can_use_a_vector_index(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    (sql,) = conn.execute(  # type: ignore[misc]
        """SELECT google_ml._hybrid_component_sql('{"data_type": "vector", "table_name": "items",
        "key_column": "id", "vec_column": "e", "distance_operator": "<=>", "limit": 3,
        "query_vector": "''[1, 0, 0]''::vector"}'::jsonb, 1)""").fetchone()
    conn.execute("CREATE TABLE IF NOT EXISTS items (id int, e vector(3))")
    conn.execute("INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), 1]::vector "
                 "FROM generate_series(1, 3000) i")
    conn.execute("CREATE INDEX ON items USING scann (e cosine)")
    conn.execute("ANALYZE items")
    plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql).fetchall())
    assert "Index Scan using items_e_idx" in plan
    # a limit above HNSW's 40 candidates: the bare query stops at 40, the function does not
    assert len(conn.execute(sql.replace("LIMIT 3", "LIMIT 100")).fetchall()) == 40
    (count,) = conn.execute("""SELECT count(*) FROM ai.hybrid_search(ARRAY['{"data_type": "vector",
        "table_name": "items", "key_column": "id", "vec_column": "e", "distance_operator": "<=>",
        "limit": 100, "query_vector": "''[1, 0, 0]''::vector"}'::jsonb])""").fetchone()  # type: ignore[misc]
    assert count == 100
    with conn.transaction():  # and the setting does not outlive the call
        conn.execute("""SELECT * FROM ai.hybrid_search(ARRAY['{"data_type": "vector",
            "table_name": "items", "key_column": "id", "vec_column": "e",
            "distance_operator": "<=>", "limit": 1, "query_vector": "''[1, 0, 0]''::vector"}'::jsonb])""")
        assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("off",)
