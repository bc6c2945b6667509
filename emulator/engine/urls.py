"""Where a model request goes: the absolute URL for a request's (possibly relative) URL.

`resolve_url(request, settings, project)`:

- Relative Vertex AI paths, as `create_model` and `ml_predict_row` accept them:
  `publishers/google/models/M[:verb]` -> `{vertex}/v1/projects/{project}/locations/{region}/...`
  with the configured project and region; `projects/P/locations/R/(publishers/google/models/M |
  endpoints/E)[:verb]` keep their P and R. A leading `/` or `v1/` (`v1beta1/`) is accepted.
  `{vertex}` is `settings.vertex_base_url`, whose `{region}` is filled with the path's region.
- A Google model path with no verb gets one: `:generateContent` for `llm` models, `:predict`
  otherwise (text and multimodal embeddings, endpoints).
- Absolute URLs are kept, except that Google's own hosts move to the configured base URLs when
  those are overridden: `*-aiplatform.googleapis.com` -> `vertex_base_url`,
  `discoveryengine.googleapis.com` -> `discovery_engine_base_url` (path and query kept).
- No URL at all: the provider's documented endpoint for the model type and qualified name
  (reference, section 6); `custom` models must have one.

`needs_project(request)` says whether resolution needs a project (so the engine only looks one up
when it must). Errors are `ModelCallError` 22023.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from emulator.engine.errors import bad_request
from emulator.engine.request import ModelRequest
from emulator.engine.settings import (
    DEFAULT_DISCOVERY_ENGINE_BASE_URL,
    DEFAULT_VERTEX_BASE_URL,
    EngineSettings,
)

_VERTEX_HOST = re.compile(r"^(?:(?P<region>[a-z0-9-]+)-)?aiplatform\.googleapis\.com$")
_DISCOVERY_HOST = "discoveryengine.googleapis.com"
_LOCATION = re.compile(r"(?:^|/)locations/([^/]+)")
_VERSION = re.compile(r"^(v1(?:beta1)?)/")
_RANKING_PATH = "/v1/projects/{project}/locations/global/rankingConfigs/default_ranking_config:rank"


def _qualified_name(request: ModelRequest) -> str:
    return request.qualified_name or request.model_id


def _default_url(request: ModelRequest, settings: EngineSettings, project: str | None) -> str:
    name = _qualified_name(request)
    if request.provider == "google":
        if request.model_type == "reranking":
            base = settings.discovery_engine_base_url.rstrip("/")
            return base + _RANKING_PATH.format(project=_require(request, project))
        return f"publishers/google/models/{name}"
    if request.provider == "open_ai":
        if request.model_type in ("text_embedding", "multimodal_embedding"):
            return "https://api.openai.com/v1/embeddings"
        return "https://api.openai.com/v1/chat/completions"
    if request.provider == "anthropic":
        return "https://api.anthropic.com/v1/messages"
    if request.provider == "hugging_face":
        return f"https://api-inference.huggingface.co/models/{name}"
    raise bad_request(request.model_id, "the model has no request URL (model_request_url)")


def _require(request: ModelRequest, project: str | None) -> str:
    if not project:
        raise bad_request(
            request.model_id,
            "a Google project is needed to build the request URL: set --google-project "
            "(ALLOYDB_AI_EMULATOR_GOOGLE_PROJECT)",
        )
    return project


def needs_project(request: ModelRequest) -> bool:
    """True when the request's URL can only be built with a Google project."""
    url = (request.url or "").lstrip("/")
    if request.url is None:
        return request.provider == "google"
    return "://" not in url and _VERSION.sub("", url).startswith("publishers/")


def _with_verb(request: ModelRequest, path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    is_google_model = (
        "/publishers/" in path
        or "/endpoints/" in path
        or path.startswith(("publishers/", "endpoints/"))
    )
    if request.provider != "google" or not is_google_model or ":" in last:
        return path
    return path + (":generateContent" if request.model_type == "llm" else ":predict")


def _vertex_base(settings: EngineSettings, region: str) -> str:
    return settings.vertex_base_url.replace("{region}", region).rstrip("/")


def _resolve_relative(
    request: ModelRequest, url: str, settings: EngineSettings, project: str | None
) -> str:
    path = url.lstrip("/")
    version = "v1"
    match = _VERSION.match(path)
    if match is not None:
        version, path = match.group(1), path[match.end() :]
    region = settings.google_region
    if path.startswith("publishers/"):
        path = f"projects/{_require(request, project)}/locations/{region}/{path}"
    elif path.startswith("projects/"):
        location = _LOCATION.search(path)
        if location is None:
            raise bad_request(request.model_id, f"the relative URL {url!r} names no location")
        region = location.group(1)
    else:
        raise bad_request(
            request.model_id,
            f"the request URL {url!r} is neither absolute nor a Vertex AI path "
            "(publishers/google/models/M or projects/P/locations/R/...)",
        )
    return f"{_vertex_base(settings, region)}/{version}/{_with_verb(request, path)}"


def _move_google_host(url: str, settings: EngineSettings) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    vertex = _VERTEX_HOST.match(host)
    if vertex is not None and settings.vertex_base_url != DEFAULT_VERTEX_BASE_URL:
        location = _LOCATION.search(parts.path)
        region = vertex.group("region") or (location.group(1) if location else "")
        base = urlsplit(_vertex_base(settings, region or settings.google_region))
    elif host == _DISCOVERY_HOST and (
        settings.discovery_engine_base_url != DEFAULT_DISCOVERY_ENGINE_BASE_URL
    ):
        base = urlsplit(settings.discovery_engine_base_url.rstrip("/"))
    else:
        return url
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def resolve_url(request: ModelRequest, settings: EngineSettings, project: str | None) -> str:
    """The absolute URL to POST the request to (see the module plan)."""
    url = request.url if request.url is not None else _default_url(request, settings, project)
    url = url.strip()
    if "://" not in url:
        return _resolve_relative(request, url, settings, project)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise bad_request(request.model_id, f"unsupported URL scheme {scheme!r}")
    parts = urlsplit(_move_google_host(url, settings))
    path = _with_verb(request, parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
