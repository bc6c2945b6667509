"""AlloyDB's predefined roles in the embedded server.

Plan
----
AlloyDB's ``postgres`` is not a PostgreSQL superuser: it is a member of ``alloydbsuperuser``, a
role with CREATEROLE, CREATEDB and LOGIN that owns the ``postgres`` and ``template1`` databases and
their ``public`` schemas (Google's "Manage AlloyDB user roles" page; AlloyDB Omni's post-start-up
script). Deploy scripts lean on it: ``GRANT alloydbsuperuser TO app_user``, ``CREATE USER ... IN
ROLE alloydbsuperuser``, ``ALTER ... OWNER TO alloydbsuperuser``, a pg_dump of an AlloyDB
database (``ALTER SCHEMA public OWNER TO alloydbsuperuser``), ``pg_has_role(current_user,
'alloydbsuperuser', 'member')``. IAM users land in ``alloydbiamuser``, a group role without
privileges.

``create_roles`` makes them in the embedded server once (when ``alloydbsuperuser`` is missing:
a new data directory, or one kept from an older build), as AlloyDB has them: the two roles,
``postgres`` a member of ``alloydbsuperuser``, ``pg_monitor`` granted to it, and the two databases
and their ``public`` schemas handed to it where they still have initdb's owners (a user's own
choice stays). Later databases copy ``template1``'s ``public`` schema, so theirs is
``alloydbsuperuser``'s too, as on AlloyDB. ``postgres`` itself stays a superuser here: the
extension is ``superuser = true`` and the proxy writes the engine's endpoint as one
(docs/differences.md). A user's own server (``--upstream``) is not touched.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

SUPERUSER_ROLE = "alloydbsuperuser"
IAM_ROLE = "alloydbiamuser"

# Google's table: alloydbsuperuser "CREATEROLE, CREATEDB, and LOGIN"; alloydbiamuser "By
# default, this role does not have any privileges".
_CLUSTER_STATEMENTS = (
    sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE").format(sql.Identifier(SUPERUSER_ROLE)),
    sql.SQL("DO $$ BEGIN CREATE ROLE {} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$").format(sql.Identifier(IAM_ROLE)),
    sql.SQL("GRANT {} TO {}").format(sql.Identifier(SUPERUSER_ROLE), sql.Identifier("postgres")),
    sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(SUPERUSER_ROLE)),
)

# The databases AlloyDB hands to alloydbsuperuser, with their public schemas.
HANDED_DATABASES = ("postgres", "template1")


def create_roles(conninfo: Callable[[str], str], superuser: str) -> bool:
    """Create AlloyDB's roles unless ``alloydbsuperuser`` exists; whether it did.
    ``conninfo(dbname)`` reaches a database as the server's superuser ``superuser``."""
    with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
        if conn.execute("SELECT FROM pg_catalog.pg_roles WHERE rolname = %s",
                        (SUPERUSER_ROLE,)).fetchone() is not None:
            return False
        with conn.transaction():
            for statement in _CLUSTER_STATEMENTS:
                conn.execute(statement)
            for dbname in HANDED_DATABASES:
                # only where initdb's owner is still there (a user's own choice stays)
                owner = conn.execute(
                    "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database "
                    "WHERE datname = %s", (dbname,)).fetchone()
                if owner is not None and owner[0] == superuser:
                    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(dbname), sql.Identifier(SUPERUSER_ROLE)))
    for dbname in HANDED_DATABASES:
        try:
            conn = psycopg.connect(conninfo(dbname), autocommit=True)
        except psycopg.OperationalError:  # a kept template1 that takes no connections
            continue
        with conn:
            # PostgreSQL 15+'s public schema belongs to pg_database_owner after initdb
            conn.execute(sql.SQL(
                "DO $$ BEGIN IF (SELECT pg_catalog.pg_get_userbyid(nspowner) FROM "
                "pg_catalog.pg_namespace WHERE nspname = 'public') IN ('pg_database_owner', {}) "
                "THEN ALTER SCHEMA public OWNER TO {}; END IF; END $$").format(
                    sql.Literal(superuser), sql.Identifier(SUPERUSER_ROLE)))
    return True
