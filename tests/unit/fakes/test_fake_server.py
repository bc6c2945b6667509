"""The standalone fake model server speaks HTTP/1.1 and applies its knobs per request."""

from __future__ import annotations

import asyncio
import hashlib
import time
from asyncio import run
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from emulator.engine import Engine, EngineSettings
from emulator.engine_factory import engine_with_fakes
from emulator.fakes import FakeKnobs, FakeModelServer, start_fake_model_server

EMBED_PATH = (
    "/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict"
)
EMBED_BODY = {"instances": [{"content": "hello"}]}


def with_server(
    knobs: FakeKnobs, work: Callable[[FakeModelServer, httpx.AsyncClient], Awaitable[Any]],
    repeat_answers_bytes: int = 0, dense_embeddings: bool = False,
) -> Any:
    async def scenario() -> Any:
        server, port = await start_fake_model_server(
            "127.0.0.1", 0, knobs, repeat_answers_bytes=repeat_answers_bytes,
            dense_embeddings=dense_embeddings)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            try:
                return await work(server, client)
            finally:
                await server.aclose()

    return run(scenario())


def test_health_and_embedding_over_keep_alive() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await client.get("/healthz"),
            await client.post(EMBED_PATH, json=EMBED_BODY),
            await client.post(EMBED_PATH, json=EMBED_BODY),
        ]

    health, first, second = with_server(FakeKnobs(), work)
    assert health.json() == {"status": "ok"}
    assert first.json() == second.json()
    assert len(first.json()["predictions"][0]["embeddings"]["values"]) == 768


def test_forced_429_carries_retry_after() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(EMBED_PATH, json=EMBED_BODY)

    response = with_server(FakeKnobs(forced_fault="429", retry_after=7), work)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_forced_500_is_shaped_like_the_provider() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/v1/embeddings", json={"input": "x"})

    response = with_server(FakeKnobs(forced_fault="500"), work)
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"


def test_latency_is_added_per_request_concurrently() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> list[tuple[float, float]]:
        async def one() -> tuple[float, float]:
            started = time.monotonic()
            await client.post(EMBED_PATH, json=EMBED_BODY)
            return started, time.monotonic()

        return list(await asyncio.gather(*(one() for _ in range(5))))

    spans = with_server(FakeKnobs(latency=0.2), work)
    assert all(end - start >= 0.2 for start, end in spans)  # each request waited
    # and they waited together: every request started before the first one ended
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_timeout_fault_hangs_until_the_client_leaves() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> tuple[bool, int]:
        try:
            await client.post(EMBED_PATH, json=EMBED_BODY, timeout=0.3)
            timed_out = False
        except httpx.ReadTimeout:
            timed_out = True
        for _ in range(100):
            if server.abandoned:
                break
            await asyncio.sleep(0.01)
        return timed_out, server.abandoned

    assert with_server(FakeKnobs(forced_fault="timeout"), work) == (True, 1)


def test_chunked_body_bad_json_and_unknown_path() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> list[httpx.Response]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"model": "text-embedding-3-small", '
            yield b'"input": "chunked"}'

        return [
            await client.post("/v1/embeddings", content=chunks()),
            await client.post("/v1/embeddings", content=b"{nope"),
            await client.post("/nowhere", json={}),
        ]

    chunked, bad, unknown = with_server(FakeKnobs(), work)
    assert len(chunked.json()["data"][0]["embedding"]) == 1536
    assert bad.status_code == 400 and unknown.status_code == 404


def test_server_records_requests_and_knobs_change_live() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> list[int]:
        first = await client.post(EMBED_PATH, json=EMBED_BODY, headers={"X-Test": "1"})
        server.knobs = FakeKnobs(forced_fault="500")
        second = await client.post(EMBED_PATH, json=EMBED_BODY)
        assert server.received[0].headers["x-test"] == "1"
        assert server.received[0].json() == EMBED_BODY
        return [first.status_code, second.status_code]

    assert with_server(FakeKnobs(), work) == [200, 500]


def test_engine_rides_out_random_faults_with_retries() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], Engine]:
        server, port = await start_fake_model_server(knobs=FakeKnobs(fault_rate=0.3), seed=7)
        engine = engine_with_fakes(EngineSettings(max_retries=8, backoff_base=0.001, backoff_cap=0.01))
        requests = [
            {
                "model_id": "mine",
                "provider": "custom",
                "url": f"http://127.0.0.1:{port}/v1/embeddings",
                "body": {"model": "text-embedding-3-small", "input": f"text {i}"},
            }
            for i in range(40)
        ]
        try:
            server.knobs = FakeKnobs(fault_rate=0.3, retry_after=0)
            return await engine.invoke_batch(requests), engine
        finally:
            await engine.aclose()
            await server.aclose()

    results, engine = run(scenario())
    assert all("ok" in r for r in results)
    assert engine.stats.retries > 0
    assert engine.stats.http_requests == 40 + engine.stats.retries


