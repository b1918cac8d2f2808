"""Atomic import of canonical frames into the store (one transaction per file)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from datasets.access import accounts
from datasets.access.accounts import PermissionDenied, User
from datasets.domain.schema import KINDS
from datasets.storage import store


@dataclass
class DistrictResult:
    district: str
    period: str
    batch_id: int | None
    rows: int
    rows_replaced: int
    version: int | None
    unchanged: bool = False


@dataclass
class ImportResult:
    file_name: str
    kind: str
    sha256: str
    results: list[DistrictResult] = field(default_factory=list)
    notice: str | None = None  # stored, but something to tell (a batch file not written)

    @property
    def unchanged(self) -> bool:
        return bool(self.results) and all(r.unchanged for r in self.results)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def rows_replaced(self) -> int:
        return sum(r.rows_replaced for r in self.results)


# Monthly exports are due by this day of the following month (每月 10 日前报送上月数据).
DEADLINE_DAY = 10


def is_late(period: str, uploaded_at: dt.datetime, deadline_day: int = DEADLINE_DAY) -> bool:
    """Whether an upload for ``period`` (YYYY-MM) came after the deadline in the following month."""
    year, month = int(period[:4]), int(period[5:7])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return uploaded_at.date() > dt.date(year, month, deadline_day)


def majority_month(frame: pl.DataFrame, date_field: str) -> str:
    """The month most rows fall in (ties: the later month), as YYYY-MM."""
    counts = (
        frame.select(pl.col(date_field).dt.strftime("%Y-%m").alias("m"))
        .drop_nulls()
        .group_by("m")
        .len()
        .sort(["len", "m"], descending=True)
    )
    if counts.height == 0:
        raise ValueError("无法确定数据所属月份：日期列为空")
    return str(counts["m"][0])


def import_frame(
    engine: Engine,
    kind: str,
    frame: pl.DataFrame,
    *,
    file_name: str,
    sha256: str,
    user_name: str = "system",
    period: str | None = None,
    warnings: int = 0,
    summary: dict | None = None,
    created_at=None,
    late: bool | None = None,
    exported: dt.date | None = None,
    guard: Callable[[Connection], None] | None = None,
    audit: Callable[[Connection, ImportResult], None] | None = None,
) -> ImportResult:
    """Store canonical, validated rows: one batch per district, all in one transaction.

    ``period`` is required for catalogs (the month from which they apply); for other kinds it is
    the month most of a district's rows fall in. Re-importing the identical file is a no-op.
    ``late`` defaults to whether the upload came after the reporting deadline of its month.
    ``exported``: the export date the file states (its 导出时间 title line), if any; each batch's
    数据截止日 is store.as_of_date of its period, the import time and this.

    Each district × period is locked (``store.lock_slot``) before the identical-file check, so the
    same file imported by several sessions at once is stored once. ``guard(conn)`` runs first in the
    transaction and may refuse (raise); ``audit(conn, result)`` writes the audit row inside it when
    something was stored, so the data and its audit row commit together or not at all.
    """
    _check(kind, frame, period)
    with engine.begin() as conn:
        if guard is not None:
            guard(conn)
        result, parts = store_parts(conn, kind, frame, file_name=file_name, sha256=sha256, user_name=user_name,
                                    period=period, warnings=warnings, summary=summary, created_at=created_at,
                                    late=late, exported=exported)
        if not result.unchanged and audit is not None:
            audit(conn, result)
    write_batch_files(engine, result, parts)
    return result


Parts = dict[str, pl.DataFrame]  # a file's rows by district


def district_parts(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """A file's rows per district, in the order they are stored (one batch each)."""
    parts = frame.partition_by("district", as_dict=True, maintain_order=True)
    return [(district, part) for (district,), part in sorted(parts.items())]


def _check(kind: str, frame: pl.DataFrame, period: str | None) -> None:
    if kind == "items" and not period:
        raise ValueError("事项清单必须指定适用月份（--period YYYY-MM）")
    if frame.height == 0:
        raise ValueError("文件中没有数据行")
    if frame["district"].null_count():
        raise ValueError("存在未指定区县的数据行")


