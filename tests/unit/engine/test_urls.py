"""Relative Vertex paths resolve against the configured base URL, project and region."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.engine.errors import ModelCallError
from emulator.engine.request import ModelRequest
from emulator.engine.settings import EngineSettings
from emulator.engine.urls import resolve_url


def request(
    url: str | None, provider: str = "google", model_type: str = "text_embedding", **extra: Any
) -> ModelRequest:
    return ModelRequest.parse(
        {"model_id": "m", "provider": provider, "model_type": model_type, "url": url, **extra}
    )


DEFAULT = EngineSettings()


def test_publisher_path_gets_project_region_and_predict() -> None:
    assert resolve_url(request("publishers/google/models/text-embedding-005"), DEFAULT, "p") == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1"
        "/publishers/google/models/text-embedding-005:predict"
    )


def test_llm_without_verb_gets_generate_content() -> None:
    url = resolve_url(
        request("publishers/google/models/gemini-2.5-flash-lite", model_type="llm"), DEFAULT, "p"
    )
    assert url.endswith("/models/gemini-2.5-flash-lite:generateContent")


def test_explicit_verb_is_kept() -> None:
    url = resolve_url(
        request(
            "publishers/google/models/gemini-1.5-pro:streamGenerateContent", model_type="generic"
        ),
        DEFAULT,
        "p",
    )
    assert url.endswith("/models/gemini-1.5-pro:streamGenerateContent")


def test_project_path_keeps_its_project_and_region() -> None:
    url = resolve_url(
        request(
            "projects/other/locations/europe-west4/publishers/google/models/text-embedding-005"
        ),
        EngineSettings(google_region="us-east1"),
        None,
    )
    assert url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/other/locations/europe-west4"
        "/publishers/google/models/text-embedding-005:predict"
    )


def test_vertex_base_url_override_applies_to_relative_and_absolute_urls() -> None:
    settings = EngineSettings(vertex_base_url="http://127.0.0.1:9999/vertex")
    relative = resolve_url(request("publishers/google/models/m"), settings, "p")
    assert relative == (
        "http://127.0.0.1:9999/vertex/v1/projects/p/locations/us-central1/publishers/google/models/m:predict"
    )
    absolute = resolve_url(
        request(
            "https://asia-east1-aiplatform.googleapis.com/v1/projects/p/locations/asia-east1"
            "/publishers/google/models/m:predict"
        ),
        settings,
        None,
    )
    assert absolute == (
        "http://127.0.0.1:9999/vertex/v1/projects/p/locations/asia-east1/publishers/google/models/m:predict"
    )


def test_discovery_engine_override_and_default_ranking_url() -> None:
    settings = EngineSettings(discovery_engine_base_url="http://127.0.0.1:9/de")
    url = resolve_url(request(None, model_type="reranking"), settings, "p")
    assert url == (
        "http://127.0.0.1:9/de/v1/projects/p/locations/global/rankingConfigs/default_ranking_config:rank"
    )


def test_other_providers_default_urls() -> None:
    assert (
        resolve_url(request(None, "open_ai"), DEFAULT, None)
        == "https://api.openai.com/v1/embeddings"
    )
    assert resolve_url(request(None, "anthropic", "llm"), DEFAULT, None) == (
        "https://api.anthropic.com/v1/messages"
    )
    assert (
        resolve_url(request(None, "hugging_face", "generic", qualified_name="org/m"), DEFAULT, None)
        == "https://api-inference.huggingface.co/models/org/m"
    )


def test_non_google_absolute_url_is_untouched() -> None:
    url = "http://127.0.0.1:8000/anything?x=1"
    assert resolve_url(request(url, "custom"), DEFAULT, None) == url


@pytest.mark.parametrize("url", ["models/m", "ftp://x/y"])
def test_unusable_urls_are_bad_requests(url: str) -> None:
    with pytest.raises(ModelCallError) as caught:
        resolve_url(request(url), DEFAULT, "p")
    assert caught.value.sqlstate == "22023"


def test_custom_model_without_url_is_a_bad_request() -> None:
    with pytest.raises(ModelCallError) as caught:
        resolve_url(request(None, "custom"), DEFAULT, None)
    assert caught.value.sqlstate == "22023" and '"m"' in caught.value.message


def test_relative_path_without_project_asks_for_one() -> None:
    with pytest.raises(ModelCallError) as caught:
        resolve_url(request("publishers/google/models/m"), DEFAULT, None)
    assert "--google-project" in caught.value.message


names = st.from_regex(r"[a-z][a-z0-9.@-]{0,30}", fullmatch=True)


@given(
    model=names,
    project=names,
    region=st.from_regex(r"[a-z]+-[a-z]+[0-9]", fullmatch=True),
    model_type=st.sampled_from(["text_embedding", "llm", "generic"]),
)
def test_relative_and_project_paths_resolve_alike(
    model: str, project: str, region: str, model_type: str
) -> None:
    settings = EngineSettings(google_region=region)
    short = resolve_url(
        request(f"publishers/google/models/{model}", model_type=model_type), settings, project
    )
    full = resolve_url(
        request(
            f"projects/{project}/locations/{region}/publishers/google/models/{model}",
            model_type=model_type,
        ),
        settings,
        None,
    )
    # Vertex AI: embeddings predict; Gemini (llm, and generic as the SQL's default URL has it)
    # generates content.
    verb = ":predict" if model_type == "text_embedding" else ":generateContent"
    assert (
        short
        == full
        == (
            f"https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}"
            f"/publishers/google/models/{model}{verb}"
        )
    )


@pytest.mark.parametrize("model_type", ["generic", "llm", "text_embedding", "ts_forecasting"])
def test_an_endpoint_without_a_verb_predicts_whatever_its_model_type(model_type: str) -> None:
    # An endpoint (a deployed model: TimesFM, a tabular model) serves :predict.
    url = resolve_url(request("projects/p/locations/r1/endpoints/123", model_type=model_type),
                      DEFAULT, None)
    assert url.endswith("/v1/projects/p/locations/r1/endpoints/123:predict")


@pytest.mark.parametrize(("model_type", "verb"), [
    ("generic", ":generateContent"), ("llm", ":generateContent"),
    ("multimodal_embedding", ":predict"), ("ts_forecasting", ":predict")])
def test_a_stored_publisher_url_without_a_verb_gets_the_verb_of_its_default_url(
        model_type: str, verb: str) -> None:
    absolute = ("https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/"
                "us-central1/publishers/google/models/m")
    assert resolve_url(request(absolute, model_type=model_type), DEFAULT, None) == absolute + verb


def test_a_generic_publisher_path_with_a_predict_body_predicts() -> None:
    # ml_predict_row('publishers/google/models/text-embedding-005', '{"instances": [...]}'):
    # the SQL sends an unregistered path as a generic model; its body asks for :predict.
    predict = {"instances": [{"content": "hello"}]}
    url = resolve_url(request("publishers/google/models/text-embedding-005", model_type="generic",
                              body=predict), DEFAULT, "p")
    assert url.endswith("/projects/p/locations/us-central1/publishers/google/models/"
                        "text-embedding-005:predict")
    generate = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert resolve_url(request("publishers/google/models/gemini-pro", model_type="generic",
                               body=generate), DEFAULT, "p").endswith(":generateContent")
    # a verb in the path is kept whatever the body
    assert resolve_url(request("publishers/google/models/m:generateContent", model_type="generic",
                               body=predict), DEFAULT, "p").endswith("/m:generateContent")
