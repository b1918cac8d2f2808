"""Command-line plumbing shared by ``python -m datasets`` and ``python -m metrics``.

Exit codes are part of the contract evaluators' scripts rely on: 0 success, 1 rejected data,
2 bad arguments (with a Chinese message naming the argument).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import NoReturn

from datasets.coverage import Coverage
from datasets.periods import Period

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ChineseArgumentParser(argparse.ArgumentParser):
    """argparse with Chinese error messages; errors exit with code 2."""

    def error(self, message: str) -> NoReturn:
        message = (
            message.replace("the following arguments are required", "缺少必需的参数")
            .replace("unrecognized arguments", "无法识别的参数")
            .replace("invalid choice", "无效的取值")
            .replace("choose from", "可选")
            .replace("argument ", "参数 ")
            .replace("expected one argument", "需要一个取值")
        )
        self.print_usage(sys.stderr)
        sys.stderr.write(f"参数错误：{message}\n")
        sys.exit(EXIT_USAGE)


def month_arg(value: str) -> str:
    """YYYY-MM with a real month."""
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise argparse.ArgumentTypeError(f"“{value}”不是有效的月份，应写作 YYYY-MM，例如 2024-05")
    return value.strip()


def db_url(value: str | None) -> str:
    """--db, then DATABASE_URL, then the embedded SQLite file."""
    from datasets.config import load_settings

    return value or os.environ.get("DATABASE_URL") or load_settings().url


def measured_period(cover: Coverage, period: Period) -> Period:
    """The months a CLI command measures: a quarter or year in progress to date (datasets/coverage.py);
    a partial month's note goes to standard error (standard output stays the table or the message)."""
    period = cover.measured(Period(period.first, period.last))
    if note := cover.banner(period):
        print(f"注意：{period.label}数据未报齐，{note}", file=sys.stderr)
    return period
