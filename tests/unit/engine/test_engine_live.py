"""Live mode against real local HTTP servers: wire formats, auth, retries, errors, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from asyncio import run
from pathlib import Path
from typing import Any

import pytest

from emulator.engine import Engine, EngineSettings, ModelCallError
from emulator.fakes import ReceivedRequest, start_fake_model_server
from tests.support.http_servers import (
    HANG,
    Reply,
    ScriptedServer,
    Seen,
    secret_manager,
    token_endpoint,
    write_service_account,
)

OPENAI_SECRET = "projects/p/secrets/openai-key/versions/1"


def live(**overrides: Any) -> EngineSettings:
    values: dict[str, Any] = {
        "models": "live",
        "google_project": "proj",
        "backoff_base": 0.01,
        "secret_env": {},
    }
    values.update(overrides)
    return EngineSettings(**values)


async def call_fake_server(
    settings_for: Any, request: dict[str, Any]
) -> tuple[Any, ReceivedRequest, Engine]:
    """Invoke `request` with settings built for the fake server's base URL; return what it saw."""
    server, port = await start_fake_model_server()
    base = f"http://127.0.0.1:{port}"
    engine = Engine(settings_for(base))
    try:
        request = {
            k: (v.replace("{base}", base) if isinstance(v, str) else v) for k, v in request.items()
        }
        answer = await engine.invoke(request)
        return answer, server.received[-1], engine
    finally:
        await engine.aclose()
        await server.aclose()


