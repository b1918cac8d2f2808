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

from datasets import safe_export
from datasets.safe_export import neutralize, neutralize_frame
from metrics.periods import Period
from metrics.registry import GROUPS, INDICATORS, PERCENT
from metrics.scoring import ScoringSettings
from metrics.vocabulary import readings

__all__ = ["neutralize", "neutralize_frame"]  # re-exported: they live in datasets/safe_export.py


def rank_export_frame(rank: pl.DataFrame) -> pl.DataFrame:
    """The CLI's ranked table from scoring.ranking(): district, rank, rank change, unranked reason,
    index, group scores, every indicator value (ranked districts first, then the 未排名 ones)."""
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


def rank_table_chinese(rank: pl.DataFrame) -> pl.DataFrame:
    """scoring.ranking() with Chinese headers: value, numerator and denominator of every indicator;
    districts without the data the index needs follow as 未排名 with the reason."""
    cols: list[pl.Expr] = [
        pl.col("district").alias("区县"),
        pl.col("rank").alias("排名"),
        pl.col("rank_change").alias("排名变化"),
        pl.when(pl.col("ranked")).then(pl.lit("")).otherwise(pl.lit("未排名：") + pl.col("unranked_reason"))
        .alias("未排名原因"),
        pl.col("index").round(2).alias("效能指数"),
        *[pl.col(f"group_{g}").round(2).alias(f"{name}得分") for g, name in GROUPS.items()],
    ]
    for i in INDICATORS:
        cols += [
            pl.col(i.id).alias(f"{i.name}"),
            pl.col(f"{i.id}__num").alias(f"{i.name}·分子"),
            pl.col(f"{i.id}__den").alias(f"{i.name}·分母"),
        ]
    return neutralize_frame(rank.select(cols))


def rank_csv_bytes(rank: pl.DataFrame) -> bytes:
    """UTF-8 with BOM so that Excel opens the Chinese headers correctly."""
    return safe_export.csv_bytes(rank_table_chinese(rank))


def write_rank_xlsx(
    rank: pl.DataFrame,
    period: Period,
    settings: ScoringSettings,
    out: str | Path | BinaryIO,
    engine: Engine | None = None,
    imported_at: dt.datetime | None = None,
) -> None:
    """Sheet 排名: frozen header, percentages formatted; sheet 指标说明: formulas and settings used."""
    table = rank_table_chinese(rank)
    if imported_at is None and engine is not None:
        from datasets import store

        history = store.batch_history(engine)
        imported_at = history["created_at"].max() if history.height else None
    book = safe_export.workbook(out, in_memory=True)
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"})
    pct = book.add_format({"num_format": "0.00%"})
    num = book.add_format({"num_format": "#,##0.##"})
    sheet = book.add_worksheet("排名")
    percent_cols = {i.name for i in INDICATORS if i.unit == PERCENT}
    for c, name in enumerate(table.columns):
        sheet.write_string(0, c, name, head)
        fmt = pct if name in percent_cols else num if table.schema[name] != pl.String else None
        for r, value in enumerate(table[name].to_list(), start=1):
            if value is None:
                sheet.write_string(r, c, "—")
            elif isinstance(value, str):
                safe_export.write_text(sheet, r, c, value)
            else:
                sheet.write_number(r, c, value, fmt)
        sheet.set_column(c, c, 10 if c else 12)
    sheet.freeze_panes(1, 1)
    sheet.set_row(0, 48)

    info = book.add_worksheet("指标说明")
    info.write_row(0, 0, ["统计时段", period.label, f"{period.first} 至 {period.last}"], head)
    info.write_row(1, 0, ["数据导入时间", str(imported_at or "—")])
    info.write_row(2, 0, ["导出时间", dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")])
    info.write_row(3, 0, ["指数算法", "得分 = clamp((实际值 − 底线值) ÷ (目标值 − 底线值), 0, 1) × 100；分组得分和效能指数为已有得分的加权平均"])
    headers = ["指标", "编号", "分组", "方向", "单位", "公式", "口径说明", "数据来源", "权重", "目标值", "底线值"]
    info.write_row(5, 0, headers, head)
    for r, i in enumerate(INDICATORS, start=6):
        t = settings.indicators[i.id]
        info.write_row(
            r,
            0,
            [i.name, i.id, f"{i.group} {i.group_name}", i.arrow, i.unit, i.formula, i.describe(settings.rules),
             i.data_source],
        )
        fmt = pct if i.unit == PERCENT else num
        info.write_number(r, 8, t.weight)
        info.write_number(r, 9, t.target, fmt)
        info.write_number(r, 10, t.floor, fmt)
    r = 6 + len(INDICATORS) + 1
    info.write_row(r, 0, ["规则", "取值", "说明"], head)
    titles = settings.rules.titles()
    for k, (name, value) in enumerate(settings.rules.model_dump().items(), start=r + 1):
        shown = ("是" if value else "否") if isinstance(value, bool) else value
        info.write_row(k, 0, [titles[name][0], shown, titles[name][1]])
    r = k + 2
    info.write_row(r, 0, ["统计口径", "规则"], head)
    for k, (topic, text) in enumerate(readings(settings.rules), start=r + 1):
        info.write_row(k, 0, [topic, text])
    info.set_column(0, 0, 22)
    info.set_column(5, 7, 40)
    book.close()


def rank_xlsx_bytes(
    rank: pl.DataFrame, period: Period, settings: ScoringSettings, engine: Engine | None = None
) -> bytes:
    buf = io.BytesIO()
    write_rank_xlsx(rank, period, settings, buf, engine=engine)
    return buf.getvalue()
