"""A signed-out visitor opening /login on a configured database sees the form and no "Page not found"
pop-up (the login page is the default page there, and a default page is served at "/" only); /upload
opened signed out is where the session lands after signing in (not the home page served at "/"), and
the reload cookie is the server's HttpOnly one."""

from __future__ import annotations

import os
import re

import pytest

from datasets import accounts, store
from tests.browser_support import (
    browser,
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
