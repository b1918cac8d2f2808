"""Upload = read + validate (nothing stored) and, when accepted, one atomic import.

``check_file`` reads and validates a file and returns an ``UploadCheck`` (problems, summary, the
period each district's rows are filed under). ``store_checked`` stores an accepted check through
``ingest.import_frame`` (one transaction, one batch per district). ``import_file`` does both.
``cli_import`` is ``python -m datasets import``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from datasets.access import accounts
from datasets.access.accounts import PermissionDenied, User
from datasets.common.faults import EXIT_OK, EXIT_REJECTED, EXIT_USAGE
from datasets.domain import schema
from datasets.intake import ingest, report
from datasets.intake.parsed import ERROR, WARNING, ParsedFile, Problem, ReadError
from datasets.intake.read_child import ReadLimits, read_isolated
from datasets.intake.validate import Validation, store_context, validate
from datasets.storage import store

DEFAULT_USER = "网页上传"
CLI_PAGE = "命令行"  # the "page" of audit rows written by python -m datasets import
CLI_PROBLEM_LINES = 50

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

# Chinese names of the rules a reader raises (ReadError.rule); unknown ids read as 文件无法读取.
READ_RULE_NAMES = {
    "file_not_found": "文件不存在",
    "file_empty": "空文件",
    "file_too_large": "文件过大",
    "file_corrupt": "文件已损坏",
    "file_encrypted": "文件已加密",
    "zip_bomb": "压缩内容异常",
    "sheet_too_large": "工作表过大",
    "unsupported_format": "不支持的文件格式",
    "encoding_unknown": "无法识别文字编码",
    "unknown_kind": "无法识别数据类型",
    "header_not_found": "找不到表头",
    "kind_mismatch": "数据类型不符",
    "no_data_rows": "没有数据行",
    "read_limit": "超出大小/时间限制",
    "file_unreadable": "文件无法读取",
}


class UploadRejected(ValueError):
    """``store_checked`` was given a check with errors."""

    def __init__(self, check: UploadCheck) -> None:
        super().__init__(f"文件“{check.file_name}”未通过校验（错误 {check.error_count} 处），未导入")
        self.check = check


@dataclass
class UploadCheck:
    """The outcome of reading and validating one file; nothing has been stored."""

    file_name: str
    sha256: str
    kind: str | None
    user_name: str
    district: str | None  # the uploader's district (used where the file has none)
    period: str | None  # the month given by the uploader (required for catalogs)
    parsed: ParsedFile | None = None  # None when the file could not be read
    validation: Validation | None = None
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rule -> number of problems
    periods: dict[str, str] = field(default_factory=dict)  # district -> YYYY-MM it is filed under
    already_imported: bool = False  # the identical file is already the active data of every slot
    needs_period: bool = False  # a catalog without --period: an argument is missing
    user: User | None = None  # the account uploading; None: a trusted shell operator

    @property
    def severities(self) -> dict[str, str]:
        """Rule -> severity (ERROR wins when a rule was reported with both)."""
        out: dict[str, str] = {}
        for p in self.problems:
            if out.get(p.rule) != ERROR:
                out[p.rule] = p.severity
        return out

    @property
    def error_count(self) -> int:
        sev = self.severities
        return sum(n for rule, n in self.counts.items() if sev.get(rule) == ERROR)

    @property
    def warning_count(self) -> int:
        sev = self.severities
        return sum(n for rule, n in self.counts.items() if sev.get(rule) == WARNING)

    @property
    def accepted(self) -> bool:
        return self.validation is not None and self.error_count == 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def rows(self) -> int:
        return self.validation.frame.height if self.validation is not None else 0

    @property
    def frame(self) -> pl.DataFrame:
        """The canonical rows that would be stored (district resolved), without ``_row``."""
        if self.validation is None:
            return schema.empty_frame(self.kind) if self.kind else pl.DataFrame()
        k = schema.kind(self.kind or self.validation.kind)
        return self.validation.frame.select([c for c in k.names if c in self.validation.frame.columns])

    @property
    def summary(self) -> dict:
        """JSON-serialisable validation summary (stored with each batch)."""
        out = self.validation.summary() if self.validation is not None else {"rows": 0, "rules": {}}
        out["errors"] = self.error_count
        out["warnings"] = self.warning_count
        out["file_name"] = self.file_name
        out["kind"] = self.kind
        out["checked_at"] = store.now().isoformat(sep=" ")
        return out

    def problems_frame(self) -> pl.DataFrame:
        return report.problems_frame(self.problems)

    def report_bytes(self) -> bytes:
        """The problem list as an .xlsx (sheets 问题清单 and 规则汇总)."""
        return report.report_bytes(self.problems, counts=self.counts, file_name=self.file_name)

    def headline(self) -> str:
        """One Chinese sentence on the outcome of the check."""
        label = schema.kind(self.kind).label if self.kind else "文件"
        if self.validation is None:
            first = self.errors[0].message if self.errors else "无法读取"
            return f"{self.file_name}：无法读取，{first}"
        if not self.accepted:
            text = (f"{self.file_name}（{label}，{self.rows} 行）：未通过校验，错误 {self.error_count} 处，"
                    f"警告 {self.warning_count} 处，未导入")
            # A refusal for the account's district scope is named in the headline itself.
            scope = next((p.message for p in self.errors if p.rule == "district_out_of_scope"), None)
            return f"{text}。{scope}" if scope else text
        if self.already_imported:
            return f"{self.file_name}：与已导入文件相同，未重复导入"
        where = "、".join(f"{d} {self.month_range(d, p)}" for d, p in sorted(self.periods.items()))
        return f"{self.file_name}（{label}，{self.rows} 行，{where}）：校验通过，警告 {self.warning_count} 处"

    def month_range(self, district: str, period: str) -> str:
        """The months a district's rows span ("2021-01 至 2021-12"), or the month they are filed under."""
        k = schema.kind(self.kind) if self.kind else None
        frame = self.validation.frame if self.validation is not None else None
        if k is None or frame is None or not k.date_field or k.date_field not in frame.columns or self.period:
            return period
        months = (frame.filter(pl.col("district") == district)[k.date_field].dt.strftime("%Y-%m").drop_nulls())
        if months.len() == 0 or months.min() == months.max():
            return period
        return f"{months.min()} 至 {months.max()}"


