"""Where the data lives: batch bookkeeping, SQL reads and writes of the tables (declared in
datasets/storage/tables.py) and fast reads into Polars.

Every import is a *batch* (one per district of a file). Records keep the id of the batch that
brought them. A batch is ``active`` until a corrected export of the same district × kind × period
supersedes it (then ``superseded``, kept for rollback), or until it is withdrawn (``withdrawn``: its
records stop counting, and a rollback to it restores it). Reading returns, for each record id and
district, the row of the newest active batch, so overlapping exports count once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from datasets.common.config import DEFAULT_SQLITE_PATH, sqlite_url  # also read here as store.*
from datasets.domain.schema import KINDS
from datasets.storage.tables import (
    UNUSED_INDEXES,
    batches,
    district_shapes,
    districts,
    metadata,
    record_tables,
    revisions,
    settings_changes,
)

ACTIVE, SUPERSEDED, ROLLED_BACK = "active", "superseded", "rolled_back"
WITHDRAWN = "withdrawn"  # taken back by its district (撤销导入); rollback_to it restores it

# The tables are declared in datasets/storage/tables.py (one metadata for every store-side module).


# --- engine -------------------------------------------------------------------------------------


def default_url() -> str:
    return sqlite_url(DEFAULT_SQLITE_PATH)


def make_engine(url: str | None = None) -> Engine:
    """Create an engine; SQLite gets WAL and writer serialisation (BEGIN IMMEDIATE)."""
    url = url or default_url()
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Take transaction control from pysqlite so that BEGIN IMMEDIATE serialises writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL stays consistent after a crash; only the last commits may be lost on power loss.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


def init_db(engine: Engine) -> None:
    # Every table (accounts, audit log and documents included) is on datasets/storage/tables.py's metadata.
    metadata.create_all(engine)
    _add_as_of(engine)
    _drop_unused_indexes(engine)


def _drop_unused_indexes(engine: Engine) -> None:
    """A store made when the record tables had a (district, id) index loses it (tables.UNUSED_INDEXES):
    every import paid for it and nothing read it."""
    with engine.begin() as conn:
        for name in UNUSED_INDEXES:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))


def as_of_date(period: str, imported_at: dt.datetime | dt.date, exported: dt.date | None = None) -> dt.date:
    """A batch's 数据截止日: the last day of its period, or the day it was imported if that is earlier
    (an export uploaded on 7 December knows nothing after that day), or the export time the file
    states (导出时间) if that is earlier still."""
    year, month = int(period[:4]), int(period[5:7])
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
    imported = imported_at.date() if isinstance(imported_at, dt.datetime) else imported_at
    return min(d for d in (last, imported, exported) if d is not None)


def _add_as_of(engine: Engine) -> None:
    """A store made before batches had ``as_of`` gets the column, filled from each batch's period and
    import time (what the file said about its export time was not kept then)."""
    with engine.begin() as conn:  # checked inside the transaction: two servers starting at once add it once
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"ALTER TABLE {batches.name} ADD COLUMN IF NOT EXISTS as_of DATE"))
        elif "as_of" not in {c["name"] for c in sa.inspect(conn).get_columns(batches.name)}:
            conn.execute(sa.text(f"ALTER TABLE {batches.name} ADD COLUMN as_of DATE"))
        missing = conn.execute(sa.select(batches.c.id, batches.c.period, batches.c.created_at)
                               .where(batches.c.as_of.is_(None))).all()
        if missing:
            conn.execute(batches.update().where(batches.c.id == sa.bindparam("b_id"))
                         .values(as_of=sa.bindparam("b_as_of")),
                         [{"b_id": r.id, "b_as_of": as_of_date(r.period, r.created_at)} for r in missing])


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def add_revision(conn: Connection, what: str) -> None:
    conn.execute(revisions.insert().values(at=now(), what=what[:200]))


def data_version(engine: Engine) -> int:
    """A number that changes whenever what counts changes; caches key on it."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(revisions.c.id), 0))).scalar())


# --- districts ----------------------------------------------------------------------------------


def list_districts(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(districts).order_by(districts.c.sort_order, districts.c.id)).all()
    return pl.DataFrame(
        {
            "name": [r.name for r in rows],
            "code": [r.code for r in rows],
            "aliases": [json.loads(r.aliases) for r in rows],
        },
        schema={"name": pl.String, "code": pl.String, "aliases": pl.List(pl.String)},
    )


