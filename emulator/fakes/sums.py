"""Sums of floats that come out the same on every Python the emulator runs on.

Python 3.12's `sum()` compensates its rounding (Neumaier summation), where 3.11's added left to
right; for most vectors the last bits differ (the fakes' embeddings of 3.11 and 3.12 differed in
three answers of four). The fakes' numbers are held bit for bit by users' tests and cassettes,
whichever Python made them, so they add left to right, as they were first computed.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterable
from functools import reduce


def _added_in_order(values: Iterable[float]) -> float:
    total: float = reduce(operator.add, values, 0)
    return total


# `values` added one by one, left to right, from 0: `sum()` as Python 3.11 computes it (and, up
# to 3.11, sum() itself, three times faster than the reduce).
left_sum: Callable[[Iterable[float]], float] = (
    sum if sys.version_info < (3, 12) else _added_in_order)
