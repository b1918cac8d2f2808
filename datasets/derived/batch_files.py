"""One immutable Parquet file per imported batch: the columnar copy of the store the caches start from.

An import writes, after its transaction has committed, the rows of each new batch to
``batches/<kind>/<batch id>-<sha256>-<rows>-<district>.parquet`` in the cache (datasets/derived/cache_store.py).
The current records of a district × kind are then those files with the newest-wins rule
(store.newest_rows), so a cold start, a new app server or a rebuilt snapshot never reads the whole SQL
store back. The SQL database stays the system of record: a file is used only when its name matches
the batch (id, file hash, row count, district) and its row count matches the batch's; a missing or
mismatched file is written again from the SQL rows of that batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import polars as pl
from sqlalchemy.engine import Engine

from datasets.common.faults import CacheWriteError
from datasets.derived.cache_store import Cache, tolerate
from datasets.domain.schema import KINDS, canonical_columns
from datasets.storage import store

log = logging.getLogger(__name__)
FOLDER = "batches"


def _tag(district: str) -> str:
    import hashlib

    return hashlib.sha1(district.encode()).hexdigest()[:12]


def file_name(kind: str, batch_id: int, sha256: str, rows: int, district: str) -> str:
    return f"{FOLDER}/{kind}/{int(batch_id)}-{sha256[:16]}-{int(rows)}-{_tag(district)}.parquet"


def _typed(kind: str, batch_id: int, rows: pl.DataFrame, engine: Engine) -> pl.DataFrame:
    """The rows as the store gives them back: the kind's columns and types, batch id first."""
    # A file may lack any optional column (申请时间, 事项名称, …): stored as nulls, as in SQL.
    frame = rows.select(pl.lit(batch_id, pl.Int64).alias("batch_id"), *canonical_columns(kind, rows.columns))
    if store.is_sqlite(engine):
        # SQLite keeps datetimes as whole-second text (store.insert_records): match what it reads back.
        frame = frame.with_columns(pl.col(pl.Datetime).dt.truncate("1s"))
    return frame


def write_imported(engine: Engine, cache: Cache | None, kind: str, sha256: str,
                   batches: Iterable[tuple[int, str, pl.DataFrame]]) -> int:
    """Write the files of freshly committed batches ``(batch id, district, rows)``; returns how many.

    Idempotent: a file already there is left alone (its name fixes its content). Called after the
    commit, so a failure here loses no data: the file is recreated from SQL when it is first needed.
    """
    if cache is None:
        return 0
    written = 0
    for batch_id, district, rows in batches:
        name = file_name(kind, batch_id, sha256, rows.height, district)
        if cache.exists(name):
            continue
        cache.write(name, _typed(kind, batch_id, rows, engine))
        written += 1
    return written


def _wanted(active: pl.DataFrame, kind: str) -> list[tuple[int, str, int, str]]:
    return [(int(r["id"]), r["sha256"], int(r["rows"]), r["district"]) for r in active.iter_rows(named=True)
            if r["kind"] == kind]


def _read_checked(cache: Cache, kind: str, batch: tuple[int, str, int, str],
                  columns: list[str] | None) -> pl.DataFrame | None:
    batch_id, sha, rows, district = batch
    frame = cache.read(file_name(kind, batch_id, sha, rows, district), columns)
    if frame is None or frame.height != rows:  # a file that does not match its batch is not trusted
        return None
    return frame


# Batch files are recreated from SQL in groups of batches of at most this many rows: a large district's
# batches read at once (云湖区's cases at scale 30: 5.6 M rows, read, typed and split) peaked at 7 GB.
RECREATE_ROWS = 1_000_000


def _groups(batches: Sequence[tuple[int, str, int, str]], limit: int) -> list[list[tuple[int, str, int, str]]]:
    """Consecutive batches (by district, then id) with at most ``limit`` rows together; a larger batch
    is a group of its own."""
    groups: list[list[tuple[int, str, int, str]]] = []
    rows = 0
    for b in sorted(batches, key=lambda b: (b[3], b[0])):
        if not groups or rows + b[2] > limit:
            groups.append([])
            rows = 0
        groups[-1].append(b)
        rows += b[2]
    return groups


def recreate(engine: Engine, cache: Cache, kind: str, batches: Sequence[tuple[int, str, int, str]],
             group_rows: int = RECREATE_ROWS) -> None:
    """Write the files of these batches from their SQL rows (a lost or never-written cache)."""
    groups = _groups(batches, group_rows)
    sqls = [store.record_query(kind, [b[0] for b in group], store.is_sqlite(engine)) for group in groups]
    if store.is_sqlite(engine):
        raws: Iterator[pl.DataFrame] = store.sqlite_read_many(engine, sqls, sum(b[2] for b in batches))
    else:
        raws = (store.arrow_read(engine, sql) for sql in sqls)
    k = KINDS[kind]
    for group, raw in zip(groups, raws, strict=True):
        raw = raw.filter(pl.col("batch_id") != store.SENTINEL_BATCH)
        typed = raw.select(pl.col("batch_id").cast(pl.Int64), *[store.cast_column(raw, f.name, f.dtype) for f in k.fields])
        del raw
        parts = typed.partition_by("batch_id", as_dict=True)
        for batch_id, sha, rows, district in group:
            part = parts.get((batch_id,), typed.clear())
            cache.write(file_name(kind, batch_id, sha, rows, district), part)
        log.info("batch files of %d %s batches recreated from SQL (%s)", len(group), kind,
                 "、".join(sorted({b[3] for b in group})))


