"""proxy/scann.py without a server: what the proxy sends for ScaNN statements.

The end-to-end behaviour (PostgreSQL running what is sent) is in tests/e2e/test_scann.py; these
tests pin the text: options cut exactly, everything else byte for byte, never an exception.
"""

from __future__ import annotations

import pglast
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.rewrites import rewrite
from proxy.scann import INDEX_OPTIONS, ScannError, check_index_options


def test_options_are_cut_and_the_rest_kept() -> None:
    sql = ("CREATE INDEX CONCURRENTLY i ON t USING scann (e cosine) "
           "WITH (num_leaves = 10, quantizer = 'a)b''c') WHERE note <> 'WITH (x)'")
    with pytest.raises(ScannError, match="quantizer"):
        check_index_options([("quantizer", "a)b'c")])
    result = rewrite(sql.replace("'a)b''c'", "'SQ8'"))
    assert result.sql == ("CREATE INDEX CONCURRENTLY i ON t USING scann (e cosine) "
                          "WHERE note <> 'WITH (x)'")
    assert result.rename_tags == []  # CONCURRENTLY cannot run in a DO block
    # its row checks come first, in a prelude (proxy/session.py), for the index named i
    assert result.prelude is not None and result.prelude.startswith("DO $alloydb_scann$")
    assert "USING 'i'::name, tbl, ARRAY['num_leaves=10', 'quantizer=SQ8']::text[], 'e', " \
        "ARRAY['e']::text[], ARRAY['cosine']::text[], current_user;" in result.prelude
    pglast.parse_sql(result.prelude)


@pytest.mark.parametrize("name", ['"a""b"', '"$x$"', '"ünï ✓"', '"it\'s"', "plain"])
def test_every_prelude_parses_whatever_the_names(name: str) -> None:
    for method, column in (("scann", "e cosine"), ("ivf", "e vector_l2_ops")):
        prelude = rewrite(f"CREATE INDEX CONCURRENTLY {name} ON {name} USING {method} "
                          f"({column})").prelude
        assert prelude is not None
        pglast.parse_sql(prelude)


def test_only_a_concurrent_index_alone_in_its_text_gets_a_prelude() -> None:
    assert rewrite("CREATE INDEX i ON t USING scann (e l2) WITH (num_leaves = 3)").prelude is None
    assert rewrite("CREATE INDEX CONCURRENTLY ON t USING hnsw (e vector_l2_ops)").prelude is None
    unnamed = rewrite('CREATE INDEX CONCURRENTLY ON "S".t USING scann ((e::halfvec(3)) l2)')
    assert unnamed.prelude is not None and "USING NULL::name, tbl" in unnamed.prelude
    assert """to_regclass('"S"."t"')""" in unnamed.prelude
    # beside another statement CONCURRENTLY fails anyway (an implicit transaction block)
    assert rewrite("SELECT 1; CREATE INDEX CONCURRENTLY i ON t USING scann (e l2)").prelude is None


def test_a_plain_create_index_runs_in_a_do_block_with_its_tag_renamed() -> None:
    result = rewrite("CREATE INDEX i ON t USING scann (e l2) WITH (num_leaves = 3)")
    assert result.sql is not None and result.sql.startswith("DO $alloydb_scann$")
    assert "$alloydb_scann_stmt$CREATE INDEX i ON t USING scann (e l2)$alloydb_scann_stmt$" in (
        result.sql)
    assert result.rename_tags == [(b"DO", b"CREATE INDEX")]
    pglast.parse_sql(result.sql)  # what is sent parses


def test_with_a_do_block_of_the_clients_no_tag_is_renamed() -> None:
    sql = ("DO $$ BEGIN NULL; END $$; "
           "CREATE INDEX i ON t USING scann (e l2) WITH (num_leaves = 3)")
    result = rewrite(sql)
    assert result.rename_tags == []
    assert result.sql == "DO $$ BEGIN NULL; END $$; CREATE INDEX i ON t USING scann (e l2)"


def test_other_access_methods_and_settings_are_untouched() -> None:
    for sql in ("CREATE INDEX i ON t USING hnsw (e vector_cosine_ops) WITH (m = 16)",
                "SET hnsw.ef_search = 100", "RESET scann.num_leaves_to_search",
                "SET scann.num_leaves_to_search TO DEFAULT",
                "ALTER INDEX i SET (m = 32)", "ALTER SYSTEM SET scann.foo = 1"):
        assert rewrite(sql).sql is None, sql


_names = st.sampled_from([*INDEX_OPTIONS, "lists", "m", "Num_Leaves"])
_values = st.one_of(
    st.integers(min_value=-5, max_value=40_000_000).map(str),
    st.sampled_from(["'SQ8'", "sq8", "'AUTO'", "MANUAL", "on", "'off'", "'x y'", "1.5", "''"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=4), st.booleans())
def test_any_option_list_gives_valid_sql_or_a_raise_block(
    options: list[tuple[str, str]], concurrent: bool
) -> None:
    clause = f" WITH ({', '.join(f'{n} = {v}' for n, v in options)})" if options else ""
    sql = (f"CREATE INDEX {'CONCURRENTLY ' if concurrent else ''}i ON t "
           f"USING scann (e cosine){clause}")
    result = rewrite(sql)
    sent = result.sql or sql
    stmts = pglast.parse_sql(sent)
    assert len(stmts) == 1
    if "RAISE EXCEPTION" in sent:
        return
    # not refused: no option survives into the CREATE INDEX that PostgreSQL runs
    assert all(f"{name} =" not in sent for name, _ in options)


def test_offsets_hold_after_non_ascii_text() -> None:
    sql = ("SELECT 'ééé'; CREATE INDEX CONCURRENTLY \"índice\" ON t USING scann (e cosine) "
           "WITH (num_leaves = 5) WHERE x <> 'ü'; SELECT 1")
    assert rewrite(sql).sql == (
        "SELECT 'ééé'; CREATE INDEX CONCURRENTLY \"índice\" ON t USING scann (e cosine) "
        "WHERE x <> 'ü'; SELECT 1")


def test_truncate_runs_in_a_do_block_after_alloydb_scanns_check() -> None:
    result = rewrite("truncate t1;")
    assert result.sql is not None and result.sql.startswith("DO $alloydb_scann$")
    assert "_scann_check_truncate($1, $2, $3)" in result.sql
    assert result.sql.endswith("EXECUTE $alloydb_scann_stmt$truncate t1$alloydb_scann_stmt$; "
                               "END $alloydb_scann$;")
    assert result.rename_tags == [(b"DO", b"TRUNCATE TABLE")]
    only = rewrite('TRUNCATE ONLY a, "S".b * CASCADE').sql
    assert only is not None
    assert ("""to_regclass('"S"."b"')""" in only
            and "ARRAY[false, true]::boolean[], true;" in only)
    # a TRUNCATE stored in a function, or sent beside a DO block of the client's: as written
    assert rewrite("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'TRUNCATE t1'").sql is None
    assert rewrite("DO $$ BEGIN NULL; END $$; TRUNCATE t1").sql is None
