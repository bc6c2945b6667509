"""AlloyDB's IVF index on the emulator: ``USING ivf`` with ``quantizer``, and ``ivf.probes``.

The statements are the ones Google's pages print (ai/create-ivf-index, ai/tune-indexes), with
the placeholders filled in. The index is a real one (pgvector's ivfflat under AlloyDB's name):
the planner uses it, and ``ivf.probes`` decides how many lists the scan reads.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from emulator.embedded import bin_dir
from proxy.scann import guc_int
from tests.support.databases import empty_database
from tests.support.emulators import Emulator

DB = "ivf_tests"
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = empty_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # as printed on ai/create-ivf-index
        cur = conn.execute("CREATE EXTENSION IF NOT EXISTS vector;")
        assert cur.statusmessage == "CREATE EXTENSION"
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3), emb_arr real[])")
        conn.execute(
            "INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.37)]::vector, "
            "ARRAY[sin(i), cos(i), sin(i * 0.37)]::real[] FROM generate_series(1, 3000) i")
        conn.execute("ANALYZE items")
    return dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[Conn]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def plan(conn: Conn, query: str) -> str:
    return "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + query).fetchall())


def test_the_access_method_comes_with_the_vector_extension(conn: Conn) -> None:
    cur = conn.execute("SHOW ivf.probes")  # declared by AlloyDB's vector: 1 before any SET
    assert cur.statusmessage == "SHOW" and cur.fetchall() == [("1",)]
    members = conn.execute(
        "SELECT pg_describe_object(d.classid, d.objid, 0) FROM pg_depend d "
        "JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'vector' "
        "WHERE d.deptype = 'e' AND pg_describe_object(d.classid, d.objid, 0) LIKE '%ivf%' "
        "AND pg_describe_object(d.classid, d.objid, 0) NOT LIKE '%ivfflat%' ORDER BY 1"
    ).fetchall()
    opclasses = [f"{kind} {t}_{d}_ops for access method ivf" for kind in
                 ("operator class", "operator family") for t in ("halfvec", "vector")
                 for d in ("cosine", "ip", "l2")]
    assert [r[0] for r in members] == ["access method ivf", *opclasses]


@pytest.mark.parametrize(("opclass", "operator", "quantizer"), [
    ("vector_l2_ops", "<->", "'SQ8'"), ("vector_ip_ops", "<#>", "'FLAT'"),
    ("vector_cosine_ops", "<=>", "sq8"),  # LangChain's IVFIndex writes a bare lowercase sq8
])
def test_an_ivf_index_serves_nearest_neighbour_queries_with_ivf_probes(
    conn: Conn, opclass: str, operator: str, quantizer: str
) -> None:
    name = f"items_ivf_{opclass}"
    cur = conn.execute(  # ai/create-ivf-index
        f"CREATE INDEX {name} ON items\n  USING ivf (embedding {opclass})\n"
        f"  WITH (lists = 20, quantizer = {quantizer});")
    assert cur.statusmessage == "CREATE INDEX"
    try:
        definition = (f"CREATE INDEX {name} ON public.items USING ivf (embedding {opclass}) "
                      "WITH (lists='20')")
        assert conn.execute("SELECT pg_get_indexdef(%s::regclass)", [name]).fetchone() == (
            definition,)
        query = f"SELECT id FROM items ORDER BY embedding {operator} '[0.3, 0.9, 0.1]' LIMIT 10"
        assert f"Index Scan using {name} on items" in plan(conn, query)
        with conn.transaction():
            cur = conn.execute("SET LOCAL ivf.probes = 20;")  # ai/tune-indexes: all lists
            assert cur.statusmessage == "SET"
            assert conn.execute("SHOW ivf.probes").fetchone() == ("20",)
            assert conn.execute("SHOW ivfflat.probes").fetchone() == ("20",)
            approx = [r[0] for r in conn.execute(query).fetchall()]
        assert conn.execute("SHOW ivfflat.probes").fetchone() == ("1",)  # LOCAL: ended
        conn.execute("SET enable_indexscan = off")
        exact = [r[0] for r in conn.execute(query).fetchall()]
        conn.execute("RESET enable_indexscan")
        assert approx == exact  # every list probed: the exact answer
    finally:
        conn.execute(f"DROP INDEX {name}")


def test_probes_decide_how_many_lists_are_read(conn: Conn) -> None:
    conn.execute("CREATE INDEX probes_idx ON items USING ivf (embedding vector_l2_ops) "
                 "WITH (lists = 50, quantizer = 'SQ8')")
    try:
        query = ("SELECT count(*) FROM (SELECT id FROM items "
                 "ORDER BY embedding <-> '[0.1, 0.2, 0.3]' LIMIT 3000) AS s")
        conn.execute("SET enable_seqscan = off")  # a whole table's LIMIT: the index all the same
        assert "probes_idx" in plan(conn, query)
        conn.execute("SET ivf.probes = 1")
        (one_list,) = conn.execute(query).fetchone()  # type: ignore[misc]
        conn.execute("SET ivf.probes = 50")
        assert conn.execute(query).fetchone() == (3000,)
        assert 0 < int(str(one_list)) < 3000  # one list of 50 holds a part of the rows
        cur = conn.execute("RESET ivf.probes")
        assert cur.statusmessage == "RESET"
        assert conn.execute("SHOW ivfflat.probes").fetchone() == ("1",)
    finally:
        conn.execute("RESET enable_seqscan")
        conn.execute("DROP INDEX probes_idx")


def test_a_database_default_for_probes_reaches_the_scan(conn: Conn, dsn: str) -> None:
    cur = conn.execute(f"ALTER DATABASE {DB} SET ivf.probes = 7")
    assert cur.statusmessage == "ALTER DATABASE"
    try:
        with psycopg.connect(dsn, autocommit=True) as fresh:
            fresh.execute("SELECT '[1]'::vector")  # pgvector loaded: its setting is real
            assert fresh.execute("SHOW ivf.probes").fetchone() == ("7",)
            assert fresh.execute("SHOW ivfflat.probes").fetchone() == ("7",)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="ivf.probes"):
            conn.execute(f"ALTER DATABASE {DB} SET ivf.probes = 0")
    finally:
        assert conn.execute(f"ALTER DATABASE {DB} RESET ivf.probes").statusmessage == (
            "ALTER DATABASE")
    with psycopg.connect(dsn, autocommit=True) as fresh:
        fresh.execute("SELECT '[1]'::vector")
        assert fresh.execute("SHOW ivfflat.probes").fetchone() == ("1",)


def test_the_real_array_form_and_concurrently(conn: Conn) -> None:
    """ai/create-ivf-index: a real[] column cast to vector; CONCURRENTLY also takes the options."""
    cur = conn.execute("CREATE INDEX arr_ivf ON items USING ivf (CAST(emb_arr AS vector(3)) "
                       "vector_l2_ops) WITH (lists = 10, quantizer = 'SQ8');")
    assert cur.statusmessage == "CREATE INDEX"
    cur = conn.execute("CREATE INDEX CONCURRENTLY cc_ivf ON items USING ivf "
                       "(embedding vector_cosine_ops) WITH (quantizer = 'FLAT', lists = 10)")
    assert cur.statusmessage == "CREATE INDEX"
    conn.execute("DROP INDEX arr_ivf, cc_ivf")


def test_more_than_2000_dimensions_gets_a_halfvec_index(conn: Conn) -> None:
    """A gemini-embedding-001 column (3,072 dimensions), which AlloyDB's SQ8 IVF index takes;
    pgvector's ivfflat takes 2,000: the index is built on a halfvec cast, with a NOTICE."""
    conn.execute("CREATE TABLE wide (id int, e vector(3072))")
    conn.execute("INSERT INTO wide SELECT i, array_fill(i::real, ARRAY[3072])::vector "
                 "FROM generate_series(1, 10) i")
    try:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        cur = conn.execute("CREATE INDEX wide_idx ON wide USING ivf (e vector_cosine_ops) "
                           "WITH (lists = 2, quantizer = 'SQ8')")
        assert cur.statusmessage == "CREATE INDEX"
        assert any("halfvec(3072)" in n for n in notices)
        definition = ("CREATE INDEX wide_idx ON public.wide USING ivf (((e)::halfvec(3072)) "
                      "halfvec_cosine_ops) WITH (lists='2')")
        assert conn.execute("SELECT pg_get_indexdef('wide_idx'::regclass)").fetchone() == (
            definition,)
        cur = conn.execute("CREATE INDEX ON wide USING ivf (e vector_cosine_ops) "
                           "WITH (lists = 2)")  # unnamed: PostgreSQL's choice of name
        assert cur.statusmessage == "CREATE INDEX"
        assert any("wide_e_idx was built" in n for n in notices)
        unnamed = ("CREATE INDEX wide_e_idx ON public.wide USING ivf (((e)::halfvec(3072)) "
                   "halfvec_cosine_ops) WITH (lists='2')")
        assert conn.execute("SELECT pg_get_indexdef('wide_e_idx'::regclass)").fetchone() == (
            unnamed,)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="2000 dimensions"):
            conn.execute("CREATE INDEX CONCURRENTLY wide_cc ON wide USING ivf "
                         "(e vector_cosine_ops) WITH (lists = 2)")  # no DO block, no fallback
    finally:
        conn.execute("DROP TABLE wide")


