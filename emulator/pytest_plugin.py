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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest

from emulator.lifetime import end_with_parent

READY = re.compile(r"ready: accepting connections at postgresql://[^@]*@(\[[^\]]+\]|[^:/]+):(\d+)/")
START_TIMEOUT = 120.0


@dataclass
class AlloyDBAIEmulator:
    """A running emulator (or one database of it): where it is and how to connect."""

    host: str
    port: int
    user: str = "postgres"
    dbname: str = "postgres"
    password: str | None = None
    output: list[str] = field(default_factory=list, repr=False)

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
                                 self.output)


class EmulatorProcess:
    """``alloydb-ai-emulator serve`` in a child process, stopped with SIGTERM."""

    def __init__(self, extra_args: list[str]) -> None:
        self.extra_args = extra_args
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> AlloyDBAIEmulator:
        args = [sys.executable, "-m", "emulator.cli", "serve", "--host", "127.0.0.1",
                "--port", "0", *self.extra_args]
        if "--upstream" not in self.extra_args and "--data-dir" not in self.extra_args:
            args.append("--ephemeral")
        # SIGTERM (a clean shutdown) if pytest dies without stopping it: killed by a CI timeout,
        # say. Fixtures run in pytest's main thread, which lives as long as pytest.
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True,
                                        preexec_fn=end_with_parent(signal.SIGTERM))  # noqa: PLW1509
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("alloydb-ai-emulator exited before it was ready:\n"
                                   + "".join(self.output))
            self.output.append(line)
            match = READY.search(line)
            if match:
                threading.Thread(target=self._drain, daemon=True).start()
                password = self._password()
                return AlloyDBAIEmulator(match.group(1).strip("[]"), int(match.group(2)),
                                         password=password, output=self.output)
        self.stop()
        raise RuntimeError("alloydb-ai-emulator did not become ready in "
                           f"{START_TIMEOUT:.0f} s:\n" + "".join(self.output))

    def _password(self) -> str | None:
        if "--password" in self.extra_args:
            return self.extra_args[self.extra_args.index("--password") + 1]
        return (os.environ.get("ALLOYDB_AI_EMULATOR_PASSWORD")
                or os.environ.get("POSTGRES_PASSWORD") or None)

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


@pytest.fixture(scope="session")
def alloydb_ai_emulator_args() -> list[str]:
    """Extra flags for ``alloydb-ai-emulator serve``; override this fixture to change them."""
    return []


@pytest.fixture(scope="session")
def alloydb_ai_emulator(alloydb_ai_emulator_args: list[str]) -> Iterator[AlloyDBAIEmulator]:
    """One emulator with an embedded PostgreSQL for the whole test session."""
    process = EmulatorProcess(list(alloydb_ai_emulator_args))
    emulator = process.start()
    try:
        yield emulator
    finally:
        process.stop()


@pytest.fixture
def alloydb_ai_emulator_db(alloydb_ai_emulator: AlloyDBAIEmulator) -> Iterator[AlloyDBAIEmulator]:
    """A fresh database with google_ml_integration and vector, dropped after the test."""
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
