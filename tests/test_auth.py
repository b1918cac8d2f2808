"""Sessions, the permission table, startup refusal, SSO mapping and the account pages (AppTest).

The pages run standalone: a tiny host script (``_host``) does what dashboard.py does for them — it
puts the engine and the settings in the session (``pages._shared.BASE_KEY``) and marks the run —
and then runs the page file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from datasets.access import accounts
from datasets.access.accounts import ADMIN, EVALUATOR, LEADER, STAFF, User
from datasets.common.config import AppSettings
from datasets.operations import admin as actions
from datasets.storage import store
from metrics.admin import save_scoring
from pages import _catalog as catalog
from pages import _session as session
from pages._shared import plain

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "pages"
T0 = dt.datetime(2026, 3, 2, 9, 0)
PW = "secret-pass-1"
SSO_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "dashboard",
        "client_secret": "s3cret",
        "server_metadata_url": "https://idp.example.gov/.well-known/openid-configuration",
    }
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANONYMOUS_VIEW", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'session.db'}"
    engine = store.make_engine(url)
    store.init_db(engine)
    store.add_district(engine, "甲区")
    store.add_district(engine, "乙区")
    engine.dispose()
    yield url


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = store.make_engine(url)
    yield engine
    engine.dispose()


def configured(url: str = "sqlite:///elsewhere.db", **kw: object) -> AppSettings:
    return AppSettings(database_url=url, **kw)


def demo_mode(**kw: object) -> AppSettings:
    return AppSettings(database_url="", **kw)


def audit_rows(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(accounts.audit_log).order_by(accounts.audit_log.c.id)).all()


# --- the permission table -------------------------------------------------------------------------

P = catalog
# page -> (领导, 工作人员, 评估人员, 管理员, visitor when anonymous viewing is allowed)
EXPECTED = {
    P.PAGE_OVERVIEW: (1, 1, 1, 1, 1),
    P.PAGE_COMPARE: (1, 1, 1, 1, 1),
    P.PAGE_PERIODS: (1, 1, 1, 1, 1),
    P.PAGE_INDICATORS: (1, 1, 1, 1, 1),
    P.PAGE_BIGSCREEN: (1, 0, 0, 1, 0),
    P.PAGE_START: (1, 1, 1, 1, 1),
    P.PAGE_RANKING: (1, 0, 1, 1, 0),
    P.PAGE_BULLETIN: (1, 0, 1, 1, 0),
    P.PAGE_UPLOAD: (0, 1, 0, 0, 0),
    P.PAGE_QUALITY: (1, 1, 0, 1, 0),
    P.PAGE_SETTINGS: (0, 0, 0, 1, 0),
    P.PAGE_USERS: (0, 0, 0, 1, 0),
    P.PAGE_AUDIT: (0, 0, 0, 1, 0),
    P.PAGE_DISTRICTS: (0, 0, 0, 1, 0),
    P.PAGE_ACCOUNT: (1, 1, 1, 1, 0),
    P.PAGE_LOGIN: (0, 0, 0, 0, 1),
}
ROLE_ORDER = (LEADER, STAFF, EVALUATOR, ADMIN)


@pytest.mark.parametrize("page", list(EXPECTED))
def test_permission_table_for_every_role_and_page(page: str):
    for role, expected in zip(ROLE_ORDER, EXPECTED[page][:4], strict=True):
        user = User("u", "u", (role,), ("甲区",))
        assert session.page_access(user, page) is bool(expected), (role, page)
        assert session.page_access(user, page, anonymous_ok=True) is bool(expected), (role, page)
    assert session.page_access(None, page, anonymous_ok=True) is bool(EXPECTED[page][4])
    # Without anonymous viewing a visitor sees the login page only.
    assert session.page_access(None, page) is (page == P.PAGE_LOGIN)


def test_table_covers_every_page_and_roles_add_up():
    assert set(EXPECTED) == {p.title for p in catalog.CATALOG}
    both = User("u", "u", (LEADER, STAFF), ("甲区",))
    assert session.page_access(both, P.PAGE_UPLOAD) and session.page_access(both, P.PAGE_RANKING)
    assert not session.page_access(both, P.PAGE_USERS)
    assert not session.page_access(User("u", "u", (ADMIN,)), "不存在的页面")
    # Downloads: evaluators and administrators; leaders only view the ranking.
    for page in (P.PAGE_RANKING, P.PAGE_BULLETIN):
        assert [session.may_download(User("u", "u", (r,)), page) for r in ROLE_ORDER] == [False, False, True, True]
        assert not session.may_download(None, page)
    assert not session.may_download(User("u", "u", (ADMIN,)), P.PAGE_OVERVIEW)  # no ranked tables there


def test_home_page_and_redirects():
    staff = User("s", "s", (STAFF,), ("甲区",))
    assert session.home_page(staff) == P.PAGE_OVERVIEW
    assert session.home_page(None) == P.PAGE_LOGIN
    assert session.home_page(None, anonymous_ok=True) == P.PAGE_OVERVIEW
    assert session.redirect_for(staff, P.PAGE_UPLOAD) is None
    assert session.redirect_for(staff, P.PAGE_USERS) == P.PAGE_OVERVIEW
    no_data = [P.PAGE_START, P.PAGE_UPLOAD, P.PAGE_INDICATORS, P.PAGE_SETTINGS, P.PAGE_LOGIN, P.PAGE_ACCOUNT]
    assert session.redirect_for(staff, P.PAGE_LOGIN, among=no_data) == P.PAGE_START
    assert session.home_page(User("a", "a", (ADMIN,)), among=[P.PAGE_UPLOAD, P.PAGE_USERS]) == P.PAGE_USERS
    assert session.redirect_for(staff, P.PAGE_LOGIN) == P.PAGE_OVERVIEW  # signed in: away from the login page
    assert session.redirect_for(None, P.PAGE_RANKING, anonymous_ok=True) == P.PAGE_LOGIN
    assert session.pages_for(None)[-1] == P.PAGE_LOGIN
    assert session.pages_for(User("a", "a", (ADMIN,)))[-5:] == [P.PAGE_SETTINGS, P.PAGE_ACCOUNT, P.PAGE_USERS,
                                                                P.PAGE_DISTRICTS, P.PAGE_AUDIT]


def test_anonymous_viewing_defaults_per_mode():
    assert session.anonymous_allowed(demo_mode()) is True
    assert session.anonymous_allowed(configured()) is False
    assert session.anonymous_allowed(configured(anonymous_view=True)) is True
    assert session.anonymous_allowed(demo_mode(anonymous_view=False)) is False


def test_anonymous_view_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANONYMOUS_VIEW", "true")
    assert session.anonymous_allowed(configured()) is True


def test_navigation_is_arranged_per_user():
    sections = {"看板": [P.PAGE_OVERVIEW, P.PAGE_RANKING], "数据": [P.PAGE_UPLOAD],
                "账号": [P.PAGE_LOGIN, P.PAGE_ACCOUNT, P.PAGE_USERS]}
    leader = User("l", "l", (LEADER,))
    menu, hidden, home = session.arrange(sections, leader)
    assert menu == {"看板": [P.PAGE_OVERVIEW, P.PAGE_RANKING], "账号": [P.PAGE_ACCOUNT]}  # empty 数据 dropped
    assert hidden == [P.PAGE_UPLOAD, P.PAGE_LOGIN, P.PAGE_USERS] and home == P.PAGE_OVERVIEW
    menu, hidden, home = session.arrange(sections, None)
    assert menu == {"账号": [P.PAGE_LOGIN]} and home == P.PAGE_LOGIN and P.PAGE_OVERVIEW in hidden
    menu, _, home = session.arrange(sections, None, anonymous_ok=True)
    assert menu == {"看板": [P.PAGE_OVERVIEW], "账号": [P.PAGE_LOGIN]} and home == P.PAGE_OVERVIEW


def test_route_redirects_with_a_notice_and_remembers_the_page_asked_for():
    staff = User("s", "s", (STAFF,), ("甲区",))
    evaluator = User("e", "e", (EVALUATOR,))
    state: dict = {}
    assert session.route(state, staff, P.PAGE_UPLOAD) is None and state == {}
    assert session.route(state, staff, P.PAGE_SETTINGS) == P.PAGE_OVERVIEW
    assert session.pop_notice(state) == "当前账号没有“设置”页面的权限，已转到“总览”页面。"
    # A visitor: to the login page, and after signing in to the page asked for (when allowed).
    assert session.route(state, None, P.PAGE_RANKING) == P.PAGE_LOGIN
    assert "请先登录" in session.pop_notice(state)
    assert session.route(state, None, P.PAGE_LOGIN) is None
    assert session.route(state, evaluator, P.PAGE_LOGIN) == P.PAGE_RANKING
    assert session.route(state, evaluator, P.PAGE_LOGIN) == P.PAGE_OVERVIEW  # remembered once
    session.route(state, None, P.PAGE_RANKING)
    assert session.route(state, staff, P.PAGE_LOGIN) == P.PAGE_OVERVIEW  # staff may not open 排名下载
    # A waiting notice (why the session ended) is not replaced.
    state = {session.NOTICE_KEY: "超过 30 分钟未操作"}
    assert session.route(state, None, P.PAGE_UPLOAD) == P.PAGE_LOGIN
    assert session.pop_notice(state) == "超过 30 分钟未操作"


@pytest.mark.parametrize("nav", [catalog.FULL, catalog.EMPTY])
def test_on_a_configured_database_signing_in_returns_to_the_page_asked_for(nav):
    """What dashboard._run does, step by step, without anonymous viewing: /upload opened signed out goes to
    the login page, which is the signed-out navigation's default page and so shown at "/"; after signing
    in, "/" is the signed-in navigation's home (总览 or 开始使用), not the login page, and the session
    must still go to /upload."""
    staff = User("s", "s", (STAFF,), ("甲区",))
    state: dict = {}
    menu, _hidden, home = session.arrange(catalog.signed_out_navigation(), None)
    assert home == P.PAGE_LOGIN  # served at "/"
    shown = [n for names in menu.values() for n in names]
    assert session.route(state, None, P.PAGE_UPLOAD, among=shown) == P.PAGE_LOGIN
    assert session.route(state, None, P.PAGE_LOGIN, among=shown) is None
    menu, _hidden, home = session.arrange(catalog.navigation(nav), staff)
    assert home != P.PAGE_LOGIN  # the first run after signing in shows this page at "/"
    shown = [n for names in menu.values() for n in names]
    assert session.route(state, staff, home, among=shown) == P.PAGE_UPLOAD
    assert session.route(state, staff, P.PAGE_UPLOAD, among=shown) is None
    assert session.route(state, staff, home, among=shown) is None  # remembered once
    # A page the account may not open is not where it lands.
    leader = User("l", "l", (LEADER,))
    session.route(state, None, P.PAGE_UPLOAD)
    assert session.route(state, leader, P.PAGE_OVERVIEW) is None and session.NEXT_KEY not in state


def test_downloads_settings_and_demo_loading_are_audited_and_checked(engine):
    from metrics.scoring import default_settings, load_settings

    admin = accounts.add_user(engine, "root", PW, [ADMIN])
    leader = accounts.add_user(engine, "lead", PW, [LEADER])
    actions.record_download(engine, leader, "效能指数排名_2024-05.xlsx", P.PAGE_RANKING)
    actions.record_download(engine, None, "红牌办件_2024-05.csv", P.PAGE_OVERVIEW)
    rows = [(r.user_name, r.action, r.detail, r.page) for r in audit_rows(engine) if r.action == "download"]
    assert rows == [("lead", "download", "效能指数排名_2024-05.xlsx", P.PAGE_RANKING),
                    (actions.ANONYMOUS_NAME, "download", "红牌办件_2024-05.csv", P.PAGE_OVERVIEW)]

    new = default_settings()
    new.indicators["online_case_rate"].weight = 40.0
    with pytest.raises(accounts.PermissionDenied):
        save_scoring(engine, leader, new)
    assert load_settings(engine).indicators["online_case_rate"].weight != 40.0
    assert len(save_scoring(engine, admin, new)) == 1
    assert save_scoring(engine, admin, new) == []  # no change: nothing saved, nothing audited
    logged = [r for r in audit_rows(engine) if r.action == "settings"]
    assert [(r.user_name, r.page) for r in logged] == [("root", P.PAGE_SETTINGS)]
    assert "实际网办率 · 权重：8 → 40" in logged[0].detail
    with pytest.raises(accounts.PermissionDenied):
        actions.load_demo_data(engine, leader, seed=1, scale=0.01)


def test_upload_districts_follow_the_scope(engine):
    assert actions.upload_districts(engine, User("s", "s", (STAFF,), ("乙区",))) == ["乙区"]
    assert actions.upload_districts(engine, User("s", "s", (STAFF,), ("*",))) == ["甲区", "乙区"]
    assert actions.upload_districts(engine, User("l", "l", (LEADER,), ("甲区",))) == []
    assert actions.upload_districts(engine, None) == []


# --- startup refusal ------------------------------------------------------------------------------


def test_configured_database_with_demo_passwords_refuses_to_start(engine):
    assert actions.startup_problem(engine, configured()) is None  # no accounts at all
    accounts.ensure_demo_accounts(engine)
    problem = actions.startup_problem(engine, configured())
    assert problem is not None and "拒绝启动" in problem
    assert all(name in problem for name in ("leader", "staff", "evaluator", "admin"))
    assert "users passwd" in problem
    # The demo mode (embedded store) is where demo accounts belong.
    assert actions.startup_problem(engine, demo_mode()) is None
    # Once every demo password is changed or the account disabled, the deployment may start.
    for name in ("leader", "staff", "evaluator"):
        accounts.set_password(engine, name, "a-real-password")
    assert "admin" in actions.startup_problem(engine, configured())
    accounts.set_active(engine, "admin", False)
    assert actions.startup_problem(engine, configured()) is None


@pytest.mark.parametrize(("secret", "refused"), [
    ("一段足够长的随机字符串", True),  # the example of docs/sso.md
    ("", True),
    ("short-secret", True),
    ("y" * 31, True),
    ("8f0c2d9e4b7a61f35c0e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f", False),  # secrets.token_hex(32)
    (None, False),  # no single sign-on: the dashboard's sessions need no secret
])
def test_configured_database_refuses_a_weak_sso_cookie_secret(engine, secret, refused):
    problem = actions.startup_problem(engine, configured(), sso_cookie_secret=secret)
    assert (problem is not None) is refused
    if refused:
        assert "cookie_secret" in problem and "拒绝启动" in problem
    assert actions.startup_problem(engine, demo_mode(), sso_cookie_secret=secret) is None


def test_sso_cookie_secret_is_read_only_when_sso_is_configured():
    assert session.sso_cookie_secret(SSO_SECRETS) == "x" * 32
    assert session.sso_cookie_secret({}) is None
    assert session.sso_cookie_secret({"auth": {**SSO_SECRETS["auth"], "client_id": ""}}) is None


def test_demo_accounts_are_listed_only_in_demo_mode(engine):
    assert actions.demo_accounts(engine, configured()).height == 0
    assert accounts.count_users(engine) == 0
    table = actions.demo_accounts(engine, demo_mode())
    assert table.columns == ["账号", "密码", "角色"]
    assert ("admin", "demo-admin") in [(r[0], r[1]) for r in table.iter_rows()]


# --- sessions -------------------------------------------------------------------------------------


def test_session_expires_after_inactivity_and_activity_keeps_it(engine):
    user = accounts.add_user(engine, "zhang", PW, [STAFF], ["甲区"], "张三")
    state: dict = {}
    session.sign_in(state, engine, user, now=T0)
    idle = accounts.SESSION_IDLE_MINUTES
    step = dt.timedelta(minutes=idle - 1)
    # Each run within the idle time refreshes the last-seen time: well past 30 minutes in total.
    assert session.current_user(state, engine, T0 + step) == user
    assert session.current_user(state, engine, T0 + 2 * step) == user
    assert state[session.SEEN_KEY] == T0 + 2 * step
    # Then nothing for longer than the idle time: the session ends, once, with a notice and a log entry.
    late = T0 + 2 * step + dt.timedelta(minutes=idle, seconds=1)
    assert session.current_user(state, engine, late) is None
    assert session.session_user(state) is None
    assert "未操作" in session.pop_notice(state)
    assert session.pop_notice(state) is None
    last = audit_rows(engine)[-1]
    assert (last.user_name, last.action) == ("zhang", "logout") and "会话过期" in last.detail
    assert session.current_user(state, engine, late) is None


def test_session_follows_account_changes(engine):
    user = accounts.add_user(engine, "li", PW, [LEADER], [], "李四")
    state: dict = {}
    session.sign_in(state, engine, user, now=T0)
    accounts.update_user(engine, "li", roles=[LEADER, STAFF], districts=["乙区"], actor="admin")
    fresh = session.current_user(state, engine, T0)
    assert fresh is not None and fresh.can_upload and fresh.districts == ("乙区",)
    accounts.set_active(engine, "li", False)
    assert session.current_user(state, engine, T0) is None
    assert "停用" in session.pop_notice(state)


def test_sign_out_is_audited(engine):
    user = accounts.add_user(engine, "wang", PW, [EVALUATOR])
    state: dict = {"other": 1}
    session.sign_in(state, engine, user, now=T0)
    assert session.session_method(state) == session.PASSWORD
    assert session.sign_out(state, engine, page=catalog.PAGE_ACCOUNT) == session.PASSWORD
    assert session.session_user(state) is None and state["other"] == 1
    last = audit_rows(engine)[-1]
    assert (last.user_name, last.action, last.page) == ("wang", "logout", catalog.PAGE_ACCOUNT)
    assert session.sign_out(state, engine) is None  # nobody signed in: nothing logged
    assert audit_rows(engine)[-1].id == last.id


# --- single sign-on -------------------------------------------------------------------------------


def test_sso_configured_needs_a_complete_auth_section():
    assert session.sso_configured(SSO_SECRETS)
    assert not session.sso_configured({})
    assert not session.sso_configured({"auth": {**SSO_SECRETS["auth"], "client_secret": ""}})
    assert not session.sso_configured({"auth": "yes"})

    class NoFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("no secrets.toml")

    assert not session.sso_configured(NoFile())


def test_sso_identity_maps_to_an_account_or_to_no_access(engine):
    identity = {"is_logged_in": True, "sub": "idp|42", "email": "Li.Si@Example.gov", "name": "李四"}
    state: dict = {}
    assert session.sso_pending(state, identity)
    # No account with that e-mail: no access, a clear message, and no second attempt in this session.
    assert session.sign_in_sso(state, engine, identity) is None
    assert session.session_user(state) is None
    assert "没有对应的可用账号" in session.pop_notice(state)
    assert not session.sso_pending(state, identity)
    assert audit_rows(engine)[-1].action == "login_failed"
    # An administrator creates the account (username = e-mail) and assigns the roles.
    admin = accounts.add_user(engine, "root", PW, [ADMIN])
    actions.create_account(engine, admin, "li.si@example.gov", "李四", [EVALUATOR], password=None)
    state = {}
    user = session.sign_in_sso(state, engine, identity, now=T0)
    assert user is not None and user.username == "li.si@example.gov" and user.roles == (EVALUATOR,)
    assert session.session_method(state) == session.SSO and session.current_user(state, engine, T0) == user
    # The subject is bound: a changed e-mail at the provider still finds the account.
    assert session.sign_in_sso({}, engine, {**identity, "email": "new@example.gov"}) == user
    # After signing out, the identity cookie does not sign the session in again by itself.
    assert session.sign_out(state, engine) == session.SSO
    assert not session.sso_pending(state, identity)
    assert not session.sso_pending({}, {"is_logged_in": False})
    assert session.sign_in_sso({}, engine, {"is_logged_in": False, "email": "li.si@example.gov"}) is None


# --- account administration -----------------------------------------------------------------------


def test_administration_checks_the_actor_and_keeps_an_administrator(engine):
    admin = accounts.add_user(engine, "root", PW, [ADMIN], [], "管理员")
    staff = actions.create_account(engine, admin, "zhao", "赵六", [STAFF], ["甲区"], PW)
    with pytest.raises(accounts.PermissionDenied):
        actions.create_account(engine, staff, "x", "x", [ADMIN], [], PW)
    with pytest.raises(accounts.PermissionDenied):
        actions.reset_password(engine, staff, "root", "another-pass")
    with pytest.raises(accounts.PermissionDenied):
        actions.set_account_active(engine, staff, "root", False)
    with pytest.raises(accounts.PermissionDenied):
        actions.change_account(engine, staff, "zhao", [ADMIN], [])
    with pytest.raises(ValueError, match="区县未配置"):
        actions.change_account(engine, admin, "zhao", [STAFF], ["丙县"])
    with pytest.raises(ValueError, match="不存在"):
        actions.reset_password(engine, admin, "nobody", "another-pass")
    with pytest.raises(ValueError, match="自己"):
        actions.set_account_active(engine, admin, "root", False)
    with pytest.raises(ValueError, match="自己"):
        actions.change_account(engine, admin, "root", [LEADER], [])
    other = actions.create_account(engine, admin, "qian", "钱七", [ADMIN], [], PW)
    actions.set_account_active(engine, admin, "zhao", False)
    actions.set_account_active(engine, other, "root", False)
    # The actor is checked as stored now: a disabled administrator can no longer act.
    with pytest.raises(accounts.PermissionDenied, match="已停用"):
        actions.change_account(engine, admin, "qian", [LEADER], [])
    actions.change_account(engine, other, "zhao", [STAFF, LEADER], ["乙区"])
    assert accounts.get_user(engine, "zhao").districts == ("乙区",)
    actors = [r.user_name for r in audit_rows(engine) if r.action == "account"]
    assert actors[0] == "system" and set(actors[1:]) == {"root", "qian"}  # root itself was made by "system"


def test_audit_csv_has_a_bom_and_neutralises_formulas(engine):
    accounts.audit(engine, "=cmd|' /C calc'!A0", "login_failed", "+SUM(1)", "登录")
    data = actions.audit_csv(accounts.audit_entries(engine))
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    assert "'=cmd" in text and "'+SUM(1)" in text and "登录失败" in text


# --- pages (AppTest) ------------------------------------------------------------------------------


def _host(page: str, url: str, embedded: bool) -> None:
    """What dashboard.py does for a page: the engine and settings in the session, the run marked."""
    import runpy

    import streamlit as st

    from datasets.common.config import AppSettings
    from pages import _shared as shared

    engine = shared.get_engine(url)
    st.session_state[shared.BASE_KEY] = (engine, AppSettings(database_url="" if embedded else url))
    shared.begin_run()
    try:
        runpy.run_path(page, run_name="__main__")
    finally:
        shared.end_run()


def page(name: str, url: str, *, embedded: bool = False, user: User | None = None,
         seen: dt.datetime | None = None) -> AppTest:
    at = AppTest.from_function(_host, kwargs={"page": str(PAGES / f"{name}.py"), "url": url, "embedded": embedded},
                               default_timeout=30)
    if user is not None:
        put_session(at, url, user, seen or store.now())
    return at


def put_session(at: AppTest, url: str, user: User, now: dt.datetime | None = None) -> None:
    """A signed-in session (a record in the store, as the login page makes it) in the app's state."""
    engine = store.make_engine(url)
    state: dict = {}
    session.sign_in(state, engine, user, now=now)
    engine.dispose()
    for key, value in state.items():
        at.session_state[key] = value


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def signed_in(at: AppTest) -> User | None:
    return at.session_state[session.USER_KEY] if session.USER_KEY in at.session_state else None


