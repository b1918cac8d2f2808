"""Faults on the pages (issue 23, part 4): a full disk, an unreachable or restarting database, a cache that
cannot be written and a batch file not written each show a Chinese message, never Streamlit's English
error box or a traceback; the next run, once the fault is gone, shows the page again."""

from __future__ import annotations

import errno
import re
import sqlite3

import pytest
import sqlalchemy as sa

from datasets.common import faults
from datasets.derived import cache_store, snapshots
from datasets.storage import store
from tests.apptest_support import ALL_NAME, STAFF_NAME, Demo, app, cases_csv, ok, open_page, texts

pytestmark = pytest.mark.usefixtures("navigation_mode")

# Names a fault message may carry as they are: a file type, the setting to change and a cache location (a
# path); Markdown escapes (shared.plain) included.
_ALLOWED = re.compile(r"\\?\.(csv|xlsx|xls)|CACHE\\?_URL|/[^\s（）：，]*")


def english(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{2,}", _ALLOWED.sub(" ", text))


def _shown(at) -> str:
    return "\n".join([texts(at.error), texts(at.warning), texts(at.exception)])


def _disk_full(monkeypatch) -> None:
    def full(frame, out) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_store, "_write_parquet", full)
    monkeypatch.setattr(cache_store, "_FAILURES", {})


def test_a_full_cache_disk_on_the_first_page_shows_the_numbers_and_a_chinese_warning(demo_copy: Demo, monkeypatch):
    engine = store.make_engine(demo_copy.url)
    snapshots.clear(engine)  # a cold start: every cache file to write again
    engine.dispose()
    _disk_full(monkeypatch)
    at = ok(app(demo_copy.url, monkeypatch, demo_copy.users[ALL_NAME]).run())
    assert at.title[0].value.startswith("总览")
    assert at.metric  # the numbers are there, computed in memory
    assert "计算缓存目录空间不足" in texts(at.warning) and "数字不受影响" in texts(at.warning)
    assert not at.error
    assert english(texts(at.warning)) == []


FAULTS = [
    pytest.param(OSError(errno.ENOSPC, "No space left on device"), "服务器磁盘空间不足", id="disk-full"),
    pytest.param(sa.exc.OperationalError("INSERT INTO audit_log", {}, sqlite3.OperationalError("database or disk is full")),
                 "服务器磁盘空间不足", id="sqlite-disk-full"),
    pytest.param(sa.exc.OperationalError("SELECT 1", {}, Exception("the database system is shutting down")),
                 "数据库暂时不可用", id="database-restarting"),
    pytest.param(sa.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
                 "数据库暂时不可用", id="connection-lost"),
    pytest.param(faults.CacheWriteError("/srv/cache", OSError(errno.ENOSPC, "full")), "计算缓存目录空间不足",
                 id="cache-write"),
]


@pytest.mark.parametrize(("error", "message"), FAULTS)
def test_a_fault_in_the_middle_of_a_run_is_a_chinese_message_and_the_next_run_recovers(demo, monkeypatch, error,
                                                                                         message):
    from pages import _session as session

    at = ok(app(demo.url, monkeypatch, demo.users[ALL_NAME]).run())
    real = session.current_user

    def failing(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(session, "current_user", failing)
    ok(at.run())
    shown = _shown(at)
    assert message in texts(at.error), shown
    assert "刷新页面" in texts(at.error)
    assert english(shown) == [], shown
    monkeypatch.setattr(session, "current_user", real)
    ok(at.run())
    assert at.title[0].value.startswith("总览") and not at.error


def test_a_fault_inside_a_page_is_explained_too(demo, monkeypatch):
    """Raised by the page's own work (the ranking page's reads), not by the dashboard around it."""
    from pages import _shared as shared

    at = open_page(app(demo.url, monkeypatch, demo.users[ALL_NAME]), "pages/ranking.py")

    def restarting(*_args, **_kwargs):
        raise sa.exc.OperationalError("SELECT", {}, Exception("terminating connection due to administrator command"))

    monkeypatch.setattr(shared.Context, "ranking", restarting)
    ok(at.run())
    assert "数据库暂时不可用" in texts(at.error) and english(_shown(at)) == []


def test_an_upload_whose_batch_file_cannot_be_written_is_stored_and_the_page_says_so(demo_copy: Demo, monkeypatch):
    district, month = demo_copy.districts[0], demo_copy.period.first
    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users[STAFF_NAME]), "pages/upload.py")
    at.file_uploader[0].set_value([("办件.csv", cases_csv(demo_copy.url, district, month), "text/csv")])
    ok(at.run())
    _disk_full(monkeypatch)
    ok(at.button(key="up_import").click().run())
    assert "已导入" in texts(at.success)
    warning = texts(at.warning)
    assert "批次文件未能写出" in warning and "数据已完整入库" in warning
    assert english(warning) == [] and not at.error


def test_a_database_file_on_a_full_disk_is_said_to_be_a_disk_problem(demo, monkeypatch):
    """SQLite cannot even open its file when the disk is full ("disk I/O error"): the page says so, rather
    than calling the database unreachable."""
    at = ok(app(demo.url, monkeypatch, demo.users[ALL_NAME]).run())

    def io_error(*_args, **_kwargs):
        raise sa.exc.OperationalError("PRAGMA journal_mode=WAL", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(store, "data_version", io_error)
    ok(at.run())
    assert "服务器磁盘空间不足或无法读写" in texts(at.error) and english(_shown(at)) == []


def test_an_upload_without_optional_columns_is_stored_with_its_batch_file(demo_copy: Demo, monkeypatch):
    """申请时间, 事项名称, … all left out: stored, its batch file written, nothing to warn about."""
    from datasets.derived import batch_files

    district, month = demo_copy.districts[0], demo_copy.period.first
    engine = store.make_engine(demo_copy.url)
    item = store.load_records(engine, "items", [district]).row(0, named=True)
    # As many rows as a month has (fewer than half of the month before is refused as an incomplete export).
    rows = "".join(f"MIN{i},{item['item_code']},{item['department']},窗口,{month}-{i % 28 + 1:02d} 10:00:00,在办\n"
                   for i in range(200))
    data = ("办件编号,事项编码,实施部门,申请渠道,受理时间,办理状态\n" + rows).encode("utf-8")
    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users[STAFF_NAME]), "pages/upload.py")
    at.selectbox(key="up_district").set_value(district)  # no 所属区县 column either
    at.file_uploader[0].set_value([("最少列.csv", data, "text/csv")])
    ok(at.run())
    assert not at.error
    ok(at.button(key="up_import").click().run())
    assert "已导入办件明细 200 行" in texts(at.success)
    assert not at.warning and not at.error
    newest = store.batch_history(engine, "cases", district).row(0, named=True)
    assert newest["file_name"] == "最少列.csv"
    name = batch_files.file_name("cases", newest["id"], newest["sha256"], newest["rows"], district)
    assert snapshots.cache_of(engine).exists(name)
    engine.dispose()
