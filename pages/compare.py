"""区县对比: chosen indicators across chosen districts against the target and the city value, a
district × indicator heatmap of scores, and drill-down district → departments → items → cases."""

import streamlit as st

from metrics import alerts, charts, comparison, drill
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _map as district_map
from pages import _shared as shared

ALL_DEPARTMENTS, ALL_ITEMS = "（全部部门）", "（全部事项）"

ui.gate(catalog.PAGE_COMPARE)
ctx = shared.current()
period = ctx.period

st.title(f"区县对比 · {period.label}")
st.caption("柱形为各区县实际值，颜色为该值按目标值和底线值折算的得分等级（见图例）；绿色实线为目标值，"
           "灰色虚线为全市值；鼠标悬停可查看得分、分子和分母。"
           "在左侧选择指标和区县（不选区县即全部区县）。")

values = comparison.district_values(ctx.comps, period, ctx.settings, ctx.scope, ctx.indicators)
chart_columns = st.columns(2)
for n, indicator_id in enumerate(ctx.indicators):
    with chart_columns[n % 2]:
        shared.chart(charts.compare_chart(values, indicator_id, ctx.districts_all, ctx.settings))
with st.expander("查看数据表"):
    shared.table(comparison.compare_table(values), key="compare_values")

st.subheader("区县地图")
district_map.map_block(ctx, "compare_map", open_compare=False)

st.subheader("得分热力图")
st.caption("每格为该区县该指标的得分（0–100，按目标值和底线值折算），颜色为得分等级，与各柱形图一致；悬停可查看实际值、分子和分母。")
show_all = st.toggle("显示全部指标", value=True, key="heat_all")
scores = comparison.score_long(ctx.ranking(), None if show_all else ctx.indicators, ctx.scope)
shared.chart(charts.heatmap_chart(scores))

st.subheader("逐级下钻：区县 → 部门 → 事项 → 办件")
with_data = comparison.districts_with_data(ctx.comps, period, ctx.shown_districts)
if st.session_state.get("drill_district") not in ctx.shown_districts and with_data:
    st.session_state["drill_district"] = with_data[0]  # start where there is something to see
district = st.selectbox("区县", ctx.shown_districts, key="drill_district",
                        format_func=lambda d: d if d in with_data else f"{d}（本期无数据）")
st.markdown(f"**{shared.plain(district)}** 各部门（{period.label}）")
shared.table(drill.department_table(ctx.comps, period, district, ctx.indicators), key="drill_departments")

department_choice = st.selectbox(
    "部门", [ALL_DEPARTMENTS, *drill.departments(ctx.comps, period, district)], key="drill_department",
    format_func=lambda d: d or "（未填写部门）",
)
department = None if department_choice == ALL_DEPARTMENTS else department_choice

detail, parts = ctx.district_drill(district)
item_indicators = drill.item_level_indicators(ctx.indicators)
items = drill.item_table(parts, detail, period, district, department, item_indicators)
st.markdown("各事项" + ("" if department is None else f"（{shared.plain(department or '未填写部门')}）"))
if not item_indicators:
    st.info("所选指标没有事项层级的数据（如 12345 热线指标），请在左侧加选办件、事项或好差评类指标。")
shared.table(items, key="drill_items")

names = drill.item_options(items)
item_choice = st.selectbox("事项", [ALL_ITEMS, *names], key="drill_item", format_func=lambda c: names.get(c, c))
item_code = None if item_choice == ALL_ITEMS else item_choice

st.markdown("数字背后的办件和评价")
# Alert list → widget key of its table.
shown = {alerts.OVERDUE_OPEN: "overdue", alerts.BAD_ALL: "bad", alerts.RED_CARDS: "red"}
tabs = st.tabs([alerts.LISTS[a].title for a in shown])
for tab, (alert_id, key) in zip(tabs, shown.items(), strict=True):
    frame = alerts.alert_list(detail, alert_id, period, [district], department, item_code)
    with tab:
        st.caption(f"{alerts.LISTS[alert_id].description} 共 {frame.height} 条。")
        shared.table(frame, key=f"drill_list_{key}")
