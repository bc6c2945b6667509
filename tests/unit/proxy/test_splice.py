"""Statement splicing (``proxy.statements``) and the rewrites built on it (``proxy.rewrites``).

The promise of splicing is that every byte the proxy does not mean to change survives as it was;
pgvector's operators are the bytes that a regenerating SQL formatter breaks (sqlglot reads ``<=>``
as MySQL's null-safe equality), so they are the ones checked here.
"""

from __future__ import annotations

import re

import pglast
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import protocol as pq
from proxy.rewrites import (
    SETTINGS_VIEW,
    ExtensionCommand,
    _calls_all_cast,
    rewrite,
    uncast_embedding_hint,
)
from proxy.statements import Splice, apply_splices, call_span, worth_parsing

VECTOR_OPERATORS = ("<=>", "<->", "<#>", "<+>")
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

vector_literal = st.lists(st.integers(-9, 9), min_size=1, max_size=4).map(
    lambda xs: "'[" + ",".join(map(str, xs)) + "]'")
vector_expr = st.tuples(st.sampled_from(["emb", "d.emb", '"Emb"']),
                        st.sampled_from(VECTOR_OPERATORS), vector_literal,
                        st.sampled_from(["", "::vector", "::vector(3)"]),
                        st.sampled_from([" ", "", "  ", "\n"])).map(
    lambda t: f"{t[0]}{t[4]}{t[1]}{t[4]}{t[2]}{t[3]}")


@st.composite
def vector_statement(draw: st.DrawFn) -> str:
    """A nearest-neighbour query with one or more vector operators."""
    target = draw(vector_expr)
    order = draw(vector_expr)
    where = draw(st.one_of(st.just(""), vector_expr.map(lambda e: f" WHERE {e} < 0.5")))
    limit = draw(st.integers(1, 100))
    return f"SELECT id, {target} AS distance FROM docs d{where} ORDER BY {order} LIMIT {limit}"


def operator_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer("|".join(map(re.escape, VECTOR_OPERATORS)),
                                                       text)]


@st.composite
def statement_and_splices(draw: st.DrawFn) -> tuple[str, list[Splice]]:
    """A vector statement and non-overlapping splices that stay clear of its operators."""
    sql = draw(vector_statement())
    forbidden: set[int] = set()
    for start, end in operator_spans(sql):
        forbidden.update(range(start + 1, end))  # a cut strictly inside an operator
    allowed = [i for i in range(len(sql) + 1) if i not in forbidden]
    points = sorted(draw(st.lists(st.sampled_from(allowed), max_size=8)))
    splices: list[Splice] = []
    for start, end in zip(points[0::2], points[1::2]):
        if any(start < s_end and s_start < end for s_start, s_end in operator_spans(sql)):
            end = start  # never replace an operator itself: insert instead
        replacement = draw(st.text(alphabet="abc(),_ ", max_size=6))
        splices.append(Splice(start, end, replacement))
    return sql, splices


# -- apply_splices ---------------------------------------------------------------------------


@SETTINGS
@given(statement_and_splices())
def test_vector_operators_survive_any_splice_outside_them(
        case: tuple[str, list[Splice]]) -> None:
    sql, splices = case
    out = apply_splices(sql, splices)
    assert [sql[a:b] for a, b in operator_spans(sql)] == [out[a:b] for a, b in operator_spans(out)]


@SETTINGS
@given(statement_and_splices())
def test_text_outside_the_splices_is_unchanged_byte_for_byte(
        case: tuple[str, list[Splice]]) -> None:
    sql, splices = case
    out = apply_splices(sql, splices)
    # Undo each splice, from the last one back: the original comes back exactly.
    restored = out
    shift = sum(len(s.replacement) - (s.end - s.start) for s in splices)
    for splice in sorted(splices, key=lambda s: (s.start, s.end), reverse=True):
        shift -= len(splice.replacement) - (splice.end - splice.start)
        at = splice.start + shift
        restored = restored[:at] + sql[splice.start:splice.end] + restored[
            at + len(splice.replacement):]
    assert restored == sql