def prune(engine: Engine, cache: Cache | None) -> int:
    """Delete the files of batches that are no longer active (superseded, rolled back); returns how many.

    A rollback that makes such a batch active again gets its file back from SQL when it is first
    read (current_records), so nothing is lost, and the cache no longer grows with every corrected
    export. The files are listed before the active batches are read: a file is written only after its
    batch has committed, so the file of a batch imported meanwhile is either not listed or its batch
    is already seen as active, and is never deleted.
    """
    if cache is None:
        return 0
    listed = {kind: cache.names(f"{FOLDER}/{kind}") for kind in KINDS}
    active = store.active_batches(engine)
    removed = 0
    for kind, names in listed.items():
        keep = {file_name(kind, *b).rsplit("/", 1)[-1] for b in _wanted(active, kind)}
        for name in names:
            if name not in keep:
                cache.delete(f"{FOLDER}/{kind}/{name}")
                removed += 1
    if removed:
        log.info("%d batch files of inactive batches removed", removed)
    return removed


def missing(cache: Cache, kind: str, active: pl.DataFrame) -> list[tuple[int, str, int, str]]:
    """The active batches of a kind whose file is not in the cache."""
    return [b for b in _wanted(active, kind) if not cache.exists(file_name(kind, *b))]


def _reader(engine: Engine, cache: Cache, kind: str, wanted: dict[int, tuple[int, str, int, str]]
            ) -> Callable[[int, list[str] | None], pl.DataFrame]:
    """read(batch id, columns or None for all): a batch's typed rows from its file, the file recreated
    from SQL once if it is missing or does not match its batch."""
    checked: set[tuple[int, str, int, str]] = set()

    def read(batch_id: int, columns: list[str] | None) -> pl.DataFrame:
        b = wanted[batch_id]
        frame = _read_checked(cache, kind, b, columns)
        if frame is None and b not in checked:
            recreate(engine, cache, kind, [b])
            frame = _read_checked(cache, kind, b, columns)
        if frame is None:
            raise RuntimeError(f"批次 {b[0]} 的缓存文件写入后无法读取")
        checked.add(b)
        return frame

    return read


# Up to this many rows in a district's active batches of a kind, each batch file is read once and held
# (newest_wins' ``hold``); above, the key columns first, then one file at a time. At scale 10 (every
# district-kind under 2 M rows) a cold start took 12.1 s against 12.9 s with 0.5 M, same peak.
ONE_PASS_ROWS = 2_000_000


def current_records(engine: Engine, cache: Cache, kind: str, district: str,
                    active: pl.DataFrame | None = None, one_pass_rows: int = ONE_PASS_ROWS) -> pl.DataFrame:
    """store.load_records(engine, kind, [district]), from the batch files (recreated from SQL if needed).

    The same rows, order and types as store.newest_rows on all the district's files concatenated, in
    two passes so that no more than one batch file is held beside the result: the key columns of
    every file decide which row of which batch wins (store.newest_rows's rule: order by period, then
    batch id, then position in the file; the last row of a key wins), then each file is read again
    and only its winning rows are kept. Holding every batch at once, cast, joined and sorted, made
    several copies of the largest district (4.3 GB at scale 30 for 1 GB of current cases). Up to
    ``one_pass_rows`` rows in all, every file is read once and held instead (newest_wins' ``hold``).
    """
    active = store.active_batches(engine, kind) if active is None else active
    active = active.filter((pl.col("district") == district) & (pl.col("kind") == kind))
    if active.height == 0:
        return store.empty_records(kind)
    wanted = {b[0]: b for b in _wanted(active, kind)}
    try:
        # Lost files are recreated together, one SQL read for all (as before), not one per batch.
        lost = [b for b in wanted.values() if not cache.exists(file_name(kind, *b))]
        if lost:
            recreate(engine, cache, kind, lost)
        read = _reader(engine, cache, kind, wanted)
        # Small: every file read once and held (the copies this makes are small, and reading the key
        # columns of each file again cost a tenth of a cold start).
        return store.newest_wins(kind, active, read, hold=int(active["rows"].sum()) <= one_pass_rows)
    except CacheWriteError as exc:
        # A batch file could not be recreated (a full cache disk): the same rows straight from SQL.
        tolerate(exc)
        raw = store.arrow_read(engine, store.record_query(kind, active["id"].to_list(), store.is_sqlite(engine)),
                                int(active["rows"].sum()))
        return store.newest_rows(kind, raw, active)
