"""Model calls end to end: the real ``alloydb-ai-emulator serve`` (proxy, embedded PostgreSQL 18,
extension, engine), driven by psql, psycopg and asyncpg, with every provider request captured by
a real local HTTP server (issue 4, "Tests").

Two emulators: the session one (``--models fake``: known providers answered in process, custom
models over HTTP to their URL) and, for this module, a ``--models live`` one whose every Google
endpoint points at local servers: Vertex AI and Discovery Engine at a capture server that answers
in each provider's format, Secret Manager at a local REST stand-in, and the OAuth token URI of a
generated service-account file at a local token endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from emulator.fakes import embeddings
from emulator.fakes.embeddings import embed
from tests.support.databases import CYMBAL_TRANSFORMS, fresh_database, psql
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.http_servers import (
    HANG,
    CaptureServer,
    Reply,
    ScriptedServer,
    secret_manager,
    token_endpoint,
    write_service_account,
)

DB = "e2e_model_calls"
PROJECT = "e2e-project"
REGION = "europe-west4"
TOKEN = "ya29.e2e-local-access-token"
SECRET_PATH = f"projects/{PROJECT}/secrets/provider-key/versions/1"
SECRET_VALUE = "sk-e2e-NEVER-STORED-7f3a9c21"

SEED_GECKO = """SELECT
      google_ml.embedding(
        model_id => 'textembedding-gecko',
        content => 'AlloyDB is a managed, cloud-hosted SQL database service');
"""
SEED_GEMINI = """ SELECT
        json_array_elements(
        google_ml.predict_row(
            model_id => 'gemini-1.5-pro:generateContent',
            request_body => '{
        "contents": [
            {
                "role": "user",
                "parts": [
                    {
                        "text": "For TPCH database schema as mentioned here https://www.tpc.org/TPC_Documents_Current_Versions/pdf/TPC-H_v3.0.1.pdf , generate a SQL query to find all supplier names which are located in the India nation."
                    }
                ]
            }
        ]
        }'))-> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 -> 'text'; 
"""
SEED_ENABLE = """ALTER SYSTEM SET google_ml_integration.enable_model_support=on;
SELECT pg_reload_conf();
"""
STREAM_BODY = '{"contents": [{"role": "user", "parts": [{"text": "Name three rivers"}]}]}'
VERTEX_PATH = "projects/{p}/locations/{r}/publishers/google/models/{m}"

# The seed's custom model (Cymbal): input and output transforms and a header function, verbatim
# but for the names.
CYMBAL_FUNCTIONS = CYMBAL_TRANSFORMS + """
CREATE OR REPLACE FUNCTION cymbal_header_gen_fn(
  model_id VARCHAR(100),
  input_text TEXT
)
RETURNS JSON
LANGUAGE plpgsql
AS $$
#variable_conflict use_variable
DECLARE
  api_key VARCHAR(255) := 'cymbal-header-key';
  header_json JSON;
BEGIN
  header_json := json_build_object(
    'Content-Type', 'application/json',
    'Authorization', 'Bearer ' || api_key,
    'X-Cymbal-Model', model_id
  );
  RETURN header_json;
END;
$$;
"""


def as_float4(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def cymbal_reply(seen: Any) -> Reply:
    """The Cymbal endpoint: one 3-dimensional vector per prompt, from the prompt's length."""
    prompts = seen.json()["prompt"]
    return Reply(200, [[len(p) / 10, 0.5, -1.0] for p in prompts])


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module")
def dsn(emulator: Emulator, capture: CaptureServer) -> str:
    url = fresh_database(emulator, DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CYMBAL_FUNCTIONS)
        conn.execute("SET google_ml_integration.allow_http_endpoints = on")
        conn.execute(
            """CALL google_ml.create_model(
                 model_id => 'custom-embedding-model',
                 model_request_url => %s,
                 model_provider => 'custom',
                 model_type => 'text_embedding',
                 model_qualified_name => 'cymbal-embed-v1',
                 generate_headers_fn => 'cymbal_header_gen_fn',
                 model_in_transform_fn => 'cymbal_text_input_transform',
                 model_out_transform_fn => 'cymbal_text_output_transform')""",
            (f"{capture.url}/cymbal/models/text/embeddings/v1",),
        )
        conn.execute(
            """CALL google_ml.create_model(
                 model_id => 'custom-generic', model_request_url => %s,
                 model_provider => 'custom', model_type => 'generic')""",
            (f"{capture.url}/custom/flaky:generateContent",),
        )
    return url


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET google_ml_integration.allow_http_endpoints = on")
        yield conn


class Live:
    def __init__(self, emulator: Emulator, capture: CaptureServer, oauth: ScriptedServer,
                 secrets: ScriptedServer, dsn: str) -> None:
        self.emulator, self.capture, self.oauth, self.secrets, self.dsn = (
            emulator, capture, oauth, secrets, dsn)

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = psycopg.connect(self.dsn, autocommit=True)
        conn.execute("SET google_ml_integration.allow_http_endpoints = on")
        return conn


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with CaptureServer() as capture, token_endpoint(TOKEN) as oauth, \
            secret_manager({SECRET_PATH: SECRET_VALUE}) as secrets, \
            tempfile.TemporaryDirectory() as tmp:
        account = Path(tmp) / "service-account.json"
        write_service_account(str(account), f"{oauth.url}/token")
        emu = start_emulator(
            "--models", "live", "--vertex-base-url", capture.url,
            "--discovery-engine-base-url", capture.url,
            "--secret-manager-endpoint", secrets.url,
            "--google-project", PROJECT, "--google-region", REGION,
            "--max-retries", "2", "--log-level", "debug",
            env={"GOOGLE_APPLICATION_CREDENTIALS": str(account), "NO_GCE_CHECK": "True"},
        )
        try:
            dsn = fresh_database(emu, DB)
            yield Live(emu, capture, oauth, secrets, dsn)
        finally:
            stop_emulator(emu)


# -- the seed's calling statements, verbatim ----------------------------------------------------


def test_seed_statements_through_psql(dsn: str) -> None:
    out = psql(dsn, SEED_ENABLE + SEED_GECKO + SEED_GEMINI).stdout.splitlines()
    assert out[0] == "t"  # pg_reload_conf()
    vector = out[1]
    assert vector.startswith("{") and vector.endswith("}")
    assert len(vector.strip("{}").split(",")) == 768
    answer = json.loads(out[2])  # the '->' operator leaves a JSON string
    assert isinstance(answer, str) and answer
    assert psql(dsn, "SHOW google_ml_integration.enable_model_support;").stdout.strip() == "on"


def test_seed_statements_through_psycopg(db: psycopg.Connection[Any]) -> None:
    (vector,) = db.execute(SEED_GECKO).fetchone()  # type: ignore[misc]
    assert isinstance(vector, list) and len(vector) == 768
    assert all(isinstance(x, float) for x in vector)
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-3)
    rows = db.execute(SEED_GEMINI).fetchall()
    assert len(rows) == 1 and isinstance(rows[0][0], str) and rows[0][0]
    # deterministic: the same statement again gives the same answers
    assert db.execute(SEED_GECKO).fetchone() == (vector,)
    assert db.execute(SEED_GEMINI).fetchall() == rows


