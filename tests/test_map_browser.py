"""In a real browser (the demo-mode server of conftest.py): a click on the overview's district map opens
that district's drill-down on 区县对比; 大屏展示 is dark and has no sidebar."""

from __future__ import annotations

import re

from tests.browser_support import SLOW, Server, browser, expect_heading, login, nav, wait_idle

DEMO_DISTRICTS = ("云湖区", "青山区", "星港区", "白鹭洲区", "金沙区", "临江县", "桐溪县", "松岭县", "澜湾新区", "梅川县")


def test_a_click_on_the_map_opens_the_drill_down(browser_server: Server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(browser_server.url + "/")
            expect_heading(page, re.compile("^总览"))
            heading = page.get_by_role("heading", name="区县地图")
            heading.scroll_into_view_if_needed()
            wait_idle(page)
            # The overview's charts: the ranking, the map, the trend. The middle of the demo's hexagon
            # tiles is inside a tile (the second row is offset by half a tile).
            chart = page.get_by_test_id("stVegaLiteChart").nth(1)
            chart.scroll_into_view_if_needed()
            box = chart.bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.45)
            expect_heading(page, re.compile("^区县对比"))
            wait_idle(page)
            drill = page.get_by_role("heading", name=re.compile("逐级下钻"))
            drill.scroll_into_view_if_needed()
            # The drill-down's district is the clicked one, not the page's default (the first district).
            shown = page.locator("[data-testid='stMarkdownContainer'] strong").filter(
                has_text=re.compile("|".join(DEMO_DISTRICTS))).first
            expect(shown).to_be_visible(timeout=SLOW)
            assert shown.text_content() in DEMO_DISTRICTS[1:]
        finally:
            b.close()


def test_the_big_screen_is_dark_without_a_sidebar(browser_server: Server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(browser_server.url + "/")
            expect_heading(page, re.compile("^总览"))
            nav(page, "登录")
            login(page, "leader", "demo-leader")
            expect_heading(page, re.compile("^总览"))
            nav(page, "大屏展示")
            expect_heading(page, re.compile("^政务服务效能"))
            wait_idle(page)
            assert not page.get_by_test_id("stSidebar").is_visible()
            background = page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
            assert background == "rgb(14, 17, 23)"
            assert page.get_by_text(re.compile("^数据截至 ")).count() >= 1
        finally:
            b.close()


def test_the_big_screen_url_opened_on_the_screens_computer_leads_there_after_sign_in(browser_server: Server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(browser_server.url + "/bigscreen")
            login(page, "leader", "demo-leader")
            expect_heading(page, re.compile("^政务服务效能"))
        finally:
            b.close()


def test_the_big_screen_shows_a_new_import_by_itself(demo, tmp_path):
    """大屏展示 open as the leader; a batch imported through the CLI in another process; the screen shows
    the new index and import time within its polling interval, nobody touching it."""
    import os
    import shutil

    from tests.apptest_support import cases_csv
    from tests.browser_support import first_visit, launcher, need_chromium, running_server

    need_chromium()
    db_path = tmp_path / "screen.db"
    shutil.copy(demo.path, db_path)
    db_url = f"sqlite:///{db_path}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ANONYMOUS_VIEW", "CACHE_URL")}
    env["SQLITE_PATH"] = str(db_path)
    district, month = demo.districts[0], demo.period.last
    export = tmp_path / "cases.csv"
    export.write_bytes(cases_csv(db_url, district, month, rows=25))  # fewer cases: the index moves
    with running_server(launcher(), env, tmp_path / "streamlit.log") as url:
        first_visit(url)  # the first run counts the indicators (not what is timed here)
        _watch_an_import(url, db_url, export, demo)


def _watch_an_import(url: str, db_url: str, export, demo) -> None:
    import subprocess
    import sys
    import time

    from playwright.sync_api import expect, sync_playwright

    from datasets.storage import store
    from metrics import bigscreen
    from tests.browser_support import ROOT

    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(url + "/bigscreen")
            login(page, "leader", "demo-leader")
            expect_heading(page, re.compile(f"^政务服务效能 · {re.escape(demo.period.label)}"))
            wait_idle(page)
            index = page.get_by_test_id("stMetricValue").first
            before = index.inner_text()
            as_of = page.get_by_text(re.compile("^数据截至 ")).first
            assert "最近导入" in as_of.inner_text()
            done = subprocess.run([sys.executable, "-m", "datasets", "import", str(export), "--db", db_url],
                                  cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr
            imported = time.monotonic()
            engine = store.make_engine(db_url)
            last = store.last_import_at(engine)
            engine.dispose()
            # Polled every POLL_SECONDS (30 s), then the page recounts the imported district.
            expect(index).not_to_have_text(before, timeout=120_000)
            assert time.monotonic() - imported < 120
            line = bigscreen.as_of_text(demo.period, last).split("　")[1]  # 最近导入 <the import's minute>
            expect(as_of).to_contain_text(line)
            refreshed = index.inner_text()
            # A fresh page shows the same: the screen shows the data as it now is.
            fresh = b.new_page(viewport={"width": 1920, "height": 1080})
            fresh.goto(url + "/bigscreen")
            login(fresh, "leader", "demo-leader")
            expect_heading(fresh, re.compile("^政务服务效能"))
            wait_idle(fresh)
            assert fresh.get_by_test_id("stMetricValue").first.inner_text() == refreshed
        finally:
            b.close()
