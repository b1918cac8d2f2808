"""Indicator computation: numerators and denominators per district × department × month, then
any rollup as a ratio of sums.

``components`` is the long, additive base table: one row per district, department, month and
indicator with ``numerator`` and ``denominator``. ``aggregate`` sums it over any month range and
grouping, and only then divides.

Case, evaluation and hotline indicators are flows: a range is the sum of its months. Catalog
indicators are stocks: a range takes the catalog in force in its last month, so only that month's
rows count. Coverage rows carry ``since`` (the latest month up to their month in which the item was
evaluated), so a range counts each item of that catalog once, when it was evaluated anywhere in the
range. Cities and departments still add up: every rollup is a sum over districts of the same rows.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from datasets.domain.periods import Period, month_range
from datasets.domain.vocabulary import Rules
from metrics.prepare import KEYS, Dataset, Flags, month_label, prepare_sources_lazy
from metrics.registry import INDICATORS, Indicator

CITY = "全市"
COMPONENT_SCHEMA = {
    "district": pl.String,
    "department": pl.String,
    "month": pl.String,
    "since": pl.String,
    "indicator": pl.String,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "aside": pl.Float64,  # the count shown beside the value (registry.Aside), 0 for the others
}
COMPONENT_KEYS = [*KEYS, "since"]
STOCK_IDS = [i.id for i in INDICATORS if i.is_stock]
COVERAGE_IDS = [i.id for i in INDICATORS if i.source == "items_coverage"]


@dataclass(frozen=True)
class Pending:
    """Lazy group-bys and how to turn their results into one table: several Pendings are collected
    together (collect_together), so queries over the same source frames share their preparation."""

    queries: list[pl.LazyFrame]
    finish: Callable[[list[pl.DataFrame]], pl.DataFrame]


def collect_together(*pending: Pending) -> list[pl.DataFrame]:
    """Every Pending's table, all of their queries collected in one go (the engine runs them side by side
    and computes the source frames they have in common once)."""
    done = pl.collect_all([q for p in pending for q in p.queries])
    out, at = [], 0
    for p in pending:
        out.append(p.finish(done[at:at + len(p.queries)]))
        at += len(p.queries)
    return out


def component_queries(
    sources: dict[str, pl.DataFrame] | dict[str, pl.LazyFrame], indicators: tuple[Indicator, ...] = INDICATORS
) -> Pending:
    """components() of prepared source frames, not yet collected: every indicator's numerator and
    denominator summed per key, one group_by per source frame."""
    queries: list[pl.LazyFrame] = []
    for source, frame in sources.items():
        aggs: list[pl.Expr] = []
        for ind in indicators:
            if ind.source == source:
                aggs.append(ind.numerator.cast(pl.Float64).sum().alias(f"{ind.id}\x1fnumerator"))
            if ind.den_source == source:
                aggs.append(ind.denominator.cast(pl.Float64).sum().alias(f"{ind.id}\x1fdenominator"))
            if ind.source == source and ind.aside is not None:
                aggs.append(ind.aside.expr.cast(pl.Float64).sum().alias(f"{ind.id}\x1faside"))
        if not aggs:
            continue
        queries.append(summed(frame, COMPONENT_KEYS, aggs))
    return Pending(queries, _long_components)


def summed(frame: pl.DataFrame | pl.LazyFrame, keys: list[str], aggs: list[pl.Expr]) -> pl.LazyFrame:
    """``aggs`` per ``keys`` of a source frame, its month number written as YYYY-MM (prepare.month_label)
    and ``since`` null where the frame has none: both once per sum rather than per row, where they
    made the group-by's keys longer (prepare.month_number)."""
    lazy = frame.lazy()
    has_since = "since" in lazy.collect_schema()
    out = lazy.group_by([k for k in keys if k != "since" or has_since]).agg(aggs).with_columns(
        month_label(pl.col("month")).alias("month"))
    return out if has_since else out.with_columns(pl.lit(None, dtype=pl.String).alias("since"))


def _long_components(summed: list[pl.DataFrame]) -> pl.DataFrame:
    parts = [s.unpivot(index=COMPONENT_KEYS, variable_name="what", value_name="amount") for s in summed]
    if not parts:
        return pl.DataFrame(schema=COMPONENT_SCHEMA)
    both = pl.concat(parts).with_columns(
        pl.col("what").str.split_exact("\x1f", 1).struct.rename_fields(["indicator", "part"]).alias("w")
    ).unnest("w")
    wide = both.pivot(on="part", index=[*COMPONENT_KEYS, "indicator"], values="amount", aggregate_function="sum")
    for col in ("numerator", "denominator", "aside"):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    # A key present on one side only (e.g. evaluations in a month with no completed cases).
    return wide.select(
        *KEYS,
        "since",
        "indicator",
        pl.col("numerator").fill_null(0.0),
        pl.col("denominator").fill_null(0.0),
        pl.col("aside").fill_null(0.0),
    ).sort([*KEYS, "indicator", "since"], nulls_last=True)


def components(data: Dataset, rules: Rules | None = None, until: str | None = None,
               flags: Flags | None = None) -> pl.DataFrame:
    """The additive base table for every indicator of the registry (see prepare_sources_lazy for until
    and flags)."""
    return collect_together(component_queries(prepare_sources_lazy(data, rules, until=until, flags=flags)))[0]


