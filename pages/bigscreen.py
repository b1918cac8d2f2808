"""大屏展示 (leaders, administrators): the command-centre screen, 1920 × 1080, dark, no sidebar — the
map in the centre, the index and key indicators with 环比 on the left, the ranking and the latest
alerts on the right, the as-of date on top. Always the latest month and the whole city.

It refreshes itself: a fragment polls the store's data version (one small query) every
``POLL_SECONDS`` and reruns the page when an import or a setting changed it. It also reruns the whole
page every ``KEEP_ALIVE_MINUTES`` (or half the idle timeout, if shorter), which keeps the signed-in
session from going idle on a screen that nobody touches, and each run slides the session's absolute
end forward (pages/_session.py: keep_displaying), so that the screen stays signed in for days.
"""

import time
from datetime import timedelta

import streamlit as st

from datasets.domain.periods import Period
from datasets.storage import store
from metrics import bigscreen, charts, maps, overview
from metrics.formatting import INDEX
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _map as district_map
from pages import _session as session
from pages import _shared as shared

POLL_SECONDS = 30
KEEP_ALIVE_MINUTES = 10

engine, app, user = ui.gate(catalog.PAGE_BIGSCREEN)
# A screen shows this page for days: its session's absolute end slides while it is shown.
session.keep_displaying(st.session_state, engine, max_hours=app.session_max_hours,
                        idle_minutes=app.session_idle_minutes)
# A full run (which records the activity) well within the idle timeout, even when it is set short.
keep_alive_seconds = min(KEEP_ALIVE_MINUTES, app.session_idle_minutes / 2) * 60
ctx = shared.current()
period = Period(ctx.period.last, ctx.period.last)  # the default month (the latest complete one), not another page's choice

st.html(f"""<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stExpandSidebarButton"] {{ display: none !important; }}
.stApp, [data-testid="stAppViewContainer"] {{ background: {bigscreen.BACKGROUND}; color: {bigscreen.INK}; }}
.stApp h1, .stApp h2, .stApp h3, [data-testid="stMarkdownContainer"] p, [data-testid="stMetricValue"],
[data-testid="stMetricLabel"] p, [data-testid="stCaptionContainer"] {{ color: {bigscreen.INK} !important; }}
[data-testid="stAlertContainer"] {{ background: #1c2a44 !important; }}
[data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"] p {{ color: inherit !important; }}
[data-testid="stMainBlockContainer"], .block-container {{ max-width: 100% !important; padding: 1.2rem 2rem 0.5rem; }}
[data-testid="stMetricValue"] {{ font-size: 2.2rem; }}
.stApp [data-testid="stVerticalBlockBorderWrapper"] {{ border-color: #2a2f3a; }}
/* The cards' 同比 line is coloured for a light page: lighter here, to read on the dark screen. */
.stApp .stMarkdownColoredText {{ filter: brightness(1.9) saturate(1.2); }}
</style>""")

cards = overview.overview_cards(ctx.comps, period, ctx.settings, None, overview.KEY_INDICATORS)
rank = ctx.ranking(period)

title_col, asof_col = st.columns([3, 2], vertical_alignment="bottom")
title_col.markdown(f"## 政务服务效能 · {period.label}")
as_of = bigscreen.as_of_text(period, store.last_import_at(engine), ctx.coverage.as_of(period.last) if ctx.coverage else None)
asof_col.markdown(f"**{as_of}**　环比对照：{period.previous().label}")

left, centre, right = st.columns([1.2, 2, 1.1], gap="medium")
with left:
    index_card, *indicator_cards = cards
    shared.metric_card(index_card)
    pairs = st.columns(2)
    for n, card in enumerate(indicator_cards):  # compact: value and 环比 only
        pairs[n % 2].metric(card.label, card.text, delta=card.mom_text, delta_description="环比", border=True,
                            delta_color=bigscreen.delta_colour(card.key, card.mom))
with centre:
    shapes = district_map.get_shapes(ctx.url, ctx.version, tuple(ctx.districts_all), ctx.demo)
    if shapes.geometries:
        spec = district_map.get_map_spec(ctx.url, ctx.fingerprint, ctx.rules_key, ctx.version, period.key, INDEX,
                                         tuple(ctx.districts_all), ctx.demo, dark=True, height=700)
        st.vega_lite_chart(spec, width="stretch", theme=None)
    if note := maps.schematic_note(shapes):
        st.caption(note)
    if shapes.missing:
        st.caption("无边界、未画在图上的区县：" + "、".join(shared.plain(d) for d in shapes.missing))
with right:
    st.markdown("### 效能指数排名")
    st.vega_lite_chart(bigscreen.dark(charts.ranking_chart(rank, ctx.districts_all)).to_dict(validate=False),
                       width="stretch", theme=None)
    st.markdown("### 最新预警")
    for title, count, change in bigscreen.alert_rows(ctx.comps, period):
        st.metric(title, count, delta=change, delta_color="inverse", delta_description="环比")
    for row in bigscreen.alerts_by_district(rank).iter_rows(named=True):
        st.markdown(f"**{shared.plain(row['区县'])}**　红牌 {row['红牌办件']} 件　差评未按时整改 {row['差评未按时整改']} 条")
st.session_state.setdefault("_bigscreen_shown_at", time.monotonic())


@st.fragment(run_every=timedelta(seconds=POLL_SECONDS))
def _watch(version: int) -> None:
    """Rerun the page when new data was imported (or settings changed), and now and then regardless."""
    if bigscreen.needs_refresh(store.data_version(engine), version, st.session_state["_bigscreen_shown_at"],
                               time.monotonic(), keep_alive_seconds):
        st.session_state["_bigscreen_shown_at"] = time.monotonic()
        st.rerun(scope="app")


_watch(ctx.version)