def test_invalid_options_and_settings_are_refused(conn: Conn) -> None:
    base = "CREATE INDEX bad_ivf ON items USING ivf (embedding vector_l2_ops) WITH "
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match='invalid value for enum option "quantizer": PQ') as error:
        conn.execute(base + "(lists = 10, quantizer = 'PQ')")
    assert error.value.diag.message_detail == 'Valid values are "SQ8" and "FLAT".'
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="specified more than once"):
        conn.execute(base + "(quantizer = 'SQ8', quantizer = 'FLAT')")
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match='unrecognized parameter "num_leaves"'):
        conn.execute(base + "(num_leaves = 10, quantizer = 'SQ8')")
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match='value 0 out of bounds for option "lists"'):
        conn.execute(base + "(lists = 0, quantizer = 'SQ8')")
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r'0 is outside the valid range for parameter "ivf.probes" '
                             r'\(1 .. 32768\)'):
        conn.execute("SET ivf.probes = 0")
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match='invalid value for parameter "ivf.probes": "many"'):
        conn.execute("SET ivf.probes = 'many'")
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'bad_ivf'").fetchone() == (
        0,)


@pytest.mark.parametrize("concurrently", ["", "CONCURRENTLY "])
def test_the_tuning_pages_scann_operator_class_names_are_refused_with_a_hint(
        conn: Conn, concurrently: str) -> None:
    """ai/tune-indexes prints `USING ivf (vector_column cosine)` (and `USING ivfflat
    (vector_column cosine)`, which stock pgvector refuses as well, under the names my-ivf-index
    and my-table, which no PostgreSQL accepts); ai/create-ivf-index, which defines the statement,
    lists only vector_l2_ops, vector_ip_ops and vector_cosine_ops. So `cosine` stays refused, with
    PostgreSQL's error and a HINT naming the operator class to write."""
    for scann_name, pgvector_name in [("cosine", "vector_cosine_ops"), ("l2", "vector_l2_ops"),
                                      ("dot_product", "vector_ip_ops")]:
        with pytest.raises(psycopg.errors.UndefinedObject) as refused:
            conn.execute(f"CREATE INDEX {concurrently}tuned ON items "
                         f"USING ivf (embedding {scann_name}) WITH (lists = 100, quantizer = 'SQ8')")
        assert refused.value.diag.message_primary == (
            f'operator class "{scann_name}" does not exist for access method "ivf"')
        assert pgvector_name in str(refused.value.diag.message_hint)
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'tuned'").fetchone() == (0,)


