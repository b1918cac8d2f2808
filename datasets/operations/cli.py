"""Command-line plumbing shared by ``python -m datasets`` and ``python -m metrics``.

Exit codes are part of the contract evaluators' scripts rely on (README 命令行): 0 success, 1 rejected
data, 2 bad arguments (with a Chinese message naming the argument), 3 system unavailable (the
database unreachable or restarting, a full disk, a cache that cannot be written), 4 internal error.
Every message, ``--help`` included, is Chinese; no traceback unless ``DASHBOARD_TRACEBACK=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import threading
import traceback
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn

from datasets.common.faults import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    cache_warning,
    explain,
    internal_error,
    path_problem,
    traceback_wanted,
)
from datasets.domain.periods import Period
from datasets.storage.coverage import Coverage

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_REJECTED", "EXIT_UNAVAILABLE", "EXIT_USAGE", "ChineseArgumentParser",
           "db_url", "integer", "measured_period", "month_arg", "number", "run", "warn_cache"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

# argparse's own messages (Python 3.11's msgids, looked up through its gettext ``_``) in Chinese.
MESSAGES = {
    "usage: ": "用法：",
    "positional arguments": "位置参数",
    "options": "选项",
    "show this help message and exit": "显示本帮助并退出",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的取值 %(value)r（可选：%(choices)s）",
    "invalid %(type)s value: %(value)r": "取值 %(value)r 无效（应为 %(type)s）",
    "expected one argument": "需要一个取值",
    "expected at most one argument": "最多只能有一个取值",
    "expected at least one argument": "至少需要一个取值",
    "expected %s argument": "需要 %s 个取值",
    "expected %s arguments": "需要 %s 个取值",
    "ambiguous option: %(option)s could match %(matches)s": "选项 %(option)s 有歧义，可能是：%(matches)s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "ignored explicit argument %r": "该选项不接受取值：%r",
    "one of the arguments %s is required": "必须指定以下参数之一：%s",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "未知的子命令 %(parser_name)r（可选：%(choices)s）",
    "can't open '%(filename)s': %(error)s": "无法打开“%(filename)s”：%(error)s",
    "unexpected option string: %s": "意外的选项：%s",
}

_PATCH = threading.RLock()
_depth = 0


@contextlib.contextmanager
def _chinese_messages() -> Iterator[None]:
    """argparse formats its error messages with its module's ``_`` (gettext) deep inside parsing; for
    the parse only, that lookup goes through MESSAGES (nested parses of subcommands share one patch)."""
    global _depth
    with _PATCH:
        if _depth == 0:
            saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
            argparse._ = lambda text: MESSAGES.get(text, text)  # type: ignore[attr-defined]
            argparse.ngettext = lambda one, many, n: MESSAGES.get(one if n == 1 else many, many)  # type: ignore[attr-defined]
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0:
                argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


def display_width(text: str) -> int:
    """Terminal columns of ``text``: Chinese characters take two (argparse counts one)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


class ChineseHelpFormatter(argparse.HelpFormatter):
    """``用法：`` instead of ``usage:`` (the help text's other headings are the groups' titles), and the
    help column aligned and wrapped by terminal columns, not characters."""

    def add_usage(self, usage, actions, groups, prefix=None) -> None:  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, MESSAGES["usage: "] if prefix is None else prefix)

    def _format_action(self, action: argparse.Action) -> str:
        text = super()._format_action(action)
        header = self._format_action_invocation(action)
        extra = display_width(header) - len(header)
        first, newline, rest = text.partition("\n")
        indent = len(first) - len(first.lstrip(" "))
        after = first[indent + len(header):]
        if not extra or not action.help or first[indent:indent + len(header)] != header or not after.strip():
            return text
        pad = len(after) - len(after.lstrip(" "))
        if pad - extra >= 2:  # the help still fits beside the wider header
            first = first[:indent + len(header)] + " " * (pad - extra) + after.lstrip(" ")
        else:  # on its own line, at the help column
            first = first[:indent + len(header)] + "\n" + " " * (indent + len(header) + pad) + after.lstrip(" ")
        return first + newline + rest

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Units that may not be split: an option or word of ASCII; any Chinese character stands alone.
        units: list[str] = []
        for ch in " ".join(text.split()):
            if units and ch != " " and display_width(ch) == 1 and units[-1][-1] != " " and display_width(units[-1]) == len(units[-1]):
                units[-1] += ch
            else:
                units.append(ch)
        lines, line = [], ""
        for unit in units:
            if line and display_width(line + unit) > width:
                lines.append(line.rstrip())
                line = unit.lstrip()
            else:
                line += unit
        return [*lines, line.rstrip()]


