"""Indicator computation: numerators and denominators per district × department × month, then
any rollup as a ratio of sums.

``components`` is the long, additive base table: one row per district, department, month and
indicator with ``numerator`` and ``denominator``. ``aggregate`` sums it over any month range and
grouping, and only then divides.
"""

from __future__ import annotations

import polars as pl

from metrics.periods import Period
from metrics.prepare import KEYS, Dataset, Rules, prepare_sources_lazy
from metrics.registry import INDICATORS, Indicator

CITY = "全市"
COMPONENT_SCHEMA = {
    "district": pl.String,
    "department": pl.String,
    "month": pl.String,
    "indicator": pl.String,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
}


def _sum_by_source(
    sources: dict[str, pl.DataFrame] | dict[str, pl.LazyFrame], indicators: tuple[Indicator, ...]
) -> pl.DataFrame:
    """Sum every indicator's numerator and denominator per key, one group_by per source frame."""
    queries: list[pl.LazyFrame] = []
    for source, frame in sources.items():
        aggs: list[pl.Expr] = []
        for ind in indicators:
            if ind.source == source:
                aggs.append(ind.numerator.cast(pl.Float64).sum().alias(f"{ind.id}\x1fnumerator"))
            if ind.den_source == source:
                aggs.append(ind.denominator.cast(pl.Float64).sum().alias(f"{ind.id}\x1fdenominator"))
        if not aggs:
            continue
        queries.append(frame.lazy().group_by(KEYS).agg(aggs))
    # All sources in one go: the engine runs them side by side and never keeps a filtered copy.
    parts = [summed.unpivot(index=KEYS, variable_name="what", value_name="amount")
             for summed in pl.collect_all(queries)]
    if not parts:
        return pl.DataFrame(schema=COMPONENT_SCHEMA)
    both = pl.concat(parts).with_columns(
        pl.col("what").str.split_exact("\x1f", 1).struct.rename_fields(["indicator", "part"]).alias("w")
    ).unnest("w")
    wide = both.pivot(on="part", index=[*KEYS, "indicator"], values="amount", aggregate_function="sum")
    for col in ("numerator", "denominator"):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    # A key present on one side only (e.g. evaluations in a month with no completed cases).
    return wide.select(
        *KEYS,
        "indicator",
        pl.col("numerator").fill_null(0.0),
        pl.col("denominator").fill_null(0.0),
    ).sort([*KEYS, "indicator"])


def components(data: Dataset, rules: Rules | None = None, until: str | None = None) -> pl.DataFrame:
    """The additive base table for every indicator of the registry (see prepare_sources for until)."""
    sources = prepare_sources_lazy(data, rules, until=until)
    return _sum_by_source(sources, INDICATORS)


def aggregate(
    comps: pl.DataFrame,
    period: Period | None = None,
    by: str = "district",
    districts: list[str] | None = None,
) -> pl.DataFrame:
    """Indicators for one period as a ratio of sums.

    ``by``: ``district`` (one row per district), ``department`` (district × department),
    ``city`` (all districts as 全市), or ``month`` (district × month, for trends).
    Value is null when the denominator is 0.
    """
    frame = comps
    if period is not None:
        frame = frame.filter(pl.col("month").is_between(pl.lit(period.first), pl.lit(period.last)))
    if districts is not None:
        frame = frame.filter(pl.col("district").is_in(districts))
    if by == "city":
        frame = frame.with_columns(pl.lit(CITY).alias("district"))
        keys = ["district"]
    elif by == "department":
        keys = ["district", "department"]
    elif by == "month":
        keys = ["district", "month"]
    elif by == "city_month":
        frame = frame.with_columns(pl.lit(CITY).alias("district"))
        keys = ["district", "month"]
    elif by == "district":
        keys = ["district"]
    else:
        raise ValueError(f"未知的汇总方式：{by}")
    summed = frame.group_by([*keys, "indicator"]).agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    return summed.with_columns(
        pl.when(pl.col("denominator") != 0).then(pl.col("numerator") / pl.col("denominator")).alias("value")
    ).sort([*keys, "indicator"])


def wide_values(long: pl.DataFrame, keys: list[str] | None = None) -> pl.DataFrame:
    """One column per indicator (registry order) from an aggregate() result."""
    keys = keys or ["district"]
    if long.height == 0:
        return pl.DataFrame(schema={**{k: pl.String for k in keys}, **{i.id: pl.Float64 for i in INDICATORS}})
    wide = long.pivot(on="indicator", index=keys, values="value")
    for ind in INDICATORS:
        if ind.id not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(ind.id))
    return wide.select(*keys, *[ind.id for ind in INDICATORS])


def latest_month(comps: pl.DataFrame) -> str | None:
    """The latest month with case data (the default period), else with any data."""
    cases = comps.filter(pl.col("indicator") == "online_case_rate", pl.col("denominator") > 0)
    source = cases if cases.height else comps
    return source["month"].max() if source.height else None  # type: ignore[return-value]
