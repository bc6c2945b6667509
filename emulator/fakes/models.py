"""The fake models: a provider-shaped answer for any (url, body), computed in process.

Operation: `answer_request(url, body, rules) -> response JSON value`, or `FakeModelError(status,
body)` for a request the real provider would reject (the body shaped like that provider's errors).
The same function serves the engine's in-process fakes and the standalone server (`server.py`).

The URL's path says which wire format to speak (the host is ignored, so any base URL works):
the provider catalogue's ``route(path)`` (``emulator/providers.py``, ``ROUTES``) names it, and
``_ANSWERS`` maps each name to its fake here. Of note: a Vertex AI `:predict` on `/models/M`
answers embeddings (`instances[].content`, or multimodal), on `/endpoints/E` TimesFM's forecast
for an instance with `input` (`forecasting.py`) and else a deterministic score;
`:streamGenerateContent` answers a JSON array of chunks; a Hugging Face body with
`parameters.candidate_labels` is zero-shot classification, answered with those labels. A refusal is shaped like the errors of
the route's provider (``error_for_path``).

Embeddings come from `embeddings.py`, generations from `generation.py`, ranking from
`ranking.py`. Identifiers and timestamps in responses are derived from the request, so equal
requests get byte-equal answers. The embedding APIs' per-request limits (the catalogue's) are
enforced as the providers do, so a batching bug shows up offline too. A Vertex AI publisher model
that is no Google embedding model (`embedding('not_existing_model_id', ...)`, which AlloyDB sends
to Vertex AI as a model name) is answered 404, as Vertex AI answers it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from emulator.fakes import embeddings, forecasting, generation, ranking
from emulator.fakes.rules import EMPTY_RULES, RuleSet
from emulator.fakes.sums import left_sum
from emulator.providers import (
    OPENAI_MAX_TEXTS,
    OPENAI_MAX_TOKENS,
    RANKING_MAX_RECORDS,
    VERTEX_MAX_TEXTS,
    VERTEX_MAX_TOKENS,
    route,
)

_FIXED_TIME = "2025-01-01T00:00:00.000000Z"
_FIXED_EPOCH = 1735689600
_HF_GENERATORS = ("gpt", "llama", "mistral", "gemma", "falcon", "phi", "qwen", "t5", "bloom")
_HF_EMBEDDERS = ("sentence-transformers", "embed", "minilm", "mpnet", "bge", "e5-", "gte")


class FakeModelError(Exception):
    """A request the real provider would refuse: HTTP `status` with a provider-shaped `body`."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def _request_id(prefix: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str).encode("utf-8")
    return prefix + hashlib.blake2b(canonical, digest_size=12).hexdigest()


def google_error(status: int, message: str) -> FakeModelError:
    names = {
        400: "INVALID_ARGUMENT",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }
    return FakeModelError(
        status,
        {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}},
    )


def openai_error(status: int, message: str) -> FakeModelError:
    kind = (
        "rate_limit_error"
        if status == 429
        else "invalid_request_error"
        if status < 500
        else "server_error"
    )
    return FakeModelError(
        status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
    )


def anthropic_error(status: int, message: str) -> FakeModelError:
    kind = (
        "rate_limit_error"
        if status == 429
        else "invalid_request_error"
        if status < 500
        else "api_error"
    )
    return FakeModelError(status, {"type": "error", "error": {"type": kind, "message": message}})


def huggingface_error(status: int, message: str) -> FakeModelError:
    return FakeModelError(status, {"error": message})


_ERRORS: dict[str, Callable[[int, str], FakeModelError]] = {
    "google": google_error,
    "open_ai": openai_error,
    "anthropic": anthropic_error,
    "hugging_face": huggingface_error,
}


def error_for_path(path: str, status: int, message: str) -> FakeModelError:
    """An error shaped like the provider that `path` belongs to (Google's when none)."""
    found = route(path)
    return _ERRORS[found.provider if found is not None else "google"](status, message)


