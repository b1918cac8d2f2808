"""End to end in a real browser: the dashboard as scripts/start.sh runs it (scripts/serve.py) in demo mode
(nothing configured; the embedded SQLite file, named by SQLITE_PATH, is a copy of the session's demo
store), driven by Playwright through /usr/bin/chromium. One server for the session (conftest
``browser_server``). The main flows per role: the overview without signing in; the demo account
``staff`` (responsible for the first demo district) uploads a bad 办件明细 file (refused) and a good
one (imported), signs out; the demo account ``evaluator`` downloads the ranking .xlsx (and the 通报,
tests/test_bulletin_browser.py); the ``leader`` finds no way to download; a deep link survives
signing in. Every page is opened once, by an account holding every role, and read for English words
(AppTest covers every page for every role: tests/test_pages.py, test_roles.py).

Without /usr/bin/chromium the test is skipped locally and fails in CI (CI=true).
"""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from datasets.access import accounts
from datasets.domain.periods import Period
from datasets.domain.schema import KINDS
from datasets.storage import store
from datasets.storage.quality import all_districts
from metrics.compute import latest_month
from metrics.scoring import load_settings, ranking
from metrics.service import compute_components
from tests.apptest_support import ALL_NAME, PW
from tests.browser_support import (
    SLOW,
    Server,
    browser,
    expect_heading,
    login,
    nav,
    page_heading,
    visible_texts,
    wait_idle,
)
from tests.browser_support import english_words as _english

pytestmark = pytest.mark.browser

def _cases_xlsx(db_url: str, folder: Path) -> tuple[str, str, int, Path, Path]:
    """A valid 办件明细 export (.xlsx, Chinese headers) for a configured district's latest month, and the
    same file with the first row's 受理时间 (a required field) left empty."""
    engine = store.make_engine(db_url)
    district = store.list_districts(engine)["name"][0]
    cases = store.load_records(engine, "cases", [district])
    engine.dispose()
    month = cases["accepted_at"].dt.strftime("%Y-%m").max()
    part = cases.filter(pl.col("accepted_at").dt.strftime("%Y-%m") == month).head(20)
    export = part.select(
        (pl.col(f.name).dt.strftime("%Y-%m-%d %H:%M:%S") if f.dtype == pl.Datetime("us") else pl.col(f.name))
        .alias(f.header)
        for f in KINDS["cases"].fields
    )
    good, bad = folder / "办件明细导出.xlsx", folder / "办件明细_有错.xlsx"
    export.write_excel(good, worksheet="办件明细")
    accepted = next(f.header for f in KINDS["cases"].fields if f.name == "accepted_at")
    export.with_row_index().with_columns(
        pl.when(pl.col("index") == 0).then(None).otherwise(pl.col(accepted)).alias(accepted)
    ).drop("index").write_excel(bad, worksheet="办件明细")
    return district, str(month), part.height, good, bad


def _hand_over(page, file: Path) -> None:
    """Give the uploader ``file``. A file handed over while a rerun is still running can be dropped:
    wait until the app is idle, and retry."""
    from playwright.sync_api import expect

    for _attempt in range(3):
        wait_idle(page)
        page.locator("input[type='file']").set_input_files(str(file))
        try:
            expect(page.get_by_test_id("stFileChip").filter(has_text=file.name)).to_have_count(1, timeout=15_000)
            return
        except AssertionError:
            continue


