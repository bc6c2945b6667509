"""Where a model request goes: the absolute URL for a request's (possibly relative) URL.

`resolve_url(request, settings, project)`:

- Relative Vertex AI paths, as `create_model` and `ml_predict_row` accept them:
  `publishers/google/models/M[:verb]` -> `{vertex}/v1/projects/{project}/locations/{region}/...`
  with the configured project and region; `projects/P/locations/R/(publishers/google/models/M |
  endpoints/E)[:verb]` keep their P and R. A leading `/` or `v1/` (`v1beta1/`) is accepted.
  `{vertex}` is `settings.vertex_base_url`, whose `{region}` is filled with the path's region.
- A Google model path with no verb gets one (`providers.vertex_verb`): an endpoint
  (`endpoints/E`) `:predict`; a publisher model its family's verb, `:generateContent` for `llm`
  and `generic` models (Gemini), `:predict` for text and multimodal embeddings and types
  without a family verb. So a stored verb-less URL gets the verb the SQL's default URL has.
  One exception: a `generic` publisher model whose body is a predict request (`instances`, no
  `contents`) gets `:predict`, as older AlloyDB pages call predict models through
  `ml_predict_row('publishers/google/models/M', '{"instances": ...}')`; `:generateContent`
  would refuse that body anyway.
- Absolute URLs are kept, except that Google's own hosts move to the configured base URLs when
  those are overridden: `*-aiplatform.googleapis.com` -> `vertex_base_url`,
  `discoveryengine.googleapis.com` -> `discovery_engine_base_url` (path and query kept).
- No URL at all: the default URL of the provider's family for the model type and qualified name
  (the provider catalogue, emulator/providers.py, which the SQL `generate_model_request_url`
  also reads); Vertex AI ranking gets the Discovery Engine URL of the configured project; other
  models without a default (`custom` ones) must have a URL.

`needs_project(request)` says whether resolution needs a project (so the engine only looks one up
when it must). Errors are `ModelCallError` 22023.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emulator.engine.errors import bad_request
from emulator.engine.request import ModelRequest
from emulator.engine.settings import EngineSettings
from emulator.providers import (
    DISCOVERY_ENGINE_BASE_URL,
    PREDICT,
    RANKING_PATH,
    VERTEX_BASE_URL,
    VERTEX_RANKING,
    default_url,
    family,
    vertex_verb,
)

_VERTEX_HOST = re.compile(r"^(?:(?P<region>[a-z0-9-]+)-)?aiplatform\.googleapis\.com$")
_DISCOVERY_HOST = "discoveryengine.googleapis.com"
_LOCATION = re.compile(r"(?:^|/)locations/([^/]+)")
_VERSION = re.compile(r"^(v1(?:beta1)?)/")


def _qualified_name(request: ModelRequest) -> str:
    return request.qualified_name or request.model_id


def _default_url(request: ModelRequest, settings: EngineSettings, project: str | None) -> str:
    if family(request.provider, request.model_type) is VERTEX_RANKING:
        base = settings.discovery_engine_base_url.rstrip("/")
        return base + RANKING_PATH.format(project=_require(request, project))
    url = default_url(request.provider, request.model_type, _qualified_name(request))
    if url is None:
        raise bad_request(request.model_id, "the model has no request URL (model_request_url)")
    return url


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
    is_publisher = "/publishers/" in path or path.startswith("publishers/")
    is_endpoint = "/endpoints/" in path or path.startswith("endpoints/")
    if request.provider != "google" or not (is_publisher or is_endpoint) or ":" in last:
        return path
    if request.model_type == "generic" and _is_predict_body(request.body):
        return path + PREDICT
    return path + vertex_verb(request.model_type, endpoint=not is_publisher)


def _is_predict_body(body: Any) -> bool:
    """A Vertex AI predict request (``instances``), not a generateContent one (``contents``)."""
    return isinstance(body, dict) and "instances" in body and "contents" not in body


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
    if vertex is not None and settings.vertex_base_url != VERTEX_BASE_URL:
        location = _LOCATION.search(parts.path)
        region = vertex.group("region") or (location.group(1) if location else "")
        base = urlsplit(_vertex_base(settings, region or settings.google_region))
    elif host == _DISCOVERY_HOST and (
        settings.discovery_engine_base_url != DISCOVERY_ENGINE_BASE_URL
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