def test_no_splices_returns_the_text_unchanged() -> None:
    assert apply_splices("SELECT emb <=> '[1]'", []) == "SELECT emb <=> '[1]'"


def test_overlapping_splices_are_refused() -> None:
    with pytest.raises(ValueError, match="overlapping"):
        apply_splices("SELECT 123456", [Splice(7, 10, "x"), Splice(9, 12, "y")])


def test_splices_are_applied_in_position_order_whatever_order_they_are_given() -> None:
    text = "f(x)"
    assert apply_splices(text, [Splice(4, 4, ")"), Splice(0, 0, "g(")]) == "g(f(x))"


# -- call_span -------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    "f(a, b)",
    "google_ml.predict_row('m', '{\"x\": \")\"}'::json)",
    '"google_ml" . "predict_row" ( \'m\' , \'(\' )',
    "f($$ ) $$, $tag$ ) $$ ) $tag$)",
    "f(/* ) */ 1)",
    "f(-- )\n 1)",
    "f(\"a)b\", 'it''s )')",
    "f(g(h(1)), (2))",
    "f(emb <=> '[1,2]')",
])
def test_call_span_covers_the_whole_call_and_nothing_after(call: str) -> None:
    text = f"SELECT {call} + 1 FROM t"
    assert call_span(text, 7) == (7, 7 + len(call))


def test_call_span_of_a_name_without_parentheses_is_the_name() -> None:
    assert call_span("SELECT now FROM t", 7) == (7, 10)


def test_call_span_of_an_unterminated_call_runs_to_the_end() -> None:
    text = "SELECT f(1, (2)"
    assert call_span(text, 7) == (7, len(text))


# -- rewrite: what changes -------------------------------------------------------------------


def test_pg_settings_read_with_a_google_ml_integration_flag_reads_the_extension_view() -> None:
    sql = ("SELECT name, setting FROM pg_settings "
           "WHERE name = 'google_ml_integration.enable_model_support'")
    assert rewrite(sql).sql == (
        f"SELECT name, setting FROM {SETTINGS_VIEW} AS pg_settings "
        "WHERE name = 'google_ml_integration.enable_model_support'")


def test_pg_catalog_pg_settings_with_an_alias_keeps_the_alias() -> None:
    sql = "SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name LIKE 'google_ml_integration.%'"
    assert rewrite(sql).sql == (
        f"SELECT s.setting FROM {SETTINGS_VIEW} s WHERE s.name LIKE 'google_ml_integration.%'")


def test_pg_settings_rewrite_in_the_second_statement_of_a_query_string() -> None:
    sql = "SELECT 1; SELECT setting FROM pg_settings WHERE name = 'google_ml_integration.x'"
    assert rewrite(sql).sql == (
        f"SELECT 1; SELECT setting FROM {SETTINGS_VIEW} AS pg_settings "
        "WHERE name = 'google_ml_integration.x'")


def test_pg_settings_rewrite_after_multibyte_characters_lands_on_the_relation() -> None:
    sql = "SELECT 'héllo 日本', setting FROM pg_settings WHERE name = 'google_ml_integration.x'"
    assert rewrite(sql).sql == (
        f"SELECT 'héllo 日本', setting FROM {SETTINGS_VIEW} AS pg_settings "
        "WHERE name = 'google_ml_integration.x'")


def test_missing_comma_between_create_model_arguments_is_not_mended_but_hinted() -> None:
    sql = ("CALL google_ml.create_model(\n  model_id => 'gemini-flash',\n"
           "  model_request_url => 'https://example.test/v1:generateContent',\n"
           "  model_auth_type => 'alloydb_service_agent_iam'\n"
           "  model_in_transform_fn => 'my_in_fn')")
    result = rewrite(sql)
    assert result.sql is None  # AlloyDB refuses it: so does PostgreSQL, unchanged
    assert result.error_hint is not None
    assert result.error_hint.sqlstate == "42601"
    assert sql[result.error_hint.position - 1:].startswith("model_in_transform_fn")
    assert '"model_in_transform_fn"' in result.error_hint.hint and "comma" in result.error_hint.hint


