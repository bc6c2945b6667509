"""AlloyDB's parameterized secure views on the emulator: the ``parameterized_views`` extension,
``CREATE VIEW ... $@name`` through the proxy, ``execute_parameterized_query``.

The statements are the tutorial's (alloydb/docs/secure-app-data-parameterized-secure-views and
manage-application-data-security-parameterized-secure-views): its table, its rows, its view, its
``psv_user`` role, its call. They run through the real proxy with psycopg and asyncpg.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.support.databases import empty_database
from tests.support.emulators import Emulator

DB = "pviews_tests"
Conn = psycopg.Connection[tuple[object, ...]]

TUTORIAL_VIEW = """CREATE VIEW store.secure_checked_items WITH (security_barrier) AS
SELECT bag_id, timestamp, location
FROM store.checked_items t
WHERE customer_id = $@app_end_userid;"""

TUTORIAL_CALL = """SELECT * FROM parameterized_views.execute_parameterized_query(
  query => 'SELECT * from store.secure_checked_items',
  param_names => ARRAY ['app_end_userid'],
  param_values => ARRAY ['303']
);"""


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = empty_database(emulator, DB)
    with emulator.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS psv_user")
        admin.execute("CREATE ROLE psv_user WITH LOGIN")
    with psycopg.connect(dsn, autocommit=True) as conn:
        # as set-up scripts write it ("required for Toolbox")
        cur = conn.execute("CREATE EXTENSION IF NOT EXISTS parameterized_views CASCADE")
        assert cur.statusmessage == "CREATE EXTENSION"
        conn.execute("CREATE SCHEMA store")
        conn.execute(
            "CREATE TABLE store.checked_items(bag_id INT,timestamp TIMESTAMP, loc_code CHAR(3), "
            "scan_type CHAR(1), location TEXT, customer_id INT)")
        conn.execute("""INSERT INTO store.checked_items (bag_id, timestamp, loc_code, scan_type, location, customer_id) VALUES
