"""Secret values for `secret_manager` models: local overrides first, then Secret Manager.

`SecretStore.value(model_id, secret_path) -> str`:

1. local overrides (no network; documented in settings.py): `ALLOYDB_AI_EMULATOR_SECRET_<NAME>`,
   then the secrets file (full path, or path without `/versions/...`);
2. a value fetched less than `secret_cache_seconds` ago;
3. Google Secret Manager through `google-cloud-secret-manager` with the REST transport, so a plain
   HTTP server can stand in (`GET /v1/{path}:access`). With an `http://` endpoint override the
   client sends no credentials (AnonymousCredentials: a local stand-in needs none); otherwise it
   uses Application Default Credentials. The client is synchronous, so calls run in a thread.

Failures become `ModelCallError` 28000 naming the model and the secret path, never the value.
Values live only in this process's memory.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

from emulator.config import ENV_PREFIX
from emulator.engine.errors import bad_request, credentials_missing
from emulator.engine.settings import EngineSettings

_SECRET_PATH = re.compile(r"^projects/([^/]+)/secrets/([^/]+)(?:/versions/([^/]+))?$")


def override_variable(secret_path: str) -> str:
    """The environment variable that overrides the secret at `secret_path`."""
    match = _SECRET_PATH.match(secret_path)
    name = match.group(2) if match else secret_path
    return ENV_PREFIX + "SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class SecretsFileError(Exception):
    """The local secrets file cannot be read, or is not a JSON object; ``what`` says which."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


def read_secrets_file(path: str | Path) -> dict[str, str]:
    """The local secrets file's values by secret path (the plan's override 2)."""
    file = Path(path)
    try:
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SecretsFileError("cannot read the local secrets file", f"{file}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SecretsFileError("the local secrets file must hold a JSON object of secret paths "
                               'and values ({"projects/p/secrets/s/versions/1": "..."})',
                               str(file))
    return {str(k): str(v) for k, v in loaded.items()}


class SecretStore:
    """Secret values by path, cached briefly. One per engine."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._cache: dict[str, tuple[float, str]] = {}
        self._file_values: dict[str, str] | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    def _from_file(self, model_id: str, secret_path: str) -> str | None:
        if self._settings.secrets_file is None:
            return None
        if self._file_values is None:
            try:
                self._file_values = read_secrets_file(self._settings.secrets_file)
            except SecretsFileError as exc:
                raise credentials_missing(model_id, exc.what, exc.detail) from exc
        unversioned = secret_path.split("/versions/", 1)[0]
        return self._file_values.get(secret_path) or self._file_values.get(unversioned)

    def local_override(self, model_id: str, secret_path: str) -> str | None:
        """The locally configured value of the secret, if any."""
        from_env = self._settings.secret_env.get(override_variable(secret_path))
        if from_env:
            return from_env
        return self._from_file(model_id, secret_path)

    async def value(self, model_id: str, secret_path: str) -> str:
        """The secret's value: override, cache, or Secret Manager."""
        if not _SECRET_PATH.match(secret_path):
            raise bad_request(
                model_id,
                f"secret path {secret_path!r} is not projects/P/secrets/NAME/versions/V",
            )
        local = self.local_override(model_id, secret_path)
        if local is not None:
            return local
        async with self._lock:  # concurrent first calls share one fetch
            cached = self._cache.get(secret_path)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            value = await asyncio.to_thread(self._access, model_id, secret_path)
            expires = time.monotonic() + self._settings.secret_cache_seconds
            self._cache[secret_path] = (expires, value)
            return value

    def _secret_client(self) -> Any:
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import secretmanager

            endpoint = self._settings.secret_manager_endpoint
            options = {"api_endpoint": endpoint} if endpoint else None
            anonymous = endpoint is not None and endpoint.startswith("http://")
            self._client = secretmanager.SecretManagerServiceClient(
                transport="rest",
                credentials=AnonymousCredentials() if anonymous else None,  # type: ignore[no-untyped-call]
                client_options=options,
            )
        return self._client

    def _access(self, model_id: str, secret_path: str) -> str:
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions

        name = secret_path if "/versions/" in secret_path else secret_path + "/versions/latest"
        hint = (
            f"Set {override_variable(secret_path)} or a secrets file to use a local value, "
            "or check the secret and the emulator's Google credentials."
        )
        try:
            response = self._secret_client().access_secret_version(name=name)
        except api_exceptions.NotFound as exc:
            raise credentials_missing(
                model_id, f"secret {secret_path} not found", _reason(exc), hint
            ) from exc
        except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
            raise credentials_missing(
                model_id, f"cannot read secret {secret_path}", _reason(exc), hint
            ) from exc
        except Exception as exc:  # transport failures of the client library (requests)
            raise credentials_missing(
                model_id, f"cannot read secret {secret_path}", type(exc).__name__, hint
            ) from exc
        data: bytes = response.payload.data
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise credentials_missing(
                model_id, f"secret {secret_path} is not UTF-8 text", "", hint
            ) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.transport.close()
            self._client = None


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}"
