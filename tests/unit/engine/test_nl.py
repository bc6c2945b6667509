"""The alloydb_ai_nl engine side without a database: parameterization, filling, the fake
composer's choices, the read-only check and the request kind's dispatch (emulator/nl/)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emulator.engine.engine import Engine
from emulator.engine.errors import ModelCallError
from emulator.engine.settings import EngineSettings
from emulator.engine_factory import engine_with_fakes
from emulator.fakes.embeddings import similarity
from emulator.nl.compose import Composed, compose_from_schema, facts_of, with_row_limit
from emulator.nl.compose import compose as compose_with
from emulator.nl.handler import query_problem
from emulator.nl.params import (
    fill,
    intent_pattern,
    literals,
    parameter_kinds,
    parameterize,
    sql_string,
)


def compose(context: dict[str, Any]) -> Composed:
    """The fake composer with the similarity the engine's builder plugs in."""
    return compose_with(context, similarity)


def test_parameterize_numbers_longest_first_as_the_page_shows() -> None:
    prm = parameterize('T."A11" BETWEEN 6000 AND 10000', "Average salary between 6000 and 10000", [])
    assert (prm.psql, prm.pintent) == ('T."A11" BETWEEN $2 AND $1', "Average salary between $2 and $1")
    assert prm.manifest == "Average salary between a given number and a given number"


def test_parameterize_strings_named_by_the_intent_only() -> None:
    sql = "SELECT name FROM p WHERE kind = 'Swimsuit' AND model = 'text-embedding-004' AND code = 'A3'"
    prm = parameterize(sql, "Products like Swimsuit", [{"value": "Swimsuit", "concept_type": "product_name"}])
    assert prm.psql == "SELECT name FROM p WHERE kind = $1 AND model = 'text-embedding-004' AND code = 'A3'"
    assert prm.pintent == "Products like $1"
    assert prm.manifest == "Products like a given product"
    # Not a part of a word, and never inside an identifier or a comment.
    assert parameterize('SELECT "Swim" FROM t -- Swim', "Swimsuit Swim", []).psql == 'SELECT "Swim" FROM t -- Swim'


def test_literals_and_fill_keep_quotes_right() -> None:
    assert [(lit.value, lit.numeric) for lit in literals("SELECT 'O''Brien', 2.5, $$x$$")] == [
        ("O'Brien", False), ("2.5", True), ("x", False)]
    assert fill("SELECT * FROM t WHERE a = $1 AND b < $2 AND c = '$1'", {1: "O'Brien", 2: "7"},
                {1: False, 2: True}) == "SELECT * FROM t WHERE a = 'O''Brien' AND b < 7 AND c = '$1'"
    kinds = parameter_kinds("SELECT 1 WHERE y < '1950' AND a = 'x'", "SELECT 1 WHERE y < $2 AND a = $1")
    assert (kinds[2].value, kinds[2].numeric, kinds[1].value) == ("1950", False, "x")


def test_intent_pattern_captures_parameters() -> None:
    pattern = intent_pattern("Average salary between $2 and $1")
    assert pattern is not None
    match = pattern.search("Which districts have an average salary between 7000 and 9000?")
    assert match is not None and match.group("p2") == "7000" and match.group("p1") == "9000"
    assert intent_pattern("luxury product") is None


SCHEMA: list[dict[str, Any]] = [
    {"name": "s.customers", "columns": [{"name": "customer_id", "type": "integer"},
                                        {"name": "last_name", "type": "text"},
                                        {"name": "address_id", "type": "integer"}],
     "foreign_keys": [{"columns": ["address_id"], "references": "s.addresses",
                       "referenced_columns": ["address_id"]}]},
    {"name": "s.addresses", "columns": [{"name": "address_id", "type": "integer"},
                                        {"name": "city", "type": "text"}], "foreign_keys": []},
]
LISBON = [{"phrase": "Lisbon", "value": "Lisbon", "concept_type": "city_name", "columns": "s.addresses.city"}]