def test_the_hint_position_counts_characters_as_postgresql_does() -> None:
    sql = "SELECT 'été', f(a => 'x' b => 'y')"
    result = rewrite(sql)
    assert result.error_hint is not None
    assert sql[result.error_hint.position - 1] == "b"


def test_show_of_a_flag_reads_the_flag_view_and_keeps_the_show_tag() -> None:
    result = rewrite("SHOW google_ml_integration.enable_model_support;")
    assert result.sql is not None and SETTINGS_VIEW in result.sql
    assert '"google_ml_integration.enable_model_support"' in result.sql  # SHOW's column name
    assert result.rename_tags == [(b"SELECT 1", b"SHOW")]


def test_show_of_a_flag_without_the_extension_reads_its_setting_or_default() -> None:
    flags = {"google_ml_integration.enable_model_support": ("on", True),
             "google_ml_integration.default_llm_model": ("gemini-2.5-flash-lite", False)}
    result = rewrite("SHOW google_ml_integration.enable_model_support", extension_installed=False,
                     flags=flags)
    assert result.sql is not None and SETTINGS_VIEW not in result.sql
    assert "current_setting('google_ml_integration.enable_model_support', true)" in result.sql
    assert "'on'" in result.sql and result.rename_tags == [(b"SELECT 1", b"SHOW")]
    result = rewrite("show google_ml_integration.default_llm_model", extension_installed=False,
                     flags=flags)
    assert result.sql is not None and "'gemini-2.5-flash-lite'" in result.sql


def test_show_of_another_librarys_instance_flag_reads_its_setting_or_default() -> None:
    for sql, default in [("SHOW alloydb_ai_nl.enabled;", "'on'"),
                         ("show SCANN.enable_preview_features", "'off'"),
                         ("SHOW scann.max_background_workers", "'1'"),
                         ("SHOW vector_assist.enabled", "'on'")]:
        result = rewrite(sql, extension_installed=False)
        assert result.sql is not None and default in result.sql, sql
        assert result.rename_tags == [(b"SELECT 1", b"SHOW")]
        assert worth_parsing(sql.encode())
    assert rewrite("SHOW scann.satisfy_limit").sql is None  # no known default


@pytest.mark.parametrize(("sql", "installed"), [
    ("SHOW google_ml_integration.enable_model_support", False),  # no flags given
    ("SHOW google_ml_integration.no_such_flag", False),  # not a flag: PostgreSQL's own error
    ("SELECT 1; SHOW google_ml_integration.enable_model_support", True),  # tags would mix
    ("SHOW search_path", True),
    ("SHOW ALL", True),
])
def test_other_show_statements_go_unchanged(sql: str, installed: bool) -> None:
    flags = {} if "enable_model_support" in sql else {
        "google_ml_integration.enable_model_support": ("on", True)}
    result = rewrite(sql, extension_installed=installed, flags=flags)
    assert result.sql is None and result.rename_tags == []


def test_model_auth_for_model_auth_id_gets_a_hint_at_the_call() -> None:
    # As AlloyDB's model-endpoint-manage-model page prints it.
    sql = ("SELECT 'été';\nCALL\n    google_ml.alter_model(\n      model_id => 'MODEL_ID',\n"
           "      model_auth_type => 'AUTH_TYPE',\n      model_auth => 'AUTH_ID')")
    result = rewrite(sql)
    assert result.sql is None and result.error_hint is not None
    hint = result.error_hint
    assert (hint.sqlstate, hint.replaces) == ("42883", True)
    assert sql[hint.position - 1:].startswith("google_ml.alter_model(")  # PostgreSQL's cursor
    assert '"model_auth"' in hint.hint and "model_auth_id =>" in hint.hint
    assert rewrite(sql.replace("google_ml.alter_model", "ai.create_model")).error_hint is not None


@pytest.mark.parametrize("sql", [
    "CALL google_ml.create_model(model_id => 'x', model_auth_id => 'k')",
    "CALL my_schema.create_model(model_id => 'x', model_auth => 'k')",
    # Unqualified: it may be the user's own procedure, which succeeds (no error to hint).
    "CALL create_model(model_id => 'x', model_auth => 'k')",
    "SELECT my_function(model_auth => 'k') FROM google_ml.models",
])
def test_no_misnamed_argument_hint_elsewhere(sql: str) -> None:
    assert rewrite(sql).error_hint is None


