"""Faults of the system (not of the user's data), explained in Chinese in one place.

A database that is unreachable or restarting, a full disk, a cache that cannot be written: the pages
(dashboard.py) and both command-line programs (datasets/operations/cli.py ``run``) turn such an exception into
the same Chinese message with ``explain``; the CLI exits with ``EXIT_UNAVAILABLE``. Anything else is
a defect: the CLI names it in Chinese and exits with ``EXIT_INTERNAL`` (traceback only with
``DASHBOARD_TRACEBACK=1``), the pages let Streamlit show it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

# The command-line contract (README 命令行): scripts tell these apart.
EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERNAL = 0, 1, 2, 3, 4

DATABASE, DISK_FULL, CACHE = "database", "disk_full", "cache"

DB_UNAVAILABLE = ("数据库暂时不可用（无法连接，或正在重启），请稍后重试。已保存的数据不受影响："
                  "导入要么完整入库、要么完全没有入库。")
DISK_FULL_TEXT = "服务器磁盘空间不足或无法读写，请联系系统管理员清理磁盘后重试。已保存的数据不受影响。"
BUCKET_UNAVAILABLE = ("计算缓存所在的对象存储暂时无法访问（CACHE_URL），请稍后重试；如持续出现，请联系系统管理员检查存储服务"
                      "和访问密钥。已保存的数据不受影响。")
CACHE_FULL_TEXT = "计算缓存目录空间不足"
CACHE_FAILED_TEXT = "计算缓存无法写入"

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class CacheWriteError(Exception):
    """A file of the computation cache (datasets/derived/cache_store.py) could not be written.

    The cache holds only what can be derived again from the database, so callers that can do
    without the file go on in memory (``cache_warning`` says so once); the rest report it."""

    def __init__(self, location: str, cause: BaseException, disk_full: bool = False) -> None:
        self.location = location
        self.cause = cause
        self.disk_full = disk_full or _is_disk_full(cause)
        self.reason = "磁盘空间不足" if self.disk_full else _reason(cause)
        what = CACHE_FULL_TEXT if self.disk_full else CACHE_FAILED_TEXT
        super().__init__(f"{what}（{location}：{self.reason}）")


def _reason(cause: BaseException) -> str:
    """Why a cache write failed, in words (the exception class is for the log)."""
    if isinstance(cause, OSError):
        if cause.errno in (errno.EACCES, errno.EPERM):
            return "没有写入权限"
        if cause.errno == errno.EROFS:
            return "只读文件系统"
        return "文件系统错误"
    return "存储服务拒绝写入或无法访问"


@dataclass(frozen=True)
class Fault:
    """What went wrong, for people: ``kind`` (DATABASE, DISK_FULL, CACHE), a Chinese ``message``."""

    kind: str
    message: str
    exit_code: int = EXIT_UNAVAILABLE


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it wraps (SQLAlchemy keeps the driver's as ``orig``), each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop(0)
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        todo += [getattr(cur, "orig", None), cur.__cause__, cur.__context__]


def _is_disk_full(exc: BaseException) -> bool:
    for cur in _chain(exc):
        if isinstance(cur, OSError) and cur.errno in _DISK_FULL_ERRNOS:
            return True
        # SQLite on a full disk: "database or disk is full", or "disk I/O error" when even its journal
        # cannot be created (a connection to the file then fails).
        if isinstance(cur, sqlite3.DatabaseError) and ("disk is full" in str(cur) or "disk I/O error" in str(cur)):
            return True
        if getattr(cur, "sqlstate", None) in ("53100", "53000"):  # PostgreSQL disk_full / insufficient_resources
            return True
        # Libraries that re-raise an I/O failure as their own error keep only its text (Polars, obstore).
        if "No space left on device" in str(cur) or "os error 28" in str(cur):
            return True
    return False


def _unavailable_types() -> tuple[type[BaseException], ...]:
    """Errors meaning the database cannot be reached now (a restart, a dropped connection, a full pool)."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    types: list[type[BaseException]] = [OperationalError, InterfaceError, DisconnectionError, PoolTimeout,
                                         sqlite3.OperationalError]
    try:  # the columnar PostgreSQL reads (ADBC) and raw COPY (psycopg) raise their drivers' errors
        import adbc_driver_manager

        types += [adbc_driver_manager.OperationalError, adbc_driver_manager.InterfaceError]
    except ImportError:
        pass
    try:
        import psycopg

        types += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:
        pass
    return tuple(types)


UNAVAILABLE_ERRORS = _unavailable_types()


def explain(exc: BaseException) -> Fault | None:
    """The fault behind ``exc`` in Chinese, or None when it is not a known fault of the system."""
    if isinstance(exc, CacheWriteError):
        return Fault(CACHE, cache_warning(exc, computed=False))
    if _is_disk_full(exc):
        return Fault(DISK_FULL, DISK_FULL_TEXT)
    if any(isinstance(cur, UNAVAILABLE_ERRORS) for cur in _chain(exc)):
        return Fault(DATABASE, DB_UNAVAILABLE)
    if any(type(cur).__module__.startswith("obstore") for cur in _chain(exc)):  # the bucket (CACHE_URL=s3://…)
        return Fault(CACHE, BUCKET_UNAVAILABLE)
    return None


def cache_warning(error: CacheWriteError, computed: bool = True) -> str:
    """What to tell the user about a cache that could not be written."""
    head = (f"{CACHE_FULL_TEXT}（{error.location}）" if error.disk_full
            else f"{CACHE_FAILED_TEXT}（{error.location}：{error.reason}）")
    if computed:
        return (f"{head}：本次结果已在内存中计算，数字不受影响，但未能保存，之后的计算会较慢。"
                "请联系系统管理员清理该目录所在磁盘（或修改 CACHE_URL）。")
    return f"{head}，请联系系统管理员清理该目录所在磁盘（或修改 CACHE_URL）后重试。已保存的数据不受影响。"


_PATH_REASONS = {errno.ENOENT: "文件或目录不存在", errno.EACCES: "没有权限", errno.EPERM: "没有权限",
                 errno.EISDIR: "这是一个目录", errno.ENOTDIR: "路径中有一段不是目录", errno.EROFS: "只读文件系统"}


def path_problem(exc: BaseException) -> str | None:
    """For the CLI: a file or folder named on the command line that cannot be read or written (its
    path is the user's), in Chinese; None for anything else."""
    if isinstance(exc, OSError) and exc.filename and exc.errno in _PATH_REASONS:
        return f"无法读写“{exc.filename}”：{_PATH_REASONS[exc.errno]}"
    return None


def internal_error(exc: BaseException) -> str:
    """The CLI's line for an error that is not a known fault (a defect)."""
    return (f"内部错误（{type(exc).__name__}）：操作未完成。请联系系统管理员；"
            "设置环境变量 DASHBOARD_TRACEBACK=1 后重新运行可显示详细的错误信息。")


TRACEBACK_ENV = "DASHBOARD_TRACEBACK"


def traceback_wanted() -> bool:
    """Whether the operator asked for tracebacks (``DASHBOARD_TRACEBACK=1``) to report a defect."""
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
