"""The provider catalogue: what the emulator knows about each model provider, written once.

Per provider and model family (``FAMILIES``): the model types it serves, the default request URL
and verb a model gets when it is registered without one, the per-request limits of its batch API
(texts and tokens), and the name of the reader that takes embeddings out of its answers. Beside
them: which wire format a request path speaks (``ROUTES``, ``route``), the verb a Vertex AI path
without one gets (``vertex_verb``), the providers the fake models answer (``FAKED_PROVIDERS``),
Anthropic's version header, the AI functions' default batch of prompts, and the models every
database has without ``create_model`` (``PREREGISTERED``). The facts come from Google's
documentation (reference ``google_ml_integration.md``, section 6).

Who reads it:

- the engine (``engine/urls.py``: default URLs and verbs, the Google base URLs;
  ``engine/extract.py``: the embedding readers' names; ``engine/engine.py``: which providers are
  faked; ``engine/auth.py``: Anthropic's version header; ``engine/request.py``: the providers);
- the fakes (``fakes/models.py``: the limits they enforce as the providers do, and which answer
  and error shape a path gets);
- the extension: ``extension_build.py`` replaces each ``{{NAME}}`` in ``emulator/sql/src/`` with
  ``sql_constants()[NAME]`` when it builds the install scripts, so the SQL
  ``generate_model_request_url``, the warm-up's batch limits, the AI functions' batch size,
  Anthropic's header function and the pre-registered rows come from here too.

A default URL is a template: ``{name}`` is the model's qualified name. A relative one is a
Vertex AI path that the engine resolves against the configured project and region. A family
without a default URL (``url=None``) needs a ``model_request_url``, except Vertex AI ranking,
whose Discovery Engine URL the engine builds from the configured project (``RANKING_PATH``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from emulator import flags

VERTEX_BASE_URL = "https://{region}-aiplatform.googleapis.com"
DISCOVERY_ENGINE_BASE_URL = "https://discoveryengine.googleapis.com"
RANKING_PATH = "/v1/projects/{project}/locations/global/rankingConfigs/default_ranking_config:rank"
VERTEX_MODEL_PATH = "publishers/google/models/"

# Vertex AI verbs: embeddings and endpoints predict, Gemini generates content (Vertex AI's REST
# reference: publishers.models.predict serves embedding models and endpoints, "to run inference
# on a base Gemini model, see models.generateContent"); ranking ranks.
PREDICT = ":predict"
GENERATE_CONTENT = ":generateContent"
STREAM_GENERATE_CONTENT = ":streamGenerateContent"
COUNT_TOKENS = ":countTokens"
RANK = ":rank"

# The names of the engine's embedding readers (engine/extract.py), as the warm-up asks for them.
VERTEX_EMBEDDINGS = "vertex_embeddings"
OPENAI_EMBEDDINGS = "openai_embeddings"

# Per-request limits of the embedding batch APIs: Vertex AI 250 texts or 20,000 tokens; OpenAI
# 2,048 inputs or 300,000 tokens.
VERTEX_MAX_TEXTS = 250
VERTEX_MAX_TOKENS = 20_000
OPENAI_MAX_TEXTS = 2048
OPENAI_MAX_TOKENS = 300_000

# A batch API's text count for models with batch transforms of a provider without a family
# limit (the warm-up's 'batch' style).
OTHER_MAX_TEXTS = 100

# Vertex AI ranking: records per request.
RANKING_MAX_RECORDS = 200

# The AI functions' default batch (ai.if, ai.generate, ai.rank over arrays and cursors, and the
# warm-up of their per-row forms): prompts per generateContent request.
LLM_BATCH_PROMPTS = 10

# Anthropic's Messages API wants its version in a header: the extension's
# anthropic_claude_header_gen_fn returns it, and the engine adds it to Anthropic calls without it.
ANTHROPIC_VERSION_HEADER = "anthropic-version"
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    provider: str
    model_types: tuple[str, ...]
    url: str | None = None  # default request URL template ({name}: the qualified name)
    verb: str = ""  # appended to a Vertex AI model path that names none
    max_texts: int | None = None  # texts per batch request
    max_tokens: int | None = None  # tokens per batch request
    embeddings: str | None = None  # the engine's reader of this family's embedding answers


VERTEX_EMBEDDING = Family(
    "vertex_embedding", "google", ("text_embedding", "multimodal_embedding"),
    url=VERTEX_MODEL_PATH + "{name}", verb=PREDICT,
    max_texts=VERTEX_MAX_TEXTS, max_tokens=VERTEX_MAX_TOKENS, embeddings=VERTEX_EMBEDDINGS)
VERTEX_GENERATION = Family(
    "vertex_generation", "google", ("llm", "generic"),
    url=VERTEX_MODEL_PATH + "{name}", verb=GENERATE_CONTENT)
VERTEX_RANKING = Family("vertex_ranking", "google", ("reranking",))
OPENAI_EMBEDDING = Family(
    "openai_embedding", "open_ai", ("text_embedding",),
    url="https://api.openai.com/v1/embeddings",
    max_texts=OPENAI_MAX_TEXTS, max_tokens=OPENAI_MAX_TOKENS, embeddings=OPENAI_EMBEDDINGS)
OPENAI_CHAT = Family(
    "openai_chat", "open_ai", ("llm", "generic"), url="https://api.openai.com/v1/chat/completions")
MODEL_TYPES: tuple[str, ...] = (
    "text_embedding", "generic", "multimodal_embedding", "reranking", "ts_forecasting", "llm")
ANTHROPIC = Family("anthropic", "anthropic", MODEL_TYPES, url="https://api.anthropic.com/v1/messages")
HUGGING_FACE = Family(
    "hugging_face", "hugging_face", MODEL_TYPES,
    url="https://api-inference.huggingface.co/models/{name}")

FAMILIES: tuple[Family, ...] = (
    VERTEX_EMBEDDING, VERTEX_GENERATION, VERTEX_RANKING, OPENAI_EMBEDDING, OPENAI_CHAT,
    ANTHROPIC, HUGGING_FACE)
PROVIDERS: tuple[str, ...] = ("google", "open_ai", "hugging_face", "anthropic", "custom")
# The providers the fake models answer (--models fake): every provider with a family here;
# custom models always go to their own URL.
FAKED_PROVIDERS: frozenset[str] = frozenset(f.provider for f in FAMILIES)


def family(provider: str, model_type: str) -> Family | None:
    """The family serving this provider's model type, or None (a custom model, say)."""
    for candidate in FAMILIES:
        if candidate.provider == provider and model_type in candidate.model_types:
            return candidate
    return None


