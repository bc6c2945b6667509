"""The fake models as a standalone HTTP/1.1 server, speaking every provider's wire format.

Operations:
- `await start_fake_model_server(host, port, knobs, repeat_answers_bytes=0) -> (server, port)`:
  start on a running loop (port 0 picks a free port); `server.received` keeps the last requests
  (method, path, headers, body) so tests can compare them with the reference formats;
  `server.knobs` may be replaced while running; `await server.aclose()` stops it.

Every POST is answered by `models.answer_request` (the path picks the provider; see models.py),
after the knobs (knobs.py): latency first, then the fault if any: 429 with Retry-After, 500, or
'timeout' = no answer until the client goes away. `GET /healthz` answers `{"status": "ok"}`.
With `repeat_answers_bytes` > 0 (`fake-models --repeat-answers-mb`), a 200 answer is kept (up
to that many bytes, oldest dropped first) and a POST with the same target and body gets it again
without being computed: a load test's provider then spends no CPU on this machine, as a remote
one would not (bench/backfill.py --remote). A kept answer does not see later changes of the
knobs' rules file. With `dense_embeddings` (`--dense-embeddings`), text embeddings have every
component non-zero, written as real providers write them (models.answer_request's `dense`).

Plan: asyncio streams, one task per connection, keep-alive, a small buffer per connection that
hands out whole request heads and bodies (Content-Length or chunked), bounded in size. While a
request waits (latency, timeout fault) the server watches the connection, so a client that
abandons the request is noticed at once (`server.abandoned` counts them). No dependencies.

Known gaps: no TLS, no `Expect: 100-continue`, no pipelining beyond what arrives in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from emulator.fakes.embeddings import Sparse, json_array
from emulator.fakes.knobs import FakeKnobs, format_retry_after, pick_fault
from emulator.fakes.models import FakeModelError, answer_request, error_for_path
from emulator.fakes.rules import RulesFileError, load_rules

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


class _Connection:
    """Bytes from one client, handed out as whole request heads and bodies."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buffer = bytearray()

    async def _fill(self) -> bool:
        chunk = await self._reader.read(65536)
        self._buffer += chunk
        return bool(chunk)

    async def wait_closed_by_peer(self) -> None:
        while await self._fill():
            if len(self._buffer) > MAX_HEAD_BYTES + MAX_BODY_BYTES:
                raise _BadRequest(413, "too much data")

    async def _take_until(self, marker: bytes, limit: int) -> bytes | None:
        start = 0
        while True:
            end = self._buffer.find(marker, start)
            if end >= 0:
                data = bytes(self._buffer[:end])
                del self._buffer[: end + len(marker)]
                return data
            if len(self._buffer) > limit:
                raise _BadRequest(413, "request head too large")
            start = max(0, len(self._buffer) - len(marker) + 1)
            if not await self._fill():
                return None

    async def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not await self._fill():
                raise _BadRequest(400, "connection closed mid-body")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_request(self) -> _Request | None:
        head = await self._take_until(b"\r\n\r\n", MAX_HEAD_BYTES)
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError as exc:
            raise _BadRequest(400, "malformed request line") from exc
        request = _Request(method.upper(), target, version.strip())
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "malformed header line")
            request.headers[name.strip().lower()] = value.strip()
        request.body = await self._read_body(request.headers)
        return request

    async def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size_line = await self._take_until(b"\r\n", 1024)
                if size_line is None:
                    raise _BadRequest(400, "connection closed mid-body")
                try:
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError as exc:
                    raise _BadRequest(400, "bad chunk size") from exc
                if size == 0:
                    while await self._take_until(b"\r\n", MAX_HEAD_BYTES):  # trailers
                        pass
                    return bytes(body)
                if len(body) + size > MAX_BODY_BYTES:
                    raise _BadRequest(413, "request body too large")
                body += await self._take(size)
                await self._take(2)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequest(400, "bad Content-Length") from exc
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        return await self._take(length)


def _sparse_array(value: Any) -> msgspec.Raw:
    # A text embedding comes frozen (`answer_request(..., frozen=True)`): its JSON array is
    # written from its few non-zero values, without a list of 768 floats to build and encode.
    if isinstance(value, Sparse):
        return msgspec.Raw(json_array(value))
    raise NotImplementedError(f"cannot write {type(value).__name__} as JSON")


def _thawed(value: Any) -> Any:
    if isinstance(value, Sparse):
        return value.thaw()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_sparse_array)


def _payload(body: Any) -> bytes:
    try:
        # msgspec writes the same JSON text as json.dumps, an order of magnitude faster: a
        # 250-embedding answer costs 3 ms instead of 45, so the fakes stay out of a benchmark's way.
        return _ENCODER.encode(body)
    except (TypeError, msgspec.EncodeError):
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False,
                          default=_thawed).encode("utf-8")


def _head(status: int, length: int, extra: dict[str, str] | None = None,
          close: bool = False) -> bytes:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": str(length),
        "Connection": "close" if close else "keep-alive",
        **(extra or {}),
    }
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1")


def _response(
    status: int, body: Any, extra: dict[str, str] | None = None, close: bool = False
) -> bytes:
    payload = _payload(body)
    return _head(status, len(payload), extra, close) + payload


