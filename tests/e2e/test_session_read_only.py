"""AlloyDB's ``alloydb_session_read_only`` through the real proxy (proxy/readonly.py), with the
drivers users connect with: psycopg (libpq, as the MCP Toolbox's pgx reads the same connection
string), asyncpg (``server_settings``) and psql.

The MCP Toolbox's AlloyDB source with ``readOnly: true`` connects with ``options='-c
alloydb_session_read_only=locked'``; Cloud SQL's twin page (read-only-sessions) says what the
values do: ``on`` read-only until set back to ``off``, ``locked`` read-only until the session ends
and no other value accepted, a transaction already writing goes on until it ends.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from tests.support.databases import empty_database, fresh_database
from tests.support.emulators import Emulator

DB = "read_only_tests"
Conn = psycopg.Connection[tuple[object, ...]]
# The MCP Toolbox's DSN for a read-only AlloyDB source (internal/sources/alloydbpg), verbatim but
# for host and port, which its AlloyDB connector supplies
TOOLBOX_DSN = ("user=postgres dbname={db} sslmode=disable application_name=genai-toolbox "
               "options='-c alloydb_session_read_only=locked'")


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = empty_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items VALUES (1, 'one')")
        # written before a session is locked: code the proxy never sees
        conn.execute("CREATE FUNCTION unlock() RETURNS text LANGUAGE sql AS $$ "
                     "SELECT set_config('default_transaction_read_only', 'off', false) $$")
        conn.execute("CREATE EXTENSION dblink")
        conn.execute("CREATE PROCEDURE add_item(i int) LANGUAGE sql AS $$ "
                     "INSERT INTO items VALUES (i, 'added') $$")
    return dsn


def _connect(dsn: str, value: str | None = "locked", **kwargs: object) -> Conn:
    if value is not None:
        kwargs["options"] = f"-c alloydb_session_read_only={value}"
    return psycopg.connect(dsn, autocommit=True, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def locked(dsn: str) -> Iterator[Conn]:
    with _connect(dsn) as conn:
        yield conn


def _show(conn: Conn) -> object:
    row = conn.execute("SHOW alloydb_session_read_only").fetchone()
    assert row is not None
    return row[0]


def _assert_write_refused(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                       match="cannot execute INSERT in a read-only transaction"):
        conn.execute("INSERT INTO items VALUES (99, 'no')")


def test_current_setting_reads_it(locked: Conn, dsn: str) -> None:
    cur = locked.execute("SELECT current_setting('alloydb_session_read_only'), "
                         "pg_catalog.current_setting('alloydb_session_read_only', true) AS v")
    assert cur.fetchone() == ("locked", "locked")
    assert cur.description is not None
    assert [c.name for c in cur.description] == ["current_setting", "v"]
    with _connect(dsn, None) as plain:
        assert plain.execute("SELECT current_setting('alloydb_session_read_only')"
                             ).fetchone() == ("off",)


def test_toolbox_connection_string_is_locked_read_only(emulator: Emulator, dsn: str) -> None:
    conninfo = (TOOLBOX_DSN.format(db=DB)
                + f" host={emulator.host} port={emulator.port}")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert _show(conn) == "locked"
        assert conn.execute("SELECT name FROM items WHERE id = 1").fetchone() == ("one",)
        _assert_write_refused(conn)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                           match="cannot execute CREATE TABLE in a read-only transaction"):
            conn.execute("CREATE TABLE nope (x int)")
        # COMMIT; BEGIN starts another read-only transaction (the Toolbox's page)
        conn.execute("COMMIT")
        conn.execute("BEGIN")
        _assert_write_refused(conn)
        conn.execute("ROLLBACK")


# Every route out of a locked session, and what the twin's page refuses beyond PostgreSQL's
# read-only transactions (which allow VACUUM, NOTIFY, txid_current(), pg_cancel_backend()), with
# the SQLSTATE each is refused with
ESCAPES = [
    ("VACUUM items", "25006"),
    ("ANALYZE items", "25006"),
    ("NOTIFY channel", "25006"),
    ("SELECT pg_notify('channel', 'payload')", "25006"),
    ("SELECT txid_current()", "25006"),
    ("SELECT pg_catalog.pg_current_xact_id()", "25006"),
    ("SELECT pg_cancel_backend(pg_backend_pid() + 1000000)", "25006"),
    ("CALL add_item(99)", "25006"),
    ("ALTER SYSTEM SET default_transaction_read_only = off", "25006"),
    ("SELECT pg_reload_conf()", "25006"),
    ("SELECT pg_stat_reset()", "25006"),
    ("SET alloydb_session_read_only = off", "55P02"),
    ("SET SESSION alloydb_session_read_only TO 'on'", "55P02"),
    ("SET LOCAL alloydb_session_read_only = 'off'", "55P02"),
    ("SET default_transaction_read_only = off", "25006"),
    ("SET SESSION default_transaction_read_only TO false", "25006"),
    ("set default_transaction_read_only = 0", "25006"),
    ("SET transaction_read_only = off", "25006"),
    ("BEGIN READ WRITE", "25006"),
    ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", "25006"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "25006"),
    ("SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)", "25006"),
    ("SELECT set_config('transaction_read_only', 'false', true)", "25006"),
    ("SELECT set_config(chr(100) || 'efault_transaction_read_only', 'off', false)", "25006"),
    (("DO $$ BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); "
      "COMMIT; INSERT INTO items VALUES (99, 'no'); END $$"), "25006"),
    ("COMMIT; SET default_transaction_read_only = off; INSERT INTO items VALUES (99, 'no')",
     "25006"),
]


@pytest.mark.parametrize(("statement", "sqlstate"), ESCAPES)
def test_lock_cannot_be_escaped(locked: Conn, statement: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as caught:
        locked.execute(statement)
    error = caught.value
    assert error.sqlstate == sqlstate
    assert "alloydb_session_read_only" in str(error)
    assert error.diag.message_hint and "locked" in error.diag.message_hint
    if locked.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        locked.execute("ROLLBACK")
    assert _show(locked) == "locked"
    _assert_write_refused(locked)
    assert locked.execute("SELECT count(*) FROM items WHERE id = 99").fetchone() == (0,)


def test_dblink_is_refused(emulator: Emulator, dsn: str, locked: Conn) -> None:
    """Another connection is another session, which nothing makes read-only (the page refuses
    foreign data wrappers)."""
    conninfo = f"host={emulator.host} port={emulator.port} user=postgres dbname={DB}"
    write = f"SELECT dblink_exec('{conninfo}', 'INSERT INTO items VALUES (98, ''other'')')"
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="dblink_exec"):
        locked.execute(write)
    with _connect(dsn, None) as plain:
        assert plain.execute("SELECT count(*) FROM items WHERE id = 98").fetchone() == (0,)
        assert plain.execute(write).fetchone() == ("INSERT 0 1",)
        plain.execute("DELETE FROM items WHERE id = 98")


def test_function_that_unlocks_ends_the_session(dsn: str, locked: Conn) -> None:
    """A function written before turns default_transaction_read_only off where the proxy cannot
    see it: PostgreSQL reports the change, and the session ends before it can write."""
    with pytest.raises(psycopg.Error) as caught:
        locked.execute("SELECT unlock()")
        locked.execute("INSERT INTO items VALUES (99, 'no')")
    # the FATAL, or the closed connection when the driver meets the close first
    assert caught.value.sqlstate in ("25006", None)
    assert locked.closed or locked.broken
    with _connect(dsn, None) as plain:
        assert plain.execute("SELECT count(*) FROM items WHERE id = 99").fetchone() == (0,)
        # a session that does not use the parameter may do so as PostgreSQL allows
        plain.execute("SET default_transaction_read_only = on")
        assert plain.execute("SELECT unlock()").fetchone() == ("off",)
        plain.execute("CALL add_item(30)")
        plain.execute("DELETE FROM items WHERE id = 30")


def test_checks_hold_in_other_client_encodings(dsn: str) -> None:
    """The proxy rewrites only UTF-8 texts; a read-only session's checks read any other."""
    with _connect(dsn) as conn:
        conn.execute("SET client_encoding = 'LATIN1'")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="alloydb_session"):
            conn.execute("BEGIN READ WRITE -- café")
        assert _show(conn) == "locked"
        conn.execute("SET client_encoding = 'SQL_ASCII'")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="alloydb_session"):
            conn.execute(b"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE -- caf\xe9")
        _assert_write_refused(conn)
    with _connect(dsn, None) as conn:  # a session that is not read-only yet
        conn.execute("SET client_encoding = 'LATIN1'")
        conn.execute("SET alloydb_session_read_only = locked -- café")
        assert _show(conn) == "locked"
        _assert_write_refused(conn)


