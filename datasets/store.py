"""Where the data lives: SQLAlchemy tables, batch bookkeeping and fast reads into Polars.

Every import is a *batch* (one per district of a file). Records keep the id of the batch that
brought them. A batch is ``active`` until a corrected export of the same district × kind × period
supersedes it (then ``superseded``, kept for rollback). Reading returns, for each record id and
district, the row of the newest active batch, so overlapping exports count once.
"""

from __future__ import annotations

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

from datasets.schema import KINDS, Kind

DEFAULT_SQLITE_PATH = Path(__file__).resolve().parent.parent / "data" / "dashboard.db"

ACTIVE, SUPERSEDED, ROLLED_BACK = "active", "superseded", "rolled_back"

metadata = sa.MetaData()

_SA_TYPES: dict[type, Any] = {
    pl.String: sa.String(200),
    pl.Float64: sa.Float(),
    pl.Int64: sa.BigInteger(),
    pl.Int8: sa.SmallInteger(),
    pl.Boolean: sa.Boolean(),
    pl.Datetime: sa.DateTime(),
}

districts = sa.Table(
    "districts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("code", sa.String(50), unique=True),
    sa.Column("aliases", sa.Text, nullable=False, default="[]"),  # JSON list
    sa.Column("sort_order", sa.Integer, nullable=False, default=0),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("upload_id", sa.String(64), nullable=False),  # shared by the batches of one file
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("district", sa.String(100), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),  # YYYY-MM
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("rows_replaced", sa.Integer, nullable=False, default=0),
    sa.Column("warnings", sa.Integer, nullable=False, default=0),
    sa.Column("summary", sa.Text, nullable=False, default="{}"),  # JSON validation summary
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_batches_slot", "kind", "district", "period", "state"),
)

# Every change of what counts (import, replace, rollback, settings) adds a revision, so caches key
# on one number.
revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("what", sa.String(200), nullable=False),
)

settings_changes = sa.Table(
    "settings_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text),
)


def _record_table(k: Kind) -> sa.Table:
    cols = [sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False)]
    for f in k.fields:
        sa_type = _SA_TYPES[type(f.dtype)] if type(f.dtype) in _SA_TYPES else _SA_TYPES[f.dtype]
        cols.append(sa.Column(f.name, sa_type, nullable=f.name not in ("district", k.id_field)))
    return sa.Table(
        k.name,
        metadata,
        *cols,
        sa.Index(f"ix_{k.name}_batch", "batch_id"),
        sa.Index(f"ix_{k.name}_key", "district", k.id_field),
    )


record_tables: dict[str, sa.Table] = {name: _record_table(k) for name, k in KINDS.items()}


# --- engine -------------------------------------------------------------------------------------


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{path}"


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
    # Accounts and audit tables live in datasets/accounts.py, the bulletin's template and texts in
    # datasets/documents.py, on the same metadata.
    from datasets import accounts, documents  # noqa: F401

    metadata.create_all(engine)


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


def district_lookup(engine: Engine) -> dict[str, str]:
    """Map every configured name, code and alias (normalised) to the district's name."""
    from datasets.text import normalize

    table = list_districts(engine)
    lookup: dict[str, str] = {}
    for name, code, aliases in table.iter_rows():
        for key in (name, code, *aliases):
            if key:
                lookup[normalize(key)] = name
    return lookup


# --- writing records ----------------------------------------------------------------------------

_DT_FORMAT = "%Y-%m-%d %H:%M:%S"


def insert_records(conn: Connection, kind_name: str, batch_id: int, frame: pl.DataFrame) -> None:
    """Bulk-insert canonical rows of a kind inside the caller's transaction."""
    k = KINDS[kind_name]
    table = record_tables[kind_name]
    cols = ["batch_id", *k.names]
    frame = frame.select(
        pl.lit(batch_id, dtype=pl.Int64).alias("batch_id"),
        *[
            (pl.col(f.name) if f.name in frame.columns else pl.lit(None, dtype=f.dtype)).cast(f.dtype).alias(f.name)
            for f in k.fields
        ],
    )
    if frame.height == 0:
        return
    if is_sqlite(conn):
        # pysqlite needs plain Python values; datetimes as ISO text (what SQLAlchemy writes too).
        frame = frame.with_columns(
            pl.col(pl.Datetime).dt.strftime(_DT_FORMAT), pl.col(pl.Boolean).cast(pl.Int8)
        )
        placeholders = ", ".join("?" for _ in cols)
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({placeholders})"
        cursor = conn.connection.driver_connection.cursor()
        for chunk in frame.iter_slices(100_000):
            cursor.executemany(sql, chunk.rows())
        cursor.close()
    elif conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in frame.iter_rows():
                copy.write_row(row)
    else:  # any other SQLAlchemy backend: portable but slower
        conn.execute(table.insert(), frame.to_dicts())


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


