"""The warm-up's batch answer (`Engine.embedding_lines`) in live mode over HTTP: concurrent
batches up to the model's limit, literals read from the answers' bytes that hold the same
numbers as the fakes' in-process answers, and a batch that fails leaving only its own lines
empty."""

from __future__ import annotations

import asyncio
import threading
from asyncio import run
from typing import Any

from emulator.engine import Engine, EngineSettings
from emulator.engine.errors import ModelCallError
from emulator.engine.streams import BatchStream, BatchStreams
from emulator.engine_factory import engine_with_fakes
from emulator.fakes import start_fake_model_server
from emulator.fakes.knobs import FakeKnobs
from tests.support.http_servers import HANG, Reply, ScriptedServer, Seen

VERTEX_URL = "{base}/v1/projects/p/locations/us-central1/publishers/google/models/" \
             "text-embedding-005:predict"


def vertex_request(base: str, texts: list[str]) -> dict[str, Any]:
    return {"model_id": "text-embedding-005", "provider": "google",
            "model_type": "text_embedding", "qualified_name": "text-embedding-005",
            "url": VERTEX_URL.format(base=base), "headers": {}, "auth": None,
            "body": {"instances": [{"content": t} for t in texts]}}


def openai_request(base: str, texts: list[str]) -> dict[str, Any]:
    return {"model_id": "text-embedding-3-small", "provider": "open_ai",
            "model_type": "text_embedding", "qualified_name": "text-embedding-3-small",
            "url": f"{base}/v1/embeddings", "headers": {}, "auth": None,
            "body": {"input": texts, "model": "text-embedding-3-small"}}


def numbers(line: bytes) -> list[float]:
    return [float(x) for x in line.strip(b"{}").split(b",")]


def lines_of(answer: bytes) -> list[bytes]:
    return answer.split(b"\n")


def both_modes(build: Any, batches: list[list[str]], extract: str,
               knobs: FakeKnobs, concurrency: int) -> tuple[bytes, bytes, Engine]:
    async def scenario() -> tuple[bytes, bytes, Engine]:
        server, port = await start_fake_model_server(knobs=knobs)
        base = f"http://127.0.0.1:{port}"
        live = engine_with_fakes(EngineSettings(models="live", model_concurrency=concurrency,
                                     cache_size=0, secret_env={}))
        fake = engine_with_fakes(EngineSettings(models="fake", secret_env={}))
        try:
            requests = [build(base, texts) for texts in batches]
            over_http = await live.embedding_lines(requests, extract)
            in_process = await fake.embedding_lines(requests, extract)
            return over_http, in_process, live
        finally:
            await live.aclose()
            await fake.aclose()
            await server.aclose()

    return run(scenario())


def test_vertex_batches_run_concurrently_up_to_the_limit_and_match_the_fakes() -> None:
    batches = [[f"text {b}.{i}" for i in range(3)] for b in range(7)]
    over_http, in_process, engine = both_modes(
        vertex_request, batches, "vertex_embeddings", FakeKnobs(latency=0.2), concurrency=3)
    http_lines, fake_lines = lines_of(over_http), lines_of(in_process)
    assert len(http_lines) == len(fake_lines) == 21
    for a, b in zip(http_lines, fake_lines, strict=True):
        assert a and numbers(a) == numbers(b)
    stats = engine.stats.model("text-embedding-005")
    assert stats.provider_requests == 7
    assert stats.max_in_flight == 3  # seven requests, three at a time
    assert stats.in_flight == 0


def test_openai_batches_over_http_match_the_fakes() -> None:
    batches = [["alpha", "beta"], ["gamma"]]
    over_http, in_process, engine = both_modes(
        openai_request, batches, "openai_embeddings", FakeKnobs(), concurrency=4)
    http_lines, fake_lines = lines_of(over_http), lines_of(in_process)
    assert len(http_lines) == 3
    for a, b in zip(http_lines, fake_lines, strict=True):
        assert a and numbers(a) == numbers(b)
    assert engine.stats.model("text-embedding-3-small").input_tokens > 0


def test_a_failed_batch_leaves_only_its_own_lines_empty() -> None:
    async def scenario() -> bytes:
        server, port = await start_fake_model_server()
        base = f"http://127.0.0.1:{port}"
        engine = engine_with_fakes(EngineSettings(models="live", cache_size=0, secret_env={}))
        try:
            good = vertex_request(base, ["one", "two"])
            bad = vertex_request(base, ["three"])
            bad["url"] = f"{base}/v1/nowhere:predict-not"  # the fakes answer 404
            return await engine.embedding_lines([good, bad, good], "vertex_embeddings")
        finally:
            await engine.aclose()
            await server.aclose()

    lines = lines_of(run(scenario()))
    assert [bool(line) for line in lines] == [True, True, False, True, True]


