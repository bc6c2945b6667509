"""The engine's statistics behind the metrics (emulator/engine/stats.py): the latency histogram
and the tokens each provider's answer reports."""

from __future__ import annotations

import pytest

from emulator.engine.stats import LatencyHistogram, reported_tokens


def test_latency_histogram_is_cumulative() -> None:
    h = LatencyHistogram()
    for seconds in (0.0001, 0.003, 0.003, 500.0):
        h.observe(seconds)
    buckets = dict(h.cumulative())
    assert buckets["0.0005"] == 1 and buckets["0.005"] == 3 and buckets["+Inf"] == 4
    assert h.count == 4


@pytest.mark.parametrize(("response", "tokens"), [
    ({"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5}}, (3, 5)),
    ([{"candidates": []}, {"usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 7}}],
     (2, 7)),
    ({"usage": {"prompt_tokens": 4, "total_tokens": 4}}, (4, 0)),
    ({"usage": {"input_tokens": 6, "output_tokens": 9}}, (6, 9)),
    ({"predictions": [{"embeddings": {"statistics": {"token_count": 2}}},
                      {"embeddings": {"statistics": {"token_count": 3}}}]}, (5, 0)),
    ({"anything": "else"}, (0, 0)),
    (None, (0, 0)),
])
def test_reported_tokens_per_provider(response: object, tokens: tuple[int, int]) -> None:
    assert reported_tokens(response) == tokens
