"""In fake mode the engine answers known providers in process: no HTTP, no credentials."""

from __future__ import annotations

from asyncio import run
from typing import Any

import msgspec
import pytest

from emulator.embedding_literal import FrozenVector, LiteralVector
from emulator.engine import Engine, EngineSettings, ModelCallError
from emulator.engine.cache import ResponseCache, thawed, weight
from emulator.engine_factory import engine_with_fakes
from emulator.fakes import FakeKnobs, start_fake_model_server
from emulator.fakes.embeddings import FakeVector, embed, embed_sparse
from emulator.fakes.models import answer_request


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


# -- frozen vectors: the fakes' embeddings as the cache keeps them and the warm-up reads them --


def openai_request(texts: list[str]) -> dict[str, Any]:
    return {"model_id": "oa", "provider": "open_ai", "model_type": "text_embedding",
            "url": "https://api.openai.com/v1/embeddings", "headers": {}, "auth": None,
            "body": {"model": "text-embedding-3-small", "input": texts}}


def lists_only(value: Any) -> bool:
    """No FrozenVector anywhere in `value`: what every caller but the warm-up must get."""
    if isinstance(value, FrozenVector):
        return False
    if isinstance(value, dict):
        return all(lists_only(v) for v in value.values())
    if isinstance(value, list):
        return all(lists_only(v) for v in value)
    return True


def no_long_list(value: Any) -> bool:
    """No list of 768 or more numbers in `value`: what the garbage collector would walk."""
    if isinstance(value, dict):
        return all(no_long_list(v) for v in value.values())
    if isinstance(value, list):
        return len(value) < 768 and all(no_long_list(v) for v in value)
    return True


def test_fake_answers_are_the_providers_lists_cached_frozen() -> None:
    texts = ["the cat sat", "a dog ran", "the cat sat"]
    vertex = {**embedding_request("x"), "body": {"instances": [{"content": t} for t in texts]}}

    async def scenario() -> tuple[list[Any], list[Any], Engine]:
        engine = engine_with_fakes()
        try:
            first = [await engine.invoke(vertex), await engine.invoke(openai_request(texts))]
            again = [await engine.invoke(vertex), await engine.invoke(openai_request(texts))]
            return first, again, engine
        finally:
            await engine.aclose()

    first, again, engine = run(scenario())
    assert engine.stats.cache_hits == 2 and engine.stats.provider_requests == 2
    # Byte for byte what the fake provider answers over HTTP, fresh or from the cache; the
    # vectors are lists of the fakes' class (they write their own literals).
    expected = [answer_request("https://h/v1/projects/p/locations/us-central1/publishers/google/"
                               "models/text-embedding-005:predict", vertex["body"]),
                answer_request("https://api.openai.com/v1/embeddings",
                               openai_request(texts)["body"])]
    for answers in (first, again):
        assert lists_only(answers)
        assert msgspec.json.encode(answers) == msgspec.json.encode(expected)
        assert type(answers[0]["predictions"][0]["embeddings"]["values"]) is FakeVector
        assert type(answers[1]["data"][0]["embedding"]) is FakeVector
    # The cache holds them frozen, weighed as the lists they stand for.
    entries = [engine.cache.get(key)[1] for key in list(engine.cache._entries)]
    assert len(entries) == 2
    for entry, answer in zip(entries, first):
        assert not lists_only(entry) and no_long_list(entry)
        assert weight(entry) == weight(answer)
        assert msgspec.json.encode(thawed(entry)) == msgspec.json.encode(answer)


def test_the_cache_freezes_and_thaws_any_literal_vector() -> None:
    plain = LiteralVector([0.0, 1.5, -2.25])
    fake = embed("frozen text", 768)
    answer = {"a": [plain, {"b": fake}], "c": [1.0, 2.0], "d": "text", "e": [{"f": 1}]}
    cache = ResponseCache(max_entries=10)
    cache.put(("m", "u", b"k"), answer)
    found, kept = cache.get(("m", "u", b"k"))
    assert found and not lists_only(kept) and no_long_list(kept)
    assert kept["c"] is answer["c"] and kept["e"] is answer["e"]  # nothing to freeze: shared
    assert cache.numbers == weight(answer) == 1 + (1 + 3 + 1 + 768) + 2 + 1 + (1 + 1 + 1)
    back = thawed(kept)
    assert back == answer and lists_only(back)
    assert type(back["a"][0]) is LiteralVector and type(back["a"][1]["b"]) is FakeVector
    assert back["a"][1]["b"].literal() == fake.literal()
    assert kept["a"][1]["b"].literal() == fake.literal() == embed_sparse("frozen text", 768)[
        0].literal()
    # an answer without literal vectors is stored and thawed as the same object
    other = {"predictions": [{"embeddings": {"values": [0.5] * 768}}]}
    cache.put(("m", "u", b"o"), other)
    assert cache.get(("m", "u", b"o"))[1] is other and thawed(other) is other


def test_the_warm_up_gets_the_fakes_vectors_frozen_and_their_literals() -> None:
    texts = ["one text", "another text"]
    vertex = {**embedding_request("x"), "body": {"instances": [{"content": t} for t in texts]}}

    async def scenario() -> tuple[Any, Any]:
        engine = engine_with_fakes(EngineSettings(cache_size=0))
        try:
            return (await engine.invoke(vertex, extract="vertex_embeddings"),
                    await engine.embedding_lines([vertex], "vertex_embeddings"))
        finally:
            await engine.aclose()

    value, lines = run(scenario())
    vectors = [p["embeddings"]["values"] for p in value["predictions"]]
    assert all(isinstance(v, FrozenVector) for v in vectors)  # no list built
    assert bytes(lines).split(b"\n") == [embed(t, 768).literal().encode() for t in texts]
