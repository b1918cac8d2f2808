"""Per-district Parquet snapshots of the current records, and of frames derived from them.

The store (SQLite or PostgreSQL) keeps every batch of every import; what counts is, per district
and id, the newest active row (store.load_records). The current rows of each district × kind are
kept as a Parquet file named after the active batches they come from, built from the batch files
(datasets/derived/batch_files.py: one immutable file per imported batch, written at import), not from the
SQL tables, which are read only to recreate a batch file that is missing. An import or rollback
changes the active batches of one district and kind: only that file is rebuilt, and an import that
only adds a newer batch extends the previous file instead (extend). Frames derived from
a district's records (its indicator components, its alert lists) are cached the same way, keyed by
the snapshot keys they were built from.

The files are a cache: deleting them loses nothing. Where they live is a setting (``cache_url``:
a directory or an S3-compatible bucket shared by several app servers, datasets/derived/cache_store.py);
by default next to a SQLite file (``dashboard.db.snapshots/``) or, for a server database, under
``data/snapshots/<hash of the URL>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets.common.faults import CacheWriteError
from datasets.derived import batch_files
from datasets.derived.cache_store import Cache, LocalCache, build_lock, open_cache, tolerate
from datasets.derived.side_by_side import Gate, each_district
from datasets.domain.schema import KINDS, MONTH_COLUMNS
from datasets.storage import store

SNAPSHOT_ROOT = store.DEFAULT_SQLITE_PATH.parent / "snapshots"
_LOCATIONS: weakref.WeakKeyDictionary[Engine, Cache | None] = weakref.WeakKeyDictionary()
_LOCATIONS_GUARD = threading.Lock()


def snapshot_dir(engine: Engine) -> Path | None:
    """The default local cache directory of this store; None for an in-memory SQLite database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        db = Path(url.database).resolve()
        return db.with_name(db.name + ".snapshots")
    ident = url.render_as_string(hide_password=True)
    return SNAPSHOT_ROOT / hashlib.sha1(ident.encode()).hexdigest()[:16]


def cache_of(engine: Engine) -> Cache | None:
    """Where this engine's cache lives: the ``cache_url`` setting (environment ``CACHE_URL`` or
    secrets.toml), else the default directory; None for an in-memory database.

    Decided at the engine's first use and kept with it: a process (the app, a CLI command) has one
    store, and the setting is read once rather than on every file of a count.
    """
    with _LOCATIONS_GUARD:
        if engine in _LOCATIONS:
            return _LOCATIONS[engine]
    folder = snapshot_dir(engine)
    if folder is None:
        cache: Cache | None = None
    else:
        from datasets.common.config import load_settings

        url = load_settings().cache_url
        cache = open_cache(url) if url else LocalCache(folder)
    with _LOCATIONS_GUARD:
        cache = _LOCATIONS.setdefault(engine, cache)  # type: ignore[arg-type]
    return cache


