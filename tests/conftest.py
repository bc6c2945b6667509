"""The suite's shared fixtures: one real emulator for the whole test session, and a marker per
group of tests (the folder under tests/ that says what they need; README.md, "Tests, by what
they need").

The emulator is started as users start it, with the ``alloydb-ai-emulator serve`` command, in a
child process (tests/support/emulators.py). By default it runs its embedded PostgreSQL 18. To run
the suite against another PostgreSQL:

* ``ALLOYDB_AI_EMULATOR_TEST_UPSTREAM=postgresql://user:pw@host:port/db`` fronts that server;
* ``ALLOYDB_AI_EMULATOR_TEST_PG_BIN=/usr/lib/postgresql/15/bin`` makes a throwaway cluster with
  those binaries (initdb, pg_ctl) and fronts it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from tests.support.emulators import (
    Emulator,
    ExternalCluster,
    extension_files_in,
    start_emulator,
    stop_emulator,
)
from tests.support.paths import REPO

# CI draws the same examples on every run, so a submission passes or fails on its own code, not
# on the luck of the draw; a developer's run (no CI variable) explores new examples each time.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# tests/<group>/...: what the tests of each group need (pyproject.toml registers the markers).
GROUPS = ("unit", "extension", "e2e", "clients", "docs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its group, so ``-m unit`` or ``-m "not clients"`` selects by need."""
    tests = REPO / "tests"
    for item in items:
        parts = item.path.relative_to(tests).parts if item.path.is_relative_to(tests) else ()
        if parts and parts[0] in GROUPS:
            item.add_marker(parts[0])


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    upstream = os.environ.get("ALLOYDB_AI_EMULATOR_TEST_UPSTREAM")
    pg_bin = os.environ.get("ALLOYDB_AI_EMULATOR_TEST_PG_BIN")
    cluster: ExternalCluster | None = None
    args: list[str] = []
    installed: set[Path] = set()
    if pg_bin:
        cluster = ExternalCluster(Path(pg_bin))
        upstream = cluster.start()
        extension_dir = Path(subprocess.run(
            [str(Path(pg_bin) / "pg_config"), "--sharedir"], capture_output=True, text=True,
            check=True).stdout.strip()) / "extension"
        before = extension_files_in(extension_dir)
        install = subprocess.run(
            [sys.executable, "-m", "emulator.cli", "install-extension", "--pg-config",
             str(Path(pg_bin) / "pg_config")], capture_output=True, text=True, cwd=REPO,
            check=False)
        if install.returncode != 0:
            print("install-extension:", install.stdout, install.stderr)
        # removed again at the end: their presence changes what tests/e2e/upstream/ can test
        installed = extension_files_in(extension_dir) - before
    if upstream:
        args = ["--upstream", upstream]
    emu = start_emulator(*args)
    if upstream:
        match = re.match(r"postgresql://[^@]*@([^:/]+):(\d+)", upstream)
        if match:
            emu.direct_host, emu.direct_port = match.group(1), int(match.group(2))
    try:
        yield emu
    finally:
        stop_emulator(emu)
        if cluster is not None:
            cluster.stop()
        for path in installed:
            path.unlink(missing_ok=True)


@pytest.fixture
def conn(emulator: Emulator) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit psycopg connection through the proxy."""
    with emulator.connect() as connection:
        yield connection
