"""AlloyDB's predefined roles (emulator/roles.py) and the grants deploy scripts make, with real
non-superuser roles through the proxy.

Sources: Google's "Manage AlloyDB user roles" page (alloydbsuperuser and postgres: "CREATEROLE,
CREATEDB, and LOGIN"; "The postgres user is part of the alloydbsuperuser role"; alloydbiamuser
"does not have any privileges"), AlloyDB Omni's post-start-up script (the databases postgres and
template1 and their public schemas owned by alloydbsuperuser, pg_monitor granted to it), a
pg_dump of an AlloyDB database (``ALTER SCHEMA public OWNER TO alloydbsuperuser``), and the pages'
grants (work-with-embeddings, model-endpoint-register-model, auto embeddings).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.databases import empty_database, fresh_database
from tests.support.emulators import Emulator, start_emulator, stop_emulator

# The roles are the embedded server's: a user's own server (--upstream) is left as it is.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("ALLOYDB_AI_EMULATOR_TEST_UPSTREAM")
         or os.environ.get("ALLOYDB_AI_EMULATOR_TEST_PG_BIN")),
    reason="AlloyDB's roles are made in the embedded server only")


def _login_role(conn: psycopg.Connection[tuple[object, ...]], *options: str) -> str:
    name = f"app_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE USER {name} {' '.join(options)}")
    return name


@pytest.fixture
def admin(emulator: Emulator) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with emulator.connect() as conn:
        yield conn


def test_the_roles_are_alloydbs(admin: psycopg.Connection[tuple[object, ...]]) -> None:
    roles = {row[0]: row[1:] for row in admin.execute(
        "SELECT rolname, rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolreplication "
        "FROM pg_roles WHERE rolname IN ('alloydbsuperuser', 'alloydbiamuser')")}
    assert roles == {"alloydbsuperuser": (False, True, True, True, False),
                     "alloydbiamuser": (False, False, False, False, False)}
    assert admin.execute("SELECT pg_has_role('postgres', 'alloydbsuperuser', 'member'), "
                         "pg_has_role('alloydbsuperuser', 'pg_monitor', 'member')").fetchone() \
        == (True, True)
    # postgres is a member by a grant, not only as a superuser (\du lists it)
    assert admin.execute(
        "SELECT count(*) FROM pg_auth_members WHERE roleid = 'alloydbsuperuser'::regrole "
        "AND member = 'postgres'::regrole").fetchone() == (1,)
    assert admin.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'postgres'").fetchone() \
        == ("alloydbsuperuser",)


def test_a_member_of_alloydbsuperuser_creates_in_public_and_others_may_not(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    dsn = empty_database(emulator, "roles_public")
    member = _login_role(admin, "IN ROLE alloydbsuperuser")  # CREATE USER ... IN ROLE
    granted = _login_role(admin)
    admin.execute(f"GRANT alloydbsuperuser TO {granted}")  # the deploy scripts' way
    plain = _login_role(admin)
    with psycopg.connect(dsn, autocommit=True) as db:
        # a database made by postgres: its public schema is template1's, alloydbsuperuser's
        assert db.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                          "WHERE nspname = 'public'").fetchone() == ("alloydbsuperuser",)
    for user in (member, granted):
        with psycopg.connect(emulator.dsn_for(user=user, dbname="roles_public"),
                             autocommit=True) as conn:
            conn.execute(f"CREATE TABLE public.t_{user} (id int)")
            assert conn.execute("SELECT pg_has_role(current_user, 'alloydbsuperuser', "
                                "'member')").fetchone() == (True,)
            conn.execute(f"ALTER TABLE public.t_{user} OWNER TO alloydbsuperuser")
    with (psycopg.connect(emulator.dsn_for(user=plain, dbname="roles_public"),
                          autocommit=True) as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege,
                        match="permission denied for schema public")):
        conn.execute("CREATE TABLE public.t_plain (id int)")


def test_the_documented_grants_let_a_non_superuser_call_and_register(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    dsn = fresh_database(emulator, "roles_grants")
    user = _login_role(admin)
    with psycopg.connect(dsn, autocommit=True) as db:
        for grant in (
            "GRANT EXECUTE ON FUNCTION embedding TO {u}",  # work-with-embeddings, LangChain
            "GRANT EXECUTE ON FUNCTION google_ml.embedding TO {u}",
            "GRANT USAGE ON SCHEMA google_ml TO {u}",
            "GRANT SELECT ON google_ml.model_info_view TO {u}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml TO {u}",
            "GRANT INSERT, UPDATE, DELETE ON google_ml.embed_gen_progress TO {u}",
            "GRANT INSERT, UPDATE, DELETE ON google_ml.embed_gen_settings TO {u}",
        ):
            db.execute(grant.format(u=user))
    with psycopg.connect(emulator.dsn_for(user=user, dbname="roles_grants"),
                         autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (False,)
        vector = conn.execute("SELECT embedding('text-embedding-005', 'hello')").fetchone()
        assert vector is not None and len(vector[0]) == 768
        conn.execute("CALL google_ml.create_model(model_id => 'roles-model', "
                     "model_provider => 'google', model_qualified_name => 'text-embedding-005', "
                     "model_type => 'text_embedding', "
                     "model_auth_type => 'alloydb_service_agent_iam')")
        assert conn.execute("SELECT count(*) FROM google_ml.model_info_view "
                            "WHERE model_id = 'roles-model'").fetchone() == (1,)


def test_a_kept_data_directory_gets_the_roles_and_keeps_its_owners() -> None:
    parent = Path(tempfile.mkdtemp(prefix="alloydb-emu-roles-"))
    parent.chmod(0o755)  # the server's own user (when run as root) enters it
    data = str(parent / "pgdata")
    first = start_emulator("--data-dir", data)
    try:
        with first.connect() as conn:
            # as a data directory of an older build: no AlloyDB roles, initdb's owners
            conn.execute("ALTER DATABASE postgres OWNER TO postgres")
            conn.execute("ALTER DATABASE template1 OWNER TO postgres")
            conn.execute("CREATE ROLE keeper")
            conn.execute("ALTER SCHEMA public OWNER TO keeper")  # the user's own choice
            with psycopg.connect(first.dsn_for(dbname="template1"), autocommit=True) as tpl:
                tpl.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
            conn.execute("DROP ROLE alloydbsuperuser")
            conn.execute("DROP ROLE alloydbiamuser")
            # a template1 that takes no connections does not stop the start
            conn.execute("ALTER DATABASE template1 ALLOW_CONNECTIONS false")
    finally:
        stop_emulator(first)
    second = start_emulator("--data-dir", data)
    try:
        with second.connect() as conn:
            assert conn.execute("SELECT pg_has_role('postgres', 'alloydbsuperuser', 'member'), "
                                "to_regrole('alloydbiamuser') IS NOT NULL").fetchone() \
                == (True, True)
            assert conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'postgres'"
            ).fetchone() == ("alloydbsuperuser",)
            assert conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                                "WHERE nspname = 'public'").fetchone() == ("keeper",)
    finally:
        stop_emulator(second)
        shutil.rmtree(parent, ignore_errors=True)


def test_wholesale_grants_on_the_schema_do_not_hand_out_the_emulators_machinery(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    # A Terraform set-up script of a RAG demo for its IAM user, and POC scripts' "if using a
    # non-superuser" grants: on AlloyDB they reach the extension's documented objects only.
    dsn = fresh_database(emulator, "roles_wholesale")
    user = _login_role(admin)
    with psycopg.connect(dsn, autocommit=True) as db:
        for grant in (
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml TO {u}",
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA google_ml TO {u}",
            "GRANT ALL ON SCHEMA google_ml TO {u}",
            "GRANT USAGE ON SCHEMA ai TO {u}",
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ai TO {u}",
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {u}",
        ):
            db.execute(grant.format(u=user))
        db.execute("CREATE TABLE notes (id int PRIMARY KEY, body text, emb vector(768))")
        db.execute("INSERT INTO notes VALUES (1, 'one', NULL), (2, 'two', NULL)")
        db.execute(f"ALTER TABLE notes OWNER TO {user}")
    with psycopg.connect(emulator.dsn_for(user=user, dbname="roles_wholesale"),
                         autocommit=True) as conn:
        conn.execute("SELECT embedding('text-embedding-005', 'warm the channel up')")
        for private in ("SELECT google_ml._dblink_get_connections()",
                        "SELECT google_ml._engine_connect('mine')",
                        "SELECT * FROM google_ml._dblink('alloydb_ai_engine', '{}') AS t (r text)",
                        "SELECT google_ml._authorized_request('{}')",
                        "SELECT count(*) FROM google_ml._warm_cache",
                        "DELETE FROM google_ml._embedding_configs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(private)
        # what the grants are for still works
        conn.execute("CALL google_ml.create_model(model_id => 'wholesale-model', "
                     "model_provider => 'google', model_qualified_name => 'text-embedding-005', "
                     "model_type => 'text_embedding', "
                     "model_auth_type => 'alloydb_service_agent_iam')")
        vector = conn.execute("SELECT google_ml.embedding('wholesale-model', 'x')").fetchone()
        assert vector is not None and len(vector[0]) == 768
        conn.execute("SET google_ml_integration.enable_faster_embedding_generation = on")
        conn.execute("CALL ai.initialize_embeddings('text-embedding-005', 'notes', 'body', 'emb')")
        assert conn.execute("SELECT count(emb) FROM notes").fetchone() == (2,)
        assert conn.execute("SELECT status FROM ai.embedding_progress_view "
                            "WHERE table_name = 'notes'").fetchone() == ("success",)