def login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return ok(at.button[0].click().run())


def test_login_page_password_errors_and_success(url, engine):
    accounts.add_user(engine, "zhang", PW, [STAFF], ["甲区"], "张三")
    at = ok(page("login", url).run())
    assert at.title[0].value == "登录"
    assert not at.dataframe  # no demo accounts on a configured database
    assert "python -m datasets users add admin --role 管理员" in texts(at.info)
    login(at, "zhang", "wrong")
    assert texts(at.error) == accounts.LOGIN_FAILED  # the same for unknown accounts: no "还可尝试 N 次"
    assert signed_in(at) is None
    login(at, "zhang", PW)
    user = signed_in(at)
    assert user is not None and user.username == "zhang"
    assert "已登录" in texts(at.success)
    assert [r.action for r in audit_rows(engine)][-2:] == ["login_failed", "login"]
    assert audit_rows(engine)[-1].page == catalog.PAGE_LOGIN


def test_login_page_lists_demo_accounts_in_demo_mode(url):
    at = ok(page("login", url, embedded=True).run())
    demo = at.dataframe[0].value
    assert list(demo.columns) == ["账号", "密码", "角色"]
    assert dict(zip(demo["账号"], demo["密码"], strict=True))["evaluator"] == "demo-evaluator"
    login(at, "admin", "demo-admin")
    assert signed_in(at).is_admin