def _vertex_model(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


# The names of Google's text embedding models on Vertex AI, stable and preview, past and present
# (text-embedding-004/005, text-multilingual-embedding-002, gemini-embedding-001, the
# textembedding-gecko family, the experimental text-embedding-large-exp-03-07 and
# gemini-embedding-exp-03-07), by family, so that a model Google adds later is answered too.
_GOOGLE_EMBEDDING_FAMILIES = ("text-embedding-", "text-multilingual-embedding-",
                              "textembedding-gecko", "gemini-embedding-")


def _publisher_model_not_found(path: str) -> FakeModelError:
    resource = path.lstrip("/").split(":", 1)[0]
    resource = resource.split("/", 1)[1] if resource.startswith("v1") else resource
    return google_error(404, f"Publisher Model `{resource}` was not found or your project does "
                             "not have access to it. Please ensure you are using a valid model "
                             "version.")


# ---------------------------------------------------------------------------------- Vertex AI


def _positive_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise google_error(400, f"{what} must be a positive integer")
    return value


# text, dimension -> (the text's embedding, its word count): `embeddings.embed_counted` (a list),
# or `embeddings.embed_sparse` for the engine's in-process fakes (see `answer_request`).
Embedder = Callable[[str, int], tuple[Any, int]]


def vertex_predict(path: str, body: Any, embed: Embedder = embeddings.embed_counted) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise google_error(400, 'Invalid JSON payload: "instances" (a list) is required.')
    model = _vertex_model(path)
    parameters = body.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    if "/endpoints/" in path:
        return _endpoint_predictions(model, body["instances"])
    if model.startswith("multimodalembedding"):
        dimension = _positive_int(parameters.get("dimension"), "parameters.dimension") or 1408
        return {
            "predictions": [_multimodal(i, dimension) for i in body["instances"]],
            "deployedModelId": "fake",
        }
    if not model.lower().startswith(_GOOGLE_EMBEDDING_FAMILIES):
        raise _publisher_model_not_found(path)
    dimension = _positive_int(
        parameters.get("outputDimensionality"), "outputDimensionality"
    ) or embeddings.dimension_for(model)
    instances = body["instances"]
    if len(instances) > VERTEX_MAX_TEXTS:
        raise google_error(400, f"The number of instances ({len(instances)}) exceeds the limit "
                                f"of {VERTEX_MAX_TEXTS} per request.")
    tokens = sum(embeddings.limit_tokens(i["content"]) for i in instances
                 if isinstance(i, dict) and isinstance(i.get("content"), str))
    if tokens > VERTEX_MAX_TOKENS:
        raise google_error(400, f"Unable to submit request because the input token count is "
                                f"{tokens} but the model supports up to {VERTEX_MAX_TOKENS}. "
                                "Reduce the input token count and try again.")
    predictions = []
    for index, instance in enumerate(body["instances"]):
        content = instance.get("content") if isinstance(instance, dict) else None
        if not isinstance(content, str):
            raise google_error(400, f"instances[{index}].content (a string) is required.")
        vector, token_count = embed(content, dimension)
        predictions.append(
            {
                "embeddings": {
                    "values": vector,
                    "statistics": {"token_count": token_count, "truncated": False},
                }
            }
        )
    return {
        "predictions": predictions,
        "metadata": {"billableCharacterCount": sum(len(i["content"]) for i in body["instances"])},
    }


def _multimodal(instance: Any, dimension: int) -> dict[str, Any]:
    if not isinstance(instance, dict):
        raise google_error(400, "each instance must be an object")
    prediction: dict[str, Any] = {}
    if isinstance(instance.get("text"), str):
        prediction["textEmbedding"] = embeddings.embed(instance["text"], dimension)
    if isinstance(instance.get("image"), dict):
        image = json.dumps(instance["image"], sort_keys=True)
        prediction["imageEmbedding"] = embeddings.embed("image " + image, dimension)
    if isinstance(instance.get("video"), dict):
        prediction["videoEmbeddings"] = _video_segments(instance["video"], dimension)
    if not prediction:
        raise google_error(400, "an instance needs text, image or video")
    return prediction


# The fake video is 16 seconds long unless a segment config asks for more: Vertex AI's default
# interval is 16 seconds, so a video without a config is one segment, as before.
_FAKE_VIDEO_SECONDS = 16
_MAX_SEGMENTS = 120


def _video_segments(video: dict[str, Any], dimension: int) -> list[dict[str, Any]]:
    config = video.get("videoSegmentConfig") or {}
    if not isinstance(config, dict):
        raise google_error(400, "videoSegmentConfig must be an object")
    try:
        start = int(config.get("startOffsetSec", 0))
        interval = int(config.get("intervalSec", 16))
        end = int(config.get("endOffsetSec", max(start + interval, _FAKE_VIDEO_SECONDS)))
    except (TypeError, ValueError) as exc:
        raise google_error(400, "videoSegmentConfig offsets must be integers") from exc
    if start < 0 or end <= start or interval < 1:
        raise google_error(400, "invalid videoSegmentConfig")
    source = json.dumps({k: v for k, v in video.items() if k != "videoSegmentConfig"},
                        sort_keys=True)
    bounds = [(s, min(s + interval, end)) for s in range(start, end, interval)][:_MAX_SEGMENTS]
    return [
        {
            "startOffsetSec": s,
            "endOffsetSec": e,
            "embedding": embeddings.embed(f"video {source} {s}-{e}", dimension),
        }
        for s, e in bounds
    ]


def _endpoint_predictions(endpoint: str, instances: list[Any]) -> dict[str, Any]:
    predictions: list[Any] = []
    for index, instance in enumerate(instances):
        if forecasting.is_forecast_instance(instance):
            try:
                predictions.append(forecasting.forecast(instance))
            except forecasting.ForecastRequestError as exc:
                raise google_error(400, f"instances[{index}]: {exc}") from None
        else:
            score = generation.hash_fraction(json.dumps(instance, sort_keys=True))
            predictions.append({"score": round(score, 6)})
    return {"predictions": predictions, "deployedModelId": f"fake-{endpoint}"}


def _gemini_prompt(body: dict[str, Any]) -> list[str]:
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise google_error(400, "contents is not specified")
    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    last = users[-1] if users else contents[-1]
    parts = last.get("parts") if isinstance(last, dict) else None
    if isinstance(parts, dict):
        parts = [parts]
    if not isinstance(parts, list):
        raise google_error(400, "contents.parts must not be empty")
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts and not parts:
        raise google_error(400, "contents.parts must not be empty")
    return texts


def _gemini_text(model: str, body: Any, rules: RuleSet) -> tuple[str, int]:
    if not isinstance(body, dict):
        raise google_error(400, "Invalid JSON payload: expected an object")
    parts = _gemini_prompt(body)
    config = body.get("generationConfig") or body.get("generation_config") or {}
    schema = config.get("responseSchema") or config.get("response_schema")
    mime = config.get("responseMimeType") or config.get("response_mime_type")
    if not isinstance(schema, dict):
        schema = None
    value = generation.answer(parts, schema, model, rules)
    as_json = mime == "application/json" or (schema is not None and mime != "text/x.enum")
    return generation.render_text(value, as_json), sum(embeddings.token_count(p) for p in parts)


def _usage(prompt_tokens: int, text: str) -> dict[str, int]:
    answer_tokens = max(1, embeddings.token_count(text))
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": answer_tokens,
        "totalTokenCount": prompt_tokens + answer_tokens,
    }


