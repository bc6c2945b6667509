"""Reading embeddings out of provider answers, for the warm-up's fast path.

The built-in output transforms of the extension (``vertexai_text_embedding_output_transform``,
``openai_text_embedding_output_transform``) take ``predictions[i].embeddings.values`` and
``data[i].embedding`` and cast each number to ``real``. The warm-up asks the engine to do the
same extraction and to answer PostgreSQL array literals, so that ten thousand embeddings do not
travel through SQL as JSON. ``repr`` of a float parsed from JSON is the shortest text that reads
back as the same number, so PostgreSQL's ``real`` cast sees the same value either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.fakes.embeddings import FakeVector


class RawText(str):
    """An engine answer the callback endpoint sends as it is, not as JSON."""


def _literal(values: Any) -> str | None:
    if type(values) is FakeVector:  # the fakes' vectors know their few non-zero values
        return values.literal()
    if not isinstance(values, list):
        return None
    text = ",".join(map(repr, values))
    # Only numbers make a real[] literal the built-in transforms would have produced; a null,
    # string, list or object in the answer goes the per-row way (which reports it as SQL does).
    if any(mark in text for mark in _NOT_A_NUMBER):
        return None
    return "{" + text + "}"


_NOT_A_NUMBER = ("None", "'", '"', "[", "{", "True", "False")


def vertex_embeddings(response: Any) -> list[str] | None:
    predictions = response.get("predictions") if isinstance(response, dict) else None
    if not isinstance(predictions, list):
        return None
    out = []
    for prediction in predictions:
        values = prediction.get("embeddings", {}).get("values") if isinstance(prediction, dict) else None
        literal = _literal(values)
        if literal is None:
            return None
        out.append(literal)
    return out


def openai_embeddings(response: Any) -> list[str] | None:
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, list):
        return None
    ordered = sorted(
        (d for d in data if isinstance(d, dict)), key=lambda d: int(d.get("index", 0))
    )
    out = []
    for item in ordered:
        literal = _literal(item.get("embedding"))
        if literal is None:
            return None
        out.append(literal)
    return out


EXTRACTORS: dict[str, Callable[[Any], list[str] | None]] = {
    "vertex_embeddings": vertex_embeddings,
    "openai_embeddings": openai_embeddings,
}


def batch_size(request: Any) -> int:
    """How many texts one batched embedding request carries."""
    body = request.get("body") if isinstance(request, dict) else None
    if isinstance(body, dict):
        if isinstance(body.get("instances"), list):
            return len(body["instances"])
        if isinstance(body.get("input"), list):
            return len(body["input"])
        if isinstance(body.get("input"), str):
            return 1
    return 1