def vertex_verb(model_type: str, *, endpoint: bool) -> str:
    """The verb a Vertex AI path that names none gets: an endpoint (endpoints/E) predicts; a
    publisher model takes its family's verb (Gemini generateContent, embeddings predict), and
    predict when its type has no family verb."""
    found = family("google", model_type)
    if endpoint or found is None or not found.verb:
        return PREDICT
    return found.verb


def default_url(provider: str, model_type: str, name: str) -> str | None:
    """The request URL a model gets when registered without one, or None (it needs one).
    A Google model path gets its family's verb unless the name already carries one."""
    found = family(provider, model_type)
    if found is None or found.url is None or ("{name}" in found.url and not name):
        return None
    url = found.url.replace("{name}", name)
    if found.verb and ":" not in name:
        url += found.verb
    return url


# -- the models every database has without create_model -------------------------------------------

# The auth type of Google's models: the AlloyDB service agent's (here: ADC) access token.
AUTH_IAM: Final = "alloydb_service_agent_iam"
# The built-in transforms a pre-registered model names: input, output, batch input, batch output.
Transforms = tuple[str | None, str | None, str | None, str | None]
NO_TRANSFORMS: Transforms = (None, None, None, None)
VERTEX_EMBEDDING_TRANSFORMS: Transforms = (
    "google_ml.vertexai_text_embedding_input_transform",
    "google_ml.vertexai_text_embedding_output_transform",
    "google_ml.vertexai_text_embedding_batch_input_transform",
    "google_ml.vertexai_text_embedding_batch_output_transform")