def gemini_generate(path: str, body: Any, rules: RuleSet) -> Any:
    model = _vertex_model(path)
    text, prompt_tokens = _gemini_text(model, body, rules)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "avgLogprobs": -0.1,
            }
        ],
        "usageMetadata": _usage(prompt_tokens, text),
        "modelVersion": model,
        "createTime": _FIXED_TIME,
        "responseId": _request_id("fake-", body),
    }


def _chunks(text: str, count: int = 3) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def gemini_stream(path: str, body: Any, rules: RuleSet) -> Any:
    model = _vertex_model(path)
    text, prompt_tokens = _gemini_text(model, body, rules)
    pieces = _chunks(text)
    stream: list[dict[str, Any]] = []
    for index, piece in enumerate(pieces):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}}
        chunk: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": model,
            "createTime": _FIXED_TIME,
            "responseId": _request_id("fake-", body),
        }
        if index == len(pieces) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = _usage(prompt_tokens, text)
        stream.append(chunk)
    return stream


def gemini_count_tokens(body: Any) -> Any:
    parts = _gemini_prompt(body) if isinstance(body, dict) else []
    total = sum(embeddings.token_count(p) for p in parts)
    return {"totalTokens": total, "totalBillableCharacters": sum(len(p) for p in parts)}


def vertex_rank(body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise google_error(400, "query is required")
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise google_error(400, "records (a list of objects) is required")
    if len(records) > RANKING_MAX_RECORDS:
        raise google_error(400, f"at most {RANKING_MAX_RECORDS} records are allowed per request")
    top_n = body.get("topN")
    ranked = ranking.rank(body["query"], records, top_n if isinstance(top_n, int) else None)
    details = not body.get("ignoreRecordDetailsInResponse", False)
    out = []
    for record, score in ranked:
        entry: dict[str, Any] = {"id": str(record.get("id", "")), "score": score}
        if details:
            entry.update({k: record[k] for k in ("title", "content") if k in record})
        out.append(entry)
    return {"records": out}


# ------------------------------------------------------------------------------------- OpenAI


def openai_embeddings(body: Any, embed: Embedder = embeddings.embed_counted) -> Any:
    if not isinstance(body, dict) or "input" not in body:
        raise openai_error(400, "'input' is a required property")
    model = str(body.get("model") or "text-embedding-ada-002")
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if not inputs:
        raise openai_error(400, "'input' must not be empty")
    dimension = body.get("dimensions")
    if dimension is not None and (not isinstance(dimension, int) or dimension <= 0):
        raise openai_error(400, "'dimensions' must be a positive integer")
    size = dimension or embeddings.dimension_for(model)
    texts = [item if isinstance(item, str) else json.dumps(item) for item in inputs]
    if len(texts) > OPENAI_MAX_TEXTS:
        raise openai_error(400, f"'input' has {len(texts)} items; at most {OPENAI_MAX_TEXTS} "
                                "are allowed per request")
    requested = sum(embeddings.limit_tokens(t) for t in texts)
    if requested > OPENAI_MAX_TOKENS:
        raise openai_error(400, f"Requested {requested} tokens, max {OPENAI_MAX_TOKENS} tokens "
                                "per request")
    data = []
    tokens = 0
    for i, text in enumerate(texts):
        vector, count = embed(text, size)
        data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens += count
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"
        )
    return ""


