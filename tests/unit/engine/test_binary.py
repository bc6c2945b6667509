"""emulator/engine/binary.py: embeddings as PostgreSQL's binary real[] for the warm-up's binary
store, and the engine factory's check of whose statement key a warm-up may store under.

Against PostgreSQL, the same numbers are compared with the per-row path in
tests/e2e/test_warm_binary.py; here, what numpy and the format give, number by number."""

from __future__ import annotations

import json
import random
import struct
from array import array
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from emulator.engine.binary import (
    EMPTY_REAL_ARRAY,
    RAW_BINARY_EXTRACTORS,
    binary_key,
    parsed_binary,
    raw_openai_binary,
    raw_vertex_binary,
    real_array_text,
    real_array_values,
)
from emulator.engine.warm_copy import StoreTarget, copy_data
from emulator.engine_factory import warm_copier
from emulator.fakes.embeddings import embed_sparse
from proxy.callback import CALLER_PID


def floats_of(value: bytes) -> list[float]:
    ndim, hasnull, oid, length, lower = struct.unpack_from("!iiiii", value)
    assert (ndim, hasnull, oid, lower) == (1, 0, 700, 1)
    pairs = struct.iter_unpack("!if", value[20:])
    out = []
    for size, number in pairs:
        assert size == 4
        out.append(number)
    assert len(out) == length
    return out


@given(st.lists(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False), min_size=1,
                max_size=40))
def test_values_are_the_doubles_rounded_to_float(values: list[float]) -> None:
    found = real_array_values([array("d", values)])
    halfway = any((struct.unpack("<Q", struct.pack("<d", v))[0] & ((1 << 29) - 1)) == 1 << 28
                  for v in values)
    subnormal = any(0 < abs(v) < 2.0 ** -126 for v in values)
    if halfway or subnormal:
        assert found is None
        return
    assert found is not None
    assert floats_of(found[0]) == [float(np.float32(v)) for v in values]
    # and the literal of a value reads back as the same floats
    text = real_array_text(found[0]).decode()
    assert [np.float32(t) for t in text.strip("{}").split(",")] == [np.float32(v) for v in values]


def test_numbers_the_text_path_must_read_decline_the_batch() -> None:
    midpoint = 1.0 + 2.0 ** -24  # halfway between 1.0 and the next float
    for odd in (midpoint, 1e-40, -2.0 ** -127, 3.5e38, -1e39):
        assert real_array_values([array("d", [0.5, 0.25]), array("d", [odd, 1.0])]) is None
    assert real_array_values([array("d", [0.0, -0.0, 2.0 ** -126, 3.4e38])]) is not None


def test_an_empty_embedding_is_an_empty_array() -> None:
    found = real_array_values([array("d"), array("d", [1.5])])
    assert found is not None and found[0] == EMPTY_REAL_ARRAY
    assert real_array_text(found[0]) == b"{}" and real_array_text(found[0], b"[]") == b"[]"
    assert floats_of(found[1]) == [1.5]


def dense_vertex(count: int) -> bytes:
    rng = random.Random(count)
    return json.dumps({"predictions": [
        {"embeddings": {"values": [rng.uniform(-1, 1) for _ in range(64)],
                        "statistics": {"token_count": 2}}} for _ in range(count)]}).encode()


def test_a_raw_vertex_answer_reads_as_binary_with_its_token_count() -> None:
    content = dense_vertex(3)
    found = raw_vertex_binary(content)
    assert found is not None and found.binary and found.input_tokens == 6
    expected = [[float(np.float32(v)) for v in p["embeddings"]["values"]]
                for p in json.loads(content)["predictions"]]
    assert [floats_of(v) for v in found.literals] == expected