def test_composer_joins_along_foreign_keys() -> None:
    facts = facts_of("Find the last name of the customers who live in Lisbon.", LISBON)
    assert compose_from_schema(facts, SCHEMA) == (
        'SELECT DISTINCT t1."last_name" FROM "s"."customers" AS t1 JOIN "s"."addresses" AS t2 '
        'ON t1."address_id" = t2."address_id" WHERE t2."city" = \'Lisbon\'')
    count = compose_from_schema(facts_of("How many customers live in Lisbon?", LISBON), SCHEMA)
    assert count is not None and count.startswith("SELECT count(*) FROM \"s\".\"customers\"")


def test_template_whose_parameter_takes_another_column_does_not_fit() -> None:
    template = {"id": 1, "intent": "List the last names of customers in Paris",
                "pintent": "List the last names of customers in $1",
                "sql": "SELECT c.last_name FROM s.customers c JOIN s.addresses a USING (address_id) WHERE a.city = 'Paris'",
                "psql": "SELECT c.last_name FROM s.customers c JOIN s.addresses a USING (address_id) WHERE a.city = $1"}
    # Not the parameterized intent word for word (that would take any value): the value index decides.
    context = {"question": "Last names of the customers in Lisbon", "templates": [template],
               "values": LISBON, "schema": SCHEMA, "value_columns": [{"columns": "s.addresses.city"}]}
    assert compose(context).sql.endswith("a.city = 'Lisbon'") and compose(context).template_id == 1
    brand = [{"phrase": "Lisbon", "value": "Lisbon", "concept_type": "brand_name", "columns": "s.brands.name"}]
    other = compose({**context, "values": brand})
    assert other.template_id is None  # Lisbon is a brand here: the template cannot take it
    refused = compose({**context, "attempts": [{"sql": compose(context).sql, "error": "permission denied"}]})
    assert refused.template_id is None


def test_query_problem_refuses_anything_but_one_read_only_query() -> None:
    assert query_problem("SELECT 1") == ""
    assert query_problem("WITH x AS (SELECT 1) SELECT * FROM x") == ""
    assert "not a query" in query_problem("DELETE FROM t")
    assert "single statement" in query_problem("SELECT 1; SELECT 2")
    assert "writes" in query_problem("SELECT * INTO t2 FROM t")
    assert "writes" in query_problem("SELECT * FROM t FOR UPDATE")
    assert "DELETE in a WITH" in query_problem("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d")


def test_engine_dispatches_the_request_kind_in_fake_mode() -> None:
    async def run() -> None:
        engine = engine_with_fakes()
        try:
            message = {"op": "alloydb_ai_nl", "task": "template", "model_id": "gemini-2.0-flash",
                       "provider": "google", "model_type": "generic", "body": None,
                       "nl": {"intent": "How many rows for 3?", "sql": "SELECT count(*) FROM t WHERE n = 3",
                              "check_intent": True}}
            answer = await engine.handle(message)
            assert answer == {"psql": "SELECT count(*) FROM t WHERE n = $1",
                              "pintent": "How many rows for $1?", "manifest": "How many rows for a given number?"}
            wrong = await engine.handle({**message, "nl": {"intent": "How many rows?", "sql": "SELECT n FROM t",
                                                           "check_intent": True}})
            assert wrong["error"].startswith("Checking intent failed, for nl_question:How many rows?")
            with pytest.raises(ModelCallError):
                await engine.handle({**message, "task": "nope"})
        finally:
            await engine.aclose()

    asyncio.run(run())


def test_an_engine_built_without_the_similarity_says_who_plugs_it_in() -> None:
    # Engine() alone has no fakes; alloydb_ai_nl ranks templates with what the builder plugs in.
    async def run() -> None:
        engine = Engine(EngineSettings(models="live"))
        try:
            with pytest.raises(ModelCallError, match="engine_with_fakes"):
                await engine.handle({"op": "alloydb_ai_nl", "task": "sql", "model_id": "m",
                                     "provider": "google", "model_type": "generic",
                                     "nl": {"question": "How many rows?"}})
        finally:
            await engine.aclose()

    asyncio.run(run())


