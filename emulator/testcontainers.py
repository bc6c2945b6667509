"""testcontainers module: the emulator's Docker image as a throwaway container.

Needs the extra: ``pip install 'alloydb-ai-emulator[testcontainers]'`` (testcontainers 4) and a
Docker engine. Nothing else in the package imports this module, so the package itself does not
need testcontainers. Without Docker, use the pytest plugin's ``alloydb_ai_emulator`` fixture
instead (embedded PostgreSQL, no container).

In the style of testcontainers' own ``PostgresContainer``::

    from emulator.testcontainers import AlloyDBAIEmulatorContainer

    with AlloyDBAIEmulatorContainer() as alloydb:      # image alloydb-ai-emulator:latest
        engine = sqlalchemy.create_engine(alloydb.get_connection_url())
        ...

The container is started from the image built by this repository's Dockerfile
(``docker build -t alloydb-ai-emulator .``); it listens on 5432 inside, takes its password from
``POSTGRES_PASSWORD`` and is ready when it prints ``ready: accepting connections``. Any ``serve``
flag can be given as ``ALLOYDB_AI_EMULATOR_<FLAG>`` with ``with_env`` or through ``serve_args``.
"""

from __future__ import annotations

import re
from typing import Any

try:
    from testcontainers.core.container import DockerContainer
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError(
        "emulator.testcontainers needs testcontainers: "
        "pip install 'alloydb-ai-emulator[testcontainers]'"
    ) from exc

DEFAULT_IMAGE = "alloydb-ai-emulator:latest"
READY_LINE = re.compile(r"^ready: accepting connections", re.MULTILINE)
_UNSET: Any = object()


class AlloyDBAIEmulatorContainer(DockerContainer):
    """The AlloyDB AI emulator in Docker: PostgreSQL 18 + google_ml_integration, fake models."""

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        port: int = 5432,
        password: str = "postgres",
        dbname: str = "postgres",
        driver: str | None = "psycopg",
        models: str = "fake",
        serve_args: list[str] | None = None,
        startup_timeout: float = 120.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(image=image, **kwargs)
        self.username = "postgres"  # like AlloyDB Omni's image: the superuser is postgres
        self.password = password
        self.dbname = dbname
        self.port = port
        self.driver = driver
        self.startup_timeout = startup_timeout
        self.metrics_port: int | None = None
        self.with_exposed_ports(port)
        self.with_env("POSTGRES_PASSWORD", password)
        self.with_env("ALLOYDB_AI_EMULATOR_MODELS", models)
        if port != 5432:
            self.with_env("ALLOYDB_AI_EMULATOR_PORT", str(port))
        if serve_args:
            self.with_command(["serve", *serve_args])
        if hasattr(self, "waiting_for"):  # testcontainers >= 4.13: wait strategies
            from testcontainers.core.wait_strategies import LogMessageWaitStrategy

            self.waiting_for(
                LogMessageWaitStrategy(READY_LINE).with_startup_timeout(int(startup_timeout))
            )

    def with_metrics(self, port: int = 9187) -> AlloyDBAIEmulatorContainer:
        """Serve Prometheus metrics on this container port (``get_metrics_url()``)."""
        self.metrics_port = port
        self.with_env("ALLOYDB_AI_EMULATOR_METRICS_PORT", str(port))
        self.with_exposed_ports(port)
        return self

    def start(self) -> AlloyDBAIEmulatorContainer:
        super().start()
        if not hasattr(self, "waiting_for"):  # older testcontainers 4.x
            from testcontainers.core.waiting_utils import wait_for_logs

            wait_for_logs(self, READY_LINE.pattern, timeout=self.startup_timeout)
        return self

    def get_connection_url(self, host: str | None = None, driver: str | None = _UNSET) -> str:
        """``postgresql+psycopg://postgres:PASSWORD@HOST:PORT/DBNAME``; ``driver=None`` gives a
        plain libpq URL (for psycopg, asyncpg, psql)."""
        from urllib.parse import quote

        chosen = self.driver if driver is _UNSET else driver
        dialect = f"postgresql+{chosen}" if chosen else "postgresql"
        host = host or self.get_container_host_ip()
        port = self.get_exposed_port(self.port)
        password = quote(self.password, safe="")
        return f"{dialect}://{self.username}:{password}@{host}:{port}/{self.dbname}"

    def get_metrics_url(self) -> str:
        if self.metrics_port is None:
            raise RuntimeError("call with_metrics() before start()")
        host = self.get_container_host_ip()
        return f"http://{host}:{self.get_exposed_port(self.metrics_port)}/metrics"
