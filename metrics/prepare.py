"""Turn stored records into the row-level source frames the registry's expressions read.

Every frame has ``district``, ``department`` and ``month`` (a month number, month_number: the
component and item tables write it as YYYY-MM once summed, month_label) plus the flag and measure
columns named in metrics/registry.py. What counts (statuses, channels, cards, ratings) is named once
in datasets/domain/vocabulary.py; this module applies it: the period of a row, elapsed time, the catalog in
force.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
from sqlalchemy.engine import Engine

from datasets.derived import snapshots
from datasets.domain import vocabulary as v
from datasets.domain.periods import month_range
from datasets.domain.schema import KINDS, MONTH_COLUMNS, empty_frame
from datasets.domain.vocabulary import Rules
from datasets.domain.workdays import WorkCalendar, load_calendar
from datasets.storage import store

KEYS = ["district", "department", "month"]

# Stored columns the counting rules never read (names and ids are for lists and drill-down): the
# component computation does not read them from the snapshots (tests/test_snapshots.py checks that
# leaving them out changes nothing).
NOT_COUNTED = {
    "cases": ("batch_id", "case_id", "item_name", "applied_at", "visits"),
    "items": ("batch_id", "item_name", "item_category", "online_available"),
    "evaluations": ("batch_id", "eval_id", "case_id", "eval_channel"),
    "hotline": ("batch_id", "ticket_id", "category"),
}


def counted_columns(kind: str) -> list[str]:
    """The columns of a kind's records (as store.load_records returns them) that the counting rules read."""
    return [c for c in ("batch_id", *KINDS[kind].names, "period", "as_of") if c not in NOT_COUNTED[kind]]


@dataclass
class Dataset:
    """Current records of the four kinds (newest import per id), each with its batch ``period`` and
    ``as_of`` (the batch's 数据截止日, store.as_of_date)."""

    cases: pl.DataFrame
    items: pl.DataFrame
    evaluations: pl.DataFrame
    hotline: pl.DataFrame

    @classmethod
    def empty(cls) -> Dataset:
        def frame(kind: str) -> pl.DataFrame:
            return empty_frame(kind).with_columns(pl.lit(None, dtype=pl.Int64).alias("batch_id"),
                                                  pl.lit(None, dtype=pl.String).alias("period"),
                                                  pl.lit(None, dtype=pl.Date).alias("as_of"))

        return cls(*(frame(k) for k in KINDS))

    def last_month(self) -> str | None:
        """The latest month with any data or export (None: no data). The latest of each dated column
        and of the export months: no scan for distinct months (for a large district those were a
        tenth of a rule change)."""
        latest = pl.collect_all(
            frame.lazy().select(pl.col(col).max().dt.strftime("%Y-%m").alias("m"))
            for frame, col in ((getattr(self, kind), c) for kind, cols in MONTH_COLUMNS.items() for c in cols)
        )
        found = [frame["m"][0] for frame in latest]
        found += [getattr(self, kind)["period"].max() for kind in KINDS]  # an export may hold only earlier rows
        found = [m for m in found if m is not None]
        return max(found) if found else None

    def districts(self) -> list[str]:
        names: set[str] = set()
        for frame in (self.cases, self.items, self.evaluations, self.hotline):
            names |= set(frame["district"].drop_nulls().unique().to_list())
        return sorted(names)


def load_dataset(engine: Engine) -> Dataset:
    return Dataset(*(store.load_records(engine, k) for k in KINDS))


def district_dataset(
    engine: Engine,
    district: str,
    keys: dict[tuple[str, str], str] | None = None,
    columns: dict[str, Iterable[str]] | None = None,
    keep: bool = True,
) -> Dataset:
    """The current records of one district, from its snapshots (``columns``: per kind, to read only
    those; ``keep``: see snapshots.current_records)."""
    keys = snapshots.active_keys(engine) if keys is None else keys
    return Dataset(*(
        snapshots.current_records(engine, kind, district, keys, (columns or {}).get(kind), keep) for kind in KINDS
    ))


