"""The 月度通报 page in a real browser: the evaluator downloads the bulletin (.docx), generated when the
button is clicked (a deferred download), and the file is the bulletin of the period shown.

Uses the session's demo-mode server (conftest ``browser_server``); skipped locally without /usr/bin/chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from docx import Document

from datasets.access import accounts
from datasets.storage import store
from tests.browser_support import SLOW, Server, browser, expect_heading, login, nav

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def test_evaluator_downloads_the_bulletin(browser_server: Server, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(browser_server.url + "/")
            expect_heading(page, re.compile("^总览"))  # demo mode: the overview first, then sign in
            nav(page, "登录")
            login(page, "evaluator", "demo-evaluator")
            expect_heading(page, re.compile("^总览"))
            nav(page, "月度通报")
            expect_heading(page, re.compile("^月度通报"))
            title = page.get_by_role("heading", name=re.compile("^澄州市政务服务效能评估通报")).inner_text()
            with page.expect_download(timeout=SLOW) as download:
                page.get_by_role("button", name="下载通报（Word）").click()
            target = tmp_path / download.value.suggested_filename
            download.value.save_as(target)
            # 图2 of the preview at a desktop and a phone width, for looking at (every district labelled:
            # the ranking chart's axis keeps overlapping labels, tests/test_charts.py).
            ARTIFACTS.mkdir(exist_ok=True)
            for width in (1440, 390):
                page.set_viewport_size({"width": width, "height": 1000})
                caption = page.get_by_text(re.compile("^图2")).first
                caption.scroll_into_view_if_needed()
                page.wait_for_timeout(1500)
                page.screenshot(path=str(ARTIFACTS / f"bulletin_preview_fig2_{width}.png"))
        finally:
            b.close()

    assert target.name.startswith("效能评估通报_") and target.suffix == ".docx"
    paragraphs = [par.text.replace("\n", "") for par in Document(str(target)).paragraphs]
    assert title.strip() in paragraphs and "二、区县排名" in paragraphs
    engine = store.make_engine(browser_server.db_url)
    logged = accounts.audit_entries(engine, action="download").filter(pl.col("页面") == "月度通报")
    engine.dispose()
    assert logged["账号"].to_list() == ["evaluator"]
