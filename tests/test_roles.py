"""What each role sees and cannot reach in the dashboard (streamlit.testing.v1.AppTest).

The demo store of conftest.py holds one account per role (leader1, staff1 responsible for the first
district, evaluator1, admin1) and is opened as a configured database (DATABASE_URL), where anonymous
viewing is off unless ANONYMOUS_VIEW turns it on. Also: the login page (failures, lockout, audit),
the demo accounts of the embedded demo mode, the startup refusal, and user-supplied names shown as
text.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from datasets.access import accounts
from datasets.access.accounts import User
from datasets.intake import upload
from datasets.storage import store
from metrics.admin import save_scoring
from pages import _catalog as catalog
from pages import _session as session
from pages._shared import plain
from tests.apptest_support import (
    ADMIN_NAME,
    ALL_NAME,
    DASHBOARD,
    EVALUATOR_NAME,
    LEADER_NAME,
    PAGES,
    PW,
    STAFF_NAME,
    TIMEOUT,
    Demo,
    app,
    audit_rows,
    cases_csv,
    ok,
    open_page,
    sign_in,
    table,
    tables,
    texts,
)

pytestmark = pytest.mark.usefixtures("navigation_mode")

P = catalog
DATA_PAGES = [P.PAGE_OVERVIEW, P.PAGE_COMPARE, P.PAGE_PERIODS, P.PAGE_RANKING, P.PAGE_BULLETIN]
# account (None: a visitor) and ANONYMOUS_VIEW -> the pages the menu lists.
MENUS = {
    (LEADER_NAME, None): [*DATA_PAGES, P.PAGE_BIGSCREEN, P.PAGE_QUALITY, P.PAGE_INDICATORS, P.PAGE_ACCOUNT],
    (STAFF_NAME, None): [*DATA_PAGES[:3], P.PAGE_UPLOAD, P.PAGE_QUALITY, P.PAGE_INDICATORS, P.PAGE_ACCOUNT],
    (EVALUATOR_NAME, None): [*DATA_PAGES, P.PAGE_INDICATORS, P.PAGE_ACCOUNT],
    (ADMIN_NAME, None): [*DATA_PAGES, P.PAGE_BIGSCREEN, P.PAGE_QUALITY, P.PAGE_INDICATORS, P.PAGE_SETTINGS, P.PAGE_ACCOUNT, P.PAGE_USERS,
                         P.PAGE_DISTRICTS, P.PAGE_AUDIT],
    (None, "false"): [P.PAGE_LOGIN],
    (None, "true"): [*DATA_PAGES[:3], P.PAGE_INDICATORS, P.PAGE_LOGIN],
}
# A page each of them may not open, opened by its link: where they land instead.
FORBIDDEN = {
    (LEADER_NAME, None): ("upload", P.PAGE_UPLOAD),
    (STAFF_NAME, None): ("ranking", P.PAGE_RANKING),
    (EVALUATOR_NAME, None): ("quality", P.PAGE_QUALITY),
    (ADMIN_NAME, None): ("upload", P.PAGE_UPLOAD),
    (None, "false"): ("overview", P.PAGE_OVERVIEW),
    (None, "true"): ("ranking", P.PAGE_RANKING),
}
FILES = {P.PAGE_OVERVIEW: "overview", P.PAGE_COMPARE: "compare", P.PAGE_PERIODS: "periods", P.PAGE_RANKING: "ranking",
         P.PAGE_UPLOAD: "upload", P.PAGE_QUALITY: "quality", P.PAGE_INDICATORS: "indicators",
         P.PAGE_SETTINGS: "settings", P.PAGE_START: "start", P.PAGE_USERS: "users", P.PAGE_AUDIT: "audit",
         P.PAGE_ACCOUNT: "account", P.PAGE_BULLETIN: "bulletin", P.PAGE_DISTRICTS: "districts",
         P.PAGE_BIGSCREEN: "bigscreen"}


@pytest.fixture
def menus(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The titles of the pages each st.navigation call lists in the menu (hidden pages left out)."""
    seen: list[list[str]] = []
    original = st.navigation

    def record(pages, **kwargs):
        seen.append([p.title for section in pages.values() for p in section if p.visibility == "visible"])
        return original(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", record)
    return seen


def shows_no_data(at: AppTest) -> None:
    """No table, metric, chart, download or upload on the page."""
    assert not at.dataframe and not at.metric and not at.get("vega_lite_chart")
    assert not at.get("download_button") and not at.get("file_uploader") and not at.get("arrow_data_frame")


@pytest.mark.parametrize(("account", "anonymous"), list(MENUS))
def test_menu_and_a_forbidden_link_per_role(demo: Demo, monkeypatch, menus, account: str | None,
                                            anonymous: str | None):
    if anonymous is not None:
        monkeypatch.setenv("ANONYMOUS_VIEW", anonymous)
    at = ok(app(demo.url, monkeypatch, demo.users[account] if account else None).run())
    assert menus[-1] == MENUS[account, anonymous]
    home = session.home_page(demo.users[account] if account else None, anonymous_ok=anonymous == "true")
    assert at.title[0].value.startswith(home)
    if home == P.PAGE_LOGIN:
        shows_no_data(at)
        assert not at.sidebar.multiselect  # not even the district filter

    file, name = FORBIDDEN[account, anonymous]
    ok(at.switch_page(f"pages/{file}.py").run())
    notice = texts(at.warning)
    if account is None:
        assert at.title[0].value == "登录"
        assert f"“{name}”页面需要登录后才能查看，请先登录" in notice
        shows_no_data(at)
    else:
        assert at.title[0].value.startswith(P.PAGE_OVERVIEW)
        assert f"当前账号没有“{name}”页面的权限" in notice
        # Nothing of the forbidden page: no uploader, no ranking download.
        assert not at.get("file_uploader") and not [b for b in at.get("download_button") if "Excel" in b.label]
    assert menus[-1] == MENUS[account, anonymous]


# Every page an account holding every role opens, by the path in its link (as a reload or a bookmark does).
LINKED_PAGES = [p for p in catalog.CATALOG if catalog.FULL in p.navs and p.title != P.PAGE_LOGIN]


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: p.file)
def test_every_page_opens_first_in_a_new_session(demo: Demo, monkeypatch, page: catalog.PageSpec):
    """A reload, a bookmark or a link starts a new session on the page itself: the page shows once, with
    one sidebar (the 月度通报 page ran the dashboard a second time and failed on its duplicate sign-out
    button, issue 27)."""
    # Another session first, as on a running server: this process has counted the indicators (the very
    # first session of a server shows the first-start view; AppTest has no address that keeps the page).
    ok(app(demo.url, monkeypatch, demo.users[ALL_NAME]).run())
    at = app(demo.url, monkeypatch, demo.users[ALL_NAME], period=demo.period.key)
    ok(at.switch_page(page.path).run())
    assert _heading(at).startswith(page.title if page.title != P.PAGE_BIGSCREEN else "政务服务效能")
    assert len(at.sidebar.button) == 1 and at.sidebar.button[0].label == "退出登录"
    assert sum("示例数据" in info.value for info in at.info) <= 2  # the sidebar's and the page's banner, once each
    ok(at.run())  # and the next run on it (a click) too
    assert _heading(at).startswith(page.title if page.title != P.PAGE_BIGSCREEN else "政务服务效能")


