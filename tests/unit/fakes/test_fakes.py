"""The fake models answer each provider's format with deterministic, sensible values."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.fakes import embeddings as fake_embeddings
from emulator.fakes import sums
from emulator.fakes.embeddings import embed, embed_counted, similarity, token_count
from emulator.fakes.forecasting import forecast
from emulator.fakes.models import FakeModelError, answer_request
from emulator.fakes.rules import load_rules
from emulator.fakes.server import _payload as fake_server_payload
from emulator.fakes.sums import left_sum
from emulator.words import content_stems, words

VERTEX = "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1"


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def vertex_embedding(model: str, text: str, **parameters: Any) -> list[float]:
    body: dict[str, Any] = {"instances": [{"content": text}]}
    if parameters:
        body["parameters"] = parameters
    response = answer_request(f"{VERTEX}/publishers/google/models/{model}:predict", body)
    values: list[float] = response["predictions"][0]["embeddings"]["values"]
    return values


def gemini_text(
    body: dict[str, Any], model: str = "gemini-2.5-flash-lite", rules: Any = None
) -> str:
    url = f"{VERTEX}/publishers/google/models/{model}:generateContent"
    response = answer_request(url, body, rules) if rules else answer_request(url, body)
    text: str = response["candidates"][0]["content"]["parts"][0]["text"]
    return text


def prompt(
    text: str, schema: dict[str, Any] | None = None, mime: str = "application/json"
) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if schema is not None:
        body["generationConfig"] = {"responseMimeType": mime, "responseSchema": schema}
    return body


IF_SCHEMA = {"type": "STRING", "enum": ["true", "false"]}


@pytest.mark.parametrize(
    ("model", "dimension"),
    [
        ("text-embedding-005", 768),
        ("text-embedding-004", 768),
        ("textembedding-gecko@003", 768),
        ("text-multilingual-embedding-002", 768),
        ("gemini-embedding-001", 3072),
        ("text-embedding-large-exp-03-07", 3072),
        ("gemini-embedding-exp-03-07", 3072),
    ],
)
def test_vertex_embedding_has_the_models_dimension(model: str, dimension: int) -> None:
    assert len(vertex_embedding(model, "hello")) == dimension


def test_vertex_embedding_honours_output_dimensionality() -> None:
    assert len(vertex_embedding("gemini-embedding-001", "hello", outputDimensionality=256)) == 256


def test_vertex_embedding_answers_every_instance_with_statistics() -> None:
    body = {"instances": [{"content": "one two"}, {"content": "three"}]}
    response = answer_request(f"{VERTEX}/publishers/google/models/text-embedding-005:predict", body)
    assert len(response["predictions"]) == 2
    assert response["predictions"][0]["embeddings"]["statistics"] == {
        "token_count": 2,
        "truncated": False,
    }


def test_embeddings_are_deterministic_and_unit_length() -> None:
    first = vertex_embedding("text-embedding-005", "The quick brown fox")
    assert first == vertex_embedding("text-embedding-005", "The quick brown fox")
    assert math.isclose(math.fsum(x * x for x in first), 1.0, rel_tol=1e-9)


def test_similarity_follows_shared_words() -> None:
    cat1 = embed("The cat sat on the warm mat", 768)
    cat2 = embed("Cats love sleeping on mats", 768)
    tax = embed("Tax law requires filing returns before April", 768)
    assert cosine(cat1, cat2) > cosine(cat1, tax) + 0.3
    assert cosine(cat1, cat2) > cosine(cat2, tax) + 0.3


@pytest.mark.parametrize(
    ("model", "dimension"),
    [
        ("text-embedding-ada-002", 1536),
        ("text-embedding-3-small", 1536),
        ("text-embedding-3-large", 3072),
    ],
)
def test_openai_embeddings_have_the_models_dimension(model: str, dimension: int) -> None:
    response = answer_request(
        "https://api.openai.com/v1/embeddings", {"model": model, "input": ["a", "b"]}
    )
    assert [d["index"] for d in response["data"]] == [0, 1]
    assert all(len(d["embedding"]) == dimension for d in response["data"])


def test_openai_embeddings_honour_dimensions_and_a_single_string() -> None:
    response = answer_request(
        "https://api.openai.com/v1/embeddings",
        {"model": "text-embedding-3-large", "input": "x", "dimensions": 64},
    )
    assert len(response["data"]) == 1 and len(response["data"][0]["embedding"]) == 64


def test_bad_embedding_request_is_refused_like_vertex() -> None:
    with pytest.raises(FakeModelError) as caught:
        answer_request(f"{VERTEX}/publishers/google/models/text-embedding-005:predict", {"x": 1})
    assert caught.value.status == 400
    assert caught.value.body["error"]["status"] == "INVALID_ARGUMENT"


def test_a_publisher_model_that_is_no_google_embedding_model_is_not_found_like_vertex() -> None:
    """AlloyDB sends embedding('not_existing_model_id', ...) to Vertex AI, which answers 404
    (LangChain's live test saw it fail on AlloyDB); a model of Google's families is answered."""
    body = {"instances": [{"content": "x"}]}
    with pytest.raises(FakeModelError) as caught:
        answer_request(f"{VERTEX}/publishers/google/models/not_existing_model_id:predict", body)
    assert caught.value.status == 404
    error = caught.value.body["error"]
    assert error["status"] == "NOT_FOUND" and error["message"].startswith(
        "Publisher Model `projects/p/locations/us-central1/publishers/google/models/"
        "not_existing_model_id` was not found")
    for model in ("text-embedding-005", "textembedding-gecko@003", "gemini-embedding-001",
                  "text-multilingual-embedding-002", "text-embedding-large-exp-03-07",
                  "gemini-embedding-exp-03-07", "Text-Embedding-004"):
        answer = answer_request(f"{VERTEX}/publishers/google/models/{model}:predict", body)
        assert len(answer["predictions"]) == 1, model


def test_gemini_free_text_names_the_model() -> None:
    assert gemini_text(prompt("Say hello")) == "Fake answer from gemini-2.5-flash-lite: Say hello"


def test_gemini_enum_if_follows_shared_words() -> None:
    yes = prompt("Is this review about delivery? The delivery was two days late.", IF_SCHEMA)
    no = prompt("Is this review about delivery? Lovely colour, fits well.", IF_SCHEMA)
    assert json.loads(gemini_text(yes)) == "true"
    assert json.loads(gemini_text(no)) == "false"


def test_gemini_enum_mime_answers_plain_value() -> None:
    body = prompt("Is this positive? I love it, excellent.", IF_SCHEMA, mime="text/x.enum")
    assert gemini_text(body) == "true"


def test_gemini_number_schema_answers_a_number() -> None:
    body = prompt("How relevant is this to cat food? premium cat food", {"type": "NUMBER"})
    assert 0.0 <= float(gemini_text(body)) <= 1.0


def batch_schema(item: dict[str, Any], n: int) -> dict[str, Any]:
    return {"type": "ARRAY", "items": item, "minItems": n, "maxItems": n}


def test_gemini_array_batch_from_parts() -> None:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Is this review about delivery?"},
                    {"text": "Delivery took ages"},
                    {"text": "Great colour"},
                    {"text": "Fast delivery, thanks"},
                ],
            }
        ],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": batch_schema(IF_SCHEMA, 3),
        },
    }
    assert json.loads(gemini_text(body)) == ["true", "false", "true"]


def test_gemini_array_batch_from_a_numbered_listing() -> None:
    text = "Answer for each item. Is it about cats?\n1. cats purr\n2. tax returns\n"
    body = prompt(text, batch_schema(IF_SCHEMA, 2))
    assert json.loads(gemini_text(body)) == ["true", "false"]


def test_gemini_array_batch_from_a_json_array() -> None:
    text = 'Is each text about cats? ["my cat sleeps", "the stock market", "cats and dogs"]'
    body = prompt(text, batch_schema(IF_SCHEMA, 3))
    assert json.loads(gemini_text(body)) == ["true", "false", "true"]


def test_gemini_array_always_has_n_items() -> None:
    body = prompt("no structure at all", batch_schema({"type": "NUMBER"}, 5))
    values = json.loads(gemini_text(body))
    assert len(values) == 5 and all(isinstance(v, float) for v in values)


def test_gemini_stream_is_a_json_array_of_chunks() -> None:
    url = f"{VERTEX}/publishers/google/models/gemini-1.5-pro:streamGenerateContent"
    chunks = answer_request(url, prompt("Tell me a story about a lighthouse keeper"))
    assert isinstance(chunks, list) and len(chunks) >= 2
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text.startswith("Fake answer from gemini-1.5-pro:")
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_rules_file_decides_answers(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rules{suffix}"
    if suffix == ".json":
        path.write_text(
            json.dumps(
                {
                    "rules": [
                        {"pattern": "capital of (\\w+)", "answer": "The capital of \\1 is Paris."},
                        {"pattern": "refund", "answer": "true"},
                    ]
                }
            )
        )
    else:
        path.write_text(
            '[[rules]]\npattern = "capital of (\\\\w+)"\nanswer = "The capital of \\\\1 is Paris."\n'
            '[[rules]]\npattern = "refund"\nanswer = "true"\n'
        )
    rules = load_rules(path)
    assert gemini_text(prompt("What is the capital of France"), rules=rules) == (
        "The capital of France is Paris."
    )
    answer = gemini_text(prompt("Is this fine? I want a refund", IF_SCHEMA), rules=rules)
    assert json.loads(answer) == "true"


def test_ranking_scores_by_word_overlap_sorted_with_ids_kept() -> None:
    body = {
        "model": "semantic-ranker-default-003",
        "query": "cat food",
        "records": [
            {"id": "1", "content": "dog toys"},
            {"id": "2", "content": "premium cat food"},
            {"id": "3", "content": "cat toys"},
        ],
        "topN": 2,
        "ignoreRecordDetailsInResponse": True,
    }
    url = "https://discoveryengine.googleapis.com/v1/projects/p/locations/global/rankingConfigs/default_ranking_config:rank"
    records = answer_request(url, body)["records"]
    assert [r["id"] for r in records] == ["2", "3"]
    assert records[0]["score"] > records[1]["score"]
    assert set(records[0]) == {"id", "score"}


def test_openai_chat_and_anthropic_messages_have_provider_shapes() -> None:
    chat = answer_request(
        "https://api.openai.com/v1/chat/completions",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat["choices"][0]["message"]["content"] == "Fake answer from gpt-4o: hi"
    message = answer_request(
        "https://api.anthropic.com/v1/messages",
        {
            "model": "claude-3-haiku",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert message["type"] == "message" and message["content"][0]["type"] == "text"


def test_hugging_face_feature_extraction_and_classification() -> None:
    vector = answer_request(
        "https://api-inference.huggingface.co/models/sentence-transformers/all-MiniLM-L6-v2",
        {"inputs": "hello"},
    )
    assert len(vector) == 384 and isinstance(vector[0], float)
    labels = answer_request(
        "https://api-inference.huggingface.co/models/distilbert-sst2", {"inputs": "I love it"}
    )
    assert labels[0][0]["label"] == "POSITIVE"


def test_hugging_face_zero_shot_answers_with_the_candidate_labels() -> None:
    # The body of AlloyDB's model-endpoint-predictions page (facebook/bart-large-mnli).
    url = "https://api-inference.huggingface.co/models/facebook/bart-large-mnli"
    text = ("Hi, I recently bought a device from your company but it is not working as "
            "advertised and I would like to get reimbursed!")
    answer = answer_request(url, {"inputs": text,
                                  "parameters": {"candidate_labels": ["refund", "legal", "faq"]}})
    assert sorted(item["label"] for item in answer) == ["faq", "legal", "refund"]
    assert math.isclose(sum(item["score"] for item in answer), 1.0, abs_tol=1e-5)
    scores = [item["score"] for item in answer]
    assert scores == sorted(scores, reverse=True)
    # the label the text talks about comes first; several inputs get one list each
    both = answer_request(url, {"inputs": ["I want a refund", "a legal question"],
                                "parameters": {"candidate_labels": "refund, legal",
                                               "multi_label": True}})
    assert [answers[0]["label"] for answers in both] == ["refund", "legal"]
    with pytest.raises(FakeModelError) as refused:
        answer_request(url, {"inputs": text, "parameters": {"candidate_labels": []}})
    assert refused.value.status == 400


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200), dimension=st.integers(min_value=1, max_value=4096))
def test_any_text_embeds_to_a_deterministic_unit_vector(text: str, dimension: int) -> None:
    vector = embed(text, dimension)
    assert len(vector) == dimension
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)
    assert vector == embed(text, dimension)


# -- the fake embeddings' exact values ---------------------------------------------------------
# Users' tests and cassettes hold fake embeddings (their literals, their JSON): a faster fake must
# give the same bytes. The pins below were taken before the fakes were optimised; the reference
# below is that code, kept here to compare with on random texts.

_PINNED_CASES = [
    ("", 768, "4be81a848d36ae4a"),
    ("the", 768, "75b35ba9527e6b6d"),
    ("The cats sat on the cats' mat, twice: cats!", 768, "7652e696dd94a571"),
    ("Ünïcödé straße 東京 日本語のテキスト", 3072, "aed26fafcd6818da"),
    ("bird cat", 2, "a5941da770dd3193"),
    ("x " * 500, 1536, "b620d5ff95295739"),
    ("A database follows the last train (live sentence 4711).", 768, "04e7ed903df9cd73"),
    ("cat the the", 1, "c244e86473812582"),
]


def _all_texts(vector: list[float]) -> bytes:
    """Every text of a fake embedding users can see: the real[] literal, the JSON the engine
    hands to SQL (json.dumps), the JSON the fake server sends (msgspec)."""
    literal = vector.literal()  # type: ignore[attr-defined]
    return f"{literal}|{json.dumps(vector)}|".encode() + msgspec.json.encode(vector)


def test_fake_embeddings_keep_their_exact_text() -> None:
    # A cancellation leaves -2.8e-17: the literal writes it as repr does, exponent and all.
    assert embed("bird cat", 2).literal() == "{-2.7755575615628914e-17,1.0}"
    assert embed("The cat sat on the mat.", 8).literal() == (
        "{-0.652718330834573,0,0.38334251175998735,0,-0.652718330834573,0,0.03108182527783681,0}"
    )
    assert embed("", 4).literal() == "{-0.7071067811865475,0.7071067811865475,0,0}"
    for text, dimension, digest in _PINNED_CASES:
        assert hashlib.sha256(_all_texts(embed(text, dimension))).hexdigest()[:16] == digest, text
    assert repr(similarity("the cat sat on a mat", "a cat on the mat")) == "0.768477893376516"


def test_the_fakes_add_floats_left_to_right_on_every_python() -> None:
    # Python 3.12's sum() would give 1.0 here (it compensates rounding); 3.11's, and the
    # fakes', 0.0. With sum(), 3.12 changed three fake embeddings in four by a last bit.
    for add in (left_sum, sums._added_in_order):  # the one this Python uses, and the other
        assert add([1e16, 1.0, -1e16]) == 0.0
        assert add([]) == 0 and add([2, 3]) == 5
    answer = forecast({"input": [1.5, 2.25, 2.0, 3.1, 4.7, 4.2, 5.9, 6.3, 7.0, 7.7], "horizon": 4})
    assert answer["point_forecast"][0] == 8.413333333333334
    assert hashlib.sha256(json.dumps(answer).encode()).hexdigest()[:16] == "af3183553b7dd5f2"


_REF_SLOT_CHUNKS = struct.Struct("<8I")


def _reference_slots(feature: str, dimension: int) -> tuple[tuple[int, float], ...]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=32).digest()
    return tuple((chunk % dimension, 1.0 if chunk & 0x80000000 else -1.0)
                 for chunk in _REF_SLOT_CHUNKS.unpack(digest))


def _reference_embed(text: str, dimension: int) -> tuple[list[float], dict[int, float], str]:
    """The fake embedding as the first implementation computed it: values, the non-zero
    positions (in their order) and the literal."""
    counts: dict[str, int] = {}
    for token in content_stems(text) or words(text):
        counts[token] = counts.get(token, 0) + 1
    sparse: dict[int, float] = {}
    for token, count in counts.items():
        weight = 1.0 + math.log(count)
        for position, sign in _reference_slots("w:" + token, dimension):
            sparse[position] = sparse.get(position, 0.0) + sign * weight
    whole_weight = 0.15 if counts else 1.0
    for position, sign in _reference_slots("t:" + text, dimension):
        sparse[position] = sparse.get(position, 0.0) + sign * whole_weight
    squares = 0.0  # added left to right, as the first implementation's sum() did (on 3.11)
    for x in sparse.values():
        squares += x * x
    norm = math.sqrt(squares)
    if norm == 0.0:
        nonzero = {_reference_slots("z:" + text, dimension)[0][0]: 1.0}
    else:
        nonzero = {p: v / norm for p, v in sparse.items() if v != 0.0}
    values = [0.0] * dimension
    for position, value in nonzero.items():
        values[position] = value
    literal = "{" + ",".join(repr(v) if v else "0" for v in values) + "}"
    return values, nonzero, literal


_VOCABULARY = ["cat", "cats", "the", "river", "map", "Ünï", "東京", "a1", "ran", "x", "bird"]


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=120),
        st.lists(st.sampled_from(_VOCABULARY), max_size=12).map(" ".join),
    ),
    dimension=st.one_of(st.integers(min_value=1, max_value=16), st.sampled_from([768, 3072])),
)
def test_fake_embeddings_equal_the_reference_bit_for_bit(text: str, dimension: int) -> None:
    values, nonzero, literal = _reference_embed(text, dimension)
    vector = embed(text, dimension)
    assert struct.pack(f"<{dimension}d", *vector) == struct.pack(f"<{dimension}d", *values)
    assert list(vector.nonzero.items()) == list(nonzero.items())
    assert vector.literal() == literal
    assert json.dumps(vector) == json.dumps(values)
    assert msgspec.json.encode(vector) == msgspec.json.encode(values)
    assert embed_counted(text, dimension)[1] == token_count(text) == len(words(text))


def test_fake_embedding_caches_stay_bounded_and_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_embeddings, "_CACHE_BOUND", 4)
    for i in range(60):
        text = f"word{i} other{i % 3} word{i}"
        assert embed(text, 32).literal() == _reference_embed(text, 32)[2]
    assert len(fake_embeddings._STEMS) <= 4 and len(fake_embeddings._TEXTS) <= 4
    assert len(fake_embeddings._WORD_SLOTS[32]) <= 4


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.one_of(st.text(max_size=80),
                             st.lists(st.sampled_from(_VOCABULARY), max_size=8).map(" ".join)),
                   min_size=1, max_size=4),
    dimension=st.one_of(st.integers(min_value=1, max_value=16), st.sampled_from([768, 1536])),
)
def test_frozen_answers_thaw_to_the_same_bytes(texts: list[str], dimension: int) -> None:
    # The engine's in-process fakes answer frozen vectors (no list built); thawed, they are the
    # very vectors and JSON bytes the fake provider answers over HTTP.
    for text in texts:
        sparse, count = fake_embeddings.embed_sparse(text, dimension)
        vector, same_count = embed_counted(text, dimension)
        assert count == same_count and len(sparse) == dimension
        thawed = sparse.thaw()
        assert type(thawed) is type(vector) and thawed.nonzero == vector.nonzero
        assert struct.pack(f"<{dimension}d", *thawed) == struct.pack(f"<{dimension}d", *vector)
        assert sparse.literal() == thawed.literal() == vector.literal()
        # The fake server writes a frozen vector's JSON from its non-zero values alone.
        assert fake_embeddings.json_array(sparse) == msgspec.json.encode(vector)
        assert vector.frozen().thaw() == vector
    vertex_url = ("https://h/v1/projects/p/locations/us-central1/publishers/google/models/"
                  "text-embedding-005:predict")
    vertex = (vertex_url,
              {"instances": [{"content": t} for t in texts],
               "parameters": {"outputDimensionality": dimension}})
    openai = ("https://api.openai.com/v1/embeddings",
              {"model": "text-embedding-3-small", "input": texts, "dimensions": dimension})
    for url, body in (vertex, openai):
        frozen = answer_request(url, body, frozen=True)
        encoder = msgspec.json.Encoder(enc_hook=lambda v: v.thaw())
        answer = msgspec.json.encode(answer_request(url, body))
        assert encoder.encode(frozen) == answer
        assert fake_server_payload(frozen) == answer  # what the fake server sends