def test_refusal_with_parameters(locked: Conn) -> None:
    """psycopg sends a str parameter with no type: the refusal declares it text."""
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="alloydb_session_read_only"):
        locked.execute("SELECT set_config('default_transaction_read_only', %s, false)", ("off",))
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="pg_notify"):
        locked.execute("SELECT pg_notify(%s, %s), %s::int", ("a", "b", 3))
    _assert_write_refused(locked)


@pytest.mark.parametrize("statement", [
    "RESET ALL", "DISCARD ALL", "RESET default_transaction_read_only",
    "RESET alloydb_session_read_only", "SET alloydb_session_read_only TO DEFAULT",
    "SET default_transaction_read_only = on", "SET alloydb_session_read_only = 'LOCKED'",
    "BEGIN READ ONLY; COMMIT", "SET TRANSACTION READ ONLY",
])
def test_harmless_statements_run_and_keep_the_lock(locked: Conn, statement: str) -> None:
    """Locked at startup, RESET, RESET ALL and DISCARD ALL (a pooler's reset) go back to the
    startup value: still locked."""
    locked.execute(statement)
    assert _show(locked) == "locked"
    _assert_write_refused(locked)


def test_locked_by_set_refuses_reset_all(dsn: str) -> None:
    with _connect(dsn, None) as conn:
        conn.execute("SET alloydb_session_read_only = locked")
        assert _show(conn) == "locked"
        _assert_write_refused(conn)
        for statement in ("RESET ALL", "DISCARD ALL", "RESET default_transaction_read_only",
                          "SET alloydb_session_read_only = off"):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement)
            assert caught.value.sqlstate in ("55P02", "25006"), statement
        _assert_write_refused(conn)


