"""alloydb_scann: AlloyDB's ScaNN index on the emulator (pgvector's HNSW under AlloyDB's names).

The statements are the ones Google's pages print (ai/create-scann-index,
ai/maintain-vector-indexes, ai/run-hybrid-vector-similarity-search,
troubleshoot/troubleshoot-scann-indexes), with the placeholders filled in, and the SQL of
Google's ScaNN benchmark notebook (python-docs-samples). The index must be a real one: the planner uses it for ``ORDER BY col <=> q LIMIT k``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.databases import empty_database, fresh_database
from tests.support.emulators import Emulator

DB = "scann_tests"


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = empty_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # as printed on ai/create-scann-index: CASCADE installs pgvector too
        cur = conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_scann CASCADE;")
        assert cur.statusmessage == "CREATE EXTENSION"
        conn.execute("CREATE EXTENSION google_ml_integration")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3), emb_arr real[])")
        conn.execute(
            "INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.37)]::vector, "
            "ARRAY[sin(i), cos(i), sin(i * 0.37)]::real[] FROM generate_series(1, 3000) i")
        conn.execute("ANALYZE items")
    return dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def index_of(conn: psycopg.Connection[tuple[object, ...]], query: str) -> str:
    plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + query).fetchall())
    return plan


def indexconfig(conn: psycopg.Connection[tuple[object, ...]], index: str) -> list[str]:
    """The index's options as pg_stat_ann_indexes shows them."""
    row = conn.execute("SELECT indexconfig FROM pg_stat_ann_indexes WHERE indexrelname = %s",
                       (index,)).fetchone()
    assert row is not None
    return [str(o) for o in row[0]]  # type: ignore[attr-defined]


