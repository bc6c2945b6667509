"""The pytest plugin (emulator/pytest_plugin.py), run by pytester on small test files the way a
user's project would use it: installed via the ``pytest11`` entry point, no Docker."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    names = {e.value for e in entry_points(group="pytest11")}
    assert "emulator.pytest_plugin" in names


def test_fixtures_give_an_emulator_and_a_clean_database_per_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('''
import pytest

@pytest.fixture(scope="session")
def alloydb_ai_emulator_args():
    return ["--password", "pl ugin/pw"]

@pytest.fixture
def emulator():  # a project's own fixture of that name does not clash with the plugin's
    return "mine"
''')
    pytester.makepyfile('''
SEEN = []

def test_session_emulator(alloydb_ai_emulator, emulator):
    assert emulator == "mine"
    assert alloydb_ai_emulator.dsn.startswith("postgresql://postgres:pl%20ugin%2Fpw@127.0.0.1:")
    with alloydb_ai_emulator.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        (dim,) = conn.execute(
            "SELECT array_length(google_ml.embedding('text-embedding-005', 'hello'), 1)"
        ).fetchone()
    assert dim == 768

def test_fresh_database_first(alloydb_ai_emulator_db):
    SEEN.append(alloydb_ai_emulator_db.dbname)
    with alloydb_ai_emulator_db.connect() as conn:
        conn.execute("CREATE TABLE docs (content text, emb vector(768))")
        conn.execute("CALL google_ml.create_model(model_id => 'mine', "
                     "model_provider => 'google', model_type => 'text_embedding', "
                     "model_qualified_name => 'text-embedding-005')")
        conn.execute("INSERT INTO docs VALUES ('a red apple', "
                     "embedding('text-embedding-005', 'a red apple')::vector)")
        (n,) = conn.execute("SELECT count(*) FROM docs WHERE emb IS NOT NULL").fetchone()
    assert n == 1

def test_fresh_database_second(alloydb_ai_emulator_db, alloydb_ai_emulator):
    assert alloydb_ai_emulator_db.dbname not in SEEN
    with alloydb_ai_emulator_db.connect() as conn:
        assert conn.execute("SELECT to_regclass('docs')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM google_ml.models WHERE id = 'mine'").fetchone() == (0,)
    with alloydb_ai_emulator.connect() as conn:
        (left,) = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                               [SEEN[0]]).fetchone()
    assert left == 0, "the first test's database was dropped"

def test_sqlalchemy_url(alloydb_ai_emulator_db):
    import sqlalchemy
    engine = sqlalchemy.create_engine(alloydb_ai_emulator_db.sqlalchemy_url())
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar() == \\
            alloydb_ai_emulator_db.dbname
    engine.dispose()
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_failed_start_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
import pytest

@pytest.fixture(scope="session")
def alloydb_ai_emulator_args():
    return ["--tls-cert", "/nonexistent.pem"]
''')
    pytester.makepyfile('''
def test_uses_it(alloydb_ai_emulator):
    pass
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*exited before it was ready*"])