@pytest.mark.parametrize("name", ["<b>x</b>", "**x**"])
def test_user_supplied_names_are_shown_literally(url, engine, name):
    accounts.add_user(engine, "zhou", PW, [ADMIN], [], name)
    at = ok(page("login", url).run())
    login(at, "zhou", PW)
    shown = texts(at.success)
    assert plain(name) in shown  # escaped for Markdown: rendered as the characters typed
    assert name not in shown
    users = ok(page("users", url, user=signed_in(at)).run())
    table = next(d.value for d in users.dataframe if "姓名" in d.value.columns)
    assert name in table["姓名"].to_list()  # tables show cells as text


def test_login_page_maps_an_sso_identity(url, engine):
    accounts.add_user(engine, "li.si@example.gov", PW, [LEADER], [], "李四")
    at = page("login", url)
    at.secrets = SSO_SECRETS
    at.user = {"is_logged_in": True, "sub": "idp|7", "email": "li.si@example.gov", "name": "李四"}
    ok(at.run())
    user = signed_in(at)
    assert user is not None and user.username == "li.si@example.gov"
    assert at.session_state[session.METHOD_KEY] == session.SSO

    stranger = page("login", url)
    stranger.secrets = SSO_SECRETS
    stranger.user = {"is_logged_in": True, "sub": "idp|8", "email": "who@example.gov"}
    ok(stranger.run())
    assert signed_in(stranger) is None
    assert "没有对应的可用账号" in texts(stranger.warning) and plain("who@example.gov") in texts(stranger.warning)