def digest(*parts: object) -> str:
    """A short key for a cache file name, from the things the cached frame depends on."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:20]


_SOURCES: dict[str, tuple[object, str]] = {}
_SOURCES_GUARD = threading.Lock()


def source_digest(modules: Iterable[str]) -> str:
    """A digest of these modules' source: part of the key of every frame they compute, so an upgrade
    that changes how something is counted rebuilds it (no version constant to remember).

    Each module's file is read once per loaded module object (again after a reload): the code this
    process runs, not a newer file put in place while it runs, names what it writes.
    """
    parts = []
    for name in modules:
        module = sys.modules.get(name) or importlib.import_module(name)
        with _SOURCES_GUARD:
            known = _SOURCES.get(name)
        loaded = getattr(module, "__spec__", None) or module  # a reload gives the module a new spec
        if known is None or known[0] is not loaded:
            path = getattr(module, "__file__", None)
            if path is None:
                raise ValueError(f"no source for {name}")
            known = (loaded, hashlib.sha1(Path(path).read_bytes()).hexdigest())
            with _SOURCES_GUARD:
                _SOURCES[name] = known
        parts.append(known[1])
    return digest(*parts)


# The code that makes a district's current records from its batches (newest-wins, the columns' types):
# part of every snapshot's key.
RECORD_MODULES = ("datasets.domain.schema", "datasets.storage.store", "datasets.derived.batch_files", "datasets.derived.snapshots")


def district_tag(district: str) -> str:
    """A file-name-safe stand-in for a district name (names are Chinese and user-supplied)."""
    return hashlib.sha1(district.encode()).hexdigest()[:12]


def active_keys(engine: Engine) -> dict[tuple[str, str], str]:
    """(district, kind) → a key of its active batches: changes with any import or rollback there.

    Made of each batch's id, creation time, file hash, row count and 数据截止日, so a database that was
    recreated (ids start again at 1) never matches the files of the old one, and of the code that
    makes records from batches (RECORD_MODULES).
    """
    b = store.batches
    query = (
        sa.select(b.c.district, b.c.kind, b.c.id, b.c.created_at, b.c.sha256, b.c.rows, b.c.as_of)
        .where(b.c.state == store.ACTIVE)
        .order_by(b.c.district, b.c.kind, b.c.id)
    )
    parts: dict[tuple[str, str], list[str]] = {}
    with engine.connect() as conn:
        for district, kind, batch_id, created, sha, rows, as_of in conn.execute(query):
            parts.setdefault((district, kind), []).append(f"{batch_id}:{created}:{sha}:{rows}:{as_of}")
    code = source_digest(RECORD_MODULES)
    return {slot: digest(code, *ids) for slot, ids in parts.items()}


def district_key(keys: dict[tuple[str, str], str], district: str) -> str:
    """The key of everything stored for one district (all kinds)."""
    return digest(district, *(keys.get((district, kind), "-") for kind in KINDS))


def _name(kind: str, district: str, key: str) -> str:
    return f"{kind}/{kind}-{district_tag(district)}-{key}.parquet"


def cached(
    engine: Engine,
    name: str,
    district: str,
    key: str,
    build: Callable[[], pl.DataFrame],
    columns: Iterable[str] | None = None,
) -> pl.DataFrame:
    """The frame ``name`` of one district for ``key``: read from its file, else built and saved (the
    record snapshots and their last months; metrics/derived.py does the same for its frames with
    read_cached, building and save).

    Built under cache_store.build_lock, checking again once the lock is held, so several threads or
    app servers that miss the same file at once build it once and the others read it.
    """
    cols = list(columns) if columns is not None else None
    found = read_cached(engine, name, district, key, cols)
    if found is not None:
        return found
    with building(engine, name, district, key):
        found = read_cached(engine, name, district, key, cols)
        if found is not None:  # another thread or server built it while this one waited
            return found
        frame = build()
        save(engine, name, district, key, frame)
    return frame.select(cols) if cols is not None else frame


@contextlib.contextmanager
def building(engine: Engine, name: str, district: str, key: str) -> Iterator[None]:
    """Hold the lock for building the frame ``name`` of one district for ``key`` (cache_store.build_lock;
    nothing to hold without a cache)."""
    cache = cache_of(engine)
    if cache is None:
        yield
        return
    with build_lock(engine, cache, _name(name, district, key)):
        yield


def save(engine: Engine, name: str, district: str, key: str, frame: pl.DataFrame) -> None:
    """Keep ``frame`` as the frame ``name`` of one district for ``key``, and remove its other versions
    (newest-wins of cache files: only the current key's file is kept). A failed write (a full disk) is
    tolerated: the frame is used unsaved and built again next time."""
    cache = cache_of(engine)
    if cache is None:
        return
    try:
        cache.write(_name(name, district, key), frame)
    except CacheWriteError as exc:
        tolerate(exc)
    _drop_older(cache, name, district, key)


def is_cached(engine: Engine, name: str, district: str, key: str) -> bool:
    """Whether the frame ``name`` of one district for ``key`` is cached (without reading it)."""
    cache = cache_of(engine)
    return cache is not None and cache.exists(_name(name, district, key))


def read_cached(engine: Engine, name: str, district: str, key: str,
                columns: Iterable[str] | None = None) -> pl.DataFrame | None:
    """The frame ``name`` of one district for ``key`` if it is cached (never builds it)."""
    cache = cache_of(engine)
    return None if cache is None else cache.read(_name(name, district, key), list(columns) if columns is not None else None)


def _drop_older(cache: Cache, name: str, district: str, key: str) -> None:
    """Remove the other versions of frame ``name`` of this district (any key but ``key``)."""
    keep = _name(name, district, key).rsplit("/", 1)[-1]
    for old in cache.names(name, f"{name}-{district_tag(district)}-"):
        if old != keep:
            cache.delete(f"{name}/{old}")


def current_records(
    engine: Engine,
    kind: str,
    district: str,
    keys: dict[tuple[str, str], str] | None = None,
    columns: Iterable[str] | None = None,
    keep: bool = True,
) -> pl.DataFrame:
    """The current rows of one kind in one district (store.load_records), from its snapshot.

    ``keep=False``: a missing snapshot is built in memory (extended from the previous one, else from
    the batch files) but not saved (only its last month is): a large count (a cold start, an import
    into a large district) shows its indicators before the snapshots are written (metrics/service.py),
    and writing them cost a third of building them.
    """
    keys = active_keys(engine) if keys is None else keys
    key = keys.get((district, kind))
    if key is None:  # nothing active: no file, and nothing to read
        empty = store.load_records(engine, kind, [])
        return empty.select(list(columns)) if columns is not None else empty
    cache = cache_of(engine)
    if cache is None:
        frame = store.load_records(engine, kind, [district])
        return frame.select(list(columns)) if columns is not None else frame
    if not keep:
        found = read_cached(engine, kind, district, key, columns)
        if found is not None:
            return found
        frame, _ = _from_batches(engine, cache, kind, district, store.active_batches(engine, kind))
        cached(engine, f"last_month_{kind}", district, key, lambda: _last_month_of(kind, frame))
        return frame.select(list(columns)) if columns is not None else frame
    return cached(engine, kind, district, key, lambda: build_records(engine, cache, kind, district, key), columns)


# What each record snapshot was built from: its district's active batches of that kind, kept beside it
# (``built_from_<kind>/…-<key>.parquet``) so that the next import can extend it instead of rebuilding.
_BATCH_COLUMNS = ["id", "created_at", "sha256", "rows", "period", "as_of"]


def _built_from(kind: str) -> str:
    return f"built_from_{kind}"


def build_records(engine: Engine, cache: Cache, kind: str, district: str, key: str,
                  active: pl.DataFrame | None = None) -> pl.DataFrame:
    """The current records of one district × kind for its snapshot ``key``: extended from the previous
    snapshot when the only change is one batch that sorts after all its batches (extend), else built
    from every batch file (batch_files.current_records)."""
    active = store.active_batches(engine, kind) if active is None else active
    frame, mine = _from_batches(engine, cache, kind, district, active)
    # Written directly, not through cached(): already under this snapshot's build lock.
    try:
        cache.write(_name(_built_from(kind), district, key), mine)
    except CacheWriteError as exc:  # the next import rebuilds instead of extending
        tolerate(exc)
    _drop_older(cache, _built_from(kind), district, key)
    return frame


def _from_batches(engine: Engine, cache: Cache, kind: str, district: str,
                  active: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The current records of one district × kind, extended from its previous snapshot when possible
    (extend), else from every batch file; and the district's active batches they come from."""
    mine = active.filter((pl.col("district") == district) & (pl.col("kind") == kind)).select(_BATCH_COLUMNS)
    frame = extend(engine, cache, kind, district, mine)
    if frame is None:
        frame = batch_files.current_records(engine, cache, kind, district, active)
    return frame, mine


def _order(period: str | None, batch_id: int) -> tuple[bool, str, int]:
    """store.newest_rows's order of batches: by period (missing first), then id."""
    return (period is not None, period or "", batch_id)


def extend(engine: Engine, cache: Cache, kind: str, district: str, mine: pl.DataFrame) -> pl.DataFrame | None:
    """The new snapshot from the previous one, when ``mine`` (the active batches now) is the previous
    snapshot's batches plus one whose (period, id) sorts after every one of them; else None.

    Exactly the full rule (store.newest_rows): the new batch's rows sort after every other row, so a key
    it holds is won by its last row there, placed after all the others, and every other key keeps
    its winner and place. So: the previous rows without the new batch's keys, then the new batch's
    rows with newest-wins among themselves.
    """
    names = cache.names(_built_from(kind), f"{_built_from(kind)}-{district_tag(district)}-")
    if len(names) != 1:
        return None
    before = cache.read(f"{_built_from(kind)}/{names[0]}")
    if before is None or before.columns != _BATCH_COLUMNS:
        return None
    old, now = set(before.rows()), set(mine.select(_BATCH_COLUMNS).rows())
    added = now - old
    if not old < now or len(added) != 1:
        return None
    (new,) = added
    new_order = _order(new[4], new[0])
    if any(_order(b[4], b[0]) >= new_order for b in old):
        return None
    previous = cache.read(f"{kind}/{kind}-{names[0].removeprefix(_built_from(kind) + '-')}")
    if previous is None:
        return None
    rows = batch_files.current_records(engine, cache, kind, district,
                                       mine.filter(pl.col("id") == new[0]).with_columns(
                                           pl.lit(district).alias("district"), pl.lit(kind).alias("kind")))
    if kind == "items":  # a catalog item's key holds its version
        key = ["district", KINDS[kind].id_field, "period"]
        kept = previous.join(rows.select(key), on=key, how="anti", nulls_equal=True, maintain_order="left")
    else:  # both sides are this district's rows: the id decides; a set look-up keeps the order (an
        # order-keeping anti-join took 0.34 s against 0.13 s for 1.7 M cases and 200 k new ones)
        ids = rows[KINDS[kind].id_field].implode()
        kept = previous.filter(~pl.col(KINDS[kind].id_field).is_in(ids, nulls_equal=True))
    return pl.concat([kept, rows], how="vertical")


def _last_month_of(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The last month of any dated column, or of the exports themselves (an export month counts even
    when its rows are dated earlier: its open cases run up to its as-of date in that month)."""
    found = [v.strftime("%Y-%m") for c in MONTH_COLUMNS[kind] if (v := frame[c].max()) is not None]  # type: ignore[union-attr]
    if frame.height and frame["period"].max() is not None:
        found.append(str(frame["period"].max()))
    return pl.DataFrame({"last": [max(found) if found else None]}, schema={"last": pl.String})


def remember_last_month(engine: Engine, kind: str, district: str, keys: dict[tuple[str, str], str],
                        frame: pl.DataFrame) -> None:
    """Keep the last month of ``frame`` (the district's current records of this kind, at least their
    dated columns and period) next to its snapshot key, unless it is kept already."""
    key = keys.get((district, kind))
    if key is not None and not is_cached(engine, f"last_month_{kind}", district, key):
        cached(engine, f"last_month_{kind}", district, key, lambda: _last_month_of(kind, frame))


def last_month(engine: Engine, kind: str, district: str, keys: dict[tuple[str, str], str]) -> str | None:
    """The last month with a record or an export of this kind in this district (kept next to its snapshot)."""
    key = keys.get((district, kind))
    if key is None:
        return None
    frame = cached(engine, f"last_month_{kind}", district, key,
                   lambda: _last_month_of(kind, current_records(engine, kind, district, keys)))
    return frame["last"][0]


def recreate_lost_batches(engine: Engine, kind: str, active: pl.DataFrame, districts: Iterable[str]) -> None:
    """Recreate from SQL the batch files of these districts' active batches that are missing (one read
    for all of them, on SQLite by a couple of child processes)."""
    cache = cache_of(engine)
    if cache is None:
        return
    lost = batch_files.missing(cache, kind, active.filter(pl.col("district").is_in(list(districts))))
    if lost:
        try:
            batch_files.recreate(engine, cache, kind, lost)
        except CacheWriteError as exc:  # left missing: each reader then takes its district's rows from SQL
            tolerate(exc)


def ensure(engine: Engine, keys: dict[tuple[str, str], str] | None = None) -> int:
    """Build every missing record snapshot from the batch files, one district in memory at a time.

    Batch files that are missing (a lost cache, a store written before they existed) are first
    recreated from SQL, one read per kind for all of them (on SQLite by a couple of child processes).
    After building, the files of batches no longer active are removed (batch_files.prune).
    Returns how many snapshots were built.
    """
    cache = cache_of(engine)
    if cache is None:
        return 0
    keys = active_keys(engine) if keys is None else keys
    built = 0
    for kind in KINDS:
        todo = sorted(d for (d, k), key in keys.items() if k == kind and not cache.exists(_name(kind, d, key)))
        if not todo:
            continue
        active = store.active_batches(engine, kind)
        recreate_lost_batches(engine, kind, active, todo)

        def one(district: str, gate: Gate, kind: str = kind, active: pl.DataFrame = active) -> None:
            key = keys[(district, kind)]
            with gate():
                frame = cached(engine, kind, district, key,
                               lambda: build_records(engine, cache, kind, district, key, active))
                # The last month is kept from the same rows.
                cached(engine, f"last_month_{kind}", district, key, lambda: _last_month_of(kind, frame))

        # Two districts at a time within the row budget (this kind's rows): all 40 snapshots at scale 10
        # 12.7 s against 15.6 s one at a time, at scale 30 35.4 s against 43.4 s (peak 2.7 / 2.2 GB).
        each_district(todo, _rows_by_district(active), one)
        built += len(todo)
    if built:  # the active batches changed since the last build: files of replaced ones can go
        batch_files.prune(engine, cache)
    return built


def record_files(engine: Engine, kind: str, keys: dict[tuple[str, str], str] | None = None) -> list[str]:
    """The snapshot files of the current records of a kind, one per district (built if missing).

    Local paths, or ``s3://`` URLs for a bucket (DuckDB and pandas read both in the benchmarks).
    """
    cache = cache_of(engine)
    if cache is None:
        raise ValueError("内存数据库没有快照文件")
    keys = active_keys(engine) if keys is None else keys
    ensure(engine, keys)
    base = str(cache.root) if isinstance(cache, LocalCache) else cache.url
    return [f"{base}/{_name(kind, d, key)}" for (d, k), key in sorted(keys.items()) if k == kind]


def _rows_by_district(active: pl.DataFrame) -> dict[str, int]:
    """Rows of each district in these batches: what building or computing it holds, roughly."""
    return dict(active.group_by("district").agg(pl.col("rows").sum()).iter_rows())


def district_rows(engine: Engine) -> dict[str, int]:
    """Rows of each district's active batches (all kinds): what computing it holds, roughly."""
    return _rows_by_district(store.active_batches(engine))


def districts_with_data(keys: dict[tuple[str, str], str]) -> list[str]:
    return sorted({district for district, _ in keys})


def clear(engine: Engine, keep_batches: bool = False) -> None:
    """Remove every cached file of this store (rebuilt on the next read); ``keep_batches`` keeps the
    batch files, so only what is derived from them goes (snapshots, components, alert lists)."""
    cache = cache_of(engine)
    if cache is None:
        return
    cache.clear(keep=batch_files.FOLDER if keep_batches else None)
