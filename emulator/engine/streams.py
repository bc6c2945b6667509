"""The warm-up's streamed batches: answers handed to SQL one batch at a time, as they finish.

`invoke_batch` with `"stream": true` starts the batches and answers at once with a stream id;
each `stream_next` then answers the next batch to finish (waiting for one if none has), so the
caller's session stores a batch while the others are still in flight instead of waiting for
the last answer and then storing all of them (docs/internals.md, "The warm-up").

Memory: a stream runs at most `window` batches that are started and not yet taken (running or
finished); taking one starts the next. So the engine holds at most `window` batches' literals
per stream, and the provider is never raced far ahead of the session that stores the answers.

Lifetime: a stream goes away when its last batch is taken, on `stream_drop` (the SQL side sends
it when the statement fails or is cancelled while storing), when a `stream_next` is cancelled
(the caller's statement was cancelled or timed out, or its session left, while it waited), and,
as a last resort for a session that died between two `stream_next`, after `idle_seconds`
without one. Dropping cancels the batches still running, so their HTTP requests are abandoned.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial

from emulator.engine.errors import bad_request

# One batch's answer, by its position in the stream's requests; None when the engine stored the
# batch itself (warm_copy.py).
Run = Callable[[int], Awaitable[bytes | None]]

DEFAULT_IDLE_SECONDS = 120.0


class BatchStream:
    """The batches of one warm-up, at most `window` of them started and not yet taken."""

    def __init__(self, run: Run, count: int, window: int) -> None:
        self._run = run
        self.count = count
        self._window = max(1, window)
        self._started = 0
        self.taken = 0
        self._running: dict[int, asyncio.Task[bytes | None]] = {}
        self._finished: deque[tuple[int, asyncio.Task[bytes | None]]] = deque()
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

    def _done(self, index: int, task: asyncio.Task[bytes | None]) -> None:
        if self._running.pop(index, None) is None or task.cancelled():
            return  # dropped
        self._finished.append((index, task))
        self._arrived.set()

    async def next(self) -> tuple[int, bytes | None]:
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


class BatchStreams:
    """The open streams of an engine, by id (unguessable: only the session that started a
    stream learns its id)."""

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._streams: dict[str, BatchStream] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}
        self._on_close: dict[str, Callable[[], None]] = {}
        self.opened = 0  # streams started, ever (the metrics read it)

    def __len__(self) -> int:
        return len(self._streams)

    @property
    def held(self) -> int:
        """Batches started and not yet taken, over all open streams."""
        return sum(stream.held for stream in self._streams.values())

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

    async def next(self, stream_id: str) -> bytes:
        """The next finished batch as the text `<position>\\n<answer>` (position from 0), or
        `<position>` alone for a batch the engine stored itself; the stream goes once its last
        batch is taken, or when this wait is cancelled or fails."""
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
        return b"%d" % index if answer is None else b"%d\n" % index + answer

    def drop(self, stream_id: str) -> bool:
        """Forget a stream and cancel its running batches; False if there was none."""
        timer = self._idle.pop(stream_id, None)
        if timer is not None:
            timer.cancel()
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.close()
        on_close = self._on_close.pop(stream_id, None)
        if on_close is not None:
            on_close()
        return True

    def close(self) -> None:
        for stream_id in list(self._streams):
            self.drop(stream_id)

    def _arm(self, stream_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._idle[stream_id] = loop.call_later(self.idle_seconds, self.drop, stream_id)