def test_embedding_with_a_bare_name_and_a_full_path(db: psycopg.Connection[Any]) -> None:
    text = "AlloyDB is a managed, cloud-hosted SQL database service"
    bare, full, registered = db.execute(
        "SELECT embedding('text-embedding-005', %(t)s),"
        "       embedding('projects/other-project/locations/us-east1/publishers/google/models/"
        "text-embedding-005', %(t)s),"
        "       google_ml.embedding('text-embedding-005', %(t)s)",
        {"t": text},
    ).fetchone()  # type: ignore[misc]
    assert len(bare) == len(full) == 768
    assert bare == full == registered
    other = db.execute("SELECT embedding('text-embedding-005', 'something else')").fetchone()
    assert other is not None and other[0] != bare


def test_ml_predict_row_stream_generate_content(db: psycopg.Connection[Any]) -> None:
    endpoint = ("projects/p1/locations/us-central1/publishers/google/models/"
                "gemini-1.5-pro:streamGenerateContent")
    (raw,) = db.execute("SELECT ml_predict_row(%s, %s)", (endpoint, STREAM_BODY)).fetchone()  # type: ignore[misc]
    assert isinstance(raw, list) and len(raw) >= 2  # a JSON array of chunks
    rows = db.execute(
        "SELECT json_array_elements(ml_predict_row(%s, %s))"
        " -> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 ->> 'text'",
        (endpoint, STREAM_BODY),
    ).fetchall()
    assert len(rows) == len(raw)
    assert "".join(r[0] for r in rows) == "".join(
        c["candidates"][0]["content"]["parts"][0]["text"] for c in raw)


def test_ml_predict_row_on_a_model_garden_path_without_a_verb_generates_content(
        db: psycopg.Connection[Any]) -> None:
    # AlloyDB's invoke-predictions page: ml_predict_row('projects/P/locations/R/publishers/
    # google/models/MODEL_ID', ...) "for example, gemini-pro", and the abbreviated
    # 'publishers/google/models/MODEL_ID'. A Gemini model answers :generateContent, not :predict.
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]})
    for endpoint in ("publishers/google/models/gemini-pro",
                     "projects/p1/locations/us-central1/publishers/google/models/gemini-pro"):
        (answer,) = db.execute("SELECT ml_predict_row(%s, %s)", (endpoint, body)).fetchone()  # type: ignore[misc]
        assert answer["candidates"][0]["content"]["parts"][0]["text"], endpoint


