"""Where the cache files live: a local directory or an S3-compatible bucket, behind one small interface.

Several app servers on one PostgreSQL share one bucket, so each snapshot and component table is
built once per data version. ``build_lock`` keeps two servers (or two threads) from building the
same file at the same time: on PostgreSQL a session-level advisory lock (the database is shared by
every server anyway, and the lock goes when the holder's connection dies, so a crashed server leaves
nothing stale behind); on SQLite, which only one machine can serve, an ``flock`` on a local file.

The bucket is reached with obstore, which reads the usual AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for a non-AWS server,
``AWS_ALLOW_HTTP=true`` for a plain-HTTP one).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets.common.faults import CacheWriteError, cache_warning

_log = logging.getLogger(__name__)

# Two-key advisory locks (class, object) never collide with the one-key locks store.create_batch takes.
_PG_LOCK_CLASS = 0x5CA1E
# POSIX record locks belong to the process, so threads of one process also take a lock per name here.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _write_parquet(frame: pl.DataFrame, out: io.BufferedIOBase | io.BytesIO) -> None:
    # A fast codec: the files are read far more often than written.
    frame.write_parquet(out, compression="lz4", statistics=False)


def _write_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    _write_parquet(frame, buf)
    return buf.getvalue()


class LocalCache:
    """Files under a local directory (the default: next to the SQLite file, or under data/snapshots)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalCache({str(self.root)!r})"

    def describe(self) -> str:
        return str(self.root)

    def read(self, rel: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        try:
            return pl.read_parquet(self.root / rel, columns=columns)
        except FileNotFoundError:
            return None

    def write(self, rel: str, frame: pl.DataFrame) -> None:
        """Write the file whole, or raise CacheWriteError (a full disk, no permission) leaving none."""
        path = self.root / rel
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as out:
                # Straight to the file: a buffer and its copy held a large district's file twice over.
                _write_parquet(frame, out)
            os.replace(tmp, path)  # readers see the old file or the whole new one, never half of it
        except (OSError, pl.exceptions.PolarsError) as exc:
            # Polars reports the file's I/O error as a ComputeError, sometimes without naming it ("Invalid
            # thrift: transport error" on a full tmpfs): the frame is built, what failed is its writing.
            _failed(self, exc, disk_full=_nearly_full(path))
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def names(self, folder: str, prefix: str = "") -> list[str]:
        """File names (not paths) in ``folder`` starting with ``prefix``."""
        return sorted(p.name for p in (self.root / folder).glob(f"{prefix}*.parquet"))

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def clear(self, keep: str | None = None) -> None:
        """Remove every file, or every one outside the top-level folder ``keep``."""
        if keep is None:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        for child in self.root.glob("*"):
            if child.name != keep and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)

    def mtimes(self, folder: str = "") -> dict[str, float]:
        """Every file below ``folder`` with its modification time (tests, benchmarks)."""
        base = self.root / folder
        return {str(p.relative_to(self.root)): p.stat().st_mtime for p in base.rglob("*.parquet")}

    def local_lock_file(self) -> Path:
        return self.root / ".lock"


