"""Drill-down: the departments and items behind a district's number.

Values are the registry's numerators and denominators summed per 部门 or 事项, so a department's or an
item's numbers add up to the district's. The cases and evaluations behind a count are the alert
lists (metrics/alerts.py); reading the rows is metrics/detail_store.py.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import polars as pl

from datasets.domain.periods import Period
from datasets.domain.vocabulary import Rules
from datasets.domain.workdays import WorkCalendar, load_calendar
from metrics.alerts import Detail, header, in_period
from metrics.compute import (
    COVERAGE_IDS,
    STOCK_IDS,
    Pending,
    aggregate,
    collect_together,
    component_queries,
    stock_month,
    summed,
)
from metrics.prepare import KEYS, Dataset, Flags, prepare_sources, prepare_sources_lazy
from metrics.registry import BY_ID, INDICATORS, Indicator


def sources_for_district(sources: dict[str, pl.DataFrame], district: str) -> dict[str, pl.DataFrame]:
    return {name: frame.filter(pl.col("district") == district) for name, frame in sources.items()}


def build_sources(
    data: Dataset, rules: Rules, cal: WorkCalendar | None = None, months: Sequence[str] | None = None
) -> dict[str, pl.DataFrame]:
    """The row-level frames the registry's expressions read (metrics.prepare.prepare_sources).

    ``months``: the months of the whole store, when ``data`` is a part of it (one district): catalogs
    are in force in every month the whole store has, as in the component table.
    """
    return prepare_sources(data, rules, cal or load_calendar(), until=max(months) if months else None)


# --- departments and items ------------------------------------------------------------------------


def department_table(
    comps: pl.DataFrame, period: Period, district: str, indicator_ids: Sequence[str]
) -> pl.DataFrame:
    """部门 × chosen indicators: value, numerator and denominator, for one district."""
    long = aggregate(comps, period, by="department", districts=[district]).filter(
        pl.col("indicator").is_in(list(indicator_ids))
    )
    return _wide_chinese(long, "department", "部门", indicator_ids)


def departments(comps: pl.DataFrame, period: Period, district: str) -> list[str]:
    """Departments of a district with any component in the period ("" = not filled in)."""
    frame = comps.filter(pl.col("district") == district, in_period(period, "month"))
    return sorted(frame["department"].unique().to_list())


def item_options(items: pl.DataFrame) -> dict[str, str]:
    """事项编码 → "编码 名称" for a picker, from item_table()."""
    code, name = header("items", "item_code"), header("items", "item_name")
    if items.height == 0:
        return {}
    return {c: f"{c} {n or ''}".strip() for c, n in zip(items[code].to_list(), items[name].to_list(), strict=True)}


# The keys of item_parts: the component keys with the item.
ITEM_KEYS = [*KEYS, "item_code", "since"]


@functools.cache
def _item_sources() -> tuple[str, ...]:
    """The source frames that carry an item code (prepare_sources' shapes, read off empty data)."""
    return tuple(item_sources(prepare_sources_lazy(Dataset.empty(), Rules(), until="2000-01")))


def item_parts(sources: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> pl.DataFrame:
    """Numerator and denominator of every indicator that has items, summed per district × department ×
    month × 事项 (× ``since`` for coverage): the component table with the item as a key. Far fewer rows
    than the district's source frames, and item_values reads only these.
    """
    return collect_together(item_queries(sources))[0]


def item_queries(sources: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> Pending:
    """item_parts() not yet collected (to be collected with the components from the same sources)."""
    usable = [i for i in INDICATORS if i.source in _item_sources() and i.den_source in _item_sources()]
    names = [n for n in sources if n in _item_sources()]
    queries = []
    for name in names:
        aggs = [i.numerator.cast(pl.Float64).sum().alias(f"{i.id}\x1fn") for i in usable if i.source == name]
        aggs += [i.denominator.cast(pl.Float64).sum().alias(f"{i.id}\x1fd") for i in usable if i.den_source == name]
        aggs += [i.aside.expr.cast(pl.Float64).sum().alias(f"{i.id}\x1fa") for i in usable
                 if i.source == name and i.aside is not None]
        queries.append(summed(sources[name], ITEM_KEYS, aggs))
    return Pending(queries, functools.partial(_long_item_parts, usable, names))


def _long_item_parts(usable: list[Indicator], names: list[str], summed: list[pl.DataFrame]) -> pl.DataFrame:
    sums = dict(zip(names, summed, strict=True))
    # One frame per indicator, selected from its source's sums (sharing their key columns), rather than
    # compute's unpivot and pivot: that made millions of long rows for a large district.
    parts = []
    for ind in usable:
        if ind.source not in sums or ind.den_source not in sums:
            continue
        numerator = pl.col(f"{ind.id}\x1fn").alias("numerator")
        denominator = pl.col(f"{ind.id}\x1fd").alias("denominator")
        aside = (pl.col(f"{ind.id}\x1fa") if ind.aside is not None else pl.lit(0.0)).alias("aside")
        if ind.den_source == ind.source:
            frame = sums[ind.source].select(*ITEM_KEYS, numerator, denominator, aside)
        else:  # e.g. evaluations over completed cases: a key may be on one side only
            frame = sums[ind.source].select(*ITEM_KEYS, numerator, aside).join(
                sums[ind.den_source].select(*ITEM_KEYS, denominator), on=ITEM_KEYS, how="full", coalesce=True,
                nulls_equal=True)
        parts.append(frame.select(*ITEM_KEYS, pl.lit(ind.id).alias("indicator"), pl.col("numerator").fill_null(0.0),
                                  pl.col("denominator").fill_null(0.0), pl.col("aside").fill_null(0.0)))
    if not parts:
        return pl.DataFrame(schema={**{k: pl.String for k in ITEM_KEYS}, "indicator": pl.String,
                                    "numerator": pl.Float64, "denominator": pl.Float64, "aside": pl.Float64})
    return pl.concat(parts, how="vertical")


def components_and_item_parts(data: Dataset, rules: Rules, until: str | None,
                              flags: Flags | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """compute.components and item_parts of one district's records, from one preparation of its sources."""
    sources = prepare_sources_lazy(data, rules, load_calendar(), until, flags)
    comps, parts = collect_together(component_queries(sources), item_queries(sources))
    return comps, parts


def item_values(
    parts: pl.DataFrame,
    period: Period,
    district: str,
    department: str | None,
    indicator_ids: Sequence[str],
) -> pl.DataFrame:
    """Long: item_code, indicator, numerator, denominator, value — the registry's expressions summed per
    事项 (indicators whose source has no item, such as the hotline's, are left out), from item_parts.
    Catalog indicators are read in the period's last month, coverage over the whole period, as in
    compute.aggregate."""
    mine = parts.filter(pl.col("district") == district)
    stock = pl.col("indicator").is_in(STOCK_IDS)
    conds = [pl.col("item_code").is_not_null(), pl.col("indicator").is_in(item_level_indicators(indicator_ids)),
             (~stock & in_period(period, "month")) | (stock & (pl.col("month") == pl.lit(stock_month(mine, period.last), pl.String)))]
    if department is not None:
        conds.append(pl.col("department") == department)
    # Coverage counts an item evaluated anywhere in the period (``since``: its latest evaluated month).
    numerator = (pl.when(pl.col("indicator").is_in(COVERAGE_IDS))
                 .then(pl.when(pl.col("since") >= period.first).then(pl.col("denominator")).otherwise(0.0))
                 .otherwise(pl.col("numerator")))
    mine = mine if "aside" in mine.columns else mine.with_columns(pl.lit(0.0).alias("aside"))
    summed = mine.lazy().filter(*conds).group_by("item_code", "indicator").agg(
        numerator.sum().alias("numerator"), pl.col("denominator").sum(), pl.col("aside").sum()
    ).collect()
    return summed.with_columns(
        pl.when(pl.col("denominator") != 0).then(pl.col("numerator") / pl.col("denominator")).alias("value")
    ).select("item_code", "indicator", "numerator", "denominator", "value", "aside").sort("item_code", "indicator")


def item_table(
    parts: pl.DataFrame,
    detail: Detail,
    period: Period,
    district: str,
    department: str | None,
    indicator_ids: Sequence[str],
) -> pl.DataFrame:
    """事项编码, 事项名称 × chosen indicators (value, numerator, denominator) for a district's department."""
    long = item_values(parts, period, district, department, indicator_ids)
    used = item_level_indicators(indicator_ids)
    wide = _wide_chinese(long, "item_code", header("items", "item_code"), used)
    names = detail.item_names.filter(pl.col("district") == district).select(
        pl.col("item_code").alias(header("items", "item_code")), pl.col("item_name").alias(header("items", "item_name"))
    )
    code = header("items", "item_code")
    if wide.height == 0:
        return wide
    joined = wide.join(names, on=code, how="left", maintain_order="left")
    first = [code, header("items", "item_name")]
    return joined.select(*first, *[c for c in joined.columns if c not in first]).sort(code)


def item_level_indicators(indicator_ids: Sequence[str]) -> list[str]:
    """The indicators that can be broken down by 事项 (their source frames carry an item code)."""
    ok = set(_item_sources())
    return [i for i in indicator_ids if BY_ID[i].source in ok and BY_ID[i].den_source in ok]


def item_sources(sources: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> list[str]:
    return [name for name, frame in sources.items() if "item_code" in frame.lazy().collect_schema()]


def _aside_column(ind: Indicator) -> list[str]:
    return [f"{ind.name}·{ind.aside.label}"] if ind.aside is not None else []


def _wide_chinese(long: pl.DataFrame, key: str, key_label: str, indicator_ids: Sequence[str]) -> pl.DataFrame:
    """key, then per indicator: <name>, <name>·分子, <name>·分母 (registry names, registry order)."""
    ids = [i.id for i in INDICATORS if i.id in set(indicator_ids)]
    # An indicator's count beside its value (registry.Aside, e.g. 差评整改率·整改期内差评) follows its parts.
    columns = [key_label] + [c for i in ids for c in (BY_ID[i].name, f"{BY_ID[i].name}·分子", f"{BY_ID[i].name}·分母",
                                                       *_aside_column(BY_ID[i]))]
    if long.height == 0 or not ids:
        return pl.DataFrame(schema={key_label: pl.String, **{c: pl.Float64 for c in columns[1:]}})
    if "aside" not in long.columns:
        long = long.with_columns(pl.lit(0.0).alias("aside"))
    wide = long.filter(pl.col("indicator").is_in(ids)).pivot(
        on="indicator", index=key, values=["value", "numerator", "denominator", "aside"], aggregate_function="first"
    )
    names = {"value": "", "numerator": "·分子", "denominator": "·分母"}
    rename = {}
    for col in wide.columns:
        for part, suffix in names.items():
            prefix = f"{part}_"
            if col.startswith(prefix) and col[len(prefix):] in BY_ID:
                rename[col] = BY_ID[col[len(prefix):]].name + suffix
        if col.startswith("aside_") and (ind := BY_ID.get(col[len("aside_"):])) is not None and ind.aside:
            rename[col] = f"{ind.name}·{ind.aside.label}"
    wide = wide.rename({key: key_label, **rename})
    missing = [c for c in columns if c not in wide.columns]
    wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    return wide.select(columns).sort(key_label)
