"""The call inspector: ``serve --inspector-port N`` shows the recent model calls.

Plan: the engine records calls in a bounded `CallLog` (emulator/engine/calls.py); this module
only shows them, three ways:

- HTTP, a tiny asyncio server on the emulator's own loop (like the metrics endpoint, so a
  request reads the log between two callbacks of that loop and never races a call):
  ``GET /`` the web page (emulator/inspector.html: one file, no external assets);
  ``GET /api/calls`` a JSON array, newest first, filtered by the query parameters ``model``,
  ``status`` (ok, error, an HTTP status or a SQLSTATE), ``database`` and ``limit``;
  ``DELETE /api/calls`` forgets them (those of ``?database=`` only, when given) and answers
  ``{"cleared": n}``.
  A request whose ``Host`` is not a loopback name or address, nor the address the inspector
  listens on, is refused (403), so a web page elsewhere cannot read it through DNS rebinding;
  cross-origin reads are refused by the browser anyway (no CORS headers).
- SQL: the ``alloydb_ai_emulator`` extension's view ``alloydb_ai_emulator.calls`` and function
  ``clear_calls()`` send ``{"op": "inspector_calls"}`` / ``{"op": "inspector_clear"}`` over the
  callback channel; `with_sql_ops` answers them with the calls of the caller's own database and
  login role only (found from the caller's backend pid, never from the request).
- the pytest plugin reads ``/api/calls`` (emulator/pytest_plugin.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulator.engine.calls import CallLog
from emulator.engine.errors import ModelCallError
from emulator.usage_error import UsageError

log = logging.getLogger("alloydb_ai_emulator.inspector")

MAX_REQUEST_HEAD = 8192
SQLSTATE_INSPECTOR_OFF = "55000"  # object_not_in_prerequisite_state

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def page() -> bytes:
    return (resources.files("emulator") / "inspector.html").read_bytes()


# -- SQL ----------------------------------------------------------------------------------------


def with_sql_ops(handler: Handler, calls: CallLog | None) -> Handler:
    """The callback handler, plus the two inspector ops of the alloydb_ai_emulator extension."""

    async def handle(message: dict[str, Any]) -> Any:
        op = message.get("op") if isinstance(message, dict) else None
        if op not in ("inspector_calls", "inspector_clear"):
            return await handler(message)
        if calls is None:
            raise ModelCallError(
                SQLSTATE_INSPECTOR_OFF, "the emulator's call inspector is off",
                hint="Start the emulator with --inspector-port N "
                     "(ALLOYDB_AI_EMULATOR_INSPECTOR_PORT) to keep the recent model calls.")
        pid = calls.caller_pid() if calls.caller_pid is not None else None
        database, role = calls.whois(pid) if pid and calls.whois is not None else (None, None)
        if database is None or role is None:
            return [] if op == "inspector_calls" else 0
        if op == "inspector_clear":
            return calls.clear(database, role)
        return calls.calls(database=database, role=role)

    return handle


# -- HTTP ---------------------------------------------------------------------------------------


def _host_allowed(host_header: str, listen_host: str) -> bool:
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in ("localhost", listen_host) or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: only loopback names (DNS rebinding)
    return address.is_loopback or listen_host in ("0.0.0.0", "::", "")


def answer(method: str, target: str, calls: CallLog) -> tuple[str, str, bytes]:
    """(status line, content type, body) of one request."""
    parts = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.path == "/" and method in ("GET", "HEAD"):
        return "200 OK", "text/html; charset=utf-8", page()
    if parts.path == "/api/calls" and method in ("GET", "HEAD"):
        try:
            limit = int(query["limit"]) if "limit" in query else None
        except ValueError:
            return "400 Bad Request", "text/plain", b"limit must be a number\n"
        found = calls.calls(model=query.get("model") or None, status=query.get("status") or None,
                            database=query.get("database") or None, limit=limit)
        return "200 OK", "application/json", json.dumps(found, ensure_ascii=False).encode()
    if parts.path == "/api/calls" and method == "DELETE":
        cleared = calls.clear(database=query.get("database") or None)
        return "200 OK", "application/json", json.dumps({"cleared": cleared}).encode()
    if parts.path in ("/", "/api/calls"):
        return "405 Method Not Allowed", "text/plain", b"GET (or DELETE /api/calls) only\n"
    return "404 Not Found", "text/plain", b"see / or /api/calls\n"


async def start_inspector_server(host: str, port: int, calls: CallLog) -> tuple[asyncio.Server, int]:
    """Serve the inspector on host:port (0: a free port); returns the server and its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            lines = head.decode("latin-1").split("\r\n")
            method, target, *_ = lines[0].split(" ")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:] if line)}
            if not _host_allowed(headers.get("host", ""), host):
                status, ctype, body = "403 Forbidden", "text/plain", b"unknown Host\n"
            else:
                status, ctype, body = answer(method, target, calls)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                "Content-Security-Policy: default-src 'self'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n".encode("latin-1")
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port, limit=MAX_REQUEST_HEAD)
    except OSError as exc:
        raise UsageError(f"cannot serve the inspector on {host}:{port}: "
                         f"{exc.strerror or exc}") from exc
    bound = int(server.sockets[0].getsockname()[1])
    log.debug("inspector at http://%s:%d/", host if ":" not in host else f"[{host}]", bound)
    return server, bound
