"""The inspector's call log: what each call sent and got, bounded, with no secret in it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from asyncio import run
from typing import Any

from emulator.engine import EngineSettings, ModelCallError
from emulator.engine.calls import CallLog, bounded_json
from emulator.engine.scrub import clean_url
from emulator.engine_factory import engine_with_fakes
from emulator.fakes.embeddings import embed_sparse
from tests.support.http_servers import HANG, Reply, ScriptedServer

KEY = "sk-inspected-key-must-not-show"


def embedding(texts: list[str]) -> dict[str, Any]:
    return {"model_id": "text-embedding-005", "provider": "google",
            "model_type": "text_embedding", "qualified_name": "text-embedding-005",
            "body": {"instances": [{"content": t} for t in texts]}}


def test_fake_calls_cache_hits_and_batches_are_recorded_newest_first() -> None:
    log = CallLog(max_calls=3, max_body_chars=200)

    async def scenario() -> None:
        engine = engine_with_fakes(EngineSettings(), log)
        try:
            await engine.invoke(embedding(["one"]))
            await engine.invoke(embedding(["one"]))  # the response cache answers
            await engine.invoke_batch([embedding(["a", "b"]), embedding(["c"])])
            try:
                await engine.invoke({"model_id": "broken", "provider": "nope"})
            except ModelCallError:
                pass
        finally:
            await engine.aclose()

    run(scenario())
    calls = log.calls()
    assert len(calls) == 3  # bounded: the first call fell off
    assert [c["id"] for c in calls] == sorted((c["id"] for c in calls), reverse=True)
    error, *batch = calls
    assert error["model_id"] == "broken" and error["sqlstate"] == "22023"
    assert sorted(c["batch_size"] for c in batch) == [1, 2]
    assert all(c["in_batch"] == 2 and c["route"] == "fake" and c["status"] == 200 for c in batch)
    two = next(c for c in batch if c["batch_size"] == 2)
    assert json.loads(two["request_body"]) == embedding(["a", "b"])["body"]
    assert two["response_truncated"] and len(two["response_body"]) == 200  # 768 numbers each
    assert log.calls(status="error") == [error]
    assert [c["id"] for c in log.calls(status="ok")] == [c["id"] for c in batch]

    log2 = CallLog()

    async def cached() -> None:
        engine = engine_with_fakes(EngineSettings(), log2)
        try:
            await engine.invoke(embedding(["one"]))
            await engine.invoke(embedding(["one"]))
        finally:
            await engine.aclose()

    run(cached())
    hit, miss = log2.calls()
    assert hit["cache_hit"] and hit["route"] == "cache" and hit["url"] is None
    assert not miss["cache_hit"] and miss["url"].endswith("text-embedding-005:predict")
    assert hit["response_body"] == miss["response_body"]
    assert log2.clear() == 2 and log2.calls() == []


def test_live_calls_show_retries_and_hide_credentials() -> None:
    replies = iter([Reply(429, {"error": "slow down"}, {"Retry-After": "0"}),
                    Reply(200, {"echo": f"your key {KEY}"}),
                    Reply(401, {"error": f"key {KEY} refused"})])
    log = CallLog()
    with ScriptedServer(lambda _seen: next(replies)) as server:
        request = {"model_id": "mine", "provider": "custom", "model_type": "generic",
                   "url": f"{server.url}/v1/predict?key={KEY}&alt=json",
                   "headers": {"Authorization": f"Bearer {KEY}", "X-Trace": "t-1"},
                   "body": {"prompt": "hi", "copied": KEY}}

        async def scenario() -> None:
            engine = engine_with_fakes(EngineSettings(models="live", backoff_base=0.01), log)
            try:
                await engine.invoke(request)
                try:
                    await engine.invoke(request)
                except ModelCallError:
                    pass
            finally:
                await engine.aclose()

        run(scenario())
    refused, ok = log.calls()
    assert ok["retries"] == 1 and ok["status"] == 200 and ok["route"] == "live"
    assert refused["retries"] == 0 and refused["status"] == 401 and refused["sqlstate"] == "38000"
    assert ok["request_headers"] == {"Authorization": "[REDACTED]", "X-Trace": "t-1"}
    assert "alt=json" in ok["url"] and "key=[REDACTED]" in ok["url"]
    assert "refused" in refused["response_body"]
    assert KEY not in json.dumps(log.calls())


def test_bounded_json_stops_at_the_limit() -> None:
    huge = {"predictions": [{"values": list(range(100_000))}]}
    text, cut = bounded_json(huge, 100)
    assert cut and len(text) == 100 and text.startswith('{"predictions": [{"values": [0, 1')
    assert bounded_json({"a": "é"}, 100) == ('{"a": "é"}', False)


def test_clean_url() -> None:
    assert clean_url("https://u:p@h.example/x?key=abcd&b=1") == \
        "https://h.example/x?key=[REDACTED]&b=1"
    assert clean_url("https://h/x/abcdef", ["abcdef"]) == "https://h/x/[REDACTED]"


def test_a_cancelled_call_is_recorded_as_cancelled() -> None:
    log = CallLog()
    with ScriptedServer(lambda _seen: HANG) as server:
        async def scenario() -> None:
            engine = engine_with_fakes(EngineSettings(models="live"), log)
            request = {"model_id": "slow", "provider": "custom", "url": f"{server.url}/x",
                       "body": {"q": 1}}
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(engine.invoke(request), 0.5)
            finally:
                await engine.aclose()

        run(scenario())
    (call,) = log.calls()
    assert call["sqlstate"] == "57014" and call["model_id"] == "slow"
    assert call["request_body"] == '{"q": 1}'


def test_a_frozen_vector_shows_as_its_list_would() -> None:
    sparse, _ = embed_sparse("shown to the inspector", 16)
    answer = {"predictions": [{"embeddings": {"values": sparse}}]}
    shown = {"predictions": [{"embeddings": {"values": sparse.thaw()}}]}
    assert bounded_json(answer, 10_000) == bounded_json(shown, 10_000)
    assert json.loads(bounded_json(answer, 10_000)[0]) == json.loads(json.dumps(shown))
