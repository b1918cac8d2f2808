"""Sessions end when they should (issue 23, part 3): server-side records, revocation, idle and absolute
limits, the reload cookie, the old signed tokens refused, and 账号管理's session list.

Unit tests run pages/_session.py on a plain dict as the session state and inject ``now``; each runs on
SQLite and, with TEST_POSTGRES_URL set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from datasets.access import accounts, sessions
from datasets.access.accounts import ADMIN, EVALUATOR, STAFF
from datasets.common.config import AppSettings
from datasets.operations import admin as actions
from datasets.storage import store
from pages import _catalog as catalog
from pages import _cookie_server as cookie_server
from pages import _session as session

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 3, 2, 9, 0)
PW = "secret-pass-1"
IDLE = 30


@pytest.fixture
def engine(any_engine: sa.Engine) -> sa.Engine:
    store.add_district(any_engine, "甲区")
    return any_engine


@pytest.fixture
def users(engine):
    return {
        "eva": accounts.add_user(engine, "eva", PW, [EVALUATOR]),
        "root": accounts.add_user(engine, "root", PW, [ADMIN]),
    }


def signed_in(engine, user, now=T0, method=session.PASSWORD) -> dict:
    state: dict = {}
    session.sign_in(state, engine, user, method=method, now=now, max_hours=12)
    return state


def audit(engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(accounts.audit_log).order_by(accounts.audit_log.c.id)).all()


def cookie_of(state: dict) -> str:
    action = session.cookie_action(state, T0)
    assert action is not None and action[0] == session.SET
    return action[1]


def restore(engine, token, now=T0, idle=IDLE) -> tuple[dict, object]:
    """A new browser (or a reload) presenting ``token``: a fresh Streamlit session."""
    state: dict = {}
    return state, session.restore_from_cookie(state, engine, token, now, idle_minutes=idle)


def test_an_existing_store_gets_the_sessions_table_on_start(engine, users):
    """A store made before server-side sessions: the start-up's ``init_db`` (create_all) adds the table."""
    sessions.sessions.drop(engine)
    assert "sessions" not in sa.inspect(engine).get_table_names()
    store.init_db(engine)  # what pages/_shared.get_engine and the CLI do on start
    assert "sessions" in sa.inspect(engine).get_table_names()
    state = signed_in(engine, users["eva"])
    assert session.current_user(state, engine, T0, idle_minutes=IDLE) == users["eva"]


# --- the record and the cookie ------------------------------------------------------------------------


