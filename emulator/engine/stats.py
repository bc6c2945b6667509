"""Counters of what the engine did, for metrics and benchmarks.

`calls` counts invocations (batch members included); `provider_requests` every attempt sent to
a provider, faked or real; `http_requests` the real HTTP ones among them; `cache_hits`,
`retries`, `errors` explain the difference. Per-model counts of calls and errors are kept too.
Plain integers: the engine runs on one event loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class EngineStats:
    calls: int = 0
    provider_requests: int = 0
    http_requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    calls_by_model: Counter[str] = field(default_factory=Counter)
    errors_by_model: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "provider_requests": self.provider_requests,
            "http_requests": self.http_requests,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "errors": self.errors,
            "calls_by_model": dict(self.calls_by_model),
            "errors_by_model": dict(self.errors_by_model),
        }
