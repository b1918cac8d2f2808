"""The 月度通报 page in a real browser: the evaluator downloads the bulletin (.docx), generated when the
button is clicked (a deferred download), and the file is the bulletin of the period shown.

Uses the demo-mode server of tests/test_browser.py; skipped locally without /usr/bin/chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docx import Document

from datasets import accounts, store
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, SLOW, Server, _login, _nav, expect_heading, server  # noqa: F401

pytestmark = pytest.mark.browser


def test_evaluator_downloads_the_bulletin(server: Server, tmp_path: Path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(server.url + "/")
            expect_heading(page, re.compile("^总览"))  # demo mode: the overview first, then sign in
            _nav(page, "登录")
            _login(page, "evaluator", "demo-evaluator")
            expect_heading(page, re.compile("^总览"))
            _nav(page, "月度通报")
            expect_heading(page, re.compile("^月度通报"))
            title = page.get_by_role("heading", name=re.compile("^澄州市政务服务效能评估通报")).inner_text()
            with page.expect_download(timeout=SLOW) as download:
                page.get_by_role("button", name="下载通报（Word）").click()
            target = tmp_path / download.value.suggested_filename
            download.value.save_as(target)
        finally:
            browser.close()

    assert target.name.startswith("效能评估通报_") and target.suffix == ".docx"
    paragraphs = [par.text.replace("\n", "") for par in Document(str(target)).paragraphs]
    assert title.strip() in paragraphs and "二、区县排名" in paragraphs
    engine = store.make_engine(server.db_url)
    logged = accounts.audit_entries(engine, action="download")
    engine.dispose()
    assert logged["账号"].to_list() == ["evaluator"] and logged["页面"].to_list() == ["月度通报"]
