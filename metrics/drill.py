"""Drill-down: the departments and items behind a district's number, and the cases and evaluations
behind a count.

Row-level flags come from metrics/prepare.py (``case_flags``, ``evaluation_flags``,
``prepare_sources``) so every list is counted with exactly the rules of the indicators: the red-card
list of a district has as many rows as the numerator of its 红牌发生率, the list of 差评 not rectified
in time as many as the denominator minus the numerator of its 差评按时整改率.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from sqlalchemy.engine import Engine

from datasets import snapshots
from datasets import vocabulary as v
from datasets.calendar import WorkCalendar, load_calendar
from datasets.periods import Period
from datasets.schema import KINDS, RATINGS
from datasets.vocabulary import Rules
from metrics.compute import aggregate
from metrics.prepare import (
    Dataset,
    case_flags,
    district_dataset,
    evaluation_flags,
    load_dataset,
    prepare_sources,
)
from metrics.registry import BY_ID, INDICATORS, STOCK_SOURCES, Indicator

RED_CARDS, OVERDUE_OPEN, BAD_LATE, BAD_ALL = "red_cards", "overdue_open", "bad_late", "bad_all"
# Part of the cached alert rows' key: bump it when what an alert counts changes.
ALERTS_VERSION = "2"


@dataclass(frozen=True)
class Alert:
    id: str
    title: str
    description: str
    unit: str  # 件 or 条


ALERTS: dict[str, Alert] = {
    RED_CARDS: Alert(
        RED_CARDS,
        "红牌办件",
        "本期受理、被亮红牌的办件（与红牌发生率的分子口径相同）。",
        "件",
    ),
    OVERDUE_OPEN: Alert(
        OVERDUE_OPEN,
        "超期在办件",
        "本期受理、至今仍在办理且用时（计至导出月份月末）已超过承诺时限的办件。",
        "件",
    ),
    BAD_LATE: Alert(
        BAD_LATE,
        "差评未按时整改",
        "本期的差评中未在规定工作日内完成整改的评价（差评按时整改率的分母减分子）。",
        "条",
    ),
}

# Columns of the lists, in order; labels come from the data model (datasets/schema.py).
_CASE_FIELDS = ("case_id", "item_code", "item_name", "department", "channel", "accepted_at", "completed_at",
                "status", "promised_limit", "legal_limit", "supervision")
_EVAL_FIELDS = ("eval_id", "case_id", "item_code", "department", "eval_channel", "rating", "evaluated_at",
                "rectify_status", "rectified_at")


@dataclass(frozen=True)
class Detail:
    """Row-level frames behind the indicators, computed once per data version."""

    cases: pl.DataFrame  # case_flags(): every case with limits, elapsed time and flags
    evaluations: pl.DataFrame  # evaluation_flags(): every evaluation with its month and flags
    item_names: pl.DataFrame  # district, item_code, item_name (newest catalog, else cases)


def build_detail(data: Dataset, rules: Rules, cal: WorkCalendar | None = None) -> Detail:
    cal = cal or load_calendar()
    cases = case_flags(data, cal, rules).with_columns(
        pl.col("accepted_at").dt.strftime("%Y-%m").alias("accepted_month"),
        pl.col("completed_at").dt.strftime("%Y-%m").alias("completed_month"),
    )
    evaluations = evaluation_flags(data, cal, rules).with_columns(pl.col("department").fill_null(""))
    return Detail(cases, evaluations, item_names(data))


def item_names(data: Dataset) -> pl.DataFrame:
    """district, item_code, item_name: the newest catalog's name first, the cases' names as a fallback."""
    names = pl.concat(
        [
            data.items.sort("period", descending=True).select("district", "item_code", "item_name"),
            data.cases.select("district", "item_code", "item_name"),
        ],
        how="vertical_relaxed",
    ).filter(pl.col("item_name").is_not_null())
    return names.unique(subset=["district", "item_code"], keep="first", maintain_order=True)


def for_district(detail: Detail, district: str) -> Detail:
    """The rows of one district (drill-down within a district scans a tenth of the rows)."""
    keep = pl.col("district") == district
    return Detail(detail.cases.filter(keep), detail.evaluations.filter(keep), detail.item_names.filter(keep))


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


def load_district(
    engine: Engine, district: str, rules: Rules, months: Sequence[str]
) -> tuple[Detail, dict[str, pl.DataFrame]]:
    """Detail and source frames of one district, from its snapshot (a tenth of the rows of the city).

    The detail holds the alert rows only (district_alerts, cached): the drill-down's case lists are
    alert lists narrowed to a department or item.
    """
    keys = snapshots.active_keys(engine)
    data = district_dataset(engine, district, keys)
    alerts = district_alerts(engine, district, rules, keys, data)
    detail = Detail(alerts.cases, alerts.evaluations, item_names(data))
    return detail, build_sources(data, rules, load_calendar(), months)


def _overdue_open() -> pl.Expr:
    return v.overdue_open_case()


def _red_card() -> pl.Expr:
    return v.accepted_case() & pl.col("red_card")


def alert_rows(detail: Detail) -> Detail:
    """Only the rows an alert list can show: red cards, open cases past their promised limit, 差评.

    A few per cent of the rows, so the overview's lists for the whole city fit in memory where all
    cases and evaluations of a large city would not.
    """
    return Detail(
        detail.cases.filter(_red_card() | _overdue_open()),
        detail.evaluations.filter(pl.col("is_bad")),
        detail.item_names.head(0),
    )


_NO_NAMES = {"district": pl.String, "item_code": pl.String, "item_name": pl.String}


def district_alerts(
    engine: Engine, district: str, rules: Rules, keys: dict[tuple[str, str], str], data: Dataset | None = None
) -> Detail:
    """alert_rows() of one district, cached with its snapshot (``data``: its records, if already read)."""
    key = snapshots.digest(snapshots.district_key(keys, district), rules.key(), ALERTS_VERSION)

    @functools.cache  # both files come from one build when neither is cached
    def rows() -> Detail:
        records = data if data is not None else district_dataset(engine, district, keys)
        return alert_rows(build_detail(records, rules))

    cases = snapshots.cached(engine, "alert_cases", district, key, lambda: rows().cases)
    evaluations = snapshots.cached(engine, "alert_evaluations", district, key, lambda: rows().evaluations)
    return Detail(cases, evaluations, pl.DataFrame(schema=_NO_NAMES))


def load_alert_detail(engine: Engine, rules: Rules) -> Detail:
    """alert_rows() of every district (see district_alerts)."""
    keys = snapshots.active_keys(engine)
    snapshots.ensure(engine, keys)
    parts = [district_alerts(engine, d, rules, keys) for d in snapshots.districts_with_data(keys)]
    if not parts:
        return alert_rows(build_detail(Dataset.empty(), rules))
    return Detail(
        pl.concat([p.cases for p in parts], how="vertical_relaxed"),
        pl.concat([p.evaluations for p in parts], how="vertical_relaxed"),
        pl.DataFrame(schema=_NO_NAMES),
    )


def load_detail(engine: Engine, rules: Rules) -> Detail:
    """Every case and evaluation with its flags (the whole store in memory: for tests and small stores)."""
    return build_detail(load_dataset(engine), rules)


def _in(period: Period, column: str) -> pl.Expr:
    return pl.col(column).is_between(pl.lit(period.first), pl.lit(period.last))


def _where(
    districts: Sequence[str] | None, department: str | None, item_code: str | None
) -> list[pl.Expr]:
    conds: list[pl.Expr] = []
    if districts:
        conds.append(pl.col("district").is_in(list(districts)))
    if department is not None:
        conds.append(pl.col("department") == department)
    if item_code is not None:
        conds.append(pl.col("item_code") == item_code)
    return conds


# --- case and evaluation lists --------------------------------------------------------------------


def red_card_cases(
    detail: Detail,
    period: Period,
    districts: Sequence[str] | None = None,
    department: str | None = None,
    item_code: str | None = None,
) -> pl.DataFrame:
    """Accepted cases of the period with a red card (the numerator of red_card_rate)."""
    frame = detail.cases.filter(_in(period, "accepted_month"), _red_card(), *_where(districts, department, item_code))
    return _case_list(frame)


def overdue_open_cases(
    detail: Detail,
    period: Period,
    districts: Sequence[str] | None = None,
    department: str | None = None,
    item_code: str | None = None,
) -> pl.DataFrame:
    """Cases accepted in the period, still open (no end time), whose elapsed time exceeds the promised limit."""
    frame = detail.cases.filter(
        _in(period, "accepted_month"), _overdue_open(), *_where(districts, department, item_code)
    )
    return _case_list(frame)


def bad_evaluations(
    detail: Detail,
    period: Period,
    districts: Sequence[str] | None = None,
    department: str | None = None,
    item_code: str | None = None,
    only_late: bool = False,
) -> pl.DataFrame:
    """差评 of the period; with ``only_late`` those not rectified in time (den − num of the on-time rate)."""
    conds = [_in(period, "month"), pl.col("is_bad"), *_where(districts, department, item_code)]
    if only_late:
        conds.append(~pl.col("bad_rectified_on_time"))
    frame = detail.evaluations.filter(*conds)
    return _eval_list(frame)


def alert_list(
    detail: Detail,
    alert_id: str,
    period: Period,
    districts: Sequence[str] | None = None,
    department: str | None = None,
    item_code: str | None = None,
) -> pl.DataFrame:
    if alert_id == RED_CARDS:
        return red_card_cases(detail, period, districts, department, item_code)
    if alert_id == OVERDUE_OPEN:
        return overdue_open_cases(detail, period, districts, department, item_code)
    if alert_id in (BAD_LATE, BAD_ALL):
        return bad_evaluations(detail, period, districts, department, item_code, only_late=alert_id == BAD_LATE)
    raise ValueError(f"未知的提醒类型：{alert_id}")


def alert_counts(detail: Detail, period: Period, districts: Sequence[str] | None = None) -> dict[str, int]:
    return {a: alert_list(detail, a, period, districts).height for a in ALERTS}


def alert_counts_from_components(
    comps: pl.DataFrame, period: Period, districts: Sequence[str] | None = None
) -> dict[str, int]:
    """The alerts that are parts of indicators, without row-level data: red cards are the numerator of
    红牌发生率, 差评 not rectified in time the denominator minus the numerator of 差评按时整改率."""
    parts = {r["indicator"]: r for r in aggregate(comps, period, by="city", districts=list(districts) if districts
                                                  else None).iter_rows(named=True)}
    red = parts.get("red_card_rate", {})
    late = parts.get("bad_rectified_on_time_rate", {})
    return {
        RED_CARDS: int(red.get("numerator") or 0),
        BAD_LATE: int((late.get("denominator") or 0) - (late.get("numerator") or 0)),
    }


def _label(kind: str, name: str) -> str:
    return KINDS[kind].field(name).header


def _case_list(frame: pl.DataFrame) -> pl.DataFrame:
    out = frame.sort(["district", "accepted_at", "case_id"]).select(
        pl.col("district").alias(_label("cases", "district")),
        *[pl.col(f).alias(_label("cases", f)) for f in _CASE_FIELDS if f not in ("promised_limit", "legal_limit")],
        pl.col("promised").alias("承诺时限"),
        pl.col("legal").alias("法定时限"),
        pl.col("el_promised").alias("用时"),
        (pl.col("el_promised") - pl.col("promised")).alias("超出承诺时限"),
        pl.when(pl.col("red_card")).then(pl.lit("红牌")).when(pl.col("any_card")).then(pl.lit("黄牌"))
        .otherwise(pl.lit("")).alias("红黄牌"),
    )
    return out


_RATING_NAMES = {v: k for k, v in RATINGS.items()}


def _eval_list(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["district", "evaluated_at", "eval_id"]).select(
        pl.col("district").alias(_label("evaluations", "district")),
        *[
            (
                pl.col(f).replace_strict(_RATING_NAMES, default=None, return_dtype=pl.String)
                if f == "rating"
                else pl.col(f)
            ).alias(_label("evaluations", f))
            for f in _EVAL_FIELDS
        ],
        pl.when(pl.col("bad_rectified_on_time")).then(pl.lit("是")).otherwise(pl.lit("否")).alias("按时整改"),
    )


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
    frame = comps.filter(pl.col("district") == district, _in(period, "month"))
    return sorted(set(frame["department"].to_list()))


def item_options(items: pl.DataFrame) -> dict[str, str]:
    """事项编码 → "编码 名称" for a picker, from item_table()."""
    code, name = _label("items", "item_code"), _label("items", "item_name")
    if items.height == 0:
        return {}
    return {c: f"{c} {n or ''}".strip() for c, n in zip(items[code].to_list(), items[name].to_list(), strict=True)}


def item_values(
    sources: dict[str, pl.DataFrame],
    period: Period,
    district: str,
    department: str | None,
    indicator_ids: Sequence[str],
) -> pl.DataFrame:
    """Long: item_code, indicator, numerator, denominator, value — the registry's expressions summed per
    事项 (indicators whose source has no item, such as the hotline's, are left out). Catalog indicators
    are read in the period's last month, coverage over the whole period, as in compute.aggregate."""
    conds = [pl.col("district") == district, _in(period, "month")]
    if department is not None:
        conds.append(pl.col("department") == department)
    wanted = [BY_ID[i] for i in indicator_ids]
    usable = [i for i in wanted if i.source in sources and i.den_source in sources
              and "item_code" in sources[i.source].columns and "item_code" in sources[i.den_source].columns]
    parts: list[pl.DataFrame] = []
    for name in sorted({i.source for i in usable} | {i.den_source for i in usable}):
        aggs = [_item_numerator(i, period).cast(pl.Float64).sum().alias(f"{i.id}\x1fnumerator")
                for i in usable if i.source == name]
        aggs += [i.denominator.cast(pl.Float64).sum().alias(f"{i.id}\x1fdenominator")
                 for i in usable if i.den_source == name]
        stock = [pl.col("month") == period.last] if name in STOCK_SOURCES else []
        # One filter and one group_by per source frame.
        summed = sources[name].lazy().filter(*conds, *stock).group_by("item_code").agg(aggs).collect()
        parts.append(summed.unpivot(index="item_code", variable_name="what", value_name="amount"))
    schema = {"item_code": pl.String, "indicator": pl.String, "numerator": pl.Float64,
              "denominator": pl.Float64, "value": pl.Float64}
    if not parts:
        return pl.DataFrame(schema=schema)
    long = (
        pl.concat(parts)
        .filter(pl.col("item_code").is_not_null())
        .with_columns(pl.col("what").str.split_exact("\x1f", 1).struct.rename_fields(["indicator", "part"]).alias("w"))
        .unnest("w")
    )
    if long.height == 0:
        return pl.DataFrame(schema=schema)
    wide = long.pivot(on="part", index=["item_code", "indicator"], values="amount", aggregate_function="sum")
    for col in ("numerator", "denominator"):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    return wide.select(
        "item_code",
        "indicator",
        pl.col("numerator").fill_null(0.0),
        pl.col("denominator").fill_null(0.0),
    ).with_columns(
        pl.when(pl.col("denominator") != 0).then(pl.col("numerator") / pl.col("denominator")).alias("value")
    ).select(list(schema))


def _item_numerator(ind: Indicator, period: Period) -> pl.Expr:
    """Coverage counts an item evaluated anywhere in the period (``since``: its latest evaluated month)."""
    if ind.source == "items_coverage":
        return (pl.col("since") >= period.first).fill_null(False)
    return ind.numerator


def item_table(
    sources: dict[str, pl.DataFrame],
    detail: Detail,
    period: Period,
    district: str,
    department: str | None,
    indicator_ids: Sequence[str],
) -> pl.DataFrame:
    """事项编码, 事项名称 × chosen indicators (value, numerator, denominator) for a district's department."""
    long = item_values(sources, period, district, department, indicator_ids)
    used = item_level_indicators(indicator_ids, item_sources(sources))
    wide = _wide_chinese(long, "item_code", _label("items", "item_code"), used)
    names = detail.item_names.filter(pl.col("district") == district).select(
        pl.col("item_code").alias(_label("items", "item_code")), pl.col("item_name").alias(_label("items", "item_name"))
    )
    code = _label("items", "item_code")
    if wide.height == 0:
        return wide
    joined = wide.join(names, on=code, how="left", maintain_order="left")
    first = [code, _label("items", "item_name")]
    return joined.select(*first, *[c for c in joined.columns if c not in first]).sort(code)


def item_level_indicators(indicator_ids: Sequence[str], detail_sources: Sequence[str]) -> list[str]:
    """The indicators that can be broken down by 事项 (their source frames carry an item code)."""
    ok = set(detail_sources)
    return [i for i in indicator_ids if BY_ID[i].source in ok and BY_ID[i].den_source in ok]


def item_sources(sources: dict[str, pl.DataFrame]) -> list[str]:
    return [name for name, frame in sources.items() if "item_code" in frame.columns]


def _wide_chinese(long: pl.DataFrame, key: str, key_label: str, indicator_ids: Sequence[str]) -> pl.DataFrame:
    """key, then per indicator: <name>, <name>·分子, <name>·分母 (registry names, registry order)."""
    ids = [i.id for i in INDICATORS if i.id in set(indicator_ids)]
    columns = [key_label] + [c for i in ids for c in (BY_ID[i].name, f"{BY_ID[i].name}·分子", f"{BY_ID[i].name}·分母")]
    if long.height == 0 or not ids:
        return pl.DataFrame(schema={key_label: pl.String, **{c: pl.Float64 for c in columns[1:]}})
    wide = long.filter(pl.col("indicator").is_in(ids)).pivot(
        on="indicator", index=key, values=["value", "numerator", "denominator"], aggregate_function="first"
    )
    names = {"value": "", "numerator": "·分子", "denominator": "·分母"}
    rename = {}
    for col in wide.columns:
        for part, suffix in names.items():
            prefix = f"{part}_"
            if col.startswith(prefix) and col[len(prefix):] in BY_ID:
                rename[col] = BY_ID[col[len(prefix):]].name + suffix
    wide = wide.rename({key: key_label, **rename})
    missing = [c for c in columns if c not in wide.columns]
    wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    return wide.select(columns).sort(key_label)