def test_vertex_call_carries_a_token_from_the_service_account_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"instances": [{"content": "hello"}], "parameters": {"outputDimensionality": 8}}
    request = {
        "model_id": "text-embedding-005",
        "provider": "google",
        "model_type": "text_embedding",
        "qualified_name": "text-embedding-005",
        "url": "publishers/google/models/text-embedding-005",
        "headers": {},
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": body,
    }
    with token_endpoint("ya29.local-token") as oauth:
        account = tmp_path / "sa.json"
        write_service_account(str(account), f"{oauth.url}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))

        async def scenario() -> tuple[Any, ReceivedRequest]:
            answer, seen, _engine = await call_fake_server(
                lambda base: live(vertex_base_url=base), request
            )
            return answer, seen

        answer, seen = run(scenario())
        assert len(oauth.requests) == 1
        assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in (
            oauth.requests[0].body
        )
    assert seen.path == (
        "/v1/projects/proj/locations/us-central1/publishers/google/models/text-embedding-005:predict"
    )
    assert seen.headers["authorization"] == "Bearer ya29.local-token"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == body
    assert len(answer["predictions"][0]["embeddings"]["values"]) == 8


def test_token_is_cached_across_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with token_endpoint() as oauth, ScriptedServer(lambda s: Reply(200, {"ok": True})) as vertex:
        account = tmp_path / "sa.json"
        write_service_account(str(account), f"{oauth.url}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))

        async def scenario() -> None:
            engine = Engine(live(vertex_base_url=vertex.url))
            for text in ("a", "b", "c"):
                await engine.invoke(
                    {
                        "model_id": "m",
                        "provider": "google",
                        "model_type": "text_embedding",
                        "url": "publishers/google/models/m",
                        "auth": {"type": "alloydb_service_agent_iam"},
                        "body": {"instances": [{"content": text}]},
                    }
                )
            await engine.aclose()

        run(scenario())
        assert len(oauth.requests) == 1 and len(vertex.requests) == 3


def test_missing_google_credentials_is_28000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json")

    async def scenario() -> None:
        engine = Engine(live(vertex_base_url="http://127.0.0.1:1"))
        try:
            await engine.invoke(
                {
                    "model_id": "text-embedding-005",
                    "provider": "google",
                    "model_type": "text_embedding",
                    "url": "publishers/google/models/text-embedding-005",
                    "auth": {"type": "alloydb_service_agent_iam"},
                    "body": {"instances": [{"content": "x"}]},
                }
            )
        finally:
            await engine.aclose()

    with pytest.raises(ModelCallError) as caught:
        run(scenario())
    assert caught.value.sqlstate == "28000" and "text-embedding-005" in caught.value.message


def test_openai_embedding_sends_the_secret_manager_value_as_bearer() -> None:
    body = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    with secret_manager({OPENAI_SECRET: "sk-test-123"}) as sm:

        async def scenario() -> tuple[Any, ReceivedRequest]:
            answer, seen, _ = await call_fake_server(
                lambda base: live(secret_manager_endpoint=sm.url),
                {
                    "model_id": "oa",
                    "provider": "open_ai",
                    "model_type": "text_embedding",
                    "url": "{base}/v1/embeddings",
                    "headers": {},
                    "auth": {"type": "secret_manager", "secret_path": OPENAI_SECRET},
                    "body": body,
                },
            )
            return answer, seen

        answer, seen = run(scenario())
        assert sm.requests[0].method == "GET"
        assert sm.requests[0].path.startswith(f"/v1/{OPENAI_SECRET}:access")
    assert seen.path == "/v1/embeddings"
    assert seen.headers["authorization"] == "Bearer sk-test-123"
    assert seen.json() == body
    assert [len(d["embedding"]) for d in answer["data"]] == [1536, 1536]


def test_unknown_secret_is_28000_without_any_value() -> None:
    with secret_manager({}) as sm:

        async def scenario() -> None:
            engine = Engine(live(secret_manager_endpoint=sm.url))
            try:
                await engine.invoke(
                    {
                        "model_id": "oa",
                        "provider": "open_ai",
                        "url": "http://127.0.0.1:1/v1/embeddings",
                        "auth": {"type": "secret_manager", "secret_path": OPENAI_SECRET},
                        "body": {"input": "x"},
                    }
                )
            finally:
                await engine.aclose()

        with pytest.raises(ModelCallError) as caught:
            run(scenario())
    assert caught.value.sqlstate == "28000"
    assert OPENAI_SECRET in caught.value.message and '"oa"' in caught.value.message


def test_anthropic_gets_x_api_key_from_a_local_override_and_a_version() -> None:
    body = {
        "model": "claude-3-haiku",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hello"}],
    }
    env = {"ALLOYDB_AI_EMULATOR_SECRET_ANTHROPIC_KEY": "sk-ant-local"}

    async def scenario() -> tuple[Any, ReceivedRequest]:
        answer, seen, _ = await call_fake_server(
            # a dead Secret Manager endpoint proves the override needs no network
            lambda base: live(secret_env=env, secret_manager_endpoint="http://127.0.0.1:1"),
            {
                "model_id": "claude",
                "provider": "anthropic",
                "model_type": "llm",
                "url": "{base}/v1/messages",
                "headers": {},
                "auth": {
                    "type": "secret_manager",
                    "secret_path": "projects/p/secrets/anthropic-key/versions/latest",
                },
                "body": body,
            },
        )
        return answer, seen

    answer, seen = run(scenario())
    assert seen.headers["x-api-key"] == "sk-ant-local"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert seen.json() == body and answer["type"] == "message"


def test_secrets_file_override(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{"projects/p/secrets/hf": "hf_local"}')

    async def scenario() -> ReceivedRequest:
        _, seen, _ = await call_fake_server(
            lambda base: live(secrets_file=str(secrets)),
            {
                "model_id": "hf",
                "provider": "hugging_face",
                "model_type": "generic",
                "url": "{base}/models/distilbert-sst2",
                "auth": {
                    "type": "secret_manager",
                    "secret_path": "projects/p/secrets/hf/versions/3",
                },
                "body": {"inputs": "I love it"},
            },
        )
        return seen

    seen = run(scenario())
    assert seen.path == "/models/distilbert-sst2"
    assert seen.headers["authorization"] == "Bearer hf_local"


def test_header_function_authorization_wins_and_no_secret_is_fetched() -> None:
    async def scenario() -> ReceivedRequest:
        _, seen, _ = await call_fake_server(
            lambda base: live(secret_manager_endpoint="http://127.0.0.1:1"),
            {
                "model_id": "oa",
                "provider": "open_ai",
                "url": "{base}/v1/embeddings",
                "headers": {"Authorization": "Bearer from-header-fn", "X-Trace": 7},
                "auth": {"type": "secret_manager", "secret_path": OPENAI_SECRET},
                "body": {"input": "x"},
            },
        )
        return seen

    seen = run(scenario())
    assert seen.headers["authorization"] == "Bearer from-header-fn"
    assert seen.headers["x-trace"] == "7"


def test_gemini_and_ranking_requests_reach_the_overridden_google_hosts() -> None:
    gemini_body = {
        "contents": [{"role": "user", "parts": [{"text": "About cats? cats purr"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "STRING", "enum": ["true", "false"]},
        },
    }
    rank_body = {
        "model": "semantic-ranker-default-003",
        "query": "cats",
        "records": [{"id": "1", "content": "dogs"}, {"id": "2", "content": "cats"}],
        "topN": 2,
        "ignoreRecordDetailsInResponse": True,
    }
    headers = {"Authorization": "Bearer t"}

    async def scenario() -> list[tuple[Any, ReceivedRequest]]:
        out = []
        for request in (
            {
                "model_id": "gemini-2.5-flash-lite",
                "provider": "google",
                "model_type": "llm",
                "url": "https://us-central1-aiplatform.googleapis.com/v1/projects/proj/locations/"
                "us-central1/publishers/google/models/gemini-2.5-flash-lite:generateContent",
                "headers": headers,
                "body": gemini_body,
            },
            {
                "model_id": "semantic-ranker-default-003",
                "provider": "google",
                "model_type": "reranking",
                "url": None,
                "headers": headers,
                "body": rank_body,
            },
        ):
            answer, seen, _ = await call_fake_server(
                lambda base: live(vertex_base_url=base, discovery_engine_base_url=base), request
            )
            out.append((answer, seen))
        return out

    (gemini, gemini_seen), (ranked, rank_seen) = run(scenario())
    assert gemini_seen.path == (
        "/v1/projects/proj/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash-lite:generateContent"
    )
    assert gemini_seen.json() == gemini_body
    assert gemini["candidates"][0]["content"]["parts"][0]["text"] == '"true"'
    assert rank_seen.path == (
        "/v1/projects/proj/locations/global/rankingConfigs/default_ranking_config:rank"
    )
    assert rank_seen.json() == rank_body
    assert [r["id"] for r in ranked["records"]] == ["2", "1"]


def custom(url: str) -> dict[str, Any]:
    return {"model_id": "my-model", "provider": "custom", "url": url, "body": {"q": 1}}


def invoke_once(settings: EngineSettings, request: dict[str, Any]) -> tuple[Any, Engine]:
    async def scenario() -> tuple[Any, Engine]:
        engine = Engine(settings)
        try:
            return await engine.invoke(request), engine
        finally:
            await engine.aclose()

    return run(scenario())


def test_429_with_retry_after_is_retried_after_the_delay() -> None:
    def respond(seen: Seen) -> Reply:
        if len(server.requests) == 1:
            return Reply(429, {"error": "slow down"}, {"Retry-After": "1"})
        return Reply(200, {"answer": 42})

    with ScriptedServer(respond) as server:
        started = time.monotonic()
        answer, engine = invoke_once(live(), custom(server.url + "/predict"))
        elapsed = time.monotonic() - started
    assert answer == {"answer": 42}
    assert len(server.requests) == 2 and engine.stats.retries == 1
    assert elapsed >= 0.95


def test_a_model_that_keeps_failing_reports_status_and_body_excerpt() -> None:
    with ScriptedServer(lambda s: Reply(503, {"error": "overloaded " + "x" * 2000})) as server:
        with pytest.raises(ModelCallError) as caught:
            invoke_once(live(max_retries=2), custom(server.url + "/predict"))
        assert len(server.requests) == 3
    error = caught.value
    assert error.sqlstate == "38000" and '"my-model"' in error.message
    assert error.detail is not None
    assert error.detail.startswith('HTTP 503: {"error": "overloaded xxx')
    assert len(error.detail) <= len("HTTP 503: ") + 500


def test_client_errors_are_not_retried() -> None:
    with ScriptedServer(lambda s: Reply(400, {"error": "bad"})) as server:
        with pytest.raises(ModelCallError) as caught:
            invoke_once(live(), custom(server.url + "/predict"))
        assert len(server.requests) == 1
    assert caught.value.detail == 'HTTP 400: {"error": "bad"}'


def test_provider_error_body_never_shows_the_secret() -> None:
    def echo_auth(seen: Seen) -> Reply:
        return Reply(401, {"error": f"invalid key {seen.headers['authorization']}"})

    request = custom("")
    request["auth"] = {"type": "secret_manager", "secret_path": OPENAI_SECRET}
    with ScriptedServer(echo_auth) as server:
        request["url"] = server.url + "/predict"
        settings = live(secret_env={"ALLOYDB_AI_EMULATOR_SECRET_OPENAI_KEY": "sk-very-secret"})
        with pytest.raises(ModelCallError) as caught:
            invoke_once(settings, request)
    assert "sk-very-secret" not in str(caught.value.detail)
    assert "[REDACTED]" in str(caught.value.detail)


def test_invalid_json_answer_is_22032() -> None:
    with (
        ScriptedServer(lambda s: Reply(200, b"<html>oops</html>")) as server,
        pytest.raises(ModelCallError) as caught,
    ):
        invoke_once(live(), custom(server.url + "/predict"))
    assert caught.value.sqlstate == "22032"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_over_the_bound_is_54000_and_not_read_on(chunked: bool) -> None:
    """A provider (or any URL a model is registered with) cannot make the engine hold more than
    max_response_bytes, whether the answer declares its length or streams it."""
    big = {"values": [0.125] * 20_000}  # about 120 KB of JSON
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    with ScriptedServer(lambda s: Reply(200, big, headers)) as server:
        with pytest.raises(ModelCallError) as caught:
            invoke_once(live(max_response_bytes=64 * 1024), custom(server.url + "/predict"))
        assert len(server.requests) == 1  # not retried: the same answer would come again
        answer, _ = invoke_once(live(max_response_bytes=256 * 1024),
                                custom(server.url + "/predict"))
    assert caught.value.sqlstate == "54000"
    assert caught.value.message == (f'model "my-model": the answer from 127.0.0.1:{server.port}'
                                     " is larger than 65,536 bytes")
    assert answer == big


def test_unreachable_provider_is_08001() -> None:
    with pytest.raises(ModelCallError) as caught:
        invoke_once(live(max_retries=1), custom("http://127.0.0.1:1/predict"))
    assert caught.value.sqlstate == "08001" and "127.0.0.1:1" in caught.value.message


def test_slow_provider_times_out_with_57014() -> None:
    with ScriptedServer(lambda s: HANG) as server:
        started = time.monotonic()
        with pytest.raises(ModelCallError) as caught:
            invoke_once(live(read_timeout=0.3), custom(server.url + "/predict"))
        assert time.monotonic() - started < 10  # the server never answers: not a hang
    assert caught.value.sqlstate == "57014" and "0.3 s" in caught.value.message


def test_cancelling_the_caller_abandons_the_http_request() -> None:
    with ScriptedServer(lambda s: HANG) as server:

        async def scenario() -> float:
            engine = Engine(live())
            task = asyncio.create_task(engine.invoke(custom(server.url + "/predict")))
            while not server.requests:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            took = time.monotonic() - started
            await engine.aclose()
            return took

        took = run(scenario())
        assert took < 5  # the server never answers: not a hang
        assert server.closed_while_waiting.wait(5.0)


def test_batch_runs_concurrently_under_the_model_limit() -> None:
    in_flight = {"now": 0, "max": 0}
    lock = threading.Lock()

    def respond(seen: Seen) -> Reply:
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        time.sleep(0.2)
        with lock:
            in_flight["now"] -= 1
        return Reply(200, seen.json())

    with ScriptedServer(respond) as server:
        requests = [{**custom(server.url + "/p"), "body": {"i": i}} for i in range(8)]

        async def scenario() -> list[dict[str, Any]]:
            engine = Engine(live(model_concurrency=4))
            try:
                return await engine.invoke_batch(requests)
            finally:
                await engine.aclose()

        results = run(scenario())
    assert [r["ok"] for r in results] == [{"i": i} for i in range(8)]
    # concurrent (not one request at a time), and never above the model's limit
    assert 2 <= in_flight["max"] <= 4


def test_requests_reuse_kept_alive_connections() -> None:
    """Three batches of 8 requests at 4 in flight go over at most 4 connections: each is kept
    alive and reused, not opened per request (24)."""

    def respond(seen: Seen) -> Reply:
        time.sleep(0.02)
        return Reply(200, seen.json())

    with ScriptedServer(respond) as server:
        requests = [{**custom(server.url + "/p"), "body": {"i": i}} for i in range(8)]

        async def scenario() -> list[list[dict[str, Any]]]:
            engine = Engine(live(model_concurrency=4))
            try:
                return [await engine.invoke_batch(requests) for _ in range(3)]
            finally:
                await engine.aclose()

        rounds = run(scenario())
        connections = {seen.client for seen in server.requests}
    assert all([r["ok"] for r in results] == [{"i": i} for i in range(8)] for results in rounds)
    assert len(server.requests) == 24
    assert 1 <= len(connections) <= 4


def test_live_cache_is_opt_in() -> None:
    with ScriptedServer(lambda s: Reply(200, {"n": len(server.requests)})) as server:
        first, _ = invoke_once(live(), custom(server.url + "/p"))

        async def cached() -> list[Any]:
            engine = Engine(live(cache_live=True))
            try:
                return [await engine.invoke(custom(server.url + "/p")) for _ in range(2)]
            finally:
                await engine.aclose()

        answers = run(cached())
        assert len(server.requests) == 2
    assert first == {"n": 1} and answers == [{"n": 2}, {"n": 2}]