def test_results_have_the_declared_types(db: psycopg.Connection[Any]) -> None:
    row = db.execute(
        """SELECT pg_typeof(embedding('text-embedding-005', 'a')),
                  pg_typeof(google_ml.embedding('text-embedding-005', 'a')),
                  pg_typeof(ai.embedding('text-embedding-005', 'a')),
                  pg_typeof(google_ml.predict_row('gemini-1.5-pro:generateContent', %s)),
                  pg_typeof(ml_predict_row('publishers/google/models/gemini-1.5-pro:generateContent', %s)),
                  embedding('text-embedding-005', 'a')::vector(768)
                    <=> google_ml.embedding('text-embedding-005', 'a')::vector(768)""",
        (STREAM_BODY, STREAM_BODY),
    ).fetchone()
    assert row is not None
    assert row[:5] == ("real[]", "real[]", "real[]", "json", "json")
    assert abs(row[5]) < 1e-6
    # a table column of type vector(768) takes the cast result
    db.execute("CREATE TEMP TABLE t (v vector(768))")
    db.execute("INSERT INTO t VALUES (embedding('text-embedding-005', 'a')::vector(768))")
    assert db.execute("SELECT vector_dims(v) FROM t").fetchone() == (768,)


# -- each provider's request on the wire --------------------------------------------------------


def test_custom_model_request_headers_and_transforms(
    db: psycopg.Connection[Any], capture: CaptureServer
) -> None:
    capture.script("/cymbal/", Reply(200, [[0.25, 0.5, -1.0]]))
    (vec,) = db.execute(
        "SELECT google_ml.embedding('custom-embedding-model', 'hello cymbal')").fetchone()  # type: ignore[misc]
    assert vec == [0.25, 0.5, -1.0]  # through the output transform
    seen = capture.seen("/cymbal/")[-1]
    assert seen.method == "POST" and seen.path == "/cymbal/models/text/embeddings/v1"
    assert seen.json() == {"prompt": ["hello cymbal"]}  # the input transform's body, as is
    assert seen.headers["authorization"] == "Bearer cymbal-header-key"
    assert seen.headers["x-cymbal-model"] == "custom-embedding-model"
    assert seen.headers["content-type"].startswith("application/json")


def test_vertex_call_carries_the_service_account_token(live: Live, emulator: Emulator,
                                                       dsn: str) -> None:
    text = "hello from the live path"
    with live.connect() as conn:
        (vec,) = conn.execute("SELECT embedding('text-embedding-005', %s)", (text,)).fetchone()  # type: ignore[misc]
        (gen,) = conn.execute(
            "SELECT google_ml.predict_row('gemini-1.5-pro:generateContent', %s)", (STREAM_BODY,)
        ).fetchone()  # type: ignore[misc]
        other = ("projects/other-proj/locations/us-east1/publishers/google/models/"
                 "gemini-1.5-pro:generateContent")
        conn.execute("SELECT ml_predict_row(%s, %s)", (other, STREAM_BODY))
    emb = live.capture.seen("text-embedding-005:predict")[-1]
    assert emb.path == "/v1/" + VERTEX_PATH.format(
        p=PROJECT, r=REGION, m="text-embedding-005") + ":predict"
    body = emb.json()
    assert body["instances"] == [{"content": text}]
    assert emb.headers["authorization"] == f"Bearer {TOKEN}"
    assert len(vec) == 768
    # the token came from the local token endpoint, through the service-account file (JWT grant)
    grants = [r for r in live.oauth.requests if r.method == "POST"]
    assert grants and b"jwt-bearer" in grants[0].body
    # the live answer (from a server speaking Vertex's format) equals the built-in fake's
    with psycopg.connect(dsn, autocommit=True) as fake:
        assert fake.execute("SELECT embedding('text-embedding-005', %s)", (text,)).fetchone() == (vec,)
    gemini = live.capture.seen(f"/locations/{REGION}/publishers/google/models/"
                               "gemini-1.5-pro:generateContent")[-1]
    assert gemini.json() == json.loads(STREAM_BODY)  # the body is sent as is
    assert gemini.headers["authorization"] == f"Bearer {TOKEN}"
    assert gen[0]["candidates"][0]["content"]["parts"][0]["text"]
    assert live.capture.seen("/v1/" + other)  # a full path keeps its own project and region


