"""The provider catalogue (emulator/providers.py) is the one home of what the emulator knows of
the providers: the extension's SQL and the engine give the same default URL for every provider,
model type and name; the fakes enforce the catalogue's limits and speak the format its routes
name; the pre-registered rows, Anthropic's header and the engine's faked providers are the
catalogue's; and no second copy of its facts is written elsewhere."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from emulator import providers
from emulator.engine.errors import ModelCallError
from emulator.engine.extract import EXTRACTORS, RAW_EXTRACTORS
from emulator.engine.request import ModelRequest
from emulator.engine.settings import EngineSettings
from emulator.engine.urls import resolve_url
from emulator.engine_factory import engine_with_fakes
from emulator.extension_build import source_dir
from emulator.fakes.models import FakeModelError, answer_request, error_for_path
from emulator.fakes.rules import EMPTY_RULES
from tests.support.emulators import Emulator
from tests.support.paths import REPO

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


# -- pre-registered models ------------------------------------------------------------------------

PREREGISTERED_ROWS = """
    SELECT id, model_type::text, request_url, qualified_name, auth_type::text,
           input_transform_fn, output_transform_fn, input_batch_transform_fn,
           output_batch_transform_fn
      FROM google_ml.models WHERE is_preregistered ORDER BY id"""


def _catalogue_rows(version: str) -> list[tuple[Any, ...]]:
    key = tuple(int(p) for p in version.split("."))
    return sorted((m.id, m.model_type, m.url, m.qualified_name, providers.AUTH_IAM, *m.transforms)
                  for m in providers.PREREGISTERED
                  if tuple(int(p) for p in m.since.split(".")) <= key)


def test_the_preregistered_rows_are_the_catalogue_s(sql: Connection) -> None:
    rows = sql.execute(PREREGISTERED_ROWS).fetchall()
    assert rows == _catalogue_rows("99") and len(rows) == len(providers.PREREGISTERED)


def test_each_version_preregisters_the_models_of_its_blocks(sql: Connection) -> None:
    try:
        for version, count in (("1.3", 6), ("1.5.2", 11)):
            sql.execute("DROP EXTENSION google_ml_integration CASCADE")
            sql.execute(f"CREATE EXTENSION google_ml_integration VERSION '{version}'")
            rows = sql.execute(PREREGISTERED_ROWS).fetchall()
            assert rows == _catalogue_rows(version) and len(rows) == count, version
    finally:
        sql.execute("DROP EXTENSION IF EXISTS google_ml_integration CASCADE")
        sql.execute("CREATE EXTENSION google_ml_integration")


def test_a_preregistered_url_resolves_like_no_url() -> None:
    for model in providers.PREREGISTERED:
        case = ("google", model.model_type, model.qualified_name)
        assert _resolved(*case, model.url) is not None, model.id
        if ":" not in model.id:  # the 1.4.2 rows name their verb in the id, not the name
            assert _resolved(*case, model.url) == _resolved(*case, None), model.id


# -- verbs ----------------------------------------------------------------------------------------


def test_a_stored_url_without_a_verb_resolves_like_the_default_url() -> None:
    # What a user stores (publishers/google/models/M, as AlloyDB's own default without the verb)
    # goes where the model registered without a URL goes.
    for family in providers.FAMILIES:
        if family.provider != "google" or family.url is None:
            continue
        for model_type in family.model_types:
            bare = family.url.replace("{name}", "m1")
            assert _resolved("google", model_type, "m1", bare) == _resolved(
                "google", model_type, "m1", None), (family.name, model_type)


# -- routes: which format a path speaks -----------------------------------------------------------


def _route_path(route: providers.Route) -> str:
    if route is providers.HUGGING_FACE_ROUTE:
        return "/models/org/m1"
    if route.suffix.startswith(":"):
        return "/v1/projects/p/locations/r/publishers/google/models/m1" + route.suffix
    return "/v1" + route.suffix


def _error_shape(body: Any) -> str:
    """Whose error a fake's refusal body looks like."""
    if body.get("type") == "error":
        return "anthropic"
    if isinstance(body.get("error"), str):
        return "hugging_face"
    return "google" if "status" in body["error"] else "open_ai"


def test_every_default_url_speaks_the_format_of_its_provider() -> None:
    for family in providers.FAMILIES:
        for model_type in family.model_types if family.url is not None else ():
            url = providers.default_url(family.provider, model_type, "m1")
            assert url is not None
            found = providers.route(urlsplit(url).path if "://" in url else url)
            assert found is not None and found.provider == family.provider, (family.name, url)


@pytest.mark.parametrize("route", [*providers.ROUTES, providers.HUGGING_FACE_ROUTE],
                         ids=lambda r: r.api)