class _AnswerMemory:
    """200 answers by (target, request body), at most `limit` bytes of them, oldest dropped
    first; `limit` 0 keeps none. Keyed by the body's bytes: only a byte-equal request repeats."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._size = 0
        self._answers: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()

    def get(self, target: str, body: bytes) -> bytes | None:
        return self._answers.get((target, body)) if self.limit else None

    def keep(self, target: str, body: bytes, payload: bytes) -> None:
        cost = len(payload) + len(body)
        if not self.limit or cost > self.limit or (target, body) in self._answers:
            return
        self._answers[(target, body)] = payload
        self._size += cost
        while self._size > self.limit:
            (_, old_body), old = self._answers.popitem(last=False)
            self._size -= len(old) + len(old_body)


class FakeModelServer:
    """The fake model HTTP server. Create with `start_fake_model_server`."""

    def __init__(self, knobs: FakeKnobs, *, keep_requests: int = 1000, seed: int | None = None,
                 repeat_answers_bytes: int = 0, dense_embeddings: bool = False):
        self.knobs = knobs
        self.dense_embeddings = dense_embeddings
        self.repeated = 0  # answers given again from memory
        self._answers = _AnswerMemory(repeat_answers_bytes)
        self.received: deque[ReceivedRequest] = deque(maxlen=keep_requests)
        self.abandoned = 0  # requests whose client went away before the answer
        self.port = 0
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection = _Connection(reader)
        try:
            while True:
                try:
                    request = await connection.read_request()
                except _BadRequest as exc:
                    writer.write(_response(exc.status, {"error": str(exc)}, close=True))
                    await writer.drain()
                    return
                if request is None:
                    return
                reply = await self._answer(request, connection)
                if reply is None:  # the client went away
                    self.abandoned += 1
                    return
                writer.write(reply)
                await writer.drain()
                if not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, _BadRequest):
            return
        except (
            asyncio.CancelledError
        ):  # aclose(): end quietly, asyncio would log a cancelled handler
            return
        finally:
            self._connections.discard(task)
            writer.close()

    async def _wait_unless_abandoned(self, connection: _Connection, seconds: float | None) -> bool:
        """Wait `seconds` (None: forever); False if the client closed the connection first."""
        closed = asyncio.ensure_future(connection.wait_closed_by_peer())
        try:
            done, _ = await asyncio.wait({closed}, timeout=seconds)
            return not done
        finally:
            # Let the watcher finish before anyone reads the stream again (a second reader
            # while it is still waiting makes asyncio raise).
            closed.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, _BadRequest):
                await closed

    async def _answer(self, request: _Request, connection: _Connection) -> bytes | None:
        close = not request.keep_alive
        path = request.target.split("?", 1)[0]
        if request.method == "GET" and path == "/healthz":
            return _response(200, {"status": "ok"}, close=close)
        self.received.append(
            ReceivedRequest(request.method, request.target, dict(request.headers), request.body)
        )
        knobs = self.knobs
        if knobs.latency > 0 and not await self._wait_unless_abandoned(connection, knobs.latency):
            return None
        fault = pick_fault(knobs, self._rng)
        if fault == "timeout":
            await self._wait_unless_abandoned(connection, None)
            return None
        if fault == "429":
            error = error_for_path(path, 429, "Fake fault: quota exceeded, retry later.")
            retry = {"Retry-After": format_retry_after(knobs.retry_after)}
            return _response(429, error.body, retry, close=close)
        if fault == "500":
            error = error_for_path(path, 500, "Fake fault: internal error.")
            return _response(500, error.body, close=close)
        if request.method != "POST":
            error = error_for_path(path, 405, f"Method {request.method} is not allowed.")
            return _response(405, error.body, close=close)
        known = self._answers.get(request.target, request.body)
        if known is not None:
            self.repeated += 1
            return _head(200, len(known), close=close) + known
        try:
            body = json.loads(request.body) if request.body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            error = error_for_path(path, 400, "Invalid JSON payload received.")
            return _response(400, error.body, close=close)
        try:
            payload = _payload(answer_request(request.target, body, load_rules(knobs.rules_path),
                                              frozen=not self.dense_embeddings,
                                              dense=self.dense_embeddings))
            self._answers.keep(request.target, request.body, payload)
            return _head(200, len(payload), close=close) + payload
        except FakeModelError as exc:
            return _response(exc.status, exc.body, close=close)
        except RulesFileError as exc:
            error = error_for_path(path, 500, f"Fake rules file error: {exc}")
            return _response(500, error.body, close=close)


async def start_fake_model_server(
    host: str = "127.0.0.1",
    port: int = 0,
    knobs: FakeKnobs | None = None,
    *,
    seed: int | None = None,
    repeat_answers_bytes: int = 0,
    dense_embeddings: bool = False,
) -> tuple[FakeModelServer, int]:
    """Start the fake model server on the running loop; returns it and its port."""
    server = FakeModelServer(knobs or FakeKnobs(), seed=seed,
                             repeat_answers_bytes=repeat_answers_bytes,
                             dense_embeddings=dense_embeddings)
    bound = await server.start(host, port)
    return server, bound
