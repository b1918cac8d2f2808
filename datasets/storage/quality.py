"""Data quality from the batches table: what each district reported for each month, and when.

``completeness`` is the district × month × kind grid (已报送 / 逾期报送 / 沿用 / 缺失); catalogs
(事项清单) are snapshots, so a month without a new catalog but with an earlier one in force is 沿用.
``batch_table`` and ``last_uploads`` are the history tables of the upload and quality pages.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import polars as pl
from sqlalchemy.engine import Engine

from datasets.domain.periods import month_range
from datasets.domain.schema import KINDS
from datasets.storage import store

PRESENT, LATE, CARRIED, MISSING = "已报送", "逾期报送", "沿用", "缺失"
STATE_LABELS = {store.ACTIVE: "在用", store.SUPERSEDED: "已被新版本替换", store.ROLLED_BACK: "已回滚",
                store.WITHDRAWN: "已撤销"}
MONTHLY_KINDS = ("cases", "evaluations", "hotline")

_GRID_SCHEMA = {
    "kind": pl.String,
    "kind_label": pl.String,
    "district": pl.String,
    "month": pl.String,
    "status": pl.String,
    "files": pl.Int64,
    "rows": pl.Int64,
}


def all_districts(engine: Engine, batches: pl.DataFrame | None = None) -> list[str]:
    """Configured districts in their order, then any district that only appears in batches."""
    names = store.list_districts(engine)["name"].to_list()
    if batches is None:
        batches = store.batch_history(engine)
    extra = sorted(set(batches["district"].to_list()) - set(names)) if batches.height else []
    return [*names, *extra]


def completeness(engine: Engine, months: list[str] | None = None) -> pl.DataFrame:
    """One row per kind × district × month: status, number of versions and active rows.

    ``months`` defaults to every month from the first to the last reported period.
    """
    history = store.batch_history(engine)
    if history.height == 0:
        return pl.DataFrame(schema=_GRID_SCHEMA)
    districts = all_districts(engine, history)
    if months is None:
        periods = history.filter(pl.col("kind").is_in(MONTHLY_KINDS))["period"]
        if periods.len() == 0:
            periods = history["period"]
        months = month_range(str(periods.min()), str(periods.max()))
    slots = history.group_by("kind", "district", "period").agg(
        pl.len().alias("files"),
        pl.col("rows").filter(pl.col("state") == store.ACTIVE).sum().alias("rows"),
        (pl.col("state") == store.ACTIVE).any().alias("active"),
        (pl.col("late") & (pl.col("state") == store.ACTIVE)).any().alias("late"),
    )
    grid = pl.DataFrame(
        [(k, d, m) for k in KINDS for d in districts for m in months],
        schema={"kind": pl.String, "district": pl.String, "month": pl.String},
        orient="row",
    )
    out = grid.join(slots.rename({"period": "month"}), on=["kind", "district", "month"], how="left")
    # Catalogs: the newest active catalog on or before the month is in force.
    catalogs = history.filter((pl.col("kind") == "items") & (pl.col("state") == store.ACTIVE))
    first_catalog = catalogs.group_by("district").agg(pl.col("period").min().alias("first_catalog"))
    out = out.join(first_catalog, on="district", how="left")
    status = (
        pl.when(pl.col("active").fill_null(False) & pl.col("late").fill_null(False))
        .then(pl.lit(LATE))
        .when(pl.col("active").fill_null(False))
        .then(pl.lit(PRESENT))
        .when((pl.col("kind") == "items") & pl.col("first_catalog").is_not_null()
              & (pl.col("first_catalog") <= pl.col("month")))
        .then(pl.lit(CARRIED))
        .otherwise(pl.lit(MISSING))
    )
    labels = {k: v.label for k, v in KINDS.items()}
    return out.select(
        "kind",
        pl.col("kind").replace_strict(labels, return_dtype=pl.String).alias("kind_label"),
        "district",
        "month",
        status.alias("status"),
        pl.col("files").fill_null(0).cast(pl.Int64),
        pl.col("rows").fill_null(0).cast(pl.Int64),
    )


def completeness_summary(grid: pl.DataFrame) -> pl.DataFrame:
    """Per kind: cells present, late, carried forward and missing."""
    if grid.height == 0:
        return pl.DataFrame(schema={"数据类型": pl.String})
    counts = grid.group_by("kind", "kind_label", "status").len()
    wide = counts.pivot(on="status", index=["kind", "kind_label"], values="len")
    for s in (PRESENT, LATE, CARRIED, MISSING):
        if s not in wide.columns:
            wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(s))
    order = {k: i for i, k in enumerate(KINDS)}
    return (
        wide.with_columns(pl.col("kind").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
        .sort("_o")
        .select(pl.col("kind_label").alias("数据类型"), *[pl.col(s).fill_null(0) for s in (PRESENT, LATE, CARRIED, MISSING)])
    )


def missing_list(grid: pl.DataFrame, kinds: tuple[str, ...] = MONTHLY_KINDS) -> pl.DataFrame:
    """The district-months a monthly kind was not reported."""
    return (
        grid.filter(pl.col("kind").is_in(kinds), pl.col("status") == MISSING)
        .sort("month", "district")
        .select(pl.col("kind_label").alias("数据类型"), pl.col("district").alias("区县"), pl.col("month").alias("月份"))
    )


def _summary_value(text: str | None, key: str) -> object:
    try:
        return json.loads(text or "{}").get(key)
    except (ValueError, AttributeError):
        return None


def batch_table(history: pl.DataFrame) -> pl.DataFrame:
    """store.batch_history() with Chinese headers (newest first); ``批次号`` identifies a version."""
    labels = {k: v.label for k, v in KINDS.items()}
    if history.height == 0:
        return pl.DataFrame(schema={"批次号": pl.Int64, "上传时间": pl.String, "数据类型": pl.String,
                                    "区县": pl.String, "所属月份": pl.String, "版本": pl.Int64, "状态": pl.String,
                                    "文件名": pl.String, "操作人": pl.String, "行数": pl.Int64,
                                    "替换行数": pl.Int64, "警告数": pl.Int64, "逾期": pl.String})
    return history.sort("id", descending=True).select(
        pl.col("id").cast(pl.Int64).alias("批次号"),
        pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M").alias("上传时间"),
        pl.col("kind").replace_strict(labels, default=pl.col("kind"), return_dtype=pl.String).alias("数据类型"),
        pl.col("district").alias("区县"),
        pl.col("period").alias("所属月份"),
        pl.col("version").cast(pl.Int64).alias("版本"),
        pl.col("state").replace_strict(STATE_LABELS, default=pl.col("state"), return_dtype=pl.String).alias("状态"),
        pl.col("file_name").alias("文件名"),
        pl.col("user_name").alias("操作人"),
        pl.col("rows").cast(pl.Int64).alias("行数"),
        pl.col("rows_replaced").cast(pl.Int64).alias("替换行数"),
        pl.col("warnings").cast(pl.Int64).alias("警告数"),
        pl.when(pl.col("late").cast(pl.Boolean)).then(pl.lit("是")).otherwise(pl.lit("否")).alias("逾期"),
    )


def validation_history(engine: Engine, limit: int = 500) -> pl.DataFrame:
    """Stored imports with the outcome of their validation (rows, warnings, rules that fired)."""
    history = store.batch_history(engine).head(limit)
    table = batch_table(history)
    if history.height == 0:
        return table.with_columns(pl.lit(None, dtype=pl.String).alias("校验提示"))
    rules = [
        "、".join(f"{k}×{v}" for k, v in (_summary_value(s, "rules") or {}).items()) or "—"
        for s in history.sort("id", descending=True)["summary"].to_list()
    ]
    return table.with_columns(pl.Series("校验提示", rules, dtype=pl.String))


def last_uploads(engine: Engine, today: dt.date | None = None) -> pl.DataFrame:
    """Per district: the last upload (time, kind, file, who) and days since; never-reported districts too."""
    history = store.batch_history(engine)
    districts = all_districts(engine, history)
    today = today or dt.date.today()
    labels = {k: v.label for k, v in KINDS.items()}
    if history.height:
        last = history.sort("created_at", "id").group_by("district").agg(pl.all().last())
    else:
        last = pl.DataFrame(schema={"district": pl.String, "created_at": pl.Datetime, "kind": pl.String,
                                    "file_name": pl.String, "user_name": pl.String, "period": pl.String})
    frame = pl.DataFrame({"district": districts}, schema={"district": pl.String}).join(last, on="district", how="left")
    return frame.select(
        pl.col("district").alias("区县"),
        pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M").alias("最近上传时间"),
        pl.col("kind").replace_strict(labels, default=None, return_dtype=pl.String).alias("数据类型"),
        pl.col("period").alias("所属月份"),
        pl.col("file_name").alias("文件名"),
        pl.col("user_name").alias("操作人"),
        (pl.lit(today) - pl.col("created_at").cast(pl.Date)).dt.total_days().alias("距今天数"),
    )


def catalog_ages(engine: Engine, month: str, max_age_months: int) -> pl.DataFrame:
    """Per district: the 事项清单 in force in ``month`` (newest active version on or before it), its age
    in months and whether it is older than ``max_age_months`` (such a district is not ranked)."""
    active = store.active_batches(engine, "items")
    in_force = (active.filter(pl.col("period") <= month).group_by("district").agg(pl.col("period").max())
                if active.height else pl.DataFrame(schema={"district": pl.String, "period": pl.String}))
    frame = pl.DataFrame({"district": all_districts(engine)}, schema={"district": pl.String}).join(
        in_force, on="district", how="left")
    age = pl.lit(int(month[:4]) * 12 + int(month[5:7])) - (
        pl.col("period").str.slice(0, 4).cast(pl.Int64) * 12 + pl.col("period").str.slice(5, 2).cast(pl.Int64))
    return frame.select(
        pl.col("district").alias("区县"),
        pl.col("period").fill_null("—").alias("适用的事项清单"),
        age.alias("已过月数"),
        pl.when(pl.col("period").is_null()).then(pl.lit("无清单"))
        .when(age > max_age_months).then(pl.lit(f"已超过 {max_age_months} 个月，不参与排名"))
        .otherwise(pl.lit("有效")).alias("状态"),
    )


def rollback_candidates(history: pl.DataFrame, districts: Iterable[str] | None = None) -> pl.DataFrame:
    """Versions that can be made active again (superseded, rolled back or withdrawn), newest first.

    ``districts``: only the versions of these districts (an account's scope); None for all.
    """
    if history.height == 0:
        return history
    out = history.filter(pl.col("state") != store.ACTIVE)
    if districts is not None:
        out = out.filter(pl.col("district").is_in(list(districts)))
    return out.sort("id", descending=True)


def batch_label(row: dict) -> str:
    """A one-line description of a batch for pickers: 批次 12 · 办件明细 · 甲区 2024-05 第 2 版 (file)."""
    kind = KINDS[row["kind"]].label if row["kind"] in KINDS else row["kind"]
    state = STATE_LABELS.get(row["state"], row["state"])
    return (f"批次 {row['id']} · {kind} · {row['district']} {row['period']} 第 {row['version']} 版"
            f"（{state}，{row['rows']} 行，{row['created_at']}，{row['file_name']}）")
