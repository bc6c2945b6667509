"""The proxy's rewrite of CREATE VIEW with AlloyDB's ``$@name`` view parameters
(proxy/pviews.py), without PostgreSQL: what is rewritten, into what, and what is left alone."""

from __future__ import annotations

from typing import Any

import pglast
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pglast.stream import RawStream

from proxy.pviews import view_parameters_rewrite
from proxy.rewrites import rewrite
from proxy.statements import worth_parsing

TUTORIAL_VIEW = """CREATE VIEW secure_checked_items WITH (security_barrier) AS
       SELECT bag_id, timestamp, location
       FROM checked_items t
       WHERE customer_id = $@app_end_userid;"""


def _call_arguments(block: str) -> list[str]:
    """The arguments of _create_view in a rewritten block: three strings, then the names as SQL."""
    do: Any = pglast.parse_sql(block)[0].stmt
    body = do.args[0].arg.sval
    call = body[body.index("PERFORM ") + len("PERFORM "):body.rindex("; END")]
    select: Any = pglast.parse_sql(f"SELECT {call}")[0].stmt
    args = select.targetList[0].val.args
    return [a.val.sval for a in args[:3]] + [RawStream()(args[3])]


def test_the_pages_view_becomes_a_call_that_keeps_its_head_and_numbers_its_parameters() -> None:
    result = rewrite(TUTORIAL_VIEW)
    assert result.sql is not None and result.rename_tags == [(b"DO", b"CREATE VIEW")]
    head, probe, template, names = _call_arguments(result.sql)
    assert head == "CREATE VIEW secure_checked_items WITH (security_barrier) AS\n       "
    assert probe.endswith("WHERE customer_id = $1")
    assert template.endswith("WHERE customer_id = %1$s")
    assert names == "CAST(ARRAY['app_end_userid'] AS text[])"
    assert worth_parsing(TUTORIAL_VIEW.encode())


def test_each_view_of_a_script_becomes_its_block_and_the_rest_stays_byte_for_byte() -> None:
    script = ("CREATE TABLE t (i int);\n" + TUTORIAL_VIEW
              + "\n/* ; */ SELECT ';' AS \"x;\";\nCREATE VIEW v2 AS SELECT $@p::int AS p; -- end")
    result = rewrite(script)
    assert result.sql is not None
    assert result.rename_tags == [(b"DO", b"CREATE VIEW")] * 2
    stmts: Any = pglast.parse_sql(result.sql)
    kinds = [type(s.stmt).__name__ for s in stmts]
    assert kinds == ["CreateStmt", "DoStmt", "SelectStmt", "DoStmt"]
    assert result.sql.startswith("CREATE TABLE t (i int);\nDO ")
    assert "\n/* ; */ SELECT ';' AS \"x;\";\nDO " in result.sql
    assert result.sql.endswith("; -- end")


@pytest.mark.parametrize("script", [
    "DO $$ BEGIN END $$; CREATE VIEW v AS SELECT 1 WHERE 1 = $@p",  # its DO would be renamed
    "CREATE VIEW v AS SELECT 1 WHERE 1 = $@p; DO $$ BEGIN END $$; CREATE VIEW w AS SELECT $@q",
    "CREATE VIEW v AS SELECT 1 WHERE 1 = $@p; SELEC 1",  # PostgreSQL's syntax error, as it came
    "CREATE VIEW v AS SELECT 1 WHERE 1 = $@p; SELECT $@p",
])
def test_a_script_is_left_as_it_came_when_a_statement_is_not_what_it_takes(script: str) -> None:
    result = rewrite(script)
    assert result.sql is None and result.rename_tags == []


def test_a_do_block_after_the_last_view_keeps_its_own_tag() -> None:
    result = rewrite("CREATE VIEW v AS SELECT 1 WHERE 1 = $@p; DO $$ BEGIN END $$")
    assert result.sql is not None and result.rename_tags == [(b"DO", b"CREATE VIEW")]


def test_names_are_numbered_once_each_case_sensitive_and_percent_signs_doubled() -> None:
    block = view_parameters_rewrite(
        "CREATE OR REPLACE VIEW v AS SELECT * FROM t WHERE a = $@Id AND b = $@id "
        "AND c LIKE '%x' AND d = $@Id")
    assert block is not None
    _, probe, template, names = _call_arguments(block)
    assert probe == "SELECT * FROM t WHERE a = $1 AND b = $2 AND c LIKE '%x' AND d = $1"
    assert template == "SELECT * FROM t WHERE a = %1$s AND b = %2$s AND c LIKE '%%x' AND d = %1$s"
    assert names == "CAST(ARRAY['Id', 'id'] AS text[])"


def test_letters_of_any_script_and_underscores_make_names() -> None:
    block = view_parameters_rewrite("CREATE VIEW v AS SELECT 1 WHERE a = $@clé_1 OR b = $@_x")
    assert block is not None and "ARRAY['clé_1', '_x']" in block


@pytest.mark.parametrize("sql", [
    "SELECT * FROM t WHERE a = $@x",  # not a view: PostgreSQL's syntax error, as on AlloyDB
    "CREATE VIEW v AS SELECT 1 WHERE a = $ @x",  # not written together
    "CREATE VIEW v AS SELECT 1 WHERE a = $@1x",  # a name starts with a letter or _
    "CREATE VIEW v AS SELECT 1 WHERE a = $@a$b",  # no $ in a name
    "CREATE VIEW v AS SELECT 1 WHERE a = $@\"x\"",
    "CREATE VIEW v AS SELECT 1 WHERE a = $@x AND b = $1",  # a parameter of its own
    "CREATE VIEW v AS SELECT a FROM t WHERE a = $@x WITH CHECK OPTION",
    "CREATE MATERIALIZED VIEW v AS SELECT a FROM t WHERE a = $@x",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1' ; SELECT $@x",
])
def test_anything_else_with_view_parameters_goes_as_it_came(sql: str) -> None:
    assert view_parameters_rewrite(sql) is None
    assert rewrite(sql).sql is None


def test_dollar_at_inside_literals_and_comments_is_no_parameter() -> None:
    assert rewrite("SELECT '$@x' /* $@y */, $q$ $@z $q$").sql is None


@given(st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True),
                min_size=1, max_size=4),
       st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30))
def test_every_rewrite_parses_and_carries_the_literal_unchanged(names: list[str],
                                                                literal: str) -> None:
    quoted = "'" + literal.replace("'", "''") + "'"
    where = " AND ".join(f"c{i} = $@{n}" for i, n in enumerate(names))
    block = view_parameters_rewrite(f"CREATE VIEW v AS SELECT {quoted} AS s FROM t WHERE {where}")
    assert block is not None
    pglast.parse_sql(block)
    _, probe, template, _ = _call_arguments(block)
    assert quoted in probe and quoted.replace("%", "%%") in template


def test_show_of_the_flag_answers_its_default_where_unset() -> None:
    result = rewrite("SHOW parameterized_views.enabled")
    assert result.sql is not None and "'on'" in result.sql
    assert result.rename_tags == [(b"SELECT 1", b"SHOW")]
    assert worth_parsing(b"SHOW parameterized_views.enabled")