def test_a_prepared_engine_calls_over_the_client_it_built_ahead() -> None:
    async def scenario() -> tuple[bool, Any]:
        server, port = await start_fake_model_server()
        engine = engine_with_fakes(EngineSettings(models="live", cache_size=0, secret_env={}))
        try:
            await engine.prepare()
            ready = engine._web._session is not None and engine._web._context is not None
            lines = await engine.embedding_lines(
                [vertex_request(f"http://127.0.0.1:{port}", ["x"])], "vertex_embeddings")
            return ready, lines
        finally:
            await engine.aclose()
            await server.aclose()

    ready, lines = run(scenario())
    assert ready
    assert lines.count(b",") == 767


# -- the streamed form (streams.py): each batch handed over as it finishes ----------------------


def vertex_answer(texts: list[str]) -> dict[str, Any]:
    """A Vertex AI answer whose first number tells the texts apart (its position in the batch)."""
    return {"predictions": [{"embeddings": {"values": [i + 0.5, -1, 2.5e-3]}}
                            for i in range(len(texts))]}


def test_streamed_batches_come_in_the_order_they_finish_with_their_positions() -> None:
    # The provider answers batch 2 at once, batch 1 once batch 2 was taken, batch 0 once batch 1
    # was: whatever the timing, they finish 2, 1, 0.
    taken = {name: threading.Event() for name in ("b1", "b2")}

    def respond(seen: Seen) -> Reply:
        texts = [i["content"] for i in seen.json()["instances"]]
        wait_for = {"b0": "b1", "b1": "b2"}.get(texts[0].split(".")[0])
        if wait_for is not None:
            taken[wait_for].wait(10)
        return Reply(200, vertex_answer(texts))

    batches = [["b0.0", "b0.1"], ["b1.0"], ["b2.0", "b2.1", "b2.2"]]

    async def scenario() -> tuple[list[bytes], bytes, int]:
        with ScriptedServer(respond) as server:
            engine = engine_with_fakes(EngineSettings(models="live", cache_size=0,
                                                      secret_env={}))
            try:
                requests = [vertex_request(server.url, texts) for texts in batches]
                stream = await engine.handle({"op": "invoke_batch", "requests": requests,
                                              "extract": "vertex_embeddings", "stream": True})
                chunks = []
                for _ in batches:
                    chunk = await engine.handle({"op": "stream_next", "stream": stream.decode()})
                    chunks.append(bytes(chunk))
                    taken.get("b" + chunk.split(b"\n", 1)[0].decode(), threading.Event()).set()
                whole = await engine.embedding_lines(requests, "vertex_embeddings")
                return chunks, whole, len(engine.streams)
            finally:
                await engine.aclose()

    chunks, whole, left = run(scenario())
    assert [c.split(b"\n", 1)[0] for c in chunks] == [b"2", b"1", b"0"]
    # Each batch's lines are the ones the unstreamed answer gives for its texts.
    by_position = {int(c.split(b"\n", 1)[0]): c.split(b"\n", 1)[1] for c in chunks}
    assert b"\n".join(by_position[i] for i in range(3)) == whole
    assert by_position[2] == b"{0.5,-1,0.0025}\n{1.5,-1,0.0025}\n{2.5,-1,0.0025}"
    assert left == 0  # the last batch taken, the stream is gone


def test_a_stream_writes_pgvector_brackets_when_asked_and_refuses_unknown_literals() -> None:
    async def scenario() -> tuple[bytes, bytes, list[str]]:
        server, port = await start_fake_model_server()
        engine = engine_with_fakes(EngineSettings(models="live", cache_size=0, secret_env={}))
        try:
            requests = [vertex_request(f"http://127.0.0.1:{port}", ["one", "two two"])]
            answers = []
            for literals in ("real[]", "vector"):
                stream = await engine.handle({"op": "invoke_batch", "requests": requests,
                                              "extract": "vertex_embeddings", "stream": True,
                                              "literals": literals})
                answers.append(bytes(await engine.streams.next(stream.decode())))
            refused = []
            for unknown in ("halfvec", ["vector"], None):
                try:
                    await engine.handle({"op": "invoke_batch", "requests": requests,
                                         "extract": "vertex_embeddings", "stream": True,
                                         "literals": unknown})
                except ModelCallError as exc:
                    refused.append(exc.sqlstate)
            return answers[0], answers[1], refused
        finally:
            await engine.aclose()
            await server.aclose()

    braces, brackets, refused = run(scenario())
    assert braces.startswith(b"0\n{") and braces.count(b"{") == 2
    # the same numbers, only the brackets differ
    assert brackets == braces.replace(b"{", b"[").replace(b"}", b"]")
    assert len(refused) == 3 and all(refused)