def test_secret_manager_secret_becomes_a_bearer_token_and_is_never_stored(live: Live) -> None:
    url = live.capture.url
    with live.connect() as conn:
        conn.execute(
            """CALL
    google_ml.create_sm_secret(
      secret_id => 'key1',
      secret_path => %s)""", (SECRET_PATH,))
        conn.execute(
            """CALL
      google_ml.create_model(
        model_id => 'openai-small',
        model_provider => 'open_ai',
        model_request_url => %s,
        model_type => 'text_embedding',
        model_qualified_name => 'text-embedding-3-small',
        model_auth_type => 'secret_manager',
        model_auth_id => 'key1')""", (f"{url}/v1/embeddings",))
        conn.execute(
            """CALL
        google_ml.create_model(
          model_id => 'anthropic-opus',
          model_provider => 'anthropic',
          model_request_url => %s,
          model_auth_type => 'secret_manager',
          model_auth_id => 'key1',
          generate_headers_fn => 'google_ml.anthropic_claude_header_gen_fn')""",
            (f"{url}/v1/messages",))
        conn.execute(
            """CALL
      google_ml.create_model(
        model_id => 'custom-classification-model',
        model_provider => 'hugging_face',
        model_request_url => %s,
        model_qualified_name => 'facebook/bart-large-mnli',
        model_auth_type => 'secret_manager',
        model_auth_id => 'key1')""", (f"{url}/models/facebook/bart-large-mnli",))
        (vec,) = conn.execute("SELECT google_ml.embedding('openai-small', 'pay the bill')").fetchone()  # type: ignore[misc]
        claude_body = {"model": "claude-3-opus-20240229", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "Say hello"}]}
        (claude,) = conn.execute("SELECT google_ml.predict_row('anthropic-opus', %s)",
                                 (json.dumps(claude_body),)).fetchone()  # type: ignore[misc]
        hf_body = {"inputs": "I love this", "parameters": {"candidate_labels": ["pos", "neg"]}}
        conn.execute("SELECT google_ml.predict_row('custom-classification-model', %s)",
                     (json.dumps(hf_body),))
        stored = conn.execute("SELECT row_to_json(s)::text FROM google_ml.secrets s").fetchall()
        settings = conn.execute(
            "SELECT count(*) FROM pg_settings WHERE setting LIKE %s OR reset_val LIKE %s",
            (f"%{SECRET_VALUE}%", f"%{SECRET_VALUE}%")).fetchone()
        models = conn.execute("SELECT row_to_json(m)::text FROM google_ml.models m").fetchall()
    assert len(vec) == 1536
    openai = live.capture.seen("/v1/embeddings")[-1]
    assert openai.json()["model"] == "text-embedding-3-small"
    assert openai.json()["input"] in ("pay the bill", ["pay the bill"])
    assert openai.headers["authorization"] == f"Bearer {SECRET_VALUE}"
    anthropic = live.capture.seen("/v1/messages")[-1]
    assert anthropic.json() == claude_body
    assert anthropic.headers["x-api-key"] == SECRET_VALUE
    assert anthropic.headers["anthropic-version"] == "2023-06-01"
    assert claude["type"] == "message" and claude["content"][0]["text"]
    hf = live.capture.seen("/models/facebook/bart-large-mnli")[-1]
    assert hf.json() == hf_body
    assert hf.headers["authorization"] == f"Bearer {SECRET_VALUE}"
    # Secret Manager's REST API was asked for the version by its path
    accesses = [r.path for r in live.secrets.requests]
    assert any(p.startswith(f"/v1/{SECRET_PATH}:access") for p in accesses)
    # ... and the value is nowhere in the database nor in the emulator's log
    assert stored and all(SECRET_VALUE not in row[0] for row in stored)
    assert any(SECRET_PATH in row[0] for row in stored)
    assert all(SECRET_VALUE not in row[0] for row in models)
    assert settings == (0,)
    time.sleep(0.2)
    assert SECRET_VALUE not in "".join(live.emulator.output)


def test_warm_up_batches_long_documents_within_the_token_limit(live: Live) -> None:
    # 60 documents of about 3 KB: one Vertex AI request of all 60 would be over its 20,000-token
    # limit (the capture server answers as the fakes, which enforce it) and the warm-up would
    # fall back to one request per row.
    docs = [f"Document {i}: " + " ".join(f"term{i}x{j}" for j in range(300)) for i in range(60)]
    with live.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS long_docs")
        conn.execute("CREATE TABLE long_docs (id int PRIMARY KEY, body text, emb real[])")
        with conn.cursor().copy("COPY long_docs (id, body) FROM STDIN") as copy:
            for i, doc in enumerate(docs):
                copy.write_row((i, doc))
        before = len(live.capture.seen("text-embedding-005:predict"))
        conn.execute("UPDATE long_docs SET emb = embedding('text-embedding-005', body)")
        sent = live.capture.seen("text-embedding-005:predict")[before:]
        rows = conn.execute("SELECT body, emb FROM long_docs ORDER BY id").fetchall()
    batches = [r.json()["instances"] for r in sent]
    assert 1 < len(batches) <= 10, len(batches)  # batched, and not one request per row
    assert sorted(i["content"] for b in batches for i in b) == sorted(docs)
    assert all(sum(embeddings.limit_tokens(i["content"]) for i in b) <= 20_000 for b in batches)
    assert [as_float4(x) for x in rows[7][1]] == [as_float4(x) for x in embed(docs[7], 768)]