def _arrow_read(engine: Engine, sql: str) -> pl.DataFrame:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        # Not through ADBC: its driver bundles a second copy of SQLite, and two copies on one file in
        # one process break each other's POSIX locks; closing the ADBC connection even deletes the WAL
        # the pool's connections still write to, so later reads miss committed imports
        # (sqlite.org/howtocorrupt.html §2.2). Read with the engine's own driver, in chunks.
        return _sqlite_read(engine, sql)
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


_ARROW_CHILD = """
import json, sys, adbc_driver_sqlite.dbapi as adbc, pyarrow as pa
conn = adbc.connect(sys.argv[1])
for sql, path in json.load(open(sys.argv[2], encoding="utf-8")):
    cur = conn.cursor()
    cur.execute(sql)
    reader = cur.fetch_record_batch()
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    cur.close()
conn.close()
"""


READ_PROCESSES = 2  # the machines this runs on have 2 or more cores; reading is CPU-bound in the child


def _sqlite_read_many(engine: Engine, sqls: Sequence[str]) -> Iterator[pl.DataFrame]:
    """Columnar reads of SQLite queries through ADBC in child processes, yielded one at a time, in order.

    Not in this process: the ADBC driver bundles a second copy of SQLite, and two copies on one file
    in one process break each other's POSIX locks; closing the ADBC connection even deletes the WAL
    that the pool's connections still use (sqlite.org/howtocorrupt.html §2.2). A child process is an
    ordinary second SQLite client, and Arrow IPC brings the columns back without per-row objects.
    Starting a child costs about a second, so each of up to READ_PROCESSES children runs a consecutive
    share of the queries; the first share's results are handed out while the others are still read.
    The caller holds one result at a time.
    """
    import subprocess
    import tempfile

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
                        [sys.executable, "-c", _ARROW_CHILD, str(engine.url.database), str(job_file)],
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


def _sqlite_read(engine: Engine, sql: str) -> pl.DataFrame:
    return next(_sqlite_read_many(engine, [sql]))


_SENTINEL_BATCH = -1


def _sentinel(dtype: pl.DataType) -> str:
    if dtype == pl.Float64:
        return "0.0"
    if dtype in (pl.Int64, pl.Int8, pl.Boolean):
        return "0"
    return "''"  # text, and datetimes (SQLite keeps them as text)


def _record_query(kind_name: str, batch_ids: Iterable[int], sqlite: bool = False) -> str:
    """The stored rows of some batches.

    On SQLite the result starts with one made-up row (batch_id -1) holding a value of each column's
    type: the ADBC driver guesses the types from the first rows, and a column that is empty there
    (say 办结时间 in a month of open cases) would be guessed as integer and the read would fail on the
    first date. _current drops the row.
    """
    k = KINDS[kind_name]
    ids = ",".join(str(int(i)) for i in batch_ids)
    cols = ", ".join(["batch_id", *k.names])
    query = f"SELECT {cols} FROM {record_tables[kind_name].name} WHERE batch_id IN ({ids})"
    if not sqlite:
        return query
    first = ", ".join([f"{_SENTINEL_BATCH} AS batch_id", *(f"{_sentinel(f.dtype)} AS {f.name}" for f in k.fields)])
    return f"SELECT {first} UNION ALL {query}"


def _current(kind_name: str, raw: pl.DataFrame, active: pl.DataFrame) -> pl.DataFrame:
    """Typed rows of the given active batches, one per district × id (see load_records)."""
    k = KINDS[kind_name]
    schema = {"batch_id": pl.Int64, **k.polars_schema, "period": pl.String}
    raw = raw.filter(pl.col("batch_id") != _SENTINEL_BATCH)
    frame = raw.select(
        pl.col("batch_id").cast(pl.Int64),
        *[_cast_column(raw, f.name, f.dtype) for f in k.fields],
    )
    periods = active.select(pl.col("id").cast(pl.Int64).alias("batch_id"), "period")
    frame = frame.join(periods, on="batch_id", how="left")
    # The newest export counts: per district × id keep the row of the latest export month, and within
    # one month the newest import (a corrected re-export). Ordering by month first means a corrected
    # September file imported after October cannot turn October's 已办结 back into 在办.
    # A catalog is a snapshot valid from its period on, so catalog rows are unique per period instead.
    key = ["district", k.id_field] + (["period"] if kind_name == "items" else [])
    frame = frame.sort(["period", "batch_id"]).unique(subset=key, keep="last", maintain_order=True)
    return frame.select(list(schema))


