"""A fake TimesFM: a deterministic forecast from the history itself.

A Vertex AI endpoint serving TimesFM takes ``{"instances": [{"input": [numbers], "horizon":
H}]}`` and answers, per instance, ``{"point_forecast": [H numbers], "mean": [...], "p10": [...],
..., "p90": [...]}``. The fake fits a least-squares line through the history and continues it;
the deciles spread around it by the residuals' standard deviation, growing with the square root
of the step, so the interval a caller derives widens with the horizon and with its confidence
level. The same history always gets the same answer.
"""

from __future__ import annotations

import math
from typing import Any

from emulator.fakes.sums import left_sum

MAX_HORIZON = 1024  # what a TimesFM 2.x container accepts at most; AlloyDB stops at 128

# z-scores of the deciles 0.1 .. 0.9 of the standard normal distribution
_DECILE_Z = (-1.2815515655446004, -0.8416212335729143, -0.5244005127080407,
             -0.2533471031357997, 0.0, 0.2533471031357997, 0.5244005127080407,
             0.8416212335729143, 1.2815515655446004)


class ForecastRequestError(ValueError):
    """An instance the TimesFM container would refuse (the message says why)."""


def is_forecast_instance(instance: Any) -> bool:
    return isinstance(instance, dict) and isinstance(instance.get("input"), list)


def forecast(instance: dict[str, Any]) -> dict[str, list[float]]:
    values = instance["input"]
    if not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ForecastRequestError("input must be a non-empty list of finite numbers")
    horizon = instance.get("horizon", 128)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
        raise ForecastRequestError(f"horizon must be an integer from 1 to {MAX_HORIZON}")
    slope, intercept, spread = _trend(values)
    n = len(values)
    point = [intercept + slope * (n - 1 + h) for h in range(1, horizon + 1)]
    answer: dict[str, list[float]] = {"point_forecast": point, "mean": list(point)}
    for decile, z in enumerate(_DECILE_Z, start=1):
        answer[f"p{decile * 10}"] = [
            p + z * spread * math.sqrt(h) for h, p in enumerate(point, start=1)
        ]
    return answer


def _trend(values: list[float]) -> tuple[float, float, float]:
    """Slope and intercept of the least-squares line over x = 0..n-1, and the spread: the
    residuals' standard deviation, never below 1% of the series' scale (so a straight line
    still gets an interval)."""
    n = len(values)
    mean_x = (n - 1) / 2
    mean_y = left_sum(values) / n
    sxx = left_sum((x - mean_x) ** 2 for x in range(n))
    slope = 0.0 if sxx == 0 else left_sum(
        (x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / sxx
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in enumerate(values)]
    dof = max(n - 2, 1)
    spread = math.sqrt(left_sum(r * r for r in residuals) / dof)
    scale = max(abs(v) for v in values) or 1.0
    return slope, intercept, max(spread, 0.01 * scale)