def test_probes_are_read_as_postgresql_reads_an_integer_setting(conn: Conn) -> None:
    """AlloyDB's vector declares ivf.probes an integer: `2.5` is 2 (rounded half to even),
    `0x10` is 16, `1_0` is refused, as PostgreSQL reads any integer setting (ivf.md's weak list:
    a fraction was refused)."""
    conn.execute("SELECT '[1]'::vector")  # pgvector loaded: ivfflat.probes is a real setting
    try:
        for written, read in [("2.5", "2"), ("3.5", "4"), ("'0x10'", "16"), ("1e2", "100")]:
            assert conn.execute(f"SET ivf.probes = {written}").statusmessage == "SET"
            assert conn.execute("SHOW ivfflat.probes").fetchone() == (read,)
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match='invalid value for parameter "ivf.probes": "1_0"'):
            conn.execute("SET ivf.probes = '1_0'")
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match=r'40000 is outside the valid range for parameter "ivf.probes"'):
            conn.execute("SET ivf.probes = 40000.4")
        assert conn.execute("SET scann.num_leaves_to_search = 1e2").statusmessage == "SET"
    finally:
        conn.execute("RESET ivf.probes")
        conn.execute("RESET scann.num_leaves_to_search")


def test_integer_settings_are_read_as_postgresql_reads_them(emulator: Emulator) -> None:
    """proxy/scann.py's guc_int against PostgreSQL's own parse_int, on a core integer setting
    without units (geqo_threshold, 2 ..), for texts of digits, signs, points, exponents, hex
    prefixes, spaces and underscores. Hexadecimal floats (`0x1.8`), which strtod reads, are
    not read by guc_int (refused): left out here, a documented gap."""
    with psycopg.connect(emulator.direct_dsn, autocommit=True) as direct:

        @settings(max_examples=150, deadline=None)
        @given(st.text(alphabet="0123456789xXeE.+- _", max_size=8))
        @example("-.0")  # strtol converts nothing: strtod is not asked
        @example(" .5")
        @example("2.5")
        @example("0x1f")
        def agree(text: str) -> None:
            assume(re.search(r"0[xX][0-9a-fA-F]*\.", text) is None)
            theirs: int | None
            try:
                with direct.transaction():
                    row = direct.execute("SELECT set_config('geqo_threshold', %s, true)",
                                         [text]).fetchone()
                    theirs = int(str(row[0])) if row else None
            except psycopg.errors.InvalidParameterValue as exc:
                below = re.match(r"(-?\d+) is outside the valid range", str(exc.diag.message_primary))
                theirs = int(below.group(1)) if below else None
            assert guc_int(text) == theirs

        agree()