def _heading(at) -> str:
    """The page's heading: its st.title, or on 大屏展示 (a screen without Streamlit's title) its first
    level-2 heading."""
    if at.title:
        return at.title[0].value
    return next(m.value.removeprefix("## ") for m in at.markdown if m.value.startswith("## "))


def test_menus_without_data_and_after_a_failed_computation(demo: Demo, tmp_path, monkeypatch, menus):
    """The two other navigations: an empty database (开始使用) and indicators that could not be computed."""
    from pages import _shared

    empty = tmp_path / "empty.db"
    engine = store.make_engine(f"sqlite:///{empty}")
    store.init_db(engine)
    leader = accounts.add_user(engine, "lead", PW, [accounts.LEADER])
    engine.dispose()
    at = ok(app(f"sqlite:///{empty}", monkeypatch, leader).run())
    assert menus[-1] == [P.PAGE_START, P.PAGE_INDICATORS, P.PAGE_ACCOUNT]
    assert at.title[0].value == "政务服务效能评估看板"
    ok(at.switch_page("pages/upload.py").run())
    assert "当前账号没有“数据上传”页面的权限" in texts(at.warning) and not at.get("file_uploader")
    assert "载入示例数据需要“管理员”角色" in texts(at.caption) and not at.main.button

    def broken(*_args: object) -> None:
        raise ValueError("测试用的计算错误")

    monkeypatch.setattr(_shared, "get_components", broken)
    at = ok(app(demo.url, monkeypatch, demo.users[EVALUATOR_NAME]).run())
    assert "指标计算失败：测试用的计算错误" in texts(at.error)
    assert menus[-1] == [P.PAGE_INDICATORS, P.PAGE_ACCOUNT]
    assert at.title[0].value == P.PAGE_INDICATORS
    at = ok(app(demo.url, monkeypatch, demo.users[STAFF_NAME]).run())
    assert menus[-1] == [P.PAGE_UPLOAD, P.PAGE_QUALITY, P.PAGE_INDICATORS, P.PAGE_ACCOUNT]
    assert at.title[0].value == P.PAGE_UPLOAD


