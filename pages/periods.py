"""时段对比: any two periods side by side (环比, 同比 or a period of one's choice) and the monthly
trends of the chosen indicators for the chosen districts."""

import streamlit as st

from datasets.domain import periods
from datasets.domain.periods import parse_period
from metrics import charts, comparison, formatting, overview
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

PREVIOUS, YEAR_AGO, OTHER = "环比（上一期）", "同比（去年同期）", "自选时段"

ui.gate(catalog.PAGE_PERIODS)
ctx = shared.current()
period = ctx.period

st.title(f"时段对比 · {period.label}")

mode = st.radio("对比对象", (PREVIOUS, YEAR_AGO, OTHER), horizontal=True, key="vs_mode")
other = period.previous() if mode == PREVIOUS else period.year_ago()
if mode == OTHER:
    text = st.text_input("对比时段", value=period.year_ago().key, key="vs_text",
                         help="写作 2024-05（月）、2024-Q2（季度）、2024（年度）或 2024-01~2024-06（任意月份区间）")
    try:
        other = parse_period(text)
        if ctx.coverage is not None:  # a quarter or year in progress to date, as in the sidebar
            other = ctx.coverage.measured(other)
    except ValueError as exc:
        st.error(f"对比时段无效：{exc}")
        st.stop()
    if not periods.period_has_data(other, ctx.months):
        st.warning(f"{other.label}没有数据，对比值显示为“—”。")
st.caption(f"本期：{period.label}　对比期：{other.label}　范围：{shared.plain(formatting.scope_label(ctx.districts, ctx.districts_all))}")

# Every indicator, for the change table (the largest changes of any indicator show; the chosen ones first).
compared = comparison.period_comparison(ctx.comps, period, other, ctx.scope, comparison.ALL_INDICATORS)
chart_columns = st.columns(2)
for n, indicator_id in enumerate(ctx.indicators):
    with chart_columns[n % 2]:
        shared.chart(charts.period_compare_chart(compared, indicator_id, ctx.districts_all, ctx.settings))
st.markdown("变化明细：有变化的在前，按变化幅度从大到小排列，左侧所选指标排在其他指标之前；持平的排在最后。"
            "“改善/退步”已按指标方向判断（↓ 指标下降为改善）。")
shared.table(comparison.period_change_table(compared, ctx.indicators), key="period_changes")

st.subheader("月度走势")
st.caption(charts.TREND_NOTE)
length = st.select_slider("走势月份数", options=[6, 12, 18, 24, 36], value=12, key="trend_len")
months = overview.trend_months(period, ctx.months, length)
trend = comparison.monthly_values(ctx.comps, months, ctx.scope, ctx.indicators)
trend_columns = st.columns(2)
for n, indicator_id in enumerate(ctx.indicators):
    with trend_columns[n % 2]:
        shared.chart(charts.trend_chart(trend, indicator_id, ctx.districts_all, highlight=ctx.districts))
