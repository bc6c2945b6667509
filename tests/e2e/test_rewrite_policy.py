"""The proxy never changes what a valid statement means, and never makes valid what AlloyDB
refuses (proxy/rewrites.py, proxy/warmup.py, docs/differences.md).

Through the real emulator: WHERE clauses the old token splitting broke, DML on pg_settings, a view
on pg_settings that must not tie itself to the extension, the seed page's missing comma. Then a
property test: generated WHERE clauses around model calls give the same rows through a proxy with
the warm-up as through one without it, and every rewritten text parses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pglast
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.rewrites import rewrite
from tests.support.databases import fresh_database
from tests.support.emulators import Emulator, start_emulator, stop_emulator

MODEL = "text-embedding-005"
CALL = f"google_ml.embedding('{MODEL}', content) IS NOT NULL"
CASE_WHERE = f"CASE WHEN flag AND id > 2 THEN true END AND {CALL}"
ROWS = 12


@pytest.fixture(scope="module")
def policy_db(emulator: Emulator) -> str:
    dsn = fresh_database(emulator, "rewrite_policy")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, content text, flag bool, tag text,"
                     " hits int NOT NULL DEFAULT 0)")
        conn.execute(
            "INSERT INTO docs (id, content, flag, tag) SELECT i,"
            " CASE WHEN i % 5 = 0 THEN 'or' ELSE 'doc ' || i || ' and more' END,"
            " i % 2 = 0, CASE WHEN i % 3 = 0 THEN NULL ELSE 'where AND or' END"
            f" FROM generate_series(1, {ROWS}) i")
    return dsn


# -- the cases that broke ---------------------------------------------------------------------


def test_case_with_and_before_a_model_call_in_where_runs(policy_db: str) -> None:
    with psycopg.connect(policy_db, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM docs WHERE {CASE_WHERE}").fetchone()
        expected = conn.execute(
            "SELECT count(*) FROM docs WHERE flag AND id > 2").fetchone()
    assert row == expected and row is not None and row[0] > 0


def test_case_with_and_before_a_model_call_in_update_where_runs(policy_db: str) -> None:
    with psycopg.connect(policy_db) as conn:
        updated = conn.execute(f"UPDATE docs SET hits = hits + 1 WHERE {CASE_WHERE}").rowcount
        conn.rollback()
    with psycopg.connect(policy_db) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM docs WHERE flag AND id > 2").fetchone()
    assert expected is not None and updated == expected[0] > 0


def test_the_warm_up_splice_of_such_a_where_is_proved_on_the_parse_tree() -> None:
    sql = f"SELECT count(*) FROM docs WHERE {CASE_WHERE}"
    out = rewrite(sql).sql
    assert out is not None and "google_ml._warm(" in out
    assert f"AND ( {CASE_WHERE})" in out  # the original condition, whole, parenthesised
    pglast.parse_sql(out)


def test_update_pg_settings_sets_the_parameter(policy_db: str) -> None:
    with psycopg.connect(policy_db, autocommit=True) as conn:
        cur = conn.execute("UPDATE pg_settings SET setting = 'off' WHERE name = 'enable_seqscan'")
        assert cur.statusmessage == "UPDATE 0"  # as PostgreSQL says it: the rule did the work
        assert conn.execute("SHOW enable_seqscan").fetchone() == ("off",)
        # The flags are still listed by a plain read, as on AlloyDB.
        assert conn.execute("SELECT count(*) FROM pg_settings"
                            " WHERE name LIKE 'google_ml_integration.%'").fetchone() != (0,)


@pytest.mark.parametrize("sql", [
    ("WITH s AS (UPDATE pg_settings SET setting = 'off' WHERE name = 'enable_hashjoin')"
     " SELECT 1"),
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'enable_seqscan' RETURNING name",
])
def test_dml_on_pg_settings_answers_what_postgresql_answers(
        emulator: Emulator, policy_db: str, sql: str) -> None:
    def outcome(dsn: str) -> str:
        with psycopg.connect(dsn, autocommit=True) as conn:
            try:
                conn.execute(sql)
            except psycopg.Error as exc:
                return f"{exc.sqlstate} {exc.diag.message_primary}"
            return "ok " + str(conn.execute("SHOW enable_hashjoin").fetchone())

    direct = policy_db.replace(f"{emulator.host}:{emulator.port}",
                               f"{emulator.direct_host}:{emulator.direct_port}")
    through_proxy = outcome(policy_db)
    assert through_proxy == outcome(direct)
    assert "pg_settings_with_flags" not in through_proxy


def test_a_view_on_pg_settings_stays_on_pg_settings_and_the_extension_drops(
        emulator: Emulator) -> None:
    dsn = fresh_database(emulator, "rewrite_policy_view")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW my_settings AS SELECT name, setting FROM pg_settings")
        conn.execute("CREATE MATERIALIZED VIEW my_settings_m AS SELECT name FROM pg_settings")
        definition = conn.execute("SELECT pg_get_viewdef('my_settings')").fetchone()
        assert definition is not None and "pg_settings_with_flags" not in definition[0]
        conn.execute("DROP EXTENSION google_ml_integration")  # nothing depends on it
        assert conn.execute("SELECT count(*) FROM my_settings").fetchone() != (0,)


def test_show_answers_the_extensions_flags_as_alloydb_does(policy_db: str) -> None:
    # Scripts written for AlloyDB check the flag so (its instance flags always answer SHOW).
    with psycopg.connect(policy_db, autocommit=True) as conn:
        cur = conn.execute("SHOW google_ml_integration.enable_model_support;")
        assert cur.statusmessage == "SHOW"
        assert cur.description is not None
        assert cur.description[0].name == "google_ml_integration.enable_model_support"
        assert cur.fetchall() == [("on",)]
        conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
        assert conn.execute("SHOW google_ml_integration.enable_ai_query_engine").fetchall() == [
            ("on",)]
        with pytest.raises(psycopg.errors.UndefinedObject, match="unrecognized configuration"):
            conn.execute("SHOW google_ml_integration.no_such_flag")
        assert conn.execute("SHOW search_path").fetchone() is not None  # others untouched


def test_show_answers_the_flags_in_a_database_without_the_extension(emulator: Emulator) -> None:
    # AlloyDB's flags are instance flags: a summit's set-up checks them in `postgres` before
    # any CREATE EXTENSION ("SHOW google_ml_integration.enable_model_support; -- Expected
    # Output: 'on'"). Their defaults come from emulator/flags.py, the extension's own source.
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE IF EXISTS rewrite_policy_bare WITH (FORCE)")
        admin.execute("CREATE DATABASE rewrite_policy_bare")
    with psycopg.connect(emulator.dsn_for(dbname="rewrite_policy_bare"),
                         autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = "
                            "'google_ml_integration'").fetchone() == (0,)
        cur = conn.execute("SHOW google_ml_integration.enable_model_support;")
        assert cur.statusmessage == "SHOW"
        assert cur.description is not None
        assert cur.description[0].name == "google_ml_integration.enable_model_support"
        assert cur.fetchall() == [("on",)]
        show = "SHOW google_ml_integration.enable_faster_embedding_generation"
        assert conn.execute(show).fetchall() == [("off",)]
        conn.execute("SET google_ml_integration.enable_faster_embedding_generation = true")
        assert conn.execute(show).fetchall() == [("on",)]
        # Not a boolean: the flag takes its default, as the extension's _flag() reads it.
        conn.execute("SET google_ml_integration.enable_faster_embedding_generation = 'maybe'")
        assert conn.execute(show).fetchall() == [("off",)]
        conn.execute("SET google_ml_integration.enable_model_support = ' OF '")
        assert conn.execute(
            "SHOW google_ml_integration.enable_model_support").fetchall() == [("off",)]
        assert conn.execute("SHOW google_ml_integration.default_llm_model").fetchall() == [
            ("gemini-2.5-flash-lite",)]
        with pytest.raises(psycopg.errors.UndefinedObject, match="unrecognized configuration"):
            conn.execute("SHOW google_ml_integration.no_such_flag")
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE rewrite_policy_bare WITH (FORCE)")


def test_a_call_in_a_database_without_the_extension_gets_a_hint(emulator: Emulator) -> None:
    """A new database has no google_ml_integration until it is created there (the register
    page's "Enable the extension": CREATE EXTENSION google_ml_integration VERSION '1.3', which
    would fail with 42710 had AlloyDB pre-installed it). A call before that fails with
    PostgreSQL's error, as on AlloyDB; the HINT says to create the extension."""
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE IF EXISTS rewrite_policy_no_ext WITH (FORCE)")
        admin.execute("CREATE DATABASE rewrite_policy_no_ext")
    create = "CREATE EXTENSION IF NOT EXISTS google_ml_integration;"
    with psycopg.connect(emulator.dsn_for(dbname="rewrite_policy_no_ext"),
                         autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction) as plain:
            conn.execute("SELECT embedding('text-embedding-005', 'AlloyDB AI')")
        assert plain.value.diag.message_primary == (
            "function embedding(unknown, unknown) does not exist")
        assert plain.value.diag.statement_position == "8"
        assert create in str(plain.value.diag.message_hint)
        for sql, schema in [
                ("SELECT google_ml.embedding(model_id => 'text-embedding-005', content => 'x')",
                 "google_ml"),
                ("CALL google_ml.create_model(model_id => 'm', model_provider => 'google')",
                 "google_ml"),
                ("SELECT ai.if(prompt => 'Is it blue?')", "ai")]:
            with pytest.raises(psycopg.errors.InvalidSchemaName) as schemaless:
                conn.execute(sql)
            assert schemaless.value.diag.message_primary == f'schema "{schema}" does not exist'
            assert create in str(schemaless.value.diag.message_hint), sql
        # other errors keep PostgreSQL's HINT
        with pytest.raises(psycopg.errors.UndefinedFunction) as other:
            conn.execute("SELECT no_such_function('x')")
        assert "explicit type casts" in str(other.value.diag.message_hint)
        conn.execute(create)
        assert len(conn.execute("SELECT embedding('text-embedding-005', 'AlloyDB AI')"
                                ).fetchone()[0]) == 768  # type: ignore[index]
        # with the extension, a call with the wrong types keeps PostgreSQL's HINT
        with pytest.raises(psycopg.errors.UndefinedFunction) as typed:
            conn.execute("SELECT embedding('text-embedding-005', 42)")
        assert "explicit type casts" in str(typed.value.diag.message_hint)
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE rewrite_policy_no_ext WITH (FORCE)")


