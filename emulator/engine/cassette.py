"""Record and replay: real providers' answers kept in a file, replayed offline.

`serve --models record --cassette FILE` calls the providers as `--models live` does and keeps
every answer in FILE; `--models replay --cassette FILE` answers only from FILE: no network, no
credentials. Both hook in at the transport seam (transport.py): `RecordingTransport` wraps the
HTTP transport, `ReplayTransport` stands in for it.

The file: JSON lines, UTF-8, one entry per logical call, sorted (so two recordings of the same
session are byte-equal and a review diff shows what changed). Entries hold the provider, the
model id, the kind, the operation (the `:verb` of the URL: predict, generateContent, ...), the
canonical request, the response, and the URL it was recorded from (credentials removed,
scrub.py; informational only, never matched). No header is ever written; secret header values
are scrubbed from every field.

Matching, by provider, model id, operation and canonical request (JSON with sorted keys):

- embeddings per input text, so a statement replays whether the warm-up batches its texts as it
  did when recorded or not: Vertex AI publisher models' `:predict` (`instances[i]` ->
  `predictions[i]`, with the request's `parameters`) and OpenAI's `/embeddings` (`input[i]` ->
  `data[i]`, with the rest of the body) are kept as one entry per instance (kind `embedding`)
  and a batch is answered by putting the entries back together (Vertex AI's `metadata` and
  OpenAI's `usage` are not kept per text, so replays lack them);
- every other request by its whole body (kind `call`), with its HTTP status: 2xx answers and
  the provider's refusals that are not retried (a 400 for a bad transform replays as the same
  SQL error); retried statuses (429, 5xx) are not kept.

A request with no recorded answer: `ModelCallError` 38000 naming the model, saying which text or
request is missing and how to record it. `--models replay-or-fake` sends such a request where
`--models fake` would (the engine asks `ReplayTransport.covers`).

Writing: entries are kept in memory and the whole file is rewritten (to a temporary file, then
renamed) a second after the last new answer and when the engine closes. Recording into an
existing cassette keeps its entries and adds or replaces answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from emulator.engine.backoff import is_retryable
from emulator.engine.errors import EXCERPT_CHARS, SQLSTATE_PROVIDER_ERROR, ModelCallError
from emulator.engine.scrub import clean_url, scrub, secret_values
from emulator.engine.transport import NOT_PARSED, OutgoingRequest, RawResponse, Transport

FLUSH_DELAY_SECONDS = 1.0
KIND_EMBEDDING = "embedding"
KIND_CALL = "call"


class CassetteError(Exception):
    """The cassette file cannot be read; the message names the file and the line."""


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def operation(url: str) -> str:
    """The URL's `:verb` (predict, generateContent, ...), else its last path segment."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else last


@dataclass(frozen=True)
class Split:
    """A batched embedding request seen as its per-text parts."""

    kind: str  # 'vertex' or 'openai'
    items: list[Any]  # one canonical request per text
    rest: dict[str, Any]  # the body without its texts


def split_embeddings(provider: str, url: str, body: Any) -> Split | None:
    if not isinstance(body, dict):
        return None
    path = urlsplit(url).path if "://" in url else url
    if (provider == "google" and path.endswith(":predict") and "/models/" in path
            and "/endpoints/" not in path and isinstance(body.get("instances"), list)
            and body["instances"]):
        rest = {k: v for k, v in body.items() if k != "instances"}
        return Split("vertex", [{"instance": i, **rest} for i in body["instances"]], rest)
    texts = body.get("input")
    if provider == "open_ai" and path.endswith("/embeddings") and texts:
        rest = {k: v for k, v in body.items() if k != "input"}
        items = texts if isinstance(texts, list) else [texts]
        return Split("openai", [{"input": t, **rest} for t in items], rest)
    return None


def split_answer(split: Split, value: Any) -> list[Any] | None:
    """The per-text parts of a batched embedding answer, or None when it has another shape."""
    if split.kind == "vertex":
        parts = value.get("predictions") if isinstance(value, dict) else None
        return parts if isinstance(parts, list) and len(parts) == len(split.items) else None
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, list) or len(data) != len(split.items):
        return None
    if not all(isinstance(d, dict) for d in data):
        return None
    ordered = sorted(data, key=lambda d: int(d.get("index", 0)))
    return [{k: v for k, v in d.items() if k != "index"} for d in ordered]


def join_answer(split: Split, parts: list[Any]) -> Any:
    if split.kind == "vertex":
        return {"predictions": parts}
    answer: dict[str, Any] = {
        "object": "list",
        "data": [{**p, "index": i} for i, p in enumerate(parts)],
    }
    if "model" in split.rest:
        answer["model"] = split.rest["model"]
    return answer


