"""District and period comparison: chosen indicators across districts, against the target and the
city, between two periods, and month by month (区县对比, 时段对比)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from datasets.domain.periods import Period
from metrics.compute import CITY, aggregate
from metrics.formatting import NULL_TEXT, aside_text, fmt_delta, fmt_value, is_good, scope, shown, value_text
from metrics.registry import BY_ID, INDICATORS, indicator_frame
from metrics.scoring import ScoringSettings

PERIOD_A, PERIOD_B = "本期", "对比期"
ALL_INDICATORS: tuple[str, ...] = tuple(i.id for i in INDICATORS)


def district_values(
    comps: pl.DataFrame,
    period: Period,
    settings: ScoringSettings,
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
) -> pl.DataFrame:
    """Long: district, indicator, name, value, numerator, denominator, value_text, target, city.

    ``city`` is the 全市 value of the indicator, for the reference line.
    """
    by_district = aggregate(comps, period, by="district", districts=scope(districts))
    city = aggregate(comps, period, by="city").select("indicator", pl.col("value").alias("city"))
    meta = indicator_meta(settings).select("indicator", "name", "target", "order")
    out = (
        by_district.filter(pl.col("indicator").is_in(list(indicator_ids)))
        .join(city, on="indicator", how="left")
        .join(meta, on="indicator", how="left")
    )
    return out.with_columns(value_text("value")).sort(["order", "district"]).drop("order")


def indicator_meta(settings: ScoringSettings) -> pl.DataFrame:
    """indicator, name, unit, arrow, group, target, floor, weight, order (registry order)."""
    return indicator_frame().with_columns(
        *[pl.Series(field, [getattr(settings.indicators[i.id], field) for i in INDICATORS])
          for field in ("target", "floor", "weight")]
    ).select("indicator", "name", "unit", "arrow", "group", "target", "floor", "weight", "order")


def compare_table(values: pl.DataFrame) -> pl.DataFrame:
    """district_values() as a Chinese table: 区县, 指标, 实际值, 分子, 分母, 目标值, 全市值 (text values)."""
    rows = [
        {
            "区县": r["district"],
            "指标": f"{r['name']} {BY_ID[r['indicator']].arrow}",
            "实际值": r["value_text"],
            "分子": r["numerator"],
            "分母": r["denominator"],
            "目标值": fmt_value(r["indicator"], r["target"]),
            f"{CITY}值": fmt_value(r["indicator"], r["city"]),
            ASIDE_COLUMN: aside_text(r["indicator"], r.get("aside")) or "",
        }
        for r in values.iter_rows(named=True)
    ]
    table = pl.DataFrame(rows, schema={"区县": pl.String, "指标": pl.String, "实际值": pl.String, "分子": pl.Float64,
                                       "分母": pl.Float64, "目标值": pl.String, f"{CITY}值": pl.String,
                                       ASIDE_COLUMN: pl.String})
    return _without_empty_aside(table)


# Beside an indicator's value, what it counts separately (registry.Aside: 整改期内差评 beside the two
# rectification rates). The column appears only when a chosen indicator has such a count.
ASIDE_COLUMN = "不计入分子分母"


def _without_empty_aside(table: pl.DataFrame) -> pl.DataFrame:
    columns = [c for c in table.columns if c.endswith(ASIDE_COLUMN)]
    empty = [c for c in columns if table.height == 0 or (table[c] == "").all()]
    return table.drop(empty)


def score_long(
    rank: pl.DataFrame, indicator_ids: Sequence[str] | None = None, districts: Sequence[str] | None = None
) -> pl.DataFrame:
    """district, indicator, name, group, score, value, numerator, denominator, value_text from ranking()."""
    ids = list(indicator_ids) if indicator_ids else [i.id for i in INDICATORS]
    if districts:
        rank = rank.filter(pl.col("district").is_in(list(districts)))
    frames = [
        rank.select(
            "district",
            pl.lit(i).alias("indicator"),
            pl.lit(BY_ID[i].name).alias("name"),
            pl.lit(BY_ID[i].group).alias("group"),
            pl.col(f"score_{i}").alias("score"),
            pl.col(i).alias("value"),
            pl.col(f"{i}__num").alias("numerator"),
            pl.col(f"{i}__den").alias("denominator"),
        )
        for i in ids
    ]
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).with_columns(value_text("value"))


def period_comparison(
    comps: pl.DataFrame,
    a: Period,
    b: Period,
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
    include_city: bool = True,
) -> pl.DataFrame:
    """Long: district, indicator, name, period, period_label, value, numerator, denominator, value_text.

    ``period`` is 本期 (a) or 对比期 (b); the city (全市) is added when ``include_city``.
    """
    frames = []
    for tag, p in ((PERIOD_A, a), (PERIOD_B, b)):
        parts = [aggregate(comps, p, by="district", districts=scope(districts))]
        if include_city:
            parts.append(aggregate(comps, p, by="city"))
        frames.append(
            pl.concat(parts).with_columns(pl.lit(tag).alias("period"), pl.lit(p.label).alias("period_label"))
        )
    names = indicator_frame().select("indicator", "name", "order")
    return (
        pl.concat(frames)
        .filter(pl.col("indicator").is_in(list(indicator_ids)))
        .join(names, on="indicator")
        .with_columns(value_text("value"))
        .sort(["order", "district", "period"])
        .drop("order")
    )


def period_change_table(comparison: pl.DataFrame, selected: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per district × indicator: both periods' values (text), the change, numerators, denominators.

    Changes first (issue 27): the rows that changed at the precision shown, the ``selected`` indicators'
    before the others', each by the size of the change as shown (percentage points, days, points; largest
    first); then the rows that read 持平, then those without a value in one of the periods.
    """
    if comparison.height == 0:
        return pl.DataFrame(schema={"区县": pl.String, "指标": pl.String})
    a = comparison.filter(pl.col("period") == PERIOD_A)
    b = comparison.filter(pl.col("period") == PERIOD_B)
    label_a = a["period_label"][0] if a.height else PERIOD_A
    label_b = b["period_label"][0] if b.height else PERIOD_B
    keys = ["district", "indicator", "name"]
    a, b = (f if "aside" in f.columns else f.with_columns(pl.lit(0.0).alias("aside")) for f in (a, b))
    joined = a.select(*keys, "value", "numerator", "denominator", "value_text", "aside").join(
        b.select(*keys, "value", "numerator", "denominator", "value_text", "aside"), on=keys, how="full",
        coalesce=True, suffix="_b",
    ).join(indicator_frame().select("indicator", pl.col("order").alias("_order")), on="indicator", how="left")
    chosen = set(selected) if selected else set(joined["indicator"].to_list())
    ordered = sorted(joined.iter_rows(named=True), key=lambda r: (
        *_change_order(r["indicator"], r["value"], r["value_b"], chosen), r["_order"], r["district"] == CITY,
        r["district"]))
    rows = []
    for r in ordered:
        delta = None if r["value"] is None or r["value_b"] is None else r["value"] - r["value_b"]
        good = is_good(r["indicator"], delta)
        arrow = "" if delta is None or good is None else ("▲ " if delta > 0 else "▼ ")
        rows.append(
            {
                "区县": r["district"],
                "指标": f"{r['name']} {BY_ID[r['indicator']].arrow}",
                # The change before the values: on a phone the first columns are what shows.
                "变化": arrow + (fmt_delta(r["indicator"], delta) or NULL_TEXT),
                "评价": (NULL_TEXT if delta is None else "持平") if good is None else ("改善" if good else "退步"),
                f"{PERIOD_A}（{label_a}）": r["value_text"] or NULL_TEXT,
                f"{PERIOD_B}（{label_b}）": r["value_text_b"] or NULL_TEXT,
                f"{PERIOD_A}分子": r["numerator"],
                f"{PERIOD_A}分母": r["denominator"],
                f"{PERIOD_B}分子": r["numerator_b"],
                f"{PERIOD_B}分母": r["denominator_b"],
                f"{PERIOD_A}{ASIDE_COLUMN}": aside_text(r["indicator"], r["aside"]) or "",
                f"{PERIOD_B}{ASIDE_COLUMN}": aside_text(r["indicator"], r["aside_b"]) or "",
            }
        )
    return _without_empty_aside(pl.DataFrame(rows))


