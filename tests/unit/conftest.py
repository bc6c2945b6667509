"""Unit tests run without PostgreSQL and without ``serve`` (local HTTP servers and in-process
proxies at most), so ``./test tests/unit`` is quick. A test here that asks for the session
emulator fails: it belongs in tests/extension or tests/e2e."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_google_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests never use the machine's own Google credentials or emulator variables."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    yield


@pytest.fixture(scope="session")
def emulator() -> None:
    pytest.fail("unit tests run without PostgreSQL: a test that needs the emulator belongs in "
                "tests/extension or tests/e2e", pytrace=False)


@pytest.fixture
def conn() -> None:
    pytest.fail("unit tests run without PostgreSQL: a test that needs a connection belongs in "
                "tests/extension or tests/e2e", pytrace=False)
