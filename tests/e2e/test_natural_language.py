"""alloydb_ai_nl end to end: Google's two natural-language pages run as printed, the SQL they get
back executes, bad input gets clear errors, the generated SQL runs with the caller's rights, and
live mode asks a local HTTP server that speaks Gemini generateContent.

The page scripts are tests/e2e/nl_pages/*.sql (the statements verbatim, in the pages' order). Fake
mode is the session emulator's; live mode is an emulator of its own (docs/natural-language.md).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from emulator.embedded import bin_dir
from tests.support.databases import psql
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.http_servers import CaptureServer, Reply

PAGES = Path(__file__).parent / "nl_pages"
GET_SQL_KEYS = ["sql", "prompt", "retries", "error_msg", "nl_question"]


def _new_database(emulator: Emulator, name: str) -> str:
    with emulator.connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return emulator.dsn_for(dbname=name)


def one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def get_sql(conn: psycopg.Connection[Any], config: str, question: str) -> dict[str, Any]:
    answer = one(conn, "SELECT alloydb_ai_nl.get_sql(%s, %s)::text", [config, question])
    parsed: dict[str, Any] = json.loads(answer)
    assert list(parsed) == GET_SQL_KEYS  # AlloyDB's keys, in its order
    return parsed


# -- the tutorial page ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tutorial(emulator: Emulator) -> Iterator[str]:
    dsn = _new_database(emulator, "nl_tutorial")
    psql(dsn, (PAGES / "tutorial.sql").read_text(), timeout=120)
    yield dsn


@pytest.fixture
def db(tutorial: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(tutorial, autocommit=True) as conn:
        yield conn


def test_tutorial_templates_and_fragments_are_parameterized_as_the_page_shows(
        db: psycopg.Connection[Any]) -> None:
    rows = db.execute("SELECT psql, pintent FROM alloydb_ai_nl.template_store_view "
                      "WHERE config = 'nla_demo_cfg' ORDER BY id").fetchall()
    assert rows[0][0].endswith("JOIN nla_demo.products p ON oi.product_id = p.product_id  AND p.name = $1")
    assert rows[0][1] == "List the first names and the last names of all customers who ordered $1."
    assert "embedding('text-embedding-004', $1)::vector" in rows[1][0]
    assert rows[1][1] == "List 3 products most similar to a $1."
    assert db.execute("SELECT intent, pintent FROM alloydb_ai_nl.fragment_store_view").fetchall() == [
        ("luxury product", "luxury product")]


def test_tutorial_context_and_value_index(db: psycopg.Connection[Any]) -> None:
    # The page's update_generated_* texts were applied as the objects' comments.
    assert one(db, "SELECT alloydb_ai_nl.get_relation_context('nla_demo.products')").startswith(
        'The "nla_demo.products" table stores product details')
    assert one(db, "SELECT col_description('nla_demo.products'::regclass, 2)").startswith(
        'The "name" column in the "nla_demo.products" table')
    # apply_generated_schema_context(..., TRUE) applied the other generated contexts too.
    assert "city" in one(db, "SELECT obj_description('nla_demo.addresses'::regclass, 'pg_class')")
    assert one(db, "SELECT count(*) FROM alloydb_ai_nl.generated_schema_context_view") == 0
    assert one(db, "SELECT concept_type FROM alloydb_ai_nl.value_index_columns "
                   "WHERE column_names = 'nla_demo.products.name'") == "product_name"
    found = one(db, "SELECT alloydb_ai_nl.get_concept_and_value(ARRAY['cymbalprime'], 'nla_demo_cfg')")
    assert found[0]["value"] == "CymbalPrime" and found[0]["concept_type"] == "brand_name"
    # The page drops the generated association id 1: brands.brand_name, which it had associated by
    # hand already, so every other generated one (the city that answers "Lisbon") was applied.
    assert db.execute("SELECT column_names, concept_type FROM alloydb_ai_nl.value_index_columns "
                      "WHERE config = 'nla_demo_cfg' ORDER BY column_names").fetchall() == [
        ("nla_demo.addresses.city", "city_name"), ("nla_demo.addresses.country", "country_name"),
        ("nla_demo.brands.brand_name", "brand_name"),
        ("nla_demo.customers.first_name,nla_demo.customers.last_name", "full_person_name"),
        ("nla_demo.products.name", "product_name")]


def test_tutorial_questions_get_sql_that_answers_them(db: psycopg.Connection[Any]) -> None:
    tote = get_sql(db, "nla_demo_cfg", "Find the customers who purchased Tote Bag.")
    assert "p.name = 'Tote Bag'" in tote["sql"]  # the template, with the value-index value
    assert db.execute(tote["sql"]).fetchall() == [("Alex", "B.")]
    assert tote["retries"] == 0 and tote["error_msg"] == ""
    shoe = get_sql(db, "nla_demo_cfg", "List the maximum price of any CymbalShoe.")["sql"]
    assert db.execute(shoe).fetchall() == [(Decimal("89.99"),)]
    prime = get_sql(db, "nla_demo_cfg", "List the maximum price of any CymbalPrime.")["sql"]
    assert '"brands"' in prime  # CymbalPrime is a brand: joined through brand_id
    assert db.execute(prime).fetchall() == [(Decimal("99.99"),)]
    similar = get_sql(db, "nla_demo_cfg", "List 2 products similar to a Tote Bag.")["sql"]
    assert "embedding('text-embedding-004', 'Tote Bag')" in similar
    assert similar.endswith("\nLIMIT 2")  # as the page shows: the question asks for 2
    assert len(db.execute(similar).fetchall()) == 2
    summary = one(db, "SELECT alloydb_ai_nl.get_sql_summary(nl_config_id => 'nla_demo_cfg', "
                      "nl_question => 'which brands have the largest number of products.')")
    assert summary["answer"] == ("The result set has 3 rows: brand_name: CymbalPrime, count: 2; "
                                 "brand_name: CymbalSports, count: 2; brand_name: CymbalPro, count: 1.")


ASSOCIATIONS_SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.products (product_id int PRIMARY KEY, name text);
CREATE TABLE shop.customers (customer_id int PRIMARY KEY, first_name text, last_name text);
CREATE TABLE shop.brands (brand_id int PRIMARY KEY, brand_name text);
CREATE TABLE shop.addresses (address_id int PRIMARY KEY, street text, city text, country text);
"""


