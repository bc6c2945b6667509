"""One exchange with a provider: a request out, a raw response back, no retries or policy.

`Transport` is what the retrying client (`http.py`) talks to. Two implementations:

- `HttpxTransport` (here): a real HTTP POST through one shared, pooled `httpx.AsyncClient`
  (created on first use, so it binds to the running loop), with the engine's connect and read
  timeouts. Cancelling the awaiting task abandons the request: httpx closes the connection and
  nothing waits for the provider.
- `FakeTransport` (fake_transport.py): the fake models, in process.
- `RecordingTransport` and `ReplayTransport` (cassette.py): record the HTTP transport's answers
  into a cassette file, and answer from one.
- `InspectingTransport` (calls.py): wraps any of them to show each exchange in the inspector.

A transport answers a `RawResponse` for any HTTP status and raises `TransportTimeout` (no answer
in time) or `TransportConnectError` (could not connect, or the connection broke); the caller
decides what those mean.
"""

from __future__ import annotations

import json
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


class HttpxTransport:
    """Real HTTP through one pooled client per engine."""

    is_http = True

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self._settings
            self._client = httpx.AsyncClient(
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
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

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