def _change_order(indicator: str, value: float | None, value_b: float | None, chosen: set[str]) -> tuple[int, bool, float]:
    """Sort key of a change row: (changed 0 / 持平 1 / no value 2, not selected, −the change as shown)."""
    if value is None or value_b is None:
        return 2, indicator not in chosen, 0.0
    size = abs(shown(indicator, value - value_b) or 0.0)
    return (0 if size else 1), indicator not in chosen, -size


def monthly_values(
    comps: pl.DataFrame,
    months: Sequence[str],
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
    include_city: bool = True,
) -> pl.DataFrame:
    """Long: district, month, indicator, name, value, numerator, denominator, value_text (trends)."""
    schema = {"district": pl.String, "month": pl.String, "indicator": pl.String, "name": pl.String,
              "numerator": pl.Float64, "denominator": pl.Float64, "value": pl.Float64, "value_text": pl.String}
    if not months:
        return pl.DataFrame(schema=schema)
    span = Period(months[0], months[-1])
    parts = [aggregate(comps, span, by="month", districts=scope(districts))]
    if include_city:
        parts.append(aggregate(comps, span, by="city_month"))
    names = indicator_frame().select("indicator", "name")
    return (
        pl.concat(parts)
        .filter(pl.col("indicator").is_in(list(indicator_ids)))
        .join(names, on="indicator")
        .with_columns(value_text("value"))
        .select(list(schema))
        .sort(["indicator", "district", "month"])
    )


def districts_with_data(comps: pl.DataFrame, period: Period, districts: Sequence[str]) -> list[str]:
    """The districts (in the order given) with any component in the period: where a drill-down can start."""
    first, last = period.first, period.last
    present = set(
        comps.filter(pl.col("month").is_between(pl.lit(first), pl.lit(last)), pl.col("district").is_in(list(districts)))
        ["district"].unique().to_list()
    )
    return [d for d in districts if d in present]