def _host(page: str, url: str, anonymous_view: bool) -> None:
    """What dashboard.py does for a page (engine and settings in the session, the run marked), then the page."""
    import runpy

    import streamlit as st

    from datasets.common.config import AppSettings
    from pages import _shared as shared

    engine = shared.get_engine(url)
    st.session_state[shared.BASE_KEY] = (engine, AppSettings(database_url=url, anonymous_view=anonymous_view))
    shared.begin_run()
    try:
        runpy.run_path(page, run_name="__main__")
    finally:
        shared.end_run()


def _forbidden_pages() -> list[tuple[str | None, bool, str]]:
    cases = []
    for account, roles in [(LEADER_NAME, (accounts.LEADER,)), (STAFF_NAME, (accounts.STAFF,)),
                           (EVALUATOR_NAME, (accounts.EVALUATOR,)), (ADMIN_NAME, (accounts.ADMIN,))]:
        user = User(account, account, roles, ("x",))
        cases += [(account, False, page) for page in FILES if not session.page_access(user, page)]
    cases += [(None, False, page) for page in FILES]
    cases += [(None, True, page) for page in FILES if not session.page_access(None, page, anonymous_ok=True)]
    return cases


@pytest.mark.parametrize(("account", "anonymous", "page"), _forbidden_pages())
def test_every_page_refuses_itself_without_permission(demo: Demo, account: str | None, anonymous: bool, page: str):
    """Run straight (no navigation to redirect), a page shows the permission message and none of its data."""
    at = AppTest.from_function(_host, kwargs={"page": str(PAGES / f"{FILES[page]}.py"), "url": demo.url,
                                              "anonymous_view": anonymous}, default_timeout=TIMEOUT)
    if account is not None:
        sign_in(at, demo.users[account], demo.url)
    ok(at.run())
    assert at.title[0].value == page
    if account is None:
        assert "请先登录" in texts(at.warning)
    else:
        assert f"当前账号没有“{page}”页面的权限" in texts(at.error)
    shows_no_data(at)
    assert not at.button and not at.text_input and not at.selectbox


# --- 数据上传: district scope ---------------------------------------------------------------------------


def _mixed_csv(url: str, first: str, second: str, month: str) -> bytes:
    own = cases_csv(url, first, month, 5)
    other = cases_csv(url, second, month, 5)
    return own + other.split(b"\n", 1)[1]


