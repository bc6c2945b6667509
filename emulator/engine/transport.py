"""One exchange with a provider: a request out, a raw response back, no retries or policy.

`Transport` is what the retrying client (`http.py`) talks to. Two implementations:

- `HttpTransport` (here): a real HTTP POST through one shared, pooled `aiohttp.ClientSession`
  (created by `prepare()` at startup, or on first use, so it binds to the running loop), with
  the engine's connect and read timeouts. Cancelling the awaiting task abandons the request:
  aiohttp closes the connection and nothing waits for the provider.
- `FakeTransport` (emulator/fakes/transport.py): the fake models, in process; the engine gets
  it from whoever builds it, so it never imports the fakes.
- `RecordingTransport` and `ReplayTransport` (cassette.py): record the HTTP transport's answers
  into a cassette file, and answer from one.
- `InspectingTransport` (calls.py): wraps any of them to show each exchange in the inspector.

A transport answers a `RawResponse` for any HTTP status and raises `TransportTimeout` (no answer
in time), `TransportConnectError` (could not connect, or the connection broke) or
`TransportTooLarge` (an answer over `EngineSettings.max_response_bytes`: read no further than
that, whether it declares its length or not); the caller decides what those mean.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import certifi

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


class TransportTooLarge(Exception):
    """The answer is longer than the engine reads (its Content-Length, or what came)."""


class Transport(Protocol):
    is_http: bool

    async def exchange(self, request: OutgoingRequest) -> RawResponse: ...

    async def aclose(self) -> None: ...


def encode_body(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def _bounded_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The answer's body, or TransportTooLarge past ``limit`` bytes: a provider (or any URL a
    model is registered with) cannot make the engine hold more than that."""
    length = response.content_length
    if length is not None:
        if length > limit:
            raise TransportTooLarge
        return await response.read()  # aiohttp reads no more than the declared length
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise TransportTooLarge
    return bytes(body)


def _load_http_stack() -> ssl.SSLContext:
    """What the first request would otherwise load on the event loop: a TLS context with the
    CA store (certifi's, as the HTTP stack always used)."""
    return ssl.create_default_context(cafile=certifi.where())


class HttpTransport:
    """Real HTTP/1.1 through one pooled aiohttp session per engine.

    aiohttp rather than httpx: per request, httpx's pool re-checks every idle connection (a
    readability poll through anyio's attribute layers, and a count of idle connections for
    each idle one), which made the engine's HTTP client its largest CPU cost: about 2 ms per
    request at 16 in flight, against about 0.3 ms here (bench/ai_if.py, `--repeat`)."""

    is_http = True

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._context: ssl.SSLContext | None = None

    async def prepare(self) -> None:
        """Build the TLS context ahead of the first call, in a thread: loading the CA store
        takes a few hundred milliseconds of CPU, which would otherwise stall the event loop
        (and every session's relay) in the middle of the first model call."""
        if self._context is None:
            context = await asyncio.to_thread(_load_http_stack)
            self._context = self._context or context
        self._http_session()

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._context is None:
                self._context = _load_http_stack()
            s = self._settings
            connector = aiohttp.TCPConnector(
                limit=s.max_connections, limit_per_host=0, keepalive_timeout=30.0,
                ssl=self._context)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # sock_read: the most time between two reads, as httpx's read timeout was.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=s.connect_timeout, sock_read=s.read_timeout),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(request.headers)
        content = b"" if request.body is None else encode_body(request.body)
        try:
            async with self._http_session().post(
                request.url, data=content, headers=headers, allow_redirects=False
            ) as response:
                body = await _bounded_body(response, self._settings.max_response_bytes)
        except aiohttp.ConnectionTimeoutError as exc:
            raise TransportConnectError(
                f"connect timeout after {self._settings.connect_timeout:g} s"
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TransportTimeout(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise TransportConnectError(f"{type(exc).__name__}: {exc}") from exc
        return RawResponse(
            response.status,
            {k.lower(): v for k, v in response.headers.items()},
            body,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
