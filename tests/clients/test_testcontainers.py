"""emulator.testcontainers: configuration only (no Docker engine here). Skipped when the
testcontainers extra is not installed."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("testcontainers")

from tests.support.emulators import Emulator


class NoDocker:
    """Stands in for testcontainers' DockerClient, which would connect to a Docker engine."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture
def container_class(monkeypatch: pytest.MonkeyPatch) -> Any:
    import testcontainers.core.container as tc_container

    monkeypatch.setattr(tc_container, "DockerClient", NoDocker)
    from emulator.testcontainers import AlloyDBAIEmulatorContainer

    return AlloyDBAIEmulatorContainer


def test_defaults_match_the_image(container_class: Any) -> None:
    container = container_class()
    assert container.image.endswith("alloydb-ai-emulator:latest")
    assert {str(p) for p in container.ports} == {"5432"}
    assert container.env == {"POSTGRES_PASSWORD": "postgres", "ALLOYDB_AI_EMULATOR_MODELS": "fake"}
    assert container._command is None  # the image's own CMD: serve on 0.0.0.0:5432


def test_options_become_env_ports_and_command(container_class: Any) -> None:
    container = container_class("registry.example/emu:1", port=6543, password="pw",
                                models="live", serve_args=["--log-level", "debug"])
    container.with_metrics(9187)
    assert container.env == {
        "POSTGRES_PASSWORD": "pw",
        "ALLOYDB_AI_EMULATOR_MODELS": "live",
        "ALLOYDB_AI_EMULATOR_PORT": "6543",
        "ALLOYDB_AI_EMULATOR_METRICS_PORT": "9187",
    }
    assert {str(p) for p in container.ports} == {"6543", "9187"}
    assert container._command == ["serve", "--log-level", "debug"]


def test_serve_args_are_flags_serve_accepts(container_class: Any) -> None:
    from emulator.cli import build_parser

    container = container_class(serve_args=["--log-level", "debug", "--warmup", "off"])
    build_parser().parse_args(container._command)


def test_connection_url_like_postgres_container(container_class: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    container = container_class(password="p@ss word")
    monkeypatch.setattr(container, "get_container_host_ip", lambda: "localhost")
    monkeypatch.setattr(container, "get_exposed_port", lambda port: 49153)
    assert container.get_connection_url() == (
        "postgresql+psycopg://postgres:p%40ss%20word@localhost:49153/postgres")
    assert container.get_connection_url(driver=None) == (
        "postgresql://postgres:p%40ss%20word@localhost:49153/postgres")
    assert container.get_connection_url(driver="asyncpg").startswith("postgresql+asyncpg://")


def test_waits_for_the_ready_line_serve_prints(container_class: Any, emulator: Emulator) -> None:
    from emulator.testcontainers import READY_LINE

    container = container_class()
    strategy = getattr(container, "_wait_strategy", None)
    if strategy is not None:
        assert strategy._message.pattern == READY_LINE.pattern
    ready = next(line for line in emulator.output if line.startswith("ready:"))
    assert READY_LINE.search("some log line\n" + ready)