def test_staff_uploads_for_own_districts_only(demo_copy: Demo, monkeypatch):
    own, other = demo_copy.districts[0], demo_copy.districts[1]
    month = demo_copy.period.first
    engine = store.make_engine(demo_copy.url)
    # A newer version of the other district: its older version may be rolled back, but not by staff1.
    upload.import_file(engine, cases_csv(demo_copy.url, other, month, 10), "其他区县.csv")
    before = (store.record_counts(engine), store.batch_history(engine).height)

    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users[STAFF_NAME]), "pages/upload.py")
    assert at.selectbox(key="up_district").options == ["（文件中已有区县列）", own]
    assert plain(own) in texts(at.markdown) and other not in texts(at.markdown)
    assert "rb_target" not in [s.key for s in at.selectbox]  # no version of its own district to restore
    # The import history is of its own district too: not the other district's file names and uploaders.
    assert at.selectbox(key="hist_district").options == ["全部", own]
    shown = table(at, "文件名")
    assert shown.height > 0 and set(shown["区县"].to_list()) == {own} and "其他区县.csv" not in shown["文件名"].to_list()

    name = "<b>混合</b>**文件**.csv"
    at.file_uploader[0].set_value([(name, _mixed_csv(demo_copy.url, own, other, month), "text/csv")])
    ok(at.run())
    refused = texts(at.error)
    assert f"账号“{STAFF_NAME}”只能上传或回滚 {own} 的数据，文件中含有 {other} 的数据行，未入库" in refused
    assert plain(name) in refused and name not in refused  # the file name is shown as typed, not formatted
    assert at.button(key="up_import").disabled
    assert (store.record_counts(engine), store.batch_history(engine).height) == before

    # The same file without the other district's rows is accepted and imported in staff1's name.
    at.file_uploader[0].set_value([("本区.csv", cases_csv(demo_copy.url, own, month, 5), "text/csv")])
    ok(at.run())
    ok(at.button(key="up_import").click().run())
    assert "已导入" in texts(at.success)
    assert store.batch_history(engine, "cases", own)["user_name"][0] == STAFF_NAME
    engine.dispose()


# --- 排名下载: downloads --------------------------------------------------------------------------------


@pytest.mark.parametrize(("account", "downloads"), [(LEADER_NAME, False), (EVALUATOR_NAME, True),
                                                    (ADMIN_NAME, True)])
def test_ranking_downloads_for_evaluators_and_administrators(demo_copy: Demo, monkeypatch, account: str,
                                                              downloads: bool):
    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users[account]), "pages/ranking.py")
    assert table(at, "排名").height == len(demo_copy.districts)  # every role here views the ranking
    labels = [b.label for b in at.get("download_button")]
    if not downloads:
        assert labels == []
        assert "需要“评估人员”或“管理员”角色" in texts(at.caption)
        return
    assert labels == ["下载 Excel（.xlsx）", "下载 CSV"]
    assert audit_rows(demo_copy.url, "download").height == 0
    ok(at.get("download_button")[0].click().run())
    logged = audit_rows(demo_copy.url, "download")
    assert logged.height == 1
    row = logged.row(0, named=True)
    assert (row["账号"], row["操作"], row["页面"]) == (account, "下载", P.PAGE_RANKING)
    assert row["内容"].startswith(f"效能指数排名_{demo_copy.period.key}.xlsx") and demo_copy.period.label in row["内容"]


# --- 设置 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("account", [LEADER_NAME, STAFF_NAME, EVALUATOR_NAME])
def test_settings_are_for_administrators(demo: Demo, monkeypatch, account: str):
    at = open_page(app(demo.url, monkeypatch, demo.users[account]), "pages/settings.py")
    assert at.title[0].value.startswith(P.PAGE_OVERVIEW)
    assert "当前账号没有“设置”页面的权限" in texts(at.warning)
    assert not at.data_editor and not at.form_submit_button
    engine = store.make_engine(demo.url)
    with pytest.raises(accounts.PermissionDenied):
        save_scoring(engine, demo.users[account], demo.settings)
    engine.dispose()


# --- 登录 -----------------------------------------------------------------------------------------------


def _login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return ok(next(b for b in at.button if b.label == "登录").click().run())


