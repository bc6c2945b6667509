"""Calling a provider: concurrency limit per model, retries, and errors a person can read.

`ProviderClient.call(request, transport, secrets) -> response JSON value`:

1. at most `model_concurrency` exchanges per model id are in flight (an asyncio.Semaphore per
   model; held only during an exchange, not while sleeping before a retry);
2. retries, up to `max_retries`, on 408/429/5xx and on connection failures, waiting the
   provider's `Retry-After` (capped at `max_retry_after`) or exponential backoff with full
   jitter (backoff.py); read timeouts are not retried (the provider may still be working on it,
   and the caller has already waited the whole read timeout);
3. a 2xx answer is parsed as JSON (an empty body is JSON null);
4. failures become `ModelCallError` per docs/internals.md: 38000 with DETAIL
   `HTTP <status>: <body excerpt>` (secrets scrubbed), 57014 timeout, 08001 connect, 22032 JSON.

Cancellation needs no code here: when the awaiting task is cancelled, the await inside the
transport raises CancelledError, the semaphore is released, and the HTTP client drops the
connection.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from emulator.engine import errors
from emulator.engine.backoff import is_retryable, retry_delay
from emulator.engine.settings import EngineSettings
from emulator.engine.stats import EngineStats
from emulator.engine.transport import (
    NOT_PARSED,
    OutgoingRequest,
    RawResponse,
    Transport,
    TransportConnectError,
    TransportTimeout,
    TransportTooLarge,
)


class ProviderClient:
    def __init__(
        self, settings: EngineSettings, stats: EngineStats, rng: random.Random | None = None
    ) -> None:
        self._settings = settings
        self._stats = stats
        self._rng = rng or random.Random()
        self._limits: dict[str, asyncio.Semaphore] = {}
        # Answers read with `raw` (a warm-up's batches, megabytes each) one at a time, each in
        # its own turn of the event loop: answers that arrive together would otherwise all be
        # read in one turn, and the first one's next step (its COPY) would wait for all.
        self._reading = asyncio.Lock()

    def _limit(self, model_id: str) -> asyncio.Semaphore:
        limit = self._limits.get(model_id)
        if limit is None:
            limit = self._limits[model_id] = asyncio.Semaphore(self._settings.model_concurrency)
        return limit

    async def _exchange(self, request: OutgoingRequest, transport: Transport) -> RawResponse:
        async with self._limit(request.model_id):
            self._stats.provider_requests += 1
            if transport.is_http:
                self._stats.http_requests += 1
            model_stats = self._stats.model(request.model_id)
            model_stats.provider_requests += 1
            model_stats.in_flight += 1
            model_stats.max_in_flight = max(model_stats.max_in_flight, model_stats.in_flight)
            started = time.perf_counter()
            try:
                return await transport.exchange(request)
            finally:
                model_stats.in_flight -= 1
                model_stats.request_latency.observe(time.perf_counter() - started)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        s = self._settings
        return retry_delay(
            attempt,
            retry_after,
            base=s.backoff_base,
            cap=s.backoff_cap,
            max_retry_after=s.max_retry_after,
            rng=self._rng,
        )

    async def call(
        self,
        request: OutgoingRequest,
        transport: Transport,
        secrets: list[str],
        *,
        raw: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """The answer's JSON value; with ``raw``, what ``raw`` makes of a 2xx answer's bytes
        (when the transport did not parse it already)."""
        host = urlsplit(request.url).netloc or request.url
        attempt = 0
        while True:
            try:
                response = await self._exchange(request, transport)
            except TransportTimeout as exc:
                raise errors.provider_timeout(
                    request.model_id, self._settings.read_timeout, host
                ) from exc
            except TransportTooLarge as exc:
                raise errors.provider_too_large(
                    request.model_id, host, self._settings.max_response_bytes
                ) from exc
            except TransportConnectError as exc:
                if attempt >= self._settings.max_retries:
                    raise errors.provider_unreachable(
                        request.model_id, host, errors.redact(str(exc), secrets)
                    ) from exc
                delay = self._delay(attempt, None)
            else:
                if 200 <= response.status < 300:
                    if raw is not None and response.value is NOT_PARSED:
                        async with self._reading:
                            value = raw(response.content)
                            await asyncio.sleep(0)  # held through the turn (see _reading)
                            return value
                    return _parse(request.model_id, response, secrets)
                if not is_retryable(response.status) or attempt >= self._settings.max_retries:
                    raise errors.provider_status(
                        request.model_id, response.status, response.content, secrets
                    )
                delay = self._delay(attempt, response.headers.get("retry-after"))
            attempt += 1
            self._stats.retries += 1
            self._stats.model(request.model_id).retries += 1
            await asyncio.sleep(delay)


def _parse(model_id: str, response: RawResponse, secrets: list[str]) -> Any:
    if response.value is not NOT_PARSED:
        return response.value
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.provider_bad_json(model_id, response.content, secrets) from exc