def test_on_then_off_and_transactions(dsn: str) -> None:
    with _connect(dsn, None) as conn:
        assert _show(conn) == "off"
        conn.execute("SET alloydb_session_read_only = on")
        assert _show(conn) == "on"
        _assert_write_refused(conn)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as caught:
            conn.execute("SET default_transaction_read_only = off")
        assert caught.value.diag.message_hint == "Run SET alloydb_session_read_only = 'off' first."
        conn.execute("SET alloydb_session_read_only = off")
        conn.execute("INSERT INTO items VALUES (10, 'ten')")
        # set inside a writable transaction: it writes on until it ends (the page)
        conn.execute("BEGIN")
        conn.execute("SET alloydb_session_read_only = 'on'")
        conn.execute("INSERT INTO items VALUES (11, 'eleven')")
        conn.execute("COMMIT")
        assert _show(conn) == "on"
        _assert_write_refused(conn)
        conn.execute("RESET alloydb_session_read_only")
        assert _show(conn) == "off"
        # undone with the transaction that set it, as any SET
        conn.execute("BEGIN")
        conn.execute("SET alloydb_session_read_only = locked")
        assert _show(conn) == "locked"
        conn.execute("ROLLBACK")
        assert _show(conn) == "off"
        # SET LOCAL lasts until the transaction ends
        conn.execute("BEGIN")
        conn.execute("SET LOCAL alloydb_session_read_only = on")
        assert _show(conn) == "on"
        conn.execute("COMMIT")
        assert _show(conn) == "off"
        # a failed statement in the same implicit transaction undoes it
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SET alloydb_session_read_only = on; SELECT 1/0")
        assert _show(conn) == "off"
        conn.execute("DELETE FROM items WHERE id IN (10, 11)")


def test_prepared_toggles_follow_the_server(dsn: str) -> None:
    """psycopg prepares a statement it runs a fifth time and then sends only Bind and Execute:
    the proxy no longer sees the SET's text, and follows PostgreSQL's report instead."""
    with _connect(dsn, None) as conn:
        for _ in range(6):
            conn.execute("SET alloydb_session_read_only = off")  # prepared from the fifth
        for _ in range(3):
            conn.execute("SET alloydb_session_read_only = on")
            _assert_write_refused(conn)
            assert _show(conn) == "on"
            conn.execute("SET alloydb_session_read_only = off")  # Bind and Execute only
            assert _show(conn) == "off"
            # the session is off again for the proxy too: READ WRITE is PostgreSQL's to judge
            conn.execute("BEGIN READ WRITE")
            conn.execute("INSERT INTO items VALUES (12, 'twelve')")
            conn.execute("ROLLBACK")


