"""政务服务效能评估看板 — the entry point: ``streamlit run dashboard.py``.

Creates the shared resources (engine, scoring settings, the component table keyed by the store's
data version), draws the sidebar filters (period, districts, indicators — kept in the URL so a
view can be bookmarked), builds the per-run context and runs the page chosen in the navigation.

Started with nothing configured it uses the embedded SQLite file and, when that is empty, loads the
demo city at scale 0.1 (about 100 000 办件, 10–20 seconds on first start). Started on an empty
configured database (DATABASE_URL) it shows how to begin instead.
"""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from datasets import store
from datasets.config import AppSettings, load_settings
from metrics.calendar import CalendarError
from metrics.compute import latest_month
from metrics.periods import Period, parse_period, quarter_of
from metrics.registry import BY_ID, INDICATORS
from metrics.views import (
    KEY_INDICATORS,
    MONTH,
    PERIOD_TYPES,
    QUARTER,
    YEAR,
    period_choices,
    period_has_data,
    period_type,
)
from pages import _shared as shared

OVERVIEW = st.Page("pages/overview.py", title="总览", icon=":material/dashboard:", url_path="overview", default=True)
COMPARE = st.Page("pages/compare.py", title="区县对比", icon=":material/compare_arrows:", url_path="compare")
PERIODS = st.Page("pages/periods.py", title="时段对比", icon=":material/timeline:", url_path="periods")
RANKING = st.Page("pages/ranking.py", title="排名下载", icon=":material/leaderboard:", url_path="ranking")
UPLOAD = st.Page("pages/upload.py", title="数据上传", icon=":material/upload_file:", url_path="upload")
QUALITY = st.Page("pages/quality.py", title="数据质量", icon=":material/fact_check:", url_path="quality")
REFERENCE = st.Page("pages/indicators.py", title="指标说明", icon=":material/menu_book:", url_path="indicators")
SETTINGS = st.Page("pages/settings.py", title="设置", icon=":material/settings:", url_path="settings")
START = st.Page("pages/start.py", title="开始使用", icon=":material/rocket_launch:", url_path="start", default=True)

# Every url_path is its file's name: a page that Streamlit ran straight from pages/ (before any
# st.navigation) is the same page here (see pages/_shared.py).
FULL_NAV = {
    "看板": [OVERVIEW, COMPARE, PERIODS, RANKING],
    "数据": [UPLOAD, QUALITY],
    "说明与设置": [REFERENCE, SETTINGS],
}
EMPTY_NAV = {"开始": [START], "数据": [UPLOAD], "说明与设置": [REFERENCE, SETTINGS]}
BROKEN_NAV = {"数据": [UPLOAD, QUALITY], "说明与设置": [REFERENCE, SETTINGS]}

Q_PERIOD, Q_DISTRICT, Q_INDICATOR = "period", "district", "indicator"
SEEDED = "_filters_seeded"


def _app_settings() -> AppSettings:
    try:
        return load_settings()
    except ValidationError as exc:
        st.error("部署配置有误（环境变量或 .streamlit/secrets.toml）：" + "；".join(
            f"{'.'.join(str(p) for p in e['loc'])}：{e['msg']}" for e in exc.errors()))
        st.stop()
        raise


def _connect(app: AppSettings):
    try:
        engine = shared.get_engine(app.url)
        version = store.data_version(engine)
    except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
        from sqlalchemy.engine import make_url

        try:
            shown = make_url(app.url).render_as_string(hide_password=True)
        except Exception:  # an unparsable URL is shown by its scheme only
            shown = app.url.split(":", 1)[0] + "://…"
        st.error(f"无法连接数据库 {shown}：{type(exc).__name__}。请检查 DATABASE_URL 配置及数据库服务是否可用。")
        st.stop()
        raise
    return engine, version


# --- sidebar filters (kept in the URL) ---------------------------------------------------------


def _seed_filters(months: list[str], default: str, districts_all: list[str]) -> None:
    """On a session's first run, take the filters from the URL; explain what cannot be used."""
    if st.session_state.get(SEEDED):
        return
    st.session_state[SEEDED] = True
    params = st.query_params
    seed = Period(default, default)
    raw = params.get(Q_PERIOD)
    if raw:
        try:
            wanted = parse_period(raw)
        except ValueError as exc:
            st.warning(shared.plain(f"链接中的时段参数无效：{exc}。已改为显示{seed.label}。"))
        else:
            if period_has_data(wanted, months):
                seed = wanted
            else:
                st.warning(f"链接中的时段{wanted.label}没有数据，已改为显示{seed.label}。")
    st.session_state["_seed_period"] = seed
    st.session_state["f_type"] = period_type(seed)
    wanted_districts = params.get_all(Q_DISTRICT)
    unknown = [d for d in wanted_districts if d not in districts_all]
    if unknown:
        st.warning(shared.plain("链接中的区县不存在，已忽略：" + "、".join(unknown)))
    st.session_state["f_districts"] = [d for d in wanted_districts if d in districts_all]
    wanted_inds = params.get_all(Q_INDICATOR)
    bad = [i for i in wanted_inds if i not in BY_ID]
    if bad:
        st.warning(shared.plain("链接中的指标编号无效，已忽略：" + "、".join(bad)))
    chosen = [i for i in wanted_inds if i in BY_ID]
    st.session_state["f_indicators"] = chosen or list(KEY_INDICATORS)


def _ensure(key: str, options: list[str], fallback: str) -> None:
    if st.session_state.get(key) not in options:
        st.session_state[key] = fallback if fallback in options else options[0]