SHOP: list[dict[str, Any]] = [
    {"name": "s.brands", "columns": [{"name": "brand_id", "type": "integer"},
                                     {"name": "brand_name", "type": "character varying(255)"}],
     "foreign_keys": []},
    {"name": "s.products", "columns": [{"name": "product_id", "type": "integer"},
                                       {"name": "brand_id", "type": "integer"}],
     "foreign_keys": [{"columns": ["brand_id"], "references": "s.brands", "referenced_columns": ["brand_id"]}]},
]


def test_composer_groups_and_names_rows_by_number() -> None:
    grouped = compose_from_schema(facts_of("which brands have the largest number of products.", []), SHOP)
    assert grouped == ('SELECT t1."brand_name", count(t2.*) AS count FROM "s"."brands" AS t1 JOIN "s"."products" '
                       'AS t2 ON t2."brand_id" = t1."brand_id" GROUP BY t1."brand_name" '
                       'ORDER BY count DESC, t1."brand_name"')
    assert compose_from_schema(facts_of("Show product number 4", []), SHOP) == (
        'SELECT t1.* FROM "s"."products" AS t1 WHERE t1."product_id" = 4')


_VALUES = st.text(alphabet=st.characters(whitelist_categories=["Lu", "Ll", "Nd"], whitelist_characters=" '-"),
                  min_size=2, max_size=12).filter(lambda v: v.strip() == v and v.strip("'") == v)


@settings(max_examples=200, deadline=None)
@given(value=_VALUES, number=st.integers(min_value=0, max_value=10**6))
@example(value="O'Brien", number=5)
@example(value="00", number=1)  # the 1 inside the $1 put in for 00 was once taken for the value 1
@example(value="µµµµµ𐐀𐐀0", number=0)
@example(value="ROWS", number=0)  # "Rows named ROWS": the value is the word written as in the SQL  # the scanner counts characters: byte offsets missed the string
def test_parameterize_then_fill_gives_the_sql_back(value: str, number: int) -> None:
    sql = f"SELECT a FROM t WHERE name = {sql_string(value)} AND n > {number}"
    intent = f"Rows named {value} above {number}"
    prm = parameterize(sql, intent, [])
    kinds = parameter_kinds(sql, prm.psql)
    assert fill(prm.psql, prm.values, {k: lit.numeric for k, lit in kinds.items()}) == sql
    pattern = intent_pattern(prm.pintent)
    if prm.values:
        assert pattern is not None
        match = pattern.search(intent)
        assert match is not None
        assert {int(k[1:]): v for k, v in match.groupdict().items()} == prm.values


def test_a_value_inside_another_ones_parameter_is_not_replaced_again() -> None:
    prm = parameterize("SELECT a FROM t WHERE y = 2024 AND n > 1", "Orders of 2024 above 1", [])
    assert prm.pintent == "Orders of $1 above $2" and prm.values == {1: "2024", 2: "1"}
    given = parameterize("SELECT a FROM t WHERE c = 'number' AND n > 12345678", "12345678 rows with number", [])
    assert given.manifest == "a given number rows with a given value"  # "number" of the kind kept


def test_a_row_count_in_the_question_limits_the_rows() -> None:
    assert with_row_limit("SELECT name FROM p ORDER BY d -- nearest", "List 2 products like a bag") == (
        "SELECT name FROM p ORDER BY d -- nearest\nLIMIT 2")
    assert with_row_limit("SELECT name FROM p LIMIT 5", "Show the top 3 products") == "SELECT name FROM p LIMIT 5"
    assert with_row_limit("SELECT max(price) FROM p", "List 2 products' maximum price") == "SELECT max(price) FROM p"
    assert with_row_limit("SELECT name FROM p", "Which products cost 20 dollars?") == "SELECT name FROM p"
