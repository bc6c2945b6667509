"""The pytest plugin (emulator/pytest_plugin.py), run by pytester on small test files the way a
user's project would use it: installed via the ``pytest11`` entry point, no Docker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

import psycopg
import pytest

from emulator.pytest_plugin import EmulatorProcess
from tests.support.paths import REPO

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


def test_the_testing_page_examples_pass(pytester: pytest.Pytester) -> None:
    """docs/testing.md's pytest examples, as a reader copies them: the `# conftest.py` block as
    conftest.py, the others (but the testcontainers one, which needs Docker) as one test file."""
    page = (REPO / "docs" / "testing.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```\n", page, re.MULTILINE | re.DOTALL)
    conftest = [b for b in blocks if b.startswith("# conftest.py")]
    tests = [b for b in blocks if b not in conftest and "AlloyDBAIEmulatorContainer" not in b]
    assert len(conftest) == 1 and len(tests) >= 3
    pytester.makeconftest(conftest[0])
    pytester.makepyfile(test_examples="\n\n".join(tests))
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(b.count("\ndef test_") + b.startswith("def test_")
                                      for b in tests))


def test_a_project_with_its_own_emulator_package_can_use_the_plugin(
        pytester: pytest.Pytester) -> None:
    """The child ran `python -m emulator.cli` in the test's directory, where a project's own
    `emulator` package (a common name) came first on its sys.path: serve failed to start."""
    pytester.mkpydir("emulator")
    pytester.makepyfile('''
def test_uses_it(alloydb_ai_emulator_db):
    with alloydb_ai_emulator_db.connect() as conn:
        (dims,) = conn.execute(
            "SELECT array_length(embedding('text-embedding-005', 'hi'), 1)").fetchone()
    assert dims == 768
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")  # in the project's directory
    result.assert_outcomes(passed=1)


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
    result.stdout.fnmatch_lines(["*exited before it was ready*",
                                 "*--tls-cert and --tls-key go together*",
                                 "*come from the alloydb_ai_emulator_args fixture*"])
    # the emulator's words, not a traceback through the plugin's code
    assert "pytest_plugin.py" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()


def test_a_cassette_not_yet_recorded_says_how_to_record_it_with_pytest(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.alloydb_ai_cassette("cassettes/never.jsonl")
def test_marked(alloydb_ai_emulator_db):
    pass
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    missing = pytester.path / "cassettes" / "never.jsonl"
    result.stdout.fnmatch_lines(
        [f"*the cassette {missing} does not exist: record it once with `pytest --alloydb-ai-record`*"])
    assert "pytest_plugin.py" not in result.stdout.str()


def test_emulator_process_takes_variables_and_reports_its_start_up_lines() -> None:
    # The suite's own emulators start through this class (tests/support/emulators.py).
    process = EmulatorProcess(["--models", "fake"], inspector=False,
                              env={"ALLOYDB_AI_EMULATOR_PASSWORD": "from-the-env"})
    emulator = process.start()
    try:
        assert emulator.password == "from-the-env"  # read from the variables given
        with emulator.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="password"):  # the child took them
            psycopg.connect(replace(emulator, password=None).url(), connect_timeout=5)
        assert emulator.inspector_url is None
        assert process.output[0].startswith("ready: ")
        assert any(line.startswith("models: fake") for line in process.output)
        assert process.upstream_url is not None
        with psycopg.connect(process.upstream_url, password="from-the-env", autocommit=True) as direct:
            assert direct.execute("SELECT current_setting('server_version_num')::int / 10000"
                                  ).fetchone() == (18,)
    finally:
        process.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(emulator.url(), connect_timeout=5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_pytest_leaves_no_emulator_behind(tmp_path: Path) -> None:
    # A CI timeout SIGKILLs pytest: its emulator gets SIGTERM and cleans up (server stopped,
    # the ephemeral data directory removed) instead of running on as an orphan.
    script = tmp_path / "holder.py"
    script.write_text(
        "import time\n"
        "from emulator.pytest_plugin import EmulatorProcess\n"
        "emulator = EmulatorProcess([])\n"
        "emulator.start()\n"
        "assert emulator.process is not None\n"
        "print('serve', emulator.process.pid, flush=True)\n"
        "while not any(line.startswith('models:') for line in emulator.output):\n"
        "    time.sleep(0.05)  # printed after the ready line, read by the drain thread\n"
        "print(''.join(emulator.output), flush=True)\n"
        "time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None
    serve_pid = int(holder.stdout.readline().split()[1])
    output = ""
    while "models:" not in output:
        line = holder.stdout.readline()
        if not line:  # the holder ended (its emulator did not start): fail, never spin on EOF
            holder.wait(timeout=30)
            if Path(f"/proc/{serve_pid}").exists():
                os.kill(serve_pid, signal.SIGTERM)
            pytest.fail(f"the holder exited ({holder.returncode}) before printing the banner")
        output += line
    data_dir = Path(re.search(r"data in (\S+)\)", output).group(1))  # type: ignore[union-attr]
    assert data_dir.exists()
    holder.kill()
    holder.wait(timeout=30)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{serve_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    gone = not Path(f"/proc/{serve_pid}").exists()
    if not gone:
        os.kill(serve_pid, signal.SIGTERM)  # do not leave it to the rest of the suite
    assert gone, "the emulator outlived the process that started it"
    assert not data_dir.exists()  # a clean shutdown: the ephemeral directory is removed


CASSETTE_TESTS = '''
from pathlib import Path

import pytest

@pytest.mark.alloydb_ai_cassette("cassettes/embed.jsonl")
def test_marked(alloydb_ai_emulator_db):
    with alloydb_ai_emulator_db.connect() as conn:
        (vector,) = conn.execute(
            "SELECT google_ml.embedding('text-embedding-005', 'hello cassette')").fetchone()
    calls = alloydb_ai_emulator_db.calls(model="text-embedding-005")
    assert [c["route"] for c in calls] == [MODE]
    assert calls[0]["request_body"] == '{"instances": [{"content": "hello cassette"}]}'
    Path("vector-" + MODE + ".txt").write_text(repr(vector))
    assert alloydb_ai_emulator_db.clear_calls() == 1
    assert alloydb_ai_emulator_db.calls() == []

def test_session(alloydb_ai_emulator):
    with alloydb_ai_emulator.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        (vector,) = conn.execute(
            "SELECT google_ml.embedding('text-embedding-005', 'hello cassette')").fetchone()
    assert alloydb_ai_emulator.calls(status="ok")[0]["route"] == MODE
    Path("session-" + MODE + ".txt").write_text(repr(vector))
'''


def test_cassettes_record_once_and_replay_without_the_provider(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.support.http_servers import CaptureServer, token_endpoint, write_service_account

    account = tmp_path / "sa.json"
    with CaptureServer() as capture, token_endpoint("ya29.plugin-token") as oauth:
        write_service_account(str(account), f"{oauth.url}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))
        monkeypatch.setenv("NO_GCE_CHECK", "True")
        pytester.makeconftest(f'''
import pytest

@pytest.fixture(scope="session")
def alloydb_ai_emulator_args():
    return ["--vertex-base-url", "{capture.url}", "--google-project", "plugin-project"]
''')
        pytester.makepyfile(CASSETTE_TESTS.replace("MODE", '"record"'))
        recorded = pytester.runpytest("-q", "-p", "no:cacheprovider", "--alloydb-ai-record",
                                      "-k", "marked")
        recorded.assert_outcomes(passed=1)
        assert len(capture.seen("text-embedding-005:predict")) == 1
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    cassette = pytester.path / "cassettes" / "embed.jsonl"
    assert "ya29.plugin-token" not in cassette.read_text()

    # The provider is gone and there are no credentials: the marked test replays its cassette,
    # the session test replays it through --alloydb-ai-cassette.
    pytester.makepyfile(CASSETTE_TESTS.replace("MODE", '"replay"'))
    replayed = pytester.runpytest("-q", "-p", "no:cacheprovider",
                                  "--alloydb-ai-cassette", "cassettes/embed.jsonl")
    replayed.assert_outcomes(passed=2)
    recorded_vector = (pytester.path / "vector-record.txt").read_text()
    assert (pytester.path / "vector-replay.txt").read_text() == recorded_vector
    assert (pytester.path / "session-replay.txt").read_text() == recorded_vector


def test_flags_given_with_an_equals_sign_count_as_given() -> None:
    """`--data-dir=/x` was not seen: the child got --ephemeral too (and threw the directory
    away); `--password=pw` was not seen: the fixture connected without it."""
    process = EmulatorProcess(["--data-dir=/srv/pgdata", "--inspector-port=9000",
                               "--password=s3cret"])
    assert "--ephemeral" not in process.command()
    assert process.command().count("--inspector-port") == 0
    assert process._password() == "s3cret"
    assert "--ephemeral" in EmulatorProcess(["--password", "pw"]).command()
    assert EmulatorProcess(["--password", "pw"])._password() == "pw"