def test_login_page_sso_button_starts_st_login(url, monkeypatch):
    import streamlit as st

    calls: list[object] = []
    monkeypatch.setattr(st, "login", lambda provider=None: calls.append(provider))
    at = page("login", url)
    at.secrets = SSO_SECRETS
    at.user = {"is_logged_in": False}
    ok(at.run())
    ok(at.button(key="login_sso").click().run())
    assert calls == [None]
    assert signed_in(at) is None

    plain = ok(page("login", url).run())  # no [auth] section: no SSO button
    assert not [b for b in plain.button if b.key == "login_sso"]


def test_account_page_changes_the_password_and_signs_out(url, engine):
    user = accounts.add_user(engine, "sun", PW, [EVALUATOR], [], "孙八")
    at = ok(page("account", url).run())
    assert "请先登录" in texts(at.warning) and not at.text_input

    at = ok(page("account", url, user=user).run())

    def change(old: str, new: str, repeat: str) -> None:
        at.text_input(key="pw_old").input(old)
        at.text_input(key="pw_new").input(new)
        at.text_input(key="pw_repeat").input(repeat)
        ok(at.button[0].click().run())

    change("wrong-one", "new-password-1", "new-password-1")
    assert "原密码不正确" in texts(at.error)
    change(PW, "new-password-1", "new-password-2")
    assert "不一致" in texts(at.error)
    change(PW, "short", "short")
    assert "至少 8 位" in texts(at.error)
    change(PW, "new-password-1", "new-password-1")
    # Every session of the account ended with the change, this one too: the page says why.
    assert signed_in(at) is None and "新密码重新登录" in texts(at.warning)
    assert accounts.authenticate(engine, "sun", "new-password-1").user is not None

    at = ok(page("account", url, user=user).run())
    ok(at.button(key="account_sign_out").click().run())
    assert signed_in(at) is None
    assert "请先登录" in texts(at.warning)
    last = [r for r in audit_rows(engine) if r.action == "logout"][-1]
    assert (last.user_name, last.page) == ("sun", catalog.PAGE_ACCOUNT)


