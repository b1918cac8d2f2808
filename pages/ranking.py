"""排名下载 (evaluators): the ranked table — rank, rank change, index, group scores and every
indicator's value, numerator and denominator — with .xlsx and CSV downloads for the accounts that
may download (session.may_download), each download recorded in the audit log."""

import streamlit as st

from datasets.operations import admin as actions
from metrics.exports import rank_csv_bytes, rank_table_chinese, rank_xlsx_bytes
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _session as session
from pages import _shared as shared

engine, app, user = ui.gate(catalog.PAGE_RANKING)
ctx = shared.current()
period = ctx.period

st.title(f"排名下载 · {period.label}")
st.caption(
    f"全部 {len(ctx.districts_all)} 个区县按政务服务效能指数排名（并列同名次，下一名次顺延）；排名变化与"
    f"{period.previous().label}相比，正数为上升，只比较两期都参与排名的区县。时段内缺少办件明细、好差评或事项清单过旧的"
    "区县列在最后，标为“未排名”并写明原因，不影响其他区县的名次。每项指标列出实际值、分子和分母，空值（分母为 0）显示为“—”。"
)

rank = ctx.ranking()
table = rank_table_chinese(rank)
name = f"效能指数排名_{shared.file_period(period)}"
if session.may_download(user, catalog.PAGE_RANKING):
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button(
        "下载 Excel（.xlsx）",
        rank_xlsx_bytes(rank, period, ctx.settings, ctx.engine, note=ctx.banner()),
        file_name=f"{name}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="dl_rank_xlsx",
        type="primary",
        on_click=actions.record_download,
        args=(engine, user, f"{name}.xlsx（排名表 Excel，{period.label}）", catalog.PAGE_RANKING),
    )
    c2.download_button("下载 CSV", rank_csv_bytes(rank, ctx.banner()), file_name=f"{name}.csv",
                       mime="text/csv", key="dl_rank_csv", on_click=actions.record_download,
                       args=(engine, user, f"{name}.csv（排名表 CSV，{period.label}）", catalog.PAGE_RANKING))
else:
    st.caption("下载排名表（Excel、CSV）需要“评估人员”或“管理员”角色。")
shared.table(table, key="rank_table", max_rows=None)