def test_the_cookie_is_an_opaque_random_id_and_only_its_hash_is_stored(engine, users):
    state = signed_in(engine, users["eva"])
    token = cookie_of(state)
    assert len(token) == 43 and "." not in token and "eva" not in token and PW not in token
    with engine.connect() as conn:
        row = conn.execute(sa.select(sessions.sessions)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in tuple(map(str, row))
    assert (row.username, row.method, row.created_at, row.last_seen_at, row.expires_at, row.revoked_at) == (
        "eva", "password", T0, T0, T0 + dt.timedelta(hours=12), None)
    # The cookie is written once per session, with the time left until the absolute end as its max-age.
    assert session.cookie_action(state, T0) is None
    assert signed_in(engine, users["eva"]) != state  # every sign-in is a session of its own
    # Another browser with the copied cookie gets the same session (a reload), while it is open.
    other, user = restore(engine, token, T0 + dt.timedelta(minutes=5))
    assert user == users["eva"] and session.session_id(other) == session.session_id(state)
    assert session.cookie_action(other, T0) is None  # the browser already holds it


def test_cookie_max_age_is_the_time_left(engine, users):
    state = signed_in(engine, users["eva"])
    state.pop(session.COOKIE_KEY, None)
    action = session.cookie_action(state, T0 + dt.timedelta(hours=2))
    assert action is not None and action[2] == 10 * 3600


def test_sso_sessions_are_records_but_set_no_cookie(engine, users):
    state = signed_in(engine, users["eva"], method=session.SSO)
    assert session.session_id(state) is not None and session.cookie_action(state, T0) is None
    assert [s.method for s in sessions.active(engine, idle_minutes=IDLE, now=T0)] == ["sso"]


# --- every revocation path ---------------------------------------------------------------------------


def _revoke_by_sign_out(engine, state, users):
    session.sign_out(state, engine, page=catalog.PAGE_ACCOUNT)


def _revoke_by_password_change(engine, state, users):
    accounts.change_own_password(engine, "eva", PW, "new-password-9")


def _revoke_by_disabling(engine, state, users):
    actions.set_account_active(engine, users["root"], "eva", False)


def _revoke_by_admin_reset(engine, state, users):
    actions.reset_password(engine, users["root"], "eva", "reset-pass-9")


def _revoke_by_admin_all(engine, state, users):
    actions.end_account_sessions(engine, users["root"], "eva")


def _revoke_by_admin_one(engine, state, users):
    actions.end_session(engine, users["root"], session.session_id(state))


REVOCATIONS = {
    "sign-out": (_revoke_by_sign_out, sessions.LOGOUT, "退出登录"),
    "password change": (_revoke_by_password_change, sessions.PASSWORD_CHANGED, "新密码"),
    "disable": (_revoke_by_disabling, sessions.DISABLED, "停用"),
    "admin reset": (_revoke_by_admin_reset, sessions.PASSWORD_CHANGED, "新密码"),
    "admin ends all": (_revoke_by_admin_all, sessions.ADMIN, "管理员"),
    "admin ends one": (_revoke_by_admin_one, sessions.ADMIN, "管理员"),
}


@pytest.mark.parametrize("how", list(REVOCATIONS))
def test_every_revocation_ends_the_session_and_its_copied_cookie(engine, users, how):
    revoke, reason, notice = REVOCATIONS[how]
    here = signed_in(engine, users["eva"])
    token = cookie_of(here)
    elsewhere = signed_in(engine, users["eva"])  # a second browser, signed in on its own
    copied, _ = restore(engine, token)  # a third holds a copy of the first one's cookie
    unrelated = signed_in(engine, users["root"])
    revoke(engine, here, users)
    later = T0 + dt.timedelta(minutes=1)
    # The cookie copied before the revocation signs nobody in from any browser.
    assert restore(engine, token, later)[1] is None
    # The live sessions end at their next run, with a notice saying why (sign-out on this one is immediate).
    for state in ([] if how == "sign-out" else [here]) + [copied]:
        assert session.current_user(state, engine, later, idle_minutes=IDLE) is None
        assert notice in session.pop_notice(state)
    if how == "admin ends one":  # one session only: the account's other session stays
        assert session.current_user(elsewhere, engine, later, idle_minutes=IDLE) is not None
    else:
        assert session.current_user(elsewhere, engine, later, idle_minutes=IDLE) is None
    assert session.current_user(unrelated, engine, later, idle_minutes=IDLE) == users["root"]
    with engine.connect() as conn:
        reasons = {r.revoked_reason for r in conn.execute(
            sa.select(sessions.sessions).where(sessions.sessions.c.username == "eva")
            .where(sessions.sessions.c.revoked_at.is_not(None)))}
    assert reasons == {reason}


def test_re_enabling_an_account_revives_no_session(engine, users):
    state = signed_in(engine, users["eva"])
    token = cookie_of(state)
    accounts.set_active(engine, "eva", False)
    accounts.set_active(engine, "eva", True)
    assert restore(engine, token)[1] is None
    assert session.current_user(state, engine, T0, idle_minutes=IDLE) is None
    assert sessions.active(engine, idle_minutes=IDLE, now=T0, username="eva") == []
    # A new sign-in works as usual.
    assert session.current_user(signed_in(engine, users["eva"]), engine, T0, idle_minutes=IDLE) == users["eva"]


def test_sign_out_ends_every_session_of_the_account_and_is_audited(engine, users):
    states = [signed_in(engine, users["eva"]) for _ in range(3)]
    cookie_of(states[0])  # the page shown after signing in wrote the cookie
    assert session.sign_out(states[0], engine, page=catalog.PAGE_ACCOUNT) == session.PASSWORD
    last = audit(engine)[-1]
    assert (last.user_name, last.action, last.page) == ("eva", "logout", catalog.PAGE_ACCOUNT)
    assert "其他 2 个登录会话" in last.detail
    assert all(session.current_user(s, engine, T0, idle_minutes=IDLE) is None for s in states[1:])
    # The browser's cookie is removed on the next page shown.
    assert session.cookie_action(states[0], T0) == (session.CLEAR, "", 0)
    assert session.cookie_action(states[0], T0) is None


def test_administrator_revocations_are_audited_and_checked(engine, users):
    state = signed_in(engine, users["eva"])
    sid = session.session_id(state)
    with pytest.raises(accounts.PermissionDenied):
        actions.end_session(engine, users["eva"], sid)
    assert actions.end_session(engine, users["root"], sid) == "eva"
    with pytest.raises(ValueError, match="已经结束"):
        actions.end_session(engine, users["root"], sid)
    with pytest.raises(ValueError, match="不存在"):
        actions.end_session(engine, users["root"], 99_999)
    signed_in(engine, users["eva"])
    signed_in(engine, users["eva"])
    assert actions.end_account_sessions(engine, users["root"], "eva") == 2
    logged = [(r.user_name, r.action, r.detail) for r in audit(engine) if r.action == "session"]
    assert [(u, a) for u, a, _ in logged] == [("root", "session")] * 2
    assert f"登录会话 {sid}" in logged[0][2] and "全部登录会话（2 个）" in logged[1][2]
    assert accounts.ACTION_LABELS["session"] == "结束会话"


# --- idle timeout and absolute lifetime ------------------------------------------------------------------


def test_idle_timeout_is_measured_from_the_last_activity(engine, users):
    state = signed_in(engine, users["eva"])
    token = cookie_of(state)
    step = dt.timedelta(minutes=IDLE - 1)
    for k in (1, 2, 3):  # activity within the idle time keeps it, well past 30 minutes in total
        assert session.current_user(state, engine, T0 + k * step, idle_minutes=IDLE) == users["eva"]
    # A reload after that still finds it: the activity reached the store (at most a minute late).
    reload = T0 + 3 * step + dt.timedelta(minutes=IDLE - 2)
    assert restore(engine, token, reload)[1] == users["eva"]
    # The reload was activity too (for every tab of the session); then nothing for longer than the idle time.
    assert session.current_user(state, engine, reload + dt.timedelta(minutes=IDLE - 1), idle_minutes=IDLE)
    late = reload + dt.timedelta(minutes=2 * IDLE - 1, seconds=1)
    assert restore(engine, token, late)[1] is None
    assert session.current_user(state, engine, late, idle_minutes=IDLE) is None
    assert "超过 30 分钟未操作" in session.pop_notice(state)
    last = audit(engine)[-1]
    assert (last.user_name, last.action) == ("eva", "logout") and "会话过期" in last.detail


@pytest.mark.parametrize(("idle", "minutes", "alive"), [(30, 30, True), (30, 31, False), (5, 5, True), (5, 6, False)])
def test_idle_limit_is_a_setting(engine, users, idle, minutes, alive):
    state = signed_in(engine, users["eva"])
    token = cookie_of(state)
    at = T0 + dt.timedelta(minutes=minutes)
    assert (restore(engine, token, at, idle)[1] is not None) is alive
    assert (session.current_user(state, engine, at, idle_minutes=idle) is not None) is alive


def test_absolute_lifetime_ends_even_an_active_session(engine, users):
    state: dict = {}
    session.sign_in(state, engine, users["eva"], now=T0, max_hours=2)
    token = cookie_of(state)
    t = T0
    while t < T0 + dt.timedelta(hours=2) - dt.timedelta(minutes=10):
        t += dt.timedelta(minutes=10)
        assert session.current_user(state, engine, t, idle_minutes=IDLE) == users["eva"]
    assert restore(engine, token, T0 + dt.timedelta(hours=2, seconds=-1))[1] is not None
    end = T0 + dt.timedelta(hours=2)
    assert restore(engine, token, end)[1] is None
    assert session.current_user(state, engine, end, idle_minutes=IDLE) is None
    assert "登录已满 2 小时" in session.pop_notice(state)


def test_the_big_screen_stays_signed_in_for_days_and_still_ends_when_closed_or_revoked(engine, users):
    """大屏展示 reruns itself every 10 minutes (pages/bigscreen.py) and each run calls keep_displaying:
    three days on a clock advanced in steps, against a 12-hour absolute lifetime."""
    hours, step = 12, dt.timedelta(minutes=10)
    screen: dict = {}
    session.sign_in(screen, engine, users["eva"], now=T0, max_hours=hours)
    desk = signed_in(engine, users["root"])  # an ordinary session, active as often, not on the screen
    assert session.cookie_action(screen, T0)[0] == session.SET
    renewed: list[dt.datetime] = []
    t = T0
    while t < T0 + dt.timedelta(days=3):
        t += step
        assert session.current_user(screen, engine, t, idle_minutes=IDLE) == users["eva"], t
        before = screen[session.EXPIRES_KEY]
        session.keep_displaying(screen, engine, t, max_hours=hours, idle_minutes=IDLE)
        if screen[session.EXPIRES_KEY] != before:
            renewed.append(t)
            # The reload cookie is written again, for the new lifetime.
            assert session.cookie_action(screen, t) == (session.SET, screen[session.TOKEN_KEY], hours * 3600)
        assert session.cookie_action(screen, t) is None
        if t < T0 + dt.timedelta(hours=hours):
            session.current_user(desk, engine, t, idle_minutes=IDLE)
    # Renewed once less than half the lifetime was left: every 6 hours, not on every run.
    assert renewed[:2] == [T0 + dt.timedelta(hours=6, minutes=10), T0 + dt.timedelta(hours=12, minutes=20)]
    assert len(renewed) == 11
    with engine.connect() as conn:
        ends = dict(conn.execute(sa.select(sessions.sessions.c.username, sessions.sessions.c.expires_at)).all())
    assert ends["eva"] == renewed[-1] + dt.timedelta(hours=hours)
    assert ends["root"] == T0 + dt.timedelta(hours=hours)  # the desk's session was not extended
    assert session.current_user(desk, engine, T0 + dt.timedelta(hours=hours), idle_minutes=IDLE) is None
    # The screen switched off: no runs, so no activity; it ends when idle and is not renewed any more.
    off = t + dt.timedelta(minutes=IDLE + 1)
    assert sessions.renew(engine, session.session_id(screen), max_hours=hours, idle_minutes=IDLE,
                          now=off + dt.timedelta(hours=hours)) is None
    assert session.current_user(screen, engine, off, idle_minutes=IDLE) is None
    # A revoked screen session is never renewed.
    other: dict = {}
    session.sign_in(other, engine, users["eva"], now=t, max_hours=hours)
    sid = session.session_id(other)
    sessions.revoke(engine, sid, sessions.ADMIN, t)
    assert sessions.renew(engine, sid, max_hours=hours, idle_minutes=IDLE, now=t + dt.timedelta(hours=7)) is None


def test_last_seen_is_written_at_most_once_a_minute(engine, users, monkeypatch):
    state = signed_in(engine, users["eva"])
    writes: list[int] = []
    real = sessions.touch
    monkeypatch.setattr(sessions, "touch", lambda eng, sid, now=None: writes.append(sid) or real(eng, sid, now))
    for second in range(0, 181, 5):  # a rerun every 5 seconds for 3 minutes
        session.current_user(state, engine, T0 + dt.timedelta(seconds=second), idle_minutes=IDLE)
    assert len(writes) == 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(sessions.sessions.c.last_seen_at)).scalar() == T0 + dt.timedelta(minutes=3)
    # The store's condition holds too: a write within the minute is a no-op.
    assert not sessions.touch(engine, session.session_id(state), T0 + dt.timedelta(minutes=3, seconds=30))


