"""The warm-up's fast path reads embeddings out of provider answers exactly as the extension's
built-in output transforms would, or declines (and the per-row path decides).

Two readers: of answers as bytes from HTTP (never making a float: the number tokens are copied)
and of answers already parsed (the fakes). The byte reader is checked against json.loads on
valid answers and on mutated ones."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from emulator.engine.extract import (
    batch_size,
    could_underflow_real,
    number_array_literal,
    openai_embeddings,
    raw_openai_embeddings,
    raw_vertex_embeddings,
    vertex_embeddings,
)
from emulator.fakes.embeddings import FakeVector, embed

# -- JSON text as providers write it ---------------------------------------------------------

_digits = st.text("0123456789", min_size=1, max_size=12)
_int_part = st.one_of(st.just("0"), st.builds(lambda a, b: a + b,
                                                st.sampled_from("123456789"),
                                                st.text("0123456789", max_size=20)))
number_tokens = st.builds(
    lambda sign, whole, frac, exp: sign + whole + frac + exp,
    st.sampled_from(["", "-"]),
    _int_part,
    st.one_of(st.just(""), _digits.map(lambda d: "." + d)),
    st.one_of(st.just(""), st.builds(lambda e, s, d: e + s + d, st.sampled_from("eE"),
                                     st.sampled_from(["", "+", "-"]),
                                     st.text("0123456789", min_size=1, max_size=3))),
)
whitespace = st.text(" \t\n\r", max_size=2)


@st.composite
def number_arrays(draw: st.DrawFn) -> tuple[str, list[str]]:
    tokens = draw(st.lists(number_tokens, max_size=12))
    parts = [draw(whitespace) + t + draw(whitespace) for t in tokens]
    return "[" + ",".join(parts) + draw(whitespace) + "]", tokens


# Keys and strings that look like the structure, to trip a scanner that does not parse.
noise = st.one_of(
    st.text(max_size=10),
    st.sampled_from(['[1,2]', 'values', '"', '\\', '{"values":[1]}', ']', 'é', '\u2028']),
)


@st.composite
def vertex_answers(draw: st.DrawFn) -> tuple[bytes, list[list[str]]]:
    arrays = draw(st.lists(number_arrays(), max_size=4))
    predictions = []
    for text, _tokens in arrays:
        stats = json.dumps({"truncated": False, "token_count": draw(st.integers(0, 99))})
        extra = json.dumps({draw(noise): draw(noise)}, ensure_ascii=draw(st.booleans()))
        inner = [f'"values":{text}', f'"statistics":{stats}']
        if draw(st.booleans()):
            inner.reverse()
        predictions.append('{"embeddings":{' + ",".join(inner) + "}," + extra[1:])
    doc = ('{"predictions":[' + ",".join(predictions) + '],"metadata":'
           + json.dumps({"note": draw(noise), "n": [1, 2.5]}) + "}")
    return doc.encode(), [tokens for _, tokens in arrays]


def numbers_of(literal: bytes) -> list[float]:
    assert literal[:1] == b"{" and literal[-1:] == b"}"
    body = literal[1:-1].decode()
    return [float(x) for x in body.split(",")] if body else []


def underflows(token: str) -> bool:
    """Whether PostgreSQL's real refuses the token as too small: non-zero, at most 2^-150."""
    value = Decimal(token).copy_abs()  # abs() would round to 28 digits
    return bool(value) and value <= Decimal(2.0 ** -150)


def same_floats(a: list[float], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        x == float(y) or (math.isinf(x) and math.isinf(float(y))) for x, y in zip(a, b))


# -- the byte reader ---------------------------------------------------------------------------


@given(vertex_answers())
def test_raw_vertex_answers_give_the_number_tokens_and_json_loads_numbers(
        answer: tuple[bytes, list[list[str]]]) -> None:
    content, tokens = answer
    extracted = raw_vertex_embeddings(content)
    if any(underflows(t) for array in tokens for t in array):
        assert extracted is None  # such a number goes the per-row way, which reports it
        return
    assert extracted is not None
    parsed = json.loads(content)
    assert len(extracted.literals) == len(tokens) == len(parsed["predictions"])
    for literal, expected, prediction in zip(extracted.literals, tokens, parsed["predictions"]):
        # the very tokens of the answer: what json_array_elements_text hands to ::real
        assert literal == ("{" + ",".join(expected) + "}").encode()
        assert same_floats(numbers_of(literal), prediction["embeddings"]["values"])
    assert extracted.input_tokens == sum(
        p["embeddings"]["statistics"]["token_count"] for p in parsed["predictions"])


