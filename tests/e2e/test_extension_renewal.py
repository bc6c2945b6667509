"""A kept data directory made by another build of the emulator: google_ml_integration is renewed
at start-up where only its functions differ, and left as it is (with a note) where its schema
does (emulator/extension_renewal.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg

from emulator.extension_build import FINGERPRINT_FUNCTION, version_parts
from emulator.extension_files import renewables
from tests.support.emulators import Emulator, start_emulator, stop_emulator

VERSION = "1.6.4"
# What an older build wrote: another body for one of the machinery's functions, a function this
# build no longer has (as an extension member), and its own fingerprint.
OLD_BODY = """
CREATE OR REPLACE FUNCTION google_ml._warm_wait(key text, model_id text, item text)
RETURNS real[] LANGUAGE sql VOLATILE AS $$ SELECT NULL::real[] $$"""
NL_OLD_BODY = """
CREATE OR REPLACE FUNCTION alloydb_ai_nl.g_check_alloydb_ai_nl_enabled() RETURNS void
LANGUAGE sql AS $$ SELECT NULL::void $$"""
# A function whose result type the older build had otherwise: CREATE OR REPLACE cannot renew it,
# so the renewal drops it first (PostgreSQL's HINT names it).
OTHER_RESULT = """
ALTER EXTENSION google_ml_integration DROP FUNCTION google_ml._warm_missed_embedding();
DROP FUNCTION google_ml._warm_missed_embedding();
CREATE FUNCTION google_ml._warm_missed_embedding() RETURNS text LANGUAGE sql
AS $$ SELECT NULL::text $$;
ALTER EXTENSION google_ml_integration ADD FUNCTION google_ml._warm_missed_embedding()"""
GONE = """
CREATE FUNCTION google_ml._gone_in_this_build(x int) RETURNS int LANGUAGE sql AS $$ SELECT x $$;
ALTER EXTENSION google_ml_integration ADD FUNCTION google_ml._gone_in_this_build(int)"""


def _fingerprint(code: str, schema: str) -> str:
    return (f"CREATE OR REPLACE FUNCTION {FINGERPRINT_FUNCTION}() RETURNS text LANGUAGE sql "
            f"IMMUTABLE AS $$ SELECT 'code={code} schema={schema}'::text $$")


def _schema_hash() -> str:
    return version_parts(VERSION).fingerprint().split("schema=")[1]


def _missed_result(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SELECT pg_get_function_result("
                       "'google_ml._warm_missed_embedding()'::regprocedure)").fetchone()
    assert row is not None
    return str(row[0])


def _warm_wait_source(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = "
                       "'google_ml._warm_wait(text, text, text)'::regprocedure").fetchone()
    assert row is not None
    return str(row[0])


def _connect(emulator: Emulator, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(emulator.dsn_for(dbname=dbname), autocommit=True)


def _direct(emulator: Emulator, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        f"postgresql://postgres@{emulator.direct_host}:{emulator.direct_port}/{dbname}",
        autocommit=True)


def _set_up_older_builds(emulator: Emulator) -> None:
    with emulator.connect() as conn:
        for dbname in ("other", "changed", "current", "viewed"):
            conn.execute(f"CREATE DATABASE {dbname}")
    for dbname in ("postgres", "other", "changed", "current", "viewed"):
        with _connect(emulator, dbname) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute(f"CREATE EXTENSION google_ml_integration VERSION '{VERSION}'")
    with _connect(emulator, "postgres") as conn:
        conn.execute("CREATE EXTENSION alloydb_ai_nl CASCADE")
        # The user's objects that use the extension, which must outlive a renewal.
        conn.execute("CREATE TABLE docs (id int, body text, emb vector(768) GENERATED ALWAYS AS "
                     "(embedding('text-embedding-005', body)::vector) STORED)")
        conn.execute("INSERT INTO docs (id, body) VALUES (1, 'kept before the renewal')")
        conn.execute("CALL google_ml.create_model(model_id => 'kept-model', "
                     "model_provider => 'google', model_type => 'text_embedding', "
                     "model_qualified_name => 'text-embedding-005')")
        conn.execute("REVOKE EXECUTE ON FUNCTION google_ml.list_model(text) FROM PUBLIC")
    # An older build (the superuser, straight to PostgreSQL): in postgres, other functions and an
    # older fingerprint; in other, a build before fingerprints; in changed, another schema.
    with _direct(emulator, "postgres") as conn:
        conn.execute(OLD_BODY)
        conn.execute(OTHER_RESULT)
        conn.execute(GONE)
        conn.execute(_fingerprint("0123456789abcdef", _schema_hash()))
        # alloydb_ai_nl too, by a build before fingerprints.
        conn.execute(NL_OLD_BODY)
        conn.execute("ALTER EXTENSION alloydb_ai_nl DROP FUNCTION alloydb_ai_nl._emulator_build()")
        conn.execute("DROP FUNCTION alloydb_ai_nl._emulator_build()")
    with _direct(emulator, "other") as conn:
        conn.execute(OLD_BODY)
        # a build before the event trigger that keeps the machinery private after a GRANT
        conn.execute("ALTER EXTENSION google_ml_integration "
                     "DROP EVENT TRIGGER google_ml_keep_machinery_private")
        conn.execute("DROP EVENT TRIGGER google_ml_keep_machinery_private")
        conn.execute(f"ALTER EXTENSION google_ml_integration DROP FUNCTION {FINGERPRINT_FUNCTION}()")
        conn.execute(f"DROP FUNCTION {FINGERPRINT_FUNCTION}()")
    with _direct(emulator, "changed") as conn:
        conn.execute(OLD_BODY)
        conn.execute(_fingerprint("0123456789abcdef", "fedcba9876543210"))
    # in viewed, the function of another result type has a user's view on it: it cannot be
    # dropped (RESTRICT), so that database is kept as it is
    with _direct(emulator, "viewed") as conn:
        conn.execute(OLD_BODY)
        conn.execute(OTHER_RESULT)
        conn.execute(_fingerprint("0123456789abcdef", _schema_hash()))
        conn.execute("CREATE VIEW users_view AS SELECT google_ml._warm_missed_embedding() AS m")


def test_a_kept_database_of_another_build_is_renewed_at_start_and_keeps_the_users_objects() -> None:
    # Not pytest's tmp_path: as root, PostgreSQL runs as another user, who must be able to enter
    # every parent directory.
    parent = Path(tempfile.mkdtemp(prefix="alloydb-emu-renew-"))
    parent.chmod(0o755)
    data_dir = parent / "pgdata"
    first = start_emulator("--data-dir", str(data_dir))
    try:
        _set_up_older_builds(first)
        with _connect(first, "current") as conn:
            this_builds_source = _warm_wait_source(conn)
        assert "SELECT NULL::real[]" not in this_builds_source
    finally:
        stop_emulator(first)
    second = start_emulator("--data-dir", str(data_dir))
    try:
        printed = "".join(second.output)
        renewed = "functions were renewed to this build's"
        assert f"database 'postgres': google_ml_integration {VERSION} was made by another" in printed
        assert f"database 'other': google_ml_integration {VERSION}" in printed
        assert "database 'postgres': alloydb_ai_nl 1.0.3 was made by another build" in printed
        assert printed.count(renewed) == 3, printed
        assert "database 'changed'" in printed and "kept as it is" in printed
        assert "database 'current'" not in printed
        assert ("database 'viewed': google_ml_integration 1.6.4 was made by another build of the "
                "emulator and is kept as it is: renewing failed") in printed, printed
        expected = version_parts(VERSION).fingerprint()
        for dbname in ("postgres", "other"):
            with _connect(second, dbname) as conn:
                assert _warm_wait_source(conn) == this_builds_source
                assert conn.execute(f"SELECT {FINGERPRINT_FUNCTION}()").fetchone() == (expected,)
                assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = "
                                    "'google_ml_integration'").fetchone() == (VERSION,)
        with _connect(second, "other") as conn:  # the event trigger came, as a member
            assert conn.execute(
                "SELECT count(*) FROM pg_event_trigger AS t JOIN pg_depend AS d "
                "ON d.objid = t.oid AND d.deptype = 'e' "
                "WHERE t.evtname = 'google_ml_keep_machinery_private'").fetchone() == (1,)
        with _connect(second, "postgres") as conn:
            assert conn.execute("SELECT to_regprocedure('google_ml._gone_in_this_build(int)')"
                                ).fetchone() == (None,)
            assert _missed_result(conn) == "real[]"  # dropped and made again, a member still
            assert conn.execute(
                "SELECT count(*) FROM pg_depend WHERE deptype = 'e' AND objid = "
                "'google_ml._warm_missed_embedding()'::regprocedure").fetchone() == (1,)
            # The user's objects: the row, the generated column (it still calls embedding()),
            # the registered model, a REVOKE of theirs.
            conn.execute("INSERT INTO docs (id, body) VALUES (2, 'after the renewal')")
            rows = conn.execute("SELECT id, vector_dims(emb) FROM docs ORDER BY id").fetchall()
            assert rows == [(1, 768), (2, 768)]
            assert conn.execute("SELECT count(*) FROM google_ml.model_info_view "
                                "WHERE model_id = 'kept-model'").fetchone() == (1,)
            assert conn.execute("SELECT has_function_privilege('public', "
                                "'google_ml.list_model(text)', 'EXECUTE')").fetchone() == (False,)
            (nl,) = [e for e in renewables() if e.name == "alloydb_ai_nl"]
            assert conn.execute("SELECT alloydb_ai_nl._emulator_build()").fetchone() == (
                nl.expected("1.0.3"),)
            assert conn.execute("SELECT prosrc NOT LIKE '%NULL::void%' FROM pg_proc WHERE oid = "
                                "'alloydb_ai_nl.g_check_alloydb_ai_nl_enabled()'::regprocedure"
                                ).fetchone() == (True,)
            # The transient version never shows.
            assert conn.execute("SELECT count(*) FROM pg_available_extension_versions "
                                "WHERE version LIKE '%emulator%'").fetchone() == (0,)
        with _connect(second, "changed") as conn:
            assert "SELECT NULL::real[]" in _warm_wait_source(conn)
        with _connect(second, "viewed") as conn:
            assert "SELECT NULL::real[]" in _warm_wait_source(conn)  # all as it was
            assert _missed_result(conn) == "text"
    finally:
        stop_emulator(second)
        shutil.rmtree(parent, ignore_errors=True)


# alloydb_scann has no schema of its own: its fingerprint is in the schema it was created in.
SCANN_TRUNCATE = "_scann_check_truncate(oid[], boolean[], boolean)"


def test_a_kept_alloydb_scann_of_an_older_build_is_renewed_at_start() -> None:
    parent = Path(tempfile.mkdtemp(prefix="alloydb-emu-renew-scann-"))
    parent.chmod(0o755)
    data_dir = parent / "pgdata"
    first = start_emulator("--data-dir", str(data_dir))
    try:
        with _connect(first, "postgres") as conn:
            conn.execute("CREATE EXTENSION alloydb_scann CASCADE")
            conn.execute("CREATE TABLE t1 (a int PRIMARY KEY, b vector(3))")
            conn.execute("INSERT INTO t1 SELECT i, ARRAY[i, 1, 0] FROM generate_series(1, 20) i")
            conn.execute("CREATE INDEX t1_b_idx ON t1 USING scann (b cosine) "
                         "WITH (num_leaves = 5)")
        # A build before fingerprints and before the TRUNCATE check (straight to PostgreSQL)
        with _direct(first, "postgres") as conn:
            for member in (SCANN_TRUNCATE, "_alloydb_scann_emulator_build()"):
                if conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (member,)).fetchone() \
                        == (True,):
                    conn.execute(f"ALTER EXTENSION alloydb_scann DROP FUNCTION {member}")
                    conn.execute(f"DROP FUNCTION {member}")
    finally:
        stop_emulator(first)
    second = start_emulator("--data-dir", str(data_dir))
    try:
        printed = "".join(second.output)
        assert ("database 'postgres': alloydb_scann 0.1.3 was made by another build of the "
                "emulator; its functions were renewed to this build's") in printed, printed
        (scann,) = [e for e in renewables() if e.name == "alloydb_scann"]
        with _connect(second, "postgres") as conn:
            assert conn.execute("SELECT public._alloydb_scann_emulator_build()").fetchone() == (
                scann.expected("0.1.3"),)
            assert conn.execute(f"SELECT to_regprocedure('{SCANN_TRUNCATE}') IS NOT NULL"
                                ).fetchone() == (True,)
            # the proxy's TRUNCATE check runs again (an older function set: 42883 before)
            try:
                conn.execute("TRUNCATE t1")
            except psycopg.errors.InternalError as refused:
                assert refused.sqlstate == "XX000"
            else:
                raise AssertionError("TRUNCATE of a table with a ScaNN index went through")
            assert conn.execute("SELECT count(*) FROM t1").fetchone() == (20,)
            assert conn.execute("SELECT indexrelid::regclass::text FROM pg_index "
                                "WHERE indrelid = 't1'::regclass AND NOT indisprimary"
                                ).fetchone() == ("t1_b_idx",)
    finally:
        stop_emulator(second)
        shutil.rmtree(parent, ignore_errors=True)