# Texts whose embeddings hold a repeated word, a Unicode word, an empty text and, at dimension
# 2, a value of -2.8e-17 (written with an exponent).
PINNED_TEXTS = ["", "the", "The cats sat on the cats' mat, twice: cats!", "Ünïcödé straße 東京",
                "bird cat", "A database follows the last train (live sentence 4711)."]


def test_embedding_answers_keep_their_exact_bytes() -> None:
    """Users' cassettes hold the server's answers: a faster fake must send the same bytes (the
    digests were taken before the fakes were optimised)."""

    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> list[bytes]:
        vertex = await client.post(EMBED_PATH, json={
            "instances": [{"content": text} for text in PINNED_TEXTS]})
        small = await client.post(EMBED_PATH, json={
            "instances": [{"content": "bird cat"}], "parameters": {"outputDimensionality": 2}})
        openai = await client.post("/v1/embeddings", json={
            "model": "text-embedding-3-small", "input": PINNED_TEXTS, "dimensions": 64})
        return [vertex.content, small.content, openai.content]

    vertex, small, openai = with_server(FakeKnobs(), work)
    assert small.startswith(b'{"predictions":[{"embeddings":{"values":[-2.7755575615628914e-17,1.0]')
    digests = [hashlib.sha256(body).hexdigest()[:16] for body in (vertex, openai)]
    assert digests == ["c7d89db72dd03e15", "306c34e0f236f569"]


def with_memory(limit: int, work: Callable[[FakeModelServer, httpx.AsyncClient],
                                           Awaitable[Any]]) -> Any:
    return with_server(FakeKnobs(), work, repeat_answers_bytes=limit)


def test_repeated_answers_are_byte_equal_and_only_for_byte_equal_requests() -> None:
    other = {"instances": [{"content": "other"}]}

    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> Any:
        first = await client.post(EMBED_PATH, json=EMBED_BODY)
        again = await client.post(EMBED_PATH, json=EMBED_BODY)
        different = await client.post(EMBED_PATH, json=other)
        refused = await client.post(EMBED_PATH, json={"instances": "no"})
        refused_again = await client.post(EMBED_PATH, json={"instances": "no"})
        return first, again, different, refused, refused_again, server.repeated

    first, again, different, refused, refused_again, repeated = with_memory(1 << 20, work)
    assert again.content == first.content and again.headers == first.headers
    assert different.json() != first.json()
    # Only answers are kept: a refusal is computed (and refused) each time.
    assert refused.status_code == refused_again.status_code == 400
    assert repeated == 1


def test_answer_memory_is_bounded_and_off_by_default() -> None:
    bodies = [{"instances": [{"content": f"text {i}"}]} for i in range(3)]

    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> int:
        for body in bodies + bodies:
            await client.post(EMBED_PATH, json=body)
        return server.repeated

    # One answer is about 3.6 KB (the fakes' vectors are sparse): 5,000 bytes keep only the
    # latest, which the next request (another text) pushes out, so none repeats.
    assert with_memory(5_000, work) == 0
    assert with_memory(0, work) == 0
    assert with_memory(1 << 20, work) == 3


def test_dense_embeddings_are_the_fake_vectors_plus_fixed_offsets() -> None:
    async def work(server: FakeModelServer, client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.post(EMBED_PATH, json=EMBED_BODY) for _ in range(2)]

    sparse = with_server(FakeKnobs(), work)[0].json()["predictions"][0]["embeddings"]["values"]
    first, second = with_server(FakeKnobs(), work, dense_embeddings=True)
    dense = first.json()["predictions"][0]["embeddings"]["values"]
    assert first.content == second.content  # deterministic
    assert len(dense) == len(sparse) == 768 and all(value != 0 for value in dense)
    offsets = [d - s for d, s in zip(dense, sparse)]
    assert max(abs(o) for o in offsets) <= 1e-3 + 1e-12
    assert sum(1 for s in sparse if s != 0) < 100 < sum(1 for d in dense if d != 0)
    # written as real providers write them: most numbers with 15 or more significant digits
    numbers = first.content.split(b'"values":[', 1)[1].split(b"]", 1)[0].split(b",")
    assert sum(len(n.lstrip(b"-0.")) >= 15 for n in numbers) > 700