def _error(rule: str, rule_name: str, message: str) -> Problem:
    return Problem(ERROR, rule, rule_name, message)


def _max_bytes() -> int:
    from datasets.common.config import load_settings

    return load_settings().upload_max_mb * 1024 * 1024


def uploader_limit_mb(upload_max_mb: int) -> int:
    """The file uploader's ``max_upload_size`` that lets through every file the server accepts.

    The server accepts up to ``upload_max_mb`` MiB (``upload_max_mb * 2**20`` bytes). Streamlit's
    browser code turns the uploader's megabytes into bytes with 1024² on Windows but 1000² elsewhere,
    so a file of exactly 50 MiB was refused in the browser (with an English tooltip) while the server
    accepted it. Rounded up to whole 1000² megabytes, the uploader admits the server's limit on every
    system; a file between the two is refused by the server, in Chinese ("超过上传上限").
    """
    return -(-upload_max_mb * 2**20 // 10**6)


def _read_limits() -> ReadLimits:
    from datasets.common.config import load_settings

    return ReadLimits.from_settings(load_settings())


def check_file(
    engine: Engine,
    path_or_bytes: str | Path | bytes,
    file_name: str,
    *,
    kind: str | None = None,
    district: str | None = None,
    period: str | None = None,
    user_name: str = DEFAULT_USER,
    max_bytes: int | None = None,
    now: dt.datetime | None = None,
    user: User | None = None,
    page: str = "数据上传",
    limits: ReadLimits | None = None,
) -> UploadCheck:
    """Read and validate one file; nothing is stored.

    ``kind`` forces the kind (else detected from the headers); ``district`` is the uploader's district
    for files without a district column; ``period`` (YYYY-MM) is required for 事项清单 and otherwise
    derived per district (the month most rows fall in). The file is read in a child process under
    ``limits`` (default: the settings READ_MEMORY_MB, READ_TIMEOUT_S; see datasets/intake/read_child.py).
    """
    if kind is not None:
        schema.kind(kind)  # raises ValueError with a Chinese message
    if user is not None:
        user_name = user.username
    check = UploadCheck(file_name=file_name, sha256="", kind=kind, user_name=user_name, district=district,
                        period=period, user=user)
    if period is not None and not _MONTH.match(period):
        check.problems.append(_error("period_invalid", "月份格式错误", f"月份“{period}”无效，应写作 YYYY-MM，例如 2024-05"))
        check.counts = {"period_invalid": 1}
        return check
    try:
        parsed = read_isolated(path_or_bytes, file_name, kind=kind, max_bytes=max_bytes or _max_bytes(),
                               limits=limits or _read_limits())
    except ReadError as exc:
        check.problems.append(_error(exc.rule, READ_RULE_NAMES.get(exc.rule, "文件无法读取"), exc.message))
        check.counts = {exc.rule: 1}
        return check
    check.parsed = parsed
    check.kind = parsed.kind
    check.sha256 = parsed.sha256  # over the file's bytes
    if parsed.kind == "items" and not period:
        check.needs_period = True
        check.problems.append(_error("period_missing", "缺少适用月份",
                                     "事项清单必须指定适用月份（自哪个月起适用，YYYY-MM），请选择月份后重新上传"))
    validation = validate(parsed, store_context(engine, parsed.kind), district=district, period=period, now=now)
    check.validation = validation
    check.problems = [*check.problems, *validation.problems]
    check.counts = dict(validation.counts)
    for p in check.problems:
        if p.rule not in validation.counts:
            check.counts[p.rule] = check.counts.get(p.rule, 0) + 1
    check.periods = validation.periods
    if user is not None and check.periods:
        try:
            accounts.check_import_scope(user, check.periods)
        except PermissionDenied as exc:
            check.problems.append(_error("district_out_of_scope", "超出账号负责的区县", str(exc)))
            check.counts["district_out_of_scope"] = 1
            # A refusal for the account's scope is a security event: audited when the file is checked.
            accounts.audit(engine, user.username, "import_rejected", f"{file_name}：{exc}", page)
    if check.accepted and check.periods:
        check.already_imported = _already_imported(engine, check)
    return check


def _already_imported(engine: Engine, check: UploadCheck) -> bool:
    active = store.active_periods_of_file(engine, check.kind, check.sha256)
    return all((d, p) in active for d, p in check.periods.items())


def audit_rejection(engine: Engine, check: UploadCheck, page: str = "数据上传") -> None:
    """Audit a file refused for import, with the reason (a scope refusal was audited by check_file).

    Called for every refused check, by the 数据上传 page and the CLI alike. A check waiting for the
    month (事项清单 without one, or a mistyped month) is a missing argument, not a refused file.
    """
    if "district_out_of_scope" in check.counts or check.needs_period or "period_invalid" in check.counts:
        return
    first = check.errors[0].message if check.errors else ""
    detail = f"{check.file_name}：未通过校验，错误 {check.error_count} 处" + (f"，首个错误：{first}" if first else "")
    accounts.audit(engine, check.user_name, "import_rejected", detail[:2000], page)


def store_checked(engine: Engine, check: UploadCheck, page: str = "数据上传") -> ingest.ImportResult:
    """Store an accepted check atomically (one batch per district); raises ``UploadRejected`` otherwise.

    Re-importing the identical file is a no-op (``result.unchanged``). The account's scope is checked
    again as stored now, inside the import's transaction (a district removed since the check counts),
    and the audit row is written in that transaction; a refusal is audited with its reason.
    """
    if not check.accepted or check.kind is None:
        raise UploadRejected(check)

    def guard(conn) -> None:
        if check.user is None:
            return
        fresh = accounts.current_account(conn, check.user.username)
        if fresh is None:
            raise PermissionDenied(f"账号“{check.user.username}”已不存在，未入库")
        accounts.check_import_scope(fresh, check.periods)

    def audit(conn, result: ingest.ImportResult) -> None:
        accounts.audit_in(conn, check.user_name, "import", result_line(check, result), page)

    try:
        return ingest.import_frame(
            engine,
            check.kind,
            check.frame,
            file_name=check.file_name,
            sha256=check.sha256,
            user_name=check.user_name,
            period=check.period,
            warnings=check.warning_count,
            summary=check.summary,
            exported=check.parsed.exported if check.parsed is not None else None,
            guard=guard,
            audit=audit,
        )
    except PermissionDenied as exc:
        accounts.audit(engine, check.user_name, "import_rejected", f"{check.file_name}：{exc}", page)
        raise


def rollback(engine: Engine, batch_id: int, user: User | None, page: str = "数据上传",
             actor_name: str = "命令行") -> dict:
    """Make an earlier version active again, within the account's district scope; audited.

    ``actor_name`` is recorded when there is no account (the shell, or a page's typed operator name).
    """
    district = store.batch_district(engine, batch_id)
    if district is None:
        raise ValueError(f"批次 {batch_id} 不存在")
    if user is not None:
        accounts.check_import_scope(user, [district], rollback=True)
    actor = user.username if user is not None else actor_name

    def guard(conn, target) -> None:
        if user is None:
            return
        fresh = accounts.current_account(conn, user.username)  # as stored now, not as at sign-in
        if fresh is None:
            raise PermissionDenied(f"账号“{user.username}”已不存在")
        accounts.check_import_scope(fresh, [target.district], rollback=True)

    def audit(conn, done: dict) -> None:
        label = schema.kind(done["kind"]).label
        accounts.audit_in(conn, actor, "rollback",
                          f"{done['district']} {done['period']} {label} 回滚到第 {done['version']} 版", page)

    return store.rollback_to(engine, batch_id, actor, guard=guard, audit=audit)


def import_file(
    engine: Engine,
    path_or_bytes: str | Path | bytes,
    file_name: str,
    *,
    kind: str | None = None,
    district: str | None = None,
    period: str | None = None,
    user_name: str = DEFAULT_USER,
    max_bytes: int | None = None,
    now: dt.datetime | None = None,
    user: User | None = None,
    page: str = "数据上传",
    limits: ReadLimits | None = None,
) -> tuple[UploadCheck, ingest.ImportResult | None]:
    """Check a file and store it when it has no errors. Returns the check and the result (None if rejected)."""
    check = check_file(engine, path_or_bytes, file_name, kind=kind, district=district, period=period,
                       user_name=user_name, max_bytes=max_bytes, now=now, user=user, page=page, limits=limits)
    if not check.accepted:
        audit_rejection(engine, check, page)
        return check, None
    return check, store_checked(engine, check, page)


def result_line(check: UploadCheck, result: ingest.ImportResult) -> str:
    """One Chinese line on what an import stored."""
    if result.unchanged:
        return f"{check.file_name}：与已导入文件相同，未重复导入"
    parts = []
    for r in result.results:
        if r.unchanged:
            parts.append(f"{r.district} {r.period} 与已导入文件相同")
            continue
        text = f"{r.district} {r.period} 第 {r.version} 版 {r.rows} 行"
        if r.rows_replaced:
            text += f"，替换原有 {r.rows_replaced} 行"
        parts.append(text)
    stored = sum(r.rows for r in result.results if not r.unchanged)
    replaced = sum(r.rows_replaced for r in result.results if not r.unchanged)
    label = schema.kind(check.kind).label if check.kind else ""
    return (f"{check.file_name}：已导入{label} {stored} 行，替换 {replaced} 行，警告 {check.warning_count} 条"
            f"（{'；'.join(parts)}）")


# --- command line -------------------------------------------------------------------------------


def _usage(message: str) -> int:
    print(f"参数错误：{message}", file=sys.stderr)
    return EXIT_USAGE


def _report_path(base: Path, source: Path, several: bool) -> Path:
    return base if not several else base.with_name(f"{base.stem}_{source.stem}{base.suffix}")


def cli_import(engine: Engine, args: argparse.Namespace) -> int:
    """``python -m datasets import PATH... [--kind] [--district] [--period] [--report] [--user]``.

    Exit 0 when every file was stored (or already was), 1 when a file was rejected (nothing of it
    stored), 2 for bad arguments.
    """
    paths = [Path(p) for p in args.paths]
    for path in paths:
        if not path.is_file():
            return _usage(f"文件不存在：{path}（参数 PATH）")
    kind = getattr(args, "kind", None)
    period = getattr(args, "period", None)
    district = getattr(args, "district", None)
    report_base = Path(args.report) if getattr(args, "report", None) else None
    if kind == "items" and not period:
        return _usage("导入事项清单必须指定 --period（适用月份，YYYY-MM）")
    if period is not None and not _MONTH.match(period):
        return _usage(f"--period “{period}”不是有效的月份，应写作 YYYY-MM")
    if district:
        from datasets.common.text import normalize

        if normalize(district) not in store.district_lookup(engine):
            return _usage(f"--district 指定的区县“{district}”未配置，请先用 python -m datasets districts add 添加")
    if report_base is not None and report_base.suffix.lower() != ".xlsx":
        return _usage(f"--report 须为 .xlsx 文件路径：{report_base}")
    # --user names an account: its district scope applies exactly as on the upload page. Without it
    # the shell operator (who can already run `users add`) imports as 命令行.
    user: User | None = None
    user_name = "命令行"
    if getattr(args, "user", None):
        user = accounts.get_user(engine, args.user)
        if user is None or not user.active:
            return _usage(f"--user 指定的账号“{args.user}”不存在或已停用")
        user_name = user.username

    status = EXIT_OK
    several = len(paths) > 1
    for path in paths:
        check = check_file(engine, path, path.name, kind=kind, district=district, period=period,
                           user_name=user_name, user=user, page=CLI_PAGE)
        if check.needs_period:
            print(f"参数错误：{path.name} 是事项清单，必须指定 --period（适用月份，YYYY-MM）", file=sys.stderr)
            status = max(status, EXIT_USAGE)
            continue
        if not check.accepted:
            audit_rejection(engine, check, CLI_PAGE)
            print(check.headline())
            _print_problems(check)
            if report_base is not None:
                target = _report_path(report_base, path, several)
                target.parent.mkdir(parents=True, exist_ok=True)
                report.write_report_xlsx(check.problems, target, counts=check.counts, file_name=check.file_name)
                print(f"问题清单已写入：{target}")
            status = max(status, EXIT_REJECTED)
            continue
        try:
            result = store_checked(engine, check, CLI_PAGE)
        except PermissionDenied as exc:
            print(f"{path.name}：{exc}")
            status = max(status, EXIT_REJECTED)
            continue
        print(result_line(check, result))
        if result.notice:  # stored, but its batch file was not written (datasets/ingest.write_batch_files)
            print(f"注意：{result.notice}", file=sys.stderr)
        if check.warnings and not result.unchanged:
            _print_problems(check, limit=10)
            if report_base is not None:
                target = _report_path(report_base, path, several)
                target.parent.mkdir(parents=True, exist_ok=True)
                report.write_report_xlsx(check.problems, target, counts=check.counts, file_name=check.file_name)
                print(f"警告清单已写入：{target}")
    return status


def _print_problems(check: UploadCheck, limit: int = CLI_PROBLEM_LINES) -> None:
    ordered = sorted(check.problems, key=lambda p: (p.severity != ERROR, p.row is not None, p.row or 0))
    for p in ordered[:limit]:
        print("  " + report.format_problem(p))
    total = sum(check.counts.values()) or len(ordered)
    if total > min(limit, len(ordered)):
        print(f"  ……共 {total} 处问题（错误 {check.error_count} 处，警告 {check.warning_count} 处），"
              f"以上仅列出前 {min(limit, len(ordered))} 处，完整清单可用 --report 输出")