@functools.cache
def _month_names() -> pl.Series:
    """"YYYY-MM" of every month of the years 1–9999, in order (index: year × 12 + month − 13)."""
    return pl.Series("month", [f"{y:04d}-{m:02d}" for y in range(1, 10000) for m in range(1, 13)])


def month_text(expr: pl.Expr) -> pl.Expr:
    """A datetime's "YYYY-MM" (null stays null). Looked up by month number rather than formatted: the
    sources format tens of millions of dates, and strftime cost 2.5× the look-up (scale 10's indicator
    table: 12 % of its CPU)."""
    return month_label(month_number(expr))


def month_number(expr: pl.Expr) -> pl.Expr:
    """A datetime's month as year × 12 + month (null stays null): the ``month`` of the source frames.
    The sums are grouped by it and written as text afterwards (month_label, compute.summed): grouped
    by the text of every row, the largest district of scale 10 took 0.73–0.82 CPU-s for its four flow
    sources, against 0.55–0.65."""
    return expr.dt.year().cast(pl.Int32) * 12 + expr.dt.month().cast(pl.Int32)


def month_label(number: pl.Expr) -> pl.Expr:
    """"YYYY-MM" of a month number (month_number; null stays null)."""
    names = _month_names()
    return pl.lit(names).gather((number.cast(pl.Int64) - 13).clip(0, names.len() - 1))


def _month_number(expr: pl.Expr) -> pl.Expr:
    """YYYY-MM text as its month number (month_number), for as-of joins on months."""
    return expr.str.slice(0, 4).cast(pl.Int32) * 12 + expr.str.slice(5, 2).cast(pl.Int32)


def _month_end(period: pl.Expr) -> pl.Expr:
    """Last day of a YYYY-MM period, as a datetime at the start of that day."""
    first = (period + "-01").str.to_date("%Y-%m-%d")
    return first.dt.month_end().cast(pl.Datetime("us"))


def as_of_end(frame: pl.DataFrame) -> pl.Expr:
    """Each record's 数据截止日 (its batch's ``as_of``) as a datetime, for open cases' elapsed time and
    for whether a 差评 is due. A frame without as-of dates (made by hand) falls back to the last day
    of its export month, as store.as_of_date does for an import made after the month."""
    if "as_of" in frame.columns and frame["as_of"].null_count() == 0:
        # Every stored record has one (store.as_of_date): no look-up of the fallback for each row.
        return pl.col("as_of").cast(pl.Datetime("us"))
    periods = pl.DataFrame({"period": frame["period"].drop_nulls().unique()})
    month_ends = periods.select(_month_end(pl.col("period")))["period"]
    period_end = pl.col("period").replace_strict(
        periods["period"], month_ends, default=None, return_dtype=pl.Datetime("us")
    )
    if "as_of" not in frame.columns:
        return period_end
    return pl.coalesce(pl.col("as_of").cast(pl.Datetime("us")), period_end)