class ObjectCache:
    """Files in an S3-compatible bucket (``s3://bucket/prefix``), shared by every app server."""

    def __init__(self, url: str) -> None:
        from obstore.store import from_url

        self.url = url.rstrip("/")
        self.store = from_url(self.url)

    def __repr__(self) -> str:
        return f"ObjectCache({self.url!r})"

    def describe(self) -> str:
        return self.url

    def read(self, rel: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        import obstore

        try:
            data = obstore.get(self.store, rel).bytes()
        except FileNotFoundError:
            return None
        return pl.read_parquet(io.BytesIO(data), columns=columns)  # type: ignore[arg-type]

    def write(self, rel: str, frame: pl.DataFrame) -> None:
        import obstore

        data = _write_bytes(frame)
        try:
            obstore.put(self.store, rel, data)  # one PUT: the object appears whole
        except Exception as exc:  # the bucket refused or cannot be reached: obstore's errors have no common base
            _failed(self, exc)

    def exists(self, rel: str) -> bool:
        import obstore

        try:
            obstore.head(self.store, rel)
        except FileNotFoundError:
            return False
        return True

    def _list(self, prefix: str) -> list[dict]:
        import obstore

        return [meta for chunk in obstore.list(self.store, prefix) for meta in chunk]

    def names(self, folder: str, prefix: str = "") -> list[str]:
        # An object-store listing prefix is a whole path segment: filter the names here.
        names = (m["path"].rsplit("/", 1)[-1] for m in self._list(folder.rstrip("/")))
        return sorted(n for n in names if n.startswith(prefix) and n.endswith(".parquet"))

    def delete(self, rel: str) -> None:
        import obstore

        with contextlib.suppress(FileNotFoundError):
            obstore.delete(self.store, rel)

    def clear(self, keep: str | None = None) -> None:
        """Remove every object, or every one outside the top-level folder ``keep``."""
        import obstore

        paths = [m["path"] for m in self._list("") if keep is None or not m["path"].startswith(f"{keep}/")]
        if paths:
            obstore.delete(self.store, paths)

    def mtimes(self, folder: str = "") -> dict[str, float]:
        return {m["path"]: m["last_modified"].timestamp() for m in self._list(folder)
                if m["path"].endswith(".parquet")}

    def local_lock_file(self) -> Path:
        tag = hashlib.sha1(self.url.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"dashboard-cache-{tag}.lock"


Cache = LocalCache | ObjectCache

# The last write failure of each cache location and when it happened: what the pages and the CLI warn
# about while results are computed in memory (write_problem). Not cleared by a later write that
# succeeds: on a nearly full disk small files still fit while large ones fail.
_FAILURES: dict[str, tuple[CacheWriteError, float]] = {}
PROBLEM_SECONDS = 600  # how long after its last failed write a cache is reported as failing


def _nearly_full(path: Path) -> bool:
    """Whether the file system holding ``path`` has (almost) no room left: what a write error whose
    message lost its errno most likely was."""
    for folder in (path.parent, *path.parents):
        try:
            return shutil.disk_usage(folder).free < FULL_BELOW
        except OSError:
            continue
    return False


FULL_BELOW = 8 * 1024 * 1024  # bytes free under which a failed cache write counts as a full disk


def _failed(cache: Cache, exc: BaseException, disk_full: bool = False) -> NoReturn:
    error = CacheWriteError(cache.describe(), exc, disk_full=disk_full)
    _FAILURES[cache.describe()] = (error, time.monotonic())
    raise error from exc


def write_problem(cache: Cache | None) -> CacheWriteError | None:
    """The last failed write to this cache, if it was less than PROBLEM_SECONDS ago."""
    found = None if cache is None else _FAILURES.get(cache.describe())
    if found is None or time.monotonic() - found[1] > PROBLEM_SECONDS:
        return None
    return found[0]


def tolerate(error: CacheWriteError) -> None:
    """A caller goes on without the file it could not write (it has the frame in memory): say so in the
    log once per failure kind, without a traceback (the CLI and the pages show write_problem)."""
    key = (error.location, error.disk_full)
    if key not in _LOGGED:
        _LOGGED.add(key)
        _log.warning("%s", cache_warning(error))


_LOGGED: set[tuple[str, bool]] = set()


def open_cache(url: str) -> Cache:
    """A cache from a setting: ``s3://bucket/prefix`` for a bucket, anything else a local directory."""
    if url.startswith(("s3://", "s3a://")):
        return ObjectCache(url)
    if url.startswith("file://"):
        url = url[len("file://"):]
    return LocalCache(Path(url).expanduser().resolve())


@contextlib.contextmanager
def build_lock(engine: Engine, cache: Cache, name: str) -> Iterator[None]:
    """Hold the lock for building the file ``name`` of ``cache`` (see the module docstring)."""
    key = f"{cache.describe()}|{name}"
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            args = {"c": _PG_LOCK_CLASS, "k": key}
            conn.execute(sa.text("SELECT pg_advisory_lock(:c, hashtext(:k))"), args)
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:c, hashtext(:k))"), args)
                conn.commit()
        return
    with _THREAD_LOCKS_GUARD:
        in_process = _THREAD_LOCKS.setdefault(key, threading.Lock())
    lock_file = cache.local_lock_file()
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "a+b")
    except OSError:  # a full disk: the lock only saves building a file twice; writes stay whole without it
        with in_process:
            yield
        return
    with in_process, handle:
        # One byte-range per name hash: different files build in parallel, the same one waits.
        offset = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
        fcntl.lockf(handle, fcntl.LOCK_EX, 1, offset)
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN, 1, offset)
