"""The engine: invoke a model request, from the SQL side's JSON to the provider's JSON answer.

Operations (docs/internals.md, "Engine interface"):

- `await Engine.invoke(request) -> Any`: the provider's response body, untouched;
- `await Engine.invoke_batch(requests) -> [{"ok": value} | {"error": {...}}]`, in order, run
  concurrently (each model's concurrency limit still applies);
- `await Engine.handle(message)`: dispatch a callback message by its "op";
- `await Engine.prepare()` (optional, once serving: builds the HTTP client ahead of the first
  call); `await Engine.aclose()`; `Engine.stats` (stats.py).

Plan for one request: parse and check it (request.py); resolve its URL (urls.py); decide fake or
live; look in the response cache; otherwise authenticate (live only: auth.py) and call the
provider through the retrying client (http.py) over the fake or the HTTP transport; cache the
answer.

Fake or live: with `models='fake'` every request whose provider is google, open_ai, anthropic or
hugging_face is answered in process by the fakes (no token, no secret, no HTTP); `custom` models
always go over HTTP to their URL, with their authentication, in both modes. With
`models='live'` every request goes over HTTP.

Cache: on for faked requests when `cache_size > 0`; for live requests only with `cache_live`.
Concurrent identical requests are not merged (the warm-up sends distinct texts already).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from emulator.engine.auth import Authenticator, GoogleTokenSource
from emulator.engine.cache import ResponseCache, cache_key
from emulator.engine.errors import ModelCallError, bad_request
from emulator.engine.extract import EXTRACTORS, RAW_EXTRACTORS, Extracted, RawText, batch_size
from emulator.engine.fake_transport import FakeTransport
from emulator.engine.http import ProviderClient
from emulator.engine.request import ModelRequest
from emulator.engine.secrets import SecretStore
from emulator.engine.settings import EngineSettings
from emulator.engine.stats import EngineStats, ModelStats
from emulator.engine.transport import HttpxTransport, OutgoingRequest
from emulator.engine.urls import needs_project, resolve_url

log = logging.getLogger("alloydb_ai_emulator.engine")

FAKED_PROVIDERS = frozenset({"google", "open_ai", "anthropic", "hugging_face"})
FAKE_PROJECT = "emulator-project"  # fills relative Vertex URLs of faked calls when none is set


class Engine:
    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.stats = EngineStats()
        self.cache = ResponseCache(self.settings.cache_size)
        self._secrets = SecretStore(self.settings)
        self._tokens = GoogleTokenSource()
        self._auth = Authenticator(self._secrets, self._tokens)
        self._client = ProviderClient(self.settings, self.stats)
        self._http = HttpxTransport(self.settings)
        self._fake = FakeTransport(self.settings)

    def is_faked(self, request: ModelRequest) -> bool:
        return self.settings.models == "fake" and request.provider in FAKED_PROVIDERS

    async def _project(self, request: ModelRequest, faked: bool) -> str | None:
        if self.settings.google_project or not needs_project(request):
            return self.settings.google_project
        if faked:
            return FAKE_PROJECT
        return await self._tokens.project(request.model_id)

    async def invoke(self, request: dict[str, Any], *, extract: str | None = None) -> Any:
        """The provider's JSON answer to one request, or ModelCallError.

        With ``extract`` (a key of ``RAW_EXTRACTORS``), an answer that comes over HTTP and is not
        cached is not parsed as JSON: the extractor reads its bytes and the call answers its
        ``Extracted`` (or None when the answer is not of the expected shape)."""
        model_id = request.get("model_id") if isinstance(request, dict) else None
        provider = request.get("provider") if isinstance(request, dict) else None
        self.stats.calls += 1
        self.stats.calls_by_model[str(model_id)] += 1
        model_stats = self.stats.model(str(model_id), str(provider or "custom"))
        model_stats.calls += 1
        started = time.perf_counter()
        try:
            value = await self._invoke(ModelRequest.parse(request), extract)
        except ModelCallError as exc:
            self.stats.errors += 1
            self.stats.errors_by_model[str(model_id)] += 1
            model_stats.errors += 1
            model_stats.errors_by_sqlstate[exc.sqlstate] += 1
            self._observe(model_stats, str(model_id), started, exc.sqlstate)
            raise
        self._observe(model_stats, str(model_id), started, "ok")
        return value

    @staticmethod
    def _observe(model_stats: ModelStats, model_id: str, started: float, status: str) -> None:
        elapsed = time.perf_counter() - started
        model_stats.call_latency.observe(elapsed)
        if log.isEnabledFor(logging.DEBUG):
            # Model, provider, outcome and time only: never a header, a secret or the prompt.
            log.debug("model_call model=%s provider=%s status=%s latency_ms=%.2f",
                      json.dumps(model_id), model_stats.provider, status, elapsed * 1000.0)

    async def _invoke(self, request: ModelRequest, extract: str | None = None) -> Any:
        faked = self.is_faked(request)
        url = resolve_url(request, self.settings, await self._project(request, faked))
        use_cache = self.settings.cache_size > 0 and (faked or self.settings.cache_live)
        key = cache_key(request.model_id, url, request.body) if use_cache else None
        if key is not None:
            found, value = self.cache.get(key)
            if found:
                self.stats.cache_hits += 1
                self.stats.model(request.model_id).cache_hits += 1
                return value
        if faked:
            outgoing = OutgoingRequest(request.model_id, url, dict(request.headers), request.body)
            value = await self._client.call(outgoing, self._fake, [])
        else:
            headers, secrets = await self._auth.headers(request)
            outgoing = OutgoingRequest(request.model_id, url, headers, request.body)
            raw = RAW_EXTRACTORS[extract] if extract is not None and key is None else None
            value = await self._client.call(outgoing, self._http, secrets, raw=raw)
            if raw is not None:
                if value is not None:
                    self.stats.model(request.model_id).input_tokens += value.input_tokens
                return value
        self.stats.count_tokens(request.model_id, value)
        if key is not None:
            self.cache.put(key, value)
        return value

    async def _invoke_result(self, request: Any) -> dict[str, Any]:
        try:
            return {"ok": await self.invoke(request)}
        except ModelCallError as exc:
            return {"error": exc.as_dict()}

    async def invoke_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each request's `{"ok": value}` or `{"error": {sqlstate, message, detail}}`, in order."""
        return list(await asyncio.gather(*(self._invoke_result(r) for r in requests)))

    async def handle(self, message: Any) -> Any:
        """Answer one callback message: `op` invoke (default) or invoke_batch."""
        if not isinstance(message, dict):
            raise bad_request(None, "an engine request must be a JSON object")
        op = message.get("op", "invoke")
        if op == "invoke":
            return await self.invoke(message)
        if op == "invoke_batch":
            requests = message.get("requests")
            if not isinstance(requests, list):
                raise bad_request(None, "invoke_batch needs a 'requests' array")
            extract = message.get("extract")
            if extract is not None:
                return await self.embedding_lines(requests, str(extract))
            return await self.invoke_batch(requests)
        raise bad_request(None, f"unknown engine op {op!r}")

    async def embedding_lines(self, requests: list[dict[str, Any]], extract: str) -> RawText:
        """The warm-up's fast path for built-in embedding transforms: the answers of a batch of
        Vertex AI or OpenAI embedding requests as one line per input text, each line a
        PostgreSQL ``real[]`` literal (empty where that text's request failed). It applies
        exactly what the built-in output transforms do, without a JSON round trip in SQL.

        The requests run concurrently (each model's concurrency limit applies) and each answer
        is turned into its literals as soon as it arrives, so only the literals are kept, never
        the answers' JSON or floats (extract.py)."""
        if extract not in EXTRACTORS:
            raise bad_request(None, f"unknown extract {extract!r}")
        answers = await asyncio.gather(*(self._literals(r, extract) for r in requests))
        lines: list[bytes] = []
        for request, literals in zip(requests, answers):
            count = batch_size(request)
            if literals is None or len(literals) != count:
                lines.extend([b""] * count)
            else:
                lines.extend(literals)
        return RawText(b"\n".join(lines))

    async def _literals(self, request: dict[str, Any], extract: str) -> list[bytes] | None:
        """One batch request's literals, or None (the per-row calls will say what went wrong)."""
        try:
            value = await self.invoke(request, extract=extract)
        except ModelCallError:
            return None
        if value is None or isinstance(value, Extracted):
            return None if value is None else value.literals
        return EXTRACTORS[extract](value)

    async def prepare(self) -> None:
        """Get ready for the first HTTP call (the command line runs this once it is serving); a
        failure here is only logged: the first call builds the client again and reports it."""
        try:
            await self._http.prepare()
        except Exception:
            log.warning("could not prepare the HTTP client ahead of time", exc_info=True)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._fake.aclose()
        await asyncio.to_thread(self._secrets.close)