GEMINI_LLM_TRANSFORMS: Transforms = (
    "google_ml.gemini_llm_input_transform",
    "google_ml.gemini_llm_output_transform",
    "google_ml.gemini_llm_batch_input_transform",
    "google_ml.gemini_llm_batch_output_transform")
RANKING_TRANSFORMS: Transforms = (None, "google_ml.vertexai_reranking_output_transform", None, None)


@dataclass(frozen=True, slots=True)
class Preregistered:
    """A Google model that a database has without create_model (reference, section 6): a plain
    row of google_ml.models, inserted by the registry.sql block of AlloyDB version ``since``.
    Its request URL is the default URL of its id (the id carries the verb where it has one);
    Vertex AI ranking has none (the engine builds it from the project)."""

    id: str
    model_type: str
    since: str
    qualified_name: str
    transforms: Transforms = NO_TRANSFORMS

    @property
    def url(self) -> str | None:
        return default_url("google", self.model_type, self.id)


def _embedding(model: str) -> Preregistered:
    return Preregistered(model, "text_embedding", "1.3", model, VERTEX_EMBEDDING_TRANSFORMS)


# In the order each version's block inserts them.
PREREGISTERED: tuple[Preregistered, ...] = (
    *(_embedding(model) for model in (
        "textembedding-gecko", "textembedding-gecko@001", "textembedding-gecko@003",
        "textembedding-gecko-multilingual@001", "text-embedding-005", "gemini-embedding-001")),
    # 1.4.2: generic Gemini models, named after model and verb.
    Preregistered("gemini-1.5-pro:generateContent", "generic", "1.4.2", "gemini-1.5-pro"),
    Preregistered("gemini-1.5-pro:streamGenerateContent", "generic", "1.4.2", "gemini-1.5-pro"),
    Preregistered("gemini-1.0-pro:generateContent", "generic", "1.4.2", "gemini-1.0-pro"),
    # 1.5.2: the AI functions' default llm model and the reranking model.
    Preregistered("gemini-2.5-flash-lite", "llm", "1.5.2", "gemini-2.5-flash-lite",
                  GEMINI_LLM_TRANSFORMS),
    Preregistered("semantic-ranker-default-003", "reranking", "1.5.2",
                  "semantic-ranker-default-003", RANKING_TRANSFORMS),
)


# -- which wire format a request path speaks ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    api: str  # the wire format's name (the fakes answer each one)
    provider: str  # whose error shape a refusal on this path has
    suffix: str  # a ':verb' ends the path's last segment; a '/path' ends the path


# In the order they are tried; the host never matters (any base URL works).
ROUTES: tuple[Route, ...] = (
    Route("vertex_predict", "google", PREDICT),  # models/M or endpoints/E
    Route("gemini_generate", "google", GENERATE_CONTENT),
    Route("gemini_stream", "google", STREAM_GENERATE_CONTENT),
    Route("gemini_count_tokens", "google", COUNT_TOKENS),
    Route("vertex_rank", "google", RANK),  # Discovery Engine's ranking API
    Route("openai_embeddings", "open_ai", "/embeddings"),
    Route("openai_chat", "open_ai", "/chat/completions"),
    Route("anthropic_messages", "anthropic", "/messages"),
)
# Hugging Face's Inference API: /models/{M} or /pipeline/{task}/{M}, no verb.
HUGGING_FACE_ROUTE = Route("hugging_face", "hugging_face", "")
_HUGGING_FACE_PATHS = ("/models/", "/pipeline/")


