"""Counters of what the engine did, for metrics and benchmarks.

`calls` counts invocations (batch members included); `provider_requests` every attempt sent to
a provider, faked or real; `http_requests` the real HTTP ones among them; `cache_hits`,
`retries`, `errors` explain the difference.

`models[model_id]` (`ModelStats`) breaks the same down per model, with its provider, a latency
histogram of whole calls (cache hits included) and of provider requests, and the tokens the
provider reported (`usageMetadata` of Gemini, `usage` of OpenAI and Anthropic, `statistics` of
Vertex AI embeddings). `emulator/metrics.py` turns them into Prometheus metrics at scrape time,
so the engine does not depend on prometheus-client.

Plain integers: the engine runs on one event loop.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Upper bounds in seconds; a model call through the fakes takes well under a millisecond, a
# live one tens of milliseconds to tens of seconds.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
)


@dataclass
class LatencyHistogram:
    """Counts per bucket (not cumulative; the last slot is +Inf), a sum and a count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus-style (upper bound, cumulative count) pairs, ending with +Inf."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.counts):
            running += n
            out.append((bound, running))
        return out


@dataclass
class ModelStats:
    provider: str = "unknown"
    calls: int = 0
    errors: int = 0
    cache_hits: int = 0
    retries: int = 0
    provider_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    in_flight: int = 0  # provider requests under way now
    max_in_flight: int = 0  # the most at once
    errors_by_sqlstate: Counter[str] = field(default_factory=Counter)
    call_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    request_latency: LatencyHistogram = field(default_factory=LatencyHistogram)


@dataclass
class EngineStats:
    calls: int = 0
    provider_requests: int = 0
    http_requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    models: dict[str, ModelStats] = field(default_factory=dict)

    def model(self, model_id: str, provider: str | None = None) -> ModelStats:
        """The per-model counters of `model_id`, created on first use."""
        stats = self.models.get(model_id)
        if stats is None:
            stats = self.models[model_id] = ModelStats()
        if provider:
            stats.provider = provider
        return stats

    def count_tokens(self, model_id: str, response: Any) -> None:
        tokens_in, tokens_out = reported_tokens(response)
        if tokens_in or tokens_out:
            stats = self.model(model_id)
            stats.input_tokens += tokens_in
            stats.output_tokens += tokens_out


def reported_tokens(response: Any) -> tuple[int, int]:
    """(input, output) tokens a provider reported in its answer; (0, 0) when it reported none.

    Gemini: ``usageMetadata.promptTokenCount`` / ``candidatesTokenCount`` (a streamed answer is a
    list of chunks, the last one carries the totals); OpenAI: ``usage.prompt_tokens`` /
    ``completion_tokens``; Anthropic: ``usage.input_tokens`` / ``output_tokens``; Vertex AI
    embeddings: ``predictions[].embeddings.statistics.token_count``.
    """
    if isinstance(response, list):
        for chunk in reversed(response):
            if isinstance(chunk, dict) and isinstance(chunk.get("usageMetadata"), dict):
                return reported_tokens(chunk)
        return 0, 0
    if not isinstance(response, dict):
        return 0, 0
    meta = response.get("usageMetadata")
    if isinstance(meta, dict):
        return _int(meta.get("promptTokenCount")), _int(meta.get("candidatesTokenCount"))
    usage = response.get("usage")
    if isinstance(usage, dict):
        if "input_tokens" in usage or "output_tokens" in usage:
            return _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    predictions = response.get("predictions")
    if isinstance(predictions, list):
        total = 0
        for p in predictions:
            emb = p.get("embeddings") if isinstance(p, dict) else None
            st = emb.get("statistics") if isinstance(emb, dict) else None
            if isinstance(st, dict):
                total += _int(st.get("token_count"))
        return total, 0
    return 0, 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
