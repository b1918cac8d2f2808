"""Units of measure: each declared once with how its values and changes are written.

The registry's indicators refer to a Unit; pages, charts, exports and the bulletin format every value
and every change through it, so a unit's precision and suffix live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

NULL_TEXT = "—"


@dataclass(frozen=True)
class Unit:
    """How values in this unit are shown: ``value × scale`` with ``decimals`` decimals and a suffix."""

    name: str  # the 单位 column of tables (%, 工作日, 分; empty for the index)
    suffix: str  # after a value: "%", " 工作日"
    change_suffix: str  # after a change: " 个百分点", " 工作日"
    scale: float  # stored value × scale = shown value (rates are stored as fractions, shown as %)
    decimals: int
    excel_format: str  # number format of the value cells of workbooks
    d3_format: str  # chart tooltips and labels
    d3_axis_format: str  # chart axes

    def __post_init__(self) -> None:
        if self.scale <= 0 or self.decimals < 0:
            raise ValueError(f"unit {self.name!r}: scale must be positive and decimals not negative")

    @property
    def is_percent(self) -> bool:
        """Values are fractions shown as percentages (and edited as numbers of percent)."""
        return self.scale == 100.0

    def value_text(self, value: float | None) -> str:
        """85.30%, 3.21 工作日, 92.1 分; null as —."""
        if value is None:
            return NULL_TEXT
        return f"{value * self.scale:.{self.decimals}f}{self.suffix}"

    def shown(self, value: float | None) -> float | None:
        """The number a reader sees (value × scale, rounded once to ``decimals``) — what CSV and Excel
        cells hold, so that a cell, a chart label and a sentence agree: 51.946 → 51.9 everywhere."""
        if value is None or value != value:  # None or NaN
            return None
        # round() rounds the exact binary value as format() does, so shown() agrees with value_text().
        return round(value * self.scale, self.decimals)

    def is_flat(self, delta: float) -> bool:
        """Whether a change rounds to zero at the precision shown (0.00 个百分点, 0.0 分)."""
        # round() rounds the exact binary value as format() does, so this agrees with the text shown.
        return round(delta * self.scale, self.decimals) == 0

    def change_text(self, delta: float | None) -> str | None:
        """A change with its sign (ASCII minus, so that widgets colour it): +1.20 个百分点; a change that
        rounds to zero has no sign (0.00 个百分点)."""
        if delta is None:
            return None
        if self.is_flat(delta):
            return f"{0.0:.{self.decimals}f}{self.change_suffix}"
        return f"{delta * self.scale:+.{self.decimals}f}{self.change_suffix}"


PERCENT = Unit("%", "%", " 个百分点", 100.0, 2, "0.00%", ".2%", ".1~%")
DAYS = Unit("工作日", " 工作日", " 工作日", 1.0, 2, "#,##0.00", ",.2f", ",.1~f")
POINTS = Unit("分", " 分", " 分", 1.0, 1, "#,##0.0", ",.1f", ",.1~f")
# The efficiency index (效能指数) and the group scores: 0–100 without a suffix, one decimal everywhere.
INDEX_UNIT = Unit("", "", "", 1.0, 1, "#,##0.0", ",.1f", ",.1~f")

UNITS: tuple[Unit, ...] = (PERCENT, DAYS, POINTS, INDEX_UNIT)