@pytest.mark.parametrize("filler", [0, 7, 50])
def test_generated_associations_are_numbered_the_same_whatever_the_oids(emulator: Emulator, filler: int) -> None:
    """The pages edit and drop generated associations by id (the tutorial drops id 1). Their ids
    once followed the hash of the relations' OIDs, which the tests run before changed: the
    tutorial then dropped addresses.city and stopped finding Lisbon. ``filler`` tables use up
    OIDs so that the relations get other ones; the numbering must stay the same."""
    dsn = _new_database(emulator, "nl_association_ids")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION alloydb_ai_nl CASCADE")
        for i in range(filler):
            conn.execute(f"CREATE TABLE filler_{i} ()")
        conn.execute(ASSOCIATIONS_SCHEMA)
        conn.execute("SELECT alloydb_ai_nl.g_create_configuration('shop_cfg')")
        conn.execute("SELECT alloydb_ai_nl.g_manage_configuration('register_schema', 'shop_cfg', "
                     "schema_names_in => '{shop}')")
        conn.execute("SELECT alloydb_ai_nl.add_concept_type('brand_name', "
                     "'alloydb_ai_nl.get_concept_and_value_generic_entity_name')")
        conn.execute("SELECT alloydb_ai_nl.add_concept_type('product_name', "
                     "'alloydb_ai_nl.get_concept_and_value_generic_entity_name')")
        assert one(conn, "SELECT alloydb_ai_nl.generate_concept_type_associations('shop_cfg')") == 5
        rows = conn.execute("SELECT id, column_names, concept_type FROM "
                            "alloydb_ai_nl.generated_value_index_columns_view ORDER BY id").fetchall()
    # User concept types first, then the built-in ones; each in relation-name, then column order.
    assert rows == [
        (1, "shop.brands.brand_name", "brand_name"),
        (2, "shop.products.name", "product_name"),
        (3, "shop.addresses.city", "city_name"),
        (4, "shop.addresses.country", "country_name"),
        (5, "shop.customers.first_name,shop.customers.last_name", "full_person_name"),
    ]


def test_execute_nl_query_answers_rows_as_json(db: psycopg.Connection[Any]) -> None:
    rows = db.execute("SELECT alloydb_ai_nl.execute_nl_query('nla_demo_cfg', "
                      "'Find the last name of the customers who live in Lisbon.')").fetchall()
    assert rows == [({"last_name": "M."},)]  # the page's answer


# What Google's MCP Toolbox sent for an alloydb-ai-nl tool without nlConfigParameters until its
# PR #2265 (googleapis/genai-toolbox internal/tools/alloydbainl; its integration test runs it on
# an AlloyDB instance with parameterized secure views).
TOOLBOX_STATEMENT = ("SELECT alloydb_ai_nl.execute_nl_query(nl_question => %s, nl_config_id => %s, "
                     "param_names => ARRAY[]::TEXT[], param_values => ARRAY[]::TEXT[]);")


def test_two_empty_psv_arrays_need_parameterized_views(db: psycopg.Connection[Any]) -> None:
    """Without the parameterized_views extension AlloyDB refuses two empty arrays: "AlloyDB AI
    rejects empty text-arrays with SQLSTATE P0001 - Invalid PSV named parameters" (a demo run
    on AlloyDB for PostgreSQL 17, whose workaround calls execute_nl_query without them); the
    Toolbox's maintainers (issue #1970): "If there are no params and psv is not enabled in the
    instance, the query execution will fail". With the extension they are no parameters."""
    question = ["Find the last name of the customers who live in Lisbon.", "nla_demo_cfg"]
    get_sql_statement = ("SELECT alloydb_ai_nl.get_sql(%s, %s, param_names => ARRAY[]::TEXT[], "
                         "param_values => ARRAY[]::TEXT[])")
    for statement in (TOOLBOX_STATEMENT, get_sql_statement):
        with pytest.raises(psycopg.errors.RaiseException) as caught:
            db.execute(statement, question if statement == TOOLBOX_STATEMENT else question[::-1])
        assert caught.value.diag.message_primary == "Invalid PSV named parameters"
        assert "CREATE EXTENSION parameterized_views" in (caught.value.diag.message_hint or "")
    # the Toolbox's statement since its PR #2265 (internal/tools/alloydbainl, no nlConfigParameters),
    # and the demo's workaround: the function's own NULL defaults
    for statement in ("SELECT alloydb_ai_nl.execute_nl_query(nl_question => %s, nl_config_id => %s);",
                      "SELECT alloydb_ai_nl.execute_nl_query(%s, %s) AS result"):
        args = question if "nl_question =>" in statement else question[::-1]
        assert db.execute(statement, args).fetchall() == [({"last_name": "M."},)]
    with db.transaction(force_rollback=True):
        db.execute("CREATE EXTENSION parameterized_views")
        rows = db.execute(TOOLBOX_STATEMENT, question).fetchall()
    assert rows == [({"last_name": "M."},)]


# A set-up script that ran end to end on AlloyDB (a public telecom demo, 2026; every statement
# below is one it commits without tolerating an error): it binds the configuration to a model
# registered in google_ml with operation 'change_model', and names generate_schema_context's
# arguments nl_config_id and overwrite_if_exist.
CALL_RECORDS = """
CREATE TABLE call_records (
    call_id serial PRIMARY KEY, region text, call_type text, call_status text,
    cell_tower_id text, call_date timestamptz);
INSERT INTO call_records (region, call_type, call_status, cell_tower_id, call_date)
SELECT (ARRAY['Jakarta', 'Bandung'])[1 + g % 2], (ARRAY['voice', 'sms', 'data'])[1 + g % 3],
       (ARRAY['completed', 'dropped', 'failed'])[1 + g % 3], 'JKT-00' || (g % 5), now()
  FROM generate_series(1, 30) AS g;
"""