def _period_picker(months: list[str]) -> Period:
    seed: Period = st.session_state["_seed_period"]
    choices = period_choices(months)
    asc = sorted(months)
    if st.session_state.get("f_type") not in PERIOD_TYPES:
        st.session_state["f_type"] = MONTH
    kind = st.sidebar.radio("时段类型", PERIOD_TYPES, key="f_type", horizontal=True)
    if kind == MONTH:
        _ensure("f_month", choices[MONTH], seed.last)
        key = st.sidebar.selectbox("月份", choices[MONTH], key="f_month", format_func=lambda k: parse_period(k).label)
        return parse_period(key)
    if kind == QUARTER:
        _ensure("f_quarter", choices[QUARTER], quarter_of(seed.last).key)
        key = st.sidebar.selectbox("季度", choices[QUARTER], key="f_quarter",
                                   format_func=lambda k: parse_period(k).label)
        return parse_period(key)
    if kind == YEAR:
        _ensure("f_year", choices[YEAR], seed.last[:4])
        key = st.sidebar.selectbox("年度", choices[YEAR], key="f_year", format_func=lambda k: f"{k}年")
        return parse_period(key)
    _ensure("f_from", asc, max(seed.first, asc[0]) if seed.first <= asc[-1] else asc[0])
    _ensure("f_to", asc, min(seed.last, asc[-1]) if seed.last >= asc[0] else asc[-1])
    c1, c2 = st.sidebar.columns(2)
    first = c1.selectbox("起始月份", asc, key="f_from")
    last = c2.selectbox("结束月份", asc, key="f_to")
    if first > last:
        st.sidebar.warning("起始月份晚于结束月份，已按从早到晚处理。")
        first, last = last, first
    return Period(first, last)


def sidebar_filters(months: list[str], default: str, districts_all: list[str]) -> tuple[Period, list[str], list[str]]:
    _seed_filters(months, default, districts_all)
    st.sidebar.header("筛选")
    period = _period_picker(months)
    st.session_state["_seed_period"] = period
    if any(d not in districts_all for d in st.session_state.get("f_districts", [])):
        st.session_state["f_districts"] = [d for d in st.session_state["f_districts"] if d in districts_all]
    districts = st.sidebar.multiselect("区县", districts_all, key="f_districts", placeholder="全部区县")
    ids = [i.id for i in INDICATORS]
    if "f_indicators" not in st.session_state:
        st.session_state["f_indicators"] = list(KEY_INDICATORS)
    indicators = st.sidebar.multiselect("指标", ids, key="f_indicators", format_func=shared.indicator_label,
                                        placeholder="选择指标")
    if not indicators:
        st.sidebar.caption("未选择指标，按默认关键指标显示。")
        indicators = list(KEY_INDICATORS)
    st.query_params[Q_PERIOD] = period.key
    st.query_params[Q_DISTRICT] = list(districts)
    st.query_params[Q_INDICATOR] = list(indicators)
    return period, list(districts), list(indicators)


# --- main -------------------------------------------------------------------------------------------


def _run(nav: dict) -> None:
    st.navigation(nav).run()


def main() -> None:
    shared.begin_run()
    try:
        _main()
    finally:
        shared.end_run()


def _main() -> None:
    st.set_page_config(page_title="政务服务效能评估看板", page_icon=":material/analytics:", layout="wide")
    app = _app_settings()
    engine, version = _connect(app)
    st.session_state[shared.BASE_KEY] = (engine, app)
    if app.embedded and app.load_demo_if_empty:
        with st.spinner(f"首次启动：正在生成示例数据（规模 {shared.DEMO_SCALE}，约 10 万件办件，需要 10–30 秒）…"):
            summary = shared.load_demo_once(app.url, app.demo_seed, shared.DEMO_SCALE)
        if summary:
            st.toast("已载入示例数据")
        version = store.data_version(engine)
    fingerprint = shared.data_fingerprint(app.url, version)
    if fingerprint == shared.NO_DATA:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        _run(EMPTY_NAV)
        return
    settings = shared.get_scoring(app.url, version)
    try:
        comps = shared.get_components(app.url, fingerprint, shared.rules_key(settings))
    except (CalendarError, ValueError) as exc:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        st.error(f"指标计算失败：{exc}。可在“数据质量”页核对数据，或在“数据上传”页回滚有问题的批次。")
        _run(BROKEN_NAV)
        return
    months = sorted(comps["month"].drop_nulls().unique().to_list())
    if not months:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        _run(EMPTY_NAV)
        return
    districts_all = shared.get_districts(app.url, version, tuple(sorted(comps["district"].unique().to_list())))
    demo = shared.is_demo(app.url, version)
    default = latest_month(comps) or months[-1]
    # Months after the latest month with 办件 hold only stray rows (evaluations of late completions,
    # catalogs in force): they are not offered as periods.
    months = [m for m in months if m <= default]
    period, districts, indicators = sidebar_filters(months, default, districts_all)
    if demo:
        st.sidebar.info("示例数据：虚构的“澄州市”，仅供演示。", icon=":material/science:")
    shared.set_current(
        shared.Context(
            url=app.url,
            engine=engine,
            app=app,
            version=version,
            fingerprint=fingerprint,
            settings=settings,
            comps=comps,
            districts_all=districts_all,
            months=months,
            period=period,
            districts=districts,
            indicators=indicators,
            demo=demo,
        )
    )
    if demo:
        st.info("**示例数据** —— 当前显示的是系统自动生成的虚构城市“澄州市”的数据，仅用于演示看板功能，"
                "不代表任何真实区县。接入真实数据请配置 DATABASE_URL 指向正式数据库。", icon=":material/science:")
    _run(FULL_NAV)


main()
