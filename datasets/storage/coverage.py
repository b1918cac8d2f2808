"""Complete months and the default period.

A month is *complete* when it has ended and every district has, for that month, each export the
ranking needs (``Rules.rank_needs_cases`` / ``rank_needs_evaluations``: 办件明细 and 好差评 by default,
the ranking's own completeness rule). The default period everywhere is the latest complete month, so
one early upload of a new month never changes what a leader sees by default; a later month can still
be chosen, and is then labelled with how far its data goes (``MonthStatus.note``). When no month of
the last 12 with data is complete (a district that never reports), the default is the latest month
with data, labelled as partial in the same way.

``today`` is always passed in (tests pass a date; the pages and the CLI pass the real one).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

import polars as pl
from sqlalchemy.engine import Engine

from datasets.domain.periods import Period, parse_period, shift_month, to_date
from datasets.domain.schema import KINDS
from datasets.domain.vocabulary import Rules
from datasets.storage import quality, store

PARTIAL_MARK = "（未报齐）"
WINDOW_MONTHS = 12  # how far back a complete month may lie before the latest month with data is the default


def needed_kinds(rules: Rules) -> tuple[str, ...]:
    """The exports a district must have for a month to count as reported (the ranking's rule)."""
    return tuple(k for k, on in (("cases", rules.rank_needs_cases), ("evaluations", rules.rank_needs_evaluations))
                 if on)


def month_end(month: str) -> dt.date:
    year, mon = int(month[:4]), int(month[5:7])
    return dt.date(year, mon, calendar.monthrange(year, mon)[1])


def date_text(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def as_of_by_month(active: pl.DataFrame) -> dict[str, dt.date]:
    """How far each month's data goes (数据截至): the latest 数据截止日 (``as_of``, stored on every batch,
    see store.as_of_date) among the month's active batches."""
    if active.height == 0:
        return {}
    latest = active.group_by("period").agg(pl.col("as_of").cast(pl.Date).max())
    return {month: day for month, day in latest.iter_rows() if day is not None}


@dataclass(frozen=True)
class MonthStatus:
    month: str
    ended: bool
    as_of: dt.date
    reported: tuple[str, ...]
    missing: tuple[str, ...]
    # A missing district that sent some of the needed exports: the labels of those it lacks.
    lacking: tuple[tuple[str, str], ...] = ()

    @property
    def complete(self) -> bool:
        return self.ended and not self.missing

    @property
    def note(self) -> str:
        """``数据截至 2026年12月7日，已报送 1/10 个区县；未报送：甲区、乙区``."""
        total = len(self.reported) + len(self.missing)
        text = f"数据截至 {date_text(self.as_of)}，已报送 {len(self.reported)}/{total} 个区县"
        lacking = dict(self.lacking)
        names = [f"{d}（缺{lacking[d]}）" if d in lacking else d for d in self.missing]
        return text + (f"；未报送：{'、'.join(names)}" if names else "")


@dataclass(frozen=True)
class Coverage:
    """Which months with data are complete, the latest complete one and the default month."""

    districts: tuple[str, ...]
    months: dict[str, MonthStatus] = field(default_factory=dict)  # every month with data, oldest first
    latest_complete: str | None = None
    default_month: str | None = None
    this_month: str = ""  # today's month (YYYY-MM): a quarter or year ending on or after it is in progress

    def as_of(self, month: str) -> dt.date | None:
        """How far the month's data goes (数据截至), None for a month without data."""
        status = self.months.get(month)
        return status.as_of if status is not None else None

    def is_partial(self, month: str) -> bool:
        status = self.months.get(month)
        return status is not None and not status.complete

    def month_label(self, month: str) -> str:
        """A period picker's label: ``2026年12月（未报齐）`` for a partial month."""
        return Period(month, month).label + (PARTIAL_MARK if self.is_partial(month) else "")

    def period_label(self, key: str) -> str:
        """A picker's label of a period key; a quarter or year with a partial month is marked too."""
        period = parse_period(key)
        partial = any(self.is_partial(m) for m in period.months)
        return period.label + (PARTIAL_MARK if partial else "")

    def measured(self, period: Period) -> Period:
        """The months a chosen period is measured over: a quarter or year still in progress (not ended
        by today) to date, up to the latest complete month; any other period as chosen."""
        if period.whole.last < self.this_month:
            return period.whole
        return to_date(period, self.latest_complete)

    def partial_months(self, period: Period) -> list[MonthStatus]:
        return [self.months[m] for m in period.months if self.is_partial(m)]

    def notes(self, period: Period) -> list[str]:
        """One line per partial month of ``period`` (the month named when the period has several)."""
        return [s.note if period.length == 1 else f"{Period(s.month, s.month).label}：{s.note}"
                for s in self.partial_months(period)]

    def banner(self, period: Period) -> str | None:
        notes = self.notes(period)
        return "。".join(notes) if notes else None

    @property
    def default_period(self) -> Period | None:
        return Period(self.default_month, self.default_month) if self.default_month else None


def coverage_of(grid: pl.DataFrame, as_of: dict[str, dt.date], districts: list[str], rules: Rules,
                today: dt.date) -> Coverage:
    """Coverage from quality.completeness's grid (district × month × kind status) and the months' as-of
    dates (as_of_by_month); ``districts``: every configured district; ``today`` decides which months
    have ended."""
    needed = needed_kinds(rules)
    this_month = f"{today.year:04d}-{today.month:02d}"
    months = sorted(as_of)
    have = grid.filter(pl.col("status").is_in([quality.PRESENT, quality.LATE]))
    present = set(have.select("district", "month", "kind").iter_rows())
    statuses: dict[str, MonthStatus] = {}
    for month in months:
        gaps = {d: [k for k in needed if (d, month, k) not in present] for d in districts}
        reported = tuple(d for d in districts if not gaps[d])
        missing = tuple(d for d in districts if gaps[d])
        lacking = tuple((d, "、".join(KINDS[k].label for k in gaps[d])) for d in missing
                        if len(gaps[d]) < len(needed))
        statuses[month] = MonthStatus(month, month < this_month, as_of[month], reported, missing, lacking)
    complete = [m for m, s in statuses.items() if s.complete]
    latest_complete = complete[-1] if complete else None
    latest = months[-1] if months else None
    default = latest_complete
    if latest is not None and (latest_complete is None
                               or latest_complete < shift_month(latest, -(WINDOW_MONTHS - 1))):
        default = latest
    return Coverage(tuple(districts), statuses, latest_complete, default, this_month)


def coverage(engine: Engine, rules: Rules, today: dt.date) -> Coverage:
    """Coverage of the store: the months with the exports the ranking needs (any monthly export when it
    needs none) and who reported them."""
    active = store.active_batches(engine)
    kinds = needed_kinds(rules) or quality.MONTHLY_KINDS
    monthly = active.filter(pl.col("kind").is_in(kinds)) if active.height else active
    configured = store.list_districts(engine)["name"].to_list()
    districts = configured or quality.all_districts(engine)
    as_of = as_of_by_month(monthly)
    grid = quality.completeness(engine, sorted(as_of)) if as_of else pl.DataFrame(
        schema={"district": pl.String, "month": pl.String, "kind": pl.String, "status": pl.String})
    return coverage_of(grid, as_of, districts, rules, today)