def test_swapped_arguments_get_a_hint(db: psycopg.Connection[Any]) -> None:
    """Before alloydb_ai_nl 1.0.3 the question came first: the MCP Toolbox before 0.19 sent
    ``execute_nl_query($1, $2, ...)`` with the question as $1 ("Toolbox v0.19.0+ is only
    compatible with AlloyDB AI NL v1.0.3+"), and public demo code still does. 1.0.3 reads the
    configuration first; the error says which argument is the configuration."""
    question = "Find the last name of the customers who live in Lisbon."
    for statement in (("SELECT alloydb_ai_nl.execute_nl_query(%s, %s, param_names => ARRAY['userid'], "
                       "param_values => ARRAY['1'])"),
                      "SELECT alloydb_ai_nl.get_sql(%s, %s)",
                      "SELECT alloydb_ai_nl.get_sql_summary(%s, %s)"):
        with pytest.raises(psycopg.errors.UndefinedObject) as caught:
            db.execute(statement, [question, "nla_demo_cfg"])
        assert caught.value.diag.message_primary == f"The configuration {question} does not exist."
        assert '"nla_demo_cfg" is a configuration' in (caught.value.diag.message_hint or "")
        assert "nl_config_id => " in (caught.value.diag.message_hint or "")


def _bind_the_configuration_to_its_model(conn: psycopg.Connection[Any]) -> None:
    """The script's steps 1b, 2 and 2b, as it sends them."""
    conn.execute("CALL google_ml.create_model(  model_id            => %(mid)s,"
                 "  model_request_url   => %(url)s,  model_provider      => 'google',"
                 "  model_type          => 'generic',  model_qualified_name=> %(mid)s,"
                 "  model_auth_type     => 'alloydb_service_agent_iam')",
                 {"mid": "gemini-2.5-flash:generateContent",
                  "url": "publishers/google/models/gemini-2.5-flash:generateContent"})
    conn.execute("SELECT alloydb_ai_nl.g_create_configuration(%(cid)s)", {"cid": "netpulse_cdr_config"})
    conn.execute("SELECT alloydb_ai_nl.g_manage_configuration(  operation           => 'change_model',"
                 "  configuration_id_in => %(cid)s,  model_id_in         => %(mid)s)",
                 {"cid": "netpulse_cdr_config", "mid": "gemini-2.5-flash:generateContent"})


def test_change_model_binds_a_configuration_to_a_registered_model(emulator: Emulator) -> None:
    dsn = _new_database(emulator, "nl_change_model")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl CASCADE")
        _bind_the_configuration_to_its_model(conn)
        assert one(conn, "SELECT model_id FROM alloydb_ai_nl.g_configuration "
                         "WHERE configuration_id = 'netpulse_cdr_config'") == "gemini-2.5-flash:generateContent"
        # "rejects models that are not in google_ml.model_info_view"
        with pytest.raises(psycopg.errors.UndefinedObject, match='model "gemini-9" does not exist'):
            conn.execute("SELECT alloydb_ai_nl.g_manage_configuration(operation => 'change_model', "
                         "configuration_id_in => 'netpulse_cdr_config', model_id_in => 'gemini-9')")


def test_a_set_up_script_that_ran_on_alloydb(emulator: Emulator) -> None:
    dsn = _new_database(emulator, "nl_set_up_script")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl CASCADE")
        conn.execute(CALL_RECORDS)
        _bind_the_configuration_to_its_model(conn)
        cid = {"cid": "netpulse_cdr_config"}
        conn.execute("SELECT alloydb_ai_nl.g_manage_configuration(  operation           => 'register_table_view',"
                     "  configuration_id_in => %(cid)s,  table_views_in      => %(tv)s)",
                     {**cid, "tv": "{public.call_records}"})
        conn.execute("SELECT alloydb_ai_nl.g_manage_configuration(  operation           => 'add_general_context',"
                     "  configuration_id_in => %(cid)s,  general_context_in  => %(ctx)s)",
                     {**cid, "ctx": '{"call_status enum: completed | dropped | failed",'
                                    '"call_type enum: voice | sms | data"}'})
        conn.execute("SELECT alloydb_ai_nl.generate_schema_context(  nl_config_id       => %(cid)s,"
                     "  overwrite_if_exist => TRUE)", cid)
        assert one(conn, "SELECT count(*) FROM alloydb_ai_nl.generated_schema_context_view "
                         "WHERE schema_object = 'public.call_records.region'") == 1
        conn.execute("SELECT alloydb_ai_nl.apply_generated_schema_context(%(cid)s)", cid)
        assert one(conn, "SELECT alloydb_ai_nl.get_column_context('public.call_records.region')")
        conn.execute("SELECT alloydb_ai_nl.associate_concept_type(  column_names_in => %(col)s,"
                     "  concept_type_in => 'city_name',  nl_config_id_in => %(cid)s)",
                     {**cid, "col": "public.call_records.region"})
        conn.execute("SELECT alloydb_ai_nl.create_value_index(nl_config_id_in => %(cid)s)", cid)
        # (its add_template steps tolerate an error, so they settle nothing and are left out)
        conn.execute("SELECT alloydb_ai_nl.execute_nl_query('netpulse_cdr_config', %s) AS result",
                     ["Call volume by call_type in Jakarta"])


TOOLBOX_TEMPLATE_SQL = (
    "SELECT c.first_name, c.last_name FROM nla_demo.Customers c JOIN nla_demo.orders o "
    "ON c.customer_id = o.customer_id JOIN nla_demo.order_items oi ON o.order_id = oi.order_id "
    "JOIN nla_demo.products p ON oi.product_id = p.product_id  AND p.name = ''Swimsuit''")


