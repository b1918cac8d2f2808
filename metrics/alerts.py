"""Alert lists: the cases and evaluations behind a count, each list declared once.

Row-level flags come from metrics/prepare.py (``case_flags``, ``evaluation_flags``) so every list is
counted with exactly the rules of the indicators: the red-card list of a district has as many rows
as the numerator of its 红牌发生率, the list of 差评 not rectified in time as many as the denominator
minus the numerator of its 差评按时整改率.

Everything here is pure (frames in, frames out); reading and caching the rows is
metrics/detail_store.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from datasets.domain import vocabulary as v
from datasets.domain.periods import Period
from datasets.domain.schema import KINDS, RATINGS
from datasets.domain.vocabulary import Rules
from datasets.domain.workdays import WorkCalendar, load_calendar
from metrics.compute import aggregate
from metrics.prepare import (
    CASE_FLAG_COLUMNS,
    EVALUATION_FLAG_COLUMNS,
    Dataset,
    Flags,
    case_flags_lazy,
    evaluation_flags_lazy,
    month_text,
)
from metrics.registry import BY_ID


@dataclass(frozen=True)
class Detail:
    """Row-level frames behind the indicators, computed once per data version."""

    cases: pl.DataFrame  # case_flags(): every case with limits, elapsed time and flags
    evaluations: pl.DataFrame  # evaluation_flags(): every evaluation with its month and flags
    item_names: pl.DataFrame  # district, item_code, item_name (newest catalog, else cases)


def build_detail(data: Dataset, rules: Rules, cal: WorkCalendar | None = None) -> Detail:
    cal = cal or load_calendar()
    return Detail(_flagged_cases(data, rules, cal).collect(), _flagged_evaluations(data, rules, cal).collect(),
                  item_names(data))


def _flagged_cases(data: Dataset, rules: Rules, cal: WorkCalendar) -> pl.LazyFrame:
    return _case_months(case_flags_lazy(data, cal, rules))


def _case_months(flags: pl.LazyFrame) -> pl.LazyFrame:
    return flags.with_columns(
        month_text(pl.col("accepted_at")).alias("accepted_month"),
        month_text(pl.col("completed_at")).alias("completed_month"),
    )


def _flagged_evaluations(data: Dataset, rules: Rules, cal: WorkCalendar) -> pl.LazyFrame:
    return _evaluation_department(evaluation_flags_lazy(data, cal, rules))


def _evaluation_department(flags: pl.LazyFrame) -> pl.LazyFrame:
    return flags.with_columns(pl.col("department").fill_null(""))


# The item names of a Detail that holds none (alert rows only).
NO_NAMES = {"district": pl.String, "item_code": pl.String, "item_name": pl.String}


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


def header(kind: str, name: str) -> str:
    """The Chinese column header of a stored field (datasets/domain/schema.py)."""
    return KINDS[kind].field(name).header


def in_period(period: Period, column: str) -> pl.Expr:
    return pl.col(column).is_between(pl.lit(period.first), pl.lit(period.last))


# --- the two kinds of list: cases and evaluations --------------------------------------------------

# Columns of the lists, in order; labels come from the data model (datasets/domain/schema.py).
_CASE_FIELDS = ("case_id", "item_code", "item_name", "department", "channel", "accepted_at", "completed_at",
                "status", "promised_limit", "legal_limit", "supervision")
_EVAL_FIELDS = ("eval_id", "case_id", "item_code", "department", "eval_channel", "rating", "evaluated_at",
                "rectify_status", "rectified_at")


def _case_list(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["district", "accepted_at", "case_id"]).select(
        pl.col("district").alias(header("cases", "district")),
        *[pl.col(f).alias(header("cases", f)) for f in _CASE_FIELDS if f not in ("promised_limit", "legal_limit")],
        pl.col("promised").alias("承诺时限"),
        pl.col("legal").alias("法定时限"),
        pl.col("el_promised").alias("用时"),
        (pl.col("el_promised") - pl.col("promised")).alias("超出承诺时限"),
        pl.when(pl.col("red_card")).then(pl.lit("红牌")).when(pl.col("any_card")).then(pl.lit("黄牌"))
        .otherwise(pl.lit("")).alias("红黄牌"),
    )


_RATING_NAMES = {code: name for name, code in RATINGS.items()}


def _eval_list(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["district", "evaluated_at", "eval_id"]).select(
        pl.col("district").alias(header("evaluations", "district")),
        *[
            (
                pl.col(f).replace_strict(_RATING_NAMES, default=None, return_dtype=pl.String)
                if f == "rating"
                else pl.col(f)
            ).alias(header("evaluations", f))
            for f in _EVAL_FIELDS
        ],
        pl.when(pl.col("bad_rectified_on_time")).then(pl.lit("是"))
        .when(pl.col("bad_pending")).then(pl.lit("整改期内")).otherwise(pl.lit("否")).alias("按时整改"),
    )


@dataclass(frozen=True)
class Source:
    """A Detail frame that lists are drawn from: the month column a period selects on, and the list's
    columns."""

    title: str  # Chinese, for the reference
    period_column: str
    columns: Callable[[pl.DataFrame], pl.DataFrame]


CASES, EVALUATIONS = "cases", "evaluations"
SOURCES: dict[str, Source] = {
    CASES: Source("办件明细（按受理时间所在月份）", "accepted_month", _case_list),
    EVALUATIONS: Source("好差评（按评价时间所在月份）", "month", _eval_list),
}


# --- the declarations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertList:
    """One list of cases or evaluations: which rows of a source, and how it is titled and counted."""

    id: str
    title: str  # Chinese
    unit: str  # 件 or 条
    description: str  # Chinese: what the list holds (shown beside it)
    source: str  # CASES or EVALUATIONS
    filter: pl.Expr  # the rows of the source in the list (besides the period and the scope)
    warning: bool = True  # a 预警 of the overview and the bulletin (else only a drill-down list)
    # Counted without row-level data from this indicator's parts: its numerator, or with
    # ``complement`` its denominator minus its numerator.
    indicator: str | None = None
    complement: bool = False

    def __post_init__(self) -> None:
        missing = [f for f in ("id", "title", "unit", "description") if not getattr(self, f)]
        if missing or self.source not in SOURCES or (self.indicator is not None and self.indicator not in BY_ID):
            raise ValueError(f"alert list {self.id!r} is incomplete: {missing or 'source/indicator'}")


# Rows whose flags alert_detail works out at once (a large district's cases in several slices).
ROWS_AT_ONCE = 1_000_000

RED_CARDS, OVERDUE_OPEN, BAD_LATE, BAD_ALL = "red_cards", "overdue_open", "bad_late", "bad_all"

ALERT_LISTS: tuple[AlertList, ...] = (
    AlertList(
        RED_CARDS,
        "红牌办件",
        "件",
        "本期受理、被亮红牌的办件（与红牌发生率的分子口径相同）。",
        CASES,
        v.accepted_case() & pl.col("red_card"),
        indicator="red_card_rate",
    ),
    AlertList(
        OVERDUE_OPEN,
        "超期在办件",
        "件",
        "本期受理、在其导出的数据截止日仍在办理且用时（计至数据截止日）已超过承诺时限的办件；期限未到的不算超期。",
        CASES,
        v.overdue_open_case(),
    ),
    AlertList(
        BAD_LATE,
        "差评未按时整改",
        "条",
        "本期应整改的差评中未在规定工作日内完成整改的评价（差评按时整改率的分母减分子）；仍在整改期内的差评不列入。",
        EVALUATIONS,
        pl.col("bad_due") & ~pl.col("bad_rectified_on_time"),
        indicator="bad_rectified_on_time_rate",
        complement=True,
    ),
    AlertList(
        BAD_ALL,
        "差评",
        "条",
        "本期的全部差评（不满意、非常不满意），含整改状态和是否按时整改（整改期限未到且尚未整改的标为“整改期内”）。",
        EVALUATIONS,
        pl.col("is_bad"),
        warning=False,
    ),
)

LISTS: dict[str, AlertList] = {a.id: a for a in ALERT_LISTS}
# The 预警 of the overview and the bulletin, in the order they are shown.
ALERTS: dict[str, AlertList] = {a.id: a for a in ALERT_LISTS if a.warning}


# --- the lists ------------------------------------------------------------------------------------


def _where(districts: Sequence[str] | None, department: str | None, item_code: str | None) -> list[pl.Expr]:
    conds: list[pl.Expr] = []
    if districts:
        conds.append(pl.col("district").is_in(list(districts)))
    if department is not None:
        conds.append(pl.col("department") == department)
    if item_code is not None:
        conds.append(pl.col("item_code") == item_code)
    return conds


def alert_list(
    detail: Detail,
    alert_id: str,
    period: Period,
    districts: Sequence[str] | None = None,
    department: str | None = None,
    item_code: str | None = None,
) -> pl.DataFrame:
    """Any declared list of the period, for the districts (all when none), a department or an item."""
    alert = LISTS.get(alert_id)
    if alert is None:
        raise ValueError(f"未知的提醒类型：{alert_id}")
    source = SOURCES[alert.source]
    frame = getattr(detail, alert.source).filter(
        in_period(period, source.period_column), alert.filter, *_where(districts, department, item_code)
    )
    return source.columns(frame)


def alert_rows(detail: Detail) -> Detail:
    """Only the rows some list can show (red cards, open cases past their promised limit, 差评).

    A few per cent of the rows, so the overview's lists for the whole city fit in memory where all
    cases and evaluations of a large city would not.
    """

    return Detail(
        detail.cases.filter(_in_any_list(CASES)),
        detail.evaluations.filter(_in_any_list(EVALUATIONS)),
        detail.item_names.head(0),
    )


def _in_any_list(source: str) -> pl.Expr:
    return pl.any_horizontal([a.filter for a in ALERT_LISTS if a.source == source])


def alert_detail(data: Dataset, rules: Rules, cal: WorkCalendar | None = None) -> Detail:
    """alert_rows(build_detail(data, rules)) (see flags_and_alert_rows)."""
    return flags_and_alert_rows(data, rules, cal)[1]


def flags_and_alert_rows(data: Dataset, rules: Rules, cal: WorkCalendar | None = None) -> tuple[Flags, Detail]:
    """The flags the indicators read (prepare.CASE_FLAG_COLUMNS, EVALUATION_FLAG_COLUMNS, for
    prepare_sources_lazy) and the alert rows (alert_rows(build_detail(data, rules))), from one working
    out of the flags (worked out twice, they were a fifth of a cold start), in slices of ROWS_AT_ONCE
    cases and evaluations.

    A row's flags depend on that row alone (with the catalog and the calendar), so slices give the
    same rows; every case's flags with every column of a large district at once took gigabytes for
    the few per cent of rows the lists show. The lists' filters read flags, not months: the rows are
    picked before their months are written. Row order differs, as it already does between runs.
    """
    cal = cal or load_calendar()

    def rows(kind: str, source: str, columns: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
        frame: pl.DataFrame = getattr(data, kind)
        counted, listed = [], []
        for start in range(0, max(frame.height, 1), ROWS_AT_ONCE):
            part = dataclasses.replace(data, **{kind: frame.slice(start, ROWS_AT_ONCE)})
            flagged = (case_flags_lazy if kind == "cases" else evaluation_flags_lazy)(part, cal, rules)
            picked = flagged.filter(_in_any_list(source))
            # Both from one plan (its flags worked out once): selecting the counted columns of a
            # collected frame copied every column (the records come in a chunk per batch file), and
            # took 0.66–0.81 s for a district's 1.7 M cases against 0.44 s.
            part_counted, part_listed = pl.collect_all([
                flagged.select(columns), _case_months(picked) if kind == "cases" else _evaluation_department(picked)])
            counted.append(part_counted)
            listed.append(part_listed)
        return pl.concat(counted), pl.concat(listed)

    cases, case_rows = rows("cases", CASES, CASE_FLAG_COLUMNS)
    evaluations, evaluation_rows = rows("evaluations", EVALUATIONS, EVALUATION_FLAG_COLUMNS)
    return Flags(cases, evaluations), Detail(case_rows, evaluation_rows, pl.DataFrame(schema=NO_NAMES))


def alert_counts(detail: Detail, period: Period, districts: Sequence[str] | None = None) -> dict[str, int]:
    return {a: alert_list(detail, a, period, districts).height for a in ALERTS}


def alert_counts_from_components(
    comps: pl.DataFrame, period: Period, districts: Sequence[str] | None = None
) -> dict[str, int]:
    """The alerts that are parts of indicators (AlertList.indicator), without row-level data."""
    parts = {r["indicator"]: r for r in aggregate(comps, period, by="city", districts=list(districts) if districts
                                                  else None).iter_rows(named=True)}
    out = {}
    for alert in ALERTS.values():
        if alert.indicator is None:
            continue
        part = parts.get(alert.indicator, {})
        numerator, denominator = part.get("numerator") or 0, part.get("denominator") or 0
        out[alert.id] = int(denominator - numerator if alert.complement else numerator)
    return out