def test_multimodal_embeddings_wire_format(live: Live, dsn: str) -> None:
    image = base64.b64encode(b"\x89PNG fake image bytes").decode()
    with live.connect() as conn:
        text_vec, gcs_vec, bytes_vec, video_vec = conn.execute(
            """SELECT ai.text_embedding(model_id => 'multimodalembedding@001', content => 'a red bicycle'),
                      ai.image_embedding(model_id => 'multimodalembedding@001',
                                         image => 'gs://cymbal/bike.jpeg', mimetype => 'image/jpeg'),
                      ai.image_embedding('multimodalembedding@001', %s, 'image/png'),
                      ai.video_embedding(model_id => 'multimodalembedding@001',
                                         video => 'gs://cymbal/ride.mp4')""", (image,)
        ).fetchone()  # type: ignore[misc]
    sent = live.capture.seen("multimodalembedding@001:predict")[-4:]
    assert {r.path for r in sent} == {"/v1/" + VERTEX_PATH.format(
        p=PROJECT, r=REGION, m="multimodalembedding@001") + ":predict"}
    assert [r.json()["instances"] for r in sent] == [
        [{"text": "a red bicycle"}],
        [{"image": {"gcsUri": "gs://cymbal/bike.jpeg", "mimeType": "image/jpeg"}}],
        [{"image": {"bytesBase64Encoded": image, "mimeType": "image/png"}}],
        [{"video": {"gcsUri": "gs://cymbal/ride.mp4"}}],
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in sent)
    # the capture server answers as the fakes do: the same vectors come back in fake mode
    assert {len(v) for v in (text_vec, gcs_vec, bytes_vec, video_vec[0])} == {1408}
    assert len(video_vec) == 1  # one embedding per segment: a 16-second video, one segment
    with psycopg.connect(dsn, autocommit=True) as fake:
        assert fake.execute(
            "SELECT ai.text_embedding('multimodalembedding@001', 'a red bicycle'),"
            "       ai.video_embedding('multimodalembedding@001', 'gs://cymbal/ride.mp4')"
        ).fetchone() == (text_vec, video_vec)
    assert [as_float4(x) for x in text_vec] == [as_float4(x) for x in embed("a red bicycle", 1408)]
    assert gcs_vec != bytes_vec  # different images, different vectors


def test_multimodal_embeddings_refuse_what_they_cannot_embed(db: psycopg.Connection[Any]) -> None:
    cases = [
        ("SELECT ai.image_embedding('multimodalembedding@001', 'not base64!')", "22023",
         "Cloud Storage URI (gs://bucket/object) or base64"),
        ("SELECT ai.image_embedding('multimodalembedding@001', '')", "22023",
         "Cloud Storage URI (gs://bucket/object) or base64"),
        ("SELECT ai.video_embedding('multimodalembedding@001', 'https://example.com/v.mp4')",
         "22023", "video must be a Cloud Storage URI"),
        ("SELECT ai.text_embedding('text-embedding-005', 'x')", "22023",
         'model "text-embedding-005" is a text_embedding model'),
        ("SELECT ai.text_embedding('no such model!', 'x')", "42704",
         'model "no such model!" does not exist'),
    ]
    for sql, sqlstate, message in cases:
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql)
        assert caught.value.sqlstate == sqlstate, sql
        assert message in str(caught.value), sql
    assert db.execute("SELECT ai.image_embedding('multimodalembedding@001', NULL)").fetchone() == (None,)


def test_ranking_request_format(live: Live) -> None:
    with live.connect() as conn:
        conn.execute("SET google_ml_integration.enable_ai_query_engine = on")
        rows = conn.execute(
            "SELECT index, score FROM ai.rank(model_id => 'semantic-ranker-default-003',"
            " search_string => 'red fruit', documents => ARRAY['a red apple', 'a blue car',"
            " 'red cherries'])").fetchall()
    seen = live.capture.seen(":rank")[-1]
    assert seen.path == (f"/v1/projects/{PROJECT}/locations/global/rankingConfigs/"
                         "default_ranking_config:rank")
    body = seen.json()
    assert body["model"] == "semantic-ranker-default-003"
    assert body["query"] == "red fruit"
    assert [r["content"] for r in body["records"]] == ["a red apple", "a blue car", "red cherries"]
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert sorted(r[0] for r in rows) == [1, 2, 3]
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)