def test_the_toolbox_notebooks_idempotent_set_up_reads_alloydbs_tables(emulator: Emulator) -> None:
    """Google's MCP Toolbox notebook (genai-toolbox docs/en/samples/alloydb/ai-nl/
    alloydb_ai_nl.ipynb), run on AlloyDB, creates each object only IF NOT EXISTS in AlloyDB's own
    tables: alloydb_ai_nl.g_magic_configuration (configuration_id), .concept_types_user_defined
    (type_name) and .g_template_store (template_sql). A second run creates nothing twice."""
    dsn = _new_database(emulator, "nl_toolbox_notebook")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl cascade;")
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration; ")
        conn.execute("CREATE SCHEMA IF NOT EXISTS nla_demo")
        conn.execute("CREATE TABLE IF NOT EXISTS nla_demo.products (product_id INTEGER PRIMARY KEY, "
                     "name VARCHAR(255) NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS nla_demo.customers (customer_id SERIAL PRIMARY KEY, "
                     "first_name VARCHAR(255) NOT NULL, last_name VARCHAR(255) NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS nla_demo.orders (order_id INTEGER PRIMARY KEY, "
                     "customer_id INTEGER)")
        conn.execute("CREATE TABLE IF NOT EXISTS nla_demo.order_items (order_item_id SERIAL PRIMARY "
                     "KEY, order_id INTEGER, product_id INTEGER)")
        conn.execute("INSERT INTO nla_demo.products VALUES (3, 'Swimsuit')")
        set_up = [
            """
  DO $$
  BEGIN
    IF NOT EXISTS (SELECT 1 from alloydb_ai_nl.g_magic_configuration where configuration_id = 'nla_demo_cfg') THEN
     PERFORM alloydb_ai_nl.g_create_configuration( 'nla_demo_cfg' );
    END IF;
  END $$;
  """,
            """
  SELECT alloydb_ai_nl.g_manage_configuration(
    operation => 'register_table_view',
    configuration_id_in => 'nla_demo_cfg',
    table_views_in=>'{nla_demo.customers, nla_demo.products, nla_demo.orders, nla_demo.order_items}'
  );
  """,
            """
  DO $$
  BEGIN
    IF NOT EXISTS (select 1 from alloydb_ai_nl.concept_types_user_defined where type_name = 'product_name') THEN
      PERFORM alloydb_ai_nl.add_concept_type(
        concept_type_in => 'product_name',
        match_function_in => 'alloydb_ai_nl.get_concept_and_value_generic_entity_name',
        additional_info_in => '{
          "description": "Concept type for product name.",
          "examples": "SELECT alloydb_ai_nl.get_concept_and_value_generic_entity_name(''Camera'')" }'::jsonb
      );
    END IF;
  END $$;
  """,
            f"""
  DO $$
  BEGIN
    IF NOT EXISTS (select 1 from alloydb_ai_nl.g_template_store where template_sql = '{TOOLBOX_TEMPLATE_SQL}') THEN
      PERFORM alloydb_ai_nl.add_template(
        nl_config_id => 'nla_demo_cfg',
        intent => 'List the first names and the last names of all customers who ordered Swimsuit.',
        sql => '{TOOLBOX_TEMPLATE_SQL}',
        sql_explanation => 'To answer this question, JOIN the four tables.',
        check_intent => TRUE
      );
    END IF;
  END $$;
""",
        ]
        for _ in range(2):  # the notebook's cells may be run again
            for statement in set_up:
                conn.execute(statement)
        assert conn.execute(
            "SELECT m.configuration_id, m.model_id = c.model_id FROM "
            "alloydb_ai_nl.g_magic_configuration m JOIN alloydb_ai_nl.g_configuration c "
            "USING (configuration_id)").fetchall() == [("nla_demo_cfg", True)]
        assert conn.execute("SELECT type_name FROM alloydb_ai_nl.concept_types_user_defined"
                            ).fetchall() == [("product_name",)]
        assert one(conn, "SELECT count(*) FROM alloydb_ai_nl.template_store_view "
                         "WHERE config = 'nla_demo_cfg'") == 1
        _check_alloydbs_store_columns(conn)
        conn.execute("CREATE ROLE nl_notebook_reader")
        try:  # anyone may see which configurations exist, as g_configuration
            conn.execute("SET ROLE nl_notebook_reader")
            assert one(conn, "SELECT count(*) FROM alloydb_ai_nl.g_magic_configuration") == 1
        finally:
            conn.execute("RESET ROLE")
            conn.execute("DROP ROLE nl_notebook_reader")


def _check_alloydbs_store_columns(conn: psycopg.Connection[Any]) -> None:
    """The stores under AlloyDB's own column names (its alloydb_ai_nl's add_template and
    add_fragment insert them; enable/disable/drop find an entry by template_id / fragment_id
    and switch template_active / fragment_active), kept with the emulator's."""
    conn.execute("SELECT alloydb_ai_nl.add_fragment(nl_config_id => 'nla_demo_cfg', "
                 "table_aliases => ARRAY['nla_demo.products AS p'], intent => 'swimwear', "
                 "fragment => $$p.name = 'Swimsuit'$$, comment => 'beach', check_intent => FALSE)")
    template = conn.execute(
        "SELECT template_id, template_context, template_nl, template_sql, template_intent, "
        "template_manifest, template_comment, template_explanation, template_weight, "
        "template_active FROM alloydb_ai_nl.g_template_store").fetchall()
    assert template == conn.execute(
        "SELECT id, config, nl, sql, intent, manifest, comment, explanation, weight, enabled "
        "FROM alloydb_ai_nl.g_template_store").fetchall()
    assert template[0][1:3] == (
        "nla_demo_cfg",
        "List the first names and the last names of all customers who ordered Swimsuit.")
    assert conn.execute(  # AlloyDB's {"sql", "intent"} of the parameterized forms
        "SELECT template_parameterized::text = json_build_object('sql', psql, 'intent', pintent)::text, "
        "template_parameterized ->> 'intent' FROM alloydb_ai_nl.g_template_store").fetchall() == [
        (True, "List the first names and the last names of all customers who ordered $1.")]
    fragment = conn.execute(
        "SELECT fragment_id, fragment_context, fragment_table_aliases, fragment_intent, fragment, "
        "fragment_manifest, fragment_comment, fragment_weight, fragment_active "
        "FROM alloydb_ai_nl.g_fragment_store").fetchall()
    assert [row[1:5] + row[6:] for row in fragment] == [
        ("nla_demo_cfg", ["nla_demo.products AS p"], "swimwear", "p.name = 'Swimsuit'",
         "beach", 1, True)]
    assert conn.execute(
        "SELECT fragment_parameterized::text = json_build_object('sql', pfragment, 'intent', "
        "pintent)::text, fragment_parameterized ->> 'intent' FROM alloydb_ai_nl.g_fragment_store"
    ).fetchall() == [(True, "swimwear")]
    assert one(conn, "SELECT alloydb_ai_nl.disable_template(template_id) "
                     "FROM alloydb_ai_nl.g_template_store") is True
    assert one(conn, "SELECT alloydb_ai_nl.disable_fragment(fragment_id) "
                     "FROM alloydb_ai_nl.g_fragment_store") is True
    assert conn.execute("SELECT template_active FROM alloydb_ai_nl.g_template_store "
                        "UNION ALL SELECT fragment_active FROM alloydb_ai_nl.g_fragment_store"
                        ).fetchall() == [(False,), (False,)]
    conn.execute("SELECT alloydb_ai_nl.enable_template(template_id) "
                 "FROM alloydb_ai_nl.g_template_store")
    assert one(conn, "SELECT alloydb_ai_nl.drop_fragment(fragment_id) "
                     "FROM alloydb_ai_nl.g_fragment_store") is True


