"""Retry-After is honoured in both its forms, and capped; otherwise backoff with full jitter."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given
from hypothesis import strategies as st

from emulator.engine.backoff import parse_retry_after, retry_delay

NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_retry_after_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:07 GMT", NOW) == 7.0


def test_retry_after_in_the_past_or_garbage() -> None:
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_absurd_retry_after_is_capped() -> None:
    delay = retry_delay(0, "86400", base=0.5, cap=20, max_retry_after=30, rng=random.Random(1))
    assert delay == 30


@given(attempt=st.integers(min_value=0, max_value=100), seed=st.integers())
def test_backoff_stays_within_its_exponential_bound(attempt: int, seed: int) -> None:
    delay = retry_delay(
        attempt, None, base=0.5, cap=20, max_retry_after=30, rng=random.Random(seed)
    )
    assert 0 <= delay <= min(20, 0.5 * 2**attempt)
