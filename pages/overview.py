"""总览 (leaders): the index and key indicators with 环比/同比, the district ranking with each
district's strongest and weakest group, the index trend,
the biggest movers and the alerts, each a click away from its list."""

import streamlit as st

from datasets.operations import admin as actions
from metrics import alerts, charts, formatting, overview
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _map as district_map
from pages import _shared as shared

engine, app, user = ui.gate(catalog.PAGE_OVERVIEW)
ctx = shared.current()
period = ctx.period
scope = shared.plain(formatting.scope_label(ctx.districts, ctx.districts_all))

st.title(f"总览 · {period.label}")
st.caption(f"范围：{scope}　环比对照：{period.previous().label}　同比对照：{period.year_ago().label}")

cards = overview.overview_cards(ctx.comps, period, ctx.settings, ctx.scope, ctx.indicators)
rank = ctx.ranking()
if notes := overview.unranked_notes(rank):
    st.warning(shared.plain(f"{len(notes)} 个区县本期数据不全，未参与排名：" + "；".join(notes)))
# The index and the ranking first (on a phone the columns stack: index, ranking, then the cards).
index_col, rank_col = st.columns([2, 3])
with index_col:
    shared.metric_card(cards[0])
    st.subheader("变化最大的区县")
    st.caption(f"效能指数与{period.previous().label}相比变化最大的区县")
    shared.table(overview.movers(rank, ctx.ranking(period.previous())), key="overview_movers")
with rank_col:
    st.subheader("区县效能指数排名")
    shared.chart(charts.ranking_chart(rank, ctx.districts_all))
    with st.expander("查看排名表"):
        shared.table(overview.ranking_brief(rank), key="overview_rank")
shared.metric_row(cards[1:], per_row=4)

st.subheader("各区县强项与弱项")
st.caption("按排名列出每个区县得分最高（强项）和最低（弱项）的指标分组及得分（分组得分为组内指标得分的加权平均），"
           "以及得分最低的指标；得分相同（保留一位小数）时写“并列”。")
shared.table(overview.strengths(rank), key="overview_strengths")

st.subheader("区县地图")
district_map.map_block(ctx, "overview_map", open_compare=True)

st.subheader("效能指数走势")
months = overview.trend_months(period, ctx.months)
trend = overview.index_trend(ctx.comps, ctx.settings, months, ctx.scope)
shared.chart(charts.index_trend_chart(trend, ctx.districts_all, highlight=ctx.districts))
st.caption(charts.TREND_NOTE)

st.subheader("预警")
st.caption(f"{scope} · {period.label}")
counts = alerts.alert_counts_from_components(ctx.comps, period, ctx.scope)
alert_cards = st.container()
# The alert rows of each district are prepared with its indicators (metrics/service.py), so the
# lists cost a read of a few small files.
lists = {a: alerts.alert_list(ctx.detail(), a, period, ctx.scope) for a in alerts.ALERTS}
counts[alerts.OVERDUE_OPEN] = lists[alerts.OVERDUE_OPEN].height
columns = alert_cards.columns(len(alerts.ALERTS))
for col, alert in zip(columns, alerts.ALERTS.values(), strict=True):
    count = counts.get(alert.id)
    col.metric(alert.title, formatting.NULL_TEXT if count is None else f"{count} {alert.unit}", help=alert.description)
for alert in alerts.ALERTS.values():
    frame = lists[alert.id]
    with st.expander(f"{alert.title}清单（{frame.height} {alert.unit}）"):
        st.caption(alert.description)
        shared.table(frame, key=f"alert_{alert.id}")
        if user is not None:  # visitors (anonymous viewing) see the lists but do not download them
            file_name = f"{alert.title}_{shared.file_period(period)}.csv"
            st.download_button("下载清单（CSV）", shared.csv_bytes(frame, ctx.banner()), file_name=file_name, mime="text/csv",
                               key=f"dl_{alert.id}", on_click=actions.record_download,
                               args=(engine, user, f"{file_name}（{frame.height} {alert.unit}）", catalog.PAGE_OVERVIEW))