def test_an_idle_session_is_ended_on_the_next_page_run(url, engine):
    user = accounts.add_user(engine, "wu", PW, [EVALUATOR])
    stale = store.now() - dt.timedelta(minutes=accounts.SESSION_IDLE_MINUTES + 5)
    at = ok(page("account", url, user=user, seen=stale).run())
    assert signed_in(at) is None
    assert "未操作" in texts(at.warning) and "请先登录" in texts(at.warning)


def test_users_page_is_for_administrators_and_audits_every_change(url, engine):
    staff = accounts.add_user(engine, "staff1", PW, [STAFF], ["甲区"])
    at = ok(page("users", url, user=staff).run())
    assert "没有“账号管理”页面的权限" in texts(at.error) and not at.dataframe

    admin = accounts.add_user(engine, "root", PW, [ADMIN], [], "管理员")
    at = ok(page("users", url, user=admin).run())
    # Create.
    at.text_input(key="new_username").input("zheng")
    at.text_input(key="new_display_name").input("郑九")
    at.multiselect(key="new_roles").set_value([STAFF])
    at.multiselect(key="new_districts").set_value(["乙区"])
    at.text_input(key="new_password").input(PW)
    at.text_input(key="new_repeat").input(PW)
    ok(at.button[0].click().run())
    assert "已新建账号 zheng" in texts(at.success)
    made = accounts.get_user(engine, "zheng")
    assert made.roles == (STAFF,) and made.districts == ("乙区",)
    # A refused creation shows the reason.
    at.text_input(key="new_username").input("zheng")
    at.multiselect(key="new_roles").set_value([LEADER])
    at.text_input(key="new_password").input(PW)
    at.text_input(key="new_repeat").input(PW)
    ok(at.button[0].click().run())
    assert "已存在" in texts(at.error)
    # Reset a password.
    at.selectbox(key="pw_target").set_value("zheng")
    at.text_input(key="pw_reset").input("reset-pass-1")
    at.text_input(key="pw_reset_repeat").input("reset-pass-1")
    ok(at.button[1].click().run())
    assert accounts.authenticate(engine, "zheng", "reset-pass-1").user is not None
    # Disable, and refuse to disable oneself.
    at.selectbox(key="active_target").set_value("zheng")
    at.radio(key="active_action").set_value("停用")
    ok(at.button[2].click().run())
    assert not accounts.get_user(engine, "zheng").active
    assert "已停用" in list(at.dataframe[0].value["状态"])
    at.selectbox(key="active_target").set_value("root")
    ok(at.button[2].click().run())
    assert "不能停用自己" in texts(at.error)
    # Change roles and districts.
    at.selectbox(key="edit_target").set_value("zheng")
    ok(at.run())
    index = accounts.account_names(engine).index("zheng")
    assert at.multiselect(key=f"edit_roles_{index}").value == [STAFF]
    at.multiselect(key=f"edit_roles_{index}").set_value([STAFF, LEADER])
    at.multiselect(key=f"edit_districts_{index}").set_value(["甲区", "乙区"])
    ok(at.button[3].click().run())
    changed = accounts.get_user(engine, "zheng")
    assert changed.roles == (STAFF, LEADER) and changed.districts == ("甲区", "乙区")
    entries = [(r.user_name, r.detail) for r in audit_rows(engine) if r.action in ("account", "password")]
    assert [e[0] for e in entries[-4:]] == ["root"] * 4
    assert [e[1].split(" ")[0] for e in entries[-4:]] == ["新建账号", "修改账号", "停用账号", "修改账号"]


