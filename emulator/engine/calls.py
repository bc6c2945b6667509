"""The call inspector's memory: the recent model calls, what left and what came back.

Off unless `serve --inspector-port N`: the engine then gets a `CallLog` and wraps its transports
in `InspectingTransport`; with no log, the hot path pays one `is None` test per call.

One `CallRecord` per logical model call (`Engine.invoke`; a member of a warm-up batch is one
call): when, who (database, role, backend pid of the calling session, from the callback
channel), model id, provider, the URL (`scrub.clean_url`), the HTTP status or the SQLSTATE,
latency, whether the response cache answered it, how many texts it carried, how many retries it
took, which way it went (fake, live, record, replay, cache), and the request and response bodies
as JSON text, each cut at `max_body_chars` (default 65,536 characters, `..."` marked with
`request_truncated` / `response_truncated`). Bodies are rendered once, when the call ends, by a
serializer that stops at the limit, so a 250-embedding answer costs no more than the limit.
Secret header values are scrubbed from URL, headers and bodies (scrub.py).

Bounded: the log keeps the newest `max_calls` records (default 1,000) in a deque; older ones
fall off. The whole log therefore holds at most about `max_calls * 2 * max_body_chars`
characters (about 130 MB at the defaults, far less for typical calls).

Who called: the callback endpoint sets `CALLER_PID` (proxy/callback.py) for the task that serves
a call; `CallLog.whois(pid) -> (database, role)` is given by the command line from the proxy's
session registry.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from emulator.embedding_literal import FrozenVector, LiteralVector
from emulator.engine.extract import batch_size
from emulator.engine.scrub import clean_url, scrub, secret_values, shown_headers
from emulator.engine.transport import NOT_PARSED, OutgoingRequest, RawResponse, Transport

DEFAULT_MAX_CALLS = 1000
DEFAULT_MAX_BODY_CHARS = 65_536

Whois = Callable[[int], tuple[str | None, str | None]]


@dataclass
class CallRecord:
    id: int
    time: float
    model_id: str
    provider: str
    database: str | None = None
    role: str | None = None
    backend_pid: int | None = None
    url: str | None = None
    route: str = "cache"  # fake, live, record, replay; cache when no exchange took place
    status: int | None = None  # the last HTTP status (fakes and replays answer one too)
    sqlstate: str | None = None
    error: str | None = None
    latency_ms: float = 0.0
    batch_size: int = 1
    in_batch: int = 0  # requests of the invoke_batch (warm-up) it was part of; 0: alone
    exchanges: int = 0
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str = ""
    request_truncated: bool = False
    response_body: str = ""
    response_truncated: bool = False
    # While the call runs: what the transport saw, rendered at the end.
    _body: Any = field(default=None, repr=False)
    _response: RawResponse | None = field(default=None, repr=False)
    _secrets: list[str] = field(default_factory=list, repr=False)
    _started: float = field(default=0.0, repr=False)

    @property
    def cache_hit(self) -> bool:
        return self.exchanges == 0 and self.sqlstate is None

    @property
    def retries(self) -> int:
        return max(self.exchanges - 1, 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
            + f".{int(self.time * 1000) % 1000:03d}Z",
            "database": self.database,
            "role": self.role,
            "backend_pid": self.backend_pid,
            "model_id": self.model_id,
            "provider": self.provider,
            "url": self.url,
            "route": "cache" if self.cache_hit else self.route,
            "status": self.status,
            "sqlstate": self.sqlstate,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 3),
            "cache_hit": self.cache_hit,
            "batch_size": self.batch_size,
            "in_batch": self.in_batch,
            "retries": self.retries,
            "request_headers": self.request_headers,
            "request_body": self.request_body,
            "request_truncated": self.request_truncated,
            "response_body": self.response_body,
            "response_truncated": self.response_truncated,
        }


CURRENT_CALL: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "alloydb_ai_emulator_current_call", default=None
)
# How many requests the invoke_batch being served holds (set by the engine around it).
IN_BATCH: contextvars.ContextVar[int] = contextvars.ContextVar("alloydb_ai_emulator_in_batch",
                                                               default=0)


class CallLog:
    def __init__(self, max_calls: int = DEFAULT_MAX_CALLS,
                 max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
                 whois: Whois | None = None,
                 caller_pid: Callable[[], int | None] | None = None) -> None:
        if max_calls < 1 or max_body_chars < 16:
            raise ValueError("the call log needs max_calls >= 1 and max_body_chars >= 16")
        self.max_body_chars = max_body_chars
        self.whois = whois
        self.caller_pid = caller_pid
        self._records: deque[CallRecord] = deque(maxlen=max_calls)
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._records)

    def begin(self, request: Any) -> contextvars.Token[CallRecord | None]:
        """Start the record of one call and make it the current one (a Token to `end` it)."""
        get = request.get if isinstance(request, dict) else (lambda _k: None)
        record = CallRecord(next(self._ids), time.time(), str(get("model_id")),
                            str(get("provider") or "custom"))
        record._started = time.perf_counter()
        record._body = get("body")
        record.batch_size = batch_size(request)
        record.in_batch = IN_BATCH.get()
        pid = self.caller_pid() if self.caller_pid is not None else None
        if pid:
            record.backend_pid = pid
            if self.whois is not None:
                record.database, record.role = self.whois(pid)
        self._records.append(record)
        return CURRENT_CALL.set(record)

    def end(self, token: contextvars.Token[CallRecord | None], value: Any = NOT_PARSED,
            error: Any = None) -> None:
        """Finish the current call with its answer (`value`) or its ModelCallError."""
        record = CURRENT_CALL.get()
        CURRENT_CALL.reset(token)
        if record is None:
            return
        record.latency_ms = (time.perf_counter() - record._started) * 1000.0
        limit = self.max_body_chars
        record.request_body, record.request_truncated = bounded_json(record._body, limit)
        if isinstance(error, asyncio.CancelledError):
            record.sqlstate = "57014"  # what the caller's session reports
            record.error = "canceled: the statement was cancelled, timed out or its session left"
        elif error is not None:
            record.sqlstate = getattr(error, "sqlstate", "XX000")
            record.error = getattr(error, "message", str(error))
            raw = record._response
            if raw is not None and raw.value is NOT_PARSED:
                text = raw.content.decode("utf-8", "replace")
                record.response_body, record.response_truncated = _cut(text, limit)
            elif raw is not None:
                record.response_body, record.response_truncated = bounded_json(raw.value, limit)
        else:
            record.response_body, record.response_truncated = bounded_json(value, limit)
        secrets = record._secrets
        if secrets:
            record.request_body = scrub(record.request_body, secrets)
            record.response_body = scrub(record.response_body, secrets)
            record.error = scrub(record.error, secrets) if record.error else None
        record._body = record._response = None
        record._secrets = []

    def calls(self, model: str | None = None, status: str | None = None,
              database: str | None = None, role: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Finished and running calls, newest first, as JSON objects; `status` is "ok",
        "error", an HTTP status or a SQLSTATE."""
        out: list[dict[str, Any]] = []
        for record in reversed(self._records):
            if model and record.model_id != model:
                continue
            if not _belongs(record, database, role):
                continue
            if status and not _status_matches(record, status):
                continue
            out.append(record.as_json())
            if limit is not None and len(out) >= limit:
                break
        return out

    def clear(self, database: str | None = None, role: str | None = None) -> int:
        """Forget the calls (of one database and role, when given); how many went."""
        before = len(self._records)
        if database is None and role is None:
            self._records.clear()
        else:
            kept = [r for r in self._records if not _belongs(r, database, role)]
            self._records.clear()
            self._records.extend(kept)
        return before - len(self._records)