def test_fragment_condition_is_added_when_the_question_names_its_intent(
        db: psycopg.Connection[Any]) -> None:
    plain = get_sql(db, "nla_demo_cfg", "List products similar to a Hoodie.")["sql"]
    luxury = get_sql(db, "nla_demo_cfg", "List luxury products similar to a Hoodie.")["sql"]
    assert "luxury" not in plain
    assert "description LIKE '%luxury%'" in luxury and "'Hoodie'" in luxury
    verbose = json.loads(one(db, "SELECT alloydb_ai_nl.get_sql('nla_demo_cfg', "
                                 "'List luxury products similar to a Hoodie.', '{\"verbose_mode\": true}')::text"))
    assert re.fullmatch(r"\(fake mode\) template \d+, fragments \d+", verbose["prompt"])
    assert db.execute(luxury).fetchall() == []  # no description says luxury
    db.execute("SELECT alloydb_ai_nl.disable_fragment(id) FROM alloydb_ai_nl.fragment_store_view")
    try:
        assert "luxury" not in get_sql(db, "nla_demo_cfg", "List luxury products similar to a Hoodie.")["sql"]
    finally:
        db.execute("SELECT alloydb_ai_nl.enable_fragment(id) FROM alloydb_ai_nl.fragment_store_view")


def test_a_question_nothing_matches_gets_the_error_shape(db: psycopg.Connection[Any]) -> None:
    answer = get_sql(db, "nla_demo_cfg", "What is the weather tomorrow?")
    assert answer["sql"] == "" and answer["error_msg"].startswith("Unable to generate SQL")
    assert answer["nl_question"] == "What is the weather tomorrow?"
    with pytest.raises(psycopg.errors.RaiseException, match="could not generate SQL"):
        db.execute("SELECT alloydb_ai_nl.execute_nl_query('nla_demo_cfg', 'What is the weather tomorrow?')")


def test_disabled_template_is_not_used(db: psycopg.Connection[Any]) -> None:
    template = one(db, "SELECT id FROM alloydb_ai_nl.template_store_view WHERE intent LIKE 'List the first%'")
    assert one(db, "SELECT alloydb_ai_nl.disable_template(%s)", [template]) is True
    assert one(db, "SELECT alloydb_ai_nl.disable_template(%s)", [template]) is False  # already
    try:
        sql = get_sql(db, "nla_demo_cfg", "Find the customers who purchased Tote Bag.")["sql"]
        assert "oi.product_id" not in sql  # composed from the schema instead, along foreign keys
        assert [row[1] for row in db.execute(sql).fetchall()] == ["Alex"]
    finally:
        assert one(db, "SELECT alloydb_ai_nl.enable_template(%s)", [template]) is True


@pytest.mark.parametrize(("statement", "sqlstate", "message"), [
    ("SELECT alloydb_ai_nl.get_sql('nope', 'How many customers?')", "42704",
     "The configuration nope does not exist."),
    (("SELECT alloydb_ai_nl.g_manage_configuration(operation => 'register_table_view', "
     "configuration_id_in => 'nla_demo_cfg', table_views_in => '{nla_demo.nope}')"), "42P01",
     'relation "nla_demo.nope" does not exist'),
    ("SELECT alloydb_ai_nl.g_manage_configuration('shuffle', 'nla_demo_cfg')", "22023",
     'unknown operation "shuffle"'),
    ("SELECT alloydb_ai_nl.associate_concept_type('nla_demo.products.name', 'nope', 'nla_demo_cfg')",
     "42704", 'concept type "nope" does not exist'),
    ("SELECT alloydb_ai_nl.associate_concept_type('nla_demo.products.nope', 'product_name')",
     "42703", 'column "nope" of relation "nla_demo.products" does not exist'),
    ("SELECT alloydb_ai_nl.add_template('nla_demo_cfg', 'Count it', 'SELECT count(*) FROM nla_demo.nope')",
     "22023", "The sql_example is not executable."),
    ("SELECT alloydb_ai_nl.add_fragment('nla_demo_cfg', ARRAY[]::text[], 'cheap', 'price < 10')",
     "22023", "You need to provide a table alias list."),
    ("SELECT alloydb_ai_nl.g_create_configuration('nla_demo_cfg')", "42710",
     "The configuration nla_demo_cfg already exists."),
    ("SELECT alloydb_ai_nl.execute_nl_query('nla_demo_cfg', 'x', ARRAY['user_email'], ARRAY[]::text[])",
     "P0001", "Invalid PSV named parameters"),
    (("SELECT alloydb_ai_nl.get_sql('nla_demo_cfg', 'x', param_names => ARRAY['a', 'b'], "
      "param_values => ARRAY['1'])"), "P0001", "Invalid PSV named parameters"),
    ("SELECT alloydb_ai_nl.get_sql('nla_demo_cfg', repeat('price ', 2000))", "22023",
     "nl_question is too long (12000 characters; at most 10000)"),
])
def test_bad_input_gets_a_clear_error(db: psycopg.Connection[Any], statement: str, sqlstate: str,
                                      message: str) -> None:
    with pytest.raises(psycopg.Error) as caught:
        db.execute(statement)
    assert caught.value.sqlstate == sqlstate
    assert message in str(caught.value)


def test_a_fragment_is_tried_after_and_when_the_aliases_end_in_a_where(emulator: Emulator) -> None:
    """AlloyDB's own add_fragment (its readable alloydb_ai_nl source) checks `SELECT 1 FROM
    <aliases> WHERE <fragment>`, then, if that fails, `... AND <fragment>`, and reports that
    second attempt when both fail."""
    dsn = _new_database(emulator, "nl_fragment_after_and")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION alloydb_ai_nl CASCADE")
        conn.execute("CREATE TABLE products (product_id int PRIMARY KEY, name text)")
        conn.execute("SELECT alloydb_ai_nl.g_create_configuration('shop_cfg')")
        conn.execute("SELECT alloydb_ai_nl.g_manage_configuration(operation => "
                     "'register_table_view', configuration_id_in => 'shop_cfg', "
                     "table_views_in => '{public.products}')")
        aliases = "ARRAY['products AS p WHERE p.product_id > 0']"
        assert one(conn, f"SELECT alloydb_ai_nl.add_fragment('shop_cfg', {aliases}, "
                         "'numbered products', 'p.product_id < 1000000', check_intent => FALSE)")
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            conn.execute(f"SELECT alloydb_ai_nl.add_fragment('shop_cfg', {aliases}, "
                         "'nothing', 'p.nope = 1', check_intent => FALSE)")
        message = caught.value.diag.message_primary or ""
        assert message.startswith("The sql is not executable. Error: column p.nope does not exist")
        assert message.endswith(
            ", sql: SELECT 1 FROM products AS p WHERE p.product_id > 0 AND p.nope = 1.")
        assert caught.value.diag.message_hint == (
            'With WHERE before the fragment: syntax error at or near "WHERE"')


