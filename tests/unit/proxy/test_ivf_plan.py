"""proxy/ivf.py without a server: what the proxy sends for IVF statements.

The end-to-end behaviour is in tests/e2e/test_ivf.py; these tests pin the text: only the
quantizer cut, everything else byte for byte, never an exception.
"""

from __future__ import annotations

import pglast
from hypothesis import given, settings
from hypothesis import strategies as st
from pglast import ast

from proxy.rewrites import rewrite
from proxy.statements import worth_parsing


def test_the_quantizer_is_cut_and_every_other_byte_kept() -> None:
    sql = ("CREATE INDEX CONCURRENTLY \"índice\" ON t USING ivf (e vector_l2_ops) "
           "WITH (quantizer = 'FLAT', lists = 5,  \"Lists\"=7) WHERE note <> 'WITH (quantizer=1)'")
    result = rewrite(sql)
    assert result.sql == ("CREATE INDEX CONCURRENTLY \"índice\" ON t USING ivf (e vector_l2_ops) "
                          "WITH (lists = 5, \"Lists\"=7) WHERE note <> 'WITH (quantizer=1)'")
    assert result.rename_tags == []  # CONCURRENTLY cannot run in a DO block
    # the access method is added first, by a prelude (proxy/session.py)
    assert result.prelude is not None and "CREATE ACCESS METHOD ivf" in result.prelude
    assert "to_regclass('\"t\"') IS NULL THEN RETURN" in result.prelude
    pglast.parse_sql(result.prelude)
    assert rewrite("CREATE INDEX CONCURRENTLY i ON t USING ivf (e vector_l2_ops)").prelude


def test_a_plain_create_index_runs_in_a_do_block_that_adds_the_access_method() -> None:
    result = rewrite('CREATE INDEX "n" ON "public"."t" USING ivf (embedding vector_cosine_ops) '
                     "WITH (lists = 100, quantizer = sq8) ;")
    assert result.sql is not None and result.sql.startswith("DO $alloydb_ivf$")
    assert ('$alloydb_ivf_stmt$CREATE INDEX "n" ON "public"."t" USING ivf (embedding '
            'vector_cosine_ops) WITH (lists = 100) $alloydb_ivf_stmt$') in result.sql
    assert "CREATE ACCESS METHOD ivf TYPE INDEX HANDLER %I.ivfflathandler" in result.sql
    assert result.rename_tags == [(b"DO", b"CREATE INDEX")]
    pglast.parse_sql(result.sql)


def test_create_extension_vector_adds_the_access_method_after_it() -> None:
    result = rewrite("CREATE EXTENSION IF NOT EXISTS vector;")
    assert result.sql is not None
    assert "EXECUTE $alloydb_ivf_stmt$CREATE EXTENSION IF NOT EXISTS vector$alloydb_ivf_stmt$" in (
        result.sql)
    assert result.rename_tags == [(b"DO", b"CREATE EXTENSION")]


def test_probes_are_checked_and_mirrored() -> None:
    result = rewrite("SET LOCAL ivf.probes = 10")
    assert result.sql is not None and result.rename_tags == [(b"DO", b"SET")]
    assert "set_config('ivfflat.probes', pg_catalog.current_setting('ivf.probes'), true)" in (
        result.sql)
    refused = rewrite("SET ivf.probes = 40000").sql
    assert refused is not None and "outside the valid range" in refused
    assert rewrite("RESET ivf.probes").rename_tags == [(b"DO", b"RESET")]


def test_a_stored_probes_setting_names_ivfflat_probes_too() -> None:
    result = rewrite('ALTER ROLE ivf IN DATABASE x SET "ivf.probes" TO 5')
    assert result.sql is not None and result.rename_tags == [(b"DO", b"ALTER ROLE")]
    assert "EXECUTE 'ALTER ROLE ivf IN DATABASE x SET ivfflat.probes TO 5'" in result.sql
    reset = rewrite("ALTER DATABASE d RESET ivf.probes").sql
    assert reset is not None and "EXECUTE 'ALTER DATABASE d RESET ivfflat.probes'" in reset


def test_other_statements_are_untouched() -> None:
    for sql in ("CREATE INDEX i ON t USING ivfflat (e vector_l2_ops) WITH (lists = 5)",
                "SET ivfflat.probes = 3", "SET ivf.other = 1", "CREATE EXTENSION hstore",
                "ALTER SYSTEM SET ivf.probes = 3", "SELECT 'ivf'"):
        assert rewrite(sql).sql is None, sql
    # with a DO block of the client's, tags cannot be told apart: the statement goes as written
    assert rewrite("DO $$ BEGIN NULL; END $$; SET ivf.probes = 4").sql is None