def test_overview_upload_import_and_ranking_download(browser_server: Server, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    server = browser_server
    district, month, rows, good, bad = _cases_xlsx(server.db_url, tmp_path)
    engine = store.make_engine(server.db_url)
    batches_before = store.batch_history(engine, "cases", district).height
    engine.dispose()
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(server.url + "/")
            # Demo mode: the read-only pages can be viewed without signing in.
            expect_heading(page, re.compile("^总览"))
            expect(page.get_by_test_id("stMetric").first).to_contain_text("效能指数", timeout=SLOW)
            expect(page.get_by_text("示例数据").first).to_be_visible()
            expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="数据上传")).to_have_count(0)

            # The login page lists the demo accounts; staff is responsible for the first district.
            nav(page, "登录")
            expect(page.get_by_text("示例账号", exact=True)).to_be_visible(timeout=SLOW)
            login(page, "staff", "demo-staff")
            expect_heading(page, re.compile("^总览"))
            expect(page.get_by_test_id("stSidebar").get_by_text("示例工作人员（staff）")).to_be_visible()

            nav(page, "数据上传")
            expect_heading(page, "数据上传")
            expect(page.get_by_text(f"负责区县：{district}")).to_be_visible()
            # A file with an error: refused with the reason, nothing to import.
            _hand_over(page, bad)
            expect(page.get_by_text(re.compile(f"{bad.name}.*未通过校验"))).to_be_visible(timeout=SLOW)
            expect(page.get_by_role("button", name=re.compile("确认导入（0 个文件）"))).to_be_disabled()
            # The good file next to it: only that one is imported.
            _hand_over(page, good)
            expect(page.get_by_text(re.compile(f"{rows} 行.*校验通过"))).to_be_visible(timeout=SLOW)
            expect(page.get_by_text("校验报告", exact=True)).to_be_visible()
            page.get_by_role("button", name=re.compile("确认导入（1 个文件）")).click()
            expect(page.get_by_text(re.compile("已导入办件明细"))).to_be_visible(timeout=SLOW)
            expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="排名下载")).to_have_count(0)

            # Signed out on a page visitors may not open: to the login page.
            page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("退出登录")).click()
            login(page, "evaluator", "demo-evaluator")
            expect_heading(page, re.compile("^总览"))
            nav(page, "排名下载")
            expect_heading(page, re.compile("^排名下载"))
            with page.expect_download(timeout=SLOW) as download:
                page.get_by_role("button", name="下载 Excel（.xlsx）").click()
            target = tmp_path / "ranking.xlsx"
            download.value.save_as(target)
            # The click's rerun audits the download; the file can arrive before that rerun has run.
            wait_idle(page)
        finally:
            b.close()

    engine = store.make_engine(server.db_url)
    history = store.batch_history(engine, "cases", district)
    assert history.height == batches_before + 1  # the good file only
    newest = history.row(0, named=True)
    assert (newest["file_name"], newest["user_name"], newest["rows"], newest["period"]) == (
        good.name, "staff", rows, month)
    downloads = accounts.audit_entries(engine, action="download").filter(pl.col("页面") == "排名下载")
    assert downloads["账号"].to_list() == ["evaluator"]
    settings = load_settings(engine)
    comps = compute_components(engine, settings)
    period = Period(latest_month(comps), latest_month(comps))
    expected = ranking(comps, period, settings, store.active_batches(engine), all_districts(engine))
    engine.dispose()

    book = openpyxl.load_workbook(target, read_only=True)
    assert book.sheetnames == ["排名", "指标说明"]
    table = list(book["排名"].iter_rows(values_only=True))
    assert list(table[0][:5]) == ["区县", "排名", "排名变化", "未排名原因", "效能指数"]
    assert "按时办结率·分子" in table[0]
    by_district = {row[0]: row for row in table[1:]}
    assert set(by_district) == set(expected["district"].to_list())
    row = expected.filter(pl.col("district") == district).row(0, named=True)
    assert by_district[district][1] == row["rank"]
    assert by_district[district][4] == pytest.approx(round(row["index"], 1))
    assert table[1][1] == 1
    info = list(book["指标说明"].iter_rows(values_only=True))
    assert info[0][:2] == ("统计时段", period.label)


def test_first_visit_is_chinese_and_never_lists_the_files(browser_server: Server):
    """The first visit shows the first-run view (no raw module names in the sidebar) and then the 总览."""
    first = browser_server.first
    assert any("正在准备看板" in t for t in first.texts)
    shown = " ".join(first.sidebar)
    for raw in ("dashboard", "account", "audit", "auth ui", "shared", "start", "overview"):
        assert raw not in shown
    assert not _english(first.texts), _english(first.texts)


