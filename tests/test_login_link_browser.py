"""A signed-out visitor opening /login on a configured database sees the form and no "Page not found"
pop-up (the login page is the default page there, and a default page is served at "/" only); /upload
opened signed out is where the session lands after signing in (not the home page served at "/"), and
the reload cookie is the server's HttpOnly one."""

from __future__ import annotations

import os
import re

import pytest

from datasets.access import accounts
from datasets.storage import store
from tests.browser_support import (
    browser,
    configured_store,
    expect_heading,
    login,
    need_chromium,
    running_server,
    streamlit_run,
    wait_idle,
)

pytestmark = pytest.mark.browser


def test_login_link_has_no_page_not_found_popup(tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright

    db_url = f"sqlite:///{tmp_path / 'configured.db'}"
    engine = store.make_engine(db_url)
    store.init_db(engine)
    accounts.add_user(engine, "adm", "admin-pass-1", [accounts.ADMIN])
    store.add_district(engine, "甲区")
    accounts.add_user(engine, "clerk", "clerk-pass-1", [accounts.STAFF], ["甲区"], "办事员")
    engine.dispose()
    env = {**{k: v for k, v in os.environ.items() if k != "ANONYMOUS_VIEW"}, "DATABASE_URL": db_url}
    with running_server(streamlit_run(), env, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        b = browser(p)
        try:
            for path in ("login", "", "login"):  # a fresh server, the root, and again once navigated
                page = b.new_page()
                page.goto(f"{url}/{path}")
                page.get_by_text("账号", exact=True).first.wait_for(timeout=120_000)
                wait_idle(page)
                body = page.inner_text("body")
                assert "Page not found" not in body and "does not seem to exist" not in body, path
                assert page.get_by_role("button", name="登录").count() >= 1
                page.close()
            # A deep link opened signed out: the login page, then the page asked for.
            context = b.new_context()
            page = context.new_page()
            page.goto(f"{url}/upload")
            login(page, "clerk", "clerk-pass-1")
            expect_heading(page, "数据上传")
            wait_idle(page)
            cookie = {c["name"]: c for c in context.cookies()}["gov_dashboard_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and len(cookie["value"]) == 43
            page.reload()
            expect_heading(page, "数据上传")
            assert page.get_by_test_id("stSidebar").get_by_text(re.compile("办事员（clerk）")).count() == 1
            context.close()
        finally:
            b.close()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_session_probes_are_refused_by_a_running_server(tmp_path, request, database):
    """Issue 23's session probes replayed against a running server (on SQLite and on PostgreSQL): a cookie
    copied before the account was disabled does not come back with re-enabling, and an old-format signed
    token minted from a password hash (10 years, empty secret) signs nobody in."""
    need_chromium()
    import datetime as dt

    from playwright.sync_api import sync_playwright

    from tests.test_sessions import old_token

    engine, db_url = configured_store(tmp_path, request, database)
    accounts.add_user(engine, "adm", "admin-pass-1", [accounts.ADMIN], [], "管理员甲")
    accounts.add_user(engine, "eva", "eva-pass-12", [accounts.EVALUATOR], [], "评估员乙")
    env = {**{k: v for k, v in os.environ.items() if k != "ANONYMOUS_VIEW"}, "DATABASE_URL": db_url}
    with running_server(streamlit_run(), env, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        b = browser(p)

        def visit(cookie: dict, path: str = "account"):
            context = b.new_context()
            context.add_cookies([cookie])
            page = context.new_page()
            page.goto(f"{url}/{path}")
            return context, page

        def signed_in_as(page, name: str) -> bool:
            wait_idle(page)
            return page.get_by_test_id("stSidebar").get_by_text(re.compile(name)).count() == 1

        try:
            context = b.new_context()
            page = context.new_page()
            page.goto(f"{url}/account")
            login(page, "eva", "eva-pass-12")
            expect_heading(page, "修改密码")
            wait_idle(page)
            cookie = {c["name"]: c for c in context.cookies()}["gov_dashboard_session"]
            copied = {k: cookie[k] for k in ("name", "value", "domain", "path")}
            # While the session is open, the cookie is the session (that is what a reload uses).
            other, page2 = visit(copied)
            expect_heading(page2, "修改密码")
            assert signed_in_as(page2, "评估员乙")
            other.close()
            # Disabled, then enabled again: the copied cookie stays dead; so does the original browser's.
            accounts.set_active(engine, "eva", False)
            accounts.set_active(engine, "eva", True)
            other, page2 = visit(copied)
            expect_heading(page2, "登录")
            assert not signed_in_as(page2, "评估员乙")
            other.close()
            page.reload()
            expect_heading(page, "登录")
            context.close()
            # An old signed token for the administrator, minted from the password hash, valid for 10 years.
            forged = old_token(engine, "adm", dt.datetime.now() + dt.timedelta(days=3650), "")
            other, page2 = visit({**copied, "value": forged}, "users")
            expect_heading(page2, "登录")
            assert not signed_in_as(page2, "管理员甲")
            other.close()
        finally:
            b.close()
    if database == "sqlite":
        engine.dispose()
