"""The district × month indicator table computed three ways, for the benchmark and its cross-check.

* :func:`project_table`: what the dashboard does (metrics.compute.components, then aggregate by month).
* :func:`duckdb_table`: the same counting rules (metrics/prepare.py) written as one DuckDB SQL query.
* :func:`pandas_table`: the same counting rules in idiomatic pandas (groupby, merge, merge_asof).

All three take the records as the project's loader returns them (``metrics.prepare.load_dataset``:
newest batch per id, with the batch ``period``) and return the same long table: ``district``,
``month`` (YYYY-MM), ``indicator``, ``numerator``, ``denominator``, one row per district × month
that has rows in the indicator's source frame(s). The two alternative implementations group directly
by district × month (summing departments away is exact for sums) and use an integer month number
``year * 12 + month - 1`` internally, formatting it as text only at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from datasets.domain.schema import ONLINE_CHANNELS
from datasets.domain.vocabulary import (
    BAD_RATING_MAX,
    COMPLETED_STATUS,
    HOTLINE_ANSWERED,
    HOTLINE_SATISFIED,
    INSTANT_CASE_TYPE,
    NATURAL_DAYS,
    NOT_ACCEPTED_STATUS,
    RECTIFIED_STATUSES,
    SUPERVISION_CARDS,
    SUPERVISION_RED,
    WORKING_DAYS,
    Rules,
)
from datasets.domain.workdays import WorkCalendar, load_calendar
from metrics.prepare import Dataset

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_SCHEMA = {
    "district": pl.String,
    "month": pl.String,
    "indicator": pl.String,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
}

# Indicator -> (numerator's aggregate, column, denominator's aggregate, column). The aggregates are
# per district × month sums over the source frames of metrics/prepare.py: items (catalog in force,
# per item·month), accepted (cases by 受理 month, not 不予受理), completed (by 办结 month),
# evaluations and hotline. Both implementations below produce these columns.
PARTS: dict[str, tuple[str, str, str, str]] = {
    "online_available_rate": ("items", "depth_ge2", "items", "n"),
    "depth_3plus_rate": ("items", "depth_ge3", "items", "n"),
    "full_online_rate": ("items", "depth_eq4", "items", "n"),
    "online_case_rate": ("accepted", "online", "accepted", "n"),
    "commitment_compression": ("items", "compression", "items", "legal_pos"),
    "statutory_speedup": ("completed", "statutory", "completed", "legal_pos"),
    "promise_speedup": ("completed", "promise", "completed", "promised_pos"),
    "on_time_rate": ("completed", "on_time", "completed", "n"),
    "card_rate": ("accepted", "any_card", "accepted", "n"),
    "red_card_rate": ("accepted", "red_card", "accepted", "n"),
    "avg_handling_days": ("completed", "elapsed", "completed", "n"),
    "completion_rate": ("accepted", "completed", "accepted", "n"),
    "instant_item_rate": ("items", "instant", "items", "n"),
    "zero_visit_rate": ("items", "zero_visit", "items", "n"),
    "at_most_once_rate": ("items", "at_most_once", "items", "n"),
    "zero_material_rate": ("items", "zero_material", "items", "n"),
    "hall_entry_rate": ("items", "in_hall", "items", "n"),
    "eval_item_coverage": ("items", "evaluated", "items", "n"),
    "active_eval_rate": ("evaluations", "active", "evaluations", "n"),
    "actual_eval_rate": ("evaluations", "active", "completed", "n"),
    "good_rate": ("evaluations", "good", "evaluations", "n"),
    "bad_rate": ("evaluations", "bad", "evaluations", "n"),
    "satisfaction_score": ("evaluations", "score", "evaluations", "n"),
    "bad_rectified_rate": ("evaluations", "rectified", "evaluations", "due"),
    "bad_rectified_on_time_rate": ("evaluations", "rectified_on_time", "evaluations", "due"),
    "hotline_completion_rate": ("hotline", "closed", "hotline", "n"),
    "hotline_on_time_rate": ("hotline", "closed_on_time", "hotline", "closed"),
    "hotline_satisfaction_rate": ("hotline", "satisfied", "hotline", "answered"),
}

# The vocabulary's names (datasets/domain/vocabulary.py), written out as SQL and pandas below.
RECTIFIED, ANSWERED, SATISFIED, CARDS = RECTIFIED_STATUSES, HOTLINE_ANSWERED, HOTLINE_SATISFIED, SUPERVISION_CARDS


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# --- (a) the project ------------------------------------------------------------------------------


def project_table(data: Dataset, rules: Rules | None = None) -> pl.DataFrame:
    """What the dashboard computes: components() per district × department × month, summed by month."""
    from metrics.compute import components

    return monthly_table(components(data, rules))


def monthly_table(comps: pl.DataFrame) -> pl.DataFrame:
    """aggregate(by="month") on the keys that have rows in a source frame (the alternatives have no full
    grid to fill)."""
    from metrics.compute import aggregate

    counted = comps.select("district", "month", "indicator").unique()
    return aggregate(comps, by="month").join(counted, on=["district", "month", "indicator"], how="semi").select(
        list(OUTPUT_SCHEMA))


# --- (b) DuckDB SQL -------------------------------------------------------------------------------


def duckdb_sql(cal: WorkCalendar, rules: Rules) -> str:
    """One query over the registered tables ``cases``, ``items``, ``evaluations``, ``hotline`` and
    ``cal`` (``idx``: days since the calendar start, ``cum``: working days up to that day)."""
    start = cal.start.isoformat()
    last_idx = len(cal.cum) - 1

    def day_idx(day: str) -> str:
        # Index into the cumulative working-day array, clipped to the calendar (null stays null).
        return (f"CASE WHEN {day} IS NOT NULL THEN "
                f"least(greatest(date_diff('day', DATE '{start}', {day}), 0), {last_idx}) END")

    def month_no(ts: str) -> str:
        return f"(year({ts}) * 12 + month({ts}) - 1)"

    period_no = "(CAST(substr(period, 1, 4) AS INTEGER) * 12 + CAST(substr(period, 6, 2) AS INTEGER) - 1)"
    completed = f"(status = '{COMPLETED_STATUS}' AND completed_at IS NOT NULL)"
    long_parts = []
    for ind, (num_src, num_col, den_src, den_col) in PARTS.items():
        if num_src == den_src:
            long_parts.append(
                f"SELECT district, mi, '{ind}' AS indicator, CAST({num_col} AS DOUBLE) AS numerator, "
                f"CAST({den_col} AS DOUBLE) AS denominator FROM agg_{num_src}"
            )
        else:  # a key present on one side only counts 0 on the other
            long_parts.append(
                f"SELECT coalesce(x.district, y.district) AS district, coalesce(x.mi, y.mi) AS mi, "
                f"'{ind}' AS indicator, CAST(coalesce(x.{num_col}, 0) AS DOUBLE) AS numerator, "
                f"CAST(coalesce(y.{den_col}, 0) AS DOUBLE) AS denominator "
                f"FROM agg_{num_src} x FULL OUTER JOIN agg_{den_src} y ON x.district = y.district AND x.mi = y.mi"
            )
    union = "\nUNION ALL ".join(long_parts)
    return f"""
