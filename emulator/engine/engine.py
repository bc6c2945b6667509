"""The engine: invoke a model request, from the SQL side's JSON to the provider's JSON answer.

Operations (docs/internals.md, "Engine interface"):

- `await Engine.invoke(request) -> Any`: the provider's response body, untouched;
- `await Engine.invoke_batch(requests) -> [{"ok": value} | {"error": {...}}]`, in order, run
  concurrently (each model's concurrency limit still applies);
- `Engine.embedding_stream(requests, extract) -> stream id`, then `await
  Engine.streams.next(id)` per batch as they finish (the warm-up's streamed batches, streams.py);
  `Engine.embedding_pipeline(requests, extract, target) -> "p:" + stream id`, whose batches the
  engine stores itself while the rows wait for theirs (`await Engine.streams.wait(...)`);
- `await Engine.handle(message)`: dispatch a callback message by its "op";
- `await Engine.prepare()` (optional, once serving: builds the HTTP client ahead of the first
  call); `await Engine.aclose()`; `Engine.stats` (stats.py).

Plan for one request: parse and check it (request.py); resolve its URL (urls.py); decide fake or
live; look in the response cache; otherwise authenticate (live only: auth.py) and call the
provider through the retrying client (http.py) over the fake or the HTTP transport; cache the
answer.

Routes (`_route`): with `models='fake'` every request whose provider is google, open_ai,
anthropic or hugging_face is answered in process by the fakes (no token, no secret, no HTTP),
through the `fake` transport the engine is given (it does not import the fakes);
`custom` models always go over HTTP to their URL, with their authentication. With
`models='live'` every request goes over HTTP; `record` too, through the cassette's recording
transport; `replay` answers every request from the cassette (no credentials, no network);
`replay-or-fake` answers from the cassette what it holds and the rest as `fake` would
(cassette.py).

Cache: on for faked and replayed requests when `cache_size > 0`; for live (and recorded)
requests only with `cache_live`. Concurrent identical requests are not merged (the warm-up sends
distinct texts already).

Inspector: with a `CallLog` (calls.py), each call is recorded there and every transport is
wrapped to note its exchanges; without one, nothing of it runs.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time
from typing import Any

from emulator.engine.auth import Authenticator, GoogleTokenSource
from emulator.engine.binary import (
    BINARY_EXTRACTORS,
    RAW_BINARY_EXTRACTORS,
    binary_key,
    real_array_text,
)
from emulator.engine.cache import ResponseCache, cache_key, thawed
from emulator.engine.calls import IN_BATCH, CallLog, InspectingTransport
from emulator.engine.cassette import Cassette, RecordingTransport, ReplayTransport
from emulator.engine.errors import ModelCallError, bad_request
from emulator.engine.extract import (
    EXTRACTORS,
    LITERAL_BRACKETS,
    RAW_EXTRACTORS,
    Extracted,
    RawText,
    batch_size,
    batch_texts,
    extractor_key,
)
from emulator.engine.http import ProviderClient
from emulator.engine.request import ModelRequest
from emulator.engine.secrets import SecretStore
from emulator.engine.settings import EngineSettings
from emulator.engine.stats import EngineStats, ModelStats
from emulator.engine.streams import BatchStreams
from emulator.engine.transport import HttpTransport, OutgoingRequest, Transport
from emulator.engine.urls import needs_project, resolve_url
from emulator.engine.warm_copy import StoreTarget, WarmCopier
from emulator.nl import handler as nl_handler
from emulator.nl.compose import TextSimilarity
from emulator.providers import FAKED_PROVIDERS

log = logging.getLogger("alloydb_ai_emulator.engine")
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
# The kinds of calls a warm-up answers (proxy/warmup.py's MODEL_CALLS, which a test holds this
# to): the only labels of warmup_row_misses_total, whatever a caller sends.
WARM_KINDS = frozenset({"embedding", "if", "generate", "rank", "summarize", "sentiment"})

FAKE_PROJECT = "emulator-project"  # fills relative Vertex URLs of faked calls when none is set


FAKING_MODES = frozenset({"fake", "replay-or-fake"})


class Engine:
    def __init__(
        self,
        settings: EngineSettings | None = None,
        calls: CallLog | None = None,
        fake: Transport | None = None,
        nl_similarity: TextSimilarity | None = None,
        warm_copier: WarmCopier | None = None,
    ) -> None:
        """`fake` answers the faked calls (emulator/fakes/transport.py's FakeTransport) and
        `nl_similarity` ranks alloydb_ai_nl's templates (emulator/fakes/embeddings.py's
        similarity): the engine does not import the fakes, whoever builds it plugs them in.
        `warm_copier` stores warm-ups' batches in binary (warm_copy.py; without one, the
        sessions store them as text)."""
        self.settings = settings or EngineSettings()
        self.warm_copier = warm_copier
        self.nl_similarity = nl_similarity
        if fake is None and self.settings.models in FAKING_MODES:
            raise ValueError(f"--models {self.settings.models} needs the fake models' transport")
        self.stats = EngineStats()
        self.cache = ResponseCache(self.settings.cache_size)
        self.calls = calls
        self.streams = BatchStreams()  # the warm-up's streamed batches (streams.py)
        # Warm-ups that failed and left their rows to the per-row calls, by SQLSTATE
        self.warmup_fallbacks: collections.Counter[str] = collections.Counter()
        self.warmup_row_misses: collections.Counter[str] = collections.Counter()
        self._secrets = SecretStore(self.settings)
        self._tokens = GoogleTokenSource()
        self._auth = Authenticator(self._secrets, self._tokens, self.settings)
        self._client = ProviderClient(self.settings, self.stats)
        mode = self.settings.models
        self.cassette = (
            Cassette(self.settings.cassette, must_exist=mode != "record")
            if self.settings.cassette else None
        )
        self._web = HttpTransport(self.settings)
        self._http: Transport = self._web
        self._fake: Transport | None = fake
        self._replay: ReplayTransport | None = None
        if self.cassette is not None and mode == "record":
            self._http = RecordingTransport(self._http, self.cassette)
        elif self.cassette is not None:
            self._replay = ReplayTransport(self.cassette, mode)
        self._transports: dict[str, Transport] = {"live": self._http}
        if fake is not None:
            self._transports["fake"] = fake
        if self._replay is not None:
            self._transports["replay"] = self._replay
        if calls is not None:
            live = "record" if mode == "record" else "live"
            self._transports = {
                route: InspectingTransport(t, live if route == "live" else route)
                for route, t in self._transports.items()
            }

    def is_faked(self, request: ModelRequest) -> bool:
        return self.settings.models == "fake" and request.provider in FAKED_PROVIDERS

    def _route(self, request: ModelRequest) -> str:
        """fake, replay or live (which is also the recording one), before the URL is known."""
        mode = self.settings.models
        if mode in ("replay", "replay-or-fake"):
            return "replay"
        if mode == "fake" and request.provider in FAKED_PROVIDERS:
            return "fake"
        return "live"

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
        ``Extracted`` (or None when the answer is not of the expected shape); an answer of the
        in-process fakes or of the cache keeps its embeddings frozen (``FrozenVector``, whose
        literals ``EXTRACTORS`` read). Without it, every embedding is a list."""
        model_id = request.get("model_id") if isinstance(request, dict) else None
        provider = request.get("provider") if isinstance(request, dict) else None
        self.stats.calls += 1
        model_stats = self.stats.model(str(model_id), str(provider or "custom"))
        model_stats.calls += 1
        started = time.perf_counter()
        inspected = self.calls.begin(request) if self.calls is not None else None
        try:
            value = await self._invoke(ModelRequest.parse(request), extract)
        except ModelCallError as exc:
            self.stats.errors += 1
            model_stats.errors += 1
            model_stats.errors_by_sqlstate[exc.sqlstate] += 1
            self._observe(model_stats, str(model_id), started, exc.sqlstate)
            if inspected is not None and self.calls is not None:
                self.calls.end(inspected, error=exc)
            raise
        except BaseException as exc:  # cancelled: the record says so
            if inspected is not None and self.calls is not None:
                self.calls.end(inspected, error=exc)
            raise
        self._observe(model_stats, str(model_id), started, "ok")
        if inspected is not None and self.calls is not None:
            self.calls.end(inspected, value)
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
        route = self._route(request)
        url = resolve_url(request, self.settings, await self._project(request, route != "live"))
        outgoing = OutgoingRequest(request.model_id, url, dict(request.headers), request.body,
                                   request.provider)
        if (route == "replay" and self.settings.models == "replay-or-fake"
                and self._replay is not None and not self._replay.covers(outgoing)):
            route = "fake" if request.provider in FAKED_PROVIDERS else "live"
        use_cache = self.settings.cache_size > 0 and (route != "live" or self.settings.cache_live)
        key = cache_key(request.model_id, url, request.body) if use_cache else None
        if key is not None:
            found, value = self.cache.get(key)
            if found:
                self.stats.cache_hits += 1
                self.stats.model(request.model_id).cache_hits += 1
                return value if extract is not None or route != "fake" else thawed(value)
        secrets: list[str] = []
        if route == "live":
            headers, secrets = await self._auth.headers(request, url)
            outgoing = OutgoingRequest(request.model_id, url, headers, request.body,
                                       request.provider)
        # The warm-up's batches over HTTP, not cached: the answer's bytes become literals.
        raw = (RAW_EXTRACTORS.get(extract) or RAW_BINARY_EXTRACTORS[extract]
               if extract is not None and key is None else None)
        value = await self._client.call(outgoing, self._transports[route], secrets, raw=raw)
        if isinstance(value, Extracted):
            self.stats.model(request.model_id).input_tokens += value.input_tokens
            return value
        if raw is not None and value is None:
            return None  # an answer not of the expected shape: the per-row path reports it
        self.stats.count_tokens(request.model_id, value)
        if key is not None:
            self.cache.put(key, value)
        # The in-process fakes answer frozen vectors (and the cache keeps only theirs frozen):
        # the warm-up reads their literals, every other caller gets the lists a provider
        # answers. Live and replayed answers hold none, so they are not walked.
        return value if extract is not None or route != "fake" else thawed(value)

    async def _invoke_result(self, request: Any) -> dict[str, Any]:
        try:
            return {"ok": await self.invoke(request)}
        except ModelCallError as exc:
            return {"error": exc.as_dict()}

    async def invoke_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each request's `{"ok": value}` or `{"error": {sqlstate, message, detail}}`, in order."""
        token = IN_BATCH.set(len(requests)) if self.calls is not None else None
        try:
            return list(await asyncio.gather(*(self._invoke_result(r) for r in requests)))
        finally:
            if token is not None:
                IN_BATCH.reset(token)

    async def handle(self, message: Any) -> Any:
        """Answer one callback message: `op` invoke (default), invoke_batch (streamed with
        `"stream": true`), stream_next, stream_drop or alloydb_ai_nl."""
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
            if extract is not None and message.get("stream") is True:
                literals = message.get("literals", "real[]")
                if not isinstance(literals, str) or literals not in LITERAL_BRACKETS:
                    raise bad_request(None, f"unknown literals {literals!r}")
                # "pipeline" as well: a warm-up of an older build of the extension sends
                # "store" alone, and takes its batches with stream_next (as text, then).
                store = message.get("store") if message.get("pipeline") is True else None
                target = (self.warm_copier.target(store)
                          if self.warm_copier is not None and store is not None else None)
                if target is not None:
                    return self.embedding_pipeline(
                        requests, extractor_key(str(extract), literals), target)
                return self.embedding_stream(requests, extractor_key(str(extract), literals))
            if extract is not None:
                return await self.embedding_lines(requests, str(extract))
            return await self.invoke_batch(requests)
        if op == "stream_next":
            return RawText(await self.streams.next(str(message.get("stream"))))
        if op == "stream_drop":
            return self.streams.drop(str(message.get("stream")))
        if op == "stream_wait":
            streams, item = message.get("streams"), message.get("item")
            if not isinstance(streams, list) or not isinstance(item, str):
                raise bad_request(None, "stream_wait needs 'streams' (an array) and 'item'")
            return RawText(await self.streams.wait(
                [str(s) for s in streams], str(message.get("model_id") or ""), item,
                take=message.get("take") is not False))
        if op == "warmup_fell_back":
            return self.warmup_fell_back(message.get("sqlstate"))
        if op == "warmup_row_missed":
            return self.warmup_row_missed(message.get("kind"))
        if op == "alloydb_ai_nl":  # the alloydb_ai_nl extension's tasks (emulator/nl/)
            return await nl_handler.handle(self, message)
        raise bad_request(None, f"unknown engine op {op!r}")

    def warmup_fell_back(self, sqlstate: Any) -> bool:
        """A warm-up failed (warmup.sql's _warm): counted and logged by its SQLSTATE alone (the
        message may hold the statement's data)."""
        code = sqlstate if isinstance(sqlstate, str) and _SQLSTATE.fullmatch(sqlstate) else "?????"
        self.warmup_fallbacks[code] += 1
        log.warning("a warm-up failed (SQLSTATE %s): its rows make their own model calls", code)
        return True

    def warmup_row_missed(self, kind: Any) -> bool:
        """A per-row call of a warmed statement found no warmed answer (warmup.sql's
        _warm_missed) and makes its own request: counted by kind."""
        self.warmup_row_misses[kind if kind in WARM_KINDS else "other"] += 1
        return True

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
            lines.extend(_lines(literals, batch_size(request)))
        return RawText(b"\n".join(lines))

    def embedding_stream(self, requests: list[dict[str, Any]], extract: str) -> RawText:
        """`embedding_lines` one batch at a time: starts the batches and answers a stream id at
        once; each `stream_next` then answers the next batch to finish as `<position>\\n<its
        lines>` (streams.py). At most twice the model concurrency of batches are started and
        not yet taken. The op's `"literals": "vector"` asks for pgvector's brackets, `[...]`,
        for a warm-up that parses with pgvector's input (`extractor_key` in extract.py)."""
        if extract not in EXTRACTORS:
            raise bad_request(None, f"unknown extract {extract!r}")

        async def run(index: int) -> bytes:
            request = requests[index]
            found = await self._literals(request, extract)
            return b"\n".join(_lines(found, batch_size(request)))

        window = 2 * self.settings.model_concurrency
        return RawText(self.streams.open(run, len(requests), window).encode())

    def embedding_pipeline(self, requests: list[dict[str, Any]], extract: str,
                           target: StoreTarget) -> RawText:
        """The warm-up's batches stored by the engine itself (the op's "store", warm_copy.py),
        while the statement's rows go on: answers `p:<stream id>` at once; a row that misses
        the cache asks `stream_wait` for its text (streams.py, "Pipelined streams").

        Each batch whose numbers can be made binary (binary.py) is COPYed into the caller's
        cache; any other, as text. One whose COPY failed keeps its literals, in the brackets
        of `extract` (`extractor_key`): the first row that waits for one of its texts gets
        them all and stores them in its own session, as a warm-up without this store does."""
        copier = self.warm_copier
        if extract not in EXTRACTORS or copier is None:
            raise bad_request(None, f"unknown extract {extract!r}")
        brackets = LITERAL_BRACKETS["vector" if extract.endswith(":vector") else "real[]"]
        texts_of = [batch_texts(r) or [] for r in requests]

        async def run(index: int) -> list[bytes] | None:
            request, texts = requests[index], texts_of[index]
            found = await self._literals(request, binary_key(extract))
            binary = isinstance(found, Extracted) and found.binary
            if isinstance(found, Extracted) and binary:
                if len(found.literals) == len(texts) and await copier.store(
                        target, texts, found.literals):
                    return None
                found = [real_array_text(value, brackets) for value in found.literals]
            lines = _lines(found, batch_size(request))
            if len(lines) != len(texts) or not all(lines):
                return []
            # Numbers left as text (short ones, which strtof reads faster than Python): the
            # COPY's backend parses them, beside the session's rows, and PostgreSQL's own
            # input reads them, as the session's would.
            if not binary and all(type(text) is str for text in texts) and await copier.store(
                    target, texts, lines, text=True):
                return None
            return lines

        window = 2 * self.settings.model_concurrency
        stream_id = self.streams.open_pipelined(run, texts_of, window, target.model_id,
                                                copier.hold(target))
        return RawText(b"p:" + stream_id.encode())

    async def _literals(self, request: dict[str, Any],
                        extract: str) -> Extracted | list[bytes] | None:
        """One batch request's literals, or None (the per-row calls will say what went wrong).
        An `Extracted` is binary values when its `binary` says so (a `binary_key` extract)."""
        try:
            value = await self.invoke(request, extract=extract)
        except ModelCallError:
            return None
        if value is None or isinstance(value, Extracted):
            return value
        return (BINARY_EXTRACTORS.get(extract) or EXTRACTORS[extract])(value)

    async def prepare(self) -> None:
        """Get ready for the first HTTP call (the command line runs this once it is serving); a
        failure here is only logged: the first call builds the client again and reports it."""
        try:
            await self._web.prepare()
        except Exception:
            log.warning("could not prepare the HTTP client ahead of time", exc_info=True)

    async def aclose(self) -> None:
        self.streams.close()
        if self.warm_copier is not None:
            await self.warm_copier.aclose()
        await self._http.aclose()
        if self._fake is not None:
            await self._fake.aclose()
        if self.cassette is not None:
            self.cassette.flush()
        await asyncio.to_thread(self._secrets.close)


def _lines(found: Extracted | list[bytes] | None, count: int) -> list[bytes]:
    """A batch's text literals, or an empty line per text when it has none of the right count
    (those texts take the per-row path)."""
    literals = found.literals if isinstance(found, Extracted) else found
    return literals if literals is not None and len(literals) == count else [b""] * count