# -- prepared statements --------------------------------------------------------------------------


def test_psycopg_prepared_statement_reused_with_new_parameters(
    db: psycopg.Connection[Any],
) -> None:
    texts = [f"prepared text number {i}" for i in range(6)]
    expected = [
        db.execute(f"SELECT embedding('text-embedding-005', '{t}')").fetchone()[0]  # type: ignore[index]
        for t in texts
    ]
    sql = "SELECT google_ml.embedding('text-embedding-005', %s)::vector(768)::real[]"
    got = [db.execute(sql, (t,), prepare=True).fetchone()[0] for t in texts]  # type: ignore[index]
    assert got == expected
    prepared = db.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%embedding%'"
    ).fetchone()
    assert prepared is not None and prepared[0] >= 1  # one server-side statement, six executions
    # predict_row with a json parameter
    answers = [
        db.execute("SELECT google_ml.predict_row('gemini-1.5-pro:generateContent', %s::json)",
                   (json.dumps({"contents": [{"role": "user", "parts": [{"text": q}]}]}),),
                   prepare=True).fetchone()[0]  # type: ignore[index]
        for q in ("one", "two", "three")
    ]
    texts_out = [a[0]["candidates"][0]["content"]["parts"][0]["text"] for a in answers]
    assert len(set(texts_out)) == 3


def test_asyncpg_prepared_statement_reused(dsn: str, db: psycopg.Connection[Any]) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    texts = [f"asyncpg text {i}" for i in range(5)]
    expected = [
        db.execute("SELECT embedding('text-embedding-005', %s)", (t,)).fetchone()[0]  # type: ignore[index]
        for t in texts
    ]

    async def run() -> list[Any]:
        conn = await asyncpg.connect(dsn)
        try:
            stmt = await conn.prepare("SELECT embedding('text-embedding-005', $1)")
            out = [await stmt.fetchval(t) for t in texts]
            many = await conn.fetch(
                "SELECT t, google_ml.embedding('text-embedding-005', t) AS e"
                " FROM unnest($1::text[]) AS t", texts)
            assert [list(r["e"]) for r in many] == [list(x) for x in out]
            return out
        finally:
            await conn.close()

    got = asyncio.run(run())
    # asyncpg decodes float4 in binary, psycopg parses PostgreSQL's shortest exact text: the
    # same float4 values
    assert [list(g) for g in got] == [[as_float4(x) for x in e] for e in expected]


# -- retries, failures, cancellation --------------------------------------------------------------


def test_retry_after_429_then_success(db: psycopg.Connection[Any], capture: CaptureServer) -> None:
    body = '{"contents": [{"role": "user", "parts": [{"text": "retry me"}]}]}'
    before = len(capture.seen("/custom/flaky"))
    capture.script("/custom/flaky", Reply(429, {"error": {"code": 429, "message": "slow down"}},
                                          {"Retry-After": "1"}))
    started = time.monotonic()
    (answer,) = db.execute("SELECT google_ml.predict_row('custom-generic', %s)", (body,)).fetchone()  # type: ignore[misc]
    elapsed = time.monotonic() - started
    seen = capture.seen("/custom/flaky")[before:]
    assert len(seen) == 2  # the 429, then the retry that succeeded
    assert seen[0].body == seen[1].body
    assert elapsed >= 0.9  # Retry-After honoured
    assert answer["candidates"][0]["content"]["parts"][0]["text"]


def test_a_model_that_keeps_failing(live: Live) -> None:
    url = live.capture.url
    error_body = {"error": {"code": 500, "message": "backend exploded", "status": "INTERNAL"}}
    with live.connect() as conn:
        conn.execute(
            "CALL google_ml.create_model(model_id => 'always-500', model_request_url => %s,"
            " model_provider => 'custom', model_type => 'generic')",
            (f"{url}/broken/m:generateContent",))
        live.capture.script("/broken/", *[Reply(500, error_body)] * 3)
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT google_ml.predict_row('always-500', '{\"x\": 1}')")
        err = info.value
        assert err.sqlstate == "38000"
        assert "always-500" in (err.diag.message_primary or "")
        detail = err.diag.message_detail or ""
        assert "500" in detail and "backend exploded" in detail
        assert "Traceback" not in str(err)
        assert len(live.capture.seen("/broken/")) == 3  # --max-retries 2
        # the session is usable, and so is the model once the provider recovers
        assert conn.execute("SELECT 1").fetchone() == (1,)
        (ok,) = conn.execute("SELECT google_ml.predict_row('always-500', %s)",
                             (STREAM_BODY,)).fetchone()  # type: ignore[misc]
        assert ok["candidates"]
        # inside a transaction: the error aborts it exactly as PostgreSQL would
        conn.autocommit = False
        live.capture.script("/broken/", *[Reply(500, error_body)] * 3)
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT google_ml.predict_row('always-500', '{\"x\": 2}')")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT 2").fetchone() == (2,)
        conn.rollback()