def test_the_prefilter_picks_the_word_ivf_only() -> None:
    assert worth_parsing(b"SET ivf.probes = 1")
    assert worth_parsing(b"CREATE INDEX ON t USING IVF (e vector_l2_ops)")
    assert not worth_parsing(b"CREATE INDEX ON t USING ivfflat (e vector_l2_ops)")


_names = st.sampled_from(["lists", "quantizer", "Quantizer", "m", '"quantizer"'])
_values = st.one_of(
    st.integers(min_value=-5, max_value=40_000).map(str),
    st.sampled_from(["'SQ8'", "sq8", "FLAT", "'flat'", "'x) y'", "1.5", "''", "on"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=4), st.booleans())
def test_any_option_list_gives_valid_sql_without_the_quantizer_or_a_refusal(
    options: list[tuple[str, str]], concurrent: bool
) -> None:
    clause = f" WITH ({', '.join(f'{n} = {v}' for n, v in options)})" if options else ""
    sql = (f"CREATE INDEX {'CONCURRENTLY ' if concurrent else ''}i ON t "
           f"USING ivf (e vector_l2_ops){clause}")
    result = rewrite(sql)
    sent = result.sql or sql
    assert len(pglast.parse_sql(sent)) == 1
    if "RAISE EXCEPTION USING ERRCODE = '22023'" in sent:
        return
    inner = sent.split("$alloydb_ivf_stmt$")[1] if "$alloydb_ivf_stmt$" in sent else sent
    (raw,) = pglast.parse_sql(inner)
    assert isinstance(raw.stmt, ast.IndexStmt)
    kept = [o.defname for o in raw.stmt.options or ()]
    assert "quantizer" not in kept
    assert kept == [n for n, _ in options if n in ("lists", "m")]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["SET", "SET LOCAL", "ALTER DATABASE d SET", "ALTER ROLE r SET"]),
       st.sampled_from(["ivf.probes", '"ivf.probes"', 'ivf."probes"', "IVF.PROBES"]),
       st.one_of(st.integers(min_value=-3, max_value=40_000).map(str),
                 st.sampled_from(["'7'", "DEFAULT", "'x''y'", "1.5", "on", "1, 2"])))
def test_any_probes_setting_gives_valid_sql_checked_or_as_written(
    verb: str, name: str, value: str
) -> None:
    sql = f"{verb} {name} = {value}"
    result = rewrite(sql)
    sent = result.sql or sql
    assert len(pglast.parse_sql(sent)) == 1
    if result.sql is not None and "RAISE EXCEPTION" not in sent:
        assert "ivfflat.probes" in sent  # accepted: pgvector's setting follows


def test_set_config_of_probes_in_a_select_sets_ivfflat_probes_too() -> None:
    result = rewrite("SELECT set_config('ivf.probes', 'a\\b''c', true) AS v, 1")
    assert result.sql == (
        "SELECT set_config(E'ivf.probes', CASE WHEN pg_catalog.to_regprocedure("
        "E'set_config(text,text,boolean)') = 'pg_catalog.set_config(text,text,boolean)'"
        "::pg_catalog.regprocedure AND EXISTS (SELECT FROM pg_catalog.pg_extension WHERE "
        "extname = 'vector') THEN pg_catalog.set_config('ivfflat.probes', E'a\\\\b''c', true) "
        "ELSE E'a\\\\b''c' END, true) AS v, 1")
    assert result.error_hint is not None
    assert result.error_hint.message_part == 'parameter "ivfflat.probes"'
    param = rewrite("SELECT pg_catalog.set_config('IVF.Probes', $1, false)").sql
    assert param is not None and "set_config('ivfflat.probes', $1, false) ELSE $1 END" in param


def test_set_config_calls_whose_meaning_could_change_go_as_written() -> None:
    for sql in [
        "SELECT set_config('ivf.probes', value, false) FROM t",  # a column: its type decides
        "SELECT set_config('ivf.probes', '3', is_local) FROM t",  # evaluated twice
        "SELECT set_config(setting_name => 'ivf.probes', new_value => '3', is_local => false)",
        "SELECT mine.set_config('ivf.probes', '3', false)",
        "SELECT set_config('ivfflat.probes', '3', false)",
        "CALL p(set_config('ivf.probes', '3', false))",
        "CREATE VIEW v AS SELECT set_config('ivf.probes', '3', false)",
    ]:
        assert rewrite(sql).sql is None, sql
