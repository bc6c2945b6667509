"""The warm-up's fast path reads embeddings out of provider answers exactly as the extension's
built-in output transforms would, or declines (and the per-row path decides)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emulator.engine.extract import batch_size, openai_embeddings, vertex_embeddings
from emulator.fakes.embeddings import FakeVector, embed


@given(st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32),
                         min_size=1, max_size=8), min_size=1, max_size=4))
def test_vertex_values_become_real_array_literals_that_read_back_equal(
        vectors: list[list[float]]) -> None:
    answer = {"predictions": [{"embeddings": {"values": v}} for v in vectors]}
    literals = vertex_embeddings(answer)
    assert literals is not None
    for literal, vector in zip(literals, vectors, strict=True):
        assert literal.startswith("{") and literal.endswith("}")
        assert [float(x) for x in literal[1:-1].split(",")] == vector


def test_openai_data_is_read_in_index_order() -> None:
    answer = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0, 0]}]}
    assert openai_embeddings(answer) == ["{1.0,0}", "{2.0}"]


def test_anything_but_numbers_is_left_to_the_per_row_path() -> None:
    for bad in (None, "0.5", True, False, [1.0], {"v": 1}):
        answer = {"predictions": [{"embeddings": {"values": [0.5, bad]}}]}
        assert vertex_embeddings(answer) is None, bad
    assert vertex_embeddings({"unexpected": []}) is None
    assert openai_embeddings({"data": [{"embedding": None}]}) is None


def test_batch_size_counts_the_texts_of_a_request() -> None:
    assert batch_size({"body": {"instances": [{}, {}, {}]}}) == 3
    assert batch_size({"body": {"input": ["a", "b"]}}) == 2
    assert batch_size({"body": {"input": "a"}}) == 1


@given(st.text(max_size=80), st.sampled_from([3, 16, 768]))
def test_a_fake_vector_writes_the_literal_of_its_values(text: str, dimension: int) -> None:
    vector = embed(text, dimension)
    assert type(vector) is FakeVector and len(vector) == dimension
    literals = vertex_embeddings({"predictions": [{"embeddings": {"values": vector}}]})
    assert literals is not None
    (literal,) = literals
    assert literal.startswith("{") and literal.endswith("}")
    assert [float(x) for x in literal[1:-1].split(",")] == list(vector)
    # the same text as the generic path writes for a plain list, up to how a zero is spelled
    plain = vertex_embeddings({"predictions": [{"embeddings": {"values": list(vector)}}]})
    assert plain is not None
    assert [float(x) for x in plain[0][1:-1].split(",")] == list(vector)
