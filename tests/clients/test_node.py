"""node-postgres (npm ``pg``) works through the proxy.

Runs ``tests/clients/node/check.js`` once against the emulator; each check it reports is one test
here. The script's header says which protocol messages each check makes the driver send.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.checkrun import CheckRun, require_path, require_program, run_checks

NODE_DIR = Path(__file__).parent / "node"

CHECKS = [
    "simple_query",
    "parameterized",
    "named_prepared",
    "transaction",
    "listen_notify",
    "large_values",
    "error_recovery",
]


@pytest.fixture(scope="module")
def node_run(emulator: Any) -> CheckRun:
    node = require_program("node", "apt-get install nodejs npm")
    require_path(
        NODE_DIR / "node_modules" / "pg" / "package.json",
        "node-postgres",
        f"npm ci --prefix {NODE_DIR}",
    )
    argv = [node, str(NODE_DIR / "check.js"), emulator.dsn, *CHECKS]
    return run_checks(argv, timeout=240, cwd=NODE_DIR)


@pytest.mark.parametrize("check", CHECKS)
def test_node_check_passes_through_the_proxy(node_run: CheckRun, check: str) -> None:
    node_run.assert_ok(check)