def test_an_ai_if_call_gets_a_hint_listing_its_forms() -> None:
    # troubleshoot/troubleshoot-optimized-func, as printed: the optimized form given a model
    sql = ("select 'été', ai.if('Is the rating positive?' || review, review_embedding, "
           "'gemini-2.5-pro') from restaurant_reviews;")
    result = rewrite(sql)
    assert result.sql is None and result.error_hint is not None
    hint = result.error_hint
    assert (hint.sqlstate, hint.replaces) == ("42883", True)
    assert sql[hint.position - 1:].startswith("ai.if(")  # PostgreSQL's cursor
    assert "ai.if(prompt, embedding real[]), which takes no model_id" in hint.hint
    google = rewrite(sql.replace("ai.if(", "google_ml.if(")).error_hint
    assert google is not None and google.hint.startswith("google_ml.if() has four forms")


@pytest.mark.parametrize("sql", [
    "SELECT my_schema.if('x', 'm')",
    # Unqualified: it may be the user's own function, which succeeds (no error to hint).
    "SELECT \"if\"('x', 'm')",
    "SELECT iffy.x FROM iffy",
])
def test_no_ai_if_hint_elsewhere(sql: str) -> None:
    assert rewrite(sql).error_hint is None


def test_no_ai_if_hint_where_the_extension_is_not() -> None:
    # There the call fails for want of the schema: missing_extension_hint's HINT
    hint = rewrite("SELECT ai.if('x', emb, 'm') FROM t", extension_installed=False).error_hint
    assert hint is not None and hint.sqlstate == "3F000"


@pytest.mark.parametrize(("sql", "function"), [
    # ai/run-vector-similarity-search, as printed
    (("SELECT * FROM items\n  ORDER BY emb::vector\n  <=> google_ml.embedding('m', 'TEXT')\n"
      "  LIMIT 5"), "google_ml.embedding"),
    ("SELECT 'été', id FROM items ORDER BY embedding('m', 'x') <-> emb LIMIT 3", "embedding"),
    ("SELECT id FROM t ORDER BY emb <#> ai.text_embedding(model_id => 'm', content => 'x')",
     "ai.text_embedding"),
])
def test_an_uncast_embedding_call_beside_a_distance_operator_gets_a_hint(
        sql: str, function: str) -> None:
    result = rewrite(sql)
    assert result.sql is None and result.error_hint is not None
    hint = result.error_hint
    assert (hint.sqlstate, hint.replaces) == ("42883", True)
    assert sql[hint.position - 1:][:3] in {"<=>", "<->", "<#>"}  # PostgreSQL's cursor
    assert hint.hint.startswith(f"{function}() returns real[]") and "::vector" in hint.hint


@pytest.mark.parametrize("sql", [
    "SELECT * FROM items ORDER BY emb <=> google_ml.embedding('m', 'x')::vector LIMIT 5",
    "SELECT * FROM items ORDER BY emb <=> CAST(embedding('m', 'x') AS vector) LIMIT 5",
    "SELECT * FROM items ORDER BY emb <=> my_schema.embedding('m', 'x') LIMIT 5",
    "SELECT embedding('m', 'x') || ARRAY[1::real] FROM items",
])
def test_no_uncast_embedding_hint_elsewhere(sql: str) -> None:
    assert rewrite(sql).error_hint is None


_TEXTS = st.sampled_from(["'x'", "'it''s (odd'", "$1", "'a)b'", "lower('Q')", "'::'"])
_CALLS = st.builds(
    lambda schema, name, text: f"{schema}{name}('m', {text})",
    st.sampled_from(["", "google_ml.", "ai.", "my_schema."]),
    st.sampled_from(["embedding", "text_embedding", "Embedding"]), _TEXTS)
_OPERANDS = st.one_of(
    st.just("emb"), st.just("embedding"), _CALLS, _CALLS.map(lambda c: c + "::vector"),
    _CALLS.map(lambda c: c + " :: vector"), _CALLS.map(lambda c: f"CAST({c} AS vector)"),
    _CALLS.map(lambda c: f"({c})"))