def test_login_failures_are_shown_audited_and_lock_the_account(demo_copy: Demo, monkeypatch):
    at = ok(app(demo_copy.url, monkeypatch).run())
    assert at.title[0].value == "登录"
    assert not at.dataframe  # a configured database lists no demo accounts
    _login(at, EVALUATOR_NAME, "wrong-password")
    assert accounts.LOGIN_FAILED in texts(at.error)  # one message for every failure
    failed = audit_rows(demo_copy.url, "login_failed").row(0, named=True)
    assert (failed["账号"], failed["内容"], failed["页面"]) == (EVALUATOR_NAME, "密码错误", P.PAGE_LOGIN)
    for _ in range(4):
        _login(at, EVALUATOR_NAME, "wrong-password")
    assert accounts.LOGIN_FAILED in texts(at.error)
    _login(at, EVALUATOR_NAME, PW)  # the right password does not open a locked account
    assert accounts.LOGIN_FAILED in texts(at.error) and at.title[0].value == "登录"
    assert audit_rows(demo_copy.url, "login_failed").height == 6

    _login(at, LEADER_NAME, PW)  # another account signs in and lands on the overview
    assert at.title[0].value.startswith(P.PAGE_OVERVIEW)
    assert plain(f"{LEADER_NAME}（{LEADER_NAME}）· 领导") in texts(at.sidebar.markdown)
    logged = audit_rows(demo_copy.url, "login").row(0, named=True)
    assert (logged["账号"], logged["页面"]) == (LEADER_NAME, P.PAGE_LOGIN)


def test_a_link_opened_before_signing_in_is_shown_after(demo_copy: Demo, monkeypatch):
    at = ok(app(demo_copy.url, monkeypatch).run())
    ok(at.switch_page("pages/ranking.py").run())
    assert at.title[0].value == "登录"
    # The browser now shows /login (AppTest would ask for the page of its last switch_page again).
    ok(at.switch_page("pages/login.py").run())
    _login(at, EVALUATOR_NAME, PW)
    assert at.title[0].value.startswith(P.PAGE_RANKING)
    assert len(at.get("download_button")) == 2


def test_idle_session_ends_with_a_notice_on_the_login_page(demo: Demo, monkeypatch):
    at = app(demo.url, monkeypatch)
    sign_in(at, demo.users[LEADER_NAME], demo.url,
            now=store.now() - dt.timedelta(minutes=accounts.SESSION_IDLE_MINUTES + 1))
    ok(at.run())
    assert at.title[0].value == "登录"
    assert "未操作，已自动退出登录" in texts(at.warning)
    shows_no_data(at)


SSO_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                        "client_id": "dashboard", "client_secret": "s3cret",
                        "server_metadata_url": "https://idp.example.gov/.well-known/openid-configuration"}}


def test_back_from_single_sign_on_the_identity_is_mapped_to_an_account(demo_copy: Demo, monkeypatch):
    engine = store.make_engine(demo_copy.url)
    accounts.add_user(engine, "li.si@example.gov", PW, [accounts.EVALUATOR], [], "李四")
    engine.dispose()
    at = app(demo_copy.url, monkeypatch)
    at.secrets = SSO_SECRETS
    at.user = {"is_logged_in": True, "sub": "idp|7", "email": "li.si@example.gov", "name": "李四"}
    ok(at.run())
    assert at.title[0].value.startswith(P.PAGE_OVERVIEW)
    assert at.session_state[session.METHOD_KEY] == session.SSO
    assert audit_rows(demo_copy.url, "login")["内容"].to_list() == ["单点登录"]

    stranger = app(demo_copy.url, monkeypatch)
    stranger.secrets = SSO_SECRETS
    stranger.user = {"is_logged_in": True, "sub": "idp|8", "email": "<b>who</b>@example.gov"}
    ok(stranger.run())
    assert stranger.title[0].value == "登录"
    notice = texts(stranger.warning)
    assert "没有对应的可用账号" in notice and plain("<b>who</b>@example.gov") in notice
    shows_no_data(stranger)