def test_audit_page_filters_and_downloads(url, engine):
    leader = accounts.add_user(engine, "lead", PW, [LEADER])
    at = ok(page("audit", url, user=leader).run())
    assert "没有“审计日志”页面的权限" in texts(at.error)

    admin = accounts.add_user(engine, "root", PW, [ADMIN])
    accounts.authenticate(engine, "lead", "wrong")
    accounts.authenticate(engine, "lead", PW)
    at = ok(page("audit", url, user=admin).run())
    table = at.dataframe[0].value
    assert {"时间", "账号", "操作", "内容", "页面"} <= set(table.columns)
    assert len(table) == len(audit_rows(engine))
    at.selectbox(key="audit_action").set_value("login_failed")
    ok(at.run())
    assert set(at.dataframe[0].value["操作"]) == {"登录失败"}
    at.selectbox(key="audit_action").set_value("")
    at.selectbox(key="audit_user").set_value("lead")
    ok(at.run())
    shown = at.dataframe[0].value
    assert set(shown["账号"]) == {"lead"} and set(shown["操作"]) == {"登录", "登录失败"}
    assert [b.label for b in at.download_button] == ["下载 CSV"]
    assert at.download_button[0].proto.url.endswith(".csv")


def _sidebar_host(url: str) -> None:
    import streamlit as st

    from pages import _auth_ui as ui
    from pages import _session as session
    from pages import _shared as shared

    engine = shared.get_engine(url)
    ui.account_box(engine, session.current_user(st.session_state, engine), page="总览")