def _reject_constants(name: str) -> Any:
    raise ValueError(name)  # PostgreSQL's json has no NaN or Infinity


def _loads(content: bytes) -> Any:
    try:
        return json.loads(content, parse_constant=_reject_constants)
    except ValueError:
        return None


@given(vertex_answers(), st.data())
def test_raw_vertex_reader_agrees_with_json_loads_on_damaged_answers(
        answer: tuple[bytes, list[list[str]]], data: st.DataObject) -> None:
    content, _ = answer
    position = data.draw(st.integers(0, max(len(content) - 1, 0)))
    action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    byte = bytes([data.draw(st.sampled_from(b'[]{},":-+.eE0159 xna\\\x00\xff'))])
    if action == "insert":
        damaged = content[:position] + byte + content[position:]
    elif action == "delete":
        damaged = content[:position] + content[position + 1:]
    else:
        damaged = content[:position] + byte + content[position + 1:]
    extracted = raw_vertex_embeddings(damaged)
    parsed = _loads(damaged)
    expected = vertex_embeddings(parsed) if parsed is not None else None
    if parsed is None:
        assert extracted is None  # not JSON PostgreSQL would read: the per-row path says so
    if extracted is None:
        return
    # Whatever the byte reader accepts, json.loads reads as the same numbers.
    assert expected is not None
    values = [p["embeddings"]["values"] for p in parsed["predictions"]]
    assert len(extracted.literals) == len(values)
    for literal, numbers in zip(extracted.literals, values):
        assert same_floats(numbers_of(literal), numbers)


def test_raw_readers_refuse_what_the_output_transforms_would_not_read() -> None:
    base = '{"predictions":[{"embeddings":{"values":%s}}]}'
    for bad in ("[1,null]", '[1,"2"]', "[1,true]", "[[1]]", "[1,{}]", "null", '"1,2"', "{}",
                "[NaN]", "[Infinity]", "[1,]", "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[0x1]",
                "[1 2]", "[-]"):
        assert raw_vertex_embeddings((base % bad).encode()) is None, bad
    for doc in (b"", b"[]", b"{}", b'{"predictions":{}}', b'{"predictions":[{}]}',
                b'{"predictions":[{"embeddings":[]}]}', b'{"predictions":[1]}',
                b'{"predictions":[{"embeddings":{"values":[1]}}]} trailing',
                b'{"predictions":[{"embeddings":{"values":[1]},"x":"\xff"}]}',  # not UTF-8
                b'{"predictions":[{"embeddings":{"values":[1]},"x":"a\x01b"}]}'):
        assert raw_vertex_embeddings(doc) is None, doc


def test_raw_vertex_reader_takes_the_last_of_duplicate_keys_as_postgresql_does() -> None:
    doc = b'{"predictions":[{"embeddings":{"values":[1],"values":[2, 3]}}]}'
    extracted = raw_vertex_embeddings(doc)
    assert extracted is not None and extracted.literals == [b"{2,3}"]
    assert raw_vertex_embeddings(b'{"predictions":[{"embeddings":{"values":[1],"values":0}}]}') \
        is None


def test_raw_openai_answers_are_read_in_index_order() -> None:
    doc = (b'{"object":"list","data":[{"object":"embedding","index":1,"embedding":[2.5e-3]},'
           b'{"object":"embedding","index":0,"embedding":[ 1 , -0.0 ]}],"model":"m",'
           b'"usage":{"prompt_tokens":7,"total_tokens":7}}')
    extracted = raw_openai_embeddings(doc)
    assert extracted is not None
    assert extracted.literals == [b"{1,-0.0}", b"{2.5e-3}"]
    assert extracted.input_tokens == 7
    without_index = b'{"data":[{"embedding":[3]},{"embedding":[4]}]}'
    assert raw_openai_embeddings(without_index) == raw_openai_embeddings(
        b'{"data":[{"embedding":[3],"index":0},{"embedding":[4],"index":1}]}')


def test_raw_openai_reader_refuses_ambiguous_indices() -> None:
    for data in ('[{"index":0,"embedding":[1]},{"embedding":[2]}]',
                 '[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]',
                 '[{"index":1,"embedding":[1]}]',
                 '[{"index":1.0,"embedding":[1]}]',
                 '[{"index":0,"embedding":null}]'):
        assert raw_openai_embeddings(b'{"data":' + data.encode() + b"}") is None, data


