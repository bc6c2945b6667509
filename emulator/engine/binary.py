"""Embeddings as PostgreSQL's binary ``real[]``: the warm-up's store without number text.

A warm-up in READ COMMITTED hands each answered batch to the engine's own connection, which
COPYs it into the statement's cache in binary (warm_copy.py). PostgreSQL then reads 8 bytes a
number instead of parsing its text: for the 17-digit numbers real providers write, parsing was
most of the backend's time in a backfill (docs/internals.md, "The warm-up").

Exactness. The per-row path casts each JSON number's text to ``real`` (strtof: the decimal
rounded once, to the nearest float). Here the decimal is read as a double (msgspec: correctly
rounded) and the double rounded to a float (numpy's cast: to nearest, ties to even). The two
agree unless the double lies exactly halfway between two floats: a decimal just off a midpoint
may round onto it, and the second rounding then goes to the even float where strtof might not.
So a batch with such a double (its low 29 mantissa bits are ``1 << 28``) is not made binary.
Nor is one with a number the text path treats apart: beyond ``real``'s range (refused), below
its smallest normal value (subnormal floats have their own grid; a number too small for
``real`` is refused, see extract.py's could_underflow_real), an integer ``-0`` (a double reads
it as +0, strtof as -0.0), or one a double cannot hold (msgspec refuses ``1e400``). Those batches
take the text path, which does today what it always did.

Operations: ``raw_vertex_binary(content)`` / ``raw_openai_binary(content)`` read a provider's
answer as it came over HTTP; ``parsed_binary(vectors)`` the in-process fakes' and the cache's
vectors. Each answers an ``Extracted`` whose literals are binary values (``binary=True``), or
None when the batch must take the text path; ``real_array_text(value)`` is a binary value's
``real[]`` literal again (exact: the shortest text of the float's double reads back as it).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from itertools import chain
from typing import Any

import msgspec
import numpy as np

from emulator.embedding_literal import FrozenVector, LiteralVector
from emulator.engine.extract import (
    EXTRACTORS,
    RAW_EXTRACTORS,
    VECTORS,
    Extracted,
    OpenAIAnswer,
    VertexAnswer,
    decode,
    might_underflow_real,
    openai_order,
    openai_tokens,
    vertex_tokens,
)
from emulator.providers import OPENAI_EMBEDDINGS, VERTEX_EMBEDDINGS

FLOAT4OID = 700
_FLOAT4_MAX = float(np.finfo(np.float32).max)
_FLOAT4_SMALLEST_NORMAL = float(np.finfo(np.float32).tiny)  # 2**-126
_LOW_29_BITS = np.uint64((1 << 29) - 1)
_HALFWAY = np.uint64(1 << 28)
# An element of a binary array: its length (4) and the float, both big-endian.
_ELEMENT = np.dtype([("length", ">i4"), ("value", ">f4")])
_HEADER = struct.Struct("!iiiii")  # ndim 1, no NULLs, element type, length, lower bound 1
EMPTY_REAL_ARRAY = struct.pack("!iii", 0, 0, FLOAT4OID)
# JSON has no leading zeros, so "-0" followed by one of these is the integer minus zero.
_INTEGER_MINUS_ZERO = re.compile(rb"-0[,\] \t\r\n]")


def real_array_values(vectors: Sequence[Sequence[float]],
                      zeros_are_zeros: Callable[[], bool] | None = None) -> list[bytes] | None:
    """The binary ``real[]`` of each vector of doubles, or None if one of its numbers must take
    the text path (see the module's docstring). A number too small for a double reads as 0.0,
    and so does an integer -0: when the vectors hold a zero, `zeros_are_zeros` (given the
    numbers' text) says whether they all are zeros written as zeros."""
    lengths = [len(v) for v in vectors]
    # One pass over all the numbers (twice as fast as extending an array list by list).
    doubles = np.fromiter(chain.from_iterable(vectors), np.float64, count=sum(lengths))
    if zeros_are_zeros is not None and not doubles.all() and not zeros_are_zeros():
        return None
    if not _as_floats(doubles):
        return None
    return _pack(lengths, doubles, None)


def _as_floats(doubles: np.ndarray[Any, np.dtype[np.float64]]) -> bool:
    """Every double rounds to float4 as strtof reads its decimal (the module's docstring)."""
    magnitude = np.abs(doubles)
    if (magnitude > _FLOAT4_MAX).any():
        return False
    if ((magnitude < _FLOAT4_SMALLEST_NORMAL) & (doubles != 0.0)).any():
        return False
    return not ((doubles.view(np.uint64) & _LOW_29_BITS) == _HALFWAY).any()


def _pack(lengths: list[int], doubles: np.ndarray[Any, np.dtype[np.float64]],
          scattered: np.ndarray[Any, np.dtype[np.intp]] | None) -> list[bytes]:
    """Each vector's binary ``real[]``: `doubles` in order, or with `scattered` the non-zero
    numbers at those flat positions among zeros. Vectors of one length (a batch of one model's
    embeddings) are written as big-endian words into copies of a zero vector's value (header,
    then a length and a float per element), and cut from one buffer."""
    if not lengths or len(set(lengths)) != 1 or lengths[0] == 0:
        return _pack_each(lengths, doubles, scattered)
    count, length = len(lengths), lengths[0]
    words = np.broadcast_to(_zero_value(length), (count, 5 + 2 * length)).copy()
    floats = doubles.astype(">f4").view(">u4")  # to nearest float, ties to even
    if scattered is None:
        words[:, 6::2] = floats.reshape(count, length)
    else:
        row, position = np.divmod(scattered, length)
        words[row, 6 + 2 * position] = floats
    data = words.tobytes()
    size = 4 * words.shape[1]
    return [data[i * size:(i + 1) * size] for i in range(count)]


@lru_cache(maxsize=16)
def _zero_value(length: int) -> np.ndarray[Any, np.dtype[np.uint32]]:
    """The binary ``real[]`` of `length` zeros, as big-endian words (ndim 1, no NULLs, the
    element type, the length, lower bound 1; then 4 and 0.0 per element)."""
    words = np.zeros(5 + 2 * length, dtype=">u4")
    words[:5] = (1, 0, FLOAT4OID, length, 1)
    words[5::2] = 4
    words.flags.writeable = False
    return words


def _pack_each(lengths: list[int], doubles: np.ndarray[Any, np.dtype[np.float64]],
               scattered: np.ndarray[Any, np.dtype[np.intp]] | None) -> list[bytes]:
    """`_pack` for vectors of different lengths (an empty one among them, say), one by one."""
    if scattered is not None:
        dense = np.zeros(sum(lengths))
        dense[scattered] = doubles
        doubles = dense
    out: list[bytes] = []
    start = 0
    for length in lengths:
        out += _pack([length], doubles[start:start + length], None) if length else [
            EMPTY_REAL_ARRAY]
        start += length
    return out


def real_array_text(value: bytes, brackets: bytes = b"{}") -> bytes:
    """The literal of a binary ``real[]`` value from ``real_array_values``."""
    ndim, _, _ = struct.unpack_from("!iii", value)
    if ndim == 0:
        return brackets
    floats = np.frombuffer(value, dtype=_ELEMENT, offset=_HEADER.size)["value"]
    text = ",".join(map(repr, floats.astype(np.float64).tolist()))
    return brackets[:1] + text.encode() + brackets[1:]


# -- raw answers (bytes from HTTP) -------------------------------------------------------------


_VERTEX = msgspec.json.Decoder(VertexAnswer[list[float]])
_OPENAI = msgspec.json.Decoder(OpenAIAnswer[list[float]])


def _zeros_are_zeros(content: bytes) -> bool:
    """No number in this answer is an integer -0 or too small for a double (which would read as
    0.0). Scans the whole text: only asked of answers holding a zero (real providers' dense
    numbers seldom do)."""
    return not might_underflow_real(content) and not _INTEGER_MINUS_ZERO.search(content)


def raw_vertex_binary(content: bytes) -> Extracted | None:
    answer: VertexAnswer[list[float]] | None = decode(_VERTEX, content)
    if answer is None:
        return None
    values = real_array_values([p.embeddings.values for p in answer.predictions],
                               partial(_zeros_are_zeros, content))
    return None if values is None else Extracted(values, vertex_tokens(answer), binary=True)


def raw_openai_binary(content: bytes) -> Extracted | None:
    answer: OpenAIAnswer[list[float]] | None = decode(_OPENAI, content)
    if answer is None:
        return None
    items = openai_order(answer.data, [item.index for item in answer.data])
    if items is None:
        return None
    values = real_array_values([item.embedding for item in items],
                               partial(_zeros_are_zeros, content))
    return None if values is None else Extracted(values, openai_tokens(answer), binary=True)


# -- parsed answers (the fakes, the response cache) ----------------------------------------------


def parsed_binary(vectors: Sequence[Any] | None) -> Extracted | None:
    """The binary values of the embeddings an extractor of extract.py found in a parsed answer
    (``FrozenVector``s, ``LiteralVector``s or lists of numbers), or None."""
    if vectors is None:
        return None
    if vectors and all(isinstance(v, FrozenVector) for v in vectors):
        # The fakes' vectors: a few numbers each, put into zeros (not 768 floats walked each);
        # zeros need no check.
        lengths = [len(v) for v in vectors]
        found = [v.nonzero() for v in vectors]
        counts = [len(positions) for positions, _ in found]
        numbers = np.fromiter(chain.from_iterable(n for _, n in found), np.float64,
                              count=sum(counts))
        if not _as_floats(numbers):
            return None
        starts = np.repeat(np.cumsum([0, *lengths[:-1]]), counts)
        scattered = starts + np.fromiter(chain.from_iterable(p for p, _ in found), np.intp,
                                         count=sum(counts))
        values: list[bytes] | None = _pack(lengths, numbers, scattered)
    elif all(isinstance(v, LiteralVector) or (isinstance(v, list)
                                              and all(type(x) is float for x in v))
             for v in vectors):
        values = real_array_values(vectors)
    else:
        return None  # ints, bools, None: the text path decides what they mean
    return None if values is None else Extracted(values, 0, binary=True)


# -- extractors: binary values where they can be, the text path's literals where not ------------


def binary_key(text_key: str) -> str:
    """The extractor key of the binary store for a text extractor's key (extract.py): its
    answer is binary values, or that text extractor's literals for a batch that cannot be."""
    return text_key + "+binary"


_RAW_BINARY = {VERTEX_EMBEDDINGS: raw_vertex_binary, OPENAI_EMBEDDINGS: raw_openai_binary}


# Reading a number as a double costs Python about the same whatever its length; strtof in the
# backend costs more the more digits it reads. Short numbers (the fakes' "0.0"s: about 6 bytes a
# number with the commas and the JSON around them) are cheaper sent as text, and the text path
# keeps the emulator's CPU for other sessions; real providers write 17 digits (about 20 bytes a
# number), which binary values spare PostgreSQL (bench/backfill.py --dense).
BINARY_AT_BYTES_PER_NUMBER = 10


_SAMPLE = 1 << 16  # the bytes a number are estimated from the answer's first 64 KB


def _raw_either(name: str, text_key: str, content: bytes) -> Extracted | None:
    sample = min(len(content), _SAMPLE)
    if sample >= BINARY_AT_BYTES_PER_NUMBER * content.count(b",", 0, sample):
        found = _RAW_BINARY[name](content)
        if found is not None:
            return found
    return RAW_EXTRACTORS[text_key](content)


def _parsed_either(name: str, text_key: str, response: Any) -> Extracted | list[bytes] | None:
    return parsed_binary(VECTORS[name](response)) or EXTRACTORS[text_key](response)


RAW_BINARY_EXTRACTORS: dict[str, Callable[[bytes], Extracted | None]] = {
    binary_key(key): partial(_raw_either, key.split(":", 1)[0], key) for key in RAW_EXTRACTORS}
BINARY_EXTRACTORS: dict[str, Callable[[Any], Extracted | list[bytes] | None]] = {
    binary_key(key): partial(_parsed_either, key.split(":", 1)[0], key) for key in EXTRACTORS}