def test_set_config_of_probes_reaches_the_scan_as_set_does(conn: Conn) -> None:
    """`SELECT set_config('ivf.probes', v, is_local)` sets pgvector's ivfflat.probes too, as SET
    does; the call answers the value as a declared integer setting does. Another function named
    set_config that the name resolves to is called as written."""
    conn.execute("CREATE INDEX config_idx ON items USING ivf (embedding vector_l2_ops) "
                 "WITH (lists = 50, quantizer = 'SQ8')")
    query = ("SELECT count(*) FROM (SELECT id FROM items "
             "ORDER BY embedding <-> '[0.1, 0.2, 0.3]' LIMIT 3000) AS s")
    try:
        conn.execute("SET enable_seqscan = off")
        assert conn.execute("SELECT set_config('ivf.probes', '1', false)").fetchone() == ("1",)
        (one_list,) = conn.execute(query).fetchone()  # type: ignore[misc]
        assert 0 < int(str(one_list)) < 3000
        # a parameter (the extended protocol), in the form pgvector keeps
        assert conn.execute("SELECT set_config('ivf.probes', %s, false) AS v",
                            ["50.4"]).fetchone() == ("50",)
        assert conn.execute(query).fetchone() == (3000,)
        assert conn.execute("SHOW ivf.probes").fetchone() == ("50",)
        with conn.transaction():
            conn.execute("SELECT pg_catalog.set_config('ivf.probes', '3', true)")
            assert conn.execute("SHOW ivfflat.probes").fetchone() == ("3",)
        assert conn.execute("SHOW ivfflat.probes").fetchone() == ("50",)
        with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
            conn.execute("SELECT set_config('ivf.probes', '0', false)")
        assert "ivf.probes is passed on to pgvector's ivfflat.probes" in str(
            refused.value.diag.message_hint)
        conn.execute("CREATE SCHEMA mine")
        conn.execute("CREATE FUNCTION mine.set_config(text, text, boolean) RETURNS text "
                     "LANGUAGE sql AS $$SELECT 'mine'$$")
        conn.execute("SET search_path = mine, pg_catalog, public")
        assert conn.execute("SELECT set_config('ivf.probes', '9', false)").fetchone() == ("mine",)
        assert conn.execute("SHOW ivfflat.probes").fetchone() == ("50",)
    finally:
        conn.execute("RESET search_path")
        conn.execute("DROP SCHEMA IF EXISTS mine CASCADE")
        conn.execute("RESET ivf.probes")
        conn.execute("RESET enable_seqscan")
        conn.execute("DROP INDEX config_idx")


