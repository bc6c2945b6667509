"""Every SQL statement of the page the product came from
(../shared/reference/seed-register-remote-models-fr.txt) runs unchanged through the proxy, with
psql, as AlloyDB's documentation shows it.

The statements are read from the page itself, not copied, so the test follows the page. The page
is a set of independent examples: between them the harness only resets what an example creates
(a model or secret id the next example reuses), it never edits a statement. Placeholders such as
'MODEL_ID' or NON_SUPER_USER are names like any other; NON_SUPER_USER is created as a role.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.databases import psql
from tests.support.emulators import Emulator
from tests.support.paths import REPO

SEED = REPO.parent / "shared" / "reference" / "seed-register-remote-models-fr.txt"
STARTS = ("ALTER EXTENSION", "CREATE EXTENSION", "GRANT ", "ALTER SYSTEM", "SELECT", "CALL",
          "CREATE OR REPLACE FUNCTION")


def seed_statements() -> list[str]:
    """The SQL statements of the page, in order, dedented as a reader would copy them."""
    lines = SEED.read_text().splitlines()
    statements: list[str] = []
    i = 0
    while i < len(lines):
        first = lines[i].strip()
        if not first.startswith(STARTS):
            i += 1
            continue
        function = first.startswith("CREATE OR REPLACE FUNCTION")
        j = i
        while True:
            current = lines[j].strip()
            if (function and current == "$$;") or (not function and current.endswith(";")):
                break
            j += 1
        statements.append(textwrap.dedent("\n".join(lines[i : j + 1])))
        i = j + 1
    return statements


STATEMENTS = seed_statements() if SEED.exists() else []


def refused_by_alloydb(statement: str) -> bool:
    """The page's example with no comma after ``model_auth_type => '...'``: a syntax error on
    AlloyDB, so here too (the emulator never mends a statement)."""
    return re.search(r"model_auth_type => '[^']*'\n\s*model_in_transform_fn", statement) is not None


def statement_id(statement: str) -> str:
    words = re.sub(r"\s+", " ", statement).split(" ")
    return " ".join(words[:4])[:50]


@pytest.fixture(scope="module")
def seed_db(emulator: Emulator) -> Iterator[str]:
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS seed_page WITH (FORCE)")
        conn.execute("CREATE DATABASE seed_page")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'non_super_user'").fetchone():
            conn.execute("CREATE ROLE non_super_user")
    dsn = emulator.dsn_for(dbname="seed_page")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")  # so that step 2 (UPDATE) applies
    yield dsn
    with psycopg.connect(emulator.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS seed_page WITH (FORCE)")


def reset_for(dsn: str, statement: str) -> None:
    """Undo what an earlier example created under the id this one reuses."""
    model = re.search(r"create_model\(\s*model_id\s*=>\s*'([^']+)'", statement)
    secret = re.search(r"create_sm_secret\(\s*secret_id\s*=>\s*'([^']+)'", statement)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if model and conn.execute("SELECT 1 FROM google_ml.models WHERE id = %s",
                                  (model.group(1),)).fetchone():
            conn.execute("CALL google_ml.drop_model(%s)", (model.group(1),))
        if secret and conn.execute("SELECT 1 FROM google_ml.secrets WHERE secret_id = %s",
                                   (secret.group(1),)).fetchone():
            conn.execute("DELETE FROM google_ml.models WHERE auth_id = %s", (secret.group(1),))
            conn.execute("CALL google_ml.drop_sm_secret(%s)", (secret.group(1),))


def require_the_page() -> None:
    if not SEED.exists():
        pytest.skip(f"{SEED} is not beside this checkout")


def test_the_page_has_all_its_statements() -> None:
    require_the_page()
    assert len(STATEMENTS) == 23
    assert sum(s.startswith("CALL") for s in STATEMENTS) == 11
    assert sum(refused_by_alloydb(s) for s in STATEMENTS) == 1


@pytest.mark.parametrize("statement", STATEMENTS, ids=[statement_id(s) for s in STATEMENTS])
def test_seed_statement_runs_unchanged_through_psql(seed_db: str, statement: str) -> None:
    reset_for(seed_db, statement)
    if refused_by_alloydb(statement):
        result = psql(seed_db, statement, check=False)
        assert result.returncode != 0
        assert 'ERROR:  syntax error at or near "model_in_transform_fn"' in result.stderr
        assert "HINT:  Is a comma missing before \"model_in_transform_fn\"?" in result.stderr
        return
    result = psql(seed_db, statement)
    if statement.startswith("SELECT") and "google_ml." in statement:
        assert result.stdout.strip(), "a model call of the page answered nothing"


def test_the_seed_leaves_the_models_it_registered(seed_db: str) -> None:
    require_the_page()
    for statement in STATEMENTS:
        reset_for(seed_db, statement)
        psql(seed_db, statement, check=not refused_by_alloydb(statement))
    with psycopg.connect(seed_db, autocommit=True) as conn:
        ids = {r[0] for r in conn.execute("SELECT model_id FROM google_ml.model_info_view")}
        assert {"text-embedding-005", "MODEL_ID"} <= ids
        assert "text-multilingual-embedding-002" not in ids  # its statement is refused
        row = conn.execute(
            "SELECT model_provider, header_gen_fn FROM google_ml.model_info_view "
            "WHERE model_id = 'MODEL_ID'").fetchone()
        # The page's last example registers an Anthropic model with the built-in header function.
        assert row == ("anthropic", "google_ml.anthropic_claude_header_gen_fn")
        grants = conn.execute(
            "SELECT count(*) FROM information_schema.role_table_grants "
            "WHERE grantee = 'non_super_user' AND table_schema = 'google_ml'").fetchone()
        assert grants is not None and grants[0] > 0
