"""Deterministic fake embeddings whose cosine similarity follows shared words.

Operations: `embed(text, dimension) -> FakeVector` (a list of floats; `embed_counted` also counts
the words, for usage statistics), `dimension_for(model)`
giving each known model's real output size, and `similarity(a, b)`, the cosine of two texts'
fake embeddings (the NL composer ranks templates with it: emulator/engine_factory.py plugs it
into the engine, which imports nothing of the fakes).

Plan: feature hashing. Each content stem of the text (see `emulator/words.py`) is hashed with BLAKE2b into
a handful of (position, sign) pairs and added to the vector, weighted by how often it occurs; a
small component hashed from the whole text keeps different texts apart even when their bags of
words are equal. The vector is then scaled to unit length. Two texts that share words share
coordinates, so their cosine similarity is high; texts without common words are nearly
orthogonal. Same text, same dimension: same vector, in every process (no Python `hash()`).

Speed: the fakes stand in for a provider in bulk benchmarks (bench/backfill.py), so a vector
costs a few dict operations per word. Each word's stem and slots are cached (bounded dicts),
the arithmetic is done once per position, and the literal is a copied list of zeros' texts with
the non-zero ones put in, each value's repr cached. Every result is the bit-exact value of the
plan as first written (tests/engine/test_fakes.py keeps that code as a reference): users' tests
and cassettes hold these vectors.

Known gaps: no semantics beyond shared stems (synonyms are strangers).
"""

from __future__ import annotations

import hashlib
import math
import operator
import random
import struct
from collections import deque
from functools import lru_cache
from itertools import compress, repeat

import msgspec

from emulator.embedding_literal import FrozenVector, LiteralVector
from emulator.fakes.sums import left_sum
from emulator.words import STOP_WORDS, stem, words

_SLOTS_PER_WORD = 8
_WHOLE_TEXT_WEIGHT = 0.15