def _expand_menu(page) -> None:
    """A long menu shows its first items and a button for the rest: open it (it stays open)."""
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "收起" not in (more.first.text_content() or ""):
        more.first.click()
        page.wait_for_timeout(300)


def _pages_in_menu(page) -> list[str]:
    _expand_menu(page)
    return [t.strip().split("\n")[-1] for t in page.get_by_test_id("stSidebarNavLink").all_inner_texts()]


def _texts_after(page, title: str) -> list[str]:
    _expand_menu(page)
    nav(page, title)
    expect_heading(page, page_heading(title))
    wait_idle(page)
    # Expanders and tabs hide part of a page: open every expander so its tables are read too.
    expanders = page.locator("[data-testid='stExpander'] summary").all()
    for summary in expanders:
        summary.click()
    if expanders:
        page.wait_for_timeout(300)
    return visible_texts(page)


def test_every_page_is_in_chinese(browser_server: Server):
    """The login page as a visitor sees it, then every page once as ``tester`` (every role, every district:
    the menu lists every page, the upload page shows Streamlit's own uploader texts)."""
    from playwright.sync_api import sync_playwright

    found: dict[str, set[str]] = {}
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(browser_server.url + "/")
            expect_heading(page, re.compile("^总览"))
            found["登录"] = _english(_texts_after(page, "登录"))
            login(page, ALL_NAME, PW)
            expect_heading(page, re.compile("^总览"))
            titles = _pages_in_menu(page)
            assert {"数据上传", "排名下载", "月度通报", "设置", "账号管理", "审计日志", "修改密码"} <= set(titles)
            for title in titles:
                found[title] = _english(_texts_after(page, title))
                if title == "大屏展示":  # a wall screen without the sidebar: back home by its address
                    page.goto(browser_server.url + "/")
                    expect_heading(page, re.compile("^总览"))
        finally:
            b.close()
    found = {title: words for title, words in found.items() if words}
    assert not found, "\n".join(f"{title}: {sorted(words)}" for title, words in found.items())