def openai_chat(body: Any, rules: RuleSet) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise openai_error(400, "'messages' is a required property")
    model = str(body.get("model") or "gpt-4o-mini")
    users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    prompt = _message_text(users[-1].get("content")) if users else ""
    schema = None
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    value = generation.answer([prompt], schema if isinstance(schema, dict) else None, model, rules)
    text = generation.render_text(value, schema is not None)
    prompt_tokens, answer_tokens = embeddings.token_count(prompt), embeddings.token_count(text)
    return {
        "id": _request_id("chatcmpl-fake", body),
        "object": "chat.completion",
        "created": _FIXED_EPOCH,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": answer_tokens,
            "total_tokens": prompt_tokens + answer_tokens,
        },
    }


# ---------------------------------------------------------------------------------- Anthropic


def anthropic_messages(body: Any, rules: RuleSet) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise anthropic_error(400, "messages: Field required")
    if "max_tokens" not in body:
        raise anthropic_error(400, "max_tokens: Field required")
    model = str(body.get("model") or "claude-3-haiku-20240307")
    users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    prompt = _message_text(users[-1].get("content")) if users else ""
    text = generation.answer_one(prompt, None, model, rules)
    return {
        "id": _request_id("msg_fake", body),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": embeddings.token_count(prompt),
            "output_tokens": embeddings.token_count(text),
        },
    }


# ------------------------------------------------------------------------------- Hugging Face


def huggingface(path: str, body: Any, rules: RuleSet) -> Any:
    task, model = _hf_task_and_model(path)
    if not isinstance(body, dict) or "inputs" not in body:
        raise huggingface_error(400, "Missing 'inputs' in the request body")
    inputs = body["inputs"]
    texts = inputs if isinstance(inputs, list) else [inputs]
    texts = [t if isinstance(t, str) else json.dumps(t) for t in texts]
    lowered = model.lower()
    if task == "feature-extraction" or (task is None and any(k in lowered for k in _HF_EMBEDDERS)):
        size = embeddings.dimension_for(model)
        vectors = [embeddings.embed(t, size) for t in texts]
        return vectors if isinstance(inputs, list) else vectors[0]
    if task == "text-generation" or (task is None and any(k in lowered for k in _HF_GENERATORS)):
        return [{"generated_text": generation.answer_one(t, None, model, rules)} for t in texts]
    parameters = body.get("parameters")
    if isinstance(parameters, dict) and "candidate_labels" in parameters:
        candidates = _candidate_labels(parameters["candidate_labels"])
        multi = parameters.get("multi_label") is True
        answers = [_zero_shot(t, candidates, multi) for t in texts]
        return answers if isinstance(inputs, list) else answers[0]
    labels = [_classify(t) for t in texts]
    return labels