@settings(max_examples=300, deadline=None)
@given(left=_OPERANDS, operator=st.sampled_from(["<=>", "<->", "<#>"]), right=_OPERANDS)
def test_the_text_check_never_spares_a_walk_that_would_find_an_uncast_call(
        left: str, operator: str, right: str) -> None:
    # rewrite() walks the tree for the hint only when some embedding call is not followed by a
    # cast (_calls_all_cast): the hint must be the walk's, cast calls or not.
    sql = f"SELECT id FROM t ORDER BY {left} {operator} {right} LIMIT 5"
    walked = uncast_embedding_hint(pglast.parse_sql(sql))
    assert rewrite(sql).error_hint == walked
    if _calls_all_cast(sql):
        assert walked is None


def test_a_call_without_the_extension_gets_a_hint_only_where_it_must_fail() -> None:
    bare = rewrite("SELECT embedding('text-embedding-005', 'x')", extension_installed=False)
    assert bare.sql is None and bare.error_hint is not None
    assert (bare.error_hint.sqlstate, bare.error_hint.message_part) == (
        "42883", "function embedding(")
    assert bare.error_hint.replaces
    schema = rewrite("CALL google_ml.create_model(model_id => 'm')", extension_installed=False)
    assert schema.error_hint is not None
    assert schema.error_hint.message_part == 'schema "google_ml" does not exist'
    # the extension is there, or is created in the same message: the call may succeed
    assert rewrite("SELECT embedding('m', 'x')", extension_installed=True).error_hint is None
    for create in ("CREATE EXTENSION google_ml_integration",
                   "CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl CASCADE"):
        assert rewrite(f"{create}; SELECT embedding('m', 'x')",
                       extension_installed=False).error_hint is None
    # other functions, and schemas of the user's own, are left alone
    assert rewrite("SELECT my_embedding('x')", extension_installed=False).error_hint is None
    assert rewrite("SELECT app.embedding('x')", extension_installed=False).error_hint is None


def test_a_replacing_hint_takes_the_place_of_postgresqls() -> None:
    raw = pq.message(pq.ERROR_RESPONSE, b"SERROR\x00C42883\x00Mprocedure p() does not exist\x00"
                     b"HYou might need to add explicit type casts.\x00P7\x00\x00")
    kept = pq.parse_error_fields(pq.with_hint(raw, "42883", 7, "Ours.")[5:])
    assert kept["H"] == "You might need to add explicit type casts."
    replaced = pq.parse_error_fields(pq.with_hint(raw, "42883", 7, "Ours.", replace=True)[5:])
    assert replaced["H"] == "Ours." and replaced["M"] == "procedure p() does not exist"
    assert replaced["P"] == "7"
    assert pq.with_hint(raw, "42883", 8, "Ours.", replace=True) == raw  # another error
    # an error without a position, recognised by its message
    plain = pq.error_response("42704", 'operator class "l2" does not exist for access method "ivf"')
    hinted = pq.with_hint(plain, "42704", 0, "Ours.", message_part='"l2" does not exist')
    assert pq.parse_error_fields(hinted[5:])["H"] == "Ours."
    assert pq.with_hint(plain, "42704", 0, "Ours.", message_part='"cosine"') == plain


@pytest.mark.parametrize("sql", [
    "CALL google_ml.create_model(model_id => 'x', model_auth_type => )",
    "SELECT FROM WHERE",
    "CALL f(a => 'x',, b => 'y')",
])
def test_other_syntax_errors_get_no_comma_hint(sql: str) -> None:
    result = rewrite(sql)
    assert result.sql is None and result.error_hint is None


@SETTINGS
@given(vector_statement(), st.sampled_from(["pg_settings", "pg_catalog.pg_settings"]))
def test_vector_operators_survive_the_pg_settings_rewrite_byte_for_byte(
        statement: str, relation: str) -> None:
    sql = statement.replace(
        "FROM docs d", f"FROM docs d, {relation}", 1
    ).replace(" ORDER BY", " AND name LIKE 'google_ml_integration.%' ORDER BY", 1)
    if " WHERE " not in sql:
        sql = sql.replace(" AND name LIKE", " WHERE name LIKE", 1)
    out = rewrite(sql).sql
    assert out is not None
    assert out == sql.replace(relation, f"{SETTINGS_VIEW} AS pg_settings", 1)