def aggregate(
    comps: pl.DataFrame,
    period: Period | None = None,
    by: str = "district",
    districts: list[str] | None = None,
) -> pl.DataFrame:
    """Indicators for one period as a ratio of sums, on the full grid.

    ``by``: ``district`` (one row per district × indicator), ``department`` (district × department),
    ``city`` (all districts as 全市), ``month`` / ``city_month`` (each month its own period, for trends).
    ``districts``: the districts in scope (default: every district in ``comps``); each gets a row for
    every indicator, with numerator and denominator 0 and a null value where nothing is counted.
    Value is null when the denominator is 0. ``period`` None means every month in ``comps``.
    """
    # unique() first: a components table has hundreds of thousands of rows, and this runs on every rerun
    scope = sorted(comps["district"].unique().to_list()) if districts is None else list(districts)
    comps = with_aside(comps)
    source = comps if by == "department" else department_totals(comps)
    frame = source.filter(pl.col("district").is_in(scope))
    if period is not None:
        first, last = period.first, period.last
    elif comps.height:
        first, last = str(comps["month"].min()), str(comps["month"].max())
    else:
        first = last = None
    per_month = by in ("month", "city_month")
    if first is not None:
        in_range = pl.col("month").is_between(pl.lit(first), pl.lit(last))
        if per_month:
            frame = frame.filter(in_range)
        else:  # stocks: the catalog in force in the range's last month
            stock = pl.col("indicator").is_in(STOCK_IDS)
            at = stock_month(frame, last)
            frame = frame.filter((~stock & in_range) | (stock & (pl.col("month") == pl.lit(at, pl.String))))
    start = pl.col("month") if per_month else pl.lit(first)
    frame = frame.with_columns(
        pl.when(pl.col("indicator").is_in(COVERAGE_IDS))
        .then(pl.when(pl.col("since") >= start).then(pl.col("denominator")).otherwise(0.0))
        .otherwise(pl.col("numerator"))
        .alias("numerator")
    )
    if by in ("city", "city_month"):
        frame = frame.with_columns(pl.lit(CITY).alias("district"))
    keys = {"district": ["district"], "city": ["district"], "department": ["district", "department"],
            "month": ["district", "month"], "city_month": ["district", "month"]}.get(by)
    if keys is None:
        raise ValueError(f"未知的汇总方式：{by}")
    summed = frame.group_by([*keys, "indicator"]).agg(pl.col("numerator").sum(), pl.col("denominator").sum(),
                                                       pl.col("aside").sum())
    grid = _grid(by, scope, frame, first, last).join(pl.DataFrame({"indicator": [i.id for i in INDICATORS]}),
                                                    how="cross")
    return grid.join(summed, on=[*keys, "indicator"], how="left").with_columns(
        pl.col("numerator").fill_null(0.0),
        pl.col("denominator").fill_null(0.0),
        pl.col("aside").fill_null(0.0),
    ).with_columns(
        pl.when(pl.col("denominator") != 0).then(pl.col("numerator") / pl.col("denominator")).alias("value")
    ).sort([*keys, "indicator"])


def with_aside(comps: pl.DataFrame) -> pl.DataFrame:
    """``comps`` with its ``aside`` column (0 when it has none: a table made by hand or before it existed)."""
    return comps if "aside" in comps.columns else comps.with_columns(pl.lit(0.0).alias("aside"))


def stock_month(frame: pl.DataFrame, last: str) -> str | None:
    """The month whose catalog rows measure a range ending in ``last``: ``last`` itself, or, when the
    range ends after the store's last month with data, that month. Catalog rows are made up to it
    (prepare.items_in_force) and no newer catalog can exist after it, so the catalog in force there
    is still in force in ``last``."""
    found = frame.filter(pl.col("indicator").is_in(STOCK_IDS), pl.col("month") <= last)["month"].max()
    return None if found is None else str(found)


# The component keys without the department: what department_totals sums over.
TOTAL_KEYS = [*(k for k in COMPONENT_KEYS if k != "department"), "indicator"]
_TOTALS: dict[int, pl.DataFrame] = {}
_TOTALS_LOCK = threading.Lock()


def department_totals(comps: pl.DataFrame) -> pl.DataFrame:
    """``comps`` summed over its departments (one row per district, month, since and indicator).

    Every rollup but the department one sums over departments anyway; summed once, the tables of a
    page run over a tenth of the rows. Kept while ``comps`` lives: the pages share one component
    table per data version (pages/_shared.get_components), so each version is summed once.
    """
    key = id(comps)
    with _TOTALS_LOCK:
        hit = _TOTALS.get(key)
    if hit is None:
        hit = with_aside(comps).group_by(TOTAL_KEYS).agg(
            pl.col("numerator").sum(), pl.col("denominator").sum(), pl.col("aside").sum())
        with _TOTALS_LOCK:
            if key not in _TOTALS:  # an id is reused only after its frame is gone: drop the entry then
                weakref.finalize(comps, _TOTALS.pop, key, None)
            _TOTALS[key] = hit
    return hit


def _grid(by: str, scope: list[str], frame: pl.DataFrame, first: str | None, last: str | None) -> pl.DataFrame:
    """The rows every table has, whether or not anything was counted in them."""
    months = month_range(first, last) if first and last else []
    if by == "city":
        return pl.DataFrame({"district": [CITY]})
    if by == "department":  # the departments of the scope that appear in the period
        return frame.select("district", "department").unique()
    if by == "month":
        return pl.DataFrame({"district": scope}, schema={"district": pl.String}).join(
            pl.DataFrame({"month": months}, schema={"month": pl.String}), how="cross")
    if by == "city_month":
        return pl.DataFrame({"district": [CITY] * len(months), "month": months},
                            schema={"district": pl.String, "month": pl.String})
    return pl.DataFrame({"district": scope}, schema={"district": pl.String})


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