def test_sidebar_account_box_shows_the_user_and_signs_out(url, engine):
    user = accounts.add_user(engine, "feng", PW, [LEADER], [], "<i>冯</i>")
    at = AppTest.from_function(_sidebar_host, kwargs={"url": url}, default_timeout=30)
    put_session(at, url, user)
    ok(at.run())
    assert plain("<i>冯</i>（feng）· 领导") in texts(at.sidebar.markdown)
    ok(at.sidebar.button(key="sidebar_sign_out").click().run())
    assert signed_in(at) is None and not at.sidebar.button
    last = audit_rows(engine)[-1]
    assert (last.user_name, last.action, last.page) == ("feng", "logout", "总览")


# --- 区县配置 ------------------------------------------------------------------------------------------


def test_districts_are_added_and_edited_by_administrators_only_and_audited(engine):
    admin = accounts.add_user(engine, "root", PW, [ADMIN])
    leader = accounts.add_user(engine, "lead2", PW, [LEADER])
    with pytest.raises(accounts.PermissionDenied):
        actions.save_district(engine, leader, "云湖区", "370102", ["云湖"])
    assert "新增区县 云湖区" in actions.save_district(engine, admin, "云湖区", "370102", ["云湖", " 云湖 "])
    actions.save_district(engine, admin, "青山区", None, ["青山"])
    # Editing replaces the code and the aliases (the old alias no longer matches).
    assert "修改区县 云湖区" in actions.save_district(engine, admin, "云湖区", "370199", ["云湖新区"])
    lookup = store.district_lookup(engine)
    assert lookup["370199"] == "云湖区" and lookup["云湖新区"] == "云湖区" and "云湖" not in lookup
    with pytest.raises(ValueError, match="已是区县“青山区”"):
        actions.save_district(engine, admin, "云湖区", None, ["青山"])
    with pytest.raises(ValueError, match="不能为空"):
        actions.save_district(engine, admin, "  ", None, [])
    logged = [(r.user_name, r.action, r.detail, r.page) for r in audit_rows(engine) if r.action == "district"]
    assert logged == [("root", "district", "新增区县 云湖区：代码 370102；别名 云湖", "区县配置"),
                      ("root", "district", "新增区县 青山区：代码 无；别名 青山", "区县配置"),
                      ("root", "district", "修改区县 云湖区：代码 370199；别名 云湖新区", "区县配置")]


def test_districts_page_adds_a_district(url, engine):
    admin = accounts.add_user(engine, "root", PW, [ADMIN])
    at = ok(page("districts", url, user=admin).run())
    assert at.title[0].value == "区县配置"
    at.text_input(key="district_name_（新增区县）").input("澜湾新区")
    at.text_input(key="district_aliases_（新增区县）").input("澜湾，澜湾区")
    ok(next(b for b in at.button if b.label == "保存").click().run())
    assert "已新增区县 澜湾新区" in at.success[0].value
    assert store.district_lookup(engine)["澜湾区"] == "澜湾新区"
    # The boundary uploader states the page's limit (5 MB), not Streamlit's default 200 MB.
    assert at.file_uploader(key="shape_file").proto.max_upload_size_mb == 5


