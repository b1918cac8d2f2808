"""Working-day calendar: State Council holidays and weekend make-up workdays (调休).

Years 2004–2026 come from the maintained ``chinese-calendar`` package; later years from
``datasets/holidays.csv`` (one row per holiday or make-up workday, as the State Council publishes
them each November). Elapsed working days are computed vectorised: a cumulative count of working
days per calendar day, gathered by day offset.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

HOLIDAY_FILE = Path(__file__).resolve().parents[1] / "holidays.csv"


class CalendarError(ValueError):
    """A date falls in a year with no holiday data."""


@dataclass(frozen=True)
class WorkCalendar:
    start: dt.date
    cum: np.ndarray  # cum[i] = number of working days in [start, start + i]
    covered_years: frozenset[int]
    # What the calendar says, as a short text: part of the key of every derived frame counted with it
    # (metrics/derived.py), so a holiday registered later or a new library release recounts them.
    digest: str = ""

    def check_years(self, years: set[int]) -> None:
        missing = sorted(y for y in years if y not in self.covered_years)
        if missing:
            names = "、".join(f"{y} 年" for y in missing)
            raise CalendarError(
                f"缺少 {names} 的节假日安排，无法按工作日计算用时；请在 datasets/holidays.csv 中补充该年的放假和调休日期"
            )

    def is_workday(self, day: dt.date) -> bool:
        i = (day - self.start).days
        prev = self.cum[i - 1] if i > 0 else 0
        return bool(self.cum[i] - prev)

    def _index(self, date_expr: pl.Expr) -> pl.Expr:
        return (date_expr.cast(pl.Date) - pl.lit(self.start)).dt.total_days()

    def cum_expr(self, date_expr: pl.Expr) -> pl.Expr:
        """Working days from the calendar start up to and including each date (null stays null)."""
        idx = self._index(date_expr)
        series = pl.Series("cum", self.cum, dtype=pl.Int32)
        return pl.lit(series).gather(idx.clip(0, len(self.cum) - 1)).cast(pl.Int32)

    def working_days_between(self, start: pl.Expr, end: pl.Expr) -> pl.Expr:
        """Working days d with start < d ≤ end (same day: 0). Null when either end is null."""
        return pl.when(start.is_not_null() & end.is_not_null()).then(
            self.cum_expr(end) - self.cum_expr(start)
        )

    @staticmethod
    def calendar_days_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
        return (end.cast(pl.Date) - start.cast(pl.Date)).dt.total_days().cast(pl.Int32)

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The date n working days after start (used for deadlines such as 15 working days)."""
        target = self.cum[(start - self.start).days] + n
        return self.start + dt.timedelta(days=int(np.searchsorted(self.cum, target)))


def _file_entries(text: str, name: str) -> tuple[dict[dt.date, bool], set[int]]:
    """Rows ``date,kind`` with kind 休 (holiday) or 班 (make-up workday); '#' lines are comments."""
    entries: dict[dt.date, bool] = {}
    lines = (line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    for row in csv.DictReader(lines):
        day = dt.date.fromisoformat(row["date"].strip())
        kind = row["kind"].strip()
        if kind not in ("休", "班"):
            raise ValueError(f"{name}: {day} 的类型应为“休”或“班”，实际为“{kind}”")
        entries[day] = kind == "班"
    return entries, {d.year for d in entries}


def load_calendar(holiday_file: Path | None = None, first_year: int = 2004, last_year: int = 2035) -> WorkCalendar:
    """The calendar of the holiday file as it is now (default HOLIDAY_FILE) and the library's data.

    The file is read on every call (it is small) and the calendar built once per content and library
    version, so a date
    registered while the app runs is in force on the next computation, and in the keys of its results.
    """
    import chinese_calendar

    path = HOLIDAY_FILE if holiday_file is None else holiday_file
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    # The library's version too: a release with next year's schedule builds the calendar again.
    return _build(text, path.name, first_year, last_year, chinese_calendar.__version__)


@lru_cache(maxsize=4)
def _build(text: str, name: str, first_year: int, last_year: int, library: str) -> WorkCalendar:
    import chinese_calendar

    lib_rest, lib_work = chinese_calendar.holidays, chinese_calendar.workdays
    lib_years = {d.year for d in lib_rest} | {d.year for d in lib_work}
    file_entries, file_years = _file_entries(text, name)
    start = dt.date(first_year, 1, 1)
    n = (dt.date(last_year, 12, 31) - start).days + 1
    days = [start + dt.timedelta(days=i) for i in range(n)]
    work = np.empty(n, dtype=np.int32)
    for i, day in enumerate(days):
        if day in file_entries:
            work[i] = file_entries[day]
        elif day.year in lib_years:  # chinese_calendar.is_workday's rule, without its per-call range check
            work[i] = 1 if day in lib_work or (day.weekday() < 5 and day not in lib_rest) else 0
        else:  # weekday-only guess; only used if a year is covered by the file but a day isn't listed
            work[i] = 1 if day.weekday() < 5 else 0
    covered = frozenset(y for y in lib_years | file_years if first_year <= y <= last_year)
    cum = np.cumsum(work).astype(np.int32)
    # Every day's working/rest flag and the years with a schedule: what any count can depend on.
    digest = hashlib.sha1(cum.tobytes() + repr(sorted(covered)).encode()).hexdigest()[:20]
    return WorkCalendar(start=start, cum=cum, covered_years=covered, digest=digest)
