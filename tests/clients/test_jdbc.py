"""The PostgreSQL JDBC driver works through the proxy.

Compiles ``tests/clients/jdbc/ProxyCheck.java`` against Debian's ``libpostgresql-jdbc-java`` and
runs it once against the emulator; each check it reports is one test here. The program's header
says which protocol messages each check makes the driver send.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import pytest

from tests.support.checkrun import CheckRun, require_path, require_program, run_checks

SOURCE = Path(__file__).parent / "jdbc" / "ProxyCheck.java"
JDBC_JAR = Path("/usr/share/java/postgresql.jar")
INSTALL_HINT = "apt-get install default-jdk-headless libpostgresql-jdbc-java"

CHECKS = [
    "simple_query",
    "server_prepared",
    "batch_insert",
    "rollback",
    "error_recovery",
    "fetch_size",
    "large_object",
    "copy",
    "cancel",
]


def jdbc_url(dsn: str) -> str:
    """The JDBC spelling of a libpq URL: same host, port, database, user and password."""
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    database = unquote(parts.path.lstrip("/")) or "postgres"
    properties = {"user": unquote(parts.username or "postgres")}
    if parts.password is not None:
        properties["password"] = unquote(parts.password)
    # A stalled reply must end as a failed check, not as a hung test.
    properties |= {"connectTimeout": "10", "socketTimeout": "120"}
    return f"jdbc:postgresql://{host}:{parts.port or 5432}/{database}?{urlencode(properties)}"


@pytest.fixture(scope="module")
def jdbc_run(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> CheckRun:
    javac = require_program("javac", INSTALL_HINT)
    java = require_program("java", INSTALL_HINT)
    jar = require_path(JDBC_JAR, "the PostgreSQL JDBC driver", INSTALL_HINT)
    classes = tmp_path_factory.mktemp("jdbc-classes")
    compiled = subprocess.run(
        [javac, "-d", str(classes), "-cp", str(jar), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode != 0:
        pytest.fail(f"javac failed:\n{compiled.stdout}{compiled.stderr}", pytrace=False)
    argv = [java, "-cp", f"{jar}:{classes}", "ProxyCheck", jdbc_url(emulator.dsn), *CHECKS]
    return run_checks(argv, timeout=240)


@pytest.mark.parametrize("check", CHECKS)
def test_jdbc_check_passes_through_the_proxy(jdbc_run: CheckRun, check: str) -> None:
    jdbc_run.assert_ok(check)
