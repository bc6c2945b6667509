"""Knobs of the fake models: latency and faults, so callers can test their slow and retry paths.

`FakeKnobs` is shared by the in-process fakes (the engine applies it to every faked call) and the
standalone server (`server.py`, per HTTP request). `pick_fault(knobs, rng)` says what happens to
one request:

- `forced_fault` '429' / '500' / 'timeout' applies to every request: 429 carries
  `Retry-After: <retry_after>`; 'timeout' never answers (the server holds the connection open,
  the in-process fake waits until the client's read timeout);
- otherwise a share `fault_rate` (0..1) of requests fails at random, half with 429 and half
  with 500.

Latency is added before every answer, faults included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, cast

from emulator.config import default, setting

Fault = Literal["429", "500", "timeout"]
FAULTS = cast(tuple[Fault, ...], setting("fake_fault").choices)


@dataclass(frozen=True)
class FakeKnobs:
    latency: float = default("fake_latency_ms") / 1000.0  # seconds added to every request
    fault_rate: float = default("fake_fault_rate")  # 0..1, random 429/500 faults
    forced_fault: Fault | None = None
    retry_after: float = default("fake_retry_after")  # Retry-After seconds sent with 429s
    rules_path: str | None = None  # rules file for generations (see rules.py)

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError("fake latency must be >= 0 seconds")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fake fault rate must be between 0 and 1")
        if self.forced_fault is not None and self.forced_fault not in FAULTS:
            raise ValueError(f"forced fault must be one of {', '.join(FAULTS)}")
        if self.retry_after < 0:
            raise ValueError("fake retry-after must be >= 0 seconds")


def pick_fault(knobs: FakeKnobs, rng: random.Random) -> Fault | None:
    """The fault to inject into one request, or None to answer normally."""
    if knobs.forced_fault is not None:
        return knobs.forced_fault
    if knobs.fault_rate > 0 and rng.random() < knobs.fault_rate:
        return "429" if rng.random() < 0.5 else "500"
    return None


def format_retry_after(seconds: float) -> str:
    """Retry-After header value: whole seconds when integral, as HTTP requires; else decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
