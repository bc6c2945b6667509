"""Deterministic fake embeddings whose cosine similarity follows shared words.

Operation: `embed(text, dimension) -> list[float]`, and `dimension_for(model)` giving each known
model's real output size.

Plan: feature hashing. Each content stem of the text (see `words.py`) is hashed with BLAKE2b into
a handful of (position, sign) pairs and added to the vector, weighted by how often it occurs; a
small component hashed from the whole text keeps different texts apart even when their bags of
words are equal. The vector is then scaled to unit length. Two texts that share words share
coordinates, so their cosine similarity is high; texts without common words are nearly
orthogonal. Same text, same dimension: same vector, in every process (no Python `hash()`).

Known gaps: no semantics beyond shared stems (synonyms are strangers).
"""

from __future__ import annotations

import hashlib
import math

from emulator.fakes.words import content_stems, words

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


def _slots(feature: str, dimension: int) -> list[tuple[int, float]]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=4 * _SLOTS_PER_WORD).digest()
    slots = []
    for i in range(_SLOTS_PER_WORD):
        chunk = int.from_bytes(digest[4 * i : 4 * i + 4], "little")
        slots.append((chunk % dimension, 1.0 if chunk & 0x80000000 else -1.0))
    return slots


def embed(text: str, dimension: int) -> list[float]:
    """A unit-length vector of `dimension` floats for `text`."""
    if dimension <= 0:
        raise ValueError(f"dimension must be positive, not {dimension}")
    counts: dict[str, int] = {}
    for token in content_stems(text) or words(text):
        counts[token] = counts.get(token, 0) + 1
    sparse: dict[int, float] = {}
    for token, count in counts.items():
        weight = 1.0 + math.log(count)
        for position, sign in _slots("w:" + token, dimension):
            sparse[position] = sparse.get(position, 0.0) + sign * weight
    whole_weight = _WHOLE_TEXT_WEIGHT if counts else 1.0
    for position, sign in _slots("t:" + text, dimension):
        sparse[position] = sparse.get(position, 0.0) + sign * whole_weight
    norm = math.sqrt(sum(x * x for x in sparse.values()))
    vector = [0.0] * dimension
    if norm == 0.0:  # every slot cancelled out: astronomically unlikely, still answer a unit vector
        vector[_slots("z:" + text, dimension)[0][0]] = 1.0
        return vector
    for position, value in sparse.items():
        vector[position] = value / norm
    return vector


def token_count(text: str) -> int:
    """A rough token count for usage statistics: the number of words."""
    return len(words(text))