WITH
-- Catalog rows, by the month number of their catalog period.
item_rows AS (
    SELECT *, {period_no} AS pmi FROM items
),
-- Cases: period of the row, the end of elapsed time (its end time; open cases: the export's as-of date).
case_base AS (
    SELECT district, coalesce(department, '') AS department, item_code, channel, status, supervision,
           legal_limit, legal_limit_unit, promised_limit, promised_limit_unit,
           coalesce(suspended_days, 0) AS suspended,
           {month_no('accepted_at')} AS acc_mi,
           coalesce({month_no('accepted_at')}, -1) AS asof_mi,
           {month_no('completed_at')} AS done_mi,
           {completed} AS is_completed,
           CAST(accepted_at AS DATE) AS acc_day,
           CASE WHEN completed_at IS NOT NULL THEN CAST(completed_at AS DATE)
                ELSE coalesce(CAST(as_of AS DATE), last_day(CAST(period || '-01' AS DATE))) END AS end_day
    FROM cases
),
-- Time-limit fallback: the item's row in the catalog in force in the case's accepted month (the
-- district's newest catalog version on or before it; an item that version dropped has no limits).
catalog_versions AS (
    SELECT DISTINCT district, pmi FROM item_rows
),
case_version AS (
    SELECT c.*, v.pmi AS vpmi
    FROM case_base c ASOF LEFT JOIN catalog_versions v ON c.district = v.district AND c.asof_mi >= v.pmi
),
with_catalog AS (
    SELECT c.*, k.legal_limit AS cat_legal, k.legal_limit_unit AS cat_legal_unit,
           k.promised_limit AS cat_promised, k.promised_limit_unit AS cat_promised_unit
    FROM case_version c LEFT JOIN item_rows k
      ON c.district = k.district AND c.item_code = k.item_code AND c.vpmi = k.pmi
),
timed AS (
    SELECT w.*,
           coalesce(w.legal_limit, w.cat_legal) AS legal,
           coalesce(CASE WHEN w.legal_limit IS NOT NULL THEN w.legal_limit_unit ELSE w.cat_legal_unit END,
                    '{WORKING_DAYS}') AS legal_unit,
           coalesce(w.promised_limit, w.cat_promised) AS promised,
           coalesce(CASE WHEN w.promised_limit IS NOT NULL THEN w.promised_limit_unit ELSE w.cat_promised_unit END,
                    '{WORKING_DAYS}') AS promised_unit,
           ce.cum - ca.cum - w.suspended AS wd_raw,
           date_diff('day', w.acc_day, w.end_day) - w.suspended AS cd_raw
    FROM with_catalog w
    LEFT JOIN cal ca ON ca.idx = {day_idx('w.acc_day')}
    LEFT JOIN cal ce ON ce.idx = {day_idx('w.end_day')}
),
elapsed AS (
    SELECT *,
           CASE WHEN wd_raw < 0 THEN 0 ELSE wd_raw END AS elapsed_wd,
           CASE WHEN cd_raw < 0 THEN 0 ELSE cd_raw END AS elapsed_cd
    FROM timed
),
limits AS (
    SELECT *,
           CASE WHEN legal_unit = '{NATURAL_DAYS}' THEN elapsed_cd ELSE elapsed_wd END AS el_legal,
           CASE WHEN promised_unit = '{NATURAL_DAYS}' THEN elapsed_cd ELSE elapsed_wd END AS el_promised
    FROM elapsed
),
flagged AS (
    SELECT *,
           CASE WHEN supervision IS NOT NULL THEN supervision = '{SUPERVISION_RED}'
                ELSE legal IS NOT NULL AND el_legal - legal > {rules.red_grace_days} END AS red_card,
           CASE WHEN supervision IS NOT NULL THEN supervision IN ({_sql_list(CARDS)})
                ELSE (legal IS NOT NULL AND el_legal - legal > {rules.red_grace_days})
                  OR (promised IS NOT NULL AND el_promised - promised > {rules.yellow_grace_days}) END AS any_card
    FROM limits
),
agg_accepted AS (
    SELECT district, acc_mi AS mi,
           count(district) AS n,
           count_if(channel IN ({_sql_list(ONLINE_CHANNELS)})) AS online,
           count_if(any_card) AS any_card,
           count_if(red_card) AS red_card,
           count_if(is_completed) AS completed
    FROM flagged WHERE status <> '{NOT_ACCEPTED_STATUS}'
    GROUP BY ALL
),
agg_completed AS (
    SELECT district, done_mi AS mi,
           count(district) AS n,
           coalesce(sum(elapsed_wd), 0) AS elapsed,
           coalesce(sum(CASE WHEN legal > 0 THEN legal ELSE 0 END), 0) AS legal_pos,
           coalesce(sum(CASE WHEN legal > 0 THEN legal - el_legal ELSE 0 END), 0) AS statutory,
           coalesce(sum(CASE WHEN promised > 0 THEN promised ELSE 0 END), 0) AS promised_pos,
           coalesce(sum(CASE WHEN promised > 0 THEN promised - el_promised ELSE 0 END), 0) AS promise,
           count_if(promised IS NOT NULL AND el_promised <= promised) AS on_time
    FROM flagged WHERE is_completed
    GROUP BY ALL
),
-- Evaluations: 差评 rectified within N working days of 评价时间.
eval_rows AS (
    SELECT e.district, e.item_code, {month_no('e.evaluated_at')} AS mi, e.rating, e.rectified_at,
           coalesce(e.active, false) AS active,
           e.rating <= {BAD_RATING_MAX} AND e.rectify_status IN ({_sql_list(RECTIFIED)}) AS rectified,
           cr.cum - cv.cum <= {rules.rectify_days} AS within,
           -- due (应整改): rectified, or its deadline on or before the record's as-of date
           e.rating <= {BAD_RATING_MAX} AND (coalesce(e.rectify_status IN ({_sql_list(RECTIFIED)}), false)
               OR coalesce(ca.cum - cv.cum >= {rules.rectify_days}, true)) AS due
    FROM evaluations e
    LEFT JOIN cal cv ON cv.idx = {day_idx('CAST(e.evaluated_at AS DATE)')}
    LEFT JOIN cal cr ON cr.idx = {day_idx('CAST(e.rectified_at AS DATE)')}
    LEFT JOIN cal ca ON ca.idx = {day_idx("coalesce(CAST(e.as_of AS DATE), last_day(CAST(e.period || '-01' AS DATE)))")}
),
agg_evaluations AS (
    SELECT district, mi,
           count(district) AS n,
           count_if(active) AS active,
           count_if(rating > {BAD_RATING_MAX}) AS good,
           count_if(rating <= {BAD_RATING_MAX}) AS bad,
           coalesce(sum(CAST(rating AS BIGINT) * 20), 0) AS score,
           count_if(rectified) AS rectified,
           count_if(rectified AND rectified_at IS NOT NULL AND coalesce(within, false)) AS rectified_on_time,
           count_if(due) AS due
    FROM eval_rows
    GROUP BY ALL
),
agg_hotline AS (
    SELECT district, {month_no('received_at')} AS mi,
           count(district) AS n,
           count_if(closed_at IS NOT NULL) AS closed,
           count_if(closed_at IS NOT NULL AND due_at IS NOT NULL AND closed_at <= due_at) AS closed_on_time,
           count_if(satisfaction IN ({_sql_list(SATISFIED)})) AS satisfied,
           count_if(satisfaction IN ({_sql_list(ANSWERED)})) AS answered
    FROM hotline
    GROUP BY ALL
),
-- Catalog in force: each catalog from its period up to the month before the district's next one,
-- the newest up to the last month with any data.
last_month AS (
    SELECT max(mi) AS last FROM (
        SELECT max({month_no('accepted_at')}) AS mi FROM cases
        UNION ALL SELECT max({month_no('completed_at')}) FROM cases
        UNION ALL SELECT max({month_no('evaluated_at')}) FROM evaluations
        UNION ALL SELECT max({month_no('received_at')}) FROM hotline
        UNION ALL SELECT max(pmi) FROM item_rows
    )
),
versions AS (
    SELECT district, pmi, lead(pmi) OVER (PARTITION BY district ORDER BY pmi) AS next_pmi
    FROM (SELECT DISTINCT district, pmi FROM item_rows WHERE pmi <= (SELECT last FROM last_month))
),
month_map AS (
    SELECT district, pmi, unnest(range(pmi, coalesce(next_pmi, (SELECT last FROM last_month) + 1))) AS mi
    FROM versions
),
evaluated AS (
    SELECT DISTINCT district, item_code, mi FROM eval_rows
),
item_months AS (
    SELECT i.*, m.mi, e.item_code IS NOT NULL AS evaluated
    FROM item_rows i
    JOIN month_map m ON i.district = m.district AND i.pmi = m.pmi
    LEFT JOIN evaluated e ON e.district = i.district AND e.item_code = i.item_code AND e.mi = m.mi
),
agg_items AS (
    SELECT district, mi,
           count(district) AS n,
           count_if(online_depth >= 2) AS depth_ge2,
           count_if(online_depth >= 3) AS depth_ge3,
           count_if(online_depth = 4) AS depth_eq4,
           coalesce(sum(CASE WHEN legal_limit > 0 THEN legal_limit ELSE 0 END), 0) AS legal_pos,
           coalesce(sum(CASE WHEN legal_limit > 0 THEN legal_limit - coalesce(promised_limit, legal_limit)
                             ELSE 0 END), 0) AS compression,
           count_if(case_type = '{INSTANT_CASE_TYPE}') AS instant,
           count_if(visits_required = 0) AS zero_visit,
           count_if(visits_required <= 1) AS at_most_once,
           count_if(materials_count = 0) AS zero_material,
           count_if(in_hall) AS in_hall,
           count_if(evaluated) AS evaluated
    FROM item_months
    GROUP BY ALL
),
long AS (
{union}
)
SELECT district,
       CASE WHEN mi IS NOT NULL THEN printf('%04d-%02d', mi // 12, mi % 12 + 1) END AS month,
       indicator, numerator, denominator
FROM long
"""


def duckdb_connect(data: Dataset, cal: WorkCalendar, threads: int | None = None):
    """A DuckDB connection with the four record frames and the calendar registered (Arrow, no copy)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name in ("cases", "items", "evaluations", "hotline"):
        # Newest Arrow flavour: Polars' string views go to DuckDB as they are (no copy of the text).
        con.register(name, getattr(data, name).to_arrow(compat_level=pl.CompatLevel.newest()))
    calendar = pl.DataFrame({"idx": np.arange(len(cal.cum), dtype=np.int32), "cum": cal.cum.astype(np.int32)})
    con.register("cal", calendar.to_arrow())
    return con


def duckdb_table(
    data: Dataset, rules: Rules | None = None, cal: WorkCalendar | None = None, con=None
) -> pl.DataFrame:
    """The indicator table computed by DuckDB (pass ``con`` from duckdb_connect to time the query alone)."""
    rules = rules or Rules()
    cal = cal or load_calendar()
    con = con or duckdb_connect(data, cal)
    out = con.sql(duckdb_sql(cal, rules)).pl()
    return out.select(pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items())


def duckdb_table_from_files(
    files: dict[str, list[str]], rules: Rules | None = None, cal: WorkCalendar | None = None
) -> pl.DataFrame:
    """duckdb_table over Parquet files (per kind, e.g. the snapshots), read by DuckDB itself."""
    import duckdb

    rules = rules or Rules()
    cal = cal or load_calendar()
    con = duckdb.connect()
    for name in ("cases", "items", "evaluations", "hotline"):
        paths = ", ".join("'" + f.replace("'", "''") + "'" for f in files[name])
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{paths}])")
    calendar = pl.DataFrame({"idx": np.arange(len(cal.cum), dtype=np.int32), "cum": cal.cum.astype(np.int32)})
    con.register("cal", calendar.to_arrow())
    out = con.sql(duckdb_sql(cal, rules)).pl()
    return out.select(pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items())


# --- (c) pandas -----------------------------------------------------------------------------------


def to_pandas(data: Dataset) -> dict[str, pd.DataFrame]:
    return {name: getattr(data, name).to_pandas() for name in ("cases", "items", "evaluations", "hotline")}


def pandas_from_files(files: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """The record frames from Parquet files (per kind), read with pandas."""
    import pandas as pd

    return {name: pd.concat([pd.read_parquet(f) for f in paths], ignore_index=True)
            for name, paths in files.items()}


def _month_no(ts: pd.Series) -> pd.Series:
    return ts.dt.year * 12 + ts.dt.month - 1


def _period_no(period: pd.Series) -> pd.Series:
    return period.str.slice(0, 4).astype("int64") * 12 + period.str.slice(5, 7).astype("int64") - 1


def _cum_at(cal: WorkCalendar, ts: pd.Series) -> np.ndarray:
    """Working days from the calendar start up to each date (NaN where the date is missing)."""
    days = ts.to_numpy(dtype="datetime64[us]").astype("datetime64[D]")
    missing = np.isnat(days)
    idx = (days - np.datetime64(cal.start, "D")).astype("int64")
    idx = np.clip(np.where(missing, 0, idx), 0, len(cal.cum) - 1)
    out = cal.cum[idx].astype("float64")
    out[missing] = np.nan
    return out


def _sum_by_month(frame: pd.DataFrame, month: pd.Series, columns: dict[str, pd.Series | np.ndarray]):
    import pandas as pd

    parts = pd.DataFrame({"district": frame["district"].to_numpy(), "mi": month.to_numpy(), **{
        name: np.asarray(values) for name, values in columns.items()}})
    return parts.groupby(["district", "mi"], dropna=False, sort=False).sum().reset_index()


def _pandas_cases(cases: pd.DataFrame, items: pd.DataFrame, cal: WorkCalendar, rules: Rules):
    import pandas as pd

    c = cases[["district", "item_code", "channel", "status", "supervision", "accepted_at", "completed_at",
               "legal_limit", "legal_limit_unit", "promised_limit", "promised_limit_unit", "suspended_days",
               "period", "as_of"]].copy()
    c["asof_mi"] = _month_no(c["accepted_at"]).fillna(-1).astype("int64")
    catalog = items[["district", "item_code", "legal_limit", "legal_limit_unit", "promised_limit",
                     "promised_limit_unit"]].rename(columns=lambda n: "cat_" + n if "limit" in n else n)
    catalog["asof_mi"] = _period_no(items["period"])
    # Time-limit fallback: the item's row in the catalog in force in the accepted month (the district's
    # newest version on or before it; an item that version dropped has no limits).
    versions = catalog[["district", "asof_mi"]].drop_duplicates().sort_values("asof_mi")
    versions["vmi"] = versions["asof_mi"]
    c = pd.merge_asof(c.sort_values("asof_mi"), versions, on="asof_mi", by="district", direction="backward")
    c = c.merge(catalog.rename(columns={"asof_mi": "vmi"}), on=["district", "item_code", "vmi"], how="left")

    completed = c["status"].eq(COMPLETED_STATUS) & c["completed_at"].notna()
    month_end = pd.to_datetime(c["period"] + "-01") + pd.offsets.MonthEnd(0)
    as_of = pd.to_datetime(c["as_of"]).astype(month_end.dtype).where(c["as_of"].notna(), month_end)
    end = c["completed_at"].where(c["completed_at"].notna(), as_of)  # open: to the export's as-of date
    suspended = c["suspended_days"].fillna(0).to_numpy()
    wd = _cum_at(cal, end) - _cum_at(cal, c["accepted_at"]) - suspended
    cd = (end.dt.floor("D") - c["accepted_at"].dt.floor("D")).dt.days.to_numpy(dtype="float64") - suspended
    elapsed_wd = pd.Series(np.clip(wd, 0, None), index=c.index)
    elapsed_cd = pd.Series(np.clip(cd, 0, None), index=c.index)

    legal = c["legal_limit"].fillna(c["cat_legal_limit"])
    legal_unit = c["legal_limit_unit"].where(c["legal_limit"].notna(), c["cat_legal_limit_unit"]).fillna(WORKING_DAYS)
    promised = c["promised_limit"].fillna(c["cat_promised_limit"])
    promised_unit = (c["promised_limit_unit"].where(c["promised_limit"].notna(), c["cat_promised_limit_unit"])
                     .fillna(WORKING_DAYS))
    el_legal = elapsed_cd.where(legal_unit == NATURAL_DAYS, elapsed_wd)
    el_promised = elapsed_cd.where(promised_unit == NATURAL_DAYS, elapsed_wd)

    computed_red = legal.notna() & ((el_legal - legal) > rules.red_grace_days)
    computed_yellow = promised.notna() & ((el_promised - promised) > rules.yellow_grace_days)
    has_sup = c["supervision"].notna()
    red_card = np.where(has_sup, c["supervision"].eq(SUPERVISION_RED), computed_red)
    any_card = np.where(has_sup, c["supervision"].isin(CARDS), computed_red | computed_yellow)

    acc = c["status"].notna() & c["status"].ne(NOT_ACCEPTED_STATUS)
    accepted = _sum_by_month(c[acc], _month_no(c.loc[acc, "accepted_at"]), {
        "n": np.ones(int(acc.sum()), dtype="int64"),
        "online": c.loc[acc, "channel"].isin(ONLINE_CHANNELS),
        "any_card": any_card[acc.to_numpy()],
        "red_card": red_card[acc.to_numpy()],
        "completed": completed[acc],
    })

    done = completed
    legal_pos = (legal > 0)[done]
    promised_pos = (promised > 0)[done]
    completed_agg = _sum_by_month(c[done], _month_no(c.loc[done, "completed_at"]), {
        "n": np.ones(int(done.sum()), dtype="int64"),
        "elapsed": elapsed_wd[done],
        "legal_pos": legal[done].where(legal_pos, 0.0),
        "statutory": (legal[done] - el_legal[done]).where(legal_pos, 0.0),
        "promised_pos": promised[done].where(promised_pos, 0.0),
        "promise": (promised[done] - el_promised[done]).where(promised_pos, 0.0),
        "on_time": (promised.notna() & (el_promised <= promised))[done],
    })
    return accepted, completed_agg


def _pandas_evaluations(ev: pd.DataFrame, cal: WorkCalendar, rules: Rules):
    import pandas as pd

    mi = _month_no(ev["evaluated_at"])
    bad = ev["rating"] <= BAD_RATING_MAX
    rectified = bad & ev["rectify_status"].isin(RECTIFIED)
    within = (_cum_at(cal, ev["rectified_at"]) - _cum_at(cal, ev["evaluated_at"])) <= rules.rectify_days
    month_end = pd.to_datetime(ev["period"] + "-01") + pd.offsets.MonthEnd(0)
    as_of = pd.to_datetime(ev["as_of"]).astype(month_end.dtype).where(ev["as_of"].notna(), month_end)
    passed = (_cum_at(cal, as_of) - _cum_at(cal, ev["evaluated_at"])) >= rules.rectify_days
    due = bad & (rectified | passed)
    agg = _sum_by_month(ev, mi, {
        "n": np.ones(len(ev), dtype="int64"),
        "active": ev["active"].eq(True),
        "good": ev["rating"] > BAD_RATING_MAX,
        "bad": bad,
        "score": ev["rating"].astype("float64") * 20,
        "rectified": rectified,
        "rectified_on_time": rectified & ev["rectified_at"].notna() & within,
        "due": due,
    })
    evaluated = ev[["district", "item_code"]].assign(mi=mi).drop_duplicates()
    return agg, evaluated


def _pandas_items(items: pd.DataFrame, evaluated: pd.DataFrame, last: int):
    import pandas as pd

    it = items.assign(pmi=_period_no(items["period"]))
    it = it[it["pmi"] <= last]
    # Catalog in force: each version from its period to the month before the district's next version.
    versions = it[["district", "pmi"]].drop_duplicates().sort_values(["district", "pmi"])
    versions["stop"] = versions.groupby("district")["pmi"].shift(-1).fillna(last + 1).astype("int64")
    lengths = (versions["stop"] - versions["pmi"]).to_numpy()
    month_map = versions.loc[versions.index.repeat(lengths), ["district", "pmi"]]
    month_map["mi"] = month_map["pmi"].to_numpy() + (
        np.arange(len(month_map)) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    expanded = it.merge(month_map, on=["district", "pmi"], how="inner")
    expanded = expanded.merge(evaluated.assign(evaluated=True), on=["district", "item_code", "mi"], how="left")
    legal = expanded["legal_limit"]
    legal_pos = legal > 0
    promised_for_legal = expanded["promised_limit"].fillna(legal)
    depth = expanded["online_depth"]
    visits = expanded["visits_required"]
    return _sum_by_month(expanded, expanded["mi"], {
        "n": np.ones(len(expanded), dtype="int64"),
        "depth_ge2": depth >= 2,
        "depth_ge3": depth >= 3,
        "depth_eq4": depth == 4,
        "legal_pos": legal.where(legal_pos, 0.0),
        "compression": (legal - promised_for_legal).where(legal_pos, 0.0),
        "instant": expanded["case_type"].eq(INSTANT_CASE_TYPE),
        "zero_visit": visits == 0,
        "at_most_once": visits <= 1,
        "zero_material": expanded["materials_count"] == 0,
        "in_hall": expanded["in_hall"].eq(True),
        "evaluated": expanded["evaluated"].eq(True),
    }) if len(expanded) else pd.DataFrame(columns=["district", "mi", "n"])


def _pandas_hotline(hl: pd.DataFrame):
    closed = hl["closed_at"].notna()
    return _sum_by_month(hl, _month_no(hl["received_at"]), {
        "n": np.ones(len(hl), dtype="int64"),
        "closed": closed,
        "closed_on_time": closed & hl["due_at"].notna() & (hl["closed_at"] <= hl["due_at"]),
        "satisfied": hl["satisfaction"].isin(SATISFIED),
        "answered": hl["satisfaction"].isin(ANSWERED),
    })


def pandas_table(
    frames: dict[str, pd.DataFrame], rules: Rules | None = None, cal: WorkCalendar | None = None
) -> pd.DataFrame:
    """The indicator table in pandas, from the record frames of :func:`to_pandas`."""
    import pandas as pd

    rules = rules or Rules()
    cal = cal or load_calendar()
    cases, items, ev, hl = (frames[k] for k in ("cases", "items", "evaluations", "hotline"))
    accepted, completed = _pandas_cases(cases, items, cal, rules)
    evaluations, evaluated = _pandas_evaluations(ev, cal, rules)
    months = [_month_no(cases["accepted_at"]).max(), _month_no(cases["completed_at"]).max(),
              evaluated["mi"].max(), _month_no(hl["received_at"]).max(), _period_no(items["period"]).max()]
    months = [int(m) for m in months if pd.notna(m)]
    aggs = {
        "items": _pandas_items(items, evaluated, max(months)) if months else pd.DataFrame(
            columns=["district", "mi", "n"]),
        "accepted": accepted,
        "completed": completed,
        "evaluations": evaluations,
        "hotline": _pandas_hotline(hl),
    }
    parts = []
    for ind, (num_src, num_col, den_src, den_col) in PARTS.items():
        if num_src == den_src:
            agg = aggs[num_src]
            part = pd.DataFrame({"district": agg["district"], "mi": agg["mi"],
                                 "numerator": agg.get(num_col), "denominator": agg.get(den_col)})
        else:  # a key present on one side only counts 0 on the other
            part = aggs[num_src][["district", "mi", num_col]].merge(
                aggs[den_src][["district", "mi", den_col]], on=["district", "mi"], how="outer",
                suffixes=("_num", "_den"))
            part = pd.DataFrame({"district": part["district"], "mi": part["mi"],
                                 "numerator": part.iloc[:, 2].fillna(0), "denominator": part.iloc[:, 3].fillna(0)})
        parts.append(part.assign(indicator=ind))
    long = pd.concat(parts, ignore_index=True)
    mi = long["mi"].astype("float64")
    month = (mi // 12).astype("Int64").astype(str).str.zfill(4) + "-" + (mi % 12 + 1).astype("Int64").astype(
        str).str.zfill(2)
    return pd.DataFrame({
        "district": long["district"].astype(object),
        "month": month.where(mi.notna(), None).astype(object),
        "indicator": long["indicator"],
        "numerator": long["numerator"].astype("float64"),
        "denominator": long["denominator"].astype("float64"),
    })


def pandas_result_to_polars(frame: pd.DataFrame) -> pl.DataFrame:
    return pl.from_pandas(frame).select(pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items())


# --- cross-check ----------------------------------------------------------------------------------


def compare(reference: pl.DataFrame, other: pl.DataFrame, tolerance: float = 1e-6) -> pl.DataFrame:
    """Per indicator: rows compared, rows missing on either side, numerator and denominator mismatches.

    Keys are district × month × indicator; a key present on one side only counts as a mismatch.
    """
    keys = ["district", "month", "indicator"]
    joined = reference.join(other, on=keys, how="full", suffix="_other", coalesce=True, nulls_equal=True)
    only_ref = pl.col("numerator_other").is_null() & pl.col("denominator_other").is_null()
    only_other = pl.col("numerator").is_null() & pl.col("denominator").is_null()

    def differs(col: str) -> pl.Expr:
        return ((pl.col(col) - pl.col(f"{col}_other")).abs() >= tolerance).fill_null(False)

    summary = joined.group_by("indicator").agg(
        pl.len().alias("rows"),
        only_ref.sum().alias("only_in_reference"),
        only_other.sum().alias("only_in_other"),
        differs("numerator").sum().alias("numerator_mismatches"),
        differs("denominator").sum().alias("denominator_mismatches"),
    )
    order = pl.DataFrame({"indicator": list(PARTS), "_o": range(len(PARTS))})
    return summary.join(order, on="indicator", how="left").sort("_o", nulls_last=True).drop("_o")


def mismatch_total(summary: pl.DataFrame) -> int:
    cols = ["only_in_reference", "only_in_other", "numerator_mismatches", "denominator_mismatches"]
    return int(summary.select(pl.sum_horizontal(cols).sum()).item())
