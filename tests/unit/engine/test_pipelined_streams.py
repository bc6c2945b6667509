"""Pipelined warm-up streams (emulator/engine/streams.py): the engine stores the batches while
the statement's rows go on, and a row that misses the cache waits for its own text's batch."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from asyncio import run

from emulator.engine.streams import BATCH, NO_STREAM, NOTHING, STORED, BatchStreams

BATCHES = [[f"b{b} t{t}" for t in range(3)] for b in range(6)]


async def settle() -> None:
    """Let the started tasks and their done callbacks run."""
    for _ in range(5):
        await asyncio.sleep(0)


def literals(index: int) -> list[bytes]:
    return [b"[%d.5,%d]" % (index, t) for t in range(3)]


class Batches:
    """Batch runs the test finishes by hand: `finish(i, answer)`; each records its start."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self._answers: dict[int, asyncio.Future[list[bytes] | None]] = {}

    async def run(self, index: int) -> list[bytes] | None:
        self.started.append(index)
        future = self._answers.setdefault(index, asyncio.get_running_loop().create_future())
        try:
            return await future
        finally:
            del self._answers[index]  # the answer is the stream's alone now

    def finish(self, index: int, answer: list[bytes] | None | BaseException) -> None:
        future = self._answers.setdefault(index, asyncio.get_running_loop().create_future())
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)


def test_batches_start_in_order_within_the_window_past_the_last_one_waited_for() -> None:
    async def scenario() -> tuple[list[int], list[int], bytes, bytes]:
        batches, ended = Batches(), []
        streams = BatchStreams()
        stream = streams.open_pipelined(batches.run, BATCHES, 2, "m", lambda: ended.append(1))
        await asyncio.sleep(0)
        first = list(batches.started)
        assert streams.held == 2  # running
        batches.finish(0, None)
        stored = await streams.wait([stream], "m", "b0 t1")
        assert streams.held == 2  # batch 0 stored; 1 runs, and 2 has started
        # A row of batch 3 (not started yet) starts everything up to 3 and two beyond.
        waiting = asyncio.ensure_future(streams.wait([stream], "m", "b3 t0"))
        await settle()
        after = list(batches.started)
        for index in (1, 2, 3, 4, 5):
            batches.finish(index, None)
        return first, after, stored, await waiting

    first, after, stored, later = run(scenario())
    assert first == [0, 1]
    assert after == [0, 1, 2, 3, 4, 5]
    assert stored == later == STORED


def test_a_batch_not_stored_hands_its_texts_and_literals_to_one_row_once() -> None:
    async def scenario() -> list[bytes]:
        batches = Batches()
        streams = BatchStreams()
        stream = streams.open_pipelined(batches.run, BATCHES[:2], 4, "m", lambda: None)
        await asyncio.sleep(0)
        batches.finish(0, literals(0))
        batches.finish(1, RuntimeError("provider down"))
        return [await streams.wait([stream], "m", "b0 t2", take=False),  # a parallel worker
                await streams.wait([stream], "m", "b1 t0"),  # failed: the per-row call
                await streams.wait([stream], "m", "elsewhere"),
                await streams.wait([stream], "other model", "b0 t0"),
                await streams.wait([stream], "m", "b0 t2"),
                # Taken (the session stored them), and nothing else to give: the stream is gone.
                await streams.wait([stream], "m", "b0 t0")]

    worker, failed, unknown, other, taken, again = run(scenario())
    assert worker == failed == unknown == other == NOTHING
    assert taken.startswith(BATCH)
    texts, lines = taken[1:].split(b"\n", 1)
    assert json.loads(texts) == BATCHES[0] and lines.split(b"\n") == literals(0)
    assert again == NO_STREAM


def test_a_stream_whose_batches_are_all_stored_lets_go_and_is_forgotten() -> None:
    async def scenario() -> tuple[list[int], int, bytes]:
        batches, ended = Batches(), []
        streams = BatchStreams()
        stream = streams.open_pipelined(batches.run, BATCHES[:2], 4, "m", lambda: ended.append(1))
        await asyncio.sleep(0)
        batches.finish(0, None)
        batches.finish(1, None)
        await settle()
        left = len(streams)
        return ended, left, await streams.wait([stream], "m", "b0 t0")

    ended, left, answer = run(scenario())
    assert ended == [1] and left == 0 and answer == NO_STREAM


def test_kept_literals_are_bounded_by_the_window() -> None:
    # No row of the session takes them (say, only parallel workers ask): the oldest go.
    async def scenario() -> list[bytes]:
        batches = Batches()
        streams = BatchStreams()
        stream = streams.open_pipelined(batches.run, BATCHES[:3], 2, "m", lambda: None)
        await asyncio.sleep(0)
        for index in range(2):
            batches.finish(index, literals(index))
        waiting = asyncio.ensure_future(streams.wait([stream], "m", "b2 t0", take=False))
        await settle()
        batches.finish(2, literals(2))
        await waiting
        assert streams.held == 2  # the literals of batches 1 and 2, waiting to be taken
        return [(await streams.wait([stream], "m", f"b{i} t0"))[:1] for i in range(3)]

    assert run(scenario()) == [NOTHING, BATCH, BATCH]


def test_a_cancelled_wait_drops_the_stream_and_cancels_its_batches() -> None:
    async def scenario() -> tuple[int, list[int], bool]:
        batches, ended = Batches(), []
        streams = BatchStreams()
        stream = streams.open_pipelined(batches.run, BATCHES[:2], 4, "m", lambda: ended.append(1))
        waiting = asyncio.ensure_future(streams.wait([stream], "m", "b1 t0"))
        await asyncio.sleep(0)
        waiting.cancel()  # the statement was cancelled while its row waited
        await asyncio.gather(waiting, return_exceptions=True)
        return len(streams), ended, waiting.cancelled()

    left, ended, cancelled = run(scenario())
    assert left == 0 and ended == [1] and cancelled


def test_a_pipelined_stream_of_no_batches_keeps_nothing() -> None:
    async def scenario() -> tuple[int, list[int]]:
        batches, ended = Batches(), []
        streams = BatchStreams()
        streams.open_pipelined(batches.run, [], 4, "m", lambda: ended.append(1))
        return len(streams), ended

    assert run(scenario()) == (0, [1])


class Literals(list[bytes]):
    """A batch's literals that a test can watch go (lists cannot be weakly referenced)."""


def test_taken_literals_are_not_kept() -> None:
    # A stream holds its batches' literals only until a row takes them: over a long backfill,
    # literals kept by finished tasks would add up to every batch's.
    async def scenario() -> tuple[bool, bool]:
        batches = Batches()
        streams = BatchStreams()
        stream = streams.open_pipelined(batches.run, BATCHES[:2], 4, "m", lambda: None)
        await asyncio.sleep(0)
        answer = Literals(literals(0))
        watched = weakref.ref(answer)
        batches.finish(0, answer)
        del answer
        await settle()
        kept_before = watched() is not None
        taken = await streams.wait([stream], "m", "b0 t0")
        assert taken.startswith(BATCH)
        gc.collect()
        return kept_before, watched() is None

    kept_before, gone = run(scenario())
    assert kept_before and gone
