"""政务服务效能评估看板 — the entry point: ``streamlit run dashboard.py``.

Creates the shared resources (engine, scoring settings, the component table keyed by the store's
data version), draws the sidebar filters (period, districts, indicators — kept in the URL so a
view can be bookmarked), builds the per-run context and runs the page chosen in the navigation.

Started with nothing configured it uses the embedded SQLite file and, when that is empty, loads the
demo city at the ``demo_scale`` setting (default 0.05, about 50 000 办件). Started on an empty
configured database (DATABASE_URL) it shows how to begin instead.

Accounts: the signed-in user (pages/_session.py) decides which pages the menu lists; the other pages
stay registered but hidden, so that a link to one of them is redirected (to the login page, or home
with a notice) instead of failing. Every page checks the user again itself (pages/_auth_ui.gate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from datasets.access.accounts import User
from datasets.common import faults
from datasets.common.config import AppSettings, load_settings
from datasets.domain.periods import (
    MONTH,
    PERIOD_TYPES,
    QUARTER,
    YEAR,
    Period,
    parse_period,
    period_choices,
    period_has_data,
    period_type,
    quarter_of,
)
from datasets.domain.workdays import CalendarError
from datasets.operations import admin as actions
from datasets.storage import store
from datasets.storage.coverage import Coverage
from metrics import service
from metrics.compute import latest_month
from metrics.overview import KEY_INDICATORS
from metrics.registry import BY_ID, INDICATORS
from pages import _auth_ui as auth_ui
from pages import _browser as browser
from pages import _catalog as catalog
from pages import _session as session
from pages import _shared as shared

# The navigations come from the page catalog (pages/_catalog.py). Every url_path is its file's name: a
# page that Streamlit ran straight from pages/ (before any st.navigation) is the same page here (see
# pages/_shared.py).
FULL_NAV = catalog.navigation(catalog.FULL)
EMPTY_NAV = catalog.navigation(catalog.EMPTY)
BROKEN_NAV = catalog.navigation(catalog.BROKEN)
# A visitor who may see nothing before signing in: every page is registered (links redirect to the
# login page), nothing is computed.
SIGNED_OUT_NAV = catalog.signed_out_navigation()

# A file served by this server: a Material icon as the tab's icon is fetched from fonts.gstatic.com,
# which an offline intranet cannot reach (and which would learn of every page opened).
FAVICON = str(Path(__file__).resolve().parent / "assets" / "favicon.png")
Q_PERIOD, Q_DISTRICT, Q_INDICATOR = "period", "district", "indicator"
SEEDED = "_filters_seeded"
PAGE_SHOWN = "_page_shown"  # this session has shown a page (no first-run view any more)


def _app_settings() -> AppSettings:
    try:
        return load_settings()
    except ValidationError as exc:
        st.error("部署配置有误（环境变量或 .streamlit/secrets.toml）：" + "；".join(
            f"{'.'.join(str(p) for p in e['loc'])}：{e['msg']}" for e in exc.errors()))
        st.stop()
        raise


def _connect(app: AppSettings) -> tuple[Engine, int]:
    try:
        engine = shared.get_engine(app.url)
        version = store.data_version(engine)
    except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
        from sqlalchemy.engine import make_url

        fault = faults.explain(exc)
        if fault is not None and fault.kind != faults.DATABASE:  # e.g. the SQLite file's disk is full
            shared.show_fault(fault, exc)
            st.stop()
        try:
            shown = make_url(app.url).render_as_string(hide_password=True)
        except Exception:  # an unparsable URL is shown by its scheme only
            shown = app.url.split(":", 1)[0] + "://…"
        # The exception's class goes to the log, not to the page (no English there).
        shared.log_fault("database", exc)
        st.error(f"数据库暂时不可用：无法连接数据库 {shown}。请稍后刷新页面重试；"
                 "如持续出现，请检查 DATABASE_URL 配置及数据库服务是否可用。", icon=":material/cloud_off:")
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


FILTER_KEYS = ("f_type", "f_month", "f_quarter", "f_year", "f_from", "f_to", "f_districts", "f_indicators")


def _keep_filters() -> None:
    """On a page without the filters, keep their values: Streamlit forgets a widget's value on a run
    that does not draw it, and the filtered pages should come back as they were left."""
    for key in FILTER_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _ensure(key: str, options: list[str], fallback: str) -> None:
    if st.session_state.get(key) not in options:
        st.session_state[key] = fallback if fallback in options else options[0]


def _period_picker(months: list[str], cover: Coverage) -> Period:
    """The chosen period; partial months (and the quarters and years holding one) are marked
    （未报齐）, and a quarter or year in progress is measured to date (cover.measured)."""
    seed: Period = st.session_state["_seed_period"]
    choices = period_choices(months)
    asc = sorted(months)
    if st.session_state.get("f_type") not in PERIOD_TYPES:
        st.session_state["f_type"] = MONTH
    kind = st.sidebar.radio("时段类型", PERIOD_TYPES, key="f_type", horizontal=True)
    if kind == MONTH:
        _ensure("f_month", choices[MONTH], seed.last)
        key = st.sidebar.selectbox("月份", choices[MONTH], key="f_month", format_func=cover.period_label)
        return parse_period(key)
    if kind == QUARTER:
        _ensure("f_quarter", choices[QUARTER], quarter_of(seed.last).key)
        key = st.sidebar.selectbox("季度", choices[QUARTER], key="f_quarter", format_func=cover.period_label)
        return cover.measured(parse_period(key))
    if kind == YEAR:
        _ensure("f_year", choices[YEAR], seed.last[:4])
        key = st.sidebar.selectbox("年度", choices[YEAR], key="f_year", format_func=cover.period_label)
        return cover.measured(parse_period(key))
    _ensure("f_from", asc, max(seed.first, asc[0]) if seed.first <= asc[-1] else asc[0])
    _ensure("f_to", asc, min(seed.last, asc[-1]) if seed.last >= asc[0] else asc[-1])
    c1, c2 = st.sidebar.columns(2)
    first = c1.selectbox("起始月份", asc, key="f_from", format_func=cover.month_label)
    last = c2.selectbox("结束月份", asc, key="f_to", format_func=cover.month_label)
    if first > last:
        st.sidebar.warning("起始月份晚于结束月份，已按从早到晚处理。")
        first, last = last, first
    return Period(first, last)


def sidebar_filters(months: list[str], default: str, districts_all: list[str], cover: Coverage, *,
                    period_only: bool = False) -> tuple[Period, list[str], list[str]]:
    """The sidebar's filters; ``period_only``: the period alone (a page for the whole city and every
    indicator), the district and indicator choices kept for the pages that use them."""
    _seed_filters(months, default, districts_all)
    st.sidebar.header("筛选")
    period = _period_picker(months, cover)
    st.session_state["_seed_period"] = period
    if period_only:
        for key in ("f_districts", "f_indicators"):
            if key in st.session_state:
                st.session_state[key] = st.session_state[key]
        st.query_params[Q_PERIOD] = period.whole.key  # as below: a bookmarked year means the year
        for key in (Q_DISTRICT, Q_INDICATOR):
            st.query_params.pop(key, None)
        return period, [], list(KEY_INDICATORS)
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
    st.query_params[Q_PERIOD] = period.whole.key  # a bookmarked year means the year, to date or whole
    st.query_params[Q_DISTRICT] = list(districts)
    st.query_params[Q_INDICATOR] = list(indicators)
    return period, list(districts), list(indicators)


# --- main -------------------------------------------------------------------------------------------


HOME_ALIAS = "-home"  # the internal path of the default page, which Streamlit serves at "/"


def _page(name: str, *, default: bool = False, hidden: bool = False) -> st.Page:
    spec = catalog.BY_TITLE[name]
    # The default page lives at "/"; its own path (e.g. /overview) stays free for an alias, so that a
    # bookmarked /overview opens it instead of Streamlit's English "Page not found".
    return st.Page(spec.path, title=name, icon=spec.icon, url_path=spec.file + HOME_ALIAS if default else spec.file,
                   default=default, visibility="hidden" if hidden else "visible")


def _run(nav: dict[str, list[str]], engine: Engine, app: AppSettings, user: User | None, anonymous_ok: bool,
         before: Callable[[str], None] | None = None) -> None:
    """Show the navigation the user may use and run the page chosen (or redirect away from it)."""
    menu, hidden, home = session.arrange(nav, user, anonymous_ok=anonymous_ok)
    pages = {name: _page(name, default=name == home) for names in menu.values() for name in names}
    pages.update({name: _page(name, hidden=True) for name in hidden})
    sections = {section: [pages[name] for name in names] for section, names in menu.items()}
    # Hidden pages go into the last section, which always lists the login or the password page.
    last = list(sections)[-1]
    sections[last] = [*sections[last], *(pages[name] for name in hidden)]
    # The home page again at its own path (hidden), so that a link to it (/overview) opens it.
    sections[last].append(st.Page(catalog.BY_TITLE[home].path, title=home, url_path=catalog.BY_TITLE[home].file,
                                  visibility="hidden"))
    page = st.navigation(sections)
    st.session_state[PAGE_SHOWN] = True
    target = session.route(st.session_state, user, page.title, anonymous_ok=anonymous_ok,
                           among=[name for names in menu.values() for name in names])
    if target is not None:
        st.switch_page(pages[target], query_params={k: st.query_params.get_all(k) for k in st.query_params})
    # Only on the run that shows a page: a run left for another page (the redirect above) may be
    # replaced before the browser has run its cookie script, and the cookie would then be missing
    # (after signing in) or left behind (after signing out).
    _sync_cookie()
    if page.title != catalog.PAGE_LOGIN:  # the login page shows its notices itself
        notice = session.pop_notice(st.session_state)
        if notice:
            st.warning(shared.plain(notice), icon=":material/info:")
    if before is not None:
        before(page.title)
    auth_ui.account_box(engine, user, page=page.title)
    page.run()


def _signed_in(engine: Engine, app: AppSettings) -> User | None:
    """The signed-in user; back from the identity provider (SSO), the identity is mapped to an account
    first; after a page reload, the session the cookie names (a server-side record) signs in again."""
    session.restore_from_cookie(st.session_state, engine, browser.cookie(), idle_minutes=app.session_idle_minutes)
    user = session.current_user(st.session_state, engine, idle_minutes=app.session_idle_minutes)
    if user is None and session.sso_configured(st.secrets):
        identity = st.user.to_dict()
        if session.sso_pending(st.session_state, identity):
            # No account for the identity: a notice explains it on the next page shown.
            user = session.sign_in_sso(st.session_state, engine, identity, max_hours=app.session_max_hours,
                                       **browser.client_info())
    return user


def _sync_cookie() -> None:
    """Keep the reload cookie in step with the session: written once per password session, removed
    after it ended."""
    action = session.cookie_action(st.session_state)
    if action is None:
        return
    kind, token, max_age = action
    if kind == session.SET:
        browser.set_cookie(token, max_age)
    else:
        browser.clear_cookie()


# --- the first start ------------------------------------------------------------------------------


def _needs_preparing(app: AppSettings, engine: Engine, version: int) -> bool:
    """Whether this run has slow work ahead: an empty demo store to fill, or indicators not yet counted."""
    if app.embedded and app.load_demo_if_empty and store.active_batches(engine).height == 0:
        return True
    fingerprint = shared.data_fingerprint(app.url, version)
    if fingerprint == shared.NO_DATA or st.session_state.get(PAGE_SHOWN):
        # Once a page is on screen, a recount (after an import) runs under that page's own spinner.
        return False
    return not shared.components_ready(app.url, fingerprint, shared.rules_key(shared.get_scoring(app.url, version)))


def _prepare(app: AppSettings, engine: Engine) -> None:
    """A Chinese progress view with the steps of the first start, then the page asked for."""
    wanted = st.context.url.rstrip("/").rsplit("/", 1)[-1] if st.context.url else ""
    pages = [st.Page(_preparing_view, title="正在准备看板", icon=":material/hourglass_top:", default=True)]
    if wanted in catalog.BY_FILE:
        # Same path as the deep link, so the link (and its query) is kept until the page opens.
        pages.append(st.Page(_preparing_view, title=f"正在准备看板 {wanted}", url_path=wanted))
    st.navigation({"": pages}, position="hidden").run()


def _preparing_view() -> None:
    engine, app = st.session_state[shared.BASE_KEY]
    st.title("正在准备看板")
    st.caption("首次打开时需要准备数据并计算指标，完成后自动进入页面。")
    steps = st.container()
    with st.status("正在准备…", expanded=True) as status:
        if app.embedded and app.load_demo_if_empty and store.active_batches(engine).height == 0:
            steps.markdown(f"**第 1 步 / 共 3 步：生成示例数据**（虚构的“澄州市”，规模 {app.demo_scale}）")
            status.update(label="第 1 步：正在生成示例数据…")
            started = time.perf_counter()
            summary = shared.load_demo_once(app.url, app.demo_seed, app.demo_scale)
            st.write(f"✓ 示例数据已生成（{time.perf_counter() - started:.0f} 秒）" if summary else "✓ 示例数据已就绪")
        else:
            st.write("✓ 数据已就绪")
        version = store.data_version(engine)
        fingerprint = shared.data_fingerprint(app.url, version)
        if fingerprint != shared.NO_DATA:
            status.update(label="第 2 步：正在计算各区县指标…")
            started = time.perf_counter()
            try:
                shared.get_components(app.url, fingerprint, shared.rules_key(shared.get_scoring(app.url, version)))
            except (CalendarError, ValueError):
                pass  # the page run next explains the failure
            st.write(f"✓ 指标计算完成（{time.perf_counter() - started:.0f} 秒）")
        status.update(label="第 3 步：正在打开页面…", state="complete")
    st.rerun()


def main() -> None:
    shared.begin_run()
    try:
        _main()
        # Once the page is shown (not on a rerun or stop): the cache work a cold start left queued.
        service.start_background()
    except Exception as exc:  # a fault of the system (the database restarting, a full disk) is explained
        fault = faults.explain(exc)
        if fault is None:
            raise
        shared.show_fault(fault, exc)
    finally:
        shared.end_run()


def _main() -> None:
    st.set_page_config(page_title="政务服务效能评估看板", page_icon=FAVICON, layout="wide")
    browser.install()
    app = _app_settings()
    engine, version = _connect(app)
    st.session_state[shared.BASE_KEY] = (engine, app)
    problem = actions.startup_problem(engine, app, sso_cookie_secret=session.sso_cookie_secret(st.secrets))
    if problem:
        st.error(shared.plain(problem), icon=":material/gpp_bad:")
        st.stop()
    if _needs_preparing(app, engine, version):
        # The slow first start (demo generation, the first count) runs inside a navigation of its
        # own, so the sidebar never shows Streamlit's raw list of files meanwhile.
        _prepare(app, engine)
        return
    user = _signed_in(engine, app)
    anonymous_ok = session.anonymous_allowed(app)
    if user is None and not anonymous_ok:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        _run(SIGNED_OUT_NAV, engine, app, user, anonymous_ok)
        return
    fingerprint = shared.data_fingerprint(app.url, version)
    if fingerprint == shared.NO_DATA:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        _run(EMPTY_NAV, engine, app, user, anonymous_ok)
        return
    settings = shared.get_scoring(app.url, version)
    try:
        comps = shared.get_components(app.url, fingerprint, shared.rules_key(settings))
    except (CalendarError, ValueError) as exc:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        st.error(f"指标计算失败：{exc}。可在“数据质量”页核对数据，或在“数据上传”页回滚有问题的批次。")
        _run(BROKEN_NAV, engine, app, user, anonymous_ok)
        return
    months = sorted(comps["month"].drop_nulls().unique().to_list())
    if not months:
        st.session_state.pop(shared.CONTEXT_KEY, None)
        _run(EMPTY_NAV, engine, app, user, anonymous_ok)
        return
    districts_all = shared.get_districts(app.url, version, tuple(sorted(comps["district"].unique().to_list())))
    demo = shared.is_demo(app.url, version)
    latest = latest_month(comps) or months[-1]
    # Months after the latest month with 办件 hold only stray rows (evaluations of late completions,
    # catalogs in force): they are not offered as periods.
    months = [m for m in months if m <= latest]
    cover = shared.get_coverage(app.url, version, shared.rules_key(settings), shared.today())
    # The default period is the latest complete month (datasets/storage/coverage.py): an early upload of a
    # new month does not change what is shown until that month is chosen.
    default = cover.default_month if cover.default_month in months else latest

    def with_filters(page_title: str) -> None:
        """The sidebar filters and the context, for the pages they filter (the others keep the choice
        and get the context with the default period: the bulletin page picks its own)."""
        spec = catalog.BY_TITLE[page_title]
        if not spec.filtered:
            _keep_filters()
            period, districts, indicators = Period(default, default), [], list(KEY_INDICATORS)
        else:
            period, districts, indicators = sidebar_filters(months, default, districts_all, cover,
                                                            period_only=spec.period_only)
            if banner := cover.banner(period):
                st.warning(shared.plain(f"{period.label}数据未报齐。{banner}"), icon=":material/schedule:")
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
                coverage=cover,
            )
        )

    shared.cache_notice(engine)
    if demo:
        st.sidebar.info("示例数据：虚构的“澄州市”，仅供演示。", icon=":material/science:")
        st.info("**示例数据** —— 当前显示的是系统自动生成的虚构城市“澄州市”的数据，仅用于演示看板功能，"
                "不代表任何真实区县。接入真实数据需由管理员配置正式数据库。", icon=":material/science:")
    _run(FULL_NAV, engine, app, user, anonymous_ok, before=with_filters)


if __name__ == "__main__":  # a script run: every run of every session (and AppTest's)
    main()
else:
    # Imported by ``streamlit run dashboard.py``, which finds the st.App below (Streamlit's ASGI mode) and
    # serves this file as the script, plus two HTTP routes that set and remove the session cookie with
    # HttpOnly (pages/_cookie_server.py): a script cannot add a Set-Cookie header itself. Set before
    # the first visitor: the pages/ directory is not a page list (st.navigation builds the menu), so
    # Streamlit never sends the raw file names of pages/ as a menu.
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    from pages import _cookie_server

    PagesManager.uses_pages_directory = False
    _cookie_server.installed = True
    app = st.App("dashboard.py", routes=_cookie_server.routes(config.get_option("server.baseUrlPath") or ""))
