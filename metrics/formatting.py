"""Indicator values and changes as users read them, through each indicator's Unit (metrics/units.py).

``key`` is an indicator id or INDEX (the efficiency index, which has its own unit).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from metrics.compute import CITY
from metrics.registry import BY_ID, INDICATORS, UP
from metrics.units import INDEX_UNIT, NULL_TEXT, PERCENT, Unit

INDEX = "index"
INDEX_NAME = "效能指数"


def unit_of(key: str) -> Unit:
    return INDEX_UNIT if key == INDEX else BY_ID[key].unit


def fmt_value(key: str, value: float | None) -> str:
    """An indicator value as users read it: 85.30%, 3.21 工作日, 92.1 分; null as —."""
    return unit_of(key).value_text(value)


def shown(key: str, value: float | None) -> float | None:
    """The value as a number rounded once as fmt_value shows it (51.946 → 51.9; rates in percent)."""
    return unit_of(key).shown(value)


def shown_column(expr: pl.Expr, key: str = INDEX) -> pl.Expr:
    """``shown`` over a column (the index, a group score or a change): rounded once with Python's
    round(), which rounds as the text formatting does (Polars' round rounds ties differently)."""
    unit = unit_of(key)
    return expr.map_elements(unit.shown, return_dtype=pl.Float64, skip_nulls=True)


# Columns of the page and export tables that hold the index, a group score or their change (one decimal).
SCORE_SUFFIXES = (INDEX_NAME, "得分", "本期指数", "上期指数", "指数变化")


def score_columns(columns: Sequence[str]) -> list[str]:
    """Columns shown with the index's one decimal: 效能指数, 〇〇得分, 本期/上期指数, 指数变化."""
    return [c for c in columns if c.endswith(SCORE_SUFFIXES) and not c.endswith(("分子", "分母"))]


def fmt_delta(key: str, delta: float | None) -> str | None:
    """A change with its sign: +1.20 个百分点; no sign when it rounds to zero (Unit.change_text)."""
    return unit_of(key).change_text(delta)


def aside_text(key: str, count: float | None) -> str | None:
    """The count shown beside an indicator that declares one (registry.Aside), e.g. 整改期内差评 3 条;
    None for the others."""
    aside = BY_ID[key].aside if key in BY_ID else None
    if aside is None:
        return None
    return f"{aside.label} {0 if count is None else count:.0f} {aside.unit}"


def direction(key: str) -> int:
    return UP if key == INDEX else BY_ID[key].direction


def is_good(key: str, delta: float | None) -> bool | None:
    """Whether a change is an improvement (↓ indicators improve when they fall); None when unknown or flat
    at the precision shown (0.00 个百分点, 0.0 分)."""
    if delta is None or unit_of(key).is_flat(delta):
        return None
    return (delta > 0) == (direction(key) == UP)


def value_text(column: str, alias: str = "value_text") -> pl.Expr:
    """fmt_value as an expression over ``indicator`` and a value column (small tables only)."""
    return (
        pl.struct("indicator", column)
        .map_elements(lambda r: fmt_value(r["indicator"], r[column]), return_dtype=pl.String)
        .fill_null(NULL_TEXT)
        .alias(alias)
    )


def percent_columns(columns: Sequence[str]) -> list[str]:
    """Columns of a Chinese table that hold a percent indicator's value (named exactly as the indicator)."""
    names = {i.name for i in INDICATORS if i.unit == PERCENT}
    return [c for c in columns if c in names]


def in_percentage_points(frame: pl.DataFrame) -> pl.DataFrame:
    """Percent indicator columns scaled as the unit shows them (fractions → percentage points), for
    widgets that format the number themselves (Streamlit's "percent" format drops decimals: 100%, 54.55%)."""
    percents = [c for c in percent_columns(frame.columns) if frame.schema[c].is_numeric()]
    return frame.with_columns(pl.col(c) * PERCENT.scale for c in percents) if percents else frame


NO_CHANGE = "持平"


def rank_change_label(change: int | None) -> str:
    """A rank change as the pages and exports write it: +2, -1, 持平 (0), — (not ranked in both periods)."""
    if change is None:
        return NULL_TEXT
    return NO_CHANGE if change == 0 else f"{change:+d}"


def rank_change_labels(frame: pl.DataFrame, column: str = "排名变化") -> pl.DataFrame:
    """``frame`` with its numeric rank change ``column`` (if any) as ``rank_change_label`` text."""
    if column not in frame.columns or not frame.schema[column].is_numeric():
        return frame
    return frame.with_columns(pl.col(column).map_elements(rank_change_label, return_dtype=pl.String))


def scope_label(districts: Sequence[str] | None, all_districts: Sequence[str]) -> str:
    """全市, the district's name, or 所选 n 个区县."""
    if not districts or set(districts) >= set(all_districts):
        return CITY
    if len(districts) == 1:
        return districts[0]
    return f"所选 {len(districts)} 个区县"


def scope(districts: Sequence[str] | None) -> list[str] | None:
    """The selected districts as compute.aggregate takes them (None: every district)."""
    return list(districts) if districts else None
