"""Record against real local HTTP servers that speak the providers' formats, replay with them gone.

The recording engine runs in `record` mode against the project's fake model server (Vertex AI,
Gemini, ranking, OpenAI formats) with a real OAuth token endpoint and a secret; the replaying
engine has no server, no credentials, and must give the same answers, whatever the batching.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import run
from pathlib import Path
from typing import Any

import pytest

from emulator.engine import EngineSettings, ModelCallError
from emulator.engine.cassette import Cassette, CassetteError
from emulator.engine_factory import engine_with_fakes
from emulator.fakes import start_fake_model_server
from emulator.fakes.models import answer_request
from tests.support.http_servers import Reply, ScriptedServer, token_endpoint, write_service_account

TOKEN = "ya29.recorded-token-must-not-leak"
OPENAI_KEY = "sk-openai-secret-must-not-leak"
HEADER_KEY = "custom-header-key-must-not-leak"
OPENAI_SECRET = "projects/p/secrets/openai-key/versions/1"
TEXTS = ["a red apple", "a green pear", "the sea at night"]


def vertex(texts: list[str]) -> dict[str, Any]:
    return {
        "model_id": "text-embedding-005", "provider": "google", "model_type": "text_embedding",
        "qualified_name": "text-embedding-005", "url": "publishers/google/models/text-embedding-005",
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": {"instances": [{"content": t, "task_type": "RETRIEVAL_DOCUMENT"} for t in texts]},
    }


def openai(texts: list[str] | str, base: str = "http://127.0.0.1:9") -> dict[str, Any]:
    return {
        "model_id": "text-embedding-3-small", "provider": "open_ai",
        "model_type": "text_embedding", "qualified_name": "text-embedding-3-small",
        "url": f"{base}/v1/embeddings",
        "auth": {"type": "secret_manager", "secret_path": OPENAI_SECRET},
        "body": {"input": texts, "model": "text-embedding-3-small"},
    }


def gemini(prompt: str) -> dict[str, Any]:
    return {
        "model_id": "gemini-2.0-flash-001", "provider": "google", "model_type": "llm",
        "qualified_name": "gemini-2.0-flash-001",
        "url": "publishers/google/models/gemini-2.0-flash-001:generateContent",
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
    }


def ranking() -> dict[str, Any]:
    return {
        "model_id": "semantic-ranker-512@latest", "provider": "google", "model_type": "reranking",
        "qualified_name": "semantic-ranker-512@latest",
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": {"model": "semantic-ranker-512@latest", "query": "apple",
                 "records": [{"id": str(i), "content": t} for i, t in enumerate(TEXTS)]},
    }


def settings(mode: str, cassette: Path, base: str = "http://127.0.0.1:9",
             **extra: Any) -> EngineSettings:
    return EngineSettings(
        models=mode,  # type: ignore[arg-type]
        cassette=str(cassette), vertex_base_url=base, discovery_engine_base_url=base,
        google_project="proj" if mode == "record" else None, backoff_base=0.01, max_retries=1,
        secret_env={"ALLOYDB_AI_EMULATOR_SECRET_OPENAI_KEY": OPENAI_KEY} if mode == "record"
        else {}, **extra)


def record_session(tmp_path: Path, cassette: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Record the calls of one session; returns their answers."""
    with token_endpoint(TOKEN) as oauth:
        account = tmp_path / "sa.json"
        write_service_account(str(account), f"{oauth.url}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))

        async def scenario() -> dict[str, Any]:
            server, port = await start_fake_model_server()
            base = f"http://127.0.0.1:{port}"
            engine = engine_with_fakes(settings("record", cassette, base))
            try:
                return {
                    "batch": await engine.invoke(vertex(TEXTS)),
                    "openai": await engine.invoke(openai(TEXTS, base)),
                    "gemini": await engine.invoke(gemini("Say hello")),
                    "rank": await engine.invoke(ranking()),
                }
            finally:
                await engine.aclose()
                await server.aclose()

        answers = run(scenario())
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    return answers


def vectors(answer: Any) -> list[Any]:
    if "predictions" in answer:
        return [p["embeddings"]["values"] for p in answer["predictions"]]
    return [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]


def test_replay_answers_offline_whatever_the_batching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "session.jsonl"
    recorded = record_session(tmp_path, cassette, monkeypatch)

    async def replay() -> dict[str, Any]:
        engine = engine_with_fakes(settings("replay", cassette))  # no server, no token, no secret
        try:
            return {
                "singles": [await engine.invoke(vertex([t])) for t in TEXTS],
                "reordered": await engine.invoke(vertex([TEXTS[2], TEXTS[0]])),
                "batch": await engine.invoke(vertex(TEXTS)),
                "openai_one": await engine.invoke(openai(TEXTS[1])),
                "openai": await engine.invoke(openai(TEXTS)),
                "gemini": await engine.invoke(gemini("Say hello")),
                "rank": await engine.invoke(ranking()),
                "http": engine.stats.http_requests,
            }
        finally:
            await engine.aclose()

    replayed = run(replay())
    batch = vectors(recorded["batch"])
    assert [vectors(a)[0] for a in replayed["singles"]] == batch
    assert vectors(replayed["reordered"]) == [batch[2], batch[0]]
    assert vectors(replayed["batch"]) == batch
    assert vectors(replayed["openai_one"]) == [vectors(recorded["openai"])[1]]
    assert vectors(replayed["openai"]) == vectors(recorded["openai"])
    assert replayed["gemini"] == recorded["gemini"]
    assert replayed["rank"] == recorded["rank"]
    assert [r["id"] for r in replayed["rank"]["records"]] == \
        [r["id"] for r in recorded["rank"]["records"]]
    assert replayed["http"] == 0


def test_the_cassette_is_sorted_readable_stable_and_free_of_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    record_session(tmp_path, first, monkeypatch)
    record_session(tmp_path, second, monkeypatch)
    text = first.read_text()
    lines = text.splitlines()
    entries = [json.loads(line) for line in lines]
    # one entry per text of the embedding batches, one per other call
    assert sorted(e["kind"] for e in entries) == ["call", "call"] + ["embedding"] * 6
    assert lines == sorted(lines)
    for secret in (TOKEN, OPENAI_KEY, "Bearer", "uthorization"):
        assert secret not in text
    # the recorded URLs differ only by the servers' ports; the rest is byte-equal
    assert [e["request"] for e in entries] == \
        [json.loads(line)["request"] for line in second.read_text().splitlines()]
    texts = [e["request"]["instance"]["content"] for e in entries
             if e["provider"] == "google" and e["kind"] == "embedding"]
    assert sorted(texts) == sorted(TEXTS)


def test_an_unrecorded_request_is_an_error_that_says_how_to_record_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "session.jsonl"
    record_session(tmp_path, cassette, monkeypatch)

    async def replay() -> ModelCallError:
        engine = engine_with_fakes(settings("replay", cassette))
        try:
            with pytest.raises(ModelCallError) as caught:
                await engine.invoke(vertex([TEXTS[0], "never recorded"]))
            return caught.value
        finally:
            await engine.aclose()

    error = run(replay())
    assert error.sqlstate == "38000"
    assert 'model "text-embedding-005"' in error.message and str(cassette) in error.message
    assert "never recorded" in (error.detail or "")
    assert "--models record" in (error.hint or "") and "replay-or-fake" in (error.hint or "")


def test_replay_or_fake_fakes_only_what_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "session.jsonl"
    recorded = record_session(tmp_path, cassette, monkeypatch)

    async def replay() -> tuple[Any, Any]:
        engine = engine_with_fakes(settings("replay-or-fake", cassette))
        try:
            return await engine.invoke(vertex(TEXTS)), await engine.invoke(gemini("Unrecorded"))
        finally:
            await engine.aclose()

    known, unknown = run(replay())
    assert vectors(known) == vectors(recorded["batch"])
    fake = answer_request("https://x/v1/projects/emulator-project/locations/us-central1/publishers/"
                          "google/models/gemini-2.0-flash-001:generateContent",
                          gemini("Unrecorded")["body"])
    assert unknown == fake


def test_refusals_replay_and_retried_failures_are_not_kept(tmp_path: Path) -> None:
    """A provider's 400 replays as the same SQL error; a 503 then 200 keeps only the 200; a
    custom model's key in a header is scrubbed from everything the cassette keeps."""
    cassette = tmp_path / "custom.jsonl"
    replies = iter([Reply(400, {"error": f"bad input, key {HEADER_KEY} rejected"}),
                    Reply(503, {"error": "busy"}), Reply(200, {"answer": 42})])
    with ScriptedServer(lambda _seen: next(replies)) as server:
        def custom(body: Any) -> dict[str, Any]:
            return {"model_id": "my-model", "provider": "custom", "model_type": "generic",
                    "url": f"{server.url}/predict?key={HEADER_KEY}",
                    "headers": {"x-goog-api-key": HEADER_KEY}, "body": body}

        async def record() -> Any:
            engine = engine_with_fakes(settings("record", cassette))
            try:
                with pytest.raises(ModelCallError):
                    await engine.invoke(custom({"q": "bad"}))
                return await engine.invoke(custom({"q": "good"}))
            finally:
                await engine.aclose()

        assert run(record()) == {"answer": 42}
    text = cassette.read_text()
    assert HEADER_KEY not in text and "busy" not in text
    assert [json.loads(line)["status"] for line in text.splitlines()] == [400, 200]

    async def replay() -> tuple[Any, ModelCallError]:
        engine = engine_with_fakes(settings("replay", cassette))
        try:
            good = await engine.invoke(custom({"q": "good"}))
            with pytest.raises(ModelCallError) as caught:
                await engine.invoke(custom({"q": "bad"}))
            return good, caught.value
        finally:
            await engine.aclose()

    good, refused = run(replay())
    assert good == {"answer": 42}
    assert refused.sqlstate == "38000" and "HTTP 400" in (refused.detail or "")


def test_cassette_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="record it first"):
        Cassette(tmp_path / "missing.jsonl", must_exist=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"provider": "google"}\n')
    with pytest.raises(CassetteError, match="line 1"):
        Cassette(bad, must_exist=True)
    with pytest.raises(ValueError, match="needs --cassette"):
        EngineSettings(models="replay")
    with pytest.raises(ValueError, match="goes with"):
        EngineSettings(models="live", cassette=str(bad))


def test_the_file_is_written_soon_after_an_answer_not_only_at_exit(tmp_path: Path) -> None:
    """A recording that is killed keeps what was answered a second or more before."""
    path = tmp_path / "soon.jsonl"

    async def scenario() -> list[str]:
        cassette = Cassette(path, must_exist=False)
        entry = {"provider": "custom", "model": "m", "operation": "predict", "kind": "call",
                 "request": {"q": 1}, "status": 200, "response": {"a": 1}}
        cassette.add(entry, [])
        for _ in range(100):
            if path.exists():
                break
            await asyncio.sleep(0.05)
        cassette.add({**entry, "request": {"q": 2}}, [])
        for _ in range(100):
            if path.exists() and len(path.read_text().splitlines()) == 2:
                break
            await asyncio.sleep(0.05)
        return path.read_text().splitlines()

    lines = run(scenario())
    assert [json.loads(line)["request"] for line in lines] == [{"q": 1}, {"q": 2}]
