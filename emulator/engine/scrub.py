"""What of an outgoing request may be written down or shown: the one home of that policy.

The cassette (cassette.py) and the call inspector (calls.py) both keep requests; neither may keep
a token, an API key or a secret value. Credentials travel in three places:

- headers: `Authorization` (the ADC token or a Secret Manager secret), `x-api-key`, `api-key`,
  `x-goog-api-key`, and whatever a header function adds; any header whose name mentions
  auth, key, token, secret, password, signature, credential or cookie is treated as secret;
- the URL's query string: `?key=...` (Google AI Studio), `access_token=...`, and the same names;
- anything that echoes them (an error body, a transform that copied the key into the body):
  the values found above are replaced by `[REDACTED]` wherever they appear in kept text.

`secret_values(headers)` lists the values to scrub (a bearer token counts both whole and without
its scheme); `shown_headers` the headers with those values hidden; `clean_url` the URL with
secret query parameters and user info hidden; `scrub(text, secrets)` the text with the values
replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from emulator.engine.errors import redact

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(
    r"auth|key|token|secret|passw|signature|credential|cookie|session", re.IGNORECASE
)
_MIN_SECRET_CHARS = 4  # shorter values are not scrubbed from text (see errors.redact)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_values(headers: Mapping[str, str]) -> list[str]:
    """The credential values a request carries in its headers."""
    values: list[str] = []
    for name, value in headers.items():
        if not is_secret_name(name) or not value:
            continue
        values.append(value)
        scheme, _, credential = value.partition(" ")
        if credential and scheme.isalpha():
            values.append(credential.strip())
    # Longest first, so a value that contains another is replaced whole.
    return sorted({v for v in values if len(v) >= _MIN_SECRET_CHARS}, key=len, reverse=True)


def shown_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if is_secret_name(name) else value for name, value in headers.items()}


def clean_url(url: str, secrets: Iterable[str] = ()) -> str:
    """The URL without user info and with secret query parameters hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url, list(secrets))
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_secret_name(k) else v) for k, v in pairs], safe="[]")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), list(secrets))


def scrub(text: str, secrets: list[str]) -> str:
    return redact(text, secrets) if secrets else text