def test_a_failed_streamed_batch_answers_only_its_own_lines_empty() -> None:
    async def scenario() -> dict[int, list[bytes]]:
        server, port = await start_fake_model_server()
        base = f"http://127.0.0.1:{port}"
        engine = engine_with_fakes(EngineSettings(models="live", cache_size=0, secret_env={}))
        try:
            good = vertex_request(base, ["one", "two"])
            bad = vertex_request(base, ["three", "four"])
            bad["url"] = f"{base}/v1/nowhere:predict-not"  # the fakes answer 404
            stream_id = engine.embedding_stream([good, bad, good], "vertex_embeddings").decode()
            out = {}
            for _ in range(3):
                position, lines = (await engine.streams.next(stream_id)).split(b"\n", 1)
                out[int(position)] = lines.split(b"\n")
            return out
        finally:
            await engine.aclose()
            await server.aclose()

    out = run(scenario())
    assert [bool(line) for line in out[1]] == [False, False]
    assert all(line for line in out[0] + out[2]) and len(out[0]) == len(out[2]) == 2


def test_a_cancelled_wait_drops_the_stream_and_abandons_its_requests() -> None:
    async def scenario() -> tuple[int, int, Any]:
        with ScriptedServer(lambda seen: HANG) as server:
            engine = engine_with_fakes(EngineSettings(models="live", cache_size=0,
                                                      secret_env={}))
            try:
                requests = [vertex_request(server.url, [f"t{i}"]) for i in range(3)]
                stream_id = engine.embedding_stream(requests, "vertex_embeddings").decode()
                stream = engine.streams.get(stream_id)
                assert stream is not None
                waiting = asyncio.ensure_future(engine.streams.next(stream_id))
                while len(server.requests) < 3:
                    await asyncio.sleep(0.01)
                waiting.cancel()  # what the callback endpoint does when the statement is cancelled
                await asyncio.gather(waiting, return_exceptions=True)
                await asyncio.to_thread(server.closed_while_waiting.wait, 10)
                try:
                    await engine.handle({"op": "stream_next", "stream": stream_id})
                except ModelCallError as exc:
                    error: Any = exc
                return len(engine.streams), stream.running, error
            finally:
                await engine.aclose()

    left, running, error = run(scenario())
    assert left == 0 and running == 0
    assert error.sqlstate == "22023" and "unknown warm-up stream" in error.message


def test_stream_drop_cancels_the_running_batches() -> None:
    async def scenario() -> tuple[Any, Any, int, bool]:
        with ScriptedServer(lambda seen: HANG) as server:
            engine = engine_with_fakes(EngineSettings(models="live", cache_size=0,
                                                      secret_env={}))
            try:
                requests = [vertex_request(server.url, [f"t{i}"]) for i in range(2)]
                stream_id = (await engine.handle({
                    "op": "invoke_batch", "requests": requests, "extract": "vertex_embeddings",
                    "stream": True})).decode()
                while len(server.requests) < 2:
                    await asyncio.sleep(0.01)
                first = await engine.handle({"op": "stream_drop", "stream": stream_id})
                again = await engine.handle({"op": "stream_drop", "stream": stream_id})
                abandoned = await asyncio.to_thread(server.closed_while_waiting.wait, 10)
                return first, again, len(engine.streams), abandoned
            finally:
                await engine.aclose()

    first, again, left, abandoned = run(scenario())
    assert (first, again, left, abandoned) == (True, False, 0, True)


def test_a_stream_holds_at_most_its_window_of_batches() -> None:
    # Ten batches, a window of three: however fast they finish, at most three are started and
    # not yet taken; taking one starts the next.
    async def scenario() -> tuple[list[int], list[int], list[int]]:
        finish: dict[int, asyncio.Event] = {}
        started: list[int] = []

        async def batch(index: int) -> bytes:
            started.append(index)
            finish[index] = asyncio.Event()
            await finish[index].wait()
            return b"answer %d" % index

        stream = BatchStream(batch, 10, window=3)
        held, order = [], []
        await asyncio.sleep(0)
        while not stream.exhausted:
            for event in list(finish.values()):
                event.set()  # everything started finishes at once
            await asyncio.sleep(0)
            held.append(stream.held)
            position, answer = await stream.next()
            assert answer == b"answer %d" % position
            order.append(position)
        return started, held, order

    started, held, order = run(scenario())
    assert max(held) == 3
    assert sorted(order) == list(range(10)) and started == list(range(10))


def test_an_idle_stream_is_forgotten() -> None:
    async def scenario() -> tuple[int, int]:
        streams = BatchStreams(idle_seconds=0.05)

        async def batch(index: int) -> bytes:
            await asyncio.sleep(3600)
            return b""

        stream_id = streams.open(batch, 2, window=2)
        stream = streams.get(stream_id)
        assert stream is not None
        before = len(streams)
        while len(streams):
            await asyncio.sleep(0.01)
        return before, stream.running

    before, running = run(scenario())
    assert before == 1 and running == 0


def test_a_stream_of_no_batches_keeps_nothing() -> None:
    async def scenario() -> int:
        streams = BatchStreams()

        async def batch(index: int) -> bytes:
            return b""

        streams.open(batch, 0, window=2)
        return len(streams)

    assert run(scenario()) == 0
