"""Districts worked on two at a time within a row budget (snapshot builds, component computations).

Polars keeps both cores busy within one district only part of the time (joins, file reads, Python
glue); a second district fills the gaps. Memory stays bounded by the largest district: districts run
side by side only while their rows together stay within the budget, so the largest districts of a
large store run alone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
AT_ONCE = 2
# Districts worked on side by side hold together at most this many rows of active batches, or the
# largest district's alone if it has more. At scale 10 any two districts fit (the largest two: 6.4 M
# rows); at scale 30 the largest (10.9 M rows, ≈ 3.2 GB while its components are computed) runs alone.
ROWS_SIDE_BY_SIDE = 8_000_000

Gate = Callable[[], contextlib.AbstractContextManager[None]]


class RowBudget:
    """Lets threads work side by side while their rows together stay within ``budget`` (a district
    larger than the budget alone waits until nothing else runs)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.running = 0
        self.peak = 0  # the most rows held at once (tests)
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, rows: int) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self.running == 0 or self.used + rows <= self.budget)
            self.used += rows
            self.running += 1
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= rows
                self.running -= 1
                self._cond.notify_all()


def each_district(districts: Sequence[str], rows: Mapping[str, int], work: Callable[[str, Gate], T]) -> list[T]:
    """``work(district, gate)`` for every district, AT_ONCE at a time, results in the given order.
    ``work`` enters ``gate()`` around its expensive part only (not around reading a cached result),
    which holds the district's ``rows`` of the budget."""
    budget = RowBudget(max([ROWS_SIDE_BY_SIDE, *rows.values()]))

    def one(district: str) -> T:
        return work(district, lambda: budget.hold(rows.get(district, 0)))

    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        return list(pool.map(one, districts))
