"""排名下载 (evaluators): the ranked table — rank, rank change, index, group scores and every
indicator's value, numerator and denominator — with .xlsx and CSV downloads."""

import streamlit as st

from metrics.exports import rank_csv_bytes, rank_table_chinese, rank_xlsx_bytes
from pages import _shared as shared

ctx = shared.current()
period = ctx.period

st.title(f"排名下载 · {period.label}")
st.caption(
    f"全部 {len(ctx.districts_all)} 个区县按政务服务效能指数排名（并列同名次，下一名次顺延）；排名变化与"
    f"{period.previous().label}相比，正数为上升。每项指标列出实际值、分子和分母，空值（分母为 0）显示为“—”。"
)

table = rank_table_chinese(ctx.comps, period, ctx.settings)
name = f"效能指数排名_{shared.file_period(period)}"
c1, c2, _ = st.columns([1, 1, 3])
c1.download_button(
    "下载 Excel（.xlsx）",
    rank_xlsx_bytes(ctx.comps, period, ctx.settings, ctx.engine),
    file_name=f"{name}.xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    key="dl_rank_xlsx",
    type="primary",
)
c2.download_button("下载 CSV", rank_csv_bytes(ctx.comps, period, ctx.settings), file_name=f"{name}.csv",
                   mime="text/csv", key="dl_rank_csv")
shared.table(table, key="rank_table", height=min(38 * (table.height + 1) + 4, 800))