def test_a_fragment_or_template_check_runs_one_statement_only(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not executable"):
        db.execute("SELECT alloydb_ai_nl.add_fragment('nla_demo_cfg', ARRAY['nla_demo.products AS T'], "
                   "'every product', 'true; DROP TABLE nla_demo.brands CASCADE')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not executable"):
        db.execute("SELECT alloydb_ai_nl.add_template('nla_demo_cfg', 'Brands', "
                   "'SELECT 1; DROP TABLE nla_demo.brands CASCADE')")
    assert one(db, "SELECT to_regclass('nla_demo.brands') IS NOT NULL") is True


def test_the_flag_turned_off_refuses_calls(db: psycopg.Connection[Any]) -> None:
    db.execute("SET alloydb_ai_nl.enabled = off")
    try:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
            db.execute("SELECT alloydb_ai_nl.get_sql('nla_demo_cfg', 'List the maximum price of any CymbalShoe.')")
        assert caught.value.diag.message_hint is not None
        assert "alloydb_ai_nl.enabled" in caught.value.diag.message_hint
    finally:
        db.execute("RESET alloydb_ai_nl.enabled")


def test_generated_sql_runs_with_the_callers_rights(emulator: Emulator, db: psycopg.Connection[Any]) -> None:
    db.execute("DROP ROLE IF EXISTS nl_reader")
    db.execute("CREATE ROLE nl_reader LOGIN")
    db.execute("GRANT USAGE ON SCHEMA nla_demo TO nl_reader")
    db.execute("GRANT SELECT ON nla_demo.products TO nl_reader")
    try:
        dsn = emulator.dsn_for(user="nl_reader", dbname="nl_tutorial")
        with psycopg.connect(dsn, autocommit=True) as reader:
            allowed = get_sql(reader, "nla_demo_cfg", "List the maximum price of any CymbalShoe.")
            assert reader.execute(allowed["sql"]).fetchall() == [(Decimal("89.99"),)]
            # The template joins customers, which the reader may not read: EXPLAIN refuses it as
            # the reader, so no SQL comes back, and execute_nl_query reads nothing.
            refused = get_sql(reader, "nla_demo_cfg", "Find the customers who purchased Tote Bag.")
            assert refused["sql"] == "" and "permission denied" in refused["error_msg"]
            assert refused["retries"] > 0
            with pytest.raises(psycopg.errors.RaiseException):
                reader.execute("SELECT alloydb_ai_nl.execute_nl_query('nla_demo_cfg', "
                               "'Find the last name of the customers who live in Lisbon.')")
            # The stores are the administrator's; the views are for everyone.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute("SELECT * FROM alloydb_ai_nl.g_template_store")
            assert one(reader, "SELECT count(*) FROM alloydb_ai_nl.template_store_view") == 2
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute("SELECT alloydb_ai_nl.add_template('nla_demo_cfg', 'Prices', "
                               "'SELECT price FROM nla_demo.products')")
    finally:
        db.execute("DROP OWNED BY nl_reader")
        db.execute("DROP ROLE nl_reader")


def test_a_configuration_survives_pg_dump_and_restore(emulator: Emulator, db: psycopg.Connection[Any]) -> None:
    source = emulator.direct_dsn.rsplit("/", 1)[0] + "/nl_tutorial"
    dump = subprocess.run([str(bin_dir() / "pg_dump"), "--no-owner", "-d", source],
                          capture_output=True, text=True, check=True, timeout=120).stdout
    restored = _new_database(emulator, "nl_restored")
    psql(restored, dump, timeout=120)
    with psycopg.connect(restored, autocommit=True) as conn:
        for view in ("template_store_view", "fragment_store_view", "value_index_columns"):
            count = f"SELECT count(*) FROM alloydb_ai_nl.{view}"
            assert one(conn, count) == one(db, count) > 0
        # The built-in concept types are not doubled, the id sequences go on where they were.
        assert one(conn, "SELECT count(*) FROM alloydb_ai_nl.list_concept_types()") == one(
            db, "SELECT count(*) FROM alloydb_ai_nl.list_concept_types()")
        assert one(conn, "SELECT alloydb_ai_nl.add_fragment('nla_demo_cfg', ARRAY['nla_demo.products AS T'], "
                         "'cheap product', 'T.price < 50')") is True
        assert one(conn, "SELECT max(id) FROM alloydb_ai_nl.fragment_store_view") == 2
        sql = get_sql(conn, "nla_demo_cfg", "Find the customers who purchased Tote Bag.")["sql"]
        assert conn.execute(sql).fetchall() == [("Alex", "B.")]


def test_tutorial_cleanup_runs_as_printed(tutorial: str, db: psycopg.Connection[Any]) -> None:
    psql(tutorial, (PAGES / "tutorial_cleanup.sql").read_text())
    assert one(db, "SELECT count(*) FROM alloydb_ai_nl.template_store_view") == 0
    assert one(db, "SELECT to_regnamespace('nla_demo')") is None
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("SELECT alloydb_ai_nl.get_sql('nla_demo_cfg', 'anything')")


# -- the "generate SQL queries" page ------------------------------------------------------------


@pytest.fixture(scope="module")
def page(emulator: Emulator) -> Iterator[tuple[str, str]]:
    dsn = _new_database(emulator, "nl_generate_sql")
    script = (PAGES / "generate_sql_setup.sql").read_text() + (PAGES / "generate_sql_page.sql").read_text()
    result = psql(dsn, script, timeout=120)
    yield dsn, result.stdout


@pytest.fixture
def pdb(page: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(page[0], autocommit=True) as conn:
        conn.execute("SET search_path = public, bird_dev_financial")
        yield conn


def test_page_fragments_are_parameterized_as_the_page_shows(pdb: psycopg.Connection[Any]) -> None:
    row = pdb.execute("SELECT manifest, scope, fragment, intent, pfragment, pintent "
                      "FROM alloydb_ai_nl.fragment_store_view "
                      "WHERE intent = 'Average salary between 6000 and 10000'").fetchone()
    assert row == ("Average salary between a given number and a given number", "district AS T",
                   'T."A11" BETWEEN 6000 AND 10000', "Average salary between 6000 and 10000",
                   'T."A11" BETWEEN $2 AND $1', "Average salary between $2 and $1")
    psql_ = one(pdb, "SELECT psql FROM alloydb_ai_nl.template_store_view WHERE intent = "
                     "'How many accounts associated with loans are located in the Prague region?'")
    assert psql_.rstrip().endswith('WHERE T3."A3" = $1')


def test_page_value_search_and_synonyms(pdb: psycopg.Connection[Any]) -> None:
    found = one(pdb, "SELECT alloydb_ai_nl.get_concept_and_value(value_phrases_in => ARRAY['United States'], "
                     "nl_config_id_in => 'my_app_config')")
    assert [(f["value"], f["concept_type"]) for f in found] == [("USA", "country_name")]
    sql = one(pdb, "SELECT alloydb_ai_nl.get_sql(nl_config_id => 'my_app_config', "
                   "nl_question => 'What is the population of the United States?', "
                   "additional_info => json_build_object('enrich_nl_question', TRUE)) ->> 'sql'")
    assert pdb.execute(sql).fetchall() == [(331000000,)]


def test_page_questions_get_sql_that_runs(pdb: psycopg.Connection[Any], page: tuple[str, str]) -> None:
    answer = get_sql(pdb, "my_app_config",
                     "What is the sum that client number 4's account has following transaction 851?")
    assert 't1."client_id" = 4' in answer["sql"]
    assert len(pdb.execute(answer["sql"]).fetchall()) == 1
    summary = one(pdb, "SELECT alloydb_ai_nl.get_sql_summary(nl_config_id => 'my_app_config', "
                       "nl_question => 'Give me the total number of accounts for accounts who choose "
                       "issuance after transaction')")
    assert summary["answer"].startswith("The result set has")
    # The fragment "Accounts with issuance after transaction" narrowed the accounts: 2 of 3.
    assert "2" in summary["answer"]
    assert '"answer"' in page[1]  # the page's two get_sql_summary statements answered


def test_check_intent_refuses_a_template_whose_sql_does_not_answer_it(pdb: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.RaiseException) as caught:
        pdb.execute("""
SELECT
  alloydb_ai_nl.add_template(
    nl_config_id => 'my_app_config',
    intent => 'List the account id for all accounts that associated with loans and are located in the Prague region.',
    sql => 'SELECT COUNT(T1.account_id)
            FROM account AS T1 INNER JOIN loan AS T2
              ON T1.account_id = T2.account_id
            INNER JOIN district AS T3
              ON T1.district_id = T3.district_id
            WHERE T3."A3" = ''Prague''',
    check_intent => TRUE
  );""")
    assert str(caught.value).startswith(
        "Checking intent failed, for nl_question:List the account id for all accounts that associated "
        "with loans and are located in the Prague region...reason:The SQL query only counts the "
        "number of account IDs, but the question asks for a list of the account IDs.")


@pytest.mark.parametrize(("printed", "runnable", "sqlstate"), [
    # pseudo-code in the page: a parameter declaration where a value goes
    ("SELECT alloydb_ai_nl.list_general_context(nl_config TEXT);",
     "SELECT alloydb_ai_nl.list_general_context('my_app_config')", "42601"),
    ("SELECT alloydb_ai_nl.disable_template(INPUT template_id);",
     "SELECT alloydb_ai_nl.disable_template(1)", "42601"),
    ("SELECT alloydb_ai_nl.enable_template(INPUT template_id);",
     "SELECT alloydb_ai_nl.enable_template(1)", "42601"),
    ("SELECT alloydb_ai_nl.disable_fragment(INPUT fragment_id);",
     "SELECT alloydb_ai_nl.disable_fragment(1)", "42601"),
    ("SELECT alloydb_ai_nl.enable_fragment(INPUT fragment_id);",
     "SELECT alloydb_ai_nl.enable_fragment(1)", "42601"),
    # a trailing comma
    ("SELECT\n  alloydb_ai_nl.generate_templates(\n    'my_app_config',\n);",
     "SELECT alloydb_ai_nl.generate_templates('my_app_config')", "42601"),
    # a string in double quotes is a column name in SQL
    ("SELECT id\nFROM alloydb_ai_nl.fragment_store_view\nWHERE intent = \"Average salary between 6000 and 10000\";",
     "SELECT id FROM alloydb_ai_nl.fragment_store_view WHERE intent = 'Average salary between 6000 and 10000'",
     "42703"),
])
def test_page_statements_no_postgresql_runs_as_printed(pdb: psycopg.Connection[Any], printed: str,
                                                       runnable: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as caught:
        pdb.execute(printed)
    assert caught.value.sqlstate == sqlstate
    assert pdb.execute(runnable).fetchall()


def test_general_context_is_listed(pdb: psycopg.Connection[Any]) -> None:
    assert pdb.execute("SELECT alloydb_ai_nl.list_general_context('my_app_config')").fetchall() == [
        ("If the user asks for a good seat, assume that means a window or aisle seat.",)]


def test_templates_are_generated_from_the_query_log(pdb: psycopg.Connection[Any]) -> None:
    # A stand-in for pg_stat_statements (the embedded server does not preload it): the same
    # columns generate_templates reads.
    pdb.execute("CREATE TABLE public.pg_stat_statements (query text, calls bigint)")
    try:
        pdb.execute("INSERT INTO public.pg_stat_statements VALUES "
                    "($q$select count(*) from my_schema.country as T where T.country_name = 'Portugal'$q$, 7), "
                    "('DELETE FROM my_schema.country', 9), ('SELECT broken FROM nowhere', 3)")
        assert one(pdb, "SELECT alloydb_ai_nl.generate_templates('my_app_config')") == 1
        row = pdb.execute("SELECT id, type, intent, psql, pintent FROM alloydb_ai_nl.generated_templates_view").fetchone()
        assert row is not None and row[1] == "Template" and "$1" in row[3] and "$1" in row[4]
        pdb.execute("""
SELECT alloydb_ai_nl.update_generated_template(
  id => 1,
  manifest => 'How many clients are born in a given year?',
  nl => 'How many clients are born in 1997?',
  intent => 'How many clients are born in 1997?',
  pintent => 'How many clients are born in $1?'

);""")
        assert one(pdb, "SELECT alloydb_ai_nl.apply_generated_templates('my_app_config')") == 1
        assert one(pdb, "SELECT count(*) FROM alloydb_ai_nl.template_store_view "
                        "WHERE pintent = 'How many clients are born in $1?'") == 1
        assert one(pdb, "SELECT count(*) FROM alloydb_ai_nl.generated_templates_view") == 0
    finally:
        pdb.execute("DROP TABLE public.pg_stat_statements")


# -- live mode -----------------------------------------------------------------------------------


def _gemini(text: str) -> Reply:
    return Reply(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]})


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, CaptureServer]]:
    with CaptureServer() as server:
        emulator = start_emulator("--models", "live", "--vertex-base-url", server.url,
                                  "--google-project", "p", "--cache-size", "0")
        try:
            dsn = _new_database(emulator, "nl_live")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION alloydb_ai_nl CASCADE")
                conn.execute("CALL google_ml.create_model(model_id => 'gemini-2.0-flash', "
                             "model_provider => 'google', model_type => 'llm', "
                             "model_qualified_name => 'gemini-2.0-flash')")
                conn.execute("UPDATE google_ml.models SET auth_type = NULL WHERE id = 'gemini-2.0-flash'")
                conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)")
                conn.execute("INSERT INTO items VALUES (1, 'pen', 2), (2, 'book', 12)")
                conn.execute("COMMENT ON COLUMN items.price IS 'Price in euros'")
                conn.execute("SELECT alloydb_ai_nl.g_create_configuration('shop')")
                conn.execute("SELECT alloydb_ai_nl.g_manage_configuration('register_table_view', 'shop', "
                             "table_views_in => '{public.items}')")
                conn.execute("SELECT alloydb_ai_nl.g_manage_configuration('add_general_context', 'shop', "
                             "general_context_in => '{\"Cheap means a price under 5.\"}')")
            yield dsn, server
        finally:
            stop_emulator(emulator)


