"""Ranked tables for evaluators: CSV (UTF-8 with BOM) and Excel with formulas and settings.

Every text cell that a spreadsheet would run as a formula (= + - @) is neutralised.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import BinaryIO

import polars as pl
from sqlalchemy.engine import Engine

from datasets.common import safe_export
from datasets.common.safe_export import neutralize, neutralize_frame
from datasets.domain.periods import Period
from datasets.domain.vocabulary import readings
from metrics.formatting import NO_CHANGE, rank_change_labels, score_columns, shown_column
from metrics.registry import GROUPS, INDICATORS
from metrics.scoring import ScoringSettings
from metrics.units import INDEX_UNIT, NULL_TEXT, PERCENT

__all__ = ["neutralize", "neutralize_frame"]  # re-exported: they live in datasets/common/safe_export.py

# Number formats of cells that are not indicator values (those take their unit's Excel format).
# A rank change of 0 reads 持平, as on the pages and in the CSV (metrics.formatting.rank_change_label).
INT_FORMAT, DEC_FORMAT, SIGNED_FORMAT = "#,##0", "#,##0.00", f'+0;-0;"{NO_CHANGE}"'
# How a number reads in each format, to size the column.
_SHOWN = {PERCENT.excel_format: "{:.2%}", INT_FORMAT: "{:,}", DEC_FORMAT: "{:,.2f}", SIGNED_FORMAT: "{:+d}",
          INDEX_UNIT.excel_format: "{:,.1f}"}


def rank_export_frame(rank: pl.DataFrame) -> pl.DataFrame:
    """The CLI's ranked table from scoring.ranking(): district, rank, rank change, index, group scores,
    every indicator value, and why a district is not ranked (ranked districts first, then 未排名)."""
    return neutralize_frame(
        rank.select(
            "district",
            "rank",
            "rank_change",
            "index",
            *[f"group_{g}" for g in GROUPS],
            *[i.id for i in INDICATORS],
            "unranked_reason",  # last: the columns before it are a contract evaluators' scripts read
        )
    )


def whole_numbers(frame: pl.DataFrame, columns: list[str] | None = None) -> pl.DataFrame:
    """Float ``columns`` (default: all) whose values are all whole numbers — counts, numerators,
    denominators — as integers, so that CSV and Excel show 2461 rather than 2461.0."""
    casts = []
    for name, dtype in frame.schema.items():
        if not dtype.is_float() or (columns is not None and name not in columns):
            continue
        values = frame[name].drop_nulls()
        if values.len() and bool((values == values.round(0)).all()) and bool((values.abs() < 2**53).all()):
            casts.append(pl.col(name).cast(pl.Int64))
    return frame.with_columns(casts) if casts else frame


def rank_table_chinese(rank: pl.DataFrame) -> pl.DataFrame:
    """scoring.ranking() with Chinese headers: value, numerator and denominator of every indicator;
    districts without the data the index needs follow as 未排名 with the reason."""
    table = rank
    cols: list[pl.Expr] = [
        pl.col("district").alias("区县"),
        pl.col("rank").alias("排名"),
        pl.col("rank_change").alias("排名变化"),
        pl.when(pl.col("ranked")).then(pl.lit("")).otherwise(pl.lit("未排名：") + pl.col("unranked_reason"))
        .alias("未排名原因"),
        # Rounded once to the one decimal every page shows (51.946 → 51.9), not to two.
        shown_column(pl.col("index")).alias("效能指数"),
        *[shown_column(pl.col(f"group_{g}")).alias(f"{name}得分") for g, name in GROUPS.items()],
    ]
    for i in INDICATORS:
        cols += [
            pl.col(i.id).alias(f"{i.name}"),
            pl.col(f"{i.id}__num").alias(f"{i.name}·分子"),
            pl.col(f"{i.id}__den").alias(f"{i.name}·分母"),
        ]
        if i.aside is not None and f"{i.id}__aside" in table.columns:  # e.g. 差评整改率·整改期内差评
            cols.append(pl.col(f"{i.id}__aside").alias(f"{i.name}·{i.aside.label}"))
    frame = neutralize_frame(table.select(cols))
    # Indicator values stay decimals even when whole (an average of 2 工作日 reads 2.00).
    asides = tuple(f"·{i.aside.label}" for i in INDICATORS if i.aside is not None)
    return whole_numbers(frame, [c for c in frame.columns if c.endswith(("·分子", "·分母", *asides))])


def _shown_digits(unit_scale: float, decimals: int) -> int:
    """Decimals of a stored value that its unit shows (a percentage with 2 decimals: 4 of the fraction)."""
    digits = 0
    while unit_scale >= 10:
        unit_scale, digits = unit_scale / 10, digits + 1
    return decimals + digits


def rank_csv_frame(rank: pl.DataFrame) -> pl.DataFrame:
    """rank_table_chinese() as the page and the workbook show it: values rounded as their unit shows
    them (0.9763 for 97.63 %, not 0.9763157894736842), rank changes as +2 / -1 / 持平."""
    table = rank_table_chinese(rank)
    rounded = [pl.col(i.name).round(_shown_digits(i.unit.scale, i.unit.decimals)) for i in INDICATORS]
    return rank_change_labels(table.with_columns(rounded))


def rank_csv_bytes(rank: pl.DataFrame, note: str | None = None) -> bytes:
    """UTF-8 with BOM so that Excel opens the Chinese headers correctly; an empty cell (not ranked, no
    data) reads — as in the workbook. ``note``: for a partial month (datasets/storage/coverage.py), a first line
    saying how far the data goes, before the header."""
    return csv_with_note(rank_csv_frame(rank), note, null_value=NULL_TEXT)


def table_csv_bytes(frame: pl.DataFrame, note: str | None = None) -> bytes:
    """A page's table (an alert list) as CSV, its numbers as the page shows them: decimals rounded to
    the two the table shows (3.33 工作日, not 3.3333333333333335), whole numbers without a decimal
    point, timestamps as 2026-12-07 13:48:51; ``note`` first (see ``csv_with_note``)."""
    rounded = frame.with_columns(pl.col(c).round(2) for c, dtype in frame.schema.items() if dtype.is_float())
    return csv_with_note(whole_numbers(rounded), note)


def csv_with_note(frame: pl.DataFrame, note: str | None, *, null_value: str = "") -> bytes:
    """safe_export.csv_bytes, with ``note`` (a partial month's 数据截至 … line) as the first line."""
    body = safe_export.csv_bytes(frame, null_value=null_value)
    if not note:
        return body
    import csv

    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([neutralize(note)])
    return (safe_export.BOM + line.getvalue()).encode("utf-8") + body.removeprefix(safe_export.BOM.encode("utf-8"))


def text_width(text: object) -> int:
    """Display width in Excel character units: a Chinese character counts two."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in str(text))


# Headers of the 指标说明 sheet's rule table; the settings' own keys are English identifiers.
INDEX_RULE = ("得分 = (实际值 − 底线值) ÷ (目标值 − 底线值) × 100，低于 0 记 0、高于 100 记 100；"
              "分组得分和效能指数为已有得分按权重的加权平均（没有数据的指标不参与）")


def write_rank_xlsx(
    rank: pl.DataFrame,
    period: Period,
    settings: ScoringSettings,
    out: str | Path | BinaryIO,
    engine: Engine | None = None,
    imported_at: dt.datetime | None = None,
    note: str | None = None,
) -> None:
    """Sheet 排名: frozen header, autofilter, widths that fit, whole numbers as whole numbers, rates as
    percentages, rank changes with a sign; sheet 指标说明: formulas and settings used, all in Chinese.
    ``note``: for a partial month (datasets/storage/coverage.py), written above the table on the first sheet."""
    from metrics.reference import rules_table

    table = rank_table_chinese(rank)
    if imported_at is None and engine is not None:
        from datasets.storage import store

        history = store.batch_history(engine)
        imported_at = history["created_at"].max() if history.height else None
    book = safe_export.workbook(out, in_memory=True)
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"})
    codes = dict.fromkeys([*(i.unit.excel_format for i in INDICATORS), INDEX_UNIT.excel_format, INT_FORMAT,
                           DEC_FORMAT, SIGNED_FORMAT])
    formats = {code: book.add_format({"num_format": code}) for code in codes}
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    sheet = book.add_worksheet("排名")
    top = 1 if note else 0  # the header's row
    if note:
        safe_export.write_text(sheet, 0, 0, f"{period.label}数据未报齐。{note}")
    value_formats = {i.name: i.unit.excel_format for i in INDICATORS}
    value_formats |= {c: INDEX_UNIT.excel_format for c in score_columns(table.columns) if c not in value_formats}
    for c, name in enumerate(table.columns):
        sheet.write_string(top, c, name, head)
        dtype = table.schema[name]
        key = (SIGNED_FORMAT if name == "排名变化" else value_formats[name] if name in value_formats
               else INT_FORMAT if dtype.is_integer() else DEC_FORMAT)
        fmt = formats[key]
        widest = 0
        for r, value in enumerate(table[name].to_list(), start=top + 1):
            if value is None:
                sheet.write_string(r, c, NULL_TEXT)
                shown = NULL_TEXT
            elif isinstance(value, str):
                safe_export.write_text(sheet, r, c, value)
                shown = value
            else:
                sheet.write_number(r, c, value, fmt)
                shown = NO_CHANGE if key == SIGNED_FORMAT and value == 0 else _SHOWN[key].format(value)
            widest = max(widest, text_width(shown))
        # Headers wrap onto up to three lines; values never get cut.
        sheet.set_column(c, c, max(widest + 2, min(text_width(name) + 2, 18) if c else text_width(name) + 2, 8))
    sheet.freeze_panes(top + 1, 1)
    sheet.set_row(top, 48)
    sheet.autofilter(top, 0, top + max(table.height, 1), len(table.columns) - 1)

    info = book.add_worksheet("指标说明")
    info.write_row(0, 0, ["统计时段", period.label, f"{period.first} 至 {period.last}"], head)
    info.write_row(1, 0, ["数据导入时间", _timestamp(imported_at)])
    info.write_row(2, 0, ["导出时间", _timestamp(dt.datetime.now())])
    info.write_row(3, 0, ["指数算法", INDEX_RULE])
    headers = ["指标", "分组", "方向", "单位", "公式", "口径说明", "数据来源", "权重", "目标值", "底线值"]
    info.write_row(5, 0, headers, head)
    for r, i in enumerate(INDICATORS, start=6):
        t = settings.indicators[i.id]
        info.write_row(r, 0, [i.name, f"{i.group} {i.group_name}", i.arrow, i.unit.name], None)
        for c, text in enumerate((i.formula, i.describe(settings.rules), i.data_source), start=4):
            info.write_string(r, c, str(text), wrap)
        fmt = formats[i.unit.excel_format]
        info.write_number(r, 7, t.weight, formats[DEC_FORMAT])
        info.write_number(r, 8, t.target, fmt)
        info.write_number(r, 9, t.floor, fmt)
    info.autofilter(5, 0, 5 + len(INDICATORS), len(headers) - 1)
    r = 6 + len(INDICATORS) + 1
    rules = rules_table(settings)
    info.write_row(r, 0, ["规则", "取值", "说明"], head)
    for k, row in enumerate(rules.iter_rows(named=True), start=r + 1):
        info.write_string(k, 0, str(row["规则"]))
        value = row["取值"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            info.write_string(k, 1, "是" if value is True else "否" if value is False else str(value))
        else:
            info.write_number(k, 1, value, formats[INT_FORMAT if float(value).is_integer() else DEC_FORMAT])
        info.write_string(k, 2, str(row["说明"]), wrap)
    r = k + 2
    info.write_row(r, 0, ["统计口径", "规则"], head)
    for k, (topic, text) in enumerate(readings(settings.rules), start=r + 1):
        info.write_string(k, 0, topic)
        info.write_string(k, 1, text, wrap)
    info.set_column(0, 0, max(text_width(i.name) for i in INDICATORS) + 2)
    info.set_column(1, 1, 16)
    info.set_column(2, 3, 8)
    info.set_column(4, 6, 40)
    info.set_column(7, 9, 10)
    book.close()


def _timestamp(value: object) -> str:
    """A time as the pages and the CSV files write it (2026-12-07 13:48:51: no T, no microseconds)."""
    if isinstance(value, dt.datetime):
        return value.strftime(safe_export.DATETIME_FORMAT)
    return NULL_TEXT if value is None else str(value)


def rank_xlsx_bytes(
    rank: pl.DataFrame, period: Period, settings: ScoringSettings, engine: Engine | None = None,
    note: str | None = None,
) -> bytes:
    buf = io.BytesIO()
    write_rank_xlsx(rank, period, settings, buf, engine=engine, note=note)
    return buf.getvalue()