def store_parts(
    conn: Connection,
    kind: str,
    frame: pl.DataFrame,
    *,
    file_name: str,
    sha256: str,
    user_name: str = "system",
    period: str | None = None,
    warnings: int = 0,
    summary: dict | None = None,
    created_at=None,
    late: bool | None = None,
    insert: store.Inserter = store.insert_records,
    exported: dt.date | None = None,
) -> tuple[ImportResult, Parts]:
    """The body of import_frame inside the caller's transaction: one batch per district, its records
    and a revision. Returns the result and the rows of each district, for write_batch_files once the
    transaction has committed (a bulk load runs many of these in one transaction, with ``insert`` from
    store.staged_records)."""
    k = KINDS[kind]
    _check(kind, frame, period)
    result = ImportResult(file_name=file_name, kind=kind, sha256=sha256)
    upload_id = uuid.uuid4().hex
    parts = dict(district_parts(frame))
    for district, part in parts.items():
        slot_period = period or majority_month(part, k.date_field)
        store.lock_slot(conn, kind, district, slot_period)
        same = conn.execute(
            sa.select(store.batches.c.id, store.batches.c.version).where(
                (store.batches.c.kind == kind)
                & (store.batches.c.district == district)
                & (store.batches.c.period == slot_period)
                & (store.batches.c.state == store.ACTIVE)
                & (store.batches.c.sha256 == sha256)
            )
        ).first()
        if same is not None:
            result.results.append(
                DistrictResult(district, slot_period, same.id, part.height, 0, same.version, unchanged=True)
            )
            continue
        batch_id, replaced = store.create_batch(
            conn,
            upload_id=upload_id,
            kind=kind,
            district=district,
            period=slot_period,
            file_name=file_name,
            sha256=sha256,
            user_name=user_name,
            rows=part.height,
            warnings=warnings,
            summary=summary,
            created_at=created_at,
            late=is_late(slot_period, created_at or store.now()) if late is None else late,
            exported=exported,
        )
        insert(conn, kind, batch_id, part)
        version = conn.execute(
            sa.select(store.batches.c.version).where(store.batches.c.id == batch_id)
        ).scalar()
        result.results.append(DistrictResult(district, slot_period, batch_id, part.height, replaced, version))
    if not result.unchanged:
        store.add_revision(conn, f"import {kind} {file_name}")
    return result, parts


def write_batch_files(engine: Engine, result: ImportResult, parts: Parts) -> None:
    """After the commit: the new batches' columnar copies (datasets/derived/batch_files.py).

    A failure loses nothing (the SQL store is the system of record and the file is recreated from it
    when first needed), so the import stands; it is not silent either: ``result.notice`` says in
    Chinese that the file was not written, for the CLI and the upload page to show."""
    from datasets.common import faults
    from datasets.derived import batch_files, snapshots

    new = [(r.batch_id, r.district, parts[r.district]) for r in result.results
           if not r.unchanged and r.batch_id is not None]
    try:
        batch_files.write_imported(engine, snapshots.cache_of(engine), result.kind, result.sha256, new)
    except Exception as exc:  # the import itself has committed; see above
        if isinstance(exc, faults.CacheWriteError):
            reason = f"{faults.CACHE_FULL_TEXT if exc.disk_full else faults.CACHE_FAILED_TEXT}：{exc.location}"
        else:
            reason = f"内部错误 {type(exc).__name__}"
            logging.getLogger(__name__).error("批次文件未能写出（%s）：%r", result.file_name, exc,
                                              exc_info=faults.traceback_wanted())
        result.notice = (f"{result.file_name}：数据已完整入库，但计算缓存中的批次文件未能写出（{reason}）。"
                         "数字不受影响：下次计算时将从数据库重建该文件（会较慢）。")


def withdraw(engine: Engine, batch_id: int, user: User | None, page: str = "数据上传",
             actor_name: str = "命令行") -> dict:
    """撤销导入: take back an active import of one district × kind × month, within the account's district
    scope (checked again inside the transaction, as stored now); audited. Its records stop counting
    at once (a new revision; the caches key on the active batches) and the version it replaced, if
    any, counts again (store.withdraw_batch). A rollback to the batch restores it.

    ``actor_name`` is recorded when there is no account (the shell).
    """
    district = store.batch_district(engine, batch_id)
    if district is None:
        raise ValueError(f"批次 {batch_id} 不存在")
    if user is not None:
        _check_withdraw_scope(user, district)
    actor = user.username if user is not None else actor_name

    def guard(conn: Connection, target) -> None:
        if user is None:
            return
        fresh = accounts.current_account(conn, user.username)
        if fresh is None:
            raise PermissionDenied(f"账号“{user.username}”已不存在")
        _check_withdraw_scope(fresh, target.district)

    def audit(conn: Connection, done: dict) -> None:
        label = KINDS[done["kind"]].label if done["kind"] in KINDS else done["kind"]
        back = f"，恢复为第 {done['restored_version']} 版" if done["restored_version"] is not None else ""
        accounts.audit_in(conn, actor, "withdraw",
                          f"{done['district']} {done['period']} {label} 撤销第 {done['version']} 版"
                          f"（批次 {batch_id}，{done['rows']} 行{back}）", page)

    return store.withdraw_batch(engine, batch_id, actor, guard=guard, audit=audit)


def _check_withdraw_scope(user: User, district: str) -> None:
    try:
        accounts.check_import_scope(user, [district], rollback=True)
    except PermissionDenied as exc:  # the same rule as a rollback, worded for a withdrawal
        raise PermissionDenied(str(exc).replace("回滚", "撤销")) from None


def withdraw_candidates(history: pl.DataFrame, districts: list[str] | tuple[str, ...] | None = None) -> pl.DataFrame:
    """The active imports an account may withdraw (its districts; None for all), newest first."""
    if history.height == 0:
        return history
    out = history.filter(pl.col("state") == store.ACTIVE)
    if districts is not None and "*" not in districts:
        out = out.filter(pl.col("district").is_in(list(districts)))
    return out.sort("id", descending=True)