def _dept(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null("").alias("department")


def _with_catalog(cases: pl.DataFrame, items: pl.DataFrame) -> pl.LazyFrame:
    """The cases with the limits of their item in the catalog in force in the accepted month.

    The catalog in force is the district's newest catalog version on or before that month; an item
    that version no longer lists has no catalog limits (an older version's row does not count).
    Only cases that lack a limit of their own are looked up (the others never use the catalog's, see
    vocabulary.limit_with_fallback); the catalog columns stay null on the rest. Looked up for those
    rows only and scattered back into null columns: splitting the cases and concatenating them again
    copied every column (≈ 45 % of the case flags' time for a large district).
    """
    catalog = items.lazy().select(
        "district",
        "item_code",
        _month_number(pl.col("period")).alias("_v"),
        pl.col("legal_limit").alias("cat_legal"),
        pl.col("legal_limit_unit").alias("cat_legal_unit"),
        pl.col("promised_limit").alias("cat_promised"),
        pl.col("promised_limit_unit").alias("cat_promised_unit"),
    )
    versions = catalog.select("district", "_v", pl.col("_v").alias("_m")).unique().sort("_m")
    acc = pl.col("accepted_at")
    month = (acc.dt.year() * 12 + acc.dt.month()).fill_null(0).cast(pl.Int32).alias("_m")
    needs = pl.col("legal_limit").is_null() | pl.col("promised_limit").is_null()
    # Only the rows that lack a limit are looked up; their catalog values are then scattered into
    # otherwise null columns beside the cases' own (no filtered copy of every column, order kept).
    at = cases.select(pl.arg_where(needs)).to_series()
    lookup = cases.select("district", "item_code", "accepted_at")[at].lazy().with_columns(month)
    # As-of join on a month number: the newest version not after the case's month, looked up for the
    # distinct (district, month) keys and then joined to the cases with the item's row of that version.
    in_force = (
        lookup.select("district", "_m").unique().sort("_m")
        .join_asof(versions.with_columns(pl.col("_m").cast(pl.Int32)), on="_m", by="district",
                   strategy="backward", check_sortedness=False)
    )
    found = (
        lookup.join(in_force, on=["district", "_m"], how="left", nulls_equal=True, maintain_order="left")
        .join(catalog, on=["district", "item_code", "_v"], how="left", maintain_order="left")
        .select("cat_legal", "cat_legal_unit", "cat_promised", "cat_promised_unit")
        .collect()
    )
    # A catalog lists an item once per version (its records are unique by district, item, period).
    assert found.height == at.len(), "事项清单中同一版本的事项重复"
    return cases.with_columns(
        pl.repeat(None, cases.height, dtype=found[name].dtype, eager=True).alias(name).scatter(at, found[name])
        for name in found.columns
    ).lazy()


def case_flags(data: Dataset, cal: WorkCalendar, rules: Rules) -> pl.DataFrame:
    """Every case with its limits, elapsed time and flags (the counting rules, applied once).

    Adds ``legal``/``promised`` (with units), ``elapsed_wd``, ``elapsed_cd``, ``el_legal``,
    ``el_promised``, ``is_accepted``, ``is_open``, ``is_completed``, ``red_card``, ``any_card`` and
    ``is_online`` to the stored columns; used by the indicators and by drill-down lists.
    """
    return case_flags_lazy(data, cal, rules).collect()


def case_flags_lazy(data: Dataset, cal: WorkCalendar, rules: Rules) -> pl.LazyFrame:
    """case_flags as a lazy query: callers that need a few of its columns or rows compute only those."""
    cases = data.cases
    if cases.height:
        # Every year from the first to the last date (min and max instead of a scan for distinct years).
        ends = [v.year for c in ("accepted_at", "completed_at") for v in (cases[c].min(), cases[c].max())
                if v is not None]  # type: ignore[union-attr]
        ends += [int(p[:4]) for p in (cases["period"].min(), cases["period"].max()) if p is not None]  # type: ignore[index]
        cal.check_years(set(range(min(ends), max(ends) + 1)) if ends else set())
    # Open cases: elapsed time runs to the as-of date of their export, never beyond (nothing is judged
    # late before it is late).
    end = v.case_end(as_of_end(cases))
    suspended = pl.col("suspended_days").fill_null(0)
    legal, legal_unit = v.limit_with_fallback("legal")
    promised, promised_unit = v.limit_with_fallback("promised")
    frame = _with_catalog(cases, data.items).with_columns(
        legal.alias("legal"),
        legal_unit.alias("legal_unit"),
        promised.alias("promised"),
        promised_unit.alias("promised_unit"),
        (cal.working_days_between(pl.col("accepted_at"), end) - suspended).clip(lower_bound=0).alias("elapsed_wd"),
        (cal.calendar_days_between(pl.col("accepted_at"), end) - suspended).clip(lower_bound=0).alias("elapsed_cd"),
        v.accepted_case().alias("is_accepted"),
        v.open_case().alias("is_open"),
        v.completed_case().alias("is_completed"),
        v.online_case().alias("is_online"),
        _dept(pl.col("department")),
    ).with_columns(
        v.elapsed_for(pl.col("legal_unit")).alias("el_legal"),
        v.elapsed_for(pl.col("promised_unit")).alias("el_promised"),
    )
    return frame.with_columns(v.red_card(rules).alias("red_card"), v.any_card(rules).alias("any_card"))


# The columns of case_flags and evaluation_flags the indicators read (the alert lists read them all).
CASE_FLAG_COLUMNS = [
    "district", "department", "item_code", "accepted_at", "completed_at", "is_accepted", "is_online",
    "any_card", "red_card", "is_completed", "elapsed_wd", "legal", "promised", "el_legal", "el_promised",
]
EVALUATION_FLAG_COLUMNS = [
    "district", "department", "evaluated_at", "item_code", "rating", "active", "is_good", "is_bad", "bad_rectified",
    "bad_rectified_on_time", "bad_due", "bad_pending",
]


@dataclass(frozen=True)
class Flags:
    """Every case and every evaluation of a Dataset with the flags the indicators read (case_flags,
    evaluation_flags: CASE_FLAG_COLUMNS, EVALUATION_FLAG_COLUMNS), when already worked out with the
    alert lists' (alerts.flags_and_alert_rows)."""

    cases: pl.DataFrame
    evaluations: pl.DataFrame


def _cases_lazy(data: Dataset, cal: WorkCalendar, rules: Rules,
                flags: pl.DataFrame | None = None) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The accepted-cases frame (by 受理 month) and the completed-cases frame (by 办结 month)."""
    # The flags are worked out once, for the columns the two frames use (a lazy plan would work them
    # out for each), then each frame filters and selects from that.
    frame = (flags.lazy() if flags is not None else case_flags_lazy(data, cal, rules)).select(
        CASE_FLAG_COLUMNS).collect().lazy()
    accepted = frame.filter(pl.col("is_accepted")).select(
        "district",
        "department",
        month_number(pl.col("accepted_at")).alias("month"),
        "is_online",
        "any_card",
        "red_card",
        "is_completed",
        "item_code",
    )
    legal_pos = pl.col("legal").is_not_null() & (pl.col("legal") > 0)
    promised_pos = pl.col("promised").is_not_null() & (pl.col("promised") > 0)
    done = frame.filter(pl.col("is_completed")).select(
        "district",
        "department",
        month_number(pl.col("completed_at")).alias("month"),
        "item_code",
        pl.col("elapsed_wd").cast(pl.Float64),
        pl.when(legal_pos).then(pl.col("legal")).otherwise(0.0).alias("legal_pos"),
        pl.when(legal_pos).then(pl.col("el_legal")).otherwise(0).cast(pl.Float64).alias("elapsed_for_legal_pos"),
        pl.when(promised_pos).then(pl.col("promised")).otherwise(0.0).alias("promised_pos"),
        pl.when(promised_pos)
        .then(pl.col("el_promised"))
        .otherwise(0)
        .cast(pl.Float64)
        .alias("elapsed_for_promised_pos"),
        v.on_time_case().alias("on_time"),
    )
    return accepted, done


def items_in_force(data: Dataset, months: list[str]) -> pl.LazyFrame:
    """One row per item of the catalog in force in each month (newest catalog period ≤ month).

    Rows are made for every month from a catalog's period up to the last of ``months`` (the last month
    with any data in the store). A catalog stays in force after that too: a range ending later reads
    the catalog of the store's last month (compute.stock_month), since no newer one can exist yet.
    """
    items = data.items.filter(pl.col("period") <= months[-1]) if months else data.items
    if items.height == 0 or not months:
        return items.lazy().with_columns(pl.lit(None, dtype=pl.String).alias("month")).head(0)
    spans = items.select("district", "period").unique().sort("district", "period").with_columns(
        pl.col("period").shift(-1).over("district").alias("next_period"),
    )
    last = months[-1]
    rows = []
    for district, period, next_period in spans.iter_rows():
        rows.extend((district, period, m) for m in month_range(period, last) if not next_period or m < next_period)
    month_map = pl.DataFrame(rows, schema=["district", "period", "month"], orient="row")
    return items.lazy().join(month_map.lazy(), on=["district", "period"], how="inner")


def _items_lazy(in_force: pl.LazyFrame) -> pl.LazyFrame:
    """The catalog stock source: one row per item in force per month, with its flags."""
    legal_pos = pl.col("legal_limit").is_not_null() & (pl.col("legal_limit") > 0)
    return in_force.select(
        "district",
        _dept(pl.col("department")),
        _month_number(pl.col("month")).alias("month"),
        "item_code",
        v.depth_at_least(2).alias("depth_ge2"),
        v.depth_at_least(3).alias("depth_ge3"),
        v.full_online_item().alias("depth_eq4"),
        pl.when(legal_pos).then(pl.col("legal_limit")).otherwise(0.0).alias("legal_pos"),
        # An item with no promised limit is taken as promising the legal one (no compression).
        pl.when(legal_pos)
        .then(pl.coalesce("promised_limit", "legal_limit"))
        .otherwise(0.0)
        .alias("promised_for_legal_pos"),
        v.instant_item().alias("is_instant"),
        (pl.col("visits_required") == 0).fill_null(False).alias("zero_visit"),
        (pl.col("visits_required") <= 1).fill_null(False).alias("at_most_once"),
        (pl.col("materials_count") == 0).fill_null(False).alias("zero_material"),
        pl.col("in_hall").fill_null(False).alias("in_hall_yes"),
    )


def _coverage_lazy(in_force: pl.LazyFrame, data: Dataset) -> pl.LazyFrame:
    """The coverage source: each item in force per month with ``since``, the latest month up to that
    month in which the item was evaluated (null if never).

    An item counts as covered over a range [first, month] exactly when ``since >= first``, so a range's
    coverage counts distinct items, evaluated anywhere in the range (compute.aggregate).
    """
    at = pl.col("evaluated_at")
    evaluated = (
        data.evaluations.lazy()
        .select("district", "item_code", month_number(at).alias("_m"))
        .drop_nulls()
        .unique()
        .with_columns(pl.col("_m").alias("_since"))
        .sort("_m")
    )
    rows = in_force.select(
        "district", _dept(pl.col("department")), "item_code", _month_number(pl.col("month")).alias("_m")
    ).sort("_m")
    joined = rows.join_asof(evaluated, on="_m", by=["district", "item_code"], strategy="backward",
                            check_sortedness=False)
    since = pl.col("_since")
    return joined.select(
        "district",
        "department",
        pl.col("_m").alias("month"),
        "item_code",
        month_label(since).alias("since"),
        (since == pl.col("_m")).fill_null(False).alias("evaluated"),
    )


def evaluation_flags(data: Dataset, cal: WorkCalendar, rules: Rules) -> pl.DataFrame:
    """Every evaluation with its month and flags (good, bad, rectified, rectified on time)."""
    return evaluation_flags_lazy(data, cal, rules).collect()


def evaluation_flags_lazy(data: Dataset, cal: WorkCalendar, rules: Rules) -> pl.LazyFrame:
    ev = data.evaluations
    if ev.height:
        cal.check_years(set(ev["evaluated_at"].dt.year().drop_nulls().unique().to_list()))
    within = cal.working_days_between(pl.col("evaluated_at"), pl.col("rectified_at")) <= rules.rectify_days
    rectified = v.rectified_evaluation()
    # Due (应整改): rectified, or its deadline (评价时间 + rectify_days working days) on or before the
    # record's as-of date, i.e. at least rectify_days working days after the evaluation by then.
    deadline_passed = (cal.working_days_between(pl.col("evaluated_at"), as_of_end(ev)) >= rules.rectify_days)
    due = (v.bad_evaluation() & (rectified.fill_null(False) | deadline_passed.fill_null(True))).fill_null(False)
    return ev.lazy().with_columns(
        month_text(pl.col("evaluated_at")).alias("month"),
        v.active_evaluation().alias("active"),
        v.good_evaluation().alias("is_good"),
        v.bad_evaluation().alias("is_bad"),
        rectified.alias("bad_rectified"),
        (rectified & pl.col("rectified_at").is_not_null() & within.fill_null(False)).alias("bad_rectified_on_time"),
        due.alias("bad_due"),
        (v.bad_evaluation() & ~due).alias("bad_pending"),
    )


def _evaluations_lazy(data: Dataset, cal: WorkCalendar, rules: Rules, flags: pl.DataFrame | None = None) -> pl.LazyFrame:
    return (flags.lazy() if flags is not None else evaluation_flags_lazy(data, cal, rules)).select(
        "district",
        _dept(pl.col("department")),
        month_number(pl.col("evaluated_at")).alias("month"),
        "item_code",
        "rating",
        "active",
        "is_good",
        "is_bad",
        "bad_rectified",
        "bad_rectified_on_time",
        "bad_due",
        "bad_pending",
    )


def _hotline_lazy(data: Dataset) -> pl.LazyFrame:
    return data.hotline.lazy().select(
        "district",
        _dept(pl.col("department")),
        month_number(pl.col("received_at")).alias("month"),
        v.hotline_closed().alias("is_closed"),
        v.hotline_closed_on_time().alias("closed_on_time"),
        v.hotline_answered().alias("answered"),
        v.hotline_satisfied().alias("satisfied"),
    )


def prepare_sources(
    data: Dataset, rules: Rules | None = None, cal: WorkCalendar | None = None, until: str | None = None
) -> dict[str, pl.DataFrame]:
    """All source frames the registry refers to, keyed by source name.

    ``until``: the last month catalogs are counted in force (default: the latest month of ``data``).
    Pass it explicitly when computing a part of the data that must add up to the whole.
    """
    lazy = prepare_sources_lazy(data, rules, cal, until)
    return dict(zip(lazy, pl.collect_all(lazy.values()), strict=True))


def prepare_sources_lazy(
    data: Dataset, rules: Rules | None = None, cal: WorkCalendar | None = None, until: str | None = None,
    flags: Flags | None = None,
) -> dict[str, pl.LazyFrame]:
    """prepare_sources as lazy queries, for callers that aggregate them at once (no large frame is kept).

    ``flags``: the cases' and evaluations' flags, if already worked out (alerts.flags_and_alert_rows;
    the cases and evaluations of ``data`` are then not read)."""
    rules = rules or Rules()
    cal = cal or load_calendar()
    accepted, completed = _cases_lazy(data, cal, rules, flags.cases if flags is not None else None)
    # Only the last month matters to the catalogs (they stay in force up to it): with ``until`` given
    # the data's months need not be scanned.
    last = until if until is not None else data.last_month()
    in_force = items_in_force(data, [last] if last is not None else []).collect().lazy()
    return {
        "items": _items_lazy(in_force),
        "items_coverage": _coverage_lazy(in_force, data),
        "cases_accepted": accepted,
        "cases_completed": completed,
        "evaluations": _evaluations_lazy(data, cal, rules, flags.evaluations if flags is not None else None),
        "hotline": _hotline_lazy(data),
    }
