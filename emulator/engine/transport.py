"""One exchange with a provider: a request out, a raw response back, no retries or policy.

`Transport` is what the retrying client (`http.py`) talks to. Two implementations:

- `HttpxTransport` (here): a real HTTP POST through one shared, pooled `httpx.AsyncClient`
  (created by `prepare()` at startup, or on first use, so it binds to the running loop), with
  the engine's connect and read timeouts. Cancelling the awaiting task abandons the request: httpx closes the connection and
  nothing waits for the provider.
- `FakeTransport` (emulator/fakes/transport.py): the fake models, in process; the engine gets
  it from whoever builds it, so it never imports the fakes.
- `RecordingTransport` and `ReplayTransport` (cassette.py): record the HTTP transport's answers
  into a cassette file, and answer from one.
- `InspectingTransport` (calls.py): wraps any of them to show each exchange in the inspector.

A transport answers a `RawResponse` for any HTTP status and raises `TransportTimeout` (no answer
in time) or `TransportConnectError` (could not connect, or the connection broke); the caller
decides what those mean.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from emulator.engine.settings import EngineSettings

NOT_PARSED: Any = object()


@dataclass(frozen=True)
class OutgoingRequest:
    model_id: str
    url: str
    headers: dict[str, str]
    body: Any
    provider: str = "custom"  # the registry's provider: the cassette's matching needs it


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # names lowercased
    content: bytes = b""
    value: Any = NOT_PARSED  # set when the transport already holds the JSON value


class TransportTimeout(Exception):
    """No (complete) answer within the timeout."""


class TransportConnectError(Exception):
    """Could not connect, or the connection failed mid-exchange."""


class Transport(Protocol):
    is_http: bool

    async def exchange(self, request: OutgoingRequest) -> RawResponse: ...

    async def aclose(self) -> None: ...


def encode_body(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _load_http_stack() -> ssl.SSLContext:
    """What the first request would otherwise load on the event loop: the modules httpx imports
    on first use, and a TLS context with the CA store."""
    for module in ("httpcore", "h11", "anyio._backends._asyncio"):
        importlib.import_module(module)
    return httpx.create_ssl_context(trust_env=False)


class HttpxTransport:
    """Real HTTP through one pooled client per engine."""

    is_http = True

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    async def prepare(self) -> None:
        """Create the client ahead of the first call, its TLS context in a thread: loading the
        CA store takes a few hundred milliseconds of CPU, which would otherwise stall the event
        loop (and every session's relay) in the middle of the first model call."""
        if self._client is None:
            context = await asyncio.to_thread(_load_http_stack)
            if self._client is None:
                self._client = self._new_client(context)

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._new_client(True)
        return self._client

    def _new_client(self, verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
        s = self._settings
        return httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=s.connect_timeout,
                read=s.read_timeout,
                write=s.read_timeout,
                pool=s.read_timeout,
            ),
            limits=httpx.Limits(
                max_connections=s.max_connections,
                max_keepalive_connections=s.max_connections,
                keepalive_expiry=30.0,
            ),
            verify=verify,
            follow_redirects=False,
            trust_env=False,
        )

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(request.headers)
        content = b"" if request.body is None else encode_body(request.body)
        try:
            response = await self._http_client().post(request.url, headers=headers, content=content)
        except httpx.ConnectTimeout as exc:
            raise TransportConnectError(
                f"connect timeout after {self._settings.connect_timeout:g} s"
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransportTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise TransportConnectError(f"{type(exc).__name__}: {exc}") from exc
        return RawResponse(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
