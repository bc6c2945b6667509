"""One model call as the SQL side hands it over, checked.

`ModelRequest.parse(obj)` validates the request object of docs/internals.md ("op", "model_id",
"provider", "model_type", "qualified_name", "url", "headers", "auth", "body") and raises
`ModelCallError` 22023 for anything malformed, so the rest of the engine works with typed,
trusted values. Header values that are not strings (numbers, booleans from a header function's
JSON) are sent as their JSON text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from emulator import providers
from emulator.engine.errors import bad_request

Provider = Literal["google", "open_ai", "anthropic", "hugging_face", "custom"]
PROVIDERS: frozenset[str] = frozenset(providers.PROVIDERS)
AUTH_IAM: Final = providers.AUTH_IAM
AUTH_SECRET: Final = "secret_manager"


@dataclass(frozen=True)
class Auth:
    type: Literal["alloydb_service_agent_iam", "secret_manager"]
    secret_path: str | None = None


@dataclass(frozen=True)
class ModelRequest:
    model_id: str
    provider: Provider
    model_type: str
    qualified_name: str | None
    url: str | None
    headers: dict[str, str] = field(default_factory=dict)
    auth: Auth | None = None
    body: Any = None

    @classmethod
    def parse(cls, obj: Any) -> ModelRequest:
        if not isinstance(obj, dict):
            raise bad_request(None, "a model request must be a JSON object")
        model_id = obj.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise bad_request(None, "a model request needs a model_id")
        provider = obj.get("provider") or "custom"
        if provider not in PROVIDERS:
            raise bad_request(model_id, f"unknown provider {provider!r}")
        url = obj.get("url")
        if url is not None and not isinstance(url, str):
            raise bad_request(model_id, "the request URL must be a string")
        qualified_name = obj.get("qualified_name")
        return cls(
            model_id=model_id,
            provider=cast(Provider, provider),
            model_type=str(obj.get("model_type") or "generic"),
            qualified_name=qualified_name if isinstance(qualified_name, str) else None,
            url=url or None,
            headers=_headers(model_id, obj.get("headers")),
            auth=_auth(model_id, obj.get("auth")),
            body=obj.get("body"),
        )


def _headers(model_id: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(model_id, "the header function must return a JSON object")
    headers = {}
    for name, value in raw.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        if "\r" in name or "\n" in name or "\r" in text or "\n" in text:
            raise bad_request(model_id, f"header {name!r} contains a line break")
        headers[str(name)] = text
    return headers


def _auth(model_id: str, raw: Any) -> Auth | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == AUTH_IAM:
        return Auth(AUTH_IAM)
    if kind == AUTH_SECRET:
        path = raw.get("secret_path")
        if not isinstance(path, str) or not path:
            raise bad_request(model_id, "secret_manager authentication needs a secret_path")
        return Auth(AUTH_SECRET, path)
    raise bad_request(model_id, f"unknown authentication type {kind!r}")
