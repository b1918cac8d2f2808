"""Problem lists for people: a Polars frame for the upload page and an .xlsx report."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

import polars as pl

from datasets.common import safe_export
from datasets.common.safe_export import neutralize
from datasets.intake.parsed import ERROR, WARNING, Problem

COLUMNS = ("严重程度", "行号", "列名", "值", "规则", "说明")
SUMMARY_COLUMNS = ("严重程度", "规则", "数量")

__all__ = ["neutralize"]  # re-exported from datasets/common/safe_export.py


def problems_frame(problems: Iterable[Problem]) -> pl.DataFrame:
    """One row per problem with Chinese columns: 严重程度, 行号, 列名, 值, 规则 (the rule's Chinese name), 说明."""
    problems = list(problems)
    return pl.DataFrame(
        {
            "严重程度": [p.severity for p in problems],
            "行号": [p.row for p in problems],
            "列名": [p.column for p in problems],
            "值": [p.value for p in problems],
            "规则": [p.rule_name for p in problems],
            "说明": [p.message for p in problems],
        },
        schema={
            "严重程度": pl.String,
            "行号": pl.Int64,
            "列名": pl.String,
            "值": pl.String,
            "规则": pl.String,
            "说明": pl.String,
        },
    )


def rule_counts(problems: Iterable[Problem], counts: Mapping[str, int] | None = None) -> pl.DataFrame:
    """Problems per rule (errors first). ``counts`` (rule -> n) overrides the listed numbers, for
    validations that list only the first problems of a rule."""
    names: dict[str, tuple[str, str]] = {}
    listed: dict[str, int] = {}
    for p in problems:
        if p.rule not in names or p.severity == ERROR:
            names[p.rule] = (p.severity, p.rule_name)
        listed[p.rule] = listed.get(p.rule, 0) + 1
    totals = {rule: (counts or {}).get(rule, n) for rule, n in listed.items()}
    rows = sorted(
        ((names[r][0], r, names[r][1], n) for r, n in totals.items()),
        key=lambda row: (row[0] != ERROR, -row[3], row[1]),
    )
    # Users read the Chinese rule name only; the id stays in the stored batch summary and the suites.
    return pl.DataFrame(
        [(severity, rule_name, n) for severity, _rule, rule_name, n in rows],
        schema={"严重程度": pl.String, "规则": pl.String, "数量": pl.Int64}, orient="row",
    )


def write_report_xlsx(
    problems: Iterable[Problem],
    path_or_buffer: str | Path | BinaryIO,
    *,
    counts: Mapping[str, int] | None = None,
    file_name: str | None = None,
) -> None:
    """Write sheet 问题清单 (one row per problem) and 规则汇总 (counts per rule).

    Every text cell is written as a string, and text starting with = + - @ gets a leading
    apostrophe, so nothing a user typed can run as a formula.
    """
    problems = list(problems)
    target = path_or_buffer
    buffer = io.BytesIO() if not isinstance(target, (str, Path)) else None
    workbook = safe_export.workbook(target if buffer is None else buffer)
    try:
        bold = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        error_fmt = workbook.add_format({"font_color": "#C00000"})
        warning_fmt = workbook.add_format({"font_color": "#9C5700"})
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})

        sheet = workbook.add_worksheet("问题清单")
        start = 0
        if file_name:
            sheet.write_string(0, 0, "文件：")
            safe_export.write_text(sheet, 0, 1, file_name)
            start = 1
        for c, name in enumerate(COLUMNS):
            sheet.write_string(start, c, name, bold)
        for r, p in enumerate(problems, start=start + 1):
            sheet.write_string(r, 0, p.severity, error_fmt if p.severity == ERROR else warning_fmt)
            if p.row is not None:
                sheet.write_number(r, 1, p.row)
            for c, text in ((2, p.column), (3, p.value), (4, p.rule_name), (5, p.message)):
                if text is not None and text != "":
                    safe_export.write_text(sheet, r, c, text, wrap if c == 5 else None)
        sheet.set_column(0, 0, 8)
        sheet.set_column(1, 1, 8)
        sheet.set_column(2, 3, 18)
        sheet.set_column(4, 4, 18)
        sheet.set_column(5, 5, 70)
        sheet.freeze_panes(start + 1, 0)
        if problems:
            sheet.autofilter(start, 0, start + len(problems), len(COLUMNS) - 1)

        summary = workbook.add_worksheet("规则汇总")
        for c, name in enumerate(SUMMARY_COLUMNS):
            summary.write_string(0, c, name, bold)
        table = rule_counts(problems, counts)
        for r, (severity, rule_name, n) in enumerate(table.iter_rows(), start=1):
            summary.write_string(r, 0, severity, error_fmt if severity == ERROR else warning_fmt)
            safe_export.write_text(summary, r, 1, rule_name)
            summary.write_number(r, 2, n)
        total_row = table.height + 1
        summary.write_string(total_row, 0, "合计", bold)
        summary.write_string(total_row, 1, f"错误 {_total(table, ERROR)} 处，警告 {_total(table, WARNING)} 处")
        summary.write_number(total_row, 2, int(table["数量"].sum()) if table.height else 0)
        summary.set_column(0, 0, 10)
        summary.set_column(1, 1, 36)
        summary.set_column(2, 2, 10)
    finally:
        workbook.close()
    if buffer is not None:
        target.write(buffer.getvalue())  # type: ignore[union-attr]


def _total(table: pl.DataFrame, severity: str) -> int:
    return int(table.filter(pl.col("严重程度") == severity)["数量"].sum()) if table.height else 0


def report_bytes(problems: Iterable[Problem], *, counts: Mapping[str, int] | None = None,
                 file_name: str | None = None) -> bytes:
    """The .xlsx report as bytes (for a download button)."""
    buffer = io.BytesIO()
    write_report_xlsx(problems, buffer, counts=counts, file_name=file_name)
    return buffer.getvalue()


def format_problem(p: Problem) -> str:
    """One line for a terminal: 第 12 行［受理时间］错误：…"""
    where = f"第 {p.row} 行" if p.row is not None else "文件"
    column = f"［{p.column}］" if p.column else ""
    return f"{where}{column}{p.severity}：{p.message}"