def test_a_leader_finds_no_way_to_download_the_ranking(browser_server: Server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            downloads = []
            page.on("download", lambda d: downloads.append(d))
            page.goto(browser_server.url + "/")
            expect_heading(page, re.compile("^总览"))
            nav(page, "登录")
            login(page, "leader", "demo-leader")
            expect_heading(page, re.compile("^总览"))
            for title in ("排名下载", "总览"):
                nav(page, title)
                expect_heading(page, page_heading(title))
                wait_idle(page)
                labels = [btn.text_content() or "" for btn in page.get_by_test_id("stDownloadButton").all()]
                # The overview's alert lists (audited) may be downloaded; nothing offers the ranking.
                assert labels == [] if title == "排名下载" else all("清单" in t for t in labels), labels
                # Every table and chart: hovering shows its toolbar (search, fullscreen) but no download,
                # no data view, no chart spec to copy.
                for frame in page.locator("[data-testid='stDataFrame'], [data-testid='stVegaLiteChart']").all():
                    if not frame.is_visible():
                        continue
                    frame.hover()
                    toolbar = page.get_by_test_id("stElementToolbar")
                    labels = [btn.get_attribute("aria-label") or "" for btn in toolbar.get_by_role("button").all()
                              if btn.is_visible()]
                    assert not any(w in label for label in labels for w in ("CSV", "下载", "Download", "数据", "data")), labels
                    assert all(not re.search("[A-Za-z]{3,}", label) for label in labels), labels
            # The ranking page says why, in Chinese.
            nav(page, "排名下载")
            expect(page.get_by_text(re.compile("下载排名表.*需要"))).to_be_visible()
            assert downloads == []
        finally:
            b.close()


def test_a_deep_link_survives_sign_in_and_a_reload_keeps_the_session(browser_server: Server):
    """/ranking?period=… opened signed out: the login page, then the ranking of that period; a reload keeps
    the session through the cookie (an HttpOnly random id, nothing in the URL); after signing out neither
    this browser nor another one holding a copy of the cookie is signed in."""
    from playwright.sync_api import expect, sync_playwright

    from datasets.domain.periods import parse_period, quarter_of

    engine = store.make_engine(browser_server.db_url)
    months = store.batch_history(engine, "cases")["period"].to_list()
    engine.dispose()
    quarter = quarter_of(sorted(months)[-4])  # a quarter with data, not the default period
    with sync_playwright() as p:
        b = browser(p)
        try:
            context = b.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(f"{browser_server.url}/ranking?period={quarter.key}")
            login(page, "evaluator", "demo-evaluator")
            expect_heading(page, f"排名下载 · {parse_period(quarter.key).label}")
            wait_idle(page)
            cookie = {c["name"]: c for c in context.cookies()}["gov_dashboard_session"]
            token = cookie["value"]
            # An opaque random id, set by the server: out of reach of the page's JavaScript.
            assert len(token) == 43 and "." not in token and "evaluator" not in token
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert "gov_dashboard_session" not in page.evaluate("document.cookie")
            assert "demo-evaluator" not in page.url and token not in page.url

            page.reload()
            expect_heading(page, f"排名下载 · {parse_period(quarter.key).label}")
            expect(page.get_by_test_id("stSidebar").get_by_text("示例评估人员（evaluator）")).to_be_visible()

            page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("退出登录")).click()
            expect_heading(page, "登录")
            wait_idle(page)
            # The server removed the cookie (the session record was revoked before that).
            for _ in range(50):
                if "gov_dashboard_session" not in {c["name"] for c in context.cookies()}:
                    break
                page.wait_for_timeout(100)
            assert "gov_dashboard_session" not in {c["name"] for c in context.cookies()}
            page.reload()
            expect_heading(page, re.compile("^(登录|总览)"))
            expect(page.get_by_test_id("stSidebar").get_by_text("示例评估人员（evaluator）")).to_have_count(0)
            # The cookie copied before signing out signs nobody in from another browser.
            thief = b.new_context(viewport={"width": 1400, "height": 1000})
            thief.add_cookies([{**{k: cookie[k] for k in ("name", "value", "domain", "path")}}])
            stolen = thief.new_page()
            stolen.goto(f"{browser_server.url}/ranking")
            expect_heading(stolen, re.compile("^(登录|总览)"))
            wait_idle(stolen)
            expect(stolen.get_by_test_id("stSidebar").get_by_text("示例评估人员（evaluator）")).to_have_count(0)
            thief.close()
        finally:
            b.close()


def test_a_file_of_exactly_the_upload_limit_reaches_the_server(browser_server: Server, tmp_path: Path):
    """UPLOAD_MAX_MB = 50: a file of exactly 50 MiB passes the uploader (Chromium on Linux counts 1000²
    bytes per MB: it refused the file with an English tooltip) and the server answers in Chinese; a file
    over the uploader's own limit is refused in Chinese (issue 23)."""
    from playwright.sync_api import expect, sync_playwright

    exact = tmp_path / "恰好50MiB.csv"
    line = b"1,2\n"
    exact.write_bytes(b"a,b\n" + line * ((50 * 2**20 - 4) // len(line)))
    assert exact.stat().st_size == 50 * 2**20
    over = tmp_path / "超过上限.csv"
    over.write_bytes(b"a" * (53 * 10**6 + 1))
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(browser_server.url + "/")
            expect_heading(page, re.compile("^总览"))
            nav(page, "登录")
            login(page, "staff", "demo-staff")
            expect_heading(page, re.compile("^总览"))
            nav(page, "数据上传")
            expect_heading(page, "数据上传")
            _hand_over(page, exact)
            # Read by the server: 13 million lines are over the cell limit, said in Chinese.
            expect(page.get_by_text(re.compile(f"{exact.name}：无法读取.*超过可读取的上限"))).to_be_visible(timeout=SLOW)
            wait_idle(page)
            page.locator("input[type='file']").set_input_files(str(over))
            expect(page.get_by_text("文件超过单个文件大小上限，请按月份或区县拆分后分别上传")).to_be_visible(timeout=SLOW)
            assert page.get_by_text(re.compile("File must be")).count() == 0
        finally:
            b.close()