def test_show_answers_the_instance_flags_of_alloydbs_other_libraries(
    emulator: Emulator, policy_db: str
) -> None:
    # Deployment checks of AlloyDB set-ups run, after their SHOWs of google_ml_integration flags:
    # "SHOW alloydb_ai_nl.enabled; ... SHOW scann.enable_preview_features;". AlloyDB loads both
    # libraries on every instance, so these answer in any database before any SET; stock
    # PostgreSQL said 42704 "unrecognized configuration parameter". Defaults:
    # reference/alloydb-flags and ai/maintain-vector-indexes; alloydb_ai_nl.enabled says what
    # the emulator's alloydb_ai_nl does when it is unset (on).
    with psycopg.connect(policy_db, autocommit=True) as conn:
        for show, value in [("SHOW alloydb_ai_nl.enabled;", "on"),
                            ("SHOW google_ml_integration.enable_preview_ai_functions;", "off"),
                            ("SHOW scann.enable_preview_features;", "off")]:
            cur = conn.execute(show)
            assert cur.statusmessage == "SHOW" and cur.fetchall() == [(value,)], show
            assert cur.description is not None
            assert cur.description[0].name == show.split()[1].rstrip(";")
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE IF EXISTS rewrite_policy_flags WITH (FORCE)")
        admin.execute("CREATE DATABASE rewrite_policy_flags")
    with psycopg.connect(emulator.dsn_for(dbname="rewrite_policy_flags"),
                         autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname IN "
                            "('alloydb_ai_nl', 'alloydb_scann')").fetchone() == (0,)
        assert conn.execute("SHOW alloydb_ai_nl.enabled").fetchall() == [("on",)]
        assert conn.execute("SHOW vector_assist.enabled").fetchall() == [("on",)]
        conn.execute("SET alloydb_ai_nl.enabled = off")
        assert conn.execute("SHOW alloydb_ai_nl.enabled").fetchall() == [("off",)]
        assert conn.execute("SHOW scann.enable_preview_features").fetchall() == [("off",)]
        conn.execute("SET scann.enable_preview_features = true")
        assert conn.execute("SHOW scann.enable_preview_features").fetchall() == [("on",)]
        assert conn.execute("SHOW scann.max_background_workers").fetchall() == [("1",)]
        assert conn.execute("SHOW scann.maintenance_background_naptime_s").fetchall() == [("1",)]
        assert conn.execute("SHOW scann.pct_leaves_to_search").fetchall() == [("0",)]
        # reference/ai/scann-index-reference
        assert conn.execute("SHOW scann.num_search_threads").fetchall() == [("2",)]
        assert conn.execute("SHOW scann.enable_pca").fetchall() == [("on",)]
        assert conn.execute("SHOW scann.max_pct_leaves_to_search").fetchall() == [("15",)]
        # As pg_settings shows them on AlloyDB Omni once alloydb_scann is loaded
        assert conn.execute("SHOW scann.num_leaves_to_search").fetchall() == [("0",)]
        assert conn.execute("SHOW scann.pre_reordering_num_neighbors").fetchall() == [("-1",)]
        # A setting without a known default stays PostgreSQL's own answer.
        with pytest.raises(psycopg.errors.UndefinedObject, match="unrecognized configuration"):
            conn.execute("SHOW scann.satisfy_limit")
    with emulator.connect() as admin:
        admin.execute("DROP DATABASE rewrite_policy_flags WITH (FORCE)")


