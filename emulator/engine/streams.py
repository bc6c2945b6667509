"""The warm-up's streamed batches: answers handed to SQL one batch at a time, as they finish.

`invoke_batch` with `"stream": true` starts the batches and answers at once with a stream id;
each `stream_next` then answers the next batch to finish (waiting for one if none has), so the
caller's session stores a batch while the others are still in flight instead of waiting for
the last answer and then storing all of them (docs/internals.md, "The warm-up").

Memory: a stream runs at most `window` batches that are started and not yet taken (running or
finished); taking one starts the next. So the engine holds at most `window` batches' literals
per stream, and the provider is never raced far ahead of the session that stores the answers.

Pipelined streams (`open_pipelined`, `wait`). A warm-up whose batches the engine stores itself
(warm_copy.py) does not wait for them: it starts the stream and lets the statement's rows go.
A row whose text is not in the cache yet asks `wait` for it: the engine answers once that text's
batch has ended: `STORED` (look again); or, for a batch the engine could not store, `BATCH` and
its texts and literals, once, for the row's session to store them itself; else `NOTHING` (not
in this warm-up, its batch failed, or its literals were handed over already: the per-row
call). So the provider's answers, their storing and the statement's own rows overlap. Batches
start in order, at most `window` beyond the last one a row waited for: a statement that stops
asking (it ended, or failed) holds the provider to the window, as a session that stops taking
does; at most `window` batches' literals wait to be taken. A pipelined stream lets go of its
`on_ended` (the COPY connections) once every batch has ended, and is forgotten then if nothing
is left to take, else once its last literals are taken or after `idle_seconds` without a
`wait`; a `wait` cancelled while it waits drops it.

Lifetime: a stream goes away when its last batch is taken, on `stream_drop` (the SQL side sends
it when the statement fails or is cancelled while storing), when a `stream_next` is cancelled
(the caller's statement was cancelled or timed out, or its session left, while it waited), and,
as a last resort for a session that died between two `stream_next`, after `idle_seconds`
without one. Dropping cancels the batches still running, so their HTTP requests are abandoned.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial

from emulator.engine.errors import bad_request

# One batch's answer, by its position in the stream's requests.
Run = Callable[[int], Awaitable[bytes]]

DEFAULT_IDLE_SECONDS = 120.0

# A pipelined batch's run answers None once it is stored, else each of its texts' literals, or
# none when the batch failed.
PipeRun = Callable[[int], Awaitable[list[bytes] | None]]

# `wait`'s answers (the first byte of the text `stream_wait` answers; warmup.sql reads them).
STORED = b"s"
BATCH = b"b"  # then the batch's texts as a JSON array, a newline, and a literal a line
NOTHING = b"n"
NO_STREAM = b"x"  # none of the streams named is open any more: stop asking


class BatchStream:
    """The batches of one warm-up, at most `window` of them started and not yet taken."""

    def __init__(self, run: Run, count: int, window: int) -> None:
        self._run = run
        self.count = count
        self._window = max(1, window)
        self._started = 0
        self.taken = 0
        self._running: dict[int, asyncio.Task[bytes]] = {}
        self._finished: deque[tuple[int, asyncio.Task[bytes]]] = deque()
        self._arrived = asyncio.Event()
        self._closed = False
        self._start_more()

    @property
    def held(self) -> int:
        """Batches started and not yet taken (running or finished): never more than the window."""
        return self._started - self.taken

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def exhausted(self) -> bool:
        return self.taken >= self.count

    def _start_more(self) -> None:
        while not self._closed and self._started < self.count and self.held < self._window:
            index = self._started
            task = asyncio.ensure_future(self._run(index))
            self._running[index] = task
            task.add_done_callback(partial(self._done, index))
            self._started += 1

    def _done(self, index: int, task: asyncio.Task[bytes]) -> None:
        if self._running.pop(index, None) is None or task.cancelled():
            return  # dropped
        self._finished.append((index, task))
        self._arrived.set()

    async def next(self) -> tuple[int, bytes]:
        """The next batch to finish, in the order they finish: (its position, its answer). A
        batch whose run raised raises here."""
        if self.exhausted or self._closed:
            raise LookupError("no batch left in this stream")
        while not self._finished:
            self._arrived.clear()
            await self._arrived.wait()
        index, task = self._finished.popleft()
        self.taken += 1
        self._start_more()
        return index, task.result()

    def close(self) -> None:
        """Cancel the batches still running and forget the finished ones."""
        self._closed = True
        running = list(self._running.values())
        self._running.clear()
        for task in running:
            task.cancel()
        for _, task in self._finished:
            task.exception()  # retrieved: an error nobody took is not reported as lost
        self._finished.clear()


class PipelinedStream:
    """The batches of one warm-up whose rows go on while they run: a text's batch is found by
    the text, and batches start in order, at most `window` past the last one waited for. At
    most `window` batches' literals are kept for a row to take; beyond that the oldest go (their
    rows make their own calls)."""

    def __init__(self, run: PipeRun, batches: list[list[str]], window: int, model_id: str,
                 on_ended: Callable[[], None]) -> None:
        self._run = run
        self.model_id = model_id
        self.count = len(batches)
        self._window = max(1, window)
        self._texts = batches
        self._batch_of: dict[str, int] = {}
        for index, texts in enumerate(batches):
            for text in texts:
                self._batch_of.setdefault(text, index)
        self._frontier = 0  # the batches before it have been waited for
        self._started = 0
        # Running batches only: a finished task would keep its answer alive after it is taken.
        self._running: dict[int, asyncio.Task[list[bytes] | None]] = {}
        # index -> what its run answered: None (stored), the literals not yet taken, or none
        self._results: dict[int, list[bytes] | None] = {}
        self._kept: deque[int] = deque()  # batches whose literals no row has taken, oldest first
        self._on_ended: Callable[[], None] | None = on_ended
        self._closed = False
        self._start_more()

    @property
    def ended(self) -> bool:
        return len(self._results) >= self.count

    @property
    def held(self) -> int:
        """Batches running, and ended ones whose literals wait to be taken."""
        return len(self._running) + len(self._kept)

    @property
    def awaited(self) -> bool:
        """A row may still need this stream: a batch is running, or has literals no row took."""
        return not self.ended or bool(self._kept)

    def has(self, text: str) -> bool:
        return text in self._batch_of

    def _start_more(self) -> None:
        while (not self._closed and self._started < self.count
               and self._started < self._frontier + self._window):
            index = self._started
            task = asyncio.ensure_future(self._run(index))
            task.add_done_callback(partial(self._done, index))
            self._running[index] = task
            self._started += 1

    def _done(self, index: int, task: asyncio.Task[list[bytes] | None]) -> None:
        self._running.pop(index, None)
        failed = task.cancelled() or task.exception() is not None
        result = [] if failed else task.result()
        self._results[index] = result
        if result:
            self._kept.append(index)
            if len(self._kept) > self._window:
                self._results[self._kept.popleft()] = []
        if self.ended and self._on_ended is not None:
            on_ended, self._on_ended = self._on_ended, None
            on_ended()

    async def wait(self, text: str, take: bool = True) -> bytes:
        """`STORED`, `BATCH` and the batch, or `NOTHING`, once the text's batch has ended.
        Without `take` (a parallel worker, which cannot store them) a batch's literals stay for
        a row of the session itself."""
        index = self._batch_of.get(text)
        if index is None or self._closed:
            return NOTHING
        if index >= self._frontier:
            self._frontier = index + 1
            self._start_more()
        running = self._running.get(index)
        if running is not None:
            await asyncio.wait((running,))  # a cancelled wait leaves it to `close`
        result = self._results.get(index, [])
        if result is None:
            return STORED
        if not result or not take:
            return NOTHING
        self._results[index] = []  # taken: the session stores them (or its rows call)
        self._kept.remove(index)
        return b"".join((BATCH, json.dumps(self._texts[index], ensure_ascii=False).encode(),
                         b"\n", b"\n".join(result)))

    def close(self) -> None:
        """Cancel the batches still running."""
        self._closed = True
        for task in list(self._running.values()):
            task.cancel()  # its _done still runs, and reads its outcome
        # What ended stays readable for a row already waiting (its batch is stored, say).
        if self._on_ended is not None:
            on_ended, self._on_ended = self._on_ended, None
            on_ended()


class BatchStreams:
    """The open streams of an engine, by id (unguessable: only the session that started a
    stream learns its id)."""

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._streams: dict[str, BatchStream] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}
        self._on_close: dict[str, Callable[[], None]] = {}
        self._pipes: dict[str, PipelinedStream] = {}
        self.opened = 0  # streams started, ever (the metrics read it)

    def __len__(self) -> int:
        return len(self._streams) + len(self._pipes)

    @property
    def held(self) -> int:
        """Batches started and not yet taken (or stored), over all open streams."""
        return (sum(stream.held for stream in self._streams.values())
                + sum(pipe.held for pipe in self._pipes.values()))

    def get(self, stream_id: str) -> BatchStream | None:
        return self._streams.get(stream_id)

    def open(self, run: Run, count: int, window: int,
             on_close: Callable[[], None] | None = None) -> str:
        """A new stream's id; `on_close` runs once the stream has gone, however it goes."""
        stream_id = secrets.token_hex(16)
        self.opened += 1
        if count > 0:  # nothing to take: nothing kept (no stream_next will come for it)
            self._streams[stream_id] = BatchStream(run, count, window)
            if on_close is not None:
                self._on_close[stream_id] = on_close
            self._arm(stream_id)
        elif on_close is not None:
            on_close()
        return stream_id

    def open_pipelined(self, run: PipeRun, batches: list[list[str]], window: int,
                       model_id: str, on_ended: Callable[[], None]) -> str:
        """A new pipelined stream's id; `on_ended` runs once each of its batches has ended (or
        the stream was dropped)."""
        stream_id = secrets.token_hex(16)
        self.opened += 1
        if not batches:
            on_ended()
            return stream_id
        pipe = PipelinedStream(run, batches, window, model_id,
                               partial(self._pipe_ended, stream_id, on_ended))
        self._pipes[stream_id] = pipe
        self._arm(stream_id)
        return stream_id

    def _pipe_ended(self, stream_id: str, on_ended: Callable[[], None]) -> None:
        on_ended()
        pipe = self._pipes.get(stream_id)
        if pipe is not None and not pipe.awaited:
            self.drop(stream_id)  # every batch is in the cache: nothing left to ask for

    async def wait(self, stream_ids: list[str], model_id: str, text: str,
                   take: bool = True) -> bytes:
        """The answer for `text` of the first of these pipelined streams, of `model_id`, that
        holds it (see `PipelinedStream.wait`); `NO_STREAM` when none of them is open."""
        open_ids = [i for i in stream_ids if i in self._pipes]
        if not open_ids:
            return NO_STREAM
        for stream_id in open_ids:
            pipe = self._pipes[stream_id]
            if pipe.model_id != model_id or not pipe.has(text):
                continue
            timer = self._idle.pop(stream_id, None)
            if timer is not None:
                timer.cancel()
            try:
                answer = await pipe.wait(text, take)
            except BaseException:  # the row's statement was cancelled while it waited
                self.drop(stream_id)
                raise
            if stream_id in self._pipes:
                if pipe.awaited:
                    self._arm(stream_id)
                else:
                    self.drop(stream_id)  # every batch stored or handed over
            return answer
        return NOTHING

    async def next(self, stream_id: str) -> bytes:
        """The next finished batch as the text `<position>\\n<answer>` (position from 0); the
        stream goes once its last batch is taken, or when this wait is cancelled or fails."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise bad_request(None, "unknown warm-up stream (finished, dropped or idle too long)")
        timer = self._idle.pop(stream_id, None)
        if timer is not None:
            timer.cancel()
        try:
            index, answer = await stream.next()
        except BaseException:
            self.drop(stream_id)
            raise
        if stream.exhausted:
            self.drop(stream_id)
        else:
            self._arm(stream_id)
        return b"%d\n" % index + answer

    def drop(self, stream_id: str) -> bool:
        """Forget a stream and cancel its running batches; False if there was none."""
        timer = self._idle.pop(stream_id, None)
        if timer is not None:
            timer.cancel()
        pipe = self._pipes.pop(stream_id, None)
        if pipe is not None:
            pipe.close()
            return True
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.close()
        on_close = self._on_close.pop(stream_id, None)
        if on_close is not None:
            on_close()
        return True

    def close(self) -> None:
        for stream_id in [*self._streams, *self._pipes]:
            self.drop(stream_id)

    def _arm(self, stream_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._idle[stream_id] = loop.call_later(self.idle_seconds, self.drop, stream_id)
