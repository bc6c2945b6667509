"""Helpers of the end-to-end tests (tests/e2e/test_model_calls_e2e.py, tests/e2e/test_bulk_shapes.py).

They run against the real ``alloydb-ai-emulator serve`` (tests/support/emulators.py) and real local HTTP
servers: the scripted server of the engine tests (tests/support/http_servers.py: a threading
``http.server``, an independent implementation from the project's own fake server), answering
like the providers by default (the fakes' ``answer_request``), or as a test scripts it.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg

from emulator.fakes.models import FakeModelError, answer_request
from tests.support.emulators import Emulator
from tests.support.http_servers import (
    HANG,
    Reply,
    ScriptedServer,
    Seen,
    secret_manager,
    token_endpoint,
    write_service_account,
)

__all__ = [
    "CYMBAL_TRANSFORMS",
    "HANG",
    "CaptureServer",
    "Reply",
    "ScriptedServer",
    "Seen",
    "fresh_database",
    "psql",
    "secret_manager",
    "token_endpoint",
    "write_service_account",
]


class CaptureServer(ScriptedServer):
    """Answers every POST as the provider its path names would; records every request.

    ``script(path_part, *replies)`` queues replies (``Reply`` or ``HANG``) for the next requests
    whose path contains ``path_part``; when the queue is empty the provider answer comes back.
    ``responder`` may be replaced to answer everything differently.
    """

    def __init__(self) -> None:
        self._scripts: dict[str, deque[Any]] = {}
        self._lock = threading.Lock()
        self.responder: Callable[[Seen], Any] | None = None
        super().__init__(self._respond)
        # http.server writes the head and the body separately: without TCP_NODELAY (inherited by
        # accepted sockets) Nagle and delayed ACKs add 40 ms to every request.
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def script(self, path_part: str, *replies: Any) -> None:
        with self._lock:
            self._scripts.setdefault(path_part, deque()).extend(replies)

    def seen(self, path_part: str) -> list[Seen]:
        return [r for r in list(self.requests) if path_part in r.path]

    def _respond(self, seen: Seen) -> Any:
        with self._lock:
            for part, queue in self._scripts.items():
                if part in seen.path and queue:
                    return queue.popleft()
        if self.responder is not None:
            return self.responder(seen)
        try:
            return Reply(200, answer_request(seen.path, seen.json()))
        except FakeModelError as exc:
            return Reply(exc.status, exc.body)


# The seed page's custom model (Cymbal): its input and output transforms, verbatim.
CYMBAL_TRANSFORMS = """
-- Input Transform Function corresponding to the custom model endpoint
CREATE OR REPLACE FUNCTION cymbal_text_input_transform(model_id VARCHAR(100), input_text TEXT)
RETURNS JSON
LANGUAGE plpgsql
AS $$
DECLARE
  transformed_input JSON;
  model_qualified_name TEXT;
BEGIN
  SELECT json_build_object('prompt', json_build_array(input_text))::JSON INTO transformed_input;
  RETURN transformed_input;
END;
$$;
-- Output Transform Function corresponding to the custom model endpoint
CREATE OR REPLACE FUNCTION cymbal_text_output_transform(model_id VARCHAR(100), response_json JSON)
RETURNS REAL[]
LANGUAGE plpgsql
AS $$
DECLARE
  transformed_output REAL[];
BEGIN
  SELECT ARRAY(SELECT json_array_elements_text(response_json->0)) INTO transformed_output;
  RETURN transformed_output;
END;
$$;
"""


def fresh_database(emulator: Emulator, name: str, *extensions: str) -> str:
    """(Re)create database ``name`` through the proxy with ``google_ml_integration``, pgvector
    and ``extensions``; the DSN of a superuser connection to it."""
    with emulator.connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = emulator.dsn_for(dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for ext in extensions:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    return dsn


def psql(
    dsn: str, sql: str, *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` with psql (no psqlrc, stop at the first error, unaligned tuples only)."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
        input=sql, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed ({result.returncode}):\n{result.stderr}")
    return result
