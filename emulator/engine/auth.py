"""Authentication of live model calls: the headers that prove who is calling.

`Authenticator.headers(request, url) -> (headers, secrets_used)`: the request's own headers (from the
header function) plus, unless those already authenticate (`Authorization`, `x-api-key`,
`api-key`, `x-goog-api-key`, any case):

- `alloydb_service_agent_iam`: `Authorization: Bearer <token>`, only for the hosts that
  credential_hosts.py allows (42501 otherwise), an OAuth access token from Google
  Application Default Credentials (`google.auth.default`, scope cloud-platform). This honours
  GOOGLE_APPLICATION_CREDENTIALS, so a service-account file whose `token_uri` is local makes the
  whole flow testable offline. The token is cached and refreshed five minutes before expiry;
  refreshes run in a thread (google-auth is synchronous) under a lock, so concurrent calls share
  one refresh.
- `secret_manager`: the secret's value (secrets.py) as `Authorization: Bearer <value>`; for
  provider `anthropic` as `x-api-key: <value>`.

Anthropic requests also get the catalogue's `anthropic-version` header when absent.
`secrets_used` lists the values just attached, so error texts can be scrubbed of them. The
fakes never come here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from emulator.engine.credential_hosts import check_google_credentials_host
from emulator.engine.errors import credentials_missing
from emulator.engine.request import AUTH_IAM, AUTH_SECRET, ModelRequest
from emulator.engine.secrets import SecretStore
from emulator.engine.settings import EngineSettings
from emulator.providers import ANTHROPIC_VERSION, ANTHROPIC_VERSION_HEADER

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_REFRESH_MARGIN = dt.timedelta(minutes=5)
_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
_ADC_HINT = (
    "Set GOOGLE_APPLICATION_CREDENTIALS to a service-account file or run "
    "`gcloud auth application-default login`; or use --models fake."
)


class GoogleTokenSource:
    """Access tokens from Application Default Credentials, cached until near expiry."""

    def __init__(self) -> None:
        self._credentials: Any = None
        self._project: str | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        creds = self._credentials
        if creds is None or not creds.token:
            return False
        expiry: dt.datetime | None = creds.expiry  # naive UTC in google-auth
        if expiry is None:
            return True
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return expiry - now > _REFRESH_MARGIN

    def _load_and_refresh(self) -> None:
        import google.auth
        from google.auth.transport.requests import Request

        if self._credentials is None:
            credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            self._credentials, self._project = credentials, project
        self._credentials.refresh(Request())

    async def token(self, model_id: str) -> str:
        """A valid access token."""
        async with self._lock:
            if not self._fresh():
                await self._run(model_id, self._load_and_refresh)
            token: str = self._credentials.token
            return token

    async def project(self, model_id: str) -> str | None:
        """The ADC project, if the credentials name one."""
        async with self._lock:
            if self._credentials is None:
                await self._run(model_id, self._load_and_refresh)
            return self._project

    async def _run(self, model_id: str, work: Any) -> None:
        from google.auth import exceptions as auth_exceptions

        try:
            await asyncio.to_thread(work)
        except auth_exceptions.GoogleAuthError as exc:
            raise credentials_missing(
                model_id,
                "Google credentials unavailable",
                f"{type(exc).__name__}: {exc}",
                _ADC_HINT,
            ) from exc


def already_authenticated(headers: dict[str, str]) -> bool:
    return any(name.lower() in _AUTH_HEADERS for name in headers)


def _has(headers: dict[str, str], name: str) -> bool:
    return any(h.lower() == name for h in headers)


class Authenticator:
    """Builds the outgoing headers of a live call."""

    def __init__(
        self, secrets: SecretStore, tokens: GoogleTokenSource, settings: EngineSettings
    ) -> None:
        self._secrets = secrets
        self._tokens = tokens
        self._settings = settings

    async def headers(
        self, request: ModelRequest, url: str
    ) -> tuple[dict[str, str], list[str]]:
        """The headers to send ``request`` to ``url`` (its resolved absolute URL) with."""
        headers = dict(request.headers)
        used: list[str] = []
        if request.provider == "anthropic" and not _has(headers, ANTHROPIC_VERSION_HEADER):
            headers[ANTHROPIC_VERSION_HEADER] = ANTHROPIC_VERSION
        if request.auth is None or already_authenticated(headers):
            return headers, used
        if request.auth.type == AUTH_IAM:
            check_google_credentials_host(request.model_id, url, self._settings)
            token = await self._tokens.token(request.model_id)
            headers["Authorization"] = f"Bearer {token}"
            used.append(token)
        elif request.auth.type == AUTH_SECRET and request.auth.secret_path is not None:
            value = await self._secrets.value(request.model_id, request.auth.secret_path)
            if request.provider == "anthropic":
                headers["x-api-key"] = value
            else:
                headers["Authorization"] = f"Bearer {value}"
            used.append(value)
        return headers, used
