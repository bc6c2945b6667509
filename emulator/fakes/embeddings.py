"""Deterministic fake embeddings whose cosine similarity follows shared words.

Operations: `embed(text, dimension) -> FakeVector` (a list of floats), `dimension_for(model)`
giving each known model's real output size, and `similarity(a, b)`, the cosine of two texts'
fake embeddings (the NL composer ranks templates with it: emulator/engine_factory.py plugs it
into the engine, which imports nothing of the fakes).

Plan: feature hashing. Each content stem of the text (see `emulator/words.py`) is hashed with BLAKE2b into
a handful of (position, sign) pairs and added to the vector, weighted by how often it occurs; a
small component hashed from the whole text keeps different texts apart even when their bags of
words are equal. The vector is then scaled to unit length. Two texts that share words share
coordinates, so their cosine similarity is high; texts without common words are nearly
orthogonal. Same text, same dimension: same vector, in every process (no Python `hash()`).

Known gaps: no semantics beyond shared stems (synonyms are strangers).
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct

from emulator.embedding_literal import LiteralVector
from emulator.words import content_stems, words

_SLOTS_PER_WORD = 8
_WHOLE_TEXT_WEIGHT = 0.15

# Output sizes of the models with built-in support (reference, section 6).
_MODEL_DIMENSIONS: dict[str, int] = {
    "text-embedding-004": 768,
    "text-embedding-005": 768,
    "text-multilingual-embedding-002": 768,
    "gemini-embedding-001": 3072,
    "multimodalembedding@001": 1408,
    "text-embedding-ada-002": 1536,
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "all-minilm-l6-v2": 384,
    "all-minilm-l12-v2": 384,
}
DEFAULT_DIMENSION = 768


def dimension_for(model: str) -> int:
    """The real output dimension of `model` (a bare or qualified name), 768 when unknown."""
    name = model.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    if name in _MODEL_DIMENSIONS:
        return _MODEL_DIMENSIONS[name]
    if name.startswith("textembedding-gecko"):
        return 768
    base = name.split("@", 1)[0]
    return _MODEL_DIMENSIONS.get(base, DEFAULT_DIMENSION)


_SLOT_CHUNKS = struct.Struct(f"<{_SLOTS_PER_WORD}I")


def _slots(feature: str, dimension: int) -> tuple[tuple[int, float], ...]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=4 * _SLOTS_PER_WORD).digest()
    return tuple((chunk % dimension, 1.0 if chunk & 0x80000000 else -1.0)
                 for chunk in _SLOT_CHUNKS.unpack(digest))


# Words repeat across texts (a corpus has a vocabulary); whole texts mostly do not.
_word_slots = functools.lru_cache(maxsize=1 << 16)(_slots)


@functools.lru_cache(maxsize=16)
def _zeros(dimension: int) -> tuple[float, ...]:
    return (0.0,) * dimension


class FakeVector(LiteralVector):
    """An embedding as the list of floats a provider answers, which also remembers its few
    non-zero positions, so that the warm-up writes its ``real[]`` literal without walking
    every zero (see ``emulator.engine.extract``)."""

    __slots__ = ("_literal", "nonzero")

    def __init__(self, dimension: int, nonzero: dict[int, float]) -> None:
        super().__init__(_zeros(dimension))
        for position, value in nonzero.items():
            self[position] = value
        self.nonzero = nonzero
        self._literal: str | None = None

    def literal(self) -> str:
        """The PostgreSQL array literal of these values (``0`` for each zero)."""
        if self._literal is None:
            self._literal = self._format()
        return self._literal

    def _format(self) -> str:
        parts = ["{"]
        start = 0  # the first position not written yet
        texts: dict[float, str] = {}  # a vector holds few distinct values: format each once
        for position in sorted(self.nonzero):
            value = self.nonzero[position]
            text = texts.get(value)
            if text is None:
                text = texts[value] = repr(value)
            parts.append("0," * (position - start))
            parts.append(text)
            parts.append(",")
            start = position + 1
        parts.append("0," * (len(self) - start))
        return "".join(parts)[:-1] + "}"


def embed(text: str, dimension: int) -> FakeVector:
    """A unit-length vector of `dimension` floats for `text`."""
    if dimension <= 0:
        raise ValueError(f"dimension must be positive, not {dimension}")
    counts: dict[str, int] = {}
    for token in content_stems(text) or words(text):
        counts[token] = counts.get(token, 0) + 1
    sparse: dict[int, float] = {}
    for token, count in counts.items():
        weight = 1.0 + math.log(count)
        for position, sign in _word_slots("w:" + token, dimension):
            sparse[position] = sparse.get(position, 0.0) + sign * weight
    whole_weight = _WHOLE_TEXT_WEIGHT if counts else 1.0
    for position, sign in _slots("t:" + text, dimension):
        sparse[position] = sparse.get(position, 0.0) + sign * whole_weight
    norm = math.sqrt(sum(x * x for x in sparse.values()))
    if norm == 0.0:  # every slot cancelled out: astronomically unlikely, still answer a unit vector
        return FakeVector(dimension, {_slots("z:" + text, dimension)[0][0]: 1.0})
    return FakeVector(dimension, {position: value / norm for position, value in sparse.items()
                                  if value != 0.0})


def token_count(text: str) -> int:
    """A rough token count for usage statistics: the number of words."""
    return len(words(text))


def limit_tokens(text: str) -> int:
    """The tokens a text counts against a provider's per-request limit: one per 4 bytes of
    UTF-8, about what real tokenizers give for English. The extension's batching estimates
    2 bytes a token, so its batches always fit."""
    return (len(text.encode("utf-8")) + 3) // 4


# Short texts (a question's words, a template's intent) need few positions to stay apart.
SIMILARITY_DIMENSION = 256


def similarity(a: str, b: str) -> float:
    """The cosine of the fake embeddings of two texts (unit vectors: their dot product), read
    from the few non-zero positions."""
    va, vb = embed(a, SIMILARITY_DIMENSION), embed(b, SIMILARITY_DIMENSION)
    return sum(va.nonzero.get(i, 0.0) * x for i, x in vb.nonzero.items())