# -- rewrite: what stays alone ---------------------------------------------------------------


@SETTINGS
@given(vector_statement())
def test_a_vector_query_is_not_rewritten(sql: str) -> None:
    assert rewrite(sql).sql is None


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "SELECT json_array_elements('[1, 2]'::json)",
    # predict_row answers AlloyDB's array itself (emulator/sql/src/calls.sql)
    "SELECT json_array_elements(google_ml.predict_row('m', '{}'::json)) -> 'candidates'",
    "SELECT * FROM google_ml.model_info_view",
    "CREATE EXTENSION IF NOT EXISTS hstore",  # vector: proxy/ivf.py adds ivf to it
    "CALL google_ml.create_model(model_id => 'm', model_provider => 'google')",
    "SELEC broken syntax",
    "SELECT 'google_ml_integration.x' FROM pg_settings_history",
])
def test_statements_that_need_nothing_are_left_alone(sql: str) -> None:
    result = rewrite(sql)
    assert result.sql is None
    assert not result.touches_extension


def test_any_pg_settings_read_shows_the_flags_where_the_extension_is() -> None:
    # The flag name may come as a parameter, so every read is swapped, not only those naming it.
    sql = "SELECT setting FROM pg_settings WHERE name = $1"
    assert rewrite(sql).sql == (
        "SELECT setting FROM google_ml.pg_settings_with_flags AS pg_settings WHERE name = $1")
    assert rewrite(sql, extension_installed=False).sql is None


@pytest.mark.parametrize("sql", [
    "CREATE EXTENSION google_ml_integration",
    "create extension if not exists google_ml_integration cascade",
    "ALTER EXTENSION google_ml_integration UPDATE",
    "DO $$ BEGIN CREATE EXTENSION google_ml_integration; END $$",
    # CASCADE creates google_ml_integration too
    "CREATE EXTENSION alloydb_ai_nl cascade",
    "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl CASCADE; END $$",
])
def test_creating_or_altering_the_extension_is_noticed_and_not_rewritten(sql: str) -> None:
    result = rewrite(sql)
    assert result.sql is None
    assert result.touches_extension


@pytest.mark.parametrize(("sql", "expected"), [
    ("CREATE EXTENSION google_ml_integration VERSION '1.5.3'",
     ExtensionCommand("create", "google_ml_integration", False, "1.5.3")),
    ("ALTER EXTENSION google_ml_integration UPDATE",
     ExtensionCommand("update", "google_ml_integration", False, None)),
    ("alter extension google_ml_integration update to '1.6.1'",
     ExtensionCommand("update", "google_ml_integration", False, "1.6.1")),
    ("DROP EXTENSION IF EXISTS alloydb_scann",
     ExtensionCommand("drop", "alloydb_scann", True, None)),
    ("ALTER EXTENSION google_ml_integration ADD FUNCTION f()", None),
    ("ALTER EXTENSION google_ml_integration UPDATE; SELECT 1", None),
])
def test_extension_commands_the_stand_in_answers(sql: str, expected: ExtensionCommand | None
                                                 ) -> None:
    assert rewrite(sql).extension_command == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
               max_size=120))
def test_rewrite_never_raises_on_arbitrary_text(text: str) -> None:
    for sql in (text, "SELECT * FROM pg_settings WHERE name = 'google_ml_integration.' || " + text,
                "CALL google_ml.create_model(model_id => 'x' " + text):
        result = rewrite(sql)
        assert result.sql is None or isinstance(result.sql, str)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM pg_settings WHERE name LIKE 'google_ml_integration.%'",
    "SELECT google_ml.embedding('text-embedding-005', 'hi')",
    "select AI.IF(prompt => 'x')",
    'SELECT "ai".rank(1)',
    "SELECT ml_predict_row('m', '{}')",
    "CREATE EXTENSION google_ml_integration",
    "CREATE INDEX i ON t USING ScaNN (emb cosine) WITH (num_leaves = 5)",
    "SET scann.num_leaves_to_search = 2",
    # ai/maintain-vector-indexes, on an index whose name does not say scann
    "ALTER INDEX similarity_index SET (AUTO_MAINTENANCE = off)",
    "ALTER INDEX similarity_index SET (num_leaves = 20)",
    "ALTER INDEX i SET (QUANTIZER = 'FLAT')",
    "alter index i set (max_num_levels = 2)",
])
def test_statements_the_rewrites_care_about_pass_the_prefilter(sql: str) -> None:
    assert worth_parsing(sql.encode())


