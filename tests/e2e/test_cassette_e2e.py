"""Record a session through ``serve --models record`` against local servers that speak Vertex AI's
formats, then replay it through ``serve --models replay`` with those servers stopped and no
credentials: the same vectors, generated text and ranks, with the warm-up batching the texts
when recording and not when replaying. An unrecorded call is a clear SQL error; the inspector
shows the calls (its HTTP API and the ``alloydb_ai_emulator.calls`` view).
"""

from __future__ import annotations

import json
import re
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.databases import fresh_database
from tests.support.emulators import Emulator, start_emulator, stop_emulator
from tests.support.http_servers import CaptureServer, token_endpoint, write_service_account

DB = "e2e_cassette"
TOKEN = "ya29.cassette-e2e-token-NEVER-WRITTEN"
DOCS = ["AlloyDB runs PostgreSQL", "a red apple", "late delivery of the parcel", "cats and dogs",
        "the sea at night"]

SESSION = [
    ("vectors", "UPDATE docs SET emb = google_ml.embedding('text-embedding-005', body)"),
    ("vectors", "SELECT id, emb FROM docs ORDER BY id"),
    ("text", "SELECT ai.generate('Say hello to the replay')"),
    ("ranks", ("SELECT index, score FROM ai.rank('semantic-ranker-default-003', "
              "'late delivery', ARRAY['on time', 'the parcel came late', 'cats'])")),
    ("predict", ("SELECT google_ml.predict_row('gemini-1.5-pro:generateContent', "
                "'{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"Hi\"}]}]}')")),
]


def run_session(emulator: Emulator) -> dict[str, Any]:
    dsn = fresh_database(emulator, DB)
    answers: dict[str, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {DB} SET google_ml_integration.enable_ai_query_engine = on")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, body text, emb real[])")
        conn.cursor().executemany("INSERT INTO docs (id, body) VALUES (%s, %s)",
                                  list(enumerate(DOCS)))
        for name, sql in SESSION:
            cur = conn.execute(sql)
            if cur.description is not None:
                answers[name] = cur.fetchall()
    return answers


def inspector_url(emulator: Emulator) -> str:
    for line in emulator.output:
        match = re.match(r"inspector: (http://\S+/)", line)
        if match:
            return match.group(1)
    raise AssertionError("no inspector line in:\n" + "".join(emulator.output))


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[Path, dict[str, Any], CaptureServer]]:
    with CaptureServer() as capture, token_endpoint(TOKEN) as oauth, \
            tempfile.TemporaryDirectory() as tmp:
        account = Path(tmp) / "service-account.json"
        write_service_account(str(account), f"{oauth.url}/token")
        cassette = Path(tmp) / "session.jsonl"
        emulator = start_emulator(
            "--models", "record", "--cassette", str(cassette),
            "--vertex-base-url", capture.url, "--discovery-engine-base-url", capture.url,
            "--google-project", "rec-project",
            env={"GOOGLE_APPLICATION_CREDENTIALS": str(account), "NO_GCE_CHECK": "True"})
        try:
            answers = run_session(emulator)
            # Without --inspector-port the view says how to turn the inspector on.
            with psycopg.connect(emulator.dsn_for(dbname=DB), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION alloydb_ai_emulator")
                with pytest.raises(psycopg.Error) as off:
                    conn.execute("SELECT * FROM alloydb_ai_emulator.calls")
            assert off.value.sqlstate == "55000"
            assert "--inspector-port" in (off.value.diag.message_hint or "")
        finally:
            stop_emulator(emulator)
        yield cassette, answers, capture


def test_record_then_replay_offline_gives_identical_results(
    recorded: tuple[Path, dict[str, Any], CaptureServer],
) -> None:
    cassette, answers, capture = recorded
    # Recording went to the provider, with the warm-up's batch of five texts in one request.
    batches = [r.json()["instances"] for r in capture.seen("text-embedding-005:predict")]
    assert [len(b) for b in batches] == [len(DOCS)]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}"
               for r in capture.seen(":predict"))
    text = cassette.read_text()
    assert TOKEN not in text and "Bearer" not in text
    assert sum(json.loads(line)["kind"] == "embedding" for line in text.splitlines()) == len(DOCS)
    assert all(row[1] is not None for row in answers["vectors"])

    # Replay: no provider, no credentials, no warm-up (one request per row).
    before = len(capture.requests)
    emulator = start_emulator("--models", "replay", "--cassette", str(cassette),
                              "--warmup", "off", "--inspector-port", "0",
                              env={"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json"})
    try:
        replayed = run_session(emulator)
        calls = json.load(urllib.request.urlopen(inspector_url(emulator) + "api/calls"))
        dsn = emulator.dsn_for(dbname=DB)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION alloydb_ai_emulator")
            viewed = conn.execute(
                "SELECT model_id, route, batch_size, sqlstate FROM alloydb_ai_emulator.calls "
                "WHERE model_id = 'text-embedding-005'").fetchall()
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("SELECT google_ml.embedding('text-embedding-005', 'never recorded')")
            conn.execute("CREATE ROLE cassette_viewer LOGIN")
            with psycopg.connect(emulator.dsn_for(user="cassette_viewer", dbname=DB),
                                 autocommit=True) as other:
                # another role sees (and clears) none of postgres's calls
                assert other.execute("SELECT count(*) FROM alloydb_ai_emulator.calls"
                                     ).fetchone() == (0,)
                assert other.execute("SELECT alloydb_ai_emulator.clear_calls()"
                                     ).fetchone() == (0,)
            cleared = conn.execute("SELECT alloydb_ai_emulator.clear_calls()").fetchone()
            left = conn.execute("SELECT count(*) FROM alloydb_ai_emulator.calls").fetchone()
    finally:
        stop_emulator(emulator)
    assert len(capture.requests) == before  # nothing reached the (still running) server
    assert replayed == answers
    embeds = [c for c in calls if c["model_id"] == "text-embedding-005"]
    assert len(embeds) == len(DOCS) and all(c["batch_size"] == 1 for c in embeds)
    assert all(c["route"] == "replay" and c["database"] == DB and c["role"] == "postgres"
               for c in embeds)
    assert sorted(viewed) == sorted([("text-embedding-005", "replay", 1, None)] * len(DOCS))
    error = caught.value.diag
    assert error.sqlstate == "38000"
    assert 'model "text-embedding-005"' in (error.message_primary or "")
    assert "--models record" in (error.message_hint or "")
    assert cleared is not None and cleared[0] >= len(DOCS) + 1
    assert left == (0,)