class ChineseArgumentParser(argparse.ArgumentParser):
    """argparse entirely in Chinese (help, usage and errors); errors exit with code 2."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", ChineseHelpFormatter)
        add_help = kwargs.pop("add_help", True)
        super().__init__(*args, add_help=False, **kwargs)
        self._positionals.title = MESSAGES["positional arguments"]
        self._optionals.title = MESSAGES["options"]
        if add_help:
            self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                              help=MESSAGES["show this help message and exit"])

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def,override]
        with _chinese_messages():
            return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def,override]
        with _chinese_messages():
            return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"参数错误：{message}\n")
        sys.exit(EXIT_USAGE)


def month_arg(value: str) -> str:
    """YYYY-MM with a real month."""
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise argparse.ArgumentTypeError(f"“{value}”不是有效的月份，应写作 YYYY-MM，例如 2024-05")
    return value.strip()


def integer(value: str) -> int:
    """A whole number (argparse's own message would name the type ``int``)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{value}”不是整数") from None


def number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{value}”不是数字") from None


def db_url(value: str | None) -> str:
    """--db, then DATABASE_URL, then the embedded SQLite file."""
    from datasets.common.config import load_settings

    return value or os.environ.get("DATABASE_URL") or load_settings().url


def measured_period(cover: Coverage, period: Period) -> Period:
    """The months a CLI command measures: a quarter or year in progress to date (datasets/storage/coverage.py);
    a partial month's note goes to standard error (standard output stays the table or the message)."""
    period = cover.measured(Period(period.first, period.last))
    if note := cover.banner(period):
        print(f"注意：{period.label}数据未报齐，{note}", file=sys.stderr)
    return period


def warn_cache(engine: Engine) -> None:
    """After computing: say on stderr when the computation cache could not be written (the numbers were
    computed in memory and are right; the next run is slower)."""
    from datasets.derived import cache_store, snapshots

    problem = cache_store.write_problem(snapshots.cache_of(engine))
    if problem is not None:
        print(f"注意：{cache_warning(problem)}", file=sys.stderr)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """``main(argv)`` with faults explained: a system fault (datasets/common/faults.py) is a Chinese line on
    stderr and exit 3, a path given on the command line that cannot be used exit 2, any other error a
    Chinese line naming it and exit 4; never a traceback, unless
    ``DASHBOARD_TRACEBACK=1`` asks for one (to report a defect)."""
    if not traceback_wanted():
        # The library's warnings (a cache written in memory only) reach the user as the CLI's own
        # Chinese lines (warn_cache, ImportResult.notice), not a second time through logging's fallback.
        quiet = logging.getLogger("datasets")
        if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
            quiet.addHandler(logging.NullHandler())
    try:
        return main(argv)
    except Exception as exc:
        if traceback_wanted():
            traceback.print_exc()
        fault = explain(exc)
        if fault is not None:
            print(f"系统暂时不可用：{fault.message}", file=sys.stderr)
            return fault.exit_code
        path = path_problem(exc)
        if path is not None:  # e.g. --out into a folder that does not exist
            print(f"参数错误：{path}", file=sys.stderr)
            return EXIT_USAGE
        print(internal_error(exc), file=sys.stderr)
        return EXIT_INTERNAL