def test_the_seed_pages_missing_comma_fails_with_a_hint(policy_db: str) -> None:
    sql = ("CALL google_ml.create_model(\n  model_id => 'no-comma',\n"
           "  model_provider => 'google',\n"
           "  model_auth_type => 'alloydb_service_agent_iam'\n"
           "  model_in_transform_fn => 'google_ml.vertexai_text_embedding_input_transform')")
    with psycopg.connect(policy_db, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.SyntaxError) as caught:
            conn.execute(sql)
        diag = caught.value.diag
        assert diag.sqlstate == "42601"
        assert diag.message_primary == 'syntax error at or near "model_in_transform_fn"'
        assert diag.message_hint is not None and "comma" in diag.message_hint
        assert diag.statement_position is not None
        assert sql[int(diag.statement_position) - 1:].startswith("model_in_transform_fn")
        # Nothing was registered, and the session goes on.
        assert conn.execute(
            "SELECT count(*) FROM google_ml.models WHERE id = 'no-comma'").fetchone() == (0,)


def test_other_syntax_errors_reach_the_client_as_postgresql_sends_them(policy_db: str) -> None:
    with psycopg.connect(policy_db, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.SyntaxError) as caught:
            conn.execute("SELECT google_ml.embedding('m' 'x' FROM")
        assert caught.value.diag.message_hint is None