def test_the_fakes_answer_each_route_as_its_provider(route: providers.Route) -> None:
    path = _route_path(route)
    assert providers.route(path) is route
    assert _error_shape(error_for_path(path, 429, "slow down").body) == route.provider
    try:
        answer_request(path, None, EMPTY_RULES)  # no body: refused by the route's own fake
    except FakeModelError as refused:
        assert _error_shape(refused.body) == route.provider
    else:
        assert route.api == "gemini_count_tokens"  # counts nothing, as Gemini does


def test_a_vertex_path_with_an_unknown_verb_is_not_taken_for_hugging_face() -> None:
    path = "/v1/projects/p/locations/r/publishers/google/models/m1:nope"
    assert providers.route(path) is None
    with pytest.raises(FakeModelError) as refused:
        answer_request(path, {"inputs": "x"}, EMPTY_RULES)
    assert refused.value.status == 404 and _error_shape(refused.value.body) == "google"


@pytest.mark.parametrize(("reader", "body"), [
    (providers.VERTEX_EMBEDDINGS, {"instances": [{"content": "a b"}, {"content": "c"}]}),
    (providers.OPENAI_EMBEDDINGS, {"input": ["a b", "c"], "model": "text-embedding-3-small"}),
])
def test_the_family_s_reader_reads_the_fake_answer_at_its_default_url(
        reader: str, body: dict[str, Any]) -> None:
    (family,) = [f for f in providers.FAMILIES if f.embeddings == reader]
    url = providers.default_url(family.provider, "text_embedding", "text-embedding-005")
    assert url is not None
    literals = EXTRACTORS[reader](answer_request(url, body, EMPTY_RULES))
    assert literals is not None and len(literals) == 2


# -- faked providers, Anthropic -------------------------------------------------------------------


def test_the_engine_fakes_the_catalogue_s_providers_and_sends_custom_ones() -> None:
    assert providers.FAKED_PROVIDERS == set(providers.PROVIDERS) - {"custom"}
    engine = engine_with_fakes()
    for provider in providers.PROVIDERS:
        request = ModelRequest.parse({"model_id": "m", "provider": provider, "url": "http://x/y"})
        assert engine.is_faked(request) == (provider in providers.FAKED_PROVIDERS), provider


def test_the_anthropic_header_function_answers_the_catalogue_s_version(sql: Connection) -> None:
    (headers,) = sql.execute(
        "SELECT google_ml.anthropic_claude_header_gen_fn('m', '{}')").fetchone() or (None,)
    assert headers == {providers.ANTHROPIC_VERSION_HEADER: providers.ANTHROPIC_VERSION}


# -- one home -------------------------------------------------------------------------------------

# Facts of the catalogue that no other source may write down again.
_TEXT_FACTS = (providers.ANTHROPIC_VERSION,
               *(urlsplit(f.url).hostname or "" for f in providers.FAMILIES
                 if f.url is not None and "://" in f.url))
_NUMBER_FACTS = (providers.VERTEX_MAX_TEXTS, providers.VERTEX_MAX_TOKENS,
                 providers.OPENAI_MAX_TEXTS, providers.OPENAI_MAX_TOKENS,
                 providers.RANKING_MAX_RECORDS)


def _sql_code_lines() -> Iterator[tuple[str, str]]:
    for path in sorted(source_dir().glob("*.sql")):
        for line in path.read_text().splitlines():
            code = line.split("--", 1)[0]
            if code.strip():
                yield path.name, code


def test_the_sql_sources_take_the_catalogue_s_facts_from_it() -> None:
    copies: list[tuple[str, str]] = []
    for name, code in _sql_code_lines():
        if any(fact in code for fact in _TEXT_FACTS):
            copies.append((name, code))
        if any(re.search(rf"(?<![\w.]){n}(?![\w.])", code) for n in _NUMBER_FACTS):
            copies.append((name, code))
        if re.search(r"_ai_batch\([^)]*,\s*(coalesce\([^)]*,\s*)?\d", code):
            copies.append((name, code))  # the AI functions' batch: {{LLM_BATCH_PROMPTS}}
    assert not copies, f"write {{{{NAME}}}} of emulator/providers.py instead: {copies}"


def test_the_python_sources_take_the_catalogue_s_facts_from_it() -> None:
    copies: list[tuple[str, int, object]] = []
    for path in sorted((REPO / "emulator").rglob("*.py")):
        if path.name == "providers.py":
            continue
        fakes = "fakes" in path.parts
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
                continue
            if isinstance(node.value, str) and any(f in node.value for f in _TEXT_FACTS):
                copies.append((str(path.relative_to(REPO)), node.lineno, node.value[:60]))
            # The fakes' limits are the catalogue's numbers (200 aside: an HTTP status there).
            if (fakes and isinstance(node.value, int) and node.value in _NUMBER_FACTS
                    and node.value != providers.RANKING_MAX_RECORDS):
                copies.append((str(path.relative_to(REPO)), node.lineno, node.value))
    assert not copies, f"import these from emulator/providers.py: {copies}"