def test_live_get_sql_asks_gemini_and_retries_with_the_explain_error(
        live: tuple[str, CaptureServer]) -> None:
    dsn, server = live
    server.requests.clear()
    server.script(":generateContent",
                  _gemini("```sql\nSELECT cost FROM items\n```"),
                  _gemini("```sql\nSELECT name FROM items WHERE price < 5;\n```"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        answer = json.loads(one(conn, "SELECT alloydb_ai_nl.get_sql('shop', 'Which items are cheap?', "
                                      "'{\"verbose_mode\": true}')::text"))
        assert answer["sql"] == "SELECT name FROM items WHERE price < 5"
        assert answer["retries"] == 1 and answer["error_msg"] == ""
        assert conn.execute(answer["sql"]).fetchall() == [("pen",)]
    first, second = [r.json()["contents"][0]["parts"][0]["text"] for r in server.seen(":generateContent")]
    assert server.seen(":generateContent")[0].path.endswith("/models/gemini-2.0-flash:generateContent")
    for needed in ("public.items", "price numeric -- Price in euros", "Cheap means a price under 5.",
                   "[Question] Which items are cheap?"):
        assert needed in first
    assert 'column "cost" does not exist' in second and "SELECT cost FROM items" in second
    assert answer["prompt"] == second


def test_live_answer_that_writes_is_refused(live: tuple[str, CaptureServer]) -> None:
    dsn, server = live
    server.script(":generateContent", _gemini("DELETE FROM items"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        answer = json.loads(one(conn, "SELECT alloydb_ai_nl.get_sql('shop', 'Remove every item')::text"))
        assert answer["sql"] == "" and "not a query" in answer["error_msg"]
        assert one(conn, "SELECT count(*) FROM items") == 2


def test_live_check_intent_asks_gemini(live: tuple[str, CaptureServer]) -> None:
    dsn, server = live
    server.script(":generateContent", _gemini('{"answer": false, "reason": "it lists names, not prices"}'))
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="reason:it lists names, not prices"):
            conn.execute("SELECT alloydb_ai_nl.add_template('shop', 'What does a pen cost?', "
                         "'SELECT name FROM items WHERE name = ''pen''', check_intent => TRUE)")
        # Without the check, no model call: the template is parameterized by its literals.
        server.requests.clear()
        assert one(conn, "SELECT alloydb_ai_nl.add_template('shop', 'What does a pen cost?', "
                         "'SELECT price FROM items WHERE name = ''pen''')") is True
        assert server.seen(":generateContent") == []
        assert one(conn, "SELECT pintent FROM alloydb_ai_nl.template_store_view") == "What does a $1 cost?"


def test_live_schema_context_and_summary_come_from_gemini(live: tuple[str, CaptureServer]) -> None:
    dsn, server = live
    described = {"relation": "Things the shop sells.",
                 "columns": {"name": "What the item is called.", "price": "Its price in euros."}}
    server.requests.clear()
    server.script(":generateContent", _gemini(json.dumps(described)),
                  _gemini("SELECT count(*) AS items FROM items"), _gemini("The shop sells 2 items."))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT alloydb_ai_nl.generate_schema_context('shop', TRUE)")
        contexts: dict[str, str] = dict(conn.execute("SELECT schema_object, object_context "
                                     "FROM alloydb_ai_nl.generated_schema_context_view").fetchall())
        assert contexts == {"public.items": "Things the shop sells.",
                            "public.items.name": "What the item is called.",
                            "public.items.price": "Its price in euros."}
        summary = one(conn, "SELECT alloydb_ai_nl.get_sql_summary('shop', 'How many items are there?')")
        assert summary == {"answer": "The shop sells 2 items."}
    describe, _sql, summarize = [r.json() for r in server.seen(":generateContent")]
    assert describe["generationConfig"]["responseMimeType"] == "application/json"
    assert '"name": ["book", "pen"]' in describe["contents"][0]["parts"][0]["text"]  # sample values
    assert '[{"items": 2}]' in summarize["contents"][0]["parts"][0]["text"]  # the rows it summarizes
