"""Periods as month ranges: a month, a quarter, a year or any custom range of months.

Months are ``YYYY-MM`` strings throughout (they sort correctly as text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def month_index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def month_from_index(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def shift_month(month: str, months: int) -> str:
    return month_from_index(month_index(month) + months)


def month_range(first: str, last: str) -> list[str]:
    return [month_from_index(i) for i in range(month_index(first), month_index(last) + 1)]


@dataclass(frozen=True, order=True)
class Period:
    """Months ``first``..``last``. ``of``: for a quarter or year still in progress measured to date
    (``to_date``), the key of the whole quarter or year (``2026-Q4``, ``2026``); empty otherwise."""

    first: str  # YYYY-MM
    last: str  # YYYY-MM, inclusive
    of: str = ""

    def __post_init__(self) -> None:
        if month_index(self.first) > month_index(self.last):
            raise ValueError(f"起始月份 {self.first} 晚于结束月份 {self.last}")
        if self.of:
            whole = parse_period(self.of)
            if whole.first != self.first or not self.first <= self.last <= whole.last:
                raise ValueError(f"{self.first}~{self.last} 不是 {self.of} 的前若干个月")

    @property
    def months(self) -> list[str]:
        return month_range(self.first, self.last)

    @property
    def length(self) -> int:
        return month_index(self.last) - month_index(self.first) + 1

    @property
    def whole(self) -> Period:
        """The whole quarter or year of a period measured to date; the period itself otherwise."""
        return parse_period(self.of) if self.of else self

    def shift(self, months: int) -> Period:
        first, last = shift_month(self.first, months), shift_month(self.last, months)
        if self.of:
            whole = self.whole
            moved = Period(shift_month(whole.first, months), shift_month(whole.last, months))
            return Period(first, last, moved.key) if period_type(moved) in (QUARTER, YEAR) else Period(first, last)
        return Period(first, last)

    def previous(self) -> Period:
        """The previous period of the same length (环比); for a quarter or year to date, the same
        months of the previous quarter or year."""
        return self.shift(-self.whole.length)

    def year_ago(self) -> Period:
        """The same period one year earlier (同比)."""
        return self.shift(-12)

    @property
    def label(self) -> str:
        y1, m1 = self.first.split("-")
        y2, m2 = self.last.split("-")
        if self.of:
            months = f"{int(m1)}月" if m1 == m2 else f"{int(m1)}—{int(m2)}月"
            return f"{self.whole.label}（{months}）"
        if self.length == 1:
            return f"{y1}年{int(m1)}月"
        if y1 == y2 and m1 == "01" and m2 == "12":
            return f"{y1}年"
        if y1 == y2 and self.length == 3 and (int(m1) - 1) % 3 == 0:
            return f"{y1}年第{(int(m1) - 1) // 3 + 1}季度"
        return f"{y1}年{int(m1)}月—{y2}年{int(m2)}月"

    @property
    def key(self) -> str:
        """Compact text form accepted by parse_period (used in URLs); ``2026~2026-11`` for a year to date."""
        y1, m1 = self.first.split("-")
        if self.of:
            return f"{self.of}~{self.last}"
        if self.length == 1:
            return self.first
        if self.first == f"{y1}-01" and self.last == f"{y1}-12":
            return y1
        if self.length == 3 and (int(m1) - 1) % 3 == 0 and self.last[:4] == y1:
            return f"{y1}-Q{(int(m1) - 1) // 3 + 1}"
        return f"{self.first}~{self.last}"


def parse_month(text: str) -> str:
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"“{text}”不是有效的月份，应写作 YYYY-MM，例如 2024-05")
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"


def parse_period(text: str) -> Period:
    """``YYYY-MM``, ``YYYY-Qn``, ``YYYY`` or ``YYYY-MM~YYYY-MM``; ``YYYY~YYYY-MM`` and ``YYYY-Qn~YYYY-MM``
    for a year or quarter measured to date (its months up to the one given)."""
    text = text.strip()
    if "~" in text:
        a, b = text.split("~", 1)
        if _QUARTER.match(a.strip()) or _YEAR.match(a.strip()):
            whole, last = parse_period(a), parse_month(b)
            if not whole.first <= last <= whole.last:
                raise ValueError(f"“{text}”中的月份 {last} 不在{whole.label}内")
            return whole if last == whole.last else Period(whole.first, last, whole.key)
        return Period(parse_month(a), parse_month(b))
    if m := _QUARTER.match(text):
        year, q = int(m.group(1)), int(m.group(2))
        return Period(f"{year:04d}-{3 * q - 2:02d}", f"{year:04d}-{3 * q:02d}")
    if m := _YEAR.match(text):
        return Period(f"{text}-01", f"{text}-12")
    if _MONTH.match(text):
        month = parse_month(text)
        return Period(month, month)
    raise ValueError(f"“{text}”不是有效的时段，应写作 YYYY-MM、YYYY-Qn 或 YYYY，例如 2024-05、2024-Q2、2024")


def quarter_of(month: str) -> Period:
    year, mon = month.split("-")
    q = (int(mon) - 1) // 3 + 1
    return parse_period(f"{year}-Q{q}")


# --- period pickers: the kinds of period a user picks from, and the keys that have data -----------

MONTH, QUARTER, YEAR, CUSTOM = "月", "季", "年", "自定义"
PERIOD_TYPES: tuple[str, ...] = (MONTH, QUARTER, YEAR, CUSTOM)


def period_type(period: Period) -> str:
    """月, 季, 年 or 自定义, from the shape of the period (a quarter or year to date is a 季 or 年)."""
    key = period.whole.key
    if period.whole.length == 1:
        return MONTH
    if "-Q" in key:
        return QUARTER
    if "-" not in key:
        return YEAR
    return CUSTOM


def period_choices(months: Sequence[str]) -> dict[str, list[str]]:
    """Period keys with data, newest first: months, quarters (YYYY-Qn) and years (YYYY)."""
    ms = sorted(set(months), reverse=True)
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}" for m in ms}, reverse=True)
    years = sorted({m[:4] for m in ms}, reverse=True)
    return {MONTH: ms, QUARTER: quarters, YEAR: years}


def period_has_data(period: Period, months: Sequence[str]) -> bool:
    return any(period.first <= m <= period.last for m in months)


def to_date(period: Period, latest_complete: str | None) -> Period:
    """A quarter or year still in progress, measured over its months up to ``latest_complete`` (the
    latest complete month); any other period, or one with no complete month, as it is."""
    whole = period.whole
    if latest_complete is None or period_type(whole) not in (QUARTER, YEAR):
        return period
    if not whole.first <= latest_complete < whole.last:
        return whole if whole.last <= latest_complete else period
    return Period(whole.first, latest_complete, whole.key)
