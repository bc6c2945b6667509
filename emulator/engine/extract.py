"""Reading embeddings out of provider answers, for the warm-up's fast path.

The built-in output transforms of the extension (``vertexai_text_embedding_output_transform``,
``openai_text_embedding_output_transform`` and their batch forms) take
``predictions[i].embeddings.values`` and ``data[i].embedding`` and cast each number's JSON text
to ``real`` (``json_array_elements_text(v)::real``). The warm-up asks the engine to do the same
extraction and to answer PostgreSQL array literals, so that ten thousand embeddings do not
travel through SQL as JSON.

Two inputs, one answer:

- ``raw_vertex_embeddings(content)`` / ``raw_openai_embeddings(content)`` read a provider's
  answer as it came over HTTP and never make a Python float: msgspec validates the whole
  document as JSON (every number token included) while it decodes only the skeleton, and hands
  each embedding array over as its raw bytes; an array whose bytes hold nothing but number
  tokens, commas and whitespace is a list of numbers, and those tokens, copied, are the
  ``real[]`` literal. So PostgreSQL's ``real`` input reads exactly the text the output transform
  would have cast (no detour through a double and back).
- ``vertex_embeddings(value)`` / ``openai_embeddings(value)`` read an answer already parsed (the
  fakes answer in process; a cached answer); ``repr`` of a float parsed from JSON is the
  shortest text that reads back as the same double.

Anything not of the expected shape (invalid JSON, a missing field, a null or a string among the
numbers, OpenAI indices that are not 0..n-1) answers None: the warm-up then leaves those texts
to the per-row path, which reports the problem exactly as the output transform does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any, Generic, TypeVar

import msgspec

from emulator.embedding_literal import FrozenVector, LiteralVector
from emulator.providers import OPENAI_EMBEDDINGS, VERTEX_EMBEDDINGS

T = TypeVar("T")
N = TypeVar("N")  # how an answer's numbers are read


class RawText(bytes):
    """An engine answer the callback endpoint sends as it is, not as JSON (UTF-8 text)."""


# -- raw answers (bytes from HTTP) -------------------------------------------------------------

# The bytes a JSON array of numbers holds between its brackets: number tokens, commas and the
# four JSON whitespace characters. msgspec has already checked that the array is valid JSON, so
# if nothing else is there each element is a number (a string needs '"', an object '{', a nested
# array '[', and null/true/false letters other than e/E).
_NUMBER_ARRAY_BYTES = b"0123456789-+.eE,"
_JSON_WHITESPACE = b" \t\n\r"


# Numbers the warm-up must leave to the per-row path although they are valid JSON: those too
# small for `real`. PostgreSQL's real input refuses a non-zero number that rounds to 0 ("out of
# range for type real"), and the per-row path reports that; the warm-up parses its literals with
# pgvector's vector input when it can (emulator/sql/src/warmup.sql, _warm_add_embeddings), which
# reads such a number as 0. That is a number of magnitude at most 2^-150 (half the smallest
# float4 subnormal: round-half-even makes it 0). Cheap checks clear almost every literal. JSON
# has no leading zeros, so a number below 1 starts "0." and, with z zeros after the point, is at
# least 10^-(z+1): without an exponent it needs 45 zeros in a row to be that small; with an
# exponent above -20, 26. Only a literal failing those is read token by token, exactly.
_REAL_UNDERFLOW = Decimal(2.0 ** -150)  # exact: a power of two
_ZEROS_WITHOUT_EXPONENT = b"0" * 45
_ZEROS_WITH_SMALL_EXPONENT = b"0" * 26
# An exponent of -20 or below; a regex that starts with a literal ("e-") searches fast.
_LOW_EXPONENTS = (re.compile(rb"e-0*(?:[2-9][0-9]|[1-9][0-9]{2,})"),
                  re.compile(rb"E-0*(?:[2-9][0-9]|[1-9][0-9]{2,})"))


def could_underflow_real(literal: bytes) -> bool:
    """Whether a literal of number tokens holds a non-zero number too small for real."""
    return might_underflow_real(literal) and _underflows(literal)


def might_underflow_real(text: bytes) -> bool:
    """False when no number in `text` (a literal, or a whole JSON answer) can be too small for
    real; True when one might be (the cheap checks of could_underflow_real)."""
    lower, upper = b"e" in text, b"E" in text  # memchr
    if not lower and not upper:  # the fakes' literals, and many providers'
        return _ZEROS_WITHOUT_EXPONENT in text
    if any(found and low.search(text) is not None
           for found, low in zip((lower, upper), _LOW_EXPONENTS)):
        return True
    return _ZEROS_WITH_SMALL_EXPONENT in text


def _underflows(literal: bytes) -> bool:
    """could_underflow_real, token by token, exactly (the rare literals the checks above flag)."""
    for token in literal.strip(b"{}[]").split(b","):
        if b"e-" in token or b"E-" in token or _ZEROS_WITH_SMALL_EXPONENT in token:
            value = Decimal(token.strip().decode("ascii")).copy_abs()  # exact, unlike abs()
            if value and value <= _REAL_UNDERFLOW:
                return True
    return False


# How the warm-up's literals are bracketed: real[]'s `{...}`, or pgvector's `[...]` for a
# warm-up that parses with pgvector's input (the numbers are the same). `extractor_key` names the
# extractor that writes them: `RAW_EXTRACTORS` and `EXTRACTORS` hold one per kind of answer and
# kind of literal.
LITERAL_BRACKETS = {"real[]": b"{}", "vector": b"[]"}


def extractor_key(extract: str, literals: str = "real[]") -> str:
    return extract if literals == "real[]" else f"{extract}:{literals}"


def number_array_literal(raw: bytes, brackets: bytes = b"{}") -> bytes | None:
    """The ``real[]`` literal of the raw bytes of a JSON array of numbers, or None; with
    ``brackets=b"[]"``, the same numbers as a ``vector`` literal."""
    if raw[:1] != b"[" or raw[-1:] != b"]":
        return None
    inner = raw[1:-1]
    rest = inner.translate(None, _NUMBER_ARRAY_BYTES)
    if rest:
        if rest.translate(None, _JSON_WHITESPACE):
            return None
        # JSON allows whitespace around the tokens; array_in would too, but a copy without it
        # is smaller and is what the transform's ``x::real`` reads token by token.
        inner = inner.translate(None, _JSON_WHITESPACE)
    if could_underflow_real(inner):
        return None
    return brackets[:1] + inner + brackets[1:]


# The answers' shapes, generic in how their numbers are read: as raw bytes here (msgspec.Raw),
# as doubles by the binary store (binary.py).
class VertexEmbeddings(msgspec.Struct, Generic[N]):
    values: N
    statistics: Any = None


class VertexPrediction(msgspec.Struct, Generic[N]):
    embeddings: VertexEmbeddings[N]


class VertexAnswer(msgspec.Struct, Generic[N]):
    predictions: list[VertexPrediction[N]]


class OpenAIItem(msgspec.Struct, Generic[N]):
    embedding: N
    index: int | None = None


class OpenAIAnswer(msgspec.Struct, Generic[N]):
    data: list[OpenAIItem[N]]
    usage: Any = None


def vertex_tokens(answer: VertexAnswer[Any]) -> int:
    """The input tokens a Vertex AI answer reports (its predictions' token counts)."""
    tokens = 0
    for prediction in answer.predictions:
        stats = prediction.embeddings.statistics
        count = stats.get("token_count") if isinstance(stats, dict) else None
        if isinstance(count, (int, float)) and not isinstance(count, bool):
            tokens += int(count)
    return tokens


def openai_tokens(answer: OpenAIAnswer[Any]) -> int:
    """The input tokens an OpenAI answer reports (usage.prompt_tokens), 0 if none."""
    usage = answer.usage
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0


_VERTEX = msgspec.json.Decoder(VertexAnswer[msgspec.Raw])
_OPENAI = msgspec.json.Decoder(OpenAIAnswer[msgspec.Raw])


class Extracted(msgspec.Struct):
    """One answer's literals, in input order, and the input tokens it reports (0 if none); with
    `binary`, the literals are binary ``real[]`` values (binary.py)."""

    literals: list[bytes]
    input_tokens: int = 0
    binary: bool = False


def openai_order(items: list[T], indices: list[Any]) -> list[T] | None:
    """OpenAI's embeddings in input order, as the batch output transform orders them (by
    "index"), or None when that is ambiguous: indices must be all absent, or a permutation of
    0..n-1."""
    if all(type(index) is int for index in indices):
        if sorted(indices) != list(range(len(items))):
            return None
        return [item for _, item in sorted(zip(indices, items), key=lambda pair: pair[0])]
    if any(index is not None for index in indices):
        return None
    return items


def decode(decoder: msgspec.json.Decoder[Any], content: bytes) -> Any:
    """A JSON answer read by `decoder`, or None if it is not valid JSON of that shape."""
    try:
        if not content.isascii():
            # msgspec does not check the UTF-8 of strings it skips; PostgreSQL's json does.
            content.decode("utf-8")
        return decoder.decode(content)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def raw_vertex_embeddings(content: bytes, brackets: bytes = b"{}") -> Extracted | None:
    answer: VertexAnswer[msgspec.Raw] | None = decode(_VERTEX, content)
    if answer is None:
        return None
    literals = []
    for prediction in answer.predictions:
        literal = number_array_literal(bytes(prediction.embeddings.values), brackets)
        if literal is None:
            return None
        literals.append(literal)
    return Extracted(literals, vertex_tokens(answer))


def raw_openai_embeddings(content: bytes, brackets: bytes = b"{}") -> Extracted | None:
    answer: OpenAIAnswer[msgspec.Raw] | None = decode(_OPENAI, content)
    if answer is None:
        return None
    items = openai_order(answer.data, [item.index for item in answer.data])
    if items is None:
        return None
    literals = []
    for item in items:
        literal = number_array_literal(bytes(item.embedding), brackets)
        if literal is None:
            return None
        literals.append(literal)
    return Extracted(literals, openai_tokens(answer))


RAW_EXTRACTORS: dict[str, Callable[[bytes], Extracted | None]] = {
    extractor_key(name, literals): partial(read, brackets=brackets)
    for name, read in ((VERTEX_EMBEDDINGS, raw_vertex_embeddings),
                       (OPENAI_EMBEDDINGS, raw_openai_embeddings))
    for literals, brackets in LITERAL_BRACKETS.items()
}


# -- parsed answers (the fakes, the response cache) ----------------------------------------------


def _literal(values: Any, brackets: bytes) -> bytes | None:
    if isinstance(values, (LiteralVector, FrozenVector)):
        literal = values.literal().encode()
        if could_underflow_real(literal):
            return None
        return literal if brackets == b"{}" else brackets[:1] + literal[1:-1] + brackets[1:]
    if not isinstance(values, list):
        return None
    text = ",".join(map(repr, values))
    # Only numbers make a real[] literal the built-in transforms would have produced; a null,
    # string, list or object in the answer goes the per-row way (which reports it as SQL does).
    if any(mark in text for mark in _NOT_A_NUMBER):
        return None
    literal = text.encode()
    return None if could_underflow_real(literal) else brackets[:1] + literal + brackets[1:]


_NOT_A_NUMBER = ("None", "'", '"', "[", "{", "True", "False")


def vertex_vectors(response: Any) -> list[Any] | None:
    """The embeddings of a parsed Vertex AI answer (each still to be checked), or None."""
    predictions = response.get("predictions") if isinstance(response, dict) else None
    if not isinstance(predictions, list):
        return None
    out = []
    for prediction in predictions:
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        out.append(embeddings.get("values") if isinstance(embeddings, dict) else None)
    return out


def openai_vectors(response: Any) -> list[Any] | None:
    """The embeddings of a parsed OpenAI answer, in input order (each still to be checked)."""
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        return None
    ordered = openai_order(data, [d.get("index") for d in data])
    return None if ordered is None else [item.get("embedding") for item in ordered]


def _literals(vectors: list[Any] | None, brackets: bytes) -> list[bytes] | None:
    if vectors is None:
        return None
    out = []
    for values in vectors:
        literal = _literal(values, brackets)
        if literal is None:
            return None
        out.append(literal)
    return out


def vertex_embeddings(response: Any, brackets: bytes = b"{}") -> list[bytes] | None:
    return _literals(vertex_vectors(response), brackets)


def openai_embeddings(response: Any, brackets: bytes = b"{}") -> list[bytes] | None:
    return _literals(openai_vectors(response), brackets)


EXTRACTORS: dict[str, Callable[[Any], list[bytes] | None]] = {
    extractor_key(name, literals): partial(read, brackets=brackets)
    for name, read in ((VERTEX_EMBEDDINGS, vertex_embeddings),
                       (OPENAI_EMBEDDINGS, openai_embeddings))
    for literals, brackets in LITERAL_BRACKETS.items()
}
# The embeddings themselves, for the binary store (binary.py), by the same names.
VECTORS: dict[str, Callable[[Any], list[Any] | None]] = {
    VERTEX_EMBEDDINGS: vertex_vectors, OPENAI_EMBEDDINGS: openai_vectors}


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


def batch_texts(request: Any) -> list[str] | None:
    """The texts of a batched embedding request built by the built-in batch input transforms
    (Vertex AI's ``instances[].content``, OpenAI's ``input``), in order, or None."""
    body = request.get("body") if isinstance(request, dict) else None
    if not isinstance(body, dict):
        return None
    instances, given = body.get("instances"), body.get("input")
    if isinstance(instances, list):
        texts = [i.get("content") if isinstance(i, dict) else None for i in instances]
    elif isinstance(given, list):
        texts = given
    else:
        texts = [given]
    strings = [t for t in texts if isinstance(t, str)]
    return strings if len(strings) == len(texts) else None