def add_district(engine: Engine, name: str, code: str | None = None, aliases: Sequence[str] = ()) -> None:
    name = name.strip()
    if not name:
        raise ValueError("区县名称不能为空")
    with engine.begin() as conn:
        existing = conn.execute(sa.select(districts).where(districts.c.name == name)).first()
        if existing is not None:
            merged = sorted(set(json.loads(existing.aliases)) | set(aliases))
            conn.execute(
                districts.update()
                .where(districts.c.name == name)
                .values(code=code or existing.code, aliases=json.dumps(merged, ensure_ascii=False))
            )
        else:
            count = conn.execute(sa.select(sa.func.count()).select_from(districts)).scalar()
            conn.execute(
                districts.insert().values(
                    name=name, code=code, aliases=json.dumps(list(aliases), ensure_ascii=False), sort_order=count
                )
            )
        add_revision(conn, f"district {name}")


def set_district(engine: Engine, name: str, code: str | None, aliases: Sequence[str]) -> None:
    """Replace an existing district's code and aliases (``add_district`` merges aliases instead)."""
    with engine.begin() as conn:
        conn.execute(districts.update().where(districts.c.name == name)
                     .values(code=code, aliases=json.dumps(list(aliases), ensure_ascii=False)))
        add_revision(conn, f"district {name}")


def district_lookup(engine: Engine) -> dict[str, str]:
    """Map every configured name, code and alias (normalised) to the district's name."""
    from datasets.common.text import normalize

    table = list_districts(engine)
    lookup: dict[str, str] = {}
    for name, code, aliases in table.iter_rows():
        for key in (name, code, *aliases):
            if key:
                lookup[normalize(key)] = name
    return lookup


def save_district_shape(engine: Engine, district: str, geometry: dict, user_name: str) -> None:
    """Store (or replace) the uploaded boundary of a configured district; validated by the caller."""
    text = json.dumps(geometry, ensure_ascii=False, separators=(",", ":"))
    with engine.begin() as conn:
        if conn.execute(sa.select(districts.c.id).where(districts.c.name == district)).first() is None:
            raise ValueError(f"区县“{district}”未配置")
        conn.execute(district_shapes.delete().where(district_shapes.c.district == district))
        conn.execute(district_shapes.insert().values(district=district, geometry=text, user_name=user_name,
                                                     uploaded_at=now()))
        add_revision(conn, f"district shape {district}")


def delete_district_shape(engine: Engine, district: str) -> bool:
    """Remove an uploaded boundary (the packaged one, if any, applies again); False if there was none."""
    with engine.begin() as conn:
        gone = conn.execute(district_shapes.delete().where(district_shapes.c.district == district)).rowcount
        if gone:
            add_revision(conn, f"district shape {district} removed")
    return bool(gone)


def district_shapes_stored(engine: Engine) -> dict[str, str]:
    """District -> uploaded GeoJSON geometry text."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(district_shapes.c.district, district_shapes.c.geometry)).all()
    return {r.district: r.geometry for r in rows}


# --- writing records ----------------------------------------------------------------------------

_DT_FORMAT = "%Y-%m-%d %H:%M:%S"


def _canonical(kind_name: str, frame: pl.DataFrame, sqlite: bool) -> pl.DataFrame:
    """The kind's columns in order and type; for SQLite, datetimes as ISO text (what SQLAlchemy writes
    too) and booleans as 0/1."""
    k = KINDS[kind_name]
    frame = frame.select(
        (pl.col(f.name) if f.name in frame.columns else pl.lit(None, dtype=f.dtype)).cast(f.dtype).alias(f.name)
        for f in k.fields
    )
    if sqlite:
        frame = frame.with_columns(pl.col(pl.Datetime).dt.strftime(_DT_FORMAT), pl.col(pl.Boolean).cast(pl.Int8))
    return frame


def _row_tuples(frame: pl.DataFrame) -> Iterator[tuple]:
    """The frame's rows as tuples, built from its columns' Python values: 0.56 s for 200 k cases
    against 0.69 s for DataFrame.rows() (2026-12-08)."""
    return zip(*(column.to_list() for column in frame.iter_columns()), strict=True)


def insert_records(conn: Connection, kind_name: str, batch_id: int, frame: pl.DataFrame) -> None:
    """Bulk-insert canonical rows of a kind inside the caller's transaction."""
    k = KINDS[kind_name]
    table = record_tables[kind_name]
    cols = ["batch_id", *k.names]
    frame = _canonical(kind_name, frame, is_sqlite(conn)).select(
        pl.lit(batch_id, dtype=pl.Int64).alias("batch_id"), pl.all()
    )
    if frame.height == 0:
        return
    if is_sqlite(conn):
        placeholders = ", ".join("?" for _ in cols)
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({placeholders})"
        cursor = conn.connection.driver_connection.cursor()
        for chunk in frame.iter_slices(100_000):
            cursor.executemany(sql, _row_tuples(chunk))
        cursor.close()
    elif conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in _row_tuples(frame):
                copy.write_row(row)
    else:  # any other SQLAlchemy backend: portable but slower
        conn.execute(table.insert(), frame.to_dicts())