@given(st.lists(number_tokens, max_size=20), whitespace)
def test_a_number_array_literal_is_its_tokens(tokens: list[str], space: str) -> None:
    raw = ("[" + space + (space + "," + space).join(tokens) + space + "]").encode()
    expected = None if any(map(underflows, tokens)) else ("{" + ",".join(tokens) + "}").encode()
    assert number_array_literal(raw) == expected
    # pgvector's brackets around the same tokens
    as_vector = None if expected is None else b"[" + expected[1:-1] + b"]"
    assert number_array_literal(raw, b"[]") == as_vector


# 2^-150, half the smallest float4 subnormal: round-half-even makes it 0, which real refuses.
HALF_SUBNORMAL = format(Decimal(2.0 ** -150), "e")
NEAR_UNDERFLOW = [HALF_SUBNORMAL, HALF_SUBNORMAL.replace("5e-46", "6e-46"), "-" + HALF_SUBNORMAL,
                  "1e-46", "1e-45", "1.4e-45", "4.9e-45", "-1e-50", "1e-40", "1E-38", "1e-20",
                  "0." + "0" * 45 + "1", "0." + "0" * 44 + "1", "0." + "0" * 30, "0e-99",
                  "100000000000000000000000e-69", "1e-0045", "12e-3", "1E-50", "2.5E-7",
                  "0." + "0" * 28 + "1e-19", "0." + "0" * 25 + "1e-19", "0." + "0" * 26 + "7e-19",
                  "0." + "0" * 26 + "71e-19"]


def test_numbers_too_small_for_real_are_left_to_the_per_row_path() -> None:
    # tests/e2e/test_live_warmup.py checks the same list against PostgreSQL's real input
    for token in NEAR_UNDERFLOW:
        literal = number_array_literal(f"[0.5,{token},-0.0]".encode())
        assert (literal is None) == underflows(token), token
        assert could_underflow_real(f"{{{token}}}".encode()) == underflows(token), token
    assert [t for t in NEAR_UNDERFLOW if underflows(t)] == [
        HALF_SUBNORMAL, "-" + HALF_SUBNORMAL, "1e-46", "-1e-50", "0." + "0" * 45 + "1",
        "100000000000000000000000e-69", "1E-50", "0." + "0" * 28 + "1e-19",
        "0." + "0" * 26 + "7e-19"]


# -- the parsed reader (fakes, cache) -------------------------------------------------------


@given(st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32),
                         min_size=1, max_size=8), min_size=1, max_size=4))
def test_vertex_values_become_real_array_literals_that_read_back_equal(
        vectors: list[list[float]]) -> None:
    answer = {"predictions": [{"embeddings": {"values": v}} for v in vectors]}
    literals = vertex_embeddings(answer)
    assert literals is not None
    for literal, vector in zip(literals, vectors, strict=True):
        assert numbers_of(literal) == vector
    as_vectors = vertex_embeddings(answer, b"[]")
    assert as_vectors == [b"[" + literal[1:-1] + b"]" for literal in literals]


def test_openai_data_is_read_in_index_order() -> None:
    answer = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0, 0]}]}
    assert openai_embeddings(answer) == [b"{1.0,0}", b"{2.0}"]
    assert openai_embeddings(answer, b"[]") == [b"[1.0,0]", b"[2.0]"]
    fake = embed("a fake vector", 8)
    assert vertex_embeddings({"predictions": [{"embeddings": {"values": fake}}]}, b"[]") == [
        ("[" + fake.literal()[1:-1] + "]").encode()]


def test_anything_but_numbers_is_left_to_the_per_row_path() -> None:
    for bad in (None, "0.5", True, False, [1.0], {"v": 1}):
        answer = {"predictions": [{"embeddings": {"values": [0.5, bad]}}]}
        assert vertex_embeddings(answer) is None, bad
    assert vertex_embeddings({"unexpected": []}) is None
    assert vertex_embeddings({"predictions": [{"embeddings": 5}]}) is None
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
    assert numbers_of(literal) == list(vector)
    # the same numbers as the generic path writes for a plain list, up to how a zero is spelled
    plain = vertex_embeddings({"predictions": [{"embeddings": {"values": list(vector)}}]})
    assert plain is not None
    assert numbers_of(plain[0]) == list(vector)
    # and as the byte reader reads from the fake server's JSON
    extracted = raw_vertex_embeddings(
        json.dumps({"predictions": [{"embeddings": {"values": vector}}]}).encode())
    assert extracted is not None
    assert numbers_of(extracted.literals[0]) == list(vector)
