"""Per-district Parquet snapshots of the current records, and of frames derived from them.

The store (SQLite or PostgreSQL) keeps every batch of every import; what counts is, per district
and id, the newest active row (store.load_records). Working that out for 10 million rows takes
minutes and all of them in memory at once, so the current rows of each district × kind are kept as a
Parquet file named after the active batches they come from. An import or rollback changes the active
batches of one district and kind: only that file is rebuilt, the other districts are read as they
are (a district of the scale-10 demo in well under a second). Frames derived from a district's
records (its indicator components, its alert lists) are cached the same way, keyed by the snapshot
keys they were built from.

The files are a cache: deleting the directory loses nothing. They live next to a SQLite file
(``dashboard.db.snapshots/``) or, for a server database, under ``data/snapshots/<hash of the URL>``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets import store
from datasets.schema import KINDS, MONTH_COLUMNS

SNAPSHOT_ROOT = store.DEFAULT_SQLITE_PATH.parent / "snapshots"


def snapshot_dir(engine: Engine) -> Path | None:
    """Where the snapshots of this store live; None for an in-memory SQLite database (nothing to key on)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        db = Path(url.database).resolve()
        return db.with_name(db.name + ".snapshots")
    ident = url.render_as_string(hide_password=True)
    return SNAPSHOT_ROOT / hashlib.sha1(ident.encode()).hexdigest()[:16]


def digest(*parts: object) -> str:
    """A short key for a cache file name, from the things the cached frame depends on."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:20]


def district_tag(district: str) -> str:
    """A file-name-safe stand-in for a district name (names are Chinese and user-supplied)."""
    return hashlib.sha1(district.encode()).hexdigest()[:12]


def active_keys(engine: Engine) -> dict[tuple[str, str], str]:
    """(district, kind) → a key of its active batches: changes with any import or rollback there.

    Made of each batch's id, creation time, file hash and row count, so a database that was
    recreated (ids start again at 1) never matches the files of the old one.
    """
    b = store.batches
    query = (
        sa.select(b.c.district, b.c.kind, b.c.id, b.c.created_at, b.c.sha256, b.c.rows)
        .where(b.c.state == store.ACTIVE)
        .order_by(b.c.district, b.c.kind, b.c.id)
    )
    parts: dict[tuple[str, str], list[str]] = {}
    with engine.connect() as conn:
        for district, kind, batch_id, created, sha, rows in conn.execute(query):
            parts.setdefault((district, kind), []).append(f"{batch_id}:{created}:{sha}:{rows}")
    return {slot: digest(*ids) for slot, ids in parts.items()}


def district_key(keys: dict[tuple[str, str], str], district: str) -> str:
    """The key of everything stored for one district (all kinds)."""
    return digest(district, *(keys.get((district, kind), "-") for kind in KINDS))


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # Uncompressed-fast codec: the files are read far more often than written.
        frame.write_parquet(tmp, compression="lz4", statistics=False)
        os.replace(tmp, path)  # readers see the old file or the whole new one, never half of it
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _drop_older(folder: Path, prefix: str, keep: Path) -> None:
    for old in folder.glob(f"{prefix}-*.parquet"):
        if old != keep:
            old.unlink(missing_ok=True)


def cached(
    engine: Engine,
    name: str,
    district: str,
    key: str,
    build: Callable[[], pl.DataFrame],
    columns: Iterable[str] | None = None,
) -> pl.DataFrame:
    """The frame ``name`` of one district for ``key``: read from its file, else built and saved.

    Older versions of the same frame and district are removed when a new one is saved. Two processes
    building the same file at once both write a temporary file and rename it: either result is whole.
    """
    folder = snapshot_dir(engine)
    if folder is None:
        frame = build()
        return frame.select(list(columns)) if columns is not None else frame
    path = _path(folder, name, district, key)
    cols = list(columns) if columns is not None else None
    try:
        return pl.read_parquet(path, columns=cols)
    except FileNotFoundError:
        pass
    frame = build()
    _write_atomic(frame, path)
    _drop_older(path.parent, f"{name}-{district_tag(district)}", path)
    return frame.select(cols) if cols is not None else frame


def current_records(
    engine: Engine,
    kind: str,
    district: str,
    keys: dict[tuple[str, str], str] | None = None,
    columns: Iterable[str] | None = None,
) -> pl.DataFrame:
    """The current rows of one kind in one district (store.load_records), from its snapshot."""
    keys = active_keys(engine) if keys is None else keys
    key = keys.get((district, kind))
    if key is None:  # nothing active: no file, and nothing to read
        empty = store.load_records(engine, kind, [])
        return empty.select(list(columns)) if columns is not None else empty
    return cached(engine, kind, district, key, lambda: store.load_records(engine, kind, [district]), columns)


def _last_month_of(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The last month of any dated column, or of the exports themselves (an export month counts even
    when its rows are dated earlier: its open cases run to that month's end)."""
    found = [v.strftime("%Y-%m") for c in MONTH_COLUMNS[kind] if (v := frame[c].max()) is not None]  # type: ignore[union-attr]
    if frame.height and frame["period"].max() is not None:
        found.append(str(frame["period"].max()))
    return pl.DataFrame({"last": [max(found) if found else None]}, schema={"last": pl.String})


def last_month(engine: Engine, kind: str, district: str, keys: dict[tuple[str, str], str]) -> str | None:
    """The last month with a record or an export of this kind in this district (kept next to its snapshot)."""
    key = keys.get((district, kind))
    if key is None:
        return None
    frame = cached(engine, f"last_month_{kind}", district, key,
                   lambda: _last_month_of(kind, current_records(engine, kind, district, keys)))
    return frame["last"][0]


def _path(folder: Path, kind: str, district: str, key: str) -> Path:
    return folder / kind / f"{kind}-{district_tag(district)}-{key}.parquet"


def ensure(engine: Engine, keys: dict[tuple[str, str], str] | None = None) -> int:
    """Build every missing record snapshot, a kind at a time and one district in memory at a time.

    One read per kind for all the missing districts (on SQLite by a couple of child processes, see
    store.load_records_by_district), instead of a read per district and kind. Returns how many
    snapshots were built.
    """
    folder = snapshot_dir(engine)
    if folder is None:
        return 0
    keys = active_keys(engine) if keys is None else keys
    built = 0
    for kind in KINDS:
        missing = sorted(d for (d, k), key in keys.items() if k == kind and not _path(folder, kind, d, key).exists())
        for district, frame in store.load_records_by_district(engine, kind, missing):
            key = keys[(district, kind)]
            # Saved through cached(), as any cached frame; the last month is kept from the same rows.
            cached(engine, kind, district, key, lambda f=frame: f)
            cached(engine, f"last_month_{kind}", district, key, lambda f=frame, k=kind: _last_month_of(k, f))
            built += 1
    return built


def record_files(engine: Engine, kind: str, keys: dict[tuple[str, str], str] | None = None) -> list[Path]:
    """The snapshot files of the current records of a kind, one per district (built if missing)."""
    folder = snapshot_dir(engine)
    if folder is None:
        raise ValueError("内存数据库没有快照文件")
    keys = active_keys(engine) if keys is None else keys
    ensure(engine, keys)
    return [_path(folder, kind, d, key) for (d, k), key in sorted(keys.items()) if k == kind]


def districts_with_data(keys: dict[tuple[str, str], str]) -> list[str]:
    return sorted({district for district, _ in keys})


def clear(engine: Engine) -> None:
    """Remove every snapshot of this store (they are rebuilt on the next read)."""
    import shutil

    folder = snapshot_dir(engine)
    if folder is not None and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