def test_a_state_without_a_record_is_no_session(engine, users):
    state = {session.USER_KEY: users["root"], session.SEEN_KEY: T0}  # e.g. forged or left from an old version
    assert session.current_user(state, engine, T0, idle_minutes=IDLE) is None
    assert session.session_user(state) is None


# --- the old signed tokens -------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def old_token(engine, username: str, expires: dt.datetime, secret: str = "") -> str:
    """A token exactly as the HMAC version signed it (server secret + the account's password hash)."""
    with engine.connect() as conn:
        pw_hash = conn.execute(sa.select(accounts.users.c.password_hash)
                               .where(accounts.users.c.username == username)).scalar()
    key = hashlib.sha256(f"{secret}\x00{pw_hash}".encode()).digest()
    body = f"{_b64(username.encode())}.{int(expires.timestamp())}"
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("years", [0, 10])
def test_old_signed_tokens_are_refused(engine, users, years):
    expires = store.now() + dt.timedelta(minutes=30) + dt.timedelta(days=365 * years)
    for secret in ("", "server-secret"):
        token = old_token(engine, "root", expires, secret)
        state, user = restore(engine, token, store.now())
        assert user is None and session.session_user(state) is None
        # and the browser is told to drop it
        assert session.cookie_action(state) == (session.CLEAR, "", 0)
    assert not hasattr(session, "user_from_token") and not hasattr(session, "session_token")
    assert "session_secret" not in AppSettings.model_fields