def test_scann_option_names_are_looked_for_only_in_short_texts() -> None:
    # the bound that keeps them off the prefilter every long message meets (proxy/statements.py)
    from proxy.statements import _SHAPE_MAX

    statement = b"ALTER INDEX i SET (num_leaves = 2);"
    assert worth_parsing(statement + b" " * (_SHAPE_MAX - len(statement)))
    assert not worth_parsing(b"-- " + b"x" * _SHAPE_MAX + b"\n" + statement)


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "SELECT id FROM docs ORDER BY emb <=> '[1,2,3]' LIMIT 5",
    "INSERT INTO t (embedding_id) VALUES (1)",
    "SELECT * FROM email WHERE domain = 'x'",
])
def test_ordinary_statements_skip_the_parser(sql: str) -> None:
    assert not worth_parsing(sql.encode())


_PREFILTER_PIECES = st.sampled_from([
    "google_ml", "GOOGLE_ML", "embedding", "Embedding (", "embedding\t(", "ai", "AI .", "ai.",
    '"ai"', '"AI"', "ml_predict_row", "PG_SETTINGS", "extension", "EXTENSION", "detail.", "aid",
    "scann", "SCANN", "ivf", "IVF", "ivfflat", "xivf", "vf", "truncate", "TRUNCATE", "uncate",
    "auto_maintenance", "AUTO_Maintenance", "maintenan", "auto_maint", "alloydb_ai_nl",
    "ALLOYDB_AI_NL", "ydb_ai_nl", "alloydb_ai", "num_leaves", "NUM_Leaves", "num_lea",
    "max_num_levels", "quantizer", "QUANTIZER", "quantize",
    "said .", "x", " ", "\n", ".", "(", "é", "\x00", "1", "42", "ai1.", "embedding0(", "9ai."])


@given(st.lists(_PREFILTER_PIECES, max_size=8).map("".join), st.integers(0, 3))
def test_the_fast_prefilter_decides_as_the_full_one(sql: str, start: int) -> None:
    raw = b"Q\x00\x00\x00\x00" + sql.encode() + b"\x00"
    assert worth_parsing(raw, start, len(raw)) is _expected(raw[start:])
    assert worth_parsing(raw[start:]) is _expected(raw[start:])


def _expected(text: bytes) -> bool:
    """What worth_parsing answers: PREFILTER, or a ScaNN option's name in a short text (with
    its digits deleted, which can make one but never takes one away)."""
    from proxy.statements import _SHAPE_MAX, PREFILTER

    shape = text.translate(None, b"0123456789").lower()
    return PREFILTER.search(text) is not None or (len(text) <= _SHAPE_MAX and re.search(
        rb"num_leaves|max_num_levels|quantizer", shape) is not None)


@given(st.lists(st.tuples(st.lists(_PREFILTER_PIECES, max_size=8).map("".join),
                          st.lists(st.integers(0, 10**6), max_size=3)), min_size=1, max_size=6))
def test_statements_that_differ_in_their_numbers_are_decided_each_on_its_own(
        cases: list[tuple[str, list[int]]]) -> None:
    # worth_parsing remembers digit-free forms that do not match: a statement whose numbers
    # differ from one seen before must still be decided exactly as the full prefilter does.
    for sql, numbers in cases:
        for text in [sql, *(f"{n}{sql}{n}" for n in numbers), sql.replace("i", "i1")]:
            raw = text.encode()
            assert worth_parsing(raw) is _expected(raw), raw
