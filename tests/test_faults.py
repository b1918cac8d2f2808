"""Faults are explained, never dumped (issue 23, part 4): a full cache disk, an unreachable or restarting
database, an import without optional columns and a batch file that cannot be written each give a Chinese
message with the CLI's exit code (0 ok, 1 rejected, 2 bad arguments, 3 system unavailable), no traceback;
numbers are still right when the cache cannot be written."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from datasets.__main__ import main as datasets_main
from datasets.common import faults
from datasets.derived import batch_files, cache_store, snapshots
from datasets.domain.schema import KINDS
from datasets.storage import store
from metrics.__main__ import main as metrics_main
from metrics.compute import components
from metrics.prepare import load_dataset
from metrics.scoring import default_settings
from metrics.service import compute_components
from tests.factories import cache_at, refuse_sql_record_reads

ROOT = Path(__file__).resolve().parent.parent
DISTRICT = "云湖区"
KEY = ["district", "department", "month", "since", "indicator"]

# One file per kind with only the required columns (and no 所属区县: given with --district).
MINIMAL = {
    "items": ("事项编码,事项名称,实施部门,网上办理深度\n"
              "IT1,食品经营许可,区市场监管局,Ⅳ\nIT2,建筑许可,区住建局,Ⅱ\n"),
    "cases": ("办件编号,事项编码,实施部门,申请渠道,受理时间,办理状态\n"
              "BJ1,IT1,区市场监管局,网上申请,2024-05-03 14:22:05,在办\n"
              "BJ2,IT2,区住建局,窗口,2024-05-04 09:00:00,在办\n"
              "BJ3,IT1,区市场监管局,移动端,2024-05-06 10:00:00,不予受理\n"),
    "evaluations": ("评价编号,事项编码,评价等级,评价时间,是否主动评价\n"
                    "PJ1,IT1,非常满意,2024-05-11 10:00:00,是\n"
                    "PJ2,IT2,不满意,2024-05-12 10:00:00,是\n"
                    "PJ3,IT2,满意,2024-05-13 10:00:00,否\n"),
    "hotline": "工单编号,受理时间\nGD1,2024-05-03 09:00:00\nGD2,2024-05-05 09:00:00\n",
}
ROWS = {"items": 2, "cases": 3, "evaluations": 3, "hotline": 2}


def _required_only(kind: str) -> list[str]:
    return [f.name for f in KINDS[kind].fields if f.required]


def test_the_minimal_files_hold_exactly_the_required_columns():
    """The files above are what the issue means: every optional column of the kind left out."""
    from datasets.domain.schema import DISTRICT as DISTRICT_FIELD

    for kind, text in MINIMAL.items():
        headers = text.splitlines()[0].split(",")
        wanted = [f.header for f in KINDS[kind].fields if f.required and f is not DISTRICT_FIELD]
        assert headers == wanted, kind
        assert len(headers) < len(KINDS[kind].fields) - 1  # optional columns exist and are missing


def _import(url: str, tmp_path: Path, kind: str, capsys) -> tuple[int, str, str]:
    path = tmp_path / f"{kind}.csv"
    path.write_text(MINIMAL[kind], encoding="utf-8")
    extra = ["--period", "2024-05"] if kind == "items" else []
    code = datasets_main(["import", str(path), "--db", url, "--district", DISTRICT, *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    engine = store.make_engine(url)
    store.init_db(engine)
    store.add_district(engine, DISTRICT, "370102", [])
    engine.dispose()
    return url


def _engine(url: str):
    return store.make_engine(url)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(KEY, nulls_last=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_import_with_only_the_required_columns_writes_its_batch_file(kind, store_url, tmp_path, capsys):
    if kind != "items":  # cases and evaluations are checked against the catalog
        assert _import(store_url, tmp_path, "items", capsys)[0] == 0
    code, out, err = _import(store_url, tmp_path, kind, capsys)
    assert code == 0, err
    assert "Traceback" not in out + err and "Error" not in out + err and "注意" not in err
    engine = _engine(store_url)
    cache = snapshots.cache_of(engine)
    batch = store.active_batches(engine, kind).row(0, named=True)
    name = batch_files.file_name(kind, batch["id"], batch["sha256"], batch["rows"], batch["district"])
    assert cache.exists(name)
    written = cache.read(name)
    assert written.height == ROWS[kind]
    assert written.columns == ["batch_id", *KINDS[kind].names]  # every optional column, as nulls
    optional = [f.name for f in KINDS[kind].fields if not f.required and f.name != "district"]
    assert all(written[c].null_count() == ROWS[kind] for c in optional)
    # The file's rows are the store's rows.
    id_field = KINDS[kind].id_field
    from_sql = store.load_records(engine, kind, [DISTRICT]).sort(id_field)
    assert batch_files.current_records(engine, cache, kind, DISTRICT).sort(id_field).equals(from_sql)
    assert set(_required_only(kind)) <= set(written.columns)
    engine.dispose()


def test_numbers_from_the_batch_files_of_minimal_imports_equal_the_numbers_from_sql(store_url, tmp_path, capsys,
                                                                                   monkeypatch):
    for kind in MINIMAL:
        assert _import(store_url, tmp_path, kind, capsys)[0] == 0
    engine = _engine(store_url)
    want = _sorted(components(load_dataset(engine), default_settings().to_rules()))
    assert want.height > 0 and want["numerator"].sum() > 0
    # From here on the SQL record tables may not be read: the numbers come from the batch files.
    refuse_sql_record_reads(monkeypatch)
    got = _sorted(compute_components(engine, default_settings()))
    assert got.select(KEY).equals(want.select(KEY))
    assert got["numerator"].to_list() == want["numerator"].to_list()
    assert got["denominator"].to_list() == want["denominator"].to_list()
    engine.dispose()


# --- a cache that cannot be written ------------------------------------------------------------------


def _disk_full(monkeypatch) -> list[str]:
    """Every write of a local cache file fails as on a full disk (ENOSPC); returns the names tried."""
    tried: list[str] = []

    def full(frame, out) -> None:
        tried.append(getattr(out, "name", "?"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_store, "_write_parquet", full)
    monkeypatch.setattr(cache_store, "_FAILURES", {})
    monkeypatch.setattr(cache_store, "_LOGGED", set())
    return tried


def test_a_full_cache_disk_still_gives_the_report_with_a_chinese_warning(small_sqlite, capsys, monkeypatch):
    url = small_sqlite.url.render_as_string(hide_password=False)
    assert metrics_main(["report", "--db", url, "--by", "district"]) == 0  # a cold cache: builds it (default place)
    want, _ = capsys.readouterr()
    engine = store.make_engine(url)
    cache = snapshots.cache_of(engine)
    cache.clear()  # everything must be built again, batch files included
    tried = _disk_full(monkeypatch)
    assert metrics_main(["report", "--db", url, "--by", "district"]) == 0
    got, err = capsys.readouterr()
    assert tried  # the writes were attempted and failed
    assert got == want  # the same numbers, computed in memory
    assert "计算缓存目录空间不足" in err and "数字不受影响" in err
    assert "Traceback" not in err and "Error" not in err
    assert not cache.mtimes()  # nothing half-written left behind
    engine.dispose()


def test_a_full_disk_for_the_output_file_is_exit_3(small_sqlite, capsys, monkeypatch, tmp_path):
    from datasets.common import safe_export

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe_export, "write_csv", full)
    url = small_sqlite.url.render_as_string(hide_password=False)
    assert metrics_main(["report", "--db", url, "--out", str(tmp_path / "x.csv")]) == faults.EXIT_UNAVAILABLE
    _out, err = capsys.readouterr()
    assert "磁盘空间不足" in err and "Traceback" not in err


def test_an_import_whose_batch_file_cannot_be_written_is_stored_and_says_so(store_url, tmp_path, capsys,
                                                                             monkeypatch):
    assert _import(store_url, tmp_path, "items", capsys)[0] == 0
    _disk_full(monkeypatch)
    code, out, err = _import(store_url, tmp_path, "cases", capsys)
    assert code == 0  # stored: SQL is the system of record, the file is recreated from it
    assert "已导入办件明细 3 行" in out
    assert "批次文件未能写出" in err and "计算缓存目录空间不足" in err and "Traceback" not in err
    engine = _engine(store_url)
    batch = store.active_batches(engine, "cases").row(0, named=True)
    name = batch_files.file_name("cases", batch["id"], batch["sha256"], batch["rows"], batch["district"])
    cache = snapshots.cache_of(engine)
    assert not cache.exists(name)
    monkeypatch.undo()  # the disk has room again: the file comes back from SQL on first use
    got = batch_files.current_records(engine, cache, "cases", DISTRICT)
    assert cache.exists(name) and got.height == 3
    engine.dispose()


def test_a_defect_in_the_batch_file_writer_is_said_in_chinese_not_dumped(store_url, tmp_path, capsys, monkeypatch):
    def broken(*_args, **_kwargs):
        raise pl.exceptions.ColumnNotFoundError('unable to find column "applied_at"')

    monkeypatch.setattr(batch_files, "write_imported", broken)
    code, out, err = _import(store_url, tmp_path, "items", capsys)
    assert code == 0 and "已导入事项清单 2 行" in out
    assert "批次文件未能写出（内部错误 ColumnNotFoundError）" in err and "Traceback" not in err


# --- the database unreachable -------------------------------------------------------------------------

CLOSED = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=3"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("argv", [
    ("datasets", "import", "{file}", "--db", CLOSED),
    ("datasets", "districts", "list", "--db", CLOSED),
    ("metrics", "report", "--db", CLOSED),
    ("metrics", "rank", "--db", CLOSED, "--period", "2024-05"),
    ("metrics", "bulletin", "--db", CLOSED, "--period", "2024-05", "--out", "{out}"),
], ids=["import", "districts", "report", "rank", "bulletin"])
def test_an_unreachable_database_is_exit_3_with_a_chinese_message(argv, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(MINIMAL["cases"], encoding="utf-8")
    done = _cli(*(a.format(file=path, out=tmp_path / "b.docx") for a in argv))
    assert done.returncode == faults.EXIT_UNAVAILABLE, done.stderr
    assert "数据库暂时不可用" in done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert done.stdout == ""


def test_the_traceback_is_there_when_asked_for(tmp_path):
    done = _cli("metrics", "report", "--db", CLOSED, env={faults.TRACEBACK_ENV: "1"})
    assert done.returncode == faults.EXIT_UNAVAILABLE
    assert "Traceback" in done.stderr and "数据库暂时不可用" in done.stderr


def test_an_unexpected_error_is_exit_4_in_chinese(capsys, monkeypatch, store_url):
    from metrics import service

    def bug(*_args, **_kwargs):
        raise KeyError("x")

    monkeypatch.setattr(service, "open_store", bug)
    assert metrics_main(["report", "--db", store_url]) == faults.EXIT_INTERNAL
    _out, err = capsys.readouterr()
    assert "内部错误（KeyError）" in err and "DASHBOARD_TRACEBACK=1" in err and "Traceback" not in err


@pytest.mark.parametrize(("exc", "kind"), [
    (sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")), faults.DATABASE),
    (sa.exc.OperationalError("INSERT", {}, __import__("sqlite3").OperationalError("database or disk is full")),
     faults.DISK_FULL),
    (OSError(errno.ENOSPC, "No space left on device"), faults.DISK_FULL),
    (pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device (os error 28)"), faults.DISK_FULL),
    (faults.CacheWriteError("/data/cache", OSError(errno.ENOSPC, "full")), faults.CACHE),
    (faults.CacheWriteError("/data/cache", PermissionError(errno.EACCES, "denied")), faults.CACHE),
    (__import__("obstore").exceptions.GenericError("connection refused"), faults.CACHE),
    (KeyError("x"), None),
    (ValueError("bad"), None),
    (OSError(errno.ENOENT, "missing"), None),
])
def test_explain_maps_each_fault_class(exc, kind):
    fault = faults.explain(exc)
    assert (fault.kind if fault else None) == kind
    if fault is not None:
        assert fault.exit_code == faults.EXIT_UNAVAILABLE
        assert not any(w in fault.message for w in ("Error", "error", "Traceback"))


def test_a_cache_write_failure_names_full_disk_only_when_it_is_one():
    full = faults.CacheWriteError("/c", OSError(errno.ENOSPC, "x"))
    denied = faults.CacheWriteError("/c", PermissionError(errno.EACCES, "x"))
    assert full.disk_full and "空间不足" in faults.cache_warning(full)
    assert not denied.disk_full and "无法写入" in faults.cache_warning(denied)


# --- PostgreSQL going away under an import ------------------------------------------------------------


def _admin() -> sa.Engine:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip("未设置 TEST_POSTGRES_URL")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def _state(engine) -> tuple[int, ...]:
    """What an import changes: batches, case rows, revisions, audit rows."""
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                     for t in ("batches", "cases", "revisions", "audit_log"))


def _pg_store(pg_engine, tmp_path, capsys, monkeypatch) -> str:
    # The CLI's own engines would put their cache under the project's data/snapshots/ otherwise.
    monkeypatch.setenv("CACHE_URL", str(tmp_path / "cache"))
    url = pg_engine.url.render_as_string(hide_password=False)
    store.add_district(pg_engine, DISTRICT, "370102", [])
    assert _import(url, tmp_path, "items", capsys)[0] == 0
    return url


@pytest.mark.postgres
def test_an_import_while_postgresql_refuses_connections_is_exit_3_and_stores_nothing(pg_engine, tmp_path, capsys,
                                                                                     monkeypatch):
    url = _pg_store(pg_engine, tmp_path, capsys, monkeypatch)
    before = _state(pg_engine)
    name = pg_engine.url.database
    pg_engine.dispose()
    admin = _admin()
    path = tmp_path / "cases.csv"
    path.write_text(MINIMAL["cases"], encoding="utf-8")
    with admin.connect() as conn:  # the database down for everyone (as during a restart)
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
    try:
        done = _cli("datasets", "import", str(path), "--db", url, "--district", DISTRICT)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert done.returncode == faults.EXIT_UNAVAILABLE, done.stdout + done.stderr
    assert "数据库暂时不可用" in done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert _state(pg_engine) == before


@pytest.mark.postgres
def test_a_connection_killed_in_the_middle_of_an_import_is_exit_3_and_rolls_back(pg_engine, tmp_path, capsys,
                                                                                  monkeypatch):
    """The server drops the importing connection inside its transaction (pg_terminate_backend, what a
    restart does): nothing of the file is stored, and the CLI says why with exit 3."""
    url = _pg_store(pg_engine, tmp_path, capsys, monkeypatch)
    before = _state(pg_engine)
    admin = _admin()
    real = store.create_batch
    killed: list[int] = []

    def create_batch(conn, **kwargs):
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        killed.append(pid)
        return real(conn, **kwargs)

    monkeypatch.setattr(store, "create_batch", create_batch)
    code, out, err = _import(url, tmp_path, "cases", capsys)
    admin.dispose()
    assert killed and code == faults.EXIT_UNAVAILABLE, out + err
    assert "数据库暂时不可用" in err and "Traceback" not in err
    assert _state(pg_engine) == before


# --- how a failed cache write is recognised ------------------------------------------------------------


@pytest.mark.parametrize(("below", "full"), [(1 << 62, True), (0, False)], ids=["no-room", "room"])
def test_a_write_error_that_lost_its_errno_is_a_full_disk_when_there_is_no_room(tmp_path, monkeypatch, below, full):
    """On a full tmpfs Polars said only "Invalid thrift: transport error": the free space decides."""
    def broken(frame, out) -> None:
        raise pl.exceptions.ComputeError("parquet: File out of specification: Invalid thrift: transport error")

    monkeypatch.setattr(cache_store, "_write_parquet", broken)
    monkeypatch.setattr(cache_store, "FULL_BELOW", below)
    monkeypatch.setattr(cache_store, "_FAILURES", {})
    cache = cache_store.LocalCache(tmp_path / "c")
    with pytest.raises(faults.CacheWriteError) as caught:
        cache.write("a/b.parquet", pl.DataFrame({"x": [1]}))
    assert caught.value.disk_full is full
    assert ("空间不足" in str(caught.value)) is full
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]  # no half-written file left
    assert cache_store.write_problem(cache) is caught.value
    monkeypatch.setattr(cache_store, "PROBLEM_SECONDS", -1)  # reported for a while only
    assert cache_store.write_problem(cache) is None


@pytest.fixture
def full_tmpfs(tmp_path) -> Path:
    """A real 1 MiB tmpfs (needs root and mount rights; skipped elsewhere), unmounted afterwards."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"无法挂载 tmpfs：{done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_real_full_disk_as_the_cache_still_gives_the_numbers(small_sqlite, full_tmpfs, monkeypatch):
    monkeypatch.setattr(cache_store, "_FAILURES", {})
    want = _sorted(components(load_dataset(small_sqlite), default_settings().to_rules()))
    engine = store.make_engine(small_sqlite.url.render_as_string(hide_password=False))  # its cache: the full disk
    cache_at(engine, str(full_tmpfs))
    try:
        got = _sorted(compute_components(engine, default_settings()))
        problem = cache_store.write_problem(snapshots.cache_of(engine))
    finally:
        engine.dispose()
    assert got.select(KEY).equals(want.select(KEY))
    assert (got["numerator"] - want["numerator"]).abs().max() < 1e-9
    assert (got["denominator"] - want["denominator"]).abs().max() < 1e-9
    assert problem is not None and problem.disk_full
    assert not list(full_tmpfs.rglob("*.tmp"))


def test_an_output_path_that_cannot_be_written_is_an_argument_error(store_url, tmp_path, capsys):
    target = tmp_path / "no-such-folder" / "x.csv"
    assert _import(store_url, tmp_path, "items", capsys)[0] == 0
    assert metrics_main(["report", "--db", store_url, "--out", str(target)]) == faults.EXIT_USAGE
    _out, err = capsys.readouterr()
    assert f"参数错误：无法读写“{target}”：文件或目录不存在" in err and "Traceback" not in err