def test_invalid_values(dsn: str) -> None:
    with _connect(dsn, None) as conn:
        for statement in ("SET alloydb_session_read_only = maybe",
                          "SET alloydb_session_read_only = true",
                          "SET alloydb_session_read_only = 1"):
            with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
                conn.execute(statement)
            assert 'invalid value for parameter "alloydb_session_read_only"' in str(caught.value)
            assert caught.value.diag.message_hint == "Available values: off, on, locked."
        assert _show(conn) == "off"
    with pytest.raises(psycopg.OperationalError,
                       match='invalid value for parameter "alloydb_session_read_only": "maybe"'):
        _connect(dsn, "maybe")


def test_neighbour_session_unaffected(dsn: str, locked: Conn) -> None:
    _assert_write_refused(locked)
    with _connect(dsn, None) as plain:
        plain.execute("INSERT INTO items VALUES (20, 'twenty')")
        # PostgreSQL's own statements keep their meaning where the parameter is not used
        plain.execute("SET default_transaction_read_only = on")
        _assert_write_refused(plain)
        plain.execute("SET default_transaction_read_only = off")
        plain.execute("BEGIN READ WRITE")
        plain.execute("DELETE FROM items WHERE id = 20")
        plain.execute("COMMIT")
        plain.execute("DO $$ BEGIN PERFORM 1; END $$")
        plain.execute("VACUUM items")
        plain.execute("NOTIFY channel")
        assert plain.execute("SELECT set_config('default_transaction_read_only', 'off', false)"
                             ).fetchone() == ("off",)
    _assert_write_refused(locked)


@pytest.mark.parametrize("spelling", [
    "-c alloydb_session_read_only=locked", "-calloydb_session_read_only=locked",
    "--alloydb-session-read-only=locked", "-c search_path=public -c alloydb_session_read_only=on",
])
def test_option_spellings(dsn: str, spelling: str) -> None:
    with psycopg.connect(dsn, autocommit=True, options=spelling) as conn:
        assert _show(conn) in ("locked", "on")
        _assert_write_refused(conn)
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)


def test_asyncpg_server_settings(dsn: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn, server_settings={"alloydb_session_read_only": "locked"})
        try:
            assert await conn.fetchval("SHOW alloydb_session_read_only") == "locked"
            assert await conn.fetchval("SELECT name FROM items WHERE id = $1", 1) == "one"
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                await conn.execute("INSERT INTO items VALUES ($1, $2)", 99, "no")
            # the extended protocol (Parse) is checked as the simple one
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError,
                               match="alloydb_session_read_only"):
                await conn.fetchval(
                    "SELECT set_config('default_transaction_read_only', 'off', false)")
            # with a parameter: the refusal keeps it, so the Bind fits and the error is ours
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError,
                               match="alloydb_session_read_only"):
                await conn.fetchval(
                    "SELECT set_config('default_transaction_read_only', $1, false)", "off")
            with pytest.raises(asyncpg.exceptions.CantChangeRuntimeParamError):
                await conn.execute("SET alloydb_session_read_only = off")
            async with conn.transaction(readonly=True):
                assert await conn.fetchval("SELECT count(*) FROM items") == 1
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                async with conn.transaction():  # BEGIN: read-only by default
                    await conn.execute("DELETE FROM items")
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql(emulator: Emulator, dsn: str) -> None:
    conninfo = (f"host={emulator.host} port={emulator.port} user=postgres dbname={DB} "
                "options='-c alloydb_session_read_only=locked'")
    done = subprocess.run(
        ["psql", conninfo, "-X", "-A", "-t", "-c", "SHOW alloydb_session_read_only",
         "-c", "SELECT count(*) FROM items", "-c", "DELETE FROM items"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.split() == ["locked", "1"]
    assert "cannot execute DELETE in a read-only transaction" in done.stderr


def test_model_calls_work_in_a_locked_session(emulator: Emulator) -> None:
    """Reading with AlloyDB AI is what a read-only MCP session does: the model-call path must
    write nothing in the caller's session."""
    dsn = fresh_database(emulator, "read_only_ai_tests")
    with _connect(dsn) as conn:
        row = conn.execute("SELECT array_length(google_ml.embedding('text-embedding-005', "
                           "'hello')::real[], 1)").fetchone()
        assert row == (768,)
        _assert_write_refused_in(conn, "CREATE TABLE t (v vector(3))")


def _assert_write_refused_in(conn: Conn, statement: str) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute(statement)