def _empty_records(kind_name: str) -> pl.DataFrame:
    return pl.DataFrame(schema={"batch_id": pl.Int64, **KINDS[kind_name].polars_schema, "period": pl.String})


def load_records(
    engine: Engine, kind_name: str, district_names: Iterable[str] | None = None
) -> pl.DataFrame:
    """Current rows of a kind (newest active batch per id), with ``batch_id`` and batch ``period``.

    Read through Arrow (ADBC) rather than ORM objects: 10 M rows arrive in seconds.
    """
    active = active_batches(engine, kind_name)
    if district_names is not None:
        active = active.filter(pl.col("district").is_in(list(district_names)))
    if active.height == 0:
        return _empty_records(kind_name)
    raw = _arrow_read(engine, _record_query(kind_name, active["id"].to_list(), is_sqlite(engine)))
    return _current(kind_name, raw, active)


def load_records_by_district(
    engine: Engine, kind_name: str, district_names: Sequence[str]
) -> Iterator[tuple[str, pl.DataFrame]]:
    """``load_records`` for each district in turn: one district's rows in memory at a time."""
    active = active_batches(engine, kind_name)
    wanted = [(d, active.filter(pl.col("district") == d)) for d in district_names]
    present = [(d, a) for d, a in wanted if a.height]
    sqls = [_record_query(kind_name, a["id"].to_list(), is_sqlite(engine)) for _, a in present]
    if is_sqlite(engine) and sqls:
        raws: Iterator[pl.DataFrame] = _sqlite_read_many(engine, sqls)
    else:
        raws = (_arrow_read(engine, sql) for sql in sqls)
    results = iter(zip(present, raws, strict=True))
    for district, a in wanted:
        if a.height == 0:
            yield district, _empty_records(kind_name)
            continue
        (_, active_here), raw = next(results)
        yield district, _current(kind_name, raw, active_here)


def _cast_column(raw: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
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
) -> tuple[int, int]:
    """Insert a batch for one district × kind × period, superseding the active one.

    Returns ``(batch_id, rows_replaced)``. Runs inside the caller's transaction so that the
    records and the bookkeeping land together or not at all.
    """
    slot = (batches.c.kind == kind) & (batches.c.district == district) & (batches.c.period == period)
    lock_slot(conn, kind, district, period)
    previous = conn.execute(sa.select(batches.c.id, batches.c.rows).where(slot & (batches.c.state == ACTIVE))).all()
    version = conn.execute(sa.select(sa.func.coalesce(sa.func.max(batches.c.version), 0)).where(slot)).scalar() + 1
    if previous:
        conn.execute(batches.update().where(batches.c.id.in_([p.id for p in previous])).values(state=SUPERSEDED))
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
            created_at=created_at or now(),
            rows=rows,
            rows_replaced=sum(p.rows for p in previous),
            warnings=warnings,
            summary=json.dumps(summary or {}, ensure_ascii=False),
            late=late,
        )
    ).inserted_primary_key[0]
    return int(batch_id), sum(p.rows for p in previous)


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
        target = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
        if target is None:
            raise ValueError(f"批次 {batch_id} 不存在")
        lock_slot(conn, target.kind, target.district, target.period)
        if guard is not None:
            guard(conn, target)
        slot = (
            (batches.c.kind == target.kind)
            & (batches.c.district == target.district)
            & (batches.c.period == target.period)
        )
        conn.execute(batches.update().where(slot & (batches.c.state == ACTIVE)).values(state=ROLLED_BACK))
        conn.execute(batches.update().where(batches.c.id == batch_id).values(state=ACTIVE))
        add_revision(conn, f"rollback {batch_id} by {user_name}")
        done = {"kind": target.kind, "district": target.district, "period": target.period, "version": target.version}
        if audit is not None:
            audit(conn, done)
    return done


def batch_history(engine: Engine, kind: str | None = None, district: str | None = None) -> pl.DataFrame:
    query = sa.select(batches).order_by(batches.c.id.desc())
    if kind:
        query = query.where(batches.c.kind == kind)
    if district:
        query = query.where(batches.c.district == district)
    return read_query(engine, query)