def route(path: str) -> Route | None:
    """The wire format a request path (without host and query) speaks, or None."""
    last = path.rsplit("/", 1)[-1]
    for candidate in ROUTES:
        verb = candidate.suffix.startswith(":")
        if (last if verb else path).endswith(candidate.suffix):
            return candidate
    if ":" not in last and any(part in path for part in _HUGGING_FACE_PATHS):
        return HUGGING_FACE_ROUTE
    return None


# -- the SQL side ---------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_url(found: Family) -> str:
    """The SQL expression of a family's default URL, over the arguments provider, model_type,
    qualified_name of generate_model_request_url."""
    assert found.url is not None
    head, _, tail = found.url.partition("{name}")
    if not _:
        return _quote(found.url)
    expression = f"{_quote(head)} || qualified_name"
    if tail:
        expression += f" || {_quote(tail)}"
    if found.verb:
        expression += (f" || CASE WHEN qualified_name LIKE '%:%' THEN '' "
                       f"ELSE {_quote(found.verb)} END")
    return expression


def _default_url_cases() -> str:
    """The WHEN branches of generate_model_request_url's CASE, one per family with a URL."""
    lines = []
    for found in FAMILIES:
        if found.url is None:
            continue
        types = ", ".join(_quote(t) for t in found.model_types)
        condition = f"provider = {_quote(found.provider)} AND model_type IN ({types})"
        if "{name}" in found.url:
            condition += " AND qualified_name <> ''"
        lines.append(f"        WHEN {condition}\n            THEN {_sql_url(found)}")
    return "\n".join(lines)


def _sql_value(value: str | None) -> str:
    return "NULL" if value is None else _quote(value)


def preregistered_token(version: str) -> str:
    """The ``{{NAME}}`` under which registry.sql's block of ``version`` gets its rows."""
    return "PREREGISTERED_" + version.replace(".", "_")


def _preregistered_rows(version: str) -> str:
    """The VALUES rows of the models version ``version`` pre-registers, in the column order of
    registry.sql's INSERTs (id, provider, model_type, request_url, qualified_name, auth_type,
    the four transforms, is_preregistered)."""
    rows = []
    for model in PREREGISTERED:
        if model.since != version:
            continue
        values = [model.id, "google", model.model_type, model.url, model.qualified_name,
                  AUTH_IAM]
        rows.append("    (" + ", ".join(map(_sql_value, values)) + ",\n     "
                    + ", ".join(map(_sql_value, model.transforms)) + ", true)")
    return ",\n".join(rows)


def sql_constants() -> dict[str, str]:
    """``{{NAME}}`` -> SQL text, for extension_build.py."""
    versions = dict.fromkeys(model.since for model in PREREGISTERED)
    return {
        **{preregistered_token(v): _preregistered_rows(v) for v in versions},
        "DEFAULT_URL_CASES": _default_url_cases(),
        "VERTEX_MAX_TEXTS": str(VERTEX_MAX_TEXTS),
        "VERTEX_MAX_TOKENS": str(VERTEX_MAX_TOKENS),
        "OPENAI_MAX_TEXTS": str(OPENAI_MAX_TEXTS),
        "OPENAI_MAX_TOKENS": str(OPENAI_MAX_TOKENS),
        "OTHER_MAX_TEXTS": str(OTHER_MAX_TEXTS),
        "LLM_BATCH_PROMPTS": str(LLM_BATCH_PROMPTS),
        "RANKING_MAX_RECORDS": str(RANKING_MAX_RECORDS),
        "ANTHROPIC_VERSION_HEADER": _quote(ANTHROPIC_VERSION_HEADER),
        "ANTHROPIC_VERSION": _quote(ANTHROPIC_VERSION),
        # Not a provider's fact: the flags' defaults, from their own home (emulator/flags.py).
        "FLAG_DEFAULTS": flags.sql_values(),
    }
