"""In fake mode the engine answers known providers in process: no HTTP, no credentials."""

from __future__ import annotations

from asyncio import run
from typing import Any

import pytest

from emulator.engine import Engine, EngineSettings, ModelCallError
from emulator.engine.cache import ResponseCache, weight
from emulator.engine_factory import engine_with_fakes
from emulator.fakes import FakeKnobs, start_fake_model_server


def embedding_request(text: str, **extra: Any) -> dict[str, Any]:
    request = {
        "op": "invoke",
        "model_id": "text-embedding-005",
        "provider": "google",
        "model_type": "text_embedding",
        "qualified_name": "text-embedding-005",
        "url": "publishers/google/models/text-embedding-005",
        "headers": {},
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": {"instances": [{"content": text}]},
    }
    request.update(extra)
    return request


def test_fake_mode_needs_no_credentials_and_no_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    secret = {"type": "secret_manager", "secret_path": "projects/p/secrets/missing/versions/1"}

    async def scenario() -> tuple[Any, Any, Engine]:
        engine = engine_with_fakes(EngineSettings(secret_manager_endpoint="http://127.0.0.1:1"))
        vertex = await engine.invoke(embedding_request("hello"))
        openai = await engine.invoke(
            {
                "model_id": "oa",
                "provider": "open_ai",
                "model_type": "text_embedding",
                "url": "https://api.openai.com/v1/embeddings",
                "auth": secret,
                "body": {"model": "text-embedding-3-small", "input": "hello"},
            }
        )
        await engine.aclose()
        return vertex, openai, engine

    vertex, openai, engine = run(scenario())
    assert len(vertex["predictions"][0]["embeddings"]["values"]) == 768
    assert len(openai["data"][0]["embedding"]) == 1536
    assert engine.stats.http_requests == 0 and engine.stats.provider_requests == 2


def test_repeated_request_hits_the_cache() -> None:
    async def scenario() -> Engine:
        engine = engine_with_fakes()
        first = await engine.invoke(embedding_request("same text"))
        second = await engine.invoke(embedding_request("same text"))
        assert first == second
        await engine.aclose()
        return engine

    engine = run(scenario())
    assert engine.stats.cache_hits == 1 and engine.stats.provider_requests == 1


def test_batch_answers_in_order_with_errors_in_place() -> None:
    async def scenario() -> Any:
        engine = engine_with_fakes()
        try:
            return await engine.handle(
                {
                    "op": "invoke_batch",
                    "requests": [
                        embedding_request("one"),
                        {"model_id": "broken", "provider": "custom", "body": {}},
                        embedding_request("three"),
                    ],
                }
            )
        finally:
            await engine.aclose()

    results = run(scenario())
    assert "ok" in results[0] and "ok" in results[2]
    assert results[1]["error"]["sqlstate"] == "22023"
    assert "broken" in results[1]["error"]["message"]
    first = results[0]["ok"]["predictions"][0]["embeddings"]["values"]
    third = results[2]["ok"]["predictions"][0]["embeddings"]["values"]
    assert first != third


def test_unknown_op_is_a_bad_request() -> None:
    async def scenario() -> None:
        engine = engine_with_fakes()
        try:
            await engine.handle({"op": "explode"})
        finally:
            await engine.aclose()

    with pytest.raises(ModelCallError) as caught:
        run(scenario())
    assert caught.value.sqlstate == "22023"


def test_custom_model_goes_over_http_even_in_fake_mode() -> None:
    async def scenario() -> tuple[Any, Engine, int]:
        server, port = await start_fake_model_server()
        engine = engine_with_fakes()
        try:
            answer = await engine.invoke(
                {
                    "model_id": "mine",
                    "provider": "custom",
                    "model_type": "text_embedding",
                    "url": f"http://127.0.0.1:{port}/v1/embeddings",
                    "body": {"model": "text-embedding-3-large", "input": ["x"]},
                }
            )
            return answer, engine, len(server.received)
        finally:
            await engine.aclose()
            await server.aclose()

    answer, engine, received = run(scenario())
    assert len(answer["data"][0]["embedding"]) == 3072
    assert engine.stats.http_requests == 1 and received == 1


def test_in_process_fault_knob_retries_then_reports_status_and_body() -> None:
    knobs = FakeKnobs(forced_fault="429", retry_after=0)
    settings = EngineSettings(max_retries=2, cache_size=0)

    async def scenario() -> Engine:
        engine = engine_with_fakes(settings, knobs=knobs)
        try:
            await engine.invoke(embedding_request("x"))
        finally:
            await engine.aclose()
        return engine

    with pytest.raises(ModelCallError) as caught:
        run(scenario())
    error = caught.value
    assert error.sqlstate == "38000" and "text-embedding-005" in error.message
    assert error.detail is not None and error.detail.startswith("HTTP 429: ")
    assert "RESOURCE_EXHAUSTED" in error.detail


def test_in_process_timeout_knob_is_a_query_canceled_error() -> None:
    settings = EngineSettings(read_timeout=0.05)

    async def scenario() -> None:
        engine = engine_with_fakes(settings, knobs=FakeKnobs(forced_fault="timeout"))
        try:
            await engine.invoke(embedding_request("x"))
        finally:
            await engine.aclose()

    with pytest.raises(ModelCallError) as caught:
        run(scenario())
    assert caught.value.sqlstate == "57014"


def test_the_cache_is_bounded_by_the_numbers_it_holds_too() -> None:
    # Entries of 250 embeddings each: a count of entries alone would not bound memory.
    cache = ResponseCache(max_entries=1000, max_numbers=3 * 250 * 768)
    batch = {"predictions": [{"embeddings": {"values": [0.5] * 768}} for _ in range(250)]}
    assert 250 * 768 < weight(batch) < 250 * 768 + 1000
    for i in range(5):
        cache.put(("m", "u", bytes([i])), batch)
    assert len(cache) == 2  # each entry weighs a bit over 250 x 768: three do not fit
    assert cache.get(("m", "u", bytes([0]))) == (False, None)  # the oldest went first
    assert cache.get(("m", "u", bytes([4])))[0]
    assert cache.numbers == 2 * weight(batch)
    cache.put(("m", "u", b"huge"), {"data": [{"embedding": [1.0] * (3 * 250 * 768 + 1)}]})
    assert len(cache) == 2  # bigger than the whole cache: not stored, nothing evicted
    cache.clear()
    assert (len(cache), cache.numbers) == (0, 0)