# -- the property: same rows with and without the warm-up -------------------------------------


@pytest.fixture(scope="module")
def without_warmup(emulator: Emulator) -> Iterator[Emulator]:
    """A second proxy on the same PostgreSQL, with the warm-up off."""
    other = start_emulator("--upstream", emulator.direct_dsn, "--warmup", "off")
    try:
        yield other
    finally:
        stop_emulator(other)


ATOMS = st.sampled_from([
    "id > 3", "id BETWEEN 2 AND 9", "flag", "tag IS NULL", "content LIKE '%and%'",
    "tag = 'where AND or'", "content <> 'x AND y OR z -- not a comment'",
    "id IN (SELECT id FROM docs WHERE id % 2 = 0 AND flag)",
    "EXISTS (SELECT 1 WHERE true AND false)",
    "CASE WHEN flag AND id > 4 THEN true WHEN id BETWEEN 1 AND 3 THEN NULL ELSE false END",
    "/* WHERE a AND b OR c */ id < 11", "id <> 7 -- AND OR WHERE\n", "NOT (id = 2 OR id = 5)",
    "coalesce(tag, 'and') <> 'or'", "id BETWEEN SYMMETRIC 9 AND 2",
    "CASE WHEN flag AND tag IS NULL THEN false ELSE true END = true",
    "NOT flag OR id BETWEEN 3 AND 6 AND tag IS NOT NULL",
])
MODEL_ATOMS = st.sampled_from([
    CALL,
    f"array_length(google_ml.embedding('{MODEL}', content), 1) = 768",
    f"google_ml.embedding(model_id => '{MODEL}', content => content || ' AND x') IS NOT NULL",
])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, children).map(lambda p: f"{p[0]} AND {p[1]}"),
        st.tuples(children, children).map(lambda p: f"({p[0]} OR {p[1]})"),
        children.map(lambda c: f"NOT ({c})"),
        st.tuples(children, children).map(
            lambda p: f"CASE WHEN {p[0]} THEN {p[1]} ELSE false END"),
    )