# --- demo mode and startup ------------------------------------------------------------------------------


def _embedded(demo_copy: Demo, monkeypatch, **settings: str) -> AppTest:
    """The dashboard in demo mode: nothing configured, the embedded SQLite file (SQLITE_PATH) is the demo
    store's copy; ``settings`` are further environment variables."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ANONYMOUS_VIEW", raising=False)
    monkeypatch.setenv("SQLITE_PATH", str(demo_copy.path))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)


def test_demo_mode_lists_the_demo_accounts_and_allows_viewing(demo_copy: Demo, monkeypatch):
    at = ok(_embedded(demo_copy, monkeypatch).run())
    assert at.title[0].value.startswith(P.PAGE_OVERVIEW)  # anonymous viewing: on in demo mode
    ok(at.switch_page("pages/login.py").run())
    listed = table(at, "密码")
    assert dict(zip(listed["账号"], listed["密码"], strict=True)) == {
        "leader": "demo-leader", "staff": "demo-staff", "evaluator": "demo-evaluator", "admin": "demo-admin"}
    assert listed.filter(pl.col("账号") == "staff")["角色"][0] == f"工作人员（{demo_copy.districts[0]}）"
    _login(at, "staff", "demo-staff")
    ok(at.switch_page("pages/upload.py").run())
    assert at.selectbox(key="up_district").options == ["（文件中已有区县列）", demo_copy.districts[0]]

    # ANONYMOUS_VIEW=false turns anonymous viewing off in demo mode too.
    off = ok(_embedded(demo_copy, monkeypatch, ANONYMOUS_VIEW="false").run())
    assert off.title[0].value == "登录" and not off.metric


def test_configured_database_with_a_demo_password_refuses_to_start(demo_copy: Demo, monkeypatch):
    engine = store.make_engine(demo_copy.url)
    accounts.ensure_demo_accounts(engine)
    for user in (None, demo_copy.users[ADMIN_NAME]):
        at = ok(app(demo_copy.url, monkeypatch, user).run())
        refused = texts(at.error)
        assert "仍有使用示例密码的账号" in refused and "拒绝启动" in refused
        assert not at.title and not at.metric and not at.dataframe and not at.text_input
    for name in ("leader", "staff", "evaluator", "admin"):
        accounts.set_active(engine, name, False)
    engine.dispose()
    assert ok(app(demo_copy.url, monkeypatch, demo_copy.users[ADMIN_NAME]).run()).title[0].value.startswith("总览")


# --- user-supplied names are text ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["<b>x</b>", "**x**"])
def test_department_and_item_names_are_shown_literally(demo_copy: Demo, monkeypatch, name: str):
    district, month = demo_copy.districts[0], demo_copy.period.first
    rows = pl.read_csv(cases_csv(demo_copy.url, district, month, 5), infer_schema=False)
    rows = rows.with_columns(pl.lit(name).alias("实施部门"), pl.lit("MD-0001").alias("事项编码"),
                             pl.lit(name).alias("事项名称"))
    engine = store.make_engine(demo_copy.url)
    check, result = upload.import_file(engine, rows.write_csv().encode(), "名称.csv")
    engine.dispose()
    assert result is not None, check.headline()

    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users[LEADER_NAME], period=month), "pages/compare.py")
    at.selectbox(key="drill_district").set_value(district)
    ok(at.run())
    assert name in at.selectbox(key="drill_department").options  # option labels are plain text
    at.selectbox(key="drill_department").set_value(name)
    ok(at.run())
    heading = next(m.value for m in at.markdown if m.value.startswith("各事项"))
    assert heading == f"各事项（{plain(name)}）"  # escaped for Markdown: rendered as the characters typed
    assert f"MD-0001 {name}" in at.selectbox(key="drill_item").options
    items = tables(at, "事项名称")[0]  # the 事项 table (then the lists of cases and evaluations)
    assert name in items["事项名称"].to_list()  # table cells are text
    assert name in table(at, "部门")["部门"].to_list()
