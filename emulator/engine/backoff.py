"""How long to wait before retrying a model call.

- `parse_retry_after(value, now)`: a `Retry-After` header in seconds (integer or decimal) or as an
  HTTP date, as seconds from now; None when absent or unreadable; never negative.
- `retry_delay(attempt, retry_after, ...)`: the provider's `Retry-After` when it gave one, capped
  at `max_retry_after` (an absurd 86400 must not park a statement for a day); otherwise
  exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)), attempt
  counting from 0. Full jitter spreads retries of many concurrent calls so they do not hit the
  provider in lockstep.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait per a Retry-After header value, or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    attempt: int,
    retry_after: str | None,
    *,
    base: float,
    cap: float,
    max_retry_after: float,
    rng: random.Random,
    now: dt.datetime | None = None,
) -> float:
    """Seconds to sleep before retry number `attempt + 1`."""
    asked = parse_retry_after(retry_after, now)
    if asked is not None:
        return min(asked, max_retry_after)
    return rng.uniform(0.0, min(cap, base * 2.0 ** min(attempt, 30)))
