"""Units (metrics/units.py) and the indicator formatters built on them (metrics/formatting.py)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics import formatting
from metrics.formatting import INDEX
from metrics.registry import INDICATORS, indicator_frame
from metrics.units import DAYS, INDEX_UNIT, NULL_TEXT, PERCENT, POINTS, UNITS, Unit


@pytest.mark.parametrize(
    ("unit", "value", "text"),
    [
        (PERCENT, 0.8534, "85.34%"),
        (PERCENT, 1.0, "100.00%"),
        (PERCENT, -0.1234, "-12.34%"),  # 法定提速率 can be negative
        (PERCENT, 0.0, "0.00%"),
        (PERCENT, None, NULL_TEXT),
        (DAYS, 3.2, "3.20 工作日"),
        (DAYS, 0, "0.00 工作日"),
        (DAYS, None, NULL_TEXT),
        (POINTS, 92.06, "92.1 分"),
        (POINTS, 100, "100.0 分"),
        (INDEX_UNIT, 71.64, "71.6"),
        (INDEX_UNIT, None, NULL_TEXT),
    ],
)
def test_value_text(unit: Unit, value: float | None, text: str) -> None:
    assert unit.value_text(value) == text


@pytest.mark.parametrize(
    ("unit", "delta", "text", "flat"),
    [
        (PERCENT, -0.0123, "-1.23 个百分点", False),
        (PERCENT, 0.00006, "+0.01 个百分点", False),
        (PERCENT, 0.00001, "0.00 个百分点", True),  # rounds to zero: no sign
        (PERCENT, -0.00004, "0.00 个百分点", True),
        (PERCENT, 0.0, "0.00 个百分点", True),
        (DAYS, 0.5, "+0.50 工作日", False),
        (DAYS, -0.004, "0.00 工作日", True),
        (DAYS, -0.006, "-0.01 工作日", False),
        (POINTS, 0.06, "+0.1 分", False),
        (POINTS, -0.04, "0.0 分", True),
        (INDEX_UNIT, 1.26, "+1.3", False),
        (INDEX_UNIT, -0.04, "0.0", True),
    ],
)
def test_change_text_and_flat(unit: Unit, delta: float, text: str, flat: bool) -> None:
    assert unit.change_text(delta) == text
    assert unit.is_flat(delta) is flat


def test_a_missing_change_has_no_text() -> None:
    assert all(unit.change_text(None) is None for unit in UNITS)


@given(unit=st.sampled_from(UNITS), delta=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_flat_is_what_the_text_shows(unit: Unit, delta: float) -> None:
    """A change is flat exactly when its text has no non-zero digit, and otherwise carries its sign."""
    text = unit.change_text(delta)
    assert text is not None
    number = text.removesuffix(unit.change_suffix)
    assert unit.is_flat(delta) == (not any(ch in "123456789" for ch in number))
    if not unit.is_flat(delta):
        assert number[0] == ("+" if delta > 0 else "-")


@pytest.mark.parametrize(
    ("key", "delta", "good"),
    [
        ("avg_handling_days", -0.5, True),  # ↓ indicator: a decrease is good
        ("red_card_rate", 0.01, False),
        ("on_time_rate", 0.01, True),
        ("on_time_rate", 0.00004, None),  # 0.00 个百分点: flat
        ("satisfaction_score", 0.04, None),  # 0.0 分: flat
        ("satisfaction_score", 0.06, True),
        (INDEX, -0.06, False),
        ("on_time_rate", None, None),
    ],
)
def test_is_good(key: str, delta: float | None, good: bool | None) -> None:
    assert formatting.is_good(key, delta) is good


def test_indicator_formatters_go_through_the_unit() -> None:
    assert formatting.fmt_value("on_time_rate", 0.8534) == "85.34%"
    assert formatting.fmt_value("avg_handling_days", 3.2) == "3.20 工作日"
    assert formatting.fmt_value(INDEX, 71.64) == "71.6"
    assert formatting.fmt_delta("satisfaction_score", -1.25) == "-1.2 分"  # 1.25 is exact: half to even


def test_every_indicator_has_a_declared_unit() -> None:
    for ind in INDICATORS:
        assert isinstance(ind.unit, Unit) and ind.unit in UNITS, ind.id
    undeclared = Unit("次", " 次", " 次", 1.0, 0, "#,##0", ",.0f", ",.0f")
    with pytest.raises(ValueError, match="incomplete"):
        dataclasses.replace(INDICATORS[0], unit=undeclared)


def test_indicator_frame_follows_the_registry() -> None:
    frame = indicator_frame()
    assert frame["indicator"].to_list() == [i.id for i in INDICATORS]
    assert frame["order"].to_list() == list(range(len(INDICATORS)))
    row = frame.row(next(n for n, i in enumerate(INDICATORS) if i.id == "avg_handling_days"), named=True)
    assert (row["name"], row["unit"], row["arrow"], row["group"]) == ("平均办理用时（工作日）", "工作日", "↓", "B")


def test_percent_columns_are_the_percent_indicators() -> None:
    assert formatting.percent_columns(["区县", "按时办结率", "平均办理用时（工作日）", "满意度得分", "好评率"]) == [
        "按时办结率",
        "好评率",
    ]


@pytest.mark.parametrize(
    ("unit", "value", "shown"),
    [(INDEX_UNIT, 51.946, 51.9), (INDEX_UNIT, 51.25, 51.2), (INDEX_UNIT, None, None), (PERCENT, 0.51236, 51.24),
     (POINTS, 92.06, 92.1), (DAYS, 3.205, 3.21)],
)
def test_shown_is_the_number_the_text_shows(unit: Unit, value: float | None, shown: float | None) -> None:
    assert unit.shown(value) == shown


@given(value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_shown_agrees_with_value_text_and_the_polars_column(value: float) -> None:
    """A cell holding shown() reads, at the unit's decimals, exactly what value_text() writes, and
    formatting.shown_column rounds a column the same way (Polars' own round() differs on ties)."""
    import polars as pl

    for unit in UNITS:
        number = unit.shown(value)
        assert f"{number:.{unit.decimals}f}{unit.suffix}" == unit.value_text(value)
    column = pl.DataFrame({"v": [value]}).select(formatting.shown_column(pl.col("v")))["v"][0]
    assert column == INDEX_UNIT.shown(value)


def test_score_columns_are_shown_with_one_decimal() -> None:
    assert formatting.score_columns(["区县", "效能指数", "网上办事得分", "本期指数", "指数变化", "排名变化", "满意度得分·分子"]) == [
        "效能指数", "网上办事得分", "本期指数", "指数变化"]
