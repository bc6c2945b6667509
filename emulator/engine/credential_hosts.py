"""Where Google credentials may go: one rule for every live call, whatever the model registry
or the request says.

The Google access token (`alloydb_service_agent_iam`: the service account's, or in live mode
the user's own Application Default Credentials) is attached only to a URL whose host is

- a Google API host, `googleapis.com` or `*.googleapis.com`, over https; or
- the host (and port) of an endpoint the person who started the emulator configured:
  `--vertex-base-url` (its `{region}` matches any region), `--discovery-engine-base-url`,
  `--secret-manager-endpoint`.

Anything else is refused before a token is even loaded (42501, naming the model, the host and
this rule). So a model registered with a URL of one's own, or a request forged by someone who
read the callback password, cannot carry the token away (docs/differences.md, "Who can do
what").
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from emulator.engine.errors import credentials_refused
from emulator.engine.settings import EngineSettings

RULE = (
    "Google credentials go only to Google API hosts (https://*.googleapis.com) and to the hosts "
    "of --vertex-base-url, --discovery-engine-base-url and --secret-manager-endpoint"
)
_HINT = (
    "Register the model with its Google URL (or a relative Vertex AI path), or point "
    "--vertex-base-url at this host if it stands in for Vertex AI."
)
_GOOGLE_API_HOST = re.compile(r"^(?:[a-z0-9-]+\.)*googleapis\.com$")


def _address(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, lowercased; the port None when the URL gives none."""
    parts = urlsplit(url.replace("{region}", "region-placeholder"))
    try:
        port = parts.port
    except ValueError:
        port = -1  # an invalid port matches nothing
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _default_port(scheme: str, port: int | None) -> int | None:
    if port is not None:
        return port
    return {"https": 443, "http": 80}.get(scheme)


def _configured_matches(configured: str, url: str) -> bool:
    c_scheme, c_host, c_port = _address(configured)
    u_scheme, u_host, u_port = _address(url)
    if not c_host or c_scheme != u_scheme:
        return False
    if _default_port(c_scheme, c_port) != _default_port(u_scheme, u_port):
        return False
    if "region-placeholder" in c_host:
        pattern = re.escape(c_host).replace("region\\-placeholder", "[a-z0-9-]+")
        return re.fullmatch(pattern, u_host) is not None
    return c_host == u_host


def may_receive_google_credentials(url: str, settings: EngineSettings) -> bool:
    scheme, host, _port = _address(url)
    if scheme == "https" and _GOOGLE_API_HOST.match(host):
        return True
    configured = [settings.vertex_base_url, settings.discovery_engine_base_url]
    if settings.secret_manager_endpoint:
        endpoint = settings.secret_manager_endpoint
        configured.append(endpoint if "://" in endpoint else f"https://{endpoint}")
    return any(_configured_matches(c, url) for c in configured)


def check_google_credentials_host(model_id: str, url: str, settings: EngineSettings) -> None:
    """Raise 42501 unless ``url`` may receive Google credentials."""
    if not may_receive_google_credentials(url, settings):
        host = urlsplit(url).netloc.rpartition("@")[2] or url
        raise credentials_refused(model_id, host, RULE, _HINT)