def test_cancel_during_a_slow_model_call(db: psycopg.Connection[Any], capture: CaptureServer) -> None:
    capture.closed_while_waiting.clear()
    capture.script("/custom/flaky", HANG)
    timer = threading.Timer(0.5, db.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.execute("SELECT google_ml.predict_row('custom-generic', %s)", (STREAM_BODY,))
    assert time.monotonic() - started < 15  # the server never answers: not a hang
    assert db.execute("SELECT 1 FROM pg_sleep(0.5)").fetchone() == (1,)
    # the engine abandoned the HTTP request instead of waiting for it
    assert capture.closed_while_waiting.wait(5)
    (answer,) = db.execute("SELECT google_ml.predict_row('custom-generic', %s)",
                           (STREAM_BODY,)).fetchone()  # type: ignore[misc]
    assert answer["candidates"]


def wait_until_waiting_for_the_engine(conn: psycopg.Connection[Any], pid: int) -> None:
    """Until backend ``pid`` waits for the engine's answer (at most 15 s)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'DblinkGetResult'", (pid,)
    ).fetchone():
        time.sleep(0.05)


def test_pg_cancel_backend_from_another_session_ends_the_call(
        dsn: str, db: psycopg.Connection[Any], capture: CaptureServer) -> None:
    if db.info.server_version < 170000:
        pytest.skip("dblink waits interruptibly from PostgreSQL 17 on")
    capture.closed_while_waiting.clear()
    capture.script("/custom/flaky", HANG)
    with psycopg.connect(dsn, autocommit=True) as victim:
        victim.execute("SET google_ml_integration.allow_http_endpoints = on")
        (pid,) = victim.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]

        def cancel_when_waiting() -> None:
            with psycopg.connect(dsn, autocommit=True) as admin:
                wait_until_waiting_for_the_engine(admin, pid)
                admin.execute("SELECT pg_cancel_backend(%s)", (pid,))

        canceller = threading.Thread(target=cancel_when_waiting)
        canceller.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            victim.execute("SELECT google_ml.predict_row('custom-generic', %s)", (STREAM_BODY,))
        canceller.join(20)
        # the engine gave up the HTTP request (the server never answers)
        assert capture.closed_while_waiting.wait(10)
        # and the session goes on: the next call opens a new engine connection
        (answer,) = victim.execute("SELECT google_ml.predict_row('custom-generic', %s)",
                                   (STREAM_BODY,)).fetchone()  # type: ignore[misc]
        assert answer["candidates"]


def test_a_backend_terminated_during_its_call_abandons_the_provider_request(
        dsn: str, db: psycopg.Connection[Any], capture: CaptureServer) -> None:
    if db.info.server_version < 170000:
        pytest.skip("dblink waits interruptibly from PostgreSQL 17 on")
    capture.closed_while_waiting.clear()
    capture.script("/custom/flaky", HANG)
    victim = psycopg.connect(dsn, autocommit=True)
    victim.execute("SET google_ml_integration.allow_http_endpoints = on")
    (pid,) = victim.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
    failure: list[BaseException] = []

    def call() -> None:
        try:
            victim.execute("SELECT google_ml.predict_row('custom-generic', %s)", (STREAM_BODY,))
        except psycopg.Error as exc:
            failure.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_until_waiting_for_the_engine(db, pid)
    assert db.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    # the engine gives up the HTTP request (it would otherwise wait for --read-timeout)
    assert capture.closed_while_waiting.wait(10)
    caller.join(15)
    assert not caller.is_alive() and failure  # the victim's session ended with an error
    victim.close()
    assert db.execute("SELECT 1").fetchone() == (1,)  # neighbours are undisturbed


def test_cancel_during_a_fake_model_call_with_latency() -> None:
    emu = start_emulator("--fake-latency-ms", "20000")
    try:
        with emu.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
        with emu.connect() as conn:
            threading.Timer(0.5, conn.cancel).start()
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT embedding('text-embedding-005', 'slow')")
            assert time.monotonic() - started < 15  # not the 20 s of fake latency
            # the cancel ends that statement only: a signal that reached the backend late
            # would cancel this one
            assert conn.execute("SELECT 1 FROM pg_sleep(0.5)").fetchone() == (1,)
    finally:
        stop_emulator(emu)


# -- who may call ----------------------------------------------------------------------------------


def test_non_superuser_calls_models(emulator: Emulator, dsn: str, capture: CaptureServer) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS e2e_app_user")
        admin.execute("CREATE ROLE e2e_app_user LOGIN PASSWORD 'app-pw'")
        admin.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml TO e2e_app_user;")
        expected = admin.execute("SELECT embedding('text-embedding-005', 'from a user')").fetchone()
    user_dsn = emulator.dsn_for(user="e2e_app_user", dbname=DB, password="app-pw")
    with psycopg.connect(user_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (False,)
        assert conn.execute("SELECT embedding('text-embedding-005', 'from a user')"
                            ).fetchone() == expected
        (gen,) = conn.execute("SELECT google_ml.predict_row('gemini-1.5-pro:generateContent', %s)",
                              (STREAM_BODY,)).fetchone()  # type: ignore[misc]
        assert gen[0]["candidates"]  # AlloyDB's shape: the response in a JSON array
        conn.execute("SET google_ml_integration.allow_http_endpoints = on")
        capture.script("/cymbal/", Reply(200, [[1.0, 2.0, 3.0]]))
        assert conn.execute("SELECT google_ml.embedding('custom-embedding-model', 'u')"
                            ).fetchone() == ([1.0, 2.0, 3.0],)
        # the callback password stays out of reach, even with the documented table grants
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM google_ml._engine_endpoint")


def test_direct_connection_is_told_to_connect_through_the_emulator(
    emulator: Emulator, dsn: str
) -> None:
    direct = f"postgresql://postgres@{emulator.direct_host}:{emulator.direct_port}/{DB}"
    with psycopg.connect(direct, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT embedding('text-embedding-005', 'direct')")
        err = info.value
        assert err.sqlstate == "08004"
        text = " ".join(filter(None, (err.diag.message_primary, err.diag.message_hint)))
        assert "through the emulator" in text
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_model_support_off_is_an_error(db: psycopg.Connection[Any]) -> None:
    """Model endpoint management off: its functions refuse (55000); embedding() with a Vertex AI
    model name predates it and answers (tests/docs: the older work-with-embeddings page)."""
    db.execute("SET google_ml_integration.enable_model_support = off")
    assert db.execute("SELECT array_length(embedding('text-embedding-005', 'x'), 1)"
                      ).fetchone() == (768,)
    for sql in ("SELECT google_ml.embedding('text-embedding-005', 'x')",
                "SELECT google_ml.predict_row('gemini-1.5-pro:generateContent', '{}')"):
        with pytest.raises(psycopg.Error) as info:
            db.execute(sql)
        assert info.value.sqlstate == "55000"
        assert "enable_model_support" in str(info.value)
    db.execute("RESET google_ml_integration.enable_model_support")
    assert db.execute("SELECT array_length(embedding('text-embedding-005', 'x'), 1)"
                      ).fetchone() == (768,)


def test_forecast_speaks_the_timesfm_endpoint_format(live: Live) -> None:
    """ai.forecast in live mode: the request a TimesFM endpoint takes, and its deciles read back
    as the interval (at conf_level 0.8 exactly p10 and p90)."""
    endpoint = f"projects/{PROJECT}/locations/{REGION}/endpoints/4242"
    answer: dict[str, Any] = {"point_forecast": [21.0, 22.5]}
    for decile in range(1, 10):
        answer[f"p{decile * 10}"] = [21.0 + (decile - 5) * 0.5, 22.5 + (decile - 5) * 0.75]
    live.capture.script("/endpoints/4242:predict",
                        Reply(200, {"predictions": [answer], "deployedModelId": "1"}))
    with live.connect() as conn:
        conn.execute("SET google_ml_integration.enable_forecasting = on")
        conn.execute(
            """CALL google_ml.create_model(
                 model_id => 'timesfm_live', model_qualified_name => 'timesfm_v2',
                 model_type => 'ts_forecasting', model_provider => 'google',
                 model_request_url => %s)""",
            (f"https://{REGION}-aiplatform.googleapis.com/v1/{endpoint}:predict",))
        rows = conn.execute(
            """SELECT * FROM ai.forecast(model_id => 'timesfm_live',
                 source_query => 'SELECT d, v FROM (VALUES (date ''2025-05-01'', 18),
                   (date ''2025-05-03'', 20), (date ''2025-05-02'', 19)) AS s (d, v)',
                 data_col => 'v', timestamp_col => 'd', horizon => 2, conf_level => 0.8)"""
        ).fetchall()
    seen = live.capture.seen("/endpoints/4242:predict")[-1]
    assert seen.path == f"/v1/{endpoint}:predict"
    assert seen.json() == {"instances": [{"input": [18.0, 19.0, 20.0], "horizon": 2}]}
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert [(r[0].day, r[1], r[2]) for r in rows] == [(4, 21.0, 0.8), (5, 22.5, 0.8)]
    assert [(r[3], r[4]) for r in rows] == [
        (pytest.approx(19.0), pytest.approx(23.0)), (pytest.approx(19.5), pytest.approx(25.5))]