def _hf_task_and_model(path: str) -> tuple[str | None, str]:
    if "/pipeline/" in path:
        task, _, model = path.split("/pipeline/", 1)[1].partition("/")
        return task, model
    return None, path.split("/models/", 1)[1]


def _candidate_labels(value: Any) -> list[str]:
    """The zero-shot task's labels: a list of strings, or (as the transformers pipeline also
    takes them) one string of comma-separated labels."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise huggingface_error(
            400, "parameters.candidate_labels must be a non-empty list of strings")
    return value


def _sentiment_fit(label: str, mood: int) -> float:
    """How well a sentiment label fits a text of sentiment ``mood`` (generation.sentiment)."""
    wanted = {"positive": mood > 0, "negative": mood < 0, "neutral": mood == 0}
    return 0.5 if wanted.get(label.strip().lower(), False) else 0.0


def _zero_shot(text: str, labels: list[str], multi_label: bool) -> list[dict[str, Any]]:
    """Zero-shot classification in the task's current shape, ``[{label, score}]`` highest
    first: each candidate label scored by how much of it the text mentions (the fake ranker's
    score; a sentiment label scores by the text's sentiment too). Scores sum to 1 unless
    ``multi_label``, where each is independent."""
    mood = generation.sentiment(text)
    raw = [min(1.0, ranking.score(label, text) + _sentiment_fit(label, mood)) for label in labels]
    if multi_label:
        scores = [0.05 + 0.9 * r for r in raw]
    else:
        weights = [math.exp(4.0 * r) for r in raw]
        total = left_sum(weights)
        scores = [w / total for w in weights]
    pairs = sorted(zip(labels, scores), key=lambda p: -p[1])
    return [{"label": label, "score": round(value, 6)} for label, value in pairs]


def _classify(text: str) -> list[dict[str, Any]]:
    positive = 1.0 / (1.0 + 2.718281828 ** (-1.5 * generation.sentiment(text)))
    pairs = [("POSITIVE", round(positive, 6)), ("NEGATIVE", round(1 - positive, 6))]
    pairs.sort(key=lambda p: -p[1])
    return [{"label": label, "score": value} for label, value in pairs]


# ----------------------------------------------------------------------------------- dispatch


# The fake of each wire format of the catalogue's ROUTES: (path, body, rules) -> answer; the
# batch embedding APIs' take the embedder instead of the rules.
_EMBEDDING_ANSWERS: dict[str, Callable[[str, Any, Embedder], Any]] = {
    "vertex_predict": vertex_predict,
    "openai_embeddings": lambda path, body, embed: openai_embeddings(body, embed),
}
_ANSWERS: dict[str, Callable[[str, Any, RuleSet], Any]] = {
    "gemini_generate": gemini_generate,
    "gemini_stream": gemini_stream,
    "gemini_count_tokens": lambda path, body, rules: gemini_count_tokens(body),
    "vertex_rank": lambda path, body, rules: vertex_rank(body),
    "openai_chat": lambda path, body, rules: openai_chat(body, rules),
    "anthropic_messages": lambda path, body, rules: anthropic_messages(body, rules),
    "hugging_face": huggingface,
}


def answer_request(url: str, body: Any, rules: RuleSet = EMPTY_RULES, *,
                   frozen: bool = False, dense: bool = False) -> Any:
    """The fake provider's response to a POST of `body` to `url` (see the module plan).

    With `frozen`, the embeddings of Vertex AI's and OpenAI's text embedding answers are
    `embeddings.Sparse` objects (`FrozenVector`s: no list of floats built; `thaw()` gives the
    list) instead of lists: the engine's in-process fakes answer so, for the warm-up needs only
    their literals (engine.py thaws them for every other caller). With `dense` (the server's
    `--dense-embeddings`), those embeddings have every component non-zero
    (`embeddings.embed_dense_counted`)."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    found = route(path)
    if found is None:
        raise google_error(404, f"The fake models do not serve the path {path!r}.")
    embedding_answer = _EMBEDDING_ANSWERS.get(found.api)
    if embedding_answer is not None:
        embed: Embedder = (embeddings.embed_sparse if frozen
                           else embeddings.embed_dense_counted if dense
                           else embeddings.embed_counted)
        return embedding_answer(path, body, embed)
    return _ANSWERS[found.api](path, body, rules)