CONDITIONS = st.recursive(st.one_of(ATOMS, MODEL_ATOMS), _combine, max_leaves=4)
# Top-level conjuncts (where the old token splitting went wrong), one of them a model call.
WHERES = st.tuples(
    st.lists(st.one_of(ATOMS, ATOMS, CONDITIONS), min_size=1, max_size=3),
    MODEL_ATOMS,
    st.integers(0, 3),
).map(lambda t: " AND ".join([*t[0][:t[2]], t[1], *t[0][t[2]:]]))
SHAPES = st.sampled_from([
    "SELECT id FROM docs WHERE {w} ORDER BY id",
    f"SELECT id, google_ml.embedding('{MODEL}', content) IS NULL FROM docs WHERE {{w}} ORDER BY 1",
    "UPDATE docs SET hits = hits + 1 WHERE {w} RETURNING id",
    "DELETE FROM docs d WHERE {w} RETURNING d.id",
])


def _rows(dsn: str, sql: str) -> list[tuple[object, ...]] | str:
    with psycopg.connect(dsn) as conn:
        try:
            rows = sorted(conn.execute(sql).fetchall(), key=repr)
        except psycopg.Error as exc:
            return f"{exc.sqlstate}: {exc.diag.message_primary}"
        finally:
            conn.rollback()
    return rows


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(shape=SHAPES, where=WHERES)
def test_generated_wheres_give_the_same_rows_with_and_without_the_warm_up(
        policy_db: str, without_warmup: Emulator, shape: str, where: str) -> None:
    sql = shape.format(w=where)
    out = rewrite(sql).sql
    if out is not None:
        pglast.parse_sql(out)  # raises if the rewrite does not parse
    other = without_warmup.dsn_for(dbname="rewrite_policy")
    assert _rows(policy_db, sql) == _rows(other, sql), sql


# -- the splice planning, unit by unit ------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    f"SELECT id FROM docs d WHERE emb <=> '[1,2]' < 0.5 AND {CALL} ORDER BY emb <#> '[3,4]'",
    f"UPDATE docs SET hits = 1 WHERE {CALL} -- the end, no newline",
    f"DELETE FROM docs WHERE id BETWEEN 1 AND 3 OR {CALL} RETURNING id;",
    f"SELECT id FROM docs WHERE /* ) AND ( */ {CALL} AND tag = ') OR ('",
])
def test_the_original_where_text_is_kept_byte_for_byte_inside_parentheses(sql: str) -> None:
    out = rewrite(sql).sql
    assert out is not None and "google_ml._warm(" in out
    where = sql.index("WHERE") + len("WHERE")
    kept = out[out.index("AND (", out.index("google_ml._warm(")) + len("AND ("):]
    assert kept.startswith(sql[where:where + 20])
    pglast.parse_sql(out)


@pytest.mark.parametrize("sql", [
    # an item that could fail on rows the statement never evaluates it on
    "UPDATE docs SET hits = 1 WHERE google_ml.embedding('m', (tag::int)::text) IS NOT NULL",
    # WHERE CURRENT OF cannot be AND-ed with anything: the check refuses the splice
    "UPDATE docs SET hits = length(google_ml.embedding('m', content)::text) WHERE CURRENT OF c",
    # a statement that stores SQL text
    f"CREATE VIEW v AS SELECT id FROM docs WHERE {CALL}",
])
def test_no_warm_up_where_it_could_change_or_break_the_statement(sql: str) -> None:
    assert rewrite(sql).sql is None
