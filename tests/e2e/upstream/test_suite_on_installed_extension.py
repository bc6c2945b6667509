"""The extension suite against an upstream PostgreSQL the user runs (Debian's 15), with the
extension installed by ``alloydb-ai-emulator install-extension``: the same tests, another server.

Runs after test_extension_emulation.py (which needs the files absent) and removes the files it
installed, so both stories stay testable on one machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.emulators import extension_files_in
from tests.support.paths import REPO

PG15 = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="needs PostgreSQL 15 binaries")


def test_extension_suite_passes_on_postgresql_15_with_installed_files() -> None:
    sharedir = subprocess.run([str(PG15 / "pg_config"), "--sharedir"], capture_output=True,
                              text=True, check=True).stdout.strip()
    installed = Path(sharedir) / "extension"
    before = extension_files_in(installed)  # every extension the emulator ships
    env = dict(os.environ, ALLOYDB_AI_EMULATOR_TEST_PG_BIN=str(PG15))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/extension/test_extension_sql.py"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    finally:
        for path in extension_files_in(installed) - before:
            path.unlink()
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