@contextlib.contextmanager
def bulk_load(engine: Engine) -> Iterator[Connection]:
    """A connection for loading many batches at once (the demo city); the caller runs its
    transactions on it (``with conn.begin():``) and writes through the usual functions.

    The record tables' secondary indexes are dropped for the load and built once at the end (also
    when the load fails): building an index from the finished table is far cheaper than updating it
    row by row. On SQLite the connection also skips fsync and gets a large page cache, for the load
    only: a crash mid-load loses the load, which is started again from nothing anyway.
    """
    indexes = [ix for table in record_tables.values() for ix in table.indexes]
    with engine.connect() as conn:
        raw = conn.connection.driver_connection if is_sqlite(engine) else None
        if raw is not None:  # autocommit driver connection: pragmas outside any transaction
            raw.execute("PRAGMA synchronous=OFF")
            raw.execute("PRAGMA cache_size=-262144")  # KiB: 256 MiB
        with conn.begin():
            for ix in indexes:
                ix.drop(conn, checkfirst=True)
        try:
            yield conn
        finally:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                for ix in indexes:
                    ix.create(conn, checkfirst=True)
            if raw is not None:
                raw.execute("PRAGMA synchronous=NORMAL")
                raw.execute("PRAGMA cache_size=-2000")  # SQLite's default


Inserter = Callable[[Connection, str, int, pl.DataFrame], None]

# staged_records runs arrow_child.py's ingest: ADBC's bulk ingest binds Arrow columns in C, no Python
# object per value.


# A bulk load of fewer rows than this inserts them in this process (insert_records): starting the
# ingest child costs more than it saves on a small group (a small demo city, a test).
STAGE_MIN_ROWS = 100_000


