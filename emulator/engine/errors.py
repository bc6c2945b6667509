"""Errors of a model call, each carrying the SQLSTATE the caller's session will see.

`ModelCallError(sqlstate, message, detail=None, hint=None)` is the one error the engine raises;
the callback endpoint turns it into a PostgreSQL ErrorResponse. The constructors below build it
for each class of failure of docs/internals.md, so the SQLSTATE table lives in one place:

| constructor            | SQLSTATE | when                                               |
|------------------------|----------|----------------------------------------------------|
| `provider_status`      | 38000    | the provider answered an error status              |
| `provider_timeout`     | 57014    | no answer within the read timeout                  |
| `provider_unreachable` | 08001    | could not connect                                  |
| `provider_bad_json`    | 22032    | the provider's answer is not JSON                  |
| `provider_too_large`   | 54000    | the provider's answer is over the engine's bound   |
| `credentials_missing`  | 28000    | secret not found, credentials unavailable          |
| `bad_request`          | 22023    | malformed request from SQL                         |
| `credentials_refused`  | 42501    | Google credentials for a host that is not Google's |
| (callback refused)     | 08004    | raised by the proxy, listed for completeness       |

Messages name the model id. Secret values never appear: every text that may echo one (a
provider's error body) goes through `redact` with the secrets used for the call.
"""

from __future__ import annotations

SQLSTATE_PROVIDER_ERROR = "38000"  # external_routine_exception
SQLSTATE_TIMEOUT = "57014"  # query_canceled
SQLSTATE_CONNECT = "08001"  # sqlclient_unable_to_establish_sqlconnection
SQLSTATE_INVALID_JSON = "22032"  # invalid_json_text
SQLSTATE_TOO_LARGE = "54000"  # program_limit_exceeded
SQLSTATE_CREDENTIALS = "28000"  # invalid_authorization_specification
SQLSTATE_BAD_REQUEST = "22023"  # invalid_parameter_value
SQLSTATE_CREDENTIALS_REFUSED = "42501"  # insufficient_privilege
SQLSTATE_CALLBACK_REFUSED = "08004"  # sqlserver_rejected_establishment_of_sqlconnection

EXCERPT_CHARS = 500


class ModelCallError(Exception):
    """A failed model call, explained for a person, with its SQLSTATE."""

    def __init__(
        self, sqlstate: str, message: str, detail: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint

    def as_dict(self) -> dict[str, str]:
        """The `{"sqlstate", "message", "detail"[, "hint"]}` object of an invoke_batch error."""
        out = {"sqlstate": self.sqlstate, "message": self.message, "detail": self.detail or ""}
        if self.hint:
            out["hint"] = self.hint
        return out

    def __repr__(self) -> str:
        return f"ModelCallError({self.sqlstate!r}, {self.message!r}, detail={self.detail!r})"


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every occurrence of a secret value replaced by `[REDACTED]`."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return text


def excerpt(body: bytes | str, secrets: list[str]) -> str:
    """At most 500 characters of a response body, whitespace runs collapsed, secrets redacted."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = redact(" ".join(text.split()), secrets)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def provider_status(
    model_id: str, status: int, body: bytes | str, secrets: list[str]
) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_PROVIDER_ERROR,
        f'model "{model_id}": the provider answered HTTP {status}',
        f"HTTP {status}: {excerpt(body, secrets)}",
    )


def provider_timeout(model_id: str, seconds: float, host: str) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_TIMEOUT,
        f'model "{model_id}": no answer from {host} within {seconds:g} s',
        hint="Raise the engine's read timeout (ALLOYDB_AI_EMULATOR_READ_TIMEOUT) if the model is slow.",
    )


def provider_unreachable(model_id: str, host: str, reason: str) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_CONNECT, f'model "{model_id}": could not connect to {host}', reason[:EXCERPT_CHARS]
    )


def provider_bad_json(model_id: str, body: bytes, secrets: list[str]) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_INVALID_JSON,
        f'model "{model_id}": the provider answered invalid JSON',
        f"HTTP 200: {excerpt(body, secrets)}",
    )


def provider_too_large(model_id: str, host: str, limit: int) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_TOO_LARGE,
        f'model "{model_id}": the answer from {host} is larger than {limit:,} bytes',
        hint="Send fewer or shorter inputs per request: a real provider's answer to one"
             " request of the model's batch size is far smaller.",
    )


def credentials_missing(
    model_id: str, what: str, reason: str, hint: str | None = None
) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_CREDENTIALS, f'model "{model_id}": {what}', reason[:EXCERPT_CHARS], hint
    )


def credentials_refused(model_id: str, host: str, rule: str, hint: str) -> ModelCallError:
    return ModelCallError(
        SQLSTATE_CREDENTIALS_REFUSED,
        f'model "{model_id}": Google credentials are not sent to {host}',
        rule,
        hint,
    )


def bad_request(model_id: str | None, problem: str) -> ModelCallError:
    prefix = f'model "{model_id}": ' if model_id else ""
    return ModelCallError(SQLSTATE_BAD_REQUEST, f"{prefix}{problem}")