def test_a_vector_created_without_the_proxy_gets_the_access_method_at_the_first_index(
    emulator: Emulator,
) -> None:
    """vector created on the server directly (or by CASCADE): the first IVF index a superuser
    creates through the proxy adds the access method, CONCURRENTLY too (in a prelude, a
    statement of the proxy's own sent just before it: proxy/session.py); a user who is not a
    superuser is told who can."""
    with emulator.connect() as admin:
        admin.execute('DROP DATABASE IF EXISTS "ivf_late" WITH (FORCE)')
        admin.execute('CREATE DATABASE "ivf_late"')
        admin.execute("DROP ROLE IF EXISTS ivf_user")
        admin.execute("CREATE ROLE ivf_user LOGIN")
    direct = emulator.direct_dsn.rsplit("/", 1)[0] + "/ivf_late"
    try:
        with psycopg.connect(direct, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE TABLE t (id int, e vector(2))")
            conn.execute("INSERT INTO t SELECT i, ARRAY[i, 1]::vector FROM generate_series(1, 20) i")
            conn.execute("GRANT CREATE ON SCHEMA public TO ivf_user")
            conn.execute("ALTER TABLE t OWNER TO ivf_user")
        user_dsn = emulator.dsn_for(user="ivf_user", dbname="ivf_late")
        with psycopg.connect(user_dsn, autocommit=True) as user:
            with pytest.raises(psycopg.errors.UndefinedObject,
                               match='access method "ivf" does not exist') as error:
                user.execute("CREATE INDEX t_ivf ON t USING ivf (e vector_l2_ops) "
                             "WITH (lists = 2, quantizer = 'SQ8')")
            assert "superuser" in str(error.value.diag.message_hint)
            with pytest.raises(psycopg.errors.UndefinedObject,
                               match='access method "ivf" does not exist') as error:
                user.execute("CREATE INDEX CONCURRENTLY t_ivf ON t USING ivf (e vector_l2_ops) "
                             "WITH (lists = 2, quantizer = 'SQ8')")
            assert "superuser" in str(error.value.diag.message_hint)
            assert error.value.diag.context is None
        with psycopg.connect(emulator.dsn_for(dbname="ivf_late"), autocommit=True) as conn:
            cur = conn.execute("CREATE INDEX CONCURRENTLY t_ivf ON t USING ivf (e vector_l2_ops) "
                               "WITH (lists = 2, quantizer = 'SQ8')")
            assert cur.statusmessage == "CREATE INDEX"
            assert conn.execute("SELECT indisvalid FROM pg_index "
                                "WHERE indexrelid = 't_ivf'::regclass").fetchone() == (True,)
        with psycopg.connect(user_dsn, autocommit=True) as user:
            cur = user.execute("CREATE INDEX t_ivf2 ON t USING ivf (e vector_ip_ops) "
                               "WITH (lists = 2)")
            assert cur.statusmessage == "CREATE INDEX"
        with psycopg.connect(emulator.dsn_for(dbname="ivf_late"), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.DependentObjectsStillExist):
                conn.execute("DROP EXTENSION vector")  # the ivf indexes depend on it
            conn.execute("DROP EXTENSION vector CASCADE")
            assert conn.execute("SELECT count(*) FROM pg_am WHERE amname = 'ivf'").fetchone() == (
                0,)
    finally:
        with emulator.connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "ivf_late" WITH (FORCE)')
            admin.execute("DROP ROLE IF EXISTS ivf_user")


def test_alloydb_scann_cascade_brings_vector_with_its_access_method(emulator: Emulator) -> None:
    """ai/create-scann-index installs vector with `CREATE EXTENSION IF NOT EXISTS alloydb_scann
    CASCADE;`, and AlloyDB's vector has the ivf access method (ai/create-ivf-index): a user who
    is not a superuser creates an IVF index right after (ivf.md's weak list: it waited for a
    superuser's first IVF index)."""
    with emulator.connect() as admin:
        admin.execute('DROP DATABASE IF EXISTS "ivf_cascade" WITH (FORCE)')
        admin.execute('CREATE DATABASE "ivf_cascade"')
        admin.execute("DROP ROLE IF EXISTS ivf_cascade_user")
        admin.execute("CREATE ROLE ivf_cascade_user LOGIN")
    try:
        with psycopg.connect(emulator.dsn_for(dbname="ivf_cascade"), autocommit=True) as conn:
            cur = conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_scann CASCADE;")
            assert cur.statusmessage == "CREATE EXTENSION"
            assert conn.execute("SELECT count(*) FROM pg_am WHERE amname = 'ivf'").fetchone() == (
                1,)
            conn.execute("CREATE TABLE t (id int, e vector(2))")
            conn.execute("INSERT INTO t SELECT i, ARRAY[i, 1]::vector FROM generate_series(1, 9) i")
            conn.execute("ALTER TABLE t OWNER TO ivf_cascade_user")
            conn.execute("GRANT CREATE ON SCHEMA public TO ivf_cascade_user")
        user_dsn = emulator.dsn_for(user="ivf_cascade_user", dbname="ivf_cascade")
        with psycopg.connect(user_dsn, autocommit=True) as user:
            cur = user.execute("CREATE INDEX t_ivf ON t USING ivf (e vector_cosine_ops) "
                               "WITH (lists = 2, quantizer = 'SQ8')")
            assert cur.statusmessage == "CREATE INDEX"
    finally:
        with emulator.connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "ivf_cascade" WITH (FORCE)')
            admin.execute("DROP ROLE IF EXISTS ivf_cascade_user")


def test_without_vector_postgresql_answers_as_usual(emulator: Emulator) -> None:
    with emulator.connect() as admin:
        admin.execute('DROP DATABASE IF EXISTS "ivf_absent" WITH (FORCE)')
        admin.execute('CREATE DATABASE "ivf_absent"')
    try:
        with psycopg.connect(emulator.dsn_for(dbname="ivf_absent"), autocommit=True) as conn:
            conn.execute("CREATE TABLE plain (e int)")
            with pytest.raises(psycopg.errors.UndefinedObject,
                               match='access method "ivf" does not exist') as error:
                conn.execute("CREATE INDEX ON plain USING ivf (e) "
                             "WITH (lists = 1, quantizer = 'SQ8')")
            assert "CREATE EXTENSION vector" in str(error.value.diag.message_hint)
            with pytest.raises(psycopg.errors.UndefinedObject,
                               match='unrecognized configuration parameter "ivf.probes"'):
                conn.execute("SHOW ivf.probes")
            cur = conn.execute("SET ivf.probes = 3")  # a placeholder, as on stock PostgreSQL
            assert cur.statusmessage == "SET"
            assert conn.execute("SHOW ivf.probes").fetchone() == ("3",)
            assert conn.execute("SELECT set_config('ivf.probes', 'x', false)").fetchone() == (
                "x",)  # and nothing else set
            with pytest.raises(psycopg.errors.UndefinedObject,
                               match='unrecognized configuration parameter "ivfflat.probes"'):
                conn.execute("SHOW ivfflat.probes")
    finally:
        with emulator.connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "ivf_absent" WITH (FORCE)')


def test_measure_vector_query_recall_of_an_ivf_index(conn: Conn) -> None:
    """ai/measure-vector-query-recall with index method 'ivf': its configurations' ivf.probes
    reach the emulated scan (ivfflat.probes) for the call only."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_scann")
    conn.execute("CREATE INDEX recall_ivf ON items USING ivf (embedding vector_l2_ops) "
                 "WITH (lists = 50, quantizer = 'SQ8')")
    try:
        query = "$$SELECT id FROM items ORDER BY embedding <-> '[0.1, 0.2, 0.3]' LIMIT 3000$$"
        recall = {}
        for probes in (1, 50):
            (recall[probes],) = conn.execute(  # type: ignore[misc]
                f"SELECT recall FROM evaluate_query_recall({query}, "
                f"""'{{"ivf.probes": {probes}, "enable_seqscan": "off"}}', ARRAY['ivf'])"""
            ).fetchone()
        assert recall[50] == 1
        assert float(str(recall[1])) < 1  # one list of 50
        assert conn.execute("SHOW ivfflat.probes").fetchone() == ("1",)
    finally:
        conn.execute("DROP INDEX recall_ivf")


def test_pg_dump_and_restore_through_the_proxy(emulator: Emulator) -> None:
    """The access method is vector's, so pg_dump leaves it out, as it leaves out pgvector's
    objects; restoring through the proxy brings it back with CREATE EXTENSION vector."""
    databases = ("ivf_dump_src", "ivf_dump_dst")
    with emulator.connect() as admin:
        for name in databases:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        with psycopg.connect(emulator.dsn_for(dbname=databases[0]), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE TABLE docs (id int, embedding vector(2))")
            conn.execute("INSERT INTO docs SELECT i, ARRAY[i, 1] FROM generate_series(1, 50) i")
            conn.execute("CREATE INDEX docs_ivf ON docs USING ivf (embedding vector_cosine_ops) "
                         "WITH (lists = 5, quantizer = 'SQ8')")
        dump = subprocess.run(
            [str(bin_dir() / "pg_dump"), "-d", emulator.dsn_for(dbname=databases[0])],
            capture_output=True, text=True, timeout=60, env=env, check=True).stdout
        assert "USING ivf (embedding public.vector_cosine_ops) WITH (lists='5')" in dump
        assert "ACCESS METHOD" not in dump and "OPERATOR CLASS" not in dump
        restore = subprocess.run(
            [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-d", emulator.dsn_for(dbname=databases[1])],
            input=dump, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert restore.returncode == 0, restore.stderr
        with psycopg.connect(emulator.dsn_for(dbname=databases[1]), autocommit=True) as conn:
            assert conn.execute(
                "SELECT a.amname, c.reloptions FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                "WHERE c.relname = 'docs_ivf'").fetchone() == ("ivf", ["lists=5"])
            assert conn.execute("SELECT count(*) FROM docs").fetchone() == (50,)
    finally:
        with emulator.connect() as admin:
            for name in databases:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_vector_in_a_schema_off_the_search_path(emulator: Emulator) -> None:
    with emulator.connect() as admin:
        admin.execute('DROP DATABASE IF EXISTS "ivf_schema" WITH (FORCE)')
        admin.execute('CREATE DATABASE "ivf_schema"')
    try:
        with psycopg.connect(emulator.dsn_for(dbname="ivf_schema"), autocommit=True) as conn:
            conn.execute('CREATE SCHEMA "Ext"')
            conn.execute('CREATE EXTENSION vector SCHEMA "Ext"')
            conn.execute('CREATE TABLE t (id int, e "Ext".vector(2))')
            conn.execute("INSERT INTO t SELECT i, ARRAY[i, 1] FROM generate_series(1, 20) i")
            cur = conn.execute('CREATE INDEX t_ivf ON t USING ivf (e "Ext".vector_l2_ops) '
                               "WITH (lists = 2, quantizer = 'SQ8')")
            assert cur.statusmessage == "CREATE INDEX"
            assert conn.execute("SHOW ivf.probes").fetchone() == ("1",)
            conn.execute("SET ivf.probes = 2")
            assert conn.execute("SHOW ivfflat.probes").fetchone() == ("2",)
    finally:
        with emulator.connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "ivf_schema" WITH (FORCE)')
