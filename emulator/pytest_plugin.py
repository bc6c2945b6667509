"""pytest plugin: an AlloyDB AI emulator for your tests, no Docker needed.

Installed with the package (entry point ``pytest11``), so its fixtures are there as soon as
``alloydb-ai-emulator`` is installed:

- ``alloydb_ai_emulator`` (session): one ``alloydb-ai-emulator serve`` with its embedded
  PostgreSQL 18 in a throwaway data directory, on a free loopback port, fake models. It has
  ``host``, ``port``, ``user``, ``dbname``, ``dsn`` (a libpq URL), ``url(dbname=...)``,
  ``sqlalchemy_url(...)`` and ``connect(**kwargs)`` (an autocommit psycopg connection).
- ``alloydb_ai_emulator_db`` (function): a fresh database for one test, with
  ``google_ml_integration`` (and pgvector) created in it, dropped after the test. Same
  attributes, for that database.
- ``alloydb_ai_emulator_args`` (session): extra ``serve`` flags; override it in a conftest.py
  (e.g. ``["--fake-latency-ms", "20"]``). ``ALLOYDB_AI_EMULATOR_*`` variables apply as well.

What was called: the emulator runs with its call inspector on a free port, so
``alloydb_ai_emulator.calls(model=None, status=None)`` lists the recent model calls, newest
first (the inspector's JSON objects; docs/inspector.md), and ``clear_calls()`` forgets them. On
``alloydb_ai_emulator_db`` both keep to that test's database.

Cassettes (docs/record-replay.md): ``--alloydb-ai-cassette FILE`` (or the ini option
``alloydb_ai_cassette``) replays the whole session's model calls from FILE, and with
``--alloydb-ai-record`` records them into it instead (live calls). A test marked
``@pytest.mark.alloydb_ai_cassette("FILE")`` gets, in ``alloydb_ai_emulator_db``, a database of
an emulator of its own that replays (or, with ``--alloydb-ai-record``, records) FILE. Relative
paths are relative to pytest's rootdir.

Example::

    def test_similar_texts_are_close(alloydb_ai_emulator_db):
        with alloydb_ai_emulator_db.connect() as conn:
            (distance,) = conn.execute(
                "SELECT embedding('text-embedding-005', 'a red apple')::vector"
                " <=> embedding('text-embedding-005', 'a red apple pie')::vector").fetchone()
        assert distance < 0.5

The fixture names are prefixed so they never clash with a project's own ``emulator`` or
``db`` fixtures.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from emulator.lifetime import end_with_parent

READY = re.compile(r"ready: accepting connections at postgresql://[^@]*@(\[[^\]]+\]|[^:/]+):(\d+)/")
INSPECTOR = re.compile(r"inspector: (http://\S+/)")
UPSTREAM = re.compile(r"upstream: (postgresql://\S+)")
START_TIMEOUT = 120.0
CASSETTE_MARK = "alloydb_ai_cassette"


@dataclass
class AlloyDBAIEmulator:
    """A running emulator (or one database of it): where it is and how to connect."""

    host: str
    port: int
    user: str = "postgres"
    dbname: str = "postgres"
    password: str | None = None
    output: list[str] = field(default_factory=list, repr=False)
    inspector_url: str | None = None
    scoped: bool = False  # one database of the emulator: calls() keeps to it

    def url(self, dbname: str | None = None, *, driver: str = "postgresql") -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{driver}://{auth}@{host}:{self.port}/{quote(dbname or self.dbname, safe='')}"

    @property
    def dsn(self) -> str:
        return self.url()

    def sqlalchemy_url(self, dbname: str | None = None) -> str:
        """A SQLAlchemy URL with the psycopg (3) driver."""
        return self.url(dbname, driver="postgresql+psycopg")

    def connect(self, **kwargs: Any) -> Any:
        """An autocommit psycopg connection (pass autocommit=False for transactions)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)

    def database(self, dbname: str) -> AlloyDBAIEmulator:
        return AlloyDBAIEmulator(self.host, self.port, self.user, dbname, self.password,
                                 self.output, self.inspector_url, scoped=True)

    def _inspector(self, method: str, **query: str | None) -> Any:
        import json
        import urllib.request
        from urllib.parse import urlencode

        if self.inspector_url is None:
            raise RuntimeError("this emulator runs without its call inspector "
                               "(started with --inspector-port off?)")
        if self.scoped:
            query["database"] = self.dbname
        params = urlencode({k: v for k, v in query.items() if v is not None})
        request = urllib.request.Request(
            self.inspector_url + "api/calls" + (f"?{params}" if params else ""), method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def calls(self, model: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The recent model calls, newest first; `status`: "ok", "error", an HTTP status or a
        SQLSTATE. Each is a dict: model_id, provider, url, status, sqlstate, cache_hit,
        batch_size, retries, request_body, response_body, ... (docs/inspector.md)."""
        calls: list[dict[str, Any]] = self._inspector("GET", model=model, status=status)
        return calls

    def clear_calls(self) -> int:
        """Forget the recorded calls (of this database, on a per-test database)."""
        cleared: int = self._inspector("DELETE")["cleared"]
        return cleared


class EmulatorProcess:
    """``alloydb-ai-emulator serve`` in a child process, stopped with SIGTERM.

    ``env`` adds variables to this process's environment for the child; ``inspector=False``
    leaves the call inspector off (its ``inspector:`` line then does not come before ``ready:``).
    After ``start()``, ``output`` holds what the child printed (read on in the background) and
    ``upstream_url`` the embedded PostgreSQL's URL (None with ``--upstream``)."""

    def __init__(self, extra_args: list[str], *, env: Mapping[str, str] | None = None,
                 inspector: bool = True) -> None:
        self.extra_args = extra_args
        self.env = dict(env or {})
        self.inspector = inspector
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.upstream_url: str | None = None

    def command(self) -> list[str]:
        """The child's command line: serve on a free loopback port, with the inspector on a
        free port and a throwaway data directory unless `extra_args` say otherwise."""
        # -P: the test's directory is not put first on the child's sys.path, where a project's
        # own `emulator` package would hide this one
        args = [sys.executable, "-P", "-m", "emulator.cli", "serve", "--host", "127.0.0.1",
                "--port", "0", *self.extra_args]
        if self.inspector and self._given("--inspector-port") is None:
            args += ["--inspector-port", "0"]
        if self._given("--upstream") is None and self._given("--data-dir") is None:
            args.append("--ephemeral")
        return args

    def _given(self, flag: str) -> str | None:
        """The value of `flag` in `extra_args`, as `--flag value` or `--flag=value`."""
        for i, word in enumerate(self.extra_args):
            if word == flag and i + 1 < len(self.extra_args):
                return self.extra_args[i + 1]
            if word.startswith(flag + "="):
                return word[len(flag) + 1:]
        return None

    def start(self) -> AlloyDBAIEmulator:
        args = self.command()
        # SIGTERM (a clean shutdown) if pytest dies without stopping it: killed by a CI timeout,
        # say. Fixtures run in pytest's main thread, which lives as long as pytest.
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True,
                                        env={**os.environ, **self.env} if self.env else None,
                                        preexec_fn=end_with_parent(signal.SIGTERM))  # noqa: PLW1509
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        inspector: str | None = None
        ready: re.Match[str] | None = None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("alloydb-ai-emulator exited before it was ready:\n"
                                   + "".join(self.output))
            self.output.append(line)
            found = INSPECTOR.match(line)
            if found:
                inspector = found.group(1).replace("//0.0.0.0:", "//127.0.0.1:")
            ready = ready or READY.search(line)
            upstream = UPSTREAM.match(line)
            if upstream:
                self.upstream_url = upstream.group(1)
            # The start-up lines end with "models:" (after "ready:" and "upstream:").
            if ready and line.startswith("models:"):
                threading.Thread(target=self._drain, daemon=True).start()
                password = self._password()
                return AlloyDBAIEmulator(ready.group(1).strip("[]"), int(ready.group(2)),
                                         password=password, output=self.output,
                                         inspector_url=inspector)
        self.stop()
        raise RuntimeError("alloydb-ai-emulator did not become ready in "
                           f"{START_TIMEOUT:.0f} s:\n" + "".join(self.output))

    def _password(self) -> str | None:
        given = self._given("--password")
        if given is not None:
            return given
        env = {**os.environ, **self.env}
        return env.get("ALLOYDB_AI_EMULATOR_PASSWORD") or env.get("POSTGRES_PASSWORD") or None

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alloydb-ai-emulator")
    group.addoption("--alloydb-ai-cassette", metavar="FILE",
                    help="replay the emulator's model calls from this cassette (record it "
                         "with --alloydb-ai-record)")
    group.addoption("--alloydb-ai-record", action="store_true", default=False,
                    help="record the model calls (live) into the cassettes instead of "
                         "replaying them")
    parser.addini("alloydb_ai_cassette", "the session's cassette (as --alloydb-ai-cassette)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{CASSETTE_MARK}(path): give this test's alloydb_ai_emulator_db an emulator "
        "of its own that replays (or, with --alloydb-ai-record, records) the cassette at path")


def cassette_args(config: pytest.Config, path: str) -> list[str]:
    """The serve flags that replay (or record) the cassette at `path` (relative: to rootdir)."""
    file = Path(path)
    if not file.is_absolute():
        file = Path(config.rootpath) / file
    mode = "record" if config.getoption("alloydb_ai_record") else "replay"
    if mode == "record":
        file.parent.mkdir(parents=True, exist_ok=True)
    elif not file.exists():  # serve would say to record it with serve; here pytest records it
        pytest.fail(f"the cassette {file} does not exist: record it once with "
                    "`pytest --alloydb-ai-record` (live model calls, with credentials), then "
                    "commit it", pytrace=False)
    return ["--models", mode, "--cassette", str(file)]


def start_for_tests(process: EmulatorProcess) -> AlloyDBAIEmulator:
    """Start `process`, or fail with the emulator's own words and where its flags come from,
    not with a traceback of this plugin (the flags are not repeated: one may be a password)."""
    try:
        return process.start()
    except RuntimeError as exc:
        failure = str(exc)
    pytest.fail(f"{failure}\n(serve's flags come from the alloydb_ai_emulator_args fixture, "
                "ALLOYDB_AI_EMULATOR_* variables and the --alloydb-ai-* options)", pytrace=False)


def _session_cassette(config: pytest.Config) -> str | None:
    path = config.getoption("alloydb_ai_cassette") or config.getini("alloydb_ai_cassette")
    return str(path) if path else None


@pytest.fixture(scope="session")
def alloydb_ai_emulator_args() -> list[str]:
    """Extra flags for ``alloydb-ai-emulator serve``; override this fixture to change them."""
    return []


@pytest.fixture(scope="session")
def alloydb_ai_emulator(
    alloydb_ai_emulator_args: list[str], pytestconfig: pytest.Config
) -> Iterator[AlloyDBAIEmulator]:
    """One emulator with an embedded PostgreSQL for the whole test session."""
    args = list(alloydb_ai_emulator_args)
    cassette = _session_cassette(pytestconfig)
    if cassette and "--cassette" not in args:
        args += cassette_args(pytestconfig, cassette)
    process = EmulatorProcess(args)
    emulator = start_for_tests(process)
    try:
        yield emulator
    finally:
        process.stop()


@pytest.fixture
def alloydb_ai_emulator_db(
    request: pytest.FixtureRequest, alloydb_ai_emulator_args: list[str]
) -> Iterator[AlloyDBAIEmulator]:
    """A fresh database with google_ml_integration and vector, dropped after the test; on an
    emulator of the test's own when it is marked ``alloydb_ai_cassette(path)``."""
    marker = request.node.get_closest_marker(CASSETTE_MARK)
    if marker is None:
        yield from _fresh_database(request.getfixturevalue("alloydb_ai_emulator"))
        return
    if not marker.args:
        raise pytest.UsageError(f"@pytest.mark.{CASSETTE_MARK} needs the cassette's path")
    args = [a for a in alloydb_ai_emulator_args]
    process = EmulatorProcess(args + cassette_args(request.config, str(marker.args[0])))
    emulator = start_for_tests(process)
    try:
        yield from _fresh_database(emulator)
    finally:
        process.stop()


def _fresh_database(alloydb_ai_emulator: AlloyDBAIEmulator) -> Iterator[AlloyDBAIEmulator]:
    import psycopg
    from psycopg import sql

    dbname = f"alloydb_ai_test_{secrets.token_hex(6)}"
    with alloydb_ai_emulator.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    database = alloydb_ai_emulator.database(dbname)
    try:
        with database.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error:  # an --upstream server without pgvector
                pass
        yield database
    finally:
        with alloydb_ai_emulator.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(dbname)))