@pytest.mark.parametrize("value", ["", "x", "a" * 43, "a" * 5000, "ü" * 10, "\x00"])
def test_forged_cookie_values_are_refused(engine, users, value):
    signed_in(engine, users["eva"])
    assert restore(engine, value)[1] is None


# --- the server-set cookie (pages/_cookie_server.py) -------------------------------------------------


def test_handoff_codes_are_single_use_and_short_lived():
    code = cookie_server.handoff("tok", 600, True, now=100.0)
    assert cookie_server.redeem(code, now=101.0) == ("tok", 600, True)
    assert cookie_server.redeem(code, now=101.0) is None  # used
    late = cookie_server.handoff("tok", 600, False, now=100.0)
    assert cookie_server.redeem(late, now=100.0 + cookie_server.HANDOFF_SECONDS) is None
    assert cookie_server.redeem("made-up", now=100.0) is None
    header = cookie_server.set_cookie_header("tok", 600, True)
    assert header == "gov_dashboard_session=tok; Path=/; Max-Age=600; HttpOnly; SameSite=Strict; Secure"


def asgi(app, method: str, path: str, body: str = "", headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """One HTTP request straight through an ASGI app (no HTTP client library needed)."""
    import asyncio

    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
             "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body.encode(), "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def test_cookie_routes_set_httponly_cookies_only_with_the_header():
    from starlette.applications import Starlette

    app = Starlette(routes=cookie_server.routes())
    header = {cookie_server.HEADER: "1"}
    code = cookie_server.handoff("tok-1", 3600, False)
    assert asgi(app, "POST", cookie_server.PATH, code)[0] == 403  # no header: e.g. a cross-site form
    assert cookie_server.redeem(code) is not None  # … and the code was not spent by it
    code = cookie_server.handoff("tok-1", 3600, False)
    status, headers = asgi(app, "POST", cookie_server.PATH, code, header)
    assert status == 204
    assert headers["set-cookie"] == "gov_dashboard_session=tok-1; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict"
    assert asgi(app, "POST", cookie_server.PATH, code, header)[0] == 403  # used once
    status, headers = asgi(app, "POST", cookie_server.PATH + "/end", "", {**header, "X-Forwarded-Proto": "https"})
    assert headers["set-cookie"] == "gov_dashboard_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
    assert asgi(app, "GET", cookie_server.PATH)[0] == 405
    # Under a base path (server.baseUrlPath) the routes move with it.
    code = cookie_server.handoff("tok-2", 60, False)
    moved = Starlette(routes=cookie_server.routes("/dash/"))
    assert asgi(moved, "POST", "/dash" + cookie_server.PATH, code, header)[0] == 204


def test_streamlit_run_dashboard_py_serves_an_st_app_with_the_cookie_routes():
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(ROOT / "dashboard.py")
    assert found.is_asgi_app and found.app_name == "app"


# --- password hashing is capped --------------------------------------------------------------------------


def test_password_hashing_runs_at_most_a_few_at_once(monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()

    class SlowHasher:
        def verify(self, stored, password):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return False

    monkeypatch.setattr(accounts, "_hasher", SlowHasher)
    threads = [threading.Thread(target=accounts._verify, args=("$argon2id$x", "pw")) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == accounts.HASH_CONCURRENCY == 3


def test_a_sign_in_waiting_for_a_hashing_slot_holds_no_database_lock(sqlite_engine):
    accounts.add_user(sqlite_engine, "eva", PW, [EVALUATOR])
    for _ in range(accounts.HASH_CONCURRENCY):
        accounts._hash_slots.acquire()
    results: list = []
    waiting = threading.Thread(target=lambda: results.append(accounts.authenticate(sqlite_engine, "eva", PW)))
    try:
        waiting.start()
        time.sleep(0.3)
        assert results == [] and waiting.is_alive()  # queued for a slot …
        # … without SQLite's write lock (BEGIN IMMEDIATE): another writer goes ahead at once.
        started = time.monotonic()
        accounts.audit(sqlite_engine, "probe", "login")
        assert time.monotonic() - started < 1.0
    finally:
        for _ in range(accounts.HASH_CONCURRENCY):
            accounts._hash_slots.release()
    waiting.join(10)
    assert results and results[0].user is not None


# --- 账号管理: the session list (AppTest) --------------------------------------------------------------


def _host(page: str, url: str) -> None:
    import runpy

    import streamlit as st

    from datasets.common.config import AppSettings
    from pages import _shared as shared

    engine = shared.get_engine(url)
    st.session_state[shared.BASE_KEY] = (engine, AppSettings(database_url=url))
    shared.begin_run()
    try:
        runpy.run_path(page, run_name="__main__")
    finally:
        shared.end_run()


def test_users_page_lists_sessions_and_ends_them(tmp_path, monkeypatch):
    for name in ("ANONYMOUS_VIEW", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    engine = store.make_engine(url)
    store.init_db(engine)
    store.add_district(engine, "甲区")
    root = accounts.add_user(engine, "root", PW, [ADMIN])
    clerk = accounts.add_user(engine, "clerk", PW, [STAFF], ["甲区"])
    now = store.now()
    clerk_states = [signed_in(engine, clerk, now) for _ in range(2)]
    at = AppTest.from_function(_host, kwargs={"page": str(ROOT / "pages" / "users.py"), "url": url},
                               default_timeout=30)
    for key, value in signed_in(engine, root, now).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert list(table.columns) == ["编号", "账号", "方式", "登录时间", "最近活动", "到期时间", "客户端"]
    assert sorted(table["账号"]) == ["clerk", "clerk", "root"] and set(table["方式"]) == {"账号密码"}
    # End one of clerk's sessions.
    one = session.session_id(clerk_states[0])
    at.selectbox(key="session_target").set_value(one)
    next(b for b in at.button if b.label == "结束此会话").click().run()
    assert not at.exception and f"已结束账号 clerk 的登录会话 {one}" in at.success[0].value
    assert session.current_user(clerk_states[0], engine, now, idle_minutes=IDLE) is None
    assert session.current_user(clerk_states[1], engine, now, idle_minutes=IDLE) == clerk
    # Then all of clerk's.
    at.selectbox(key="session_account").set_value("clerk")
    next(b for b in at.button if b.label == "结束全部会话").click().run()
    assert not at.exception and "已结束账号 clerk 的全部登录会话（1 个）" in at.success[0].value
    assert session.current_user(clerk_states[1], engine, now, idle_minutes=IDLE) is None
    assert list(at.dataframe[-1].value["账号"]) == ["root"]
    assert [r.detail.split(" ")[0] for r in audit(engine) if r.action == "session"] == ["结束账号", "结束账号"]
    engine.dispose()