def test_raw_answers_the_text_path_must_read() -> None:
    for content in (b'{"predictions": [{"embeddings": {"values": [0.25, -0]}}]}',  # integer -0
                    b'{"predictions": [{"embeddings": {"values": [0.25, null]}}]}',
                    b'{"predictions": [{"embeddings": {"values": [0.25, 1e-400]}}]}',
                    b'{"predictions": [{"embeddings": {"values": [1e400]}}]}',
                    b'{"predictions": [{"embeddings": {"values": ["0.5"]}}]}'):
        assert raw_vertex_binary(content) is None
    assert raw_vertex_binary(b'{"predictions": [{"embeddings": {"values": [-0.0]}}]}') is not None


def test_openai_answers_are_put_in_input_order() -> None:
    content = (b'{"data": [{"embedding": [2.5], "index": 1}, {"embedding": [1.5], "index": 0}],'
               b' "usage": {"prompt_tokens": 4}}')
    found = raw_openai_binary(content)
    assert found is not None and found.input_tokens == 4
    assert [floats_of(v) for v in found.literals] == [[1.5], [2.5]]
    assert raw_openai_binary(b'{"data": [{"embedding": [1.5], "index": 3}]}') is None


def test_short_numbers_go_as_text_long_ones_as_binary() -> None:
    extract = RAW_BINARY_EXTRACTORS[binary_key("vertex_embeddings:vector")]
    numbers = ["0.0"] * 767 + ["0.5"]  # the fakes' sparse vectors: "0.0"s and a few others
    sparse = json.dumps({"predictions": [{"embeddings": {"values": [float(n) for n in numbers]}}]})
    found = extract(sparse.encode())
    assert found is not None and not found.binary
    assert found.literals == [("[" + ",".join(numbers) + "]").encode()]
    found = extract(dense_vertex(2))
    assert found is not None and found.binary


def test_the_fakes_sparse_vectors_give_the_values_of_their_lists() -> None:
    sparse, _ = embed_sparse("the cat sat on the mat", 768)
    from_sparse = parsed_binary([sparse])
    from_list = parsed_binary([list(sparse.thaw())])
    assert from_sparse is not None and from_list is not None
    assert from_sparse.literals == from_list.literals
    assert floats_of(from_sparse.literals[0]) == [float(np.float32(v)) for v in sparse.thaw()]
    assert parsed_binary([[1, 2.5]]) is None  # an int: the text path says what it means


def test_copy_data_is_pgcopy_with_a_row_per_item() -> None:
    target = StoreTarget("dbname=x", "7:2026", "m")
    values = real_array_values([array("d", [1.0]), array("d", [2.0])])
    assert values is not None
    data = copy_data(target, ["a", "bé"], values)
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    assert data.endswith(b"\xff\xff") and data.count(b"\x00\x05\x00\x00\x00\x067:2026") == 2
    assert "bé".encode() in data


class _Upstream:
    def admin_conninfo(self, dbname: str) -> str:
        return f"dbname={dbname}"


def _resolve(pid: int, store: Any, sessions: dict[int, Any]) -> StoreTarget | None:
    server = SimpleNamespace(sessions=sessions, config=SimpleNamespace(upstream=_Upstream()))
    copier = warm_copier(lambda: server)
    token = CALLER_PID.set(pid)
    try:
        return copier.resolve(store)
    finally:
        CALLER_PID.reset(token)


def test_a_store_is_taken_only_under_the_callers_own_key_and_database() -> None:
    sessions = {42: SimpleNamespace(dbname="shop")}  # relay.ClientSide: its session's database
    assert _resolve(42, {"key": "42:t", "model_id": "m"}, sessions) == StoreTarget(
        "dbname=shop", "42:t", "m")
    assert _resolve(42, {"key": "421:t", "model_id": "m"}, sessions) is None  # another pid
    assert _resolve(42, {"key": "7:t", "model_id": "m"}, sessions) is None
    assert _resolve(7, {"key": "7:t", "model_id": "m"}, sessions) is None  # no such session
    assert _resolve(42, {"key": 42, "model_id": "m"}, sessions) is None
    assert _resolve(42, {"key": "42:t"}, sessions) is None
