"""The provider catalogue (emulator/providers.py) is the one home of default URLs and limits:
the extension's SQL and the engine give the same default URL for every provider, model type
and name, and the fakes enforce the catalogue's limits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from emulator import providers
from emulator.engine.errors import ModelCallError
from emulator.engine.extract import EXTRACTORS, RAW_EXTRACTORS
from emulator.engine.request import ModelRequest
from emulator.engine.settings import EngineSettings
from emulator.engine.urls import resolve_url
from emulator.fakes.models import FakeModelError, answer_request
from emulator.fakes.rules import EMPTY_RULES
from tests.support.emulators import Emulator

NAMES = ("m1", "org/m2", "gemini-1.5-pro:streamGenerateContent", "")
SETTINGS = EngineSettings()
Connection = psycopg.Connection[tuple[object, ...]]


@pytest.fixture(scope="module")
def sql(emulator: Emulator) -> Iterator[Connection]:
    """A connection to a database of its own with the extension."""
    with psycopg.connect(emulator.dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS providers_test WITH (FORCE)")
        admin.execute("CREATE DATABASE providers_test")
    with psycopg.connect(emulator.dsn_for(dbname="providers_test"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION google_ml_integration")
        yield conn
    with psycopg.connect(emulator.dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS providers_test WITH (FORCE)")


def _resolved(provider: str, model_type: str, name: str, url: str | None) -> str | None:
    request = ModelRequest.parse({"model_id": "m", "provider": provider, "model_type": model_type,
                                  "qualified_name": name or None, "url": url})
    try:
        return resolve_url(request, SETTINGS, "p")
    except ModelCallError:
        return None


def test_sql_and_engine_agree_on_every_default_url(sql: Connection) -> None:
    combinations = list(itertools.product(providers.PROVIDERS, providers.MODEL_TYPES, NAMES))
    rows = sql.execute(
        """SELECT google_ml.generate_model_request_url(p::google_ml.model_provider,
                                                       t::google_ml.model_type, n)
             FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS c (p, t, n, i)
            ORDER BY i""",
        [list(column) for column in zip(*combinations, strict=True)]).fetchall()
    assert len(rows) == len(combinations)
    stored_urls = 0
    for (provider, model_type, name), (sql_url,) in zip(combinations, rows, strict=True):
        case = (provider, model_type, name)
        assert sql_url == providers.default_url(provider, model_type, name), case
        # What the SQL stores resolves where the engine sends a model registered without a URL.
        if sql_url is not None:
            stored_urls += 1
            assert isinstance(sql_url, str)
            assert _resolved(*case, sql_url) == _resolved(*case, None), case
    assert stored_urls > 0


def test_every_family_with_a_default_url_has_one_in_sql(sql: Connection) -> None:
    for family in providers.FAMILIES:
        for model_type in family.model_types:
            (url,) = sql.execute(
                "SELECT google_ml.generate_model_request_url(%s, %s, 'm1')",
                (family.provider, model_type)).fetchone() or (None,)
            assert (url is None) == (family.url is None), (family.name, model_type)


def test_vertex_ranking_url_is_built_by_the_engine_from_the_project() -> None:
    assert providers.default_url("google", "reranking", "semantic-ranker-default-003") is None
    url = _resolved("google", "reranking", "semantic-ranker-default-003", None)
    assert url == providers.DISCOVERY_ENGINE_BASE_URL + providers.RANKING_PATH.format(project="p")


@pytest.mark.parametrize(("path", "field", "limit"), [
    ("publishers/google/models/text-embedding-005:predict", "instances",
     providers.VERTEX_MAX_TEXTS),
    ("v1/embeddings", "input", providers.OPENAI_MAX_TEXTS),
])
def test_fakes_refuse_one_text_more_than_the_catalogue_allows(
        path: str, field: str, limit: int) -> None:
    texts: list[object] = ["a"] * limit
    if field == "instances":
        texts = [{"content": "a"} for _ in range(limit)]
    body = {field: texts, "model": "text-embedding-3-small"}
    answer_request(path, body, EMPTY_RULES)
    with pytest.raises(FakeModelError) as refused:
        answer_request(path, {**body, field: [*texts, texts[0]]}, EMPTY_RULES)
    assert refused.value.status == 400


def test_every_embedding_family_has_the_engine_readers_it_names() -> None:
    readers = {f.embeddings for f in providers.FAMILIES if f.embeddings is not None}
    assert readers == {providers.VERTEX_EMBEDDINGS, providers.OPENAI_EMBEDDINGS}
    assert readers <= set(EXTRACTORS) and readers <= set(RAW_EXTRACTORS)