(101, '2023-10-26 10:00:00', 'ABC', 'I', 'Warehouse A', 123),
(102, '2023-10-26 10:15:30', 'DEF', 'O', 'Loading Dock B', 456),
(103, '2023-10-26 10:30:45', 'GHI', 'I', 'Conveyor Belt 1', 789),
(104, '2023-10-26 11:00:00', 'JKL', 'O', 'Shipping Area C', 101),
(105, '2023-10-26 11:45:15', 'MNO', 'I', 'Sorting Station D', 202),
(106, '2023-10-26 12:00:00', 'PQR', 'O', 'Truck Bay E', 303);""")
        cur = conn.execute(TUTORIAL_VIEW)
        assert cur.statusmessage == "CREATE VIEW"
        conn.execute("GRANT SELECT ON store.secure_checked_items TO psv_user;")
        conn.execute("GRANT USAGE ON SCHEMA store TO psv_user;")
        conn.execute("REVOKE ALL PRIVILEGES ON store.checked_items FROM psv_user;")
    return dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[Conn]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def psv_conn(emulator: Emulator, dsn: str) -> Iterator[Conn]:
    with psycopg.connect(emulator.dsn_for(user="psv_user", dbname=DB),
                         autocommit=True) as connection:
        yield connection


def test_the_tutorials_call_returns_only_the_users_rows_as_json(psv_conn: Conn) -> None:
    cur = psv_conn.execute(TUTORIAL_CALL)
    assert cur.description is not None and [d.name for d in cur.description] == ["json_results"]
    assert cur.fetchall() == [({"bag_id": 106, "timestamp": "2023-10-26T12:00:00",
                                "location": "Truck Bay E"},)]


def test_the_role_cannot_read_the_base_table(psv_conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="permission denied for table checked_items"):
        psv_conn.execute("SELECT * FROM store.checked_items;")


def test_each_value_selects_its_own_rows_and_the_query_may_shape_them(psv_conn: Conn) -> None:
    rows = psv_conn.execute(
        "SELECT json_results FROM parameterized_views.execute_parameterized_query("
        "query => 'SELECT count(*) AS n, min(location) AS first FROM store.secure_checked_items;',"
        " param_names => ARRAY['app_end_userid'], param_values => ARRAY[%s])", ["123"]).fetchall()
    assert rows == [({"n": 1, "first": "Warehouse A"},)]
    rows = psv_conn.execute(
        "SELECT * FROM parameterized_views.execute_parameterized_query("
        "query => 'SELECT bag_id FROM store.secure_checked_items',"
        " param_names => ARRAY['app_end_userid'], param_values => ARRAY['999'])").fetchall()
    assert rows == []


def test_the_view_stores_the_parameter_as_the_type_it_is_compared_with(conn: Conn) -> None:
    definition = conn.execute(
        "SELECT pg_get_viewdef('store.secure_checked_items'::regclass)").fetchone()
    assert definition is not None
    assert "parameterized_views._view_parameter('app_end_userid'::text)" in str(definition[0])
    assert "::integer" in str(definition[0])
    options = conn.execute(
        "SELECT reloptions FROM pg_class WHERE oid = 'store.secure_checked_items'::regclass"
    ).fetchone()
    assert options == (["security_barrier=true"],)


def test_the_view_read_directly_has_no_value_to_use(psv_conn: Conn) -> None:
    with pytest.raises(psycopg.errors.UndefinedParameter,
                       match=r"no value for the view parameter \$@app_end_userid"):
        psv_conn.execute("SELECT * FROM store.secure_checked_items")
    with pytest.raises(psycopg.errors.UndefinedParameter):
        psv_conn.execute(  # a call that does not name the view's parameter
            "SELECT * FROM parameterized_views.execute_parameterized_query("
            "'SELECT * FROM store.secure_checked_items', ARRAY[]::text[], ARRAY[]::text[])")


def test_what_trails_the_one_query_is_ignored(psv_conn: Conn) -> None:
    # One statement, as a parse sees it: semicolons and comments after it are not a second
    # statement (SQL generated from natural language often ends so).
    call = ("SELECT json_results FROM parameterized_views.execute_parameterized_query("
            "%s, ARRAY['app_end_userid'], ARRAY['303'])")
    for query in ["SELECT bag_id FROM store.secure_checked_items; -- the user's bags",
                  "SELECT bag_id FROM store.secure_checked_items;\n/* generated */\n",
                  "SELECT bag_id FROM store.secure_checked_items;;\n",
                  "-- the user's bags\nSELECT bag_id FROM store.secure_checked_items -- all\n"]:
        assert psv_conn.execute(call, [query]).fetchall() == [({"bag_id": 106},)], query
    # a literal that looks like a comment is kept as written
    assert psv_conn.execute(call, ["SELECT ';--' AS s;"]).fetchall() == [({"s": ";--"},)]
    # a second statement stays refused, with PostgreSQL's message for the query as written
    with pytest.raises(psycopg.errors.SyntaxError, match='at or near ";"') as info:
        psv_conn.execute(call, ["SELECT 1; SELECT 2; -- two"])
    assert info.value.diag.message_hint and "one read-only query" in info.value.diag.message_hint


def test_the_query_can_change_nothing(conn: Conn) -> None:
    conn.execute("CREATE SEQUENCE IF NOT EXISTS store.seq")
    for query, error in [
        ("DELETE FROM store.checked_items", psycopg.errors.SyntaxError),
        ("SELECT 1; DELETE FROM store.checked_items", psycopg.errors.SyntaxError),
        ("WITH d AS (DELETE FROM store.checked_items RETURNING *) SELECT * FROM d",
         psycopg.errors.FeatureNotSupported),
        ("SELECT nextval('store.seq')", psycopg.errors.ReadOnlySqlTransaction),
    ]:
        with pytest.raises(error):
            conn.execute("SELECT * FROM parameterized_views.execute_parameterized_query("
                         "%s, ARRAY[]::text[], ARRAY[]::text[])", [query])
    count = conn.execute("SELECT count(*) FROM store.checked_items").fetchone()
    assert count == (6,)


def test_the_query_cannot_change_the_values(psv_conn: Conn) -> None:
    """An injected query that tries to give the view other values first (a FROM item the
    planner runs before the view, a second call) still reads the caller's user's rows only."""
    forged = '{"app_end_userid": "123"}'
    for query in [
        ("SELECT v.bag_id FROM (SELECT set_config('parameterized_views.app_end_userid', '123', "
         "true), set_config('parameterized_views._values', '" + forged + "', true)) AS s, "
         "store.secure_checked_items AS v"),
        ("SELECT bag_id FROM store.secure_checked_items WHERE bag_id IN (SELECT (j->>'bag_id')::int "
         "FROM parameterized_views.execute_parameterized_query('SELECT bag_id FROM "
         "store.secure_checked_items', ARRAY['app_end_userid'], ARRAY['123']) AS j)"),
    ]:
        try:
            rows = psv_conn.execute(
                "SELECT * FROM parameterized_views.execute_parameterized_query("
                "%s, ARRAY['app_end_userid'], ARRAY['303'])", [query]).fetchall()
        except psycopg.errors.DuplicateCursor:  # the second call: refused
            continue
        assert rows in ([({"bag_id": 106},)], []), query


def test_the_values_and_read_only_mode_end_with_the_call(conn: Conn) -> None:
    with conn.transaction():
        conn.execute(TUTORIAL_CALL)
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("off",)
        conn.execute("CREATE TEMP TABLE after_the_call (i int)")  # writes still allowed
        with pytest.raises(psycopg.errors.UndefinedParameter), conn.transaction():
            conn.execute("SELECT * FROM store.secure_checked_items")  # the values are gone


def test_a_read_only_transaction_can_call_it(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        assert conn.execute(TUTORIAL_CALL).fetchall() == [
            ({"bag_id": 106, "timestamp": "2023-10-26T12:00:00", "location": "Truck Bay E"},)]


def test_bad_parameter_arrays_are_refused(conn: Conn) -> None:
    for names, values in [("ARRAY['a']", "ARRAY[]::text[]"), ("NULL", "ARRAY['1']"),
                          ("ARRAY['a b']", "ARRAY['1']"), ("ARRAY['a', 'a']", "ARRAY['1', '2']"),
                          ("ARRAY['a$b']", "ARRAY['1']")]:
        with pytest.raises(psycopg.errors.RaiseException, match="Invalid PSV named parameters"):
            conn.execute("SELECT * FROM parameterized_views.execute_parameterized_query("
                         f"'SELECT 1', {names}, {values})")


def test_names_are_case_sensitive_and_several_parameters_get_their_types(conn: Conn) -> None:
    cur = conn.execute("""CREATE OR REPLACE VIEW store.by_place WITH (security_barrier) AS
        SELECT bag_id FROM store.checked_items
        WHERE loc_code = $@Code AND customer_id = $@code AND timestamp >= $@since
          AND location LIKE '%' || $@Code || '%' IS NOT NULL""")
    assert cur.statusmessage == "CREATE VIEW"
    rows = conn.execute(
        "SELECT json_results FROM parameterized_views.execute_parameterized_query("
        "'SELECT * FROM store.by_place', ARRAY['Code', 'code', 'since'],"
        " ARRAY['PQR', '303', '2023-10-26 11:59'])").fetchall()
    assert rows == [({"bag_id": 106},)]


def test_a_parameter_whose_type_cannot_be_inferred_is_named(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.IndeterminateDatatype, match=r"\$@who"):
        conn.execute("CREATE VIEW store.untyped AS SELECT $@who IS NULL AS nobody")
    cur = conn.execute("CREATE VIEW store.typed AS SELECT $@who::int IS NULL AS nobody, $@who")
    assert cur.statusmessage == "CREATE VIEW"
    rows = conn.execute("SELECT json_results FROM parameterized_views.execute_parameterized_query("
                        "'SELECT * FROM store.typed', ARRAY['who'], ARRAY['7'])").fetchall()
    # the first place decides the type; alone in a select list, a parameter is "?column?"
    assert rows == [({"nobody": False, "?column?": 7},)]
    cur = conn.execute("CREATE VIEW store.text_value AS SELECT $@who AS who")  # unknown: text
    rows = conn.execute("SELECT json_results FROM parameterized_views.execute_parameterized_query("
                        "'SELECT * FROM store.text_value', ARRAY['who'], ARRAY['7'])").fetchall()
    assert rows == [({"who": "7"},)]


def test_a_script_of_several_statements_creates_each_view(conn: Conn) -> None:
    # a set-up script sent whole (psql -c, a notebook's conn.execute(script)), as a finance demo
    # creates its two views
    cur = conn.execute("""CREATE VIEW store.by_customer AS
        SELECT bag_id FROM store.checked_items WHERE customer_id = $@who;
    GRANT SELECT ON store.by_customer TO psv_user;
    -- the second one
    CREATE VIEW store.by_place_code WITH (security_barrier) AS
        SELECT bag_id FROM store.checked_items WHERE loc_code = $@code;""")
    tags = [cur.statusmessage]
    while cur.nextset():
        tags.append(cur.statusmessage)
    assert tags == ["CREATE VIEW", "GRANT", "CREATE VIEW"]
    for view, name, value, bag in (("by_customer", "who", "456", 102),
                                   ("by_place_code", "code", "JKL", 104)):
        rows = conn.execute(
            "SELECT json_results FROM parameterized_views.execute_parameterized_query("
            "%s, ARRAY[%s], ARRAY[%s])", (f"SELECT * FROM store.{view}", name, value)).fetchall()
        assert rows == [({"bag_id": bag},)]
    # a DO block of the client's before a view: left as it came (PostgreSQL's syntax error)
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("DO $$ BEGIN END $$; "
                     "CREATE VIEW store.after_do AS SELECT 1 AS one WHERE 1 = $@x")


def test_view_parameters_outside_a_view_are_a_syntax_error(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("SELECT * FROM store.checked_items WHERE customer_id = $@app_end_userid")


def test_asyncpg_creates_and_queries_as_the_toolbox_does(emulator: Emulator, dsn: str) -> None:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(emulator.dsn_for(dbname=DB))
        try:
            status = await conn.execute(
                "CREATE OR REPLACE VIEW store.mine WITH (security_barrier) AS "
                "SELECT bag_id, location FROM store.checked_items WHERE customer_id = $@userid")
            assert status == "CREATE VIEW"
            records = list(await conn.fetch(
                "SELECT * FROM parameterized_views.execute_parameterized_query("
                "$1, param_names => ARRAY['userid'], param_values => ARRAY[$2])",
                "SELECT location FROM store.mine", "456"))
            # the MCP Toolbox's alloydb-ai-nl statement for a tool without parameters, verbatim
            records += await conn.fetch(
                "SELECT * FROM parameterized_views.execute_parameterized_query(query => $1, "
                "param_names =>ARRAY[]::TEXT[], param_values => ARRAY[]::TEXT[]);",
                "SELECT count(*) AS bags FROM store.checked_items")
            return records
        finally:
            await conn.close()

    records = asyncio.run(run())
    assert [json.loads(r["json_results"]) for r in records] == [{"location": "Loading Dock B"},
                                                                 {"bags": 6}]


def test_the_flag_off_refuses_the_extension(emulator: Emulator, dsn: str) -> None:
    with psycopg.connect(emulator.dsn_for(dbname=DB), autocommit=True) as conn:
        assert conn.execute("SHOW parameterized_views.enabled").fetchone() == ("on",)
        conn.execute("SET parameterized_views.enabled = off")
        assert conn.execute("SHOW parameterized_views.enabled").fetchone() == ("off",)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match="parameterized views are not enabled"):
            conn.execute("SELECT * FROM parameterized_views.execute_parameterized_query("
                         "'SELECT 1', ARRAY[]::text[], ARRAY[]::text[])")
        conn.execute("DROP EXTENSION parameterized_views CASCADE")
        try:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                conn.execute("CREATE EXTENSION parameterized_views")
        finally:
            conn.execute("RESET parameterized_views.enabled")
            conn.execute("CREATE EXTENSION parameterized_views")
            conn.execute(TUTORIAL_VIEW.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
            conn.execute("GRANT SELECT ON store.secure_checked_items TO psv_user;")


def test_a_view_with_parameters_needs_the_extension(emulator: Emulator) -> None:
    # the postgres database: no parameterized_views there
    with emulator.connect() as conn, pytest.raises(psycopg.errors.SyntaxError,
                                                   match="parameterized_views extension"):
        conn.execute("CREATE VIEW pv_no_extension AS SELECT 1 WHERE 1 = $@x")


def test_alloydb_ai_nl_passes_its_parameters_to_the_views(emulator: Emulator, dsn: str) -> None:
    """alloydb_ai_nl's execute_nl_query(..., param_names, param_values), as the MCP Toolbox's
    alloydb-ai-nl tool calls it with nlConfigParameters, reads a parameterized secure view."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl CASCADE")
        conn.execute("SELECT alloydb_ai_nl.g_create_configuration('bags_cfg')")
        conn.execute("SELECT alloydb_ai_nl.g_manage_configuration(operation => 'register_table_view', "
                     "configuration_id_in => 'bags_cfg', "
                     "table_views_in => '{store.secure_checked_items}')")
        conn.execute("SELECT alloydb_ai_nl.add_template(nl_config_id => 'bags_cfg', "
                     "intent => 'Where is my bag?', "
                     "sql => 'SELECT location FROM store.secure_checked_items', check_intent => false)")
        rows = conn.execute(
            "SELECT alloydb_ai_nl.execute_nl_query(nl_question => %s, nl_config_id => %s, "
            "param_names => ARRAY['app_end_userid'], param_values => ARRAY[%s])",
            ["Where is my bag?", "bags_cfg", "456"]).fetchall()
        assert rows == [({"location": "Loading Dock B"},)]
        summary = conn.execute(
            "SELECT alloydb_ai_nl.get_sql_summary(nl_config_id => 'bags_cfg', "
            "nl_question => 'Where is my bag?', param_names => ARRAY['app_end_userid'], "
            "param_values => ARRAY['123'])").fetchone()
        assert summary is not None and "Warehouse A" in str(summary[0])
        assert "Loading Dock B" not in str(summary[0])
        with pytest.raises(psycopg.errors.UndefinedParameter):  # the view needs its value
            conn.execute("SELECT alloydb_ai_nl.execute_nl_query(nl_question => 'Where is my bag?', "
                         "nl_config_id => 'bags_cfg')")