def _belongs(record: CallRecord, database: str | None, role: str | None) -> bool:
    return ((database is None or record.database == database)
            and (role is None or record.role == role))


def _status_matches(record: CallRecord, status: str) -> bool:
    if status == "ok":
        return record.sqlstate is None
    if status == "error":
        return record.sqlstate is not None
    return status in (record.sqlstate, str(record.status))


class InspectingTransport:
    """Notes each exchange of the current call in its record (URL, headers, status, answer)."""

    def __init__(self, inner: Transport, route: str) -> None:
        self._inner = inner
        self._route = route
        self.is_http = inner.is_http

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        record = CURRENT_CALL.get()
        if record is None:
            return await self._inner.exchange(request)
        record.exchanges += 1
        record.route = self._route
        if record.exchanges == 1:
            record._secrets = secret_values(request.headers)
            record.url = clean_url(request.url, record._secrets)
            record.request_headers = {
                k: scrub(v, record._secrets) for k, v in shown_headers(request.headers).items()
            }
        response = await self._inner.exchange(request)
        record.status = response.status
        record._response = response
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- bounded JSON -------------------------------------------------------------------------------


def bounded_json(value: Any, limit: int) -> tuple[str, bool]:
    """JSON text of `value`, at most `limit` characters (then cut, with True): stops encoding
    once the limit is reached, so a huge value costs no more than the limit."""
    if value is NOT_PARSED:
        return "", False
    pieces: list[str] = []
    size = 0
    for piece in _encode(value, limit):
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            return _cut("".join(pieces), limit)
    return "".join(pieces), False


def _cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[: limit - 3] + "...", True


def _literal_json(vector: LiteralVector | FrozenVector) -> str:
    """A vector that writes its own literal (the fakes' write it from their few non-zeros)."""
    return "[" + vector.literal()[1:-1] + "]"


def _encode_numbers(values: list[Any] | tuple[Any, ...], limit: int) -> Iterator[str]:
    """A vector through the C encoder in one piece, cut to as many numbers as `limit`
    characters can show (each takes at least three: a digit and ", ")."""
    if isinstance(values, LiteralVector):
        yield _literal_json(values)
        return
    shown = list(values[: limit // 3 + 1])
    try:
        text = json.dumps(shown, ensure_ascii=False)
    except (TypeError, ValueError):
        text = "[" + ", ".join("".join(_encode(item, limit)) for item in shown) + "]"
    if len(shown) < len(values):
        text = text[:-1] + ", ...]"  # cut anyway: the text is longer than the limit
    yield text


def _encode(value: Any, limit: int) -> Iterator[str]:
    if isinstance(value, FrozenVector):  # a faked or cached answer as the warm-up reads it
        yield _literal_json(value)
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield (", " if i else "") + json.dumps(str(key), ensure_ascii=False) + ": "
            yield from _encode(item, limit)
        yield "}"
    elif isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
            yield from _encode_numbers(value, limit)
            return
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from _encode(item, limit)
        yield "]"
    else:
        try:
            yield json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            yield json.dumps(repr(value))