# Output sizes of the models with built-in support (reference, section 6).
_MODEL_DIMENSIONS: dict[str, int] = {
    "text-embedding-004": 768,
    "text-embedding-005": 768,
    "text-multilingual-embedding-002": 768,
    "gemini-embedding-001": 3072,
    # The experimental Gemini embedding model (March 2025), under both of its names.
    "text-embedding-large-exp-03-07": 3072,
    "gemini-embedding-exp-03-07": 3072,
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
_SIGNS = (-1.0, 1.0)  # a chunk's sign, by its top bit


def _chunks(feature: str) -> tuple[int, ...]:
    """The feature's hash, as `_SLOTS_PER_WORD` unsigned ints: chunk % dimension is a position,
    the top bit its sign (set: +1, clear: -1)."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=4 * _SLOTS_PER_WORD).digest()
    return _SLOT_CHUNKS.unpack(digest)


# -- caches -------------------------------------------------------------------------------------
# A corpus has a vocabulary: its words come back text after text, whole texts mostly do not. So
# a word's stem and a word's slots are cached; each cache is a dict emptied when it reaches its
# bound (cheaper per hit than an LRU's bookkeeping, and a benchmark's vocabulary fits).
_CACHE_BOUND = 1 << 16
_STEMS: dict[str, str] = {}  # word -> its stem, "" for a stop word
# A word's slots: positions, signs (1.0 or -1.0) and, when its positions are distinct, the
# position -> sign dict that a text without those positions yet can take as it is.
_Slots = tuple[list[int], list[float], dict[int, float] | None]
_WORD_SLOTS: dict[int, dict[str, _Slots]] = {}  # dimension -> stem -> slots


def _tokens(text: str) -> tuple[list[str], int]:
    """`content_stems(text) or words(text)`, with each word's stem looked up once, and the
    number of words (`token_count`)."""
    found = words(text)
    stems = _STEMS
    stemmed = list(map(stems.get, found))  # the lookups at C speed; a new word is rare
    if None in stemmed:
        for index, word in enumerate(found):
            if stemmed[index] is None:
                if len(stems) >= _CACHE_BOUND:
                    stems.clear()
                stemmed[index] = stems[word] = "" if word in STOP_WORDS else stem(word)
    out: list[str] = list(filter(None, stemmed))  # "": a stop word
    return out or found, len(found)


def _slots_by_token(dimension: int) -> dict[str, _Slots]:
    by_token = _WORD_SLOTS.get(dimension)
    if by_token is None:
        if len(_WORD_SLOTS) >= 16:  # dimensions in use are few; a caller trying many is bounded
            _WORD_SLOTS.clear()
        by_token = _WORD_SLOTS[dimension] = {}
    return by_token


def _new_word_slots(by_token: dict[str, _Slots], token: str, dimension: int) -> _Slots:
    """A word's slots (see `_Slots`), now cached."""
    if len(by_token) >= _CACHE_BOUND:
        by_token.clear()
    chunks = _chunks("w:" + token)
    positions = [chunk % dimension for chunk in chunks]
    signs = [_SIGNS[chunk >> 31] for chunk in chunks]
    distinct = dict(zip(positions, signs)) if len(set(positions)) == len(positions) else None
    slots = by_token[token] = (positions, signs, distinct)
    return slots


_ZEROS: dict[int, tuple[float, ...]] = {}  # dimension -> its zero vector


class _Texts(dict[float, str]):
    """repr(value) for each value met: a float's repr is the slow part of a literal, and vectors
    repeat values (texts with the same pattern of words share a norm). Bounded."""

    def __missing__(self, value: float) -> str:
        if len(self) >= _CACHE_BOUND:
            self.clear()
        text = self[value] = repr(value)
        return text


_TEXTS = _Texts()
_ZERO_TEXTS: dict[int, list[str]] = {}  # dimension -> the literal's elements of a zero vector


# Runs a map() of side effects at C speed (a Python `for` costs more): a deque that keeps
# nothing, made once (one per call would be one more object for the collector each time).
_drain = deque[object](maxlen=0).extend


class Sparse(FrozenVector):
    """A `FakeVector` without its list (`embed_sparse`): its dimension, non-zero positions (in
    the order the plan first meets them) and their values, and its literal once written, in
    objects the garbage collector does not walk (tuples of numbers, a string). The response
    cache keeps this, and the in-process fakes answer the warm-up with it."""

    __slots__ = ("dimension", "positions", "text", "values")

    def __init__(self, dimension: int, positions: tuple[int, ...],
                 values: tuple[float, ...]) -> None:
        self.dimension = dimension
        self.positions = positions
        self.values = values
        self.text: str | None = None  # the literal, once written

    def thaw(self) -> FakeVector:
        return FakeVector._of(self)

    def literal(self) -> str:
        """The PostgreSQL array literal of these values (``0`` for each zero)."""
        if self.text is None:
            self.text = _format(self)
        return self.text

    def nonzero(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        return self.positions, self.values

    def __len__(self) -> int:
        return self.dimension


class FakeVector(LiteralVector):
    """An embedding as the list of floats a provider answers, which also remembers its few
    non-zero positions and values (a `Sparse`), so that the warm-up writes its ``real[]``
    literal without walking every zero (see ``emulator.engine.extract``) and the response cache
    keeps only those (``frozen()``)."""

    __slots__ = ("_sparse",)

    def __init__(self, dimension: int, positions: tuple[int, ...],
                 values: tuple[float, ...]) -> None:
        self._fill(Sparse(dimension, positions, values))

    @classmethod
    def _of(cls, sparse: Sparse) -> FakeVector:
        vector = cls.__new__(cls)
        vector._fill(sparse)
        return vector

    def _fill(self, sparse: Sparse) -> None:
        # Tuples: the collector stops visiting a tuple of numbers once it has seen it.
        zeros = _ZEROS.get(sparse.dimension)
        if zeros is None:
            if len(_ZEROS) >= 16:
                _ZEROS.clear()
            zeros = _ZEROS[sparse.dimension] = (0.0,) * sparse.dimension
        list.__init__(self, zeros)
        _drain(map(self.__setitem__, sparse.positions, sparse.values))
        self._sparse = sparse

    @property
    def nonzero(self) -> dict[int, float]:
        """position -> value of the non-zero positions, in the order the plan first met them."""
        return dict(zip(self._sparse.positions, self._sparse.values))

    def frozen(self) -> Sparse:
        return self._sparse

    def literal(self) -> str:
        """The PostgreSQL array literal of these values (``0`` for each zero)."""
        return self._sparse.literal()


def _format(sparse: Sparse) -> str:
    # The elements of a zero vector's literal, copied, with the few non-zero ones replaced.
    parts = _ZERO_TEXTS.get(sparse.dimension)
    if parts is None:
        if len(_ZERO_TEXTS) >= 16:
            _ZERO_TEXTS.clear()
        parts = _ZERO_TEXTS[sparse.dimension] = ["0"] * sparse.dimension
    parts = parts.copy()
    _drain(map(parts.__setitem__, sparse.positions, map(_TEXTS.__getitem__, sparse.values)))
    return "{" + ",".join(parts) + "}"


_JSON_ZEROS: dict[int, list[bytes]] = {}  # dimension -> the JSON array's elements of a zero vector
_encode_json = msgspec.json.Encoder().encode


def json_array(sparse: Sparse) -> bytes:
    """The JSON array of `sparse`'s values, byte for byte as msgspec writes the list of floats
    (the fake-models server's answers): ``0.0`` for each zero, the non-zero values as msgspec
    writes them (one encode of the few, split), put into a copied list of zeros' texts."""
    parts = _JSON_ZEROS.get(sparse.dimension)
    if parts is None:
        if len(_JSON_ZEROS) >= 16:
            _JSON_ZEROS.clear()
        parts = _JSON_ZEROS[sparse.dimension] = [b"0.0"] * sparse.dimension
    parts = parts.copy()
    texts = _encode_json(sparse.values)[1:-1].split(b",")
    _drain(map(parts.__setitem__, sparse.positions, texts))
    return b"[" + b",".join(parts) + b"]"


def embed(text: str, dimension: int) -> FakeVector:
    """A unit-length vector of `dimension` floats for `text`."""
    return embed_counted(text, dimension)[0]


def embed_counted(text: str, dimension: int) -> tuple[FakeVector, int]:
    """`embed(text, dimension)` and `token_count(text)`, reading the words once."""
    sparse, word_count = embed_sparse(text, dimension)
    return FakeVector._of(sparse), word_count


def embed_dense_counted(text: str, dimension: int) -> tuple[list[float], int]:
    """`embed_counted` with every component non-zero, for load tests (`fake-models
    --dense-embeddings`): the fake vector plus a fixed offset of at most 1e-3 per position, so
    that its numbers are written as real providers write theirs (17 significant digits), and a
    warm-up parses what it parses in production. Not the fakes' own vectors."""
    sparse, word_count = embed_sparse(text, dimension)
    values = list(_dense_offsets(dimension))
    for position, value in zip(sparse.positions, sparse.values):
        values[position] += value
    return values, word_count


@lru_cache(maxsize=16)
def _dense_offsets(dimension: int) -> tuple[float, ...]:
    rng = random.Random(dimension)  # the same offsets in every process
    return tuple(rng.uniform(-1e-3, 1e-3) or 1e-3 for _ in range(dimension))


def embed_sparse(text: str, dimension: int) -> tuple[Sparse, int]:
    """`embed_counted` without building the list: `Sparse.thaw()` is the vector (the in-process
    fakes answer the warm-up, which needs only the literal, with these)."""
    if dimension <= 0:
        raise ValueError(f"dimension must be positive, not {dimension}")
    # The sums of the plan, in the same order (users' tests and cassettes hold these vectors bit
    # for bit; tests/engine/test_fakes.py compares with the first implementation).
    tokens, word_count = _tokens(text)
    counts = dict.fromkeys(tokens, 1)
    if len(counts) != len(tokens):  # a word said twice (most texts have none)
        counts = dict.fromkeys(counts, 0)
        for token in tokens:
            counts[token] += 1
    by_token = _slots_by_token(dimension)
    sparse: dict[int, float] = {}
    get = sparse.get
    for token, count in counts.items():
        word_positions, signs, distinct = (by_token.get(token)
                                           or _new_word_slots(by_token, token, dimension))
        if count == 1 and distinct is not None and sparse.keys().isdisjoint(word_positions):
            sparse.update(distinct)  # each position new: 0.0 + sign is the sign
        elif count == 1:  # weight 1.0: sign * weight is the sign
            for position, sign in zip(word_positions, signs):
                sparse[position] = get(position, 0.0) + sign
        else:
            weight = 1.0 + math.log(count)
            for position, sign in zip(word_positions, signs):
                sparse[position] = get(position, 0.0) + sign * weight
    whole_weight = _WHOLE_TEXT_WEIGHT if counts else 1.0
    for chunk in _chunks("t:" + text):
        position = chunk % dimension
        sparse[position] = get(position, 0.0) + _SIGNS[chunk >> 31] * whole_weight
    values = list(sparse.values())
    norm = math.sqrt(left_sum(map(operator.mul, values, values)))
    if norm == 0.0:  # every slot cancelled out: astronomically unlikely, still answer a unit vector
        return Sparse(dimension, (_chunks("z:" + text)[0] % dimension,), (1.0,)), word_count
    if 0.0 in values:  # a position whose contributions cancelled out is not stored
        positions = tuple(compress(sparse, values))
        values = list(compress(values, values))
    else:
        positions = tuple(sparse)
    return Sparse(dimension, positions,
                  tuple(map(operator.truediv, values, repeat(norm)))), word_count


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
    return left_sum(va.nonzero.get(i, 0.0) * x for i, x in vb.nonzero.items())
