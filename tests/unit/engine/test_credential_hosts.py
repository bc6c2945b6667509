"""Google credentials go only to Google's hosts and to the endpoints the emulator was started
with (emulator/engine/credential_hosts.py), whatever the registry or the request says."""

from __future__ import annotations

from asyncio import run
from pathlib import Path
from typing import Any

import pytest

from emulator.engine import EngineSettings, ModelCallError
from emulator.engine.credential_hosts import may_receive_google_credentials
from emulator.engine_factory import engine_with_fakes
from tests.support.http_servers import Reply, ScriptedServer, token_endpoint, write_service_account


def live(**overrides: Any) -> EngineSettings:
    values: dict[str, Any] = {"models": "live", "google_project": "proj",
                              "backoff_base": 0.01, "secret_env": {}}
    values.update(overrides)
    return EngineSettings(**values)


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://us-central1-aiplatform.googleapis.com/v1/projects/p/x:predict", True),
    ("https://discoveryengine.googleapis.com/v1/x:rank", True),
    ("https://googleapis.com/x", True),
    ("http://us-central1-aiplatform.googleapis.com/v1/x", False),  # never in clear text
    ("https://googleapis.com.attacker.test/x", False),
    ("https://attacker.test/googleapis.com/x", False),
    ("https://user@attacker.test/x", False),
    ("http://127.0.0.1:8123/v1/x", True),  # --vertex-base-url below
    ("http://127.0.0.1:8124/v1/x", False),  # same host, another port
    ("https://europe-west4-vertex.local.test/v1/x", True),  # its {region} form
    ("https://vertex.local.test/v1/x", False),
    ("http://127.0.0.1:8200/v1/x:rank", True),  # --discovery-engine-base-url
    ("https://secrets.local.test/v1/x", True),  # --secret-manager-endpoint (host only)
])
def test_the_rule(url: str, allowed: bool) -> None:
    settings = live(vertex_base_url="http://127.0.0.1:8123",
                    discovery_engine_base_url="http://127.0.0.1:8200/")
    regional = live(vertex_base_url="https://{region}-vertex.local.test",
                    secret_manager_endpoint="secrets.local.test")
    assert (may_receive_google_credentials(url, settings)
            or may_receive_google_credentials(url, regional)) is allowed


def google_model(url: str) -> dict[str, Any]:
    return {
        "model_id": "my-gemini",
        "provider": "google",
        "model_type": "llm",
        "url": url,
        "auth": {"type": "alloydb_service_agent_iam"},
        "body": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    }


def test_a_google_model_registered_with_another_url_gets_no_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = Reply(200, {"candidates": []})
    with token_endpoint("ya29.secret-token") as oauth, \
            ScriptedServer(lambda s: answer) as vertex, \
            ScriptedServer(lambda s: answer) as elsewhere:
        account = tmp_path / "sa.json"
        write_service_account(str(account), f"{oauth.url}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))

        async def call(url: str) -> Any:
            engine = engine_with_fakes(live(vertex_base_url=vertex.url))
            try:
                return await engine.invoke(google_model(url))
            finally:
                await engine.aclose()

        with pytest.raises(ModelCallError) as caught:
            run(call(f"{elsewhere.url}/v1/models/gemini:generateContent"))
        assert elsewhere.requests == [] and oauth.requests == []  # nothing left, no token made
        error = caught.value
        assert error.sqlstate == "42501"
        assert '"my-gemini"' in error.message and f"127.0.0.1:{elsewhere.port}" in error.message
        assert error.detail is not None and "*.googleapis.com" in error.detail
        assert "--vertex-base-url" in error.detail
        # The configured Vertex AI stand-in gets it, as before.
        run(call(f"{vertex.url}/v1/projects/p/locations/l/publishers/google/models/g"))
        assert vertex.requests[-1].headers["authorization"] == "Bearer ya29.secret-token"


def test_a_custom_model_asking_for_the_service_agent_is_held_to_the_same_rule() -> None:
    with ScriptedServer(lambda s: Reply(200, {})) as elsewhere:
        request = google_model(f"{elsewhere.url}/embed") | {"provider": "custom"}

        async def call() -> Any:
            engine = engine_with_fakes(EngineSettings(models="fake", secret_env={}))  # fake mode too
            try:
                return await engine.invoke(request)
            finally:
                await engine.aclose()

        with pytest.raises(ModelCallError) as caught:
            run(call())
        assert caught.value.sqlstate == "42501" and elsewhere.requests == []
