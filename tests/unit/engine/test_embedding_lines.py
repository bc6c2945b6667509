"""The warm-up's batch answer (`Engine.embedding_lines`) in live mode over HTTP: concurrent
batches up to the model's limit, literals read from the answers' bytes that hold the same
numbers as the fakes' in-process answers, and a batch that fails leaving only its own lines
empty."""

from __future__ import annotations

from asyncio import run
from typing import Any

from emulator.engine import Engine, EngineSettings
from emulator.engine_factory import engine_with_fakes
from emulator.fakes import start_fake_model_server
from emulator.fakes.knobs import FakeKnobs

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