class Cassette:
    """The entries of one cassette file, by key; `add` and `flush` when recording."""

    def __init__(self, path: str | os.PathLike[str], *, must_exist: bool) -> None:
        self.path = Path(path)
        self._lines: dict[str, str] = {}  # key -> the entry's JSON line
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._flush_task: asyncio.Task[None] | None = None
        # A write in a thread may end after a later one: the newest generation wins.
        self._generation = 0
        self._written = -1
        self._write_lock = threading.Lock()
        if self.path.exists():
            self._load()
        elif must_exist:
            raise CassetteError(f"the cassette {self.path} does not exist; record it first with "
                                "`alloydb-ai-emulator serve --models record --cassette "
                                f"{self.path}`")
        elif not self.path.parent.is_dir():
            raise CassetteError(f"cannot record into {self.path}: "
                                f"{self.path.parent} is not a directory")

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(provider: str, model_id: str, op: str, kind: str, request: Any) -> str:
        return canonical([provider, model_id, op, kind, request])

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CassetteError(f"cannot read the cassette {self.path}: {exc}") from exc
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = self.key(entry["provider"], entry["model"], entry["operation"],
                               entry["kind"], entry["request"])
                if "response" not in entry:
                    raise KeyError("response")
            except (ValueError, KeyError, TypeError) as exc:
                raise CassetteError(f"{self.path}, line {number}: not a cassette entry "
                                    f"({type(exc).__name__}: {exc})") from exc
            self._entries[key] = entry
            self._lines[key] = canonical(entry)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def add(self, entry: dict[str, Any], secrets: list[str]) -> None:
        key = self.key(entry["provider"], entry["model"], entry["operation"], entry["kind"],
                       entry["request"])
        line = scrub(canonical(entry), secrets)
        if self._lines.get(key) == line:
            return
        self._lines[key] = line
        self._entries[key] = json.loads(line)
        self._dirty = True
        self._generation += 1
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: flush() at close
                self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        while self._dirty:  # answers that arrive while writing are written next
            await asyncio.sleep(FLUSH_DELAY_SECONDS)
            self._dirty = False
            await asyncio.to_thread(self._write, sorted(self._lines.values()), self._generation)

    def flush(self) -> None:
        """Write the file now (when the engine closes)."""
        if self._flush_task is not None:
            self._flush_task.cancel()
        if self._dirty:
            self._dirty = False
            self._write(sorted(self._lines.values()), self._generation)

    def _write(self, lines: list[str], generation: int) -> None:
        with self._write_lock:
            if generation <= self._written:
                return
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp",
                                       dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.writelines(line + "\n" for line in lines)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._written = generation


class RecordingTransport:
    """The live transport, keeping each final answer in the cassette."""

    def __init__(self, inner: Transport, cassette: Cassette) -> None:
        self._inner = inner
        self._cassette = cassette
        self.is_http = inner.is_http

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        response = await self._inner.exchange(request)
        if 200 <= response.status < 300 or (400 <= response.status < 500
                                            and not is_retryable(response.status)):
            self._keep(request, response)
        return response

    def _keep(self, request: OutgoingRequest, response: RawResponse) -> None:
        if response.value is not NOT_PARSED:
            value = response.value
        else:
            try:
                value = json.loads(response.content) if response.content.strip() else None
            except (ValueError, UnicodeDecodeError):
                return  # not JSON: the call fails (22032); nothing worth replaying
        secrets = secret_values(request.headers)
        op = operation(request.url)
        base = {"provider": request.provider, "model": request.model_id, "operation": op,
                "url": clean_url(request.url, secrets)}
        split = split_embeddings(request.provider, request.url, request.body)
        parts = split_answer(split, value) if split and response.status < 300 else None
        if split is not None and parts is not None:
            for item, part in zip(split.items, parts):
                self._cassette.add({**base, "kind": KIND_EMBEDDING, "request": item,
                                    "response": part}, secrets)
            return
        self._cassette.add({**base, "kind": KIND_CALL, "request": request.body,
                            "status": response.status, "response": value}, secrets)

    async def aclose(self) -> None:
        await self._inner.aclose()
        self._cassette.flush()


class ReplayTransport:
    """Answers from the cassette alone; a request it has no answer for is an SQL error."""

    is_http = False

    def __init__(self, cassette: Cassette, mode: str = "replay") -> None:
        self._cassette = cassette
        self._mode = mode

    def _find(self, request: OutgoingRequest) -> tuple[Any, int] | Any:
        """(answer, status), or the description of the first missing part (a str)."""
        op = operation(request.url)
        split = split_embeddings(request.provider, request.url, request.body)
        if split is not None:
            parts = []
            for item in split.items:
                entry = self._cassette.get(self._cassette.key(
                    request.provider, request.model_id, op, KIND_EMBEDDING, item))
                if entry is None:
                    text = item.get("instance", item.get("input"))
                    return f"no answer for the text {canonical(text)[:200]}"
                parts.append(entry["response"])
            return join_answer(split, parts), 200
        entry = self._cassette.get(self._cassette.key(
            request.provider, request.model_id, op, KIND_CALL, request.body))
        if entry is None:
            return f"no answer for the {op} request {canonical(request.body)[:200]}"
        return entry["response"], int(entry.get("status", 200))

    def covers(self, request: OutgoingRequest) -> bool:
        return not isinstance(self._find(request), str)

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        found = self._find(request)
        if isinstance(found, str):
            raise ModelCallError(
                SQLSTATE_PROVIDER_ERROR,
                f'model "{request.model_id}": no recorded answer in the cassette '
                f"{self._cassette.path} ({self._mode} mode)",
                found[:EXCERPT_CHARS],
                "Record it with live credentials: alloydb-ai-emulator serve --models record "
                f"--cassette {self._cassette.path}; or use --models replay-or-fake to answer "
                "unrecorded requests with the fakes.",
            )
        value, status = found
        if 200 <= status < 300:
            # A fresh copy: callers (the cache, the transforms) must not share the entry.
            return RawResponse(status, {}, b"", json.loads(canonical(value)))
        return RawResponse(status, {}, canonical(value).encode("utf-8"))

    async def aclose(self) -> None:
        return None