@contextlib.contextmanager
def staged_records(conn: Connection, parts: Sequence[tuple[int, str, str, pl.DataFrame]],
                   scratch: Path, min_rows: int = STAGE_MIN_ROWS) -> Iterator[Callable[[int], Inserter]]:
    """insert_records for a bulk load of ``parts`` ((file number, kind, district, rows)), to be used in
    a transaction opened inside this block: ``for_file(n)`` is the inserter for file n's batches.

    On SQLite the rows are first written to a scratch database in ``scratch`` by a child process
    through ADBC's bulk ingest (not in this process: see sqlite_read_many) and attached; the
    inserter copies one part into the store with INSERT … SELECT in the caller's transaction, so the
    records, their batch and its revision still commit together. Elsewhere, and for fewer than
    ``min_rows`` rows in all, it is insert_records. A part that was not announced (file, kind,
    district, row count) is refused.
    """
    if not is_sqlite(conn) or sum(part.height for *_, part in parts) < min_rows:
        yield lambda _file: insert_records
        return
    import subprocess

    ranges: dict[tuple[int, str], tuple[str, int, int]] = {}
    frames: dict[str, list[pl.DataFrame]] = {}
    for file, kind, district, part in parts:
        done = sum(f.height for f in frames.get(kind, []))
        ranges[(file, district)] = (kind, done, done + part.height)
        frames.setdefault(kind, []).append(_canonical(kind, part, True))
    db = scratch / "stage.db"
    args: list[str] = []
    for kind, fs in frames.items():
        path = scratch / f"{kind}.arrow"
        pl.concat(fs).write_ipc(path)
        args += [f"stage_{kind}", str(path)]
    del frames
    proc = subprocess.run([sys.executable, "-P", str(_ARROW_CHILD), "ingest", str(db), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    for path in args[1::2]:
        Path(path).unlink()
    if proc.returncode != 0:
        db.unlink(missing_ok=True)
        raise RuntimeError(f"批量写入失败：{proc.stderr.strip()[-500:]}")
    raw = conn.connection.driver_connection
    raw.execute("ATTACH DATABASE ? AS stage", (str(db),))  # outside any transaction: SQLite requires it
    try:
        def for_file(file: int) -> Inserter:
            def insert(c: Connection, kind_name: str, batch_id: int, frame: pl.DataFrame) -> None:
                district = frame["district"][0] if frame.height else None
                kind, lo, hi = ranges.get((file, district), ("", 0, -1))
                if kind != kind_name or frame.height != hi - lo:
                    raise RuntimeError(f"批量写入的数据与登记的不一致：{kind_name} {district}")
                names = ", ".join(KINDS[kind_name].names)
                # Ingest appends in order to a new table, so a part's rows are rowids lo+1 … hi.
                c.exec_driver_sql(
                    f"INSERT INTO main.{record_tables[kind_name].name} (batch_id, {names}) "
                    f"SELECT ?, {names} FROM stage.stage_{kind_name} WHERE rowid > ? AND rowid <= ?",
                    (int(batch_id), lo, hi),
                )

            return insert

        yield for_file
    finally:
        if conn.in_transaction():
            conn.rollback()
        raw.execute("DETACH DATABASE stage")
        db.unlink(missing_ok=True)


# --- reading for computation --------------------------------------------------------------------


def active_batches(engine: Engine, kind_name: str | None = None) -> pl.DataFrame:
    query = sa.select(batches).where(batches.c.state == ACTIVE)
    if kind_name:
        query = query.where(batches.c.kind == kind_name)
    return read_query(engine, query)


def read_query(engine: Engine, query: sa.Select) -> pl.DataFrame:
    """Small metadata queries (batches, districts) through SQLAlchemy."""
    with engine.connect() as conn:
        result = conn.execute(query)
        rows = result.all()
        return pl.DataFrame([tuple(r) for r in rows], schema=list(result.keys()), orient="row",
                            infer_schema_length=None)


def arrow_read(engine: Engine, sql: str, rows: int | None = None) -> pl.DataFrame:
    """A columnar read; ``rows`` (how many the query returns, when known) lets a small SQLite read stay
    in this process (sqlite_read_many)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        # Not through ADBC: its driver bundles a second copy of SQLite, and two copies on one file in
        # one process break each other's POSIX locks; closing the ADBC connection even deletes the WAL
        # the pool's connections still write to, so later reads miss committed imports
        # (sqlite.org/howtocorrupt.html §2.2). Read with the engine's own driver, in chunks.
        return _sqlite_read(engine, sql, rows)
    if url.get_backend_name() == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        conn = adbc.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    else:
        with engine.connect() as c:
            return pl.read_database(sql, c)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        table = cur.fetch_arrow_table()
        cur.close()
    finally:
        conn.close()
    return pl.from_arrow(table)  # type: ignore[return-value]


# Run as a script with -P: its own folder must not come first on its sys.path (a module there named like
# a standard one would shadow it; tests/test_architecture.py keeps there being none).
_ARROW_CHILD = Path(__file__).with_name("arrow_child.py")


READ_PROCESSES = 2  # the machines this runs on have 2 or more cores; reading is CPU-bound in the child
# Below this many rows in all, a read stays in this process (the engine's own driver, row by row):
# starting a child costs ≈ 0.6 s, reading 50 k rows through sqlite3 about as much.
IN_PROCESS_ROWS = 50_000


def _sqlite_read_here(engine: Engine, sql: str) -> pl.DataFrame:
    """One query through the engine's own sqlite3 connection (no second SQLite copy, no child)."""
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except Exception as exc:  # sqlite3.Error: worded as the child's failures are
            raise RuntimeError(f"读取数据库失败：{exc}") from exc
        finally:
            cursor.close()
    # Every row decides a column's type (the sentinel row of record_query comes first anyway).
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)


def sqlite_read_many(engine: Engine, sqls: Sequence[str], rows: int | None = None) -> Iterator[pl.DataFrame]:
    """Columnar reads of SQLite queries through ADBC in child processes, yielded one at a time, in order.

    Not in this process: the ADBC driver bundles a second copy of SQLite, and two copies on one file
    in one process break each other's POSIX locks; closing the ADBC connection even deletes the WAL
    that the pool's connections still use (sqlite.org/howtocorrupt.html §2.2). A child process is an
    ordinary second SQLite client, and Arrow IPC brings the columns back without per-row objects.
    Starting a child costs about a second, so each of up to READ_PROCESSES children runs a consecutive
    share of the queries; the first share's results are handed out while the others are still read.
    The caller holds one result at a time. ``rows``: how many rows the queries return in all, when
    known; up to IN_PROCESS_ROWS they are read in this process instead (cheaper than a child).
    """
    import subprocess
    import tempfile

    if rows is not None and rows <= IN_PROCESS_ROWS:
        for sql in sqls:
            yield _sqlite_read_here(engine, sql)
        return

    with tempfile.TemporaryDirectory(prefix="dashboard-read-") as tmp:
        outs = [Path(tmp) / f"result{i}.arrow" for i in range(len(sqls))]
        jobs = [[sql, str(out)] for sql, out in zip(sqls, outs, strict=True)]
        n = max(1, min(READ_PROCESSES, len(jobs)))
        size = -(-len(jobs) // n)
        shares = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        children = []
        try:
            for k, share in enumerate(shares):
                # Jobs and errors go through files: no pipe can fill up while another child is waited on.
                job_file, err_file = Path(tmp) / f"jobs{k}.json", Path(tmp) / f"err{k}.txt"
                job_file.write_text(json.dumps(share), encoding="utf-8")
                with err_file.open("w") as err:
                    children.append(subprocess.Popen(
                        [sys.executable, "-P", str(_ARROW_CHILD), str(engine.url.database), str(job_file)],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    ))
            for k, (child, share) in enumerate(zip(children, shares, strict=True)):
                if child.wait() != 0:
                    lines = (Path(tmp) / f"err{k}.txt").read_text(errors="replace").strip().splitlines()
                    # The line of the traceback naming the error is what a reader needs.
                    named = [line for line in lines if "Error" in line] or lines or ["读取进程异常退出"]
                    raise RuntimeError(f"读取数据库失败：{named[-1][-500:]}")
                for _, out in share:
                    frame = pl.read_ipc(out)
                    Path(out).unlink()
                    yield frame
        finally:
            for child in children:  # a caller that stops early, or an error: no child is left running
                if child.poll() is None:
                    child.kill()
                    child.wait()


def _sqlite_read(engine: Engine, sql: str, rows: int | None = None) -> pl.DataFrame:
    return next(sqlite_read_many(engine, [sql], rows))


SENTINEL_BATCH = -1


def _sentinel(dtype: pl.DataType) -> str:
    if dtype == pl.Float64:
        return "0.0"
    if dtype in (pl.Int64, pl.Int8, pl.Boolean):
        return "0"
    return "''"  # text, and datetimes (SQLite keeps them as text)


def record_query(kind_name: str, batch_ids: Iterable[int], sqlite: bool = False) -> str:
    """The stored rows of some batches.

    On SQLite the result starts with one made-up row (batch_id -1) holding a value of each column's
    type: the ADBC driver guesses the types from the first rows, and a column that is empty there
    (say 办结时间 in a month of open cases) would be guessed as integer and the read would fail on the
    first date. newest_rows drops the row.
    """
    k = KINDS[kind_name]
    ids = ",".join(str(int(i)) for i in batch_ids)
    cols = ", ".join(["batch_id", *k.names])
    query = f"SELECT {cols} FROM {record_tables[kind_name].name} WHERE batch_id IN ({ids})"
    if not sqlite:
        return query
    first = ", ".join([f"{SENTINEL_BATCH} AS batch_id", *(f"{_sentinel(f.dtype)} AS {f.name}" for f in k.fields)])
    return f"SELECT {first} UNION ALL {query}"


def newest_rows(kind_name: str, raw: pl.DataFrame, active: pl.DataFrame) -> pl.DataFrame:
    """Typed rows of the given active batches, one per district × id (newest_wins; see load_records)."""
    raw = raw.filter(pl.col("batch_id") != SENTINEL_BATCH)
    by_batch = raw.partition_by("batch_id", as_dict=True, maintain_order=True)
    empty = raw.clear()

    def read(batch_id: int, columns: list[str] | None) -> pl.DataFrame:
        frame = by_batch.get((batch_id,), empty)
        return frame if columns is None else frame.select(columns)

    return newest_wins(kind_name, active, read, hold=True)


def last_of_each(frame: pl.DataFrame, key: list[str], id_field: str) -> pl.Series:
    """Whether each row is the last one of its ``key`` (``pl.struct(key).is_last_distinct()``).

    Only rows whose id shares its hash with another row can have an earlier or later twin (equal keys
    have equal ids, so equal hashes); the exact rule runs on those alone, the others are each the only
    row of their key. Found by sorting the hashes: a hash table of millions of distinct strings (the
    exact rule on every row, or counting the hashes) cost twice as much (0.8 s against 0.4 s for
    5.5 M cases).
    """
    hashes = frame.get_column(id_field).hash()
    ordered = hashes.sort()
    shared = ordered.filter(ordered == ordered.shift(1)).unique()
    twins = hashes.is_in(shared.implode()).arg_true()
    last = frame[twins].select(pl.struct(key).is_last_distinct()).to_series()
    return pl.repeat(True, frame.height, eager=True).scatter(twins, last)


def newest_wins(kind: str, active: pl.DataFrame,
                read: Callable[[int, list[str] | None], pl.DataFrame], hold: bool = False) -> pl.DataFrame:
    """The current records of the batches in ``active`` (columns ``id``, ``period``, ``as_of``): the one
    place the newest-wins rule is written. Per district × id (× period for catalogs) the row of the
    latest export month wins, within one month the newest import (a corrected re-export), within one
    batch its last row. Ordering by month first means a corrected September file imported after
    October cannot turn October's 已办结 back into 在办.

    ``read(batch id, columns or None for all)`` gives a batch's rows (typed or as stored): its key
    columns, then (one batch at a time) the rows that win; with ``hold``, every batch's rows once,
    held until the end (batch_files reads files this way, newest_rows a frame read from SQL)."""
    k = KINDS[kind]
    # Batches by export month (a missing one first), then id.
    order = (active.select(pl.col("id").cast(pl.Int64), pl.col("period").cast(pl.String))
             .sort(["period", "id"], maintain_order=True).rows())
    key = ["district", k.id_field] + (["period"] if kind == "items" else [])
    parts = []
    held: dict[int, pl.DataFrame] = {}
    for batch_id, period in order:
        if hold:
            keys = held[batch_id] = read(batch_id, None)
        else:
            keys = read(batch_id, ["district", k.id_field])
        parts.append(keys.select(
            pl.col("district").cast(pl.String),
            pl.col(k.id_field).cast(k.polars_schema[k.id_field]),
            pl.lit(period, pl.String).alias("period"),
        ))
    if not parts:
        return empty_records(kind)
    # The last occurrence of each key in this order wins (a struct's fields compare like unique's
    # subset). The batches lie one after another in this order, so each one's slice of the flags is
    # its mask of winning rows: a filter by mask costs a third of a gather by row numbers (most
    # rows win), and needs no sort of row numbers.
    heights = [part.height for part in parts]
    wins = last_of_each(pl.concat(parts), key, k.id_field)
    del parts
    kept = []
    start = 0
    for (batch_id, _period), height in zip(order, heights, strict=True):
        mask = wins.slice(start, height)
        start += height
        winning = mask.sum()
        if not winning:  # every row of this batch replaced by a later one: not read at all
            continue
        frame = held.pop(batch_id) if hold else read(batch_id, None)
        frame = frame if winning == frame.height else frame.filter(mask)
        kept.append(frame.select(
            pl.col("batch_id").cast(pl.Int64), *[cast_column(frame, f.name, f.dtype) for f in k.fields]))
    if not kept:
        return empty_records(kind)
    # The period from the batch id: a column chunked like the others (a literal per batch was one
    # chunk beside the filter's several, and a later select on columns chunked unlike each other
    # copies them all; rechunking each batch copied it once more).
    ids, periods = zip(*order, strict=True)
    as_of = dict(active.select(pl.col("id").cast(pl.Int64), pl.col("as_of").cast(pl.Date)).iter_rows())
    return pl.concat(kept, how="vertical").with_columns(
        pl.col("batch_id").replace_strict(list(ids), list(periods), return_dtype=pl.String).alias("period"),
        pl.col("batch_id").replace_strict(list(ids), [as_of[i] for i in ids], return_dtype=pl.Date).alias("as_of"))


def record_schema(kind_name: str) -> dict[str, pl.DataType]:
    """The columns of a kind's current records: batch id, the stored fields, then the batch's period and
    数据截止日 (``as_of``: a record is judged at the as-of date of the batch it is counted from)."""
    return {"batch_id": pl.Int64, **KINDS[kind_name].polars_schema, "period": pl.String, "as_of": pl.Date}


def empty_records(kind_name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=record_schema(kind_name))


def load_records(
    engine: Engine, kind_name: str, district_names: Iterable[str] | None = None
) -> pl.DataFrame:
    """Current rows of a kind (newest active batch per id), with ``batch_id``, batch ``period`` and ``as_of``.

    Read through Arrow (ADBC) rather than ORM objects: 10 M rows arrive in seconds.
    """
    active = active_batches(engine, kind_name)
    if district_names is not None:
        active = active.filter(pl.col("district").is_in(list(district_names)))
    if active.height == 0:
        return empty_records(kind_name)
    raw = arrow_read(engine, record_query(kind_name, active["id"].to_list(), is_sqlite(engine)),
                      int(active["rows"].sum()))
    return newest_rows(kind_name, raw, active)


def load_records_by_district(
    engine: Engine, kind_name: str, district_names: Sequence[str]
) -> Iterator[tuple[str, pl.DataFrame]]:
    """``load_records`` for each district in turn: one district's rows in memory at a time."""
    active = active_batches(engine, kind_name)
    wanted = [(d, active.filter(pl.col("district") == d)) for d in district_names]
    present = [(d, a) for d, a in wanted if a.height]
    sqls = [record_query(kind_name, a["id"].to_list(), is_sqlite(engine)) for _, a in present]
    if is_sqlite(engine) and sqls:
        raws: Iterator[pl.DataFrame] = sqlite_read_many(engine, sqls, sum(int(a["rows"].sum()) for _, a in present))
    else:
        raws = (arrow_read(engine, sql) for sql in sqls)
    results = iter(zip(present, raws, strict=True))
    for district, a in wanted:
        if a.height == 0:
            yield district, empty_records(kind_name)
            continue
        (_, active_here), raw = next(results)
        yield district, newest_rows(kind_name, raw, active_here)


def cast_column(raw: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    src = raw.schema[name]
    if isinstance(dtype, pl.Datetime) and src == pl.String:
        # SQLite keeps datetimes as text. Most have whole seconds, and the fixed format parses them
        # twice as fast as one with an optional fraction, so the fraction is tried only when needed.
        series = raw[name]
        whole = series.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
        if whole.null_count() > series.null_count():
            whole = series.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")
        return pl.lit(whole).cast(dtype).alias(name)
    if dtype == pl.Boolean and src != pl.Boolean:
        return col.cast(pl.Int8).cast(pl.Boolean)
    if src == pl.Null:
        return col.cast(dtype)
    return col.cast(dtype)


def record_counts(engine: Engine) -> dict[str, int]:
    """Stored row counts per table (all versions), for tests and the data-quality page."""
    with engine.connect() as conn:
        out = {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar())
            for name, t in record_tables.items()
        }
        out["batches"] = int(conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar())
    return out


# --- batches ------------------------------------------------------------------------------------


def lock_slot(conn: Connection, kind: str, district: str, period: str) -> None:
    """Hold the district × kind × period until the caller's transaction ends.

    Every change of which version is active (import, identical-file check, rollback) takes it first,
    so concurrent ones queue instead of each seeing the old state and both leaving a version active.
    PostgreSQL: a transaction-level advisory lock (re-entrant). SQLite: writers are serialised by
    BEGIN IMMEDIATE already.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{kind}|{district}|{period}"})


def create_batch(
    conn: Connection,
    *,
    upload_id: str,
    kind: str,
    district: str,
    period: str,
    file_name: str,
    sha256: str,
    user_name: str,
    rows: int,
    warnings: int = 0,
    summary: dict | None = None,
    created_at: dt.datetime | None = None,
    late: bool = False,
    exported: dt.date | None = None,
    as_of: dt.date | None = None,
) -> tuple[int, int]:
    """Insert a batch for one district × kind × period, superseding the active one.

    Its 数据截止日 is ``as_of`` if given, else as_of_date(period, created_at, ``exported``: the export
    date the file states).

    Returns ``(batch_id, rows_replaced)``. Runs inside the caller's transaction so that the
    records and the bookkeeping land together or not at all.
    """
    slot = (batches.c.kind == kind) & (batches.c.district == district) & (batches.c.period == period)
    lock_slot(conn, kind, district, period)
    previous = conn.execute(sa.select(batches.c.id, batches.c.rows).where(slot & (batches.c.state == ACTIVE))).all()
    version = conn.execute(sa.select(sa.func.coalesce(sa.func.max(batches.c.version), 0)).where(slot)).scalar() + 1
    if previous:
        conn.execute(batches.update().where(batches.c.id.in_([p.id for p in previous])).values(state=SUPERSEDED))
    created_at = created_at or now()
    batch_id = conn.execute(
        batches.insert().values(
            upload_id=upload_id,
            kind=kind,
            district=district,
            period=period,
            version=version,
            state=ACTIVE,
            file_name=file_name,
            sha256=sha256,
            user_name=user_name,
            created_at=created_at,
            rows=rows,
            rows_replaced=sum(p.rows for p in previous),
            warnings=warnings,
            summary=json.dumps(summary or {}, ensure_ascii=False),
            late=late,
            as_of=as_of or as_of_date(period, created_at, exported),
        )
    ).inserted_primary_key[0]
    return int(batch_id), sum(p.rows for p in previous)


def _locked_slot(conn: Connection, batch_id: int,
                 guard: Callable[[Connection, Any], None] | None) -> tuple[Any, sa.ColumnElement[bool]]:
    """The batch and its slot (district × kind × period) under the slot's lock (``lock_slot``), after
    ``guard(conn, target)`` (which may refuse by raising) — the start of a rollback or a withdrawal."""
    target = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
    if target is None:
        raise ValueError(f"批次 {batch_id} 不存在")
    lock_slot(conn, target.kind, target.district, target.period)
    if guard is not None:
        guard(conn, target)
    slot = ((batches.c.kind == target.kind) & (batches.c.district == target.district)
            & (batches.c.period == target.period))
    return target, slot


def rollback_to(
    engine: Engine,
    batch_id: int,
    user_name: str = "system",
    *,
    guard: Callable[[Connection, Any], None] | None = None,
    audit: Callable[[Connection, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Make an earlier version of a district × kind × period the active one again.

    Under the slot's lock (``lock_slot``). ``guard(conn, target)`` may refuse (raise) inside the
    transaction; ``audit(conn, done)`` writes the audit row in it, so the change and its record
    commit together.
    """
    with engine.begin() as conn:
        target, slot = _locked_slot(conn, batch_id, guard)
        conn.execute(batches.update().where(slot & (batches.c.state == ACTIVE)).values(state=ROLLED_BACK))
        conn.execute(batches.update().where(batches.c.id == batch_id).values(state=ACTIVE))
        add_revision(conn, f"rollback {batch_id} by {user_name}")
        done = {"kind": target.kind, "district": target.district, "period": target.period, "version": target.version}
        if audit is not None:
            audit(conn, done)
    return done


def withdraw_batch(
    engine: Engine,
    batch_id: int,
    user_name: str = "system",
    *,
    guard: Callable[[Connection, Any], None] | None = None,
    audit: Callable[[Connection, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Withdraw an active batch: its records stop counting, and the slot is as it was before the
    import: the newest older version that was not itself withdrawn is active again (none: the slot
    has no active version). rollback_to makes any version active again, this one included.

    Like rollback_to: under the slot's lock, ``guard`` may refuse, ``audit`` writes in the transaction.
    """
    with engine.begin() as conn:
        target, slot = _locked_slot(conn, batch_id, guard)
        state = conn.execute(sa.select(batches.c.state).where(batches.c.id == batch_id)).scalar()
        if state != ACTIVE:  # read under the lock: a concurrent withdrawal or rollback came first
            raise ValueError(f"批次 {batch_id} 不是在用版本，不能撤销")
        older = conn.execute(
            sa.select(batches.c.id, batches.c.version)
            .where(slot & (batches.c.id < batch_id) & (batches.c.state != WITHDRAWN))
            .order_by(batches.c.id.desc()).limit(1)
        ).first()
        conn.execute(batches.update().where(batches.c.id == batch_id).values(state=WITHDRAWN))
        if older is not None:
            conn.execute(batches.update().where(batches.c.id == older.id).values(state=ACTIVE))
        add_revision(conn, f"withdraw {batch_id} by {user_name}")
        done = {"kind": target.kind, "district": target.district, "period": target.period,
                "version": target.version, "rows": target.rows,
                "restored_version": older.version if older is not None else None}
        if audit is not None:
            audit(conn, done)
    return done


def last_import_at(engine: Engine) -> dt.datetime | None:
    """When the newest batch was imported (None for an empty store)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(batches.c.created_at))).scalar()


def batch_history(engine: Engine, kind: str | None = None, district: str | None = None,
                  districts: Iterable[str] | None = None) -> pl.DataFrame:
    """Every stored batch, newest first; of one kind, one district, or (``districts``) only those."""
    query = sa.select(batches).order_by(batches.c.id.desc())
    if districts is not None:
        query = query.where(batches.c.district.in_(list(districts)))
    if kind:
        query = query.where(batches.c.kind == kind)
    if district:
        query = query.where(batches.c.district == district)
    return read_query(engine, query)


def batch_district(engine: Engine, batch_id: int) -> str | None:
    """The district of a stored batch (None: no such batch)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(batches.c.district).where(batches.c.id == batch_id)).scalar()


def active_periods_of_file(engine: Engine, kind: str, sha256: str) -> set[tuple[str, str]]:
    """(district, period) of the active batches imported from a file with this content."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(batches.c.district, batches.c.period).where(
                (batches.c.kind == kind) & (batches.c.sha256 == sha256) & (batches.c.state == ACTIVE)
            )
        ).all()
    return {(r.district, r.period) for r in rows}


def active_catalog_codes(engine: Engine) -> pl.DataFrame:
    """district, period, item_code of the active catalogs (a small metadata read, not load_records' bulk path)."""
    items = record_tables["items"]
    query = (
        sa.select(batches.c.district, batches.c.period, items.c.item_code)
        .select_from(items.join(batches, items.c.batch_id == batches.c.id))
        .where((batches.c.kind == "items") & (batches.c.state == ACTIVE))
        .distinct()
    )
    return read_query(engine, query)


def active_rows(engine: Engine, kind: str, district: str, period: str) -> int | None:
    """Rows of the active batches of one slot; None when the slot has no active batch."""
    table = read_query(
        engine,
        sa.select(batches.c.rows).where(
            (batches.c.kind == kind) & (batches.c.district == district)
            & (batches.c.period == period) & (batches.c.state == ACTIVE)
        ),
    )
    return int(table["rows"].sum()) if table.height else None


# --- scoring settings (metrics/scoring.py decides what they mean) ---------------------------------


def settings_values(engine: Engine) -> list[tuple[str, str | None]]:
    """Every saved settings change as (key, new value as JSON), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(settings_changes.c.key, settings_changes.c.new_value)
                            .order_by(settings_changes.c.id)).all()
    return [(r.key, r.new_value) for r in rows]


def record_settings(engine: Engine, user_name: str, changes: Iterable[tuple[str, Any, Any]]) -> None:
    """Store settings changes (key, old, new; values as JSON) in one transaction, with a revision."""
    with engine.begin() as conn:
        at = now()
        for key, before, after in changes:
            conn.execute(
                settings_changes.insert().values(
                    user_name=user_name, at=at, key=key, old_value=json.dumps(before), new_value=json.dumps(after)
                )
            )
        add_revision(conn, f"settings by {user_name}")


def settings_history(engine: Engine) -> pl.DataFrame:
    """Every saved settings change, newest first."""
    return read_query(engine, sa.select(settings_changes).order_by(settings_changes.c.id.desc()))
