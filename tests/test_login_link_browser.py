"""A signed-out visitor opening /login on a configured database sees the form and no "Page not found"
pop-up (the login page is the default page there, and a default page is served at "/" only)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from datasets import accounts, store
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, IN_CI, ROOT, _free_port, _wait_healthy, _wait_idle

pytestmark = pytest.mark.browser


def test_login_link_has_no_page_not_found_popup(tmp_path):
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"CI 环境必须提供 {CHROMIUM}")
        pytest.skip(f"未找到 {CHROMIUM}，跳过浏览器测试")
    from playwright.sync_api import sync_playwright

    db_url = f"sqlite:///{tmp_path / 'configured.db'}"
    engine = store.make_engine(db_url)
    store.init_db(engine)
    accounts.add_user(engine, "adm", "admin-pass-1", [accounts.ADMIN])
    engine.dispose()
    port = _free_port()
    log = tmp_path / "streamlit.log"
    env = {**{k: v for k, v in os.environ.items() if k != "ANONYMOUS_VIEW"}, "DATABASE_URL": db_url}
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for path in ("login", "", "login"):  # a fresh server, the root, and again once navigated
                    page = browser.new_page()
                    page.goto(f"{url}/{path}")
                    page.get_by_text("账号", exact=True).first.wait_for(timeout=120_000)
                    _wait_idle(page)
                    body = page.inner_text("body")
                    assert "Page not found" not in body and "does not seem to exist" not in body, path
                    assert page.get_by_role("button", name="登录").count() >= 1
                    page.close()
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