def test_extension_version_and_requirement(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT extname, extversion FROM pg_extension WHERE extname IN ('alloydb_scann', 'vector') "
        "ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["alloydb_scann", "vector"]
    assert rows[0][1] == "0.1.3"
    opclasses = {r[0] for r in conn.execute(
        "SELECT opcname FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod "
        "WHERE a.amname = 'scann'").fetchall()}
    assert {"cosine", "l2", "dot_product", "dot_prod"} <= opclasses


@pytest.mark.parametrize(("opclass", "operator"), [("cosine", "<=>"), ("l2", "<->"),
                                                    ("dot_product", "<#>")])
def test_a_scann_index_serves_nearest_neighbour_queries(
    conn: psycopg.Connection[tuple[object, ...]], opclass: str, operator: str
) -> None:
    name = f"items_{opclass}_idx"
    cur = conn.execute(  # the two-level tree index of ai/create-scann-index
        f"CREATE INDEX {name} ON items\n       USING scann (embedding {opclass})\n"
        "WITH (num_leaves = 20, quantizer = 'SQ8');")
    assert cur.statusmessage == "CREATE INDEX"
    try:
        query = f"SELECT id FROM items ORDER BY embedding {operator} '[0.3, 0.9, 0.1]' LIMIT 5"
        assert f"Index Scan using {name} on items" in index_of(conn, query)
        approx = [r[0] for r in conn.execute(query).fetchall()]
        conn.execute("SET enable_indexscan = off")
        exact = [r[0] for r in conn.execute(query).fetchall()]
        conn.execute("RESET enable_indexscan")
        assert approx == exact  # a small table: HNSW finds the true neighbours
    finally:
        conn.execute(f"DROP INDEX {name}")


@pytest.mark.parametrize("statement", [
    # ai/create-scann-index, each form with its placeholders filled in
    "CREATE INDEX {name} ON items\n       USING scann (embedding cosine)",
    ("CREATE INDEX {name} ON items\n       USING scann (embedding cosine)\n"
    "WITH (MODE='AUTO',\n      OPTIMIZATION='BALANCED',\n      auto_maintenance='OFF')"),
    ("CREATE INDEX {name} ON items\n       USING scann (embedding l2)\nWITH (mode='MANUAL',\n"
    "      num_leaves=10,\n      quantizer=FLAT,\n      auto_maintenance=ON);"),
    ("CREATE INDEX {name} ON items\n       USING scann (embedding dot_product)\n"
    "WITH (mode='MANUAL',\n      num_leaves=10,\n      quantizer=AH,\n"
    "      auto_maintenance=OFF,\n      max_num_levels = 2);"),
    "CREATE INDEX {name} ON items\nUSING scann (CAST(emb_arr AS vector(3)) cosine)",
    # ai/maintain-vector-indexes (mode written without quotes)
    ("CREATE INDEX {name} ON items \\\nUSING scann ( embedding cosine ) \\\n"
    "WITH ( mode = MANUAL , num_leaves = 12 , auto_maintenance = on );"),
    # ai/maintain-vector-indexes: an automatically tuned index without maintenance
    ("CREATE INDEX {name} ON items\n       USING scann (embedding cosine)\n"
     "WITH (MODE = 'AUTOMATIC', auto_maintenance = 'OFF');"),
    # LangChain's ScaNNIndex (quantizer unquoted, `dot_prod`)
    ('CREATE INDEX  "{name}" ON "public"."items" USING ScaNN (embedding dot_prod) '
     "WITH (num_leaves = 5, quantizer = sq8)  ;"),
])
def test_documented_index_statements_run(
    conn: psycopg.Connection[tuple[object, ...]], statement: str
) -> None:
    sql = statement.format(name="doc_idx").replace("\\\n", "\n")
    cur = conn.execute(sql)
    assert cur.statusmessage == "CREATE INDEX"
    (am,) = conn.execute(  # type: ignore[misc]
        "SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
        "WHERE c.relname = 'doc_idx'").fetchone()
    conn.execute("DROP INDEX doc_idx")
    assert am == "scann"


FOUR_LEVELS = ("CREATE INDEX {concurrently} four_levels ON items USING scann (embedding cosine) "
               "WITH (mode='MANUAL', num_leaves=10, quantizer=SQ8, max_num_levels = 3)")


@pytest.mark.parametrize("concurrently", ["", "CONCURRENTLY"])
def test_a_four_level_index_needs_the_preview_setting_first(
        conn: psycopg.Connection[tuple[object, ...]], concurrently: str) -> None:
    # ai/tune-indexes: "To use four-level indexes, you must first enable the Preview feature":
    # the flag scann.enable_preview_features, or SET scann.max_allowed_num_levels = 3 (the
    # scann-index reference: "you must also set scann.max_allowed_num_levels to 3")
    statement = FOUR_LEVELS.format(concurrently=concurrently)
    with pytest.raises(psycopg.errors.FeatureNotSupported) as caught:
        conn.execute(statement)
    assert "SET scann.max_allowed_num_levels = 3" in (caught.value.diag.message_hint or "")
    assert conn.execute("SELECT to_regclass('four_levels')").fetchone() == (None,)
    for setting in ("scann.max_allowed_num_levels = 3", "scann.enable_preview_features = on"):
        conn.execute(f"SET {setting}")
        try:
            assert conn.execute(statement).statusmessage == "CREATE INDEX"
            conn.execute("DROP INDEX four_levels")
        finally:
            conn.execute("RESET ALL")
    conn.execute("SET scann.max_allowed_num_levels = 2")
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute(statement)
    conn.execute("RESET ALL")


def test_auto_maintenance_of_an_index_whose_name_does_not_say_scann(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    # ai/maintain-vector-indexes: "ALTER INDEX INDEX_NAME SET (auto_maintenance =
    # AUTOMATIC_MAINTENANCE);" on the page's own index, similarity_index. The option is AlloyDB's
    # and pgvector's handler refuses it ("unrecognized parameter"), so the proxy must see the
    # statement even when no word of it is "scann".
    conn.execute("CREATE INDEX similarity_index ON items USING scann (embedding cosine) "
                 "WITH (MODE = 'AUTOMATIC', auto_maintenance = 'OFF')")
    try:
        for value in ("on", "off"):
            cur = conn.execute(f"ALTER INDEX similarity_index SET (auto_maintenance = {value});")
            assert cur.statusmessage == "ALTER INDEX"
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="boolean option"):
            conn.execute("ALTER INDEX similarity_index SET (auto_maintenance = often)")
    finally:
        conn.execute("DROP INDEX similarity_index")


def test_scann_options_of_an_index_whose_name_does_not_say_scann(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    # As auto_maintenance above: ALTER INDEX ... SET (num_leaves | quantizer | max_num_levels)
    # names no "scann" when the index's name does not, and pgvector's handler refuses them
    # (22023 unrecognized parameter) unless the proxy sees the statement.
    conn.execute("CREATE INDEX tuned_index ON items USING scann (embedding cosine) "
                 "WITH (num_leaves = 10)")
    conn.execute("CREATE INDEX items_plain_idx ON items (id)")
    try:
        for statement in ("ALTER INDEX tuned_index SET (num_leaves = 20)",
                          "ALTER INDEX tuned_index SET (QUANTIZER = 'FLAT', max_num_levels = 2)"):
            assert conn.execute(statement).statusmessage == "ALTER INDEX"
        assert indexconfig(conn, "tuned_index") == ["num_leaves=20", "quantizer=FLAT", "max_num_levels=2"]
        with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
            conn.execute("ALTER INDEX tuned_index SET (num_leaves = 0)")
        assert info.value.diag.message_primary == 'value 0 out of bounds for option "num_leaves"'
        # another index keeps PostgreSQL's own answer
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match='unrecognized parameter "num_leaves"'):
            conn.execute("ALTER INDEX items_plain_idx SET (num_leaves = 20)")
    finally:
        conn.execute("DROP INDEX tuned_index")
        conn.execute("DROP INDEX items_plain_idx")


def test_index_metrics_keep_the_configuration_through_reindex_and_rename(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    # ai/maintain-vector-indexes: "To manually rebuild your index using its original
    # configurations, run REINDEX INDEX CONCURRENTLY INDEX_NAME;" (a new index under the old
    # name). An extension upgrade guide run on AlloyDB builds a second index, drops the first
    # and renames the second. pg_stat_ann_indexes (ai/tune-indexes) keeps showing the index's
    # configuration through both.
    metrics = ("SELECT indexconfig, partitioncount FROM pg_stat_ann_indexes "
               "WHERE indexrelname = 'metrics_idx'")
    created = ("SELECT index_rows_at_creation_time FROM pg_stat_ann_index_creation "
               "WHERE indexrelname = 'metrics_idx'")
    conn.execute("CREATE INDEX metrics_idx ON items USING scann (embedding cosine) "
                 "WITH (num_leaves = 10, quantizer = 'SQ8')")
    try:
        assert conn.execute(metrics).fetchall() == [(["num_leaves=10", "quantizer=SQ8"], 10)]
        rows_at_creation = conn.execute(created).fetchall()
        assert rows_at_creation[0][0] is not None
        conn.execute("REINDEX INDEX CONCURRENTLY metrics_idx;")
        assert conn.execute(metrics).fetchall() == [(["num_leaves=10", "quantizer=SQ8"], 10)]
        assert conn.execute(created).fetchall() == rows_at_creation
        conn.execute("CREATE INDEX metrics_idx_2 ON items USING scann (embedding cosine) "
                     "WITH (num_leaves=2);")
        conn.execute("DROP INDEX metrics_idx;")
        conn.execute("ALTER INDEX metrics_idx_2 RENAME TO metrics_idx;")
        assert conn.execute(metrics).fetchall() == [(["num_leaves=2"], 2)]
    finally:
        conn.execute("DROP INDEX IF EXISTS metrics_idx")
        conn.execute("DROP INDEX IF EXISTS metrics_idx_2")


def test_reset_and_reindex_as_documented(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE INDEX my_scann_index ON items USING scann (embedding cosine) "
                 "WITH (num_leaves = 10)")
    try:
        conn.execute("ALTER INDEX my_scann_index RESET (num_leaves, quantization);")
        cur = conn.execute("ALTER INDEX my_scann_index SET (auto_maintenance = on);")
        assert cur.statusmessage == "ALTER INDEX"
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="boolean option"):
            conn.execute("ALTER INDEX my_scann_index SET (auto_maintenance = often)")
        conn.execute("CREATE INDEX items_id_idx ON items (id)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unrecognized parameter"):
            conn.execute("ALTER INDEX items_id_idx SET (auto_maintenance = on)")  # not ScaNN
        conn.execute("DROP INDEX items_id_idx")
        conn.execute("ALTER EXTENSION alloydb_scann UPDATE;")  # as ai/maintain-vector-indexes
        conn.execute("REINDEX INDEX CONCURRENTLY my_scann_index;")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SELECT scann_index_maintenance ( 'my_scann_index' );")
        conn.execute("SET scann.enable_preview_features = on")
        conn.execute("SELECT scann_index_maintenance ( 'my_scann_index' );")
        with pytest.raises(psycopg.errors.WrongObjectType):
            conn.execute("SELECT scann_index_maintenance('items')")
    finally:
        conn.execute("DROP INDEX my_scann_index")


def test_set_and_reset_change_the_configuration_pg_stat_ann_indexes_shows(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE INDEX cfg_scann_idx ON items USING scann (embedding cosine) "
                 "WITH (mode = 'MANUAL', num_leaves = 10, quantizer = 'SQ8')")
    try:
        created = indexconfig(conn, "cfg_scann_idx")
        assert any(o.startswith("num_leaves=") for o in created)
        conn.execute("ALTER INDEX cfg_scann_idx SET (auto_maintenance = off)")
        assert indexconfig(conn, "cfg_scann_idx") == [*created, "auto_maintenance=off"]
        # ai/create-scann-index's conversion to an automatically tuned index, as printed (it
        # names "quantization", which is no option: reset as PostgreSQL resets a name it lacks)
        conn.execute("ALTER INDEX cfg_scann_idx RESET (num_leaves, quantization);")
        reset = indexconfig(conn, "cfg_scann_idx")
        assert not any(o.startswith("num_leaves=") for o in reset)
        assert "auto_maintenance=off" in reset and any(o.startswith("quantizer=") for o in reset)
        conn.execute("REINDEX INDEX CONCURRENTLY cfg_scann_idx;")
        assert indexconfig(conn, "cfg_scann_idx") == reset
        conn.execute("DROP ROLE IF EXISTS scann_stranger")
        conn.execute("CREATE ROLE scann_stranger")
        conn.execute("SET ROLE scann_stranger")
        try:
            for statement in ("ALTER INDEX cfg_scann_idx SET (auto_maintenance = on)",
                              "ALTER INDEX cfg_scann_idx RESET (auto_maintenance)"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege,
                                   match="must be owner of index cfg_scann_idx"):
                    conn.execute(statement)
        finally:
            conn.execute("RESET ROLE")
        assert indexconfig(conn, "cfg_scann_idx") == reset
    finally:
        conn.execute("DROP INDEX IF EXISTS cfg_scann_idx")
        conn.execute("DROP ROLE IF EXISTS scann_stranger")


def test_num_leaves_goes_to_100_million_on_postgresql_17_and_later(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """ai/best-practices-tuning-scann ("Limitations", AlloyDB's and AlloyDB Omni's current
    copies): "100 million for PostgreSQL 17 and higher. 30 million for PostgreSQL 16 and
    lower." The embedded server is 18; the check of an older server is asked by version."""
    assert int(str(conn.execute("SHOW server_version_num").fetchone()[0])) >= 170000  # type: ignore[index]
    conn.execute("SET scann.allow_blocked_operations = on")  # past the row count: 3,000 rows
    try:
        conn.execute("CREATE INDEX leaves_scann_idx ON items USING scann (embedding cosine) "
                     "WITH (num_leaves = 100000000)")
        row = conn.execute("SELECT indexconfig FROM pg_stat_ann_indexes "
                           "WHERE indexrelname = 'leaves_scann_idx'").fetchone()
        assert row is not None and "num_leaves=100000000" in row[0]  # type: ignore[operator]
        cur = conn.execute("ALTER INDEX leaves_scann_idx SET (num_leaves = 40000000)")
        assert cur.statusmessage == "ALTER INDEX"
        with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
            conn.execute("CREATE INDEX leaves_too_many_scann ON items USING scann (embedding cosine) "
                         "WITH (num_leaves = 100000001)")
        assert info.value.diag.message_primary == \
            'value 100000001 out of bounds for option "num_leaves"'
        assert info.value.diag.message_detail == 'Valid values are between "1" and "100000000".'
    finally:
        conn.execute("DROP INDEX IF EXISTS leaves_scann_idx")
        conn.execute("RESET scann.allow_blocked_operations")
    # what a PostgreSQL 16 server answers, in each place the options are checked
    check = "SELECT _scann_check_num_leaves(%s, %s)"
    conn.execute(check, (["mode=MANUAL", "num_leaves=30000000"], 160004))
    conn.execute(check, (["num_leaves=100000000"], 170000))
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute(check, (["num_leaves= +40000000 "], 150000))  # '+40000000' as written
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        conn.execute(check, (["quantizer=SQ8", "num_leaves=30000001"], 160004))
    assert info.value.diag.message_primary == 'value 30000001 out of bounds for option "num_leaves"'
    assert info.value.diag.message_detail == 'Valid values are between "1" and "30000000".'
    assert "_scann_check_num_leaves(config)" in str(conn.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = '_scann_record_index'").fetchone())
    for caller in ("_scann_check_new_index", "_scann_alter_options"):
        assert "_scann_check_num_leaves(" in str(conn.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = %s", (caller,)).fetchone())


@pytest.mark.parametrize(("options", "sqlstate", "message"), [
    ("num_leaves = 0", "22023", 'value 0 out of bounds for option "num_leaves"'),
    ("num_leaves = 'many'", "22023", 'invalid value for integer option "num_leaves": many'),
    ("quantizer = 'PQ'", "22023", 'invalid value for enum option "quantizer": PQ'),
    ("lists = 100", "22023", 'unrecognized parameter "lists"'),
    ("max_num_levels = 4", "22023", 'value 4 out of bounds for option "max_num_levels"'),
    ("mode = 'AUTO', num_leaves = 10", "22023",
     'option "num_leaves" cannot be set when mode is AUTO'),
    ("optimization = 'BALANCED'", "22023", "option \"optimization\" requires mode = 'AUTO'"),
    ("auto_maintenance = 'sometimes'", "22023",
     'invalid value for boolean option "auto_maintenance": sometimes'),
    ("num_leaves = 3, num_leaves = 4", "22023", 'parameter "num_leaves" specified more than once'),
])
def test_invalid_index_options_are_refused(
    conn: psycopg.Connection[tuple[object, ...]], options: str, sqlstate: str, message: str
) -> None:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(f"CREATE INDEX bad_idx ON items USING scann (embedding cosine) WITH ({options})")
    assert info.value.sqlstate == sqlstate
    assert info.value.diag.message_primary == message
    assert conn.execute("SELECT to_regclass('bad_idx')").fetchone() == (None,)


@pytest.mark.parametrize("concurrently", ["", "CONCURRENTLY "])
@pytest.mark.parametrize(("written", "scann_name"), [
    ("vector_cosine_ops", "cosine"), ("vector_l2_ops", "l2"), ("vector_ip_ops", "dot_product")])
def test_pgvectors_operator_class_names_are_refused_with_a_hint(
    conn: psycopg.Connection[tuple[object, ...]], concurrently: str, written: str, scann_name: str
) -> None:
    """Summit labs and RAG templates write `USING scann (embedding vector_cosine_ops)`; no page
    shows AlloyDB taking it, and ai/create-scann-index names ScaNN's distances l2, dot_product
    and cosine. PostgreSQL's 42704 stays; its HINT names the class to write."""
    with pytest.raises(psycopg.errors.UndefinedObject) as refused:
        conn.execute(f"CREATE INDEX {concurrently}pgvector_named ON items "
                     f"USING scann (embedding {written}) WITH (num_leaves = 5);")
    assert refused.value.diag.message_primary == (
        f'operator class "{written}" does not exist for access method "scann"')
    assert f"USING scann (embedding {scann_name})" in str(refused.value.diag.message_hint)
    # without an operator class: PostgreSQL's HINT (define a default) gives way to ScaNN's names
    with pytest.raises(psycopg.errors.UndefinedObject) as bare:
        conn.execute(f"CREATE INDEX {concurrently}unnamed ON items USING scann (embedding) "
                     "WITH (num_leaves = 5)")
    assert bare.value.diag.message_primary == (
        'data type vector has no default operator class for access method "scann"')
    assert "cosine, l2 and dot_product" in str(bare.value.diag.message_hint)
    assert conn.execute("SELECT to_regclass('pgvector_named'), to_regclass('unnamed')"
                        ).fetchone() == (None, None)
    # the session goes on, and a later error keeps its own HINT
    with pytest.raises(psycopg.errors.UndefinedObject) as other:
        conn.execute("CREATE INDEX other_idx ON items USING hnsw (embedding no_such_ops)")
    assert other.value.diag.message_hint is None


def test_scann_settings_are_checked(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    # the settings the pages and LangChain's ScaNNQueryOptions use
    conn.execute("SET scann.num_leaves_to_search = 1")
    conn.execute("SET scann.pre_reordering_num_neighbors = -1")
    conn.execute("SET scann.allow_blocked_operations = true;")
    conn.execute("SET scann . max_allowed_num_levels = 3 ;")
    conn.execute("SET scann.satisfy_limit = relaxed_order")  # reference/ai/scann-index-reference
    conn.execute("SET scann.enable_pca = false")
    # AlloyDB's release notes name it (inline filtering, February 2025); sample scripts set it
    conn.execute("SET scann.enable_inline_filtering = on;")
    assert conn.execute("SHOW scann.enable_inline_filtering").fetchone() == ("on",)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="Available values"):
        conn.execute("SET scann.satisfy_limit = sometimes")
    conn.execute(f"ALTER DATABASE {DB} SET scann . pct_leaves_to_search = 1 ;")
    with conn.transaction():
        cur = conn.execute("SET LOCAL scann.num_leaves_to_search = 40;")
        assert cur.statusmessage == "SET"
        assert conn.execute("SHOW scann.num_leaves_to_search").fetchone() == ("40",)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as bad:
        conn.execute("SET scann.num_leaves_to_search = -3")
    assert "outside the valid range" in str(bad.value)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SET scann.enable_preview_features = 'maybe'")
    with pytest.raises(psycopg.errors.InvalidName) as unknown:
        conn.execute("SET scann.num_leafs_to_search = 3")
    assert unknown.value.diag.message_detail == '"scann" is a reserved prefix.'
    conn.execute(f"ALTER DATABASE {DB} RESET scann.pct_leaves_to_search")


def test_without_the_extension_postgresql_answers_as_usual(emulator: Emulator) -> None:
    dsn = fresh_database(emulator, "scann_absent")
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute("SET scann.anything = 'goes'")  # an ordinary placeholder here
        assert cur.statusmessage == "SET"
        assert conn.execute("SHOW scann.anything").fetchone() == ("goes",)
        conn.execute("CREATE TABLE t (e vector(3))")
        with pytest.raises(psycopg.errors.UndefinedObject, match='access method "scann"'):
            conn.execute("CREATE INDEX ON t USING scann (e cosine) WITH (num_leaves = 0)")


def test_more_than_2000_dimensions_gets_a_halfvec_index(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    conn.execute("CREATE TABLE wide (id int, e vector(3072))")
    conn.execute("INSERT INTO wide SELECT i, array_fill(i::real, ARRAY[3072])::vector "
                 "FROM generate_series(1, 10) i")  # AlloyDB wants num_leaves rows at least
    try:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        cur = conn.execute("CREATE INDEX wide_idx ON wide USING scann (e cosine) "
                           "WITH (num_leaves = 10, quantizer = 'SQ8')")
        assert cur.statusmessage == "CREATE INDEX"
        assert any("halfvec(3072)" in n for n in notices)
        (indexdef,) = conn.execute(  # type: ignore[misc]
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'wide_idx'").fetchone()
        assert "halfvec" in str(indexdef)
        # Without a name (gemini-embedding-001's 3,072 dimensions, as AlloyDB takes them): the
        # name PostgreSQL chooses for the statement, numbered when taken.
        for _ in range(2):
            cur = conn.execute("CREATE INDEX ON wide USING scann (e cosine) "
                               "WITH (num_leaves = 10)")
            assert cur.statusmessage == "CREATE INDEX"
        assert any(n.startswith("alloydb_scann (emulated)") and "wide_e_idx1 was built" in n
                   for n in notices)
        names = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'wide' "
                             "ORDER BY 1").fetchall()
        assert names == [("wide_e_idx",), ("wide_e_idx1",), ("wide_idx",)]
        assert conn.execute("SELECT count(*) FROM pg_stat_ann_indexes "
                            "WHERE relname = 'wide'").fetchone() == (3,)
    finally:
        conn.execute("DROP TABLE wide")


def test_drop_extension_leaves_pgvector(emulator: Emulator) -> None:
    dsn = fresh_database(emulator, "scann_drop", "alloydb_scann")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP EXTENSION alloydb_scann")
        assert conn.execute("SELECT count(*) FROM pg_am WHERE amname = 'scann'").fetchone() == (0,)
        conn.execute("CREATE EXTENSION alloydb_scann")  # vector is still there: no CASCADE needed


def test_tuning_page_statements_and_index_metrics(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """ai/tune-indexes: the two-level example (num_leaves = sqrt(rows), here 1000 rows), the
    EXPLAIN ANALYZE of a query, and the metrics views."""
    conn.execute("CREATE TABLE my_table (id int, result_column text, embedding_column vector(768))")
    conn.execute("INSERT INTO my_table SELECT i, 'row ' || i, "
                 "embedding('text-embedding-005', 'document ' || i)::vector "
                 "FROM generate_series(1, 1000) i")
    conn.execute("ANALYZE my_table")
    try:
        with conn.transaction():
            conn.execute("SET LOCAL scann . num_leaves_to_search = 1 ;")
            conn.execute("SET LOCAL scann . pre_reordering_num_neighbors = 50 ;")
            conn.execute("CREATE INDEX my_scann_index ON my_table\n"
                         "USING scann ( embedding_column cosine )\n"
                         "WITH ( num_leaves = 32 );")
        plan = "\n".join(str(r[0]) for r in conn.execute(
            "EXPLAIN ANALYZE SELECT result_column\nFROM my_table\n"
            "ORDER BY embedding_column <=> embedding ( 'text-embedding-005' , "
            "'What is a database?' ):: vector\nLIMIT 1 ;").fetchall())
        assert "Index Scan using my_scann_index on my_table" in plan
        rows = conn.execute(  # ai/create-scann-index, "Run a query"
            "SELECT * FROM my_table\nORDER BY embedding_column <=>\n  google_ml.embedding(\n"
            "      model_id => 'text-embedding-005',\n      content => 'document 7')::vector\n"
            "LIMIT 1").fetchall()
        assert rows[0][0] == 7
        conn.execute("INSERT INTO my_table VALUES (1001, 'late', NULL)")
        cur = conn.execute("SELECT * FROM pg_stat_ann_indexes ;")
        columns = [c.name for c in cur.description or ()]
        assert columns == ["relid", "indexrelid", "schemaname", "relname", "indexrelname",
                           "indextype", "indexconfig", "indexsize", "indexscan", "insertcount",
                           "deletecount", "updatecount", "partitioncount", "distribution",
                           "distributionpercentile"]
        row = dict(zip(columns, next(r for r in cur.fetchall() if r[4] == "my_scann_index"),
                       strict=True))
        assert (row["relname"], row["indextype"], row["indexconfig"], row["partitioncount"]) == (
            "my_table", "scann", ["num_leaves=32"], 32)
        creation = conn.execute(
            "SELECT * FROM pg_stat_ann_index_creation ;").fetchall()
        assert ("my_table", "my_scann_index", 1000) in [(r[3], r[4], r[5]) for r in creation]
    finally:
        conn.execute("DROP TABLE my_table")


def test_a_user_who_is_not_superuser_creates_and_queries_a_scann_index(
    conn: psycopg.Connection[tuple[object, ...]], dsn: str
) -> None:
    conn.execute("DROP ROLE IF EXISTS scann_user")
    conn.execute("CREATE ROLE scann_user LOGIN")
    conn.execute("CREATE SCHEMA scann_user_schema AUTHORIZATION scann_user")
    try:
        user_dsn = dsn.replace("postgres@", "scann_user@")
        with psycopg.connect(user_dsn, autocommit=True) as user:
            user.execute("SET search_path = scann_user_schema, public")
            user.execute("CREATE TABLE mine (id int, e vector(3))")
            user.execute("INSERT INTO mine SELECT i, ARRAY[i, 1, 0]::vector "
                         "FROM generate_series(1, 50) i")
            cur = user.execute("CREATE INDEX mine_idx ON mine USING scann (e l2) "
                               "WITH (num_leaves = 5)")
            assert cur.statusmessage == "CREATE INDEX"
            assert user.execute(
                "SELECT indexconfig FROM pg_stat_ann_indexes WHERE indexrelname = 'mine_idx'"
            ).fetchall() == [(["num_leaves=5"],)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                user.execute("SELECT * FROM _scann_index_config")
    finally:
        conn.execute("DROP SCHEMA scann_user_schema CASCADE")
        conn.execute("DROP ROLE scann_user")


def test_satisfy_limit_lets_a_query_return_its_whole_limit(
    conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """reference/ai/scann-index-reference: scann.satisfy_limit = relaxed_order lets the vector
    scan continue until enough rows are found (here: past HNSW's 40 candidates)."""
    conn.execute("CREATE INDEX satisfy_idx ON items USING scann (embedding l2)")
    try:
        query = ("SELECT count(*) FROM (SELECT id FROM items "
                 "ORDER BY embedding <-> '[0.1, 0.2, 0.3]' LIMIT 100) AS s")
        conn.execute("SET hnsw.ef_search = 40")
        assert "satisfy_idx" in index_of(conn, query.split("FROM (", 1)[1][:-6])
        (before,) = conn.execute(query).fetchone()  # type: ignore[misc]
        assert before == 40  # an HNSW scan stops at ef_search candidates
        cur = conn.execute("SET scann.satisfy_limit = relaxed_order")
        assert cur.statusmessage == "SET"
        assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("relaxed_order",)
        assert conn.execute(query).fetchone() == (100,)
        conn.execute("SET scann.satisfy_limit = off")
        assert conn.execute("SHOW scann.satisfy_limit").fetchone() == ("off",)
        assert conn.execute(query).fetchone() == (40,)
    finally:
        conn.execute("RESET hnsw.ef_search")
        conn.execute("RESET hnsw.iterative_scan")
        conn.execute("DROP INDEX satisfy_idx")


def test_measure_vector_query_recall_page(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """https://docs.cloud.google.com/alloydb/docs/ai/measure-vector-query-recall: the page's call,
    placeholders filled (table t1, a ScaNN index and no HNSW one), its output columns, and the
    NOTICE for a method whose index is not there (recall 1)."""
    conn.execute("DROP TABLE IF EXISTS t1")
    conn.execute("CREATE TABLE t1 (id int PRIMARY KEY, val vector(3))")
    conn.execute("INSERT INTO t1 SELECT i, ARRAY[1000 + sin(i) * 900, 1000 + cos(i) * 900, "
                 "25000 + sin(i * 0.37) * 24000]::vector FROM generate_series(1, 2000) i")
    conn.execute("CREATE INDEX t1_scann ON t1 USING scann (val cosine) WITH (num_leaves = 20)")
    conn.execute("ANALYZE t1")
    ef_search = conn.execute("SHOW hnsw.ef_search").fetchone()
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))
    cur = conn.execute("""SELECT * FROM evaluate_query_recall( $$ SELECT id FROM t1 ORDER BY val <=> '[1000,1000,49000]' LIMIT 10 $$, '{"scann.num_leaves_to_search":1, "scann.pre_reordering_num_neighbors":10, "hnsw.ef_search": 1}', ARRAY['scann', 'hnsw']);""")
    assert cur.description is not None
    assert [c.name for c in cur.description] == [
        "id", "query", "configurations", "recall", "ann_execution_time",
        "ground_truth_execution_time", "index_type"]
    result = cur.fetchall()
    assert [(r[0], r[6]) for r in result] == [(1, "scann"), (2, "hnsw")]
    assert all(0 <= float(str(r[3])) <= 1 for r in result)
    assert float(str(result[1][3])) == 1  # no HNSW index: recall 1, with AlloyDB's NOTICE
    assert notices and notices[0].startswith("Recall is 1.")
    # the configurations held for the call only
    assert conn.execute("SHOW hnsw.ef_search").fetchone() == ef_search
    # the default method is scann; without an index scan the query is exact
    default = conn.execute(
        "SELECT index_type, recall FROM evaluate_query_recall("
        "$$SELECT id FROM t1 ORDER BY val <=> '[1000,1000,49000]' LIMIT 10;$$)").fetchall()
    assert len(default) == 1 and default[0][0] == "scann"
    assert 0 <= float(str(default[0][1])) <= 1
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="scann, hnsw, ivf, ivfflat"):
        conn.execute("SELECT * FROM evaluate_query_recall('SELECT 1', NULL, ARRAY['annoy'])")
    conn.execute("DROP TABLE t1")


EMPTY_TABLE = ('Cannot create ScaNN index "t1_b_idx" for table "t1", error: FAILED_PRECONDITION: '
               'Cannot create ScaNN index "t1_b_idx" with empty table "t1". Once the table is '
               'populated with data, create the index. See documentation to bypass this validation.')


def test_an_empty_or_small_table_is_refused_as_on_alloydb(emulator: Emulator) -> None:
    """troubleshoot/troubleshoot-scann-indexes: its query examples, and AlloyDB's messages (with
    their index and table names); ai/create-scann-index: "By default, you can't create a ScaNN
    index on a table that is empty or has fewer rows than the value of the num_leaves index
    option", and its two ways past that. A refusal leaves no index and the session goes on."""
    dsn = fresh_database(emulator, "scann_small", "alloydb_scann")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table t1 (a INT, b VECTOR(512));")
        page_example_a = ("create index on t1 using ScaNN(b cosine) "
                          "with (num_leaves = 10, quantizer = 'sq8');")
        with pytest.raises(psycopg.errors.InternalError) as empty:
            conn.execute(page_example_a)
        assert empty.value.sqlstate == "XX000"
        assert empty.value.diag.message_primary == EMPTY_TABLE
        assert "scann.allow_blocked_operations" in str(empty.value.diag.message_hint)
        with pytest.raises(psycopg.errors.InternalError, match="with empty table"):
            conn.execute("CREATE INDEX ON t1 USING scann (b l2)")  # no options: still refused
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 't1'"
                            ).fetchone() == (0,)

        conn.execute("insert into t1 select i, array_fill(i::real, ARRAY[512])::vector "
                     "from generate_series(1, 5) i")
        with pytest.raises(psycopg.errors.InternalError) as small:
            conn.execute("create index on t1 using scann(b cosine) "
                         "with (num_leaves = 100, quantizer = 'sq8');")
        assert small.value.diag.message_primary == (
            'Cannot create ScaNN index "t1_b_idx" for table "t1", error: INVALID_ARGUMENT: '
            "Number of rows (5) must be larger than (100).")
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 't1'"
                            ).fetchone() == (0,)
        conn.execute("CREATE INDEX five ON t1 USING scann (b cosine) WITH (num_leaves = 5)")
        conn.execute("DROP INDEX five")

        # "Force index creation on empty or small tables": a superuser's session setting
        conn.execute("TRUNCATE t1")
        conn.execute("SET scann.allow_blocked_operations = true;")
        conn.execute(page_example_a)
        conn.execute("DROP INDEX t1_b_idx")
        conn.execute("RESET scann.allow_blocked_operations")

        # deferred creation (a preview feature): AlloyDB builds it later, the emulator at once
        conn.execute("SET scann.enable_preview_features = on")
        conn.execute(page_example_a)
        conn.execute("DROP INDEX t1_b_idx")
        with pytest.raises(psycopg.errors.InternalError, match="with empty table"):
            conn.execute("CREATE INDEX ON t1 USING scann (b cosine) WITH (mode = 'MANUAL', "
                         "num_leaves = 10, auto_maintenance = OFF)")
        conn.execute("RESET scann.enable_preview_features")

        # forcing needs a superuser
        conn.execute("DROP ROLE IF EXISTS scann_small_user")
        conn.execute("CREATE ROLE scann_small_user LOGIN")
        conn.execute("ALTER TABLE t1 OWNER TO scann_small_user")
        conn.execute("GRANT CREATE ON SCHEMA public TO scann_small_user")
        try:
            with psycopg.connect(dsn.replace("postgres@", "scann_small_user@"),
                                 autocommit=True) as user:
                user.execute("SET scann.allow_blocked_operations = on")
                with pytest.raises(psycopg.errors.InternalError, match="with empty table"):
                    user.execute(page_example_a)
        finally:
            conn.execute("DROP TABLE t1")
            conn.execute("REVOKE CREATE ON SCHEMA public FROM scann_small_user")
            conn.execute("DROP ROLE scann_small_user")


def test_truncating_a_table_with_a_scann_index_is_refused_as_on_alloydb(emulator: Emulator) -> None:
    """troubleshoot/troubleshoot-scann-indexes: "if you try to truncate a table with a ScaNN index
    generated on it", the empty-table error (query example B: `truncate t1;`); bypassed by a
    superuser's scann.allow_blocked_operations, as index creation is. The tables TRUNCATE
    empties count: descendants, and with CASCADE the referencing ones."""
    dsn = fresh_database(emulator, "scann_truncate", "alloydb_scann")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t1 (a int PRIMARY KEY, b vector(3))")
        conn.execute("INSERT INTO t1 SELECT i, ARRAY[i, 1, 0] FROM generate_series(1, 20) i")
        conn.execute("CREATE INDEX t1_b_idx ON t1 USING scann (b cosine) WITH (num_leaves = 5)")
        with pytest.raises(psycopg.errors.InternalError) as refused:
            conn.execute("truncate t1;")  # query example B
        assert refused.value.sqlstate == "XX000"
        assert refused.value.diag.message_primary == EMPTY_TABLE
        assert conn.execute("SELECT count(*) FROM t1").fetchone() == (20,)

        # what TRUNCATE empties: a partition's index through its parent, a referencing table's
        # with CASCADE; without CASCADE, PostgreSQL's own foreign-key error
        conn.execute("CREATE TABLE parts (a int, b vector(3)) PARTITION BY RANGE (a)")
        conn.execute("CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (1) TO (100)")
        conn.execute("INSERT INTO parts SELECT i, ARRAY[i, 1, 0] FROM generate_series(1, 20) i")
        conn.execute("CREATE INDEX parts_1_idx ON parts_1 USING scann (b l2) WITH (num_leaves = 5)")
        with pytest.raises(psycopg.errors.InternalError, match='"parts_1_idx" with empty table'):
            conn.execute("TRUNCATE parts")
        conn.execute("CREATE TABLE refs (a int REFERENCES t1, b vector(3))")
        conn.execute("CREATE TABLE plain (a int)")
        conn.execute("DROP INDEX t1_b_idx")
        conn.execute("INSERT INTO refs SELECT i, ARRAY[i, 1, 0] FROM generate_series(1, 20) i")
        conn.execute("CREATE INDEX refs_idx ON refs USING scann (b l2) WITH (num_leaves = 5)")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="foreign key"):
            conn.execute("TRUNCATE t1")
        with pytest.raises(psycopg.errors.InternalError, match='"refs_idx" with empty table'):
            conn.execute("TRUNCATE t1 CASCADE")
        assert conn.execute("TRUNCATE plain").statusmessage == "TRUNCATE TABLE"

        # a user who may not truncate the table hears PostgreSQL's own refusal
        conn.execute("DROP ROLE IF EXISTS scann_truncate_user")
        conn.execute("CREATE ROLE scann_truncate_user LOGIN")
        try:
            with (psycopg.connect(dsn.replace("postgres@", "scann_truncate_user@"),
                                  autocommit=True) as user,
                  pytest.raises(psycopg.errors.InsufficientPrivilege)):
                user.execute("TRUNCATE refs")
        finally:
            conn.execute("DROP ROLE scann_truncate_user")

        # "Force index creation on empty or small tables" lets it through
        conn.execute("SET scann.allow_blocked_operations = true")
        cur = conn.execute("TRUNCATE t1 CASCADE")
        assert cur.statusmessage == "TRUNCATE TABLE"
        assert conn.execute("SELECT count(*) FROM refs").fetchone() == (0,)


def test_concurrently_is_checked_as_the_plain_statement_is(emulator: Emulator) -> None:
    """CREATE INDEX CONCURRENTLY cannot run in the proxy's DO block: its row checks run in a
    prelude, a statement of the proxy's own sent just before it (proxy/session.py). The same
    messages as test_an_empty_or_small_table_is_refused_as_on_alloydb, for the index PostgreSQL
    is about to name; the same ways past; and wherever PostgreSQL refuses the statement before
    any build, PostgreSQL's own error, as on AlloyDB, whose check is in the build."""
    dsn = fresh_database(emulator, "scann_concurrently", "alloydb_scann")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table t1 (a INT, b VECTOR(512));")
        example_a = ("create index concurrently on t1 using ScaNN(b cosine) "
                     "with (num_leaves = 10, quantizer = 'sq8');")
        with pytest.raises(psycopg.errors.InternalError) as empty:
            conn.execute(example_a)
        assert empty.value.sqlstate == "XX000"
        assert empty.value.diag.message_primary == EMPTY_TABLE
        assert "scann.allow_blocked_operations" in str(empty.value.diag.message_hint)
        conn.execute("insert into t1 select i, array_fill(i::real, ARRAY[512])::vector "
                     "from generate_series(1, 5) i")
        conn.execute("CREATE INDEX t1_b_idx ON t1 (a)")  # the name is taken: the next is idx1
        with pytest.raises(psycopg.errors.InternalError) as small:
            conn.execute("create index concurrently on t1 using scann(b cosine) "
                         "with (num_leaves = 100);")
        assert small.value.diag.message_primary == (
            'Cannot create ScaNN index "t1_b_idx1" for table "t1", error: INVALID_ARGUMENT: '
            "Number of rows (5) must be larger than (100).")
        conn.execute("DROP INDEX t1_b_idx")
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 't1'"
                            ).fetchone() == (0,)

        # what PostgreSQL refuses first
        refusals: list[tuple[type[Exception], str]] = [
            (psycopg.errors.UndefinedTable, "CREATE INDEX CONCURRENTLY ON nowhere USING scann (b l2)"),
            (psycopg.errors.UndefinedColumn, "CREATE INDEX CONCURRENTLY ON t1 USING scann (c l2)"),
            (psycopg.errors.UndefinedObject, "CREATE INDEX CONCURRENTLY ON t1 USING scann (b cos)"),
            (psycopg.errors.UndefinedObject, "CREATE INDEX CONCURRENTLY ON t1 USING scann (b)"),
        ]
        conn.execute("CREATE INDEX taken ON t1 (a)")
        taken = "CREATE INDEX CONCURRENTLY taken ON t1 USING scann (b l2) WITH (num_leaves = 100)"
        refusals.append((psycopg.errors.DuplicateTable, taken))
        conn.execute("CREATE TABLE p (a int, b vector(3)) PARTITION BY RANGE (a)")
        refusals.append((psycopg.errors.FeatureNotSupported,
                         "CREATE INDEX CONCURRENTLY ON p USING scann (b l2)"))
        for error, statement in refusals:
            with pytest.raises(error):
                conn.execute(statement)
        conn.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS taken ON t1 USING scann (b l2) "
                     "WITH (num_leaves = 100)")  # a NOTICE, nothing built, nothing checked
        conn.execute("DROP INDEX taken")
        conn.execute("DROP ROLE IF EXISTS scann_cc_user")
        conn.execute("CREATE ROLE scann_cc_user LOGIN")
        try:
            with (psycopg.connect(dsn.replace("postgres@", "scann_cc_user@"),
                                  autocommit=True) as user,
                  pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner")):
                user.execute("CREATE INDEX CONCURRENTLY ON t1 USING scann (b l2) "
                             "WITH (num_leaves = 100)")
        finally:
            conn.execute("DROP ROLE scann_cc_user")

        # the ways past: a superuser's setting, deferred creation; enough rows
        conn.execute("SET scann.allow_blocked_operations = true;")
        conn.execute("CREATE INDEX CONCURRENTLY forced ON t1 USING scann (b l2) "
                     "WITH (num_leaves = 100)")
        conn.execute("RESET scann.allow_blocked_operations")
        conn.execute("SET scann.enable_preview_features = on")
        conn.execute("CREATE INDEX CONCURRENTLY deferred ON t1 USING scann (b l2) "
                     "WITH (num_leaves = 100)")
        conn.execute("RESET scann.enable_preview_features")
        cur = conn.execute("CREATE INDEX CONCURRENTLY five ON t1 USING scann (b cosine) "
                           "WITH (num_leaves = 5)")
        assert cur.statusmessage == "CREATE INDEX"
        assert conn.execute(
            "SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 't1'::regclass "
            "AND i.indisvalid").fetchone() == (["deferred", "five", "forced"],)


def test_the_index_name_the_check_predicts_is_postgresqls(emulator: Emulator) -> None:
    """The prelude names an index sent without a name as PostgreSQL will (ChooseIndexName):
    columns and expressions, repeated names, INCLUDE, long and multibyte names, a taken name."""
    from pglast import parse_sql

    from proxy.scann import index_name_addition

    dsn = fresh_database(emulator, "scann_index_names", "alloydb_scann")
    long_table = "t" * 50
    wide = "é" * 31  # 62 bytes
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{long_table}" (a int, b int, "{wide}" int, '
                     f'{"c" * 60} int)')
        columns = ["a", "a, b", "a, a", "(a + 1), (b * 2)", "lower(a::text)", "(a::text)",
                   "(1::text)", "nullif(a, b)", "(CASE WHEN a > 0 THEN b END)", "coalesce(a, b)",
                   "greatest(a, b), least(a, b)", "(ARRAY[a])", '(a::text COLLATE "C")',
                   f'"{wide}"', f'"{wide}", {"c" * 60}', "b) INCLUDE (a", "a", "a"]
        for cols in columns:
            statement = f'CREATE INDEX ON "{long_table}" ({cols})'
            stmt: Any = parse_sql(statement)[0].stmt
            params = list(stmt.indexParams) + list(stmt.indexIncludingParams or ())
            (predicted,) = conn.execute(  # type: ignore[misc]
                "SELECT _scann_index_name(%s::regclass, %s)",
                (f'"{long_table}"', index_name_addition(params))).fetchone()
            before = {r[0] for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s", (long_table,))}
            conn.execute(statement)
            after = {r[0] for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s", (long_table,))}
            assert after - before == {predicted}, cols


# GoogleCloudPlatform/python-docs-samples, alloydb/notebooks/alloydb_scann_benchmark_glove.ipynb:
# its two benchmark functions as the notebook deploys them (table glove, operator <=>).
BENCHMARK_RECALL = """
    CREATE OR REPLACE FUNCTION measure_recall(pct_leaves_to_search FLOAT, num_q INT, k INT)
    RETURNS FLOAT AS $func$
    DECLARE
        q_vec text;
        query_str text;
        total_recall FLOAT := 0.0;
        valid_queries INT := 0;
        v_id int; v_q text; v_p json; v_recall float; v_at float; v_et float; v_idx text;
    BEGIN
        IF num_q <= 0 THEN RETURN 0.0; END IF;

        FOR q_vec IN SELECT embedding::text FROM glove_test LIMIT num_q LOOP
            query_str := pg_catalog.format('SELECT id FROM glove ORDER BY embedding <=> ''%s'' LIMIT %s', q_vec, k);
            BEGIN
                EXECUTE pg_catalog.format('SELECT * FROM evaluate_query_recall($$%s$$, ''{"scann.pct_leaves_to_search": %s, "scann.num_leaves_to_search": 0}'', ''{"scann"}'')', query_str, pct_leaves_to_search)
                    INTO v_id, v_q, v_p, v_recall, v_at, v_et, v_idx;
                IF v_recall IS NOT NULL THEN
                    total_recall := total_recall + v_recall;
                    valid_queries := valid_queries + 1;
                END IF;
            EXCEPTION
                WHEN OTHERS THEN
                    RAISE WARNING 'Error during evaluate_query_recall: %', SQLERRM;
            END;
        END LOOP;

        IF valid_queries = 0 THEN RETURN 0.0; END IF;
        RETURN total_recall / valid_queries;
    END;
    $func$ LANGUAGE plpgsql;
    """
BENCHMARK_QPS = """
    CREATE OR REPLACE FUNCTION measure_qps(pct_leaves_to_search FLOAT, num_q INT, k INT)
    RETURNS FLOAT AS $func$
    DECLARE
        q_vec vector;
        start_time timestamp;
        end_time timestamp;
        total_time_ms float;
    BEGIN
        IF num_q <= 0 THEN RETURN 0.0; END IF;

        PERFORM pg_catalog.set_config('scann.num_leaves_to_search', '0', false);
        PERFORM pg_catalog.set_config('scann.pct_leaves_to_search', pct_leaves_to_search::text, false);

        start_time := pg_catalog.clock_timestamp();
        FOR q_vec IN SELECT embedding FROM glove_test LIMIT num_q LOOP
            EXECUTE pg_catalog.format('SELECT id FROM glove ORDER BY embedding <=> $1 LIMIT %s', k) USING q_vec;
        END LOOP;
        end_time := pg_catalog.clock_timestamp();

        total_time_ms := (EXTRACT(epoch FROM end_time) - EXTRACT(epoch FROM start_time)) * 1000.0;
        IF total_time_ms <= 0.0 THEN RETURN 0.0; END IF;

        RETURN (num_q * 1000.0) / total_time_ms;
    END;
    $func$ LANGUAGE plpgsql;
    """


def test_googles_scann_benchmark_notebook_runs(emulator: Emulator) -> None:
    """Google's ScaNN benchmark notebook (python-docs-samples, see above), on a small table:
    its schema, its AUTO-mode index build, and its two functions; evaluate_query_recall is
    called with a text literal for the methods ('{"scann"}') and its row is read INTO
    (int, text, json, float, float, float, text) variables. A failing call would only show as a
    WARNING (the function catches it), so the test checks there is none."""
    dsn = fresh_database(emulator, "scann_glove")
    with psycopg.connect(dsn, autocommit=True) as conn:
        warnings: list[str] = []
        conn.add_notice_handler(lambda d: warnings.append(str(d.message_primary))
                                if d.severity_nonlocalized == "WARNING" else None)
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector CASCADE;")
        cur.execute("CREATE EXTENSION IF NOT EXISTS alloydb_scann CASCADE;")
        cur.execute("CREATE TABLE glove (id bigserial PRIMARY KEY, embedding vector(8));")
        cur.execute("CREATE TABLE glove_test (id bigserial PRIMARY KEY, embedding vector(8));")
        for table, rows, seed in (("glove", 600, 1), ("glove_test", 10, 7)):
            cur.execute(f"INSERT INTO {table} (embedding) SELECT ARRAY(SELECT sin(i * {seed} + j * j) "
                        "FROM generate_series(1, 8) j)::vector FROM generate_series(1, %s) i",
                        (rows,))
        cur.execute("VACUUM (DISABLE_PAGE_SKIPPING, ANALYZE) glove;")
        cur.execute("DROP INDEX IF EXISTS alloydb_scann_idx;")
        cur.execute("SELECT set_config('max_parallel_maintenance_workers', "
                    "current_setting('max_parallel_workers'), false);")
        cur.execute("CREATE INDEX alloydb_scann_idx ON glove USING scann (embedding cosine) WITH "
                    "(mode = 'AUTO');")
        cur.execute(BENCHMARK_RECALL)
        cur.execute(BENCHMARK_QPS)
        cur.execute("SET work_mem = '256MB';")
        cur.execute("SELECT measure_qps(0.5, %s, %s);", (5, 10))
        (qps,) = cur.fetchone()  # type: ignore[misc]
        recalls = []
        for pct in (0.1, 10.0):
            cur.execute("SELECT measure_recall(%s, %s, %s);", (pct, 5, 10))
            recalls.append(cur.fetchone()[0])  # type: ignore[index]
    assert warnings == []
    assert qps > 0
    assert all(0.5 < r <= 1.0 for r in recalls), recalls


def test_vector_under_alloydbs_version_number(emulator: Emulator) -> None:
    """ai/measure-vector-query-recall, "Before you begin": `CREATE EXTENSION IF NOT EXISTS vector
    WITH VERSION '0.8.0.google-3';`, or, with pgvector already there, an update to that version.
    Here it is the same pgvector under AlloyDB's version number; updating back works too."""
    with emulator.connect() as admin:
        admin.execute('DROP DATABASE IF EXISTS "scann_vector_label" WITH (FORCE)')
        admin.execute('CREATE DATABASE "scann_vector_label"')
    dsn = emulator.dsn_for(dbname="scann_vector_label")
    version = "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute("CREATE EXTENSION IF NOT EXISTS vector WITH VERSION '0.8.0.google-3';")
        assert cur.statusmessage == "CREATE EXTENSION"
        assert conn.execute(version).fetchone() == ("0.8.0.google-3",)
        assert conn.execute("SELECT '[1,2]'::vector <-> '[1,3]'::vector").fetchone() == (1.0,)
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_scann CASCADE;")
        conn.execute("ALTER EXTENSION vector UPDATE")
        (default,) = conn.execute(version).fetchone()  # type: ignore[misc]
        assert default != "0.8.0.google-3"
        conn.execute("ALTER EXTENSION vector UPDATE TO '0.8.0.google-3';")
        assert conn.execute(version).fetchone() == ("0.8.0.google-3",)
        # The later numbers real instances show: an upgrade guide run on AlloyDB, from
        # 0.8.0.google-4, and an instance on google_ml_integration 1.5.9 reading 0.8.1.google-1.
        conn.execute("ALTER EXTENSION vector UPDATE TO '0.8.0.google-4';")
        assert conn.execute(version).fetchone() == ("0.8.0.google-4",)
        conn.execute("ALTER EXTENSION vector UPDATE TO '0.8.1.google-1';  ")
        conn.execute("ALTER EXTENSION alloydb_scann UPDATE TO '0.1.3';")
        assert conn.execute(
            "SELECT extname, extversion FROM pg_extension WHERE extname IN "
            "('vector', 'alloydb_scann') ORDER BY 1").fetchall() == [
                ("alloydb_scann", "0.1.3"), ("vector", "0.8.1.google-1")]
        conn.execute("ALTER EXTENSION vector UPDATE TO '0.8.2.google-1'")  # AlloyDB Omni's
        assert conn.execute(version).fetchone() == ("0.8.2.google-1",)


def test_an_index_on_a_partitioned_tables_parent_is_refused(emulator: Emulator) -> None:
    """troubleshoot/troubleshoot-scann-indexes, "Cannot create ScaNN index on parent partition
    table": its query example (a partition with rows), and the way the page gives (one index per
    partition); a superuser's scann.allow_blocked_operations lets it through."""
    dsn = fresh_database(emulator, "scann_partitions", "alloydb_scann")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table t1 (a INT, b VECTOR(512)) partition by range(a);")
        conn.execute("CREATE TABLE t1_one_ten PARTITION of t1 for values from (1) to (10);")
        conn.execute("insert into t1_one_ten select i, array_fill(i::real, ARRAY[512])::vector "
                     "from generate_series(1, 9) i")
        with pytest.raises(psycopg.errors.InternalError) as parent:
            conn.execute("create index on t1 using scann(b cosine) with (num_leaves = 5);")
        assert parent.value.diag.message_primary == (
            "Cannot create ScaNN index on parent partition table. Create ScaNN indexes on the "
            "child tables instead. See documentation to bypass this validation.")
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename LIKE 't1%'"
                            ).fetchone() == (0,)
        conn.execute("create index on t1_one_ten using scann(b cosine) with (num_leaves = 5);")
        conn.execute("SET scann.allow_blocked_operations = on")
        conn.execute("create index on t1 using scann(b cosine) with (num_leaves = 5);")
