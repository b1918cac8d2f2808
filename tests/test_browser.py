"""End to end in a real browser: ``streamlit run dashboard.py`` in demo mode (nothing configured; the
embedded SQLite file is a demo store made for the test), driven by Playwright through /usr/bin/chromium —
the overview without signing in, then the demo account ``staff`` (responsible for the first demo
district) uploads and imports a 办件明细 file of that district, signs out, and the demo account
``evaluator`` downloads the ranking .xlsx.

Without /usr/bin/chromium the test is skipped locally and fails in CI (CI=true).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from datasets import accounts, store
from datasets.periods import Period
from datasets.quality import all_districts
from datasets.schema import KINDS
from metrics.compute import latest_month
from metrics.scoring import load_settings, ranking
from metrics.service import compute_components

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SLOW = 180_000  # ms: first render computes the indicators; validation reads the whole file
# Runs the real launcher (scripts/serve.py) with the embedded SQLite file moved to the path given first
# (demo mode without touching data/dashboard.db): ``python -c LAUNCH DB_PATH …streamlit options``.
LAUNCH = (
    "import sys\n"
    "from pathlib import Path\n"
    "from datasets import store\n"
    "store.DEFAULT_SQLITE_PATH = Path(sys.argv.pop(1))\n"
    "sys.path.insert(0, 'scripts')\n"
    "import serve\n"
    "sys.exit(serve.run(sys.argv[1:]))\n"
)
# Latin words a user may read: file types, product and protocol names.
ALLOWED_WORDS = {"leader", "staff", "evaluator", "admin", "demo",  # account names and passwords are data
                 "XLSX", "XLS", "CSV", "TSV", "TXT", "EXCEL", "SSO", "OIDC", "UTF", "BOM", "MB", "KB", "ID",
                 "PC",  # 电脑端 in the registry's 网办 description
                 "PDF", "DOCX", "WORD", "WPS",  # the formats and word processors the 通报 is made for
                 "BJ",  # the prefix of the demo's 办件编号 (data)
                 # the placeholders an administrator writes into a 通报 template ({{ title }}, …)
                 "title", "body", "issuer", "issue_date", "city", "period"}
DEMO_USERS = {"leader": "demo-leader", "staff": "demo-staff", "evaluator": "demo-evaluator", "admin": "demo-admin"}
# The visible text of the page: text nodes that are rendered, outside icon ligatures (Material Symbols
# names such as "dashboard" render as pictures) and the screen-reader-only skip link.
VISIBLE_TEXT_JS = """(selector) => {
  const out = [];
  const root = document.querySelector(selector);
  if (!root) return out;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const el = n.parentElement;
    if (!el || !n.nodeValue.trim()) continue;
    if (el.closest('[data-testid="stIconMaterial"], [data-testid="stIconEmoji"], script, style, noscript')) continue;
    if (el.closest('a[href="#main-content"], [class*="skipLink"], [data-testid="stSkipLink"]')) continue;
    if (getComputedStyle(el).fontFamily.includes('Material Symbols')) continue;
    if (!el.checkVisibility || !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) continue;
    out.push(n.nodeValue.trim());
  }
  return out;
}"""


@dataclass(frozen=True)
class Server:
    url: str
    db_url: str
    log: Path
    first: FirstVisit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_idle(page, timeout: float = 60.0) -> None:
    """Wait until Streamlit's "running" indicator has been gone for a moment."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.get_by_test_id("stStatusWidgetRunningIcon").count()
        running += page.get_by_test_id("stStatusWidgetRunningManIcon").count()
        if running == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(200)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text(encoding='utf-8', errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text(encoding='utf-8', errors='replace')}")


@dataclass(frozen=True)
class FirstVisit:
    seconds: float  # from opening the page to the first 总览 metric
    texts: list[str]  # every visible text seen on the way
    sidebar: list[str]  # every sidebar navigation text seen on the way


def _visible_texts(page, selector: str = "body") -> list[str]:
    return page.evaluate(VISIBLE_TEXT_JS, selector)


def _english(texts: list[str]) -> set[str]:
    words = set()
    for text in texts:
        words.update(w for w in re.findall(r"[A-Za-z][A-Za-z_.()]*[A-Za-z)]|[A-Za-z]", text)
                     if w not in ALLOWED_WORDS and w.upper() not in ALLOWED_WORDS and len(w) > 1)
    return words


def _browser(p):
    return p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def _first_visit(url: str) -> FirstVisit:
    """Open the freshly started server once: the first-run view until the 总览 shows."""
    from playwright.sync_api import sync_playwright

    texts: list[str] = []
    sidebar: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.monotonic()
            page.goto(url + "/")
            while time.monotonic() - started < SLOW / 1000:
                texts.extend(_visible_texts(page))
                sidebar.extend(_visible_texts(page, "[data-testid='stSidebarNav']"))
                if page.get_by_test_id("stMetric").count():
                    break
                page.wait_for_timeout(100)
            seconds = time.monotonic() - started
        finally:
            browser.close()
    return FirstVisit(seconds, texts, sidebar)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The dashboard as scripts/start.sh runs it, on an empty embedded store: the first visit (recorded
    in ``Server.first``) generates the demo city (scale 0.01 here) under the first-run view."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"CI 环境必须提供 {CHROMIUM}")
        pytest.skip(f"未找到 {CHROMIUM}，跳过浏览器测试")
    base = tmp_path_factory.mktemp("browser")
    db_path = base / "demo.db"
    db_url = f"sqlite:///{db_path}"
    port = _free_port()
    log = base / "streamlit.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ANONYMOUS_VIEW")}
    env.update(DEMO_SCALE="0.01", DEMO_SEED="7")
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(db_path), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield Server(url, db_url, log, _first_visit(url))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _cases_xlsx(db_url: str, path: Path) -> tuple[str, str, int]:
    """A valid 办件明细 export (.xlsx, Chinese headers) for a configured district's latest month."""
    engine = store.make_engine(db_url)
    district = store.list_districts(engine)["name"][0]
    cases = store.load_records(engine, "cases", [district])
    engine.dispose()
    month = cases["accepted_at"].dt.strftime("%Y-%m").max()
    part = cases.filter(pl.col("accepted_at").dt.strftime("%Y-%m") == month).head(20)
    part.select(
        (pl.col(f.name).dt.strftime("%Y-%m-%d %H:%M:%S") if f.dtype == pl.Datetime("us") else pl.col(f.name))
        .alias(f.header)
        for f in KINDS["cases"].fields
    ).write_excel(path, worksheet="办件明细")
    return district, str(month), part.height


def _nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()


def _login(page, username: str, password: str) -> None:
    expect_heading(page, "登录")
    page.get_by_label("账号", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()


def expect_heading(page, name: str | re.Pattern) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=name)).to_be_visible(timeout=SLOW)


def test_overview_upload_import_and_ranking_download(server: Server, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    district, month, rows = _cases_xlsx(server.db_url, tmp_path / "办件明细导出.xlsx")
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(server.url + "/")
            # Demo mode: the read-only pages can be viewed without signing in.
            expect_heading(page, re.compile("^总览"))
            expect(page.get_by_test_id("stMetric").first).to_contain_text("效能指数", timeout=SLOW)
            expect(page.get_by_text("示例数据").first).to_be_visible()
            expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="数据上传")).to_have_count(0)

            # The login page lists the demo accounts; staff is responsible for the first district.
            _nav(page, "登录")
            expect(page.get_by_text("示例账号", exact=True)).to_be_visible(timeout=SLOW)
            _login(page, "staff", "demo-staff")
            expect_heading(page, re.compile("^总览"))
            expect(page.get_by_test_id("stSidebar").get_by_text("示例工作人员（staff）")).to_be_visible()

            _nav(page, "数据上传")
            expect_heading(page, "数据上传")
            expect(page.get_by_text(f"负责区县：{district}")).to_be_visible()
            # A file handed to the uploader while a rerun is still running can be dropped: wait until the
            # app is idle, and retry.
            upload = str(tmp_path / "办件明细导出.xlsx")
            for _attempt in range(3):
                _wait_idle(page)
                page.locator("input[type='file']").set_input_files(upload)
                try:
                    expect(page.get_by_test_id("stFileChip").first).to_be_visible(timeout=15_000)
                    break
                except AssertionError:
                    continue
            expect(page.get_by_text(re.compile(f"{rows} 行.*校验通过"))).to_be_visible(timeout=SLOW)
            expect(page.get_by_text("校验报告", exact=True)).to_be_visible()
            page.get_by_role("button", name=re.compile("确认导入（1 个文件）")).click()
            expect(page.get_by_text(re.compile("已导入办件明细"))).to_be_visible(timeout=SLOW)
            expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="排名下载")).to_have_count(0)

            # Signed out on a page visitors may not open: to the login page.
            page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("退出登录")).click()
            _login(page, "evaluator", "demo-evaluator")
            expect_heading(page, re.compile("^总览"))
            _nav(page, "排名下载")
            expect_heading(page, re.compile("^排名下载"))
            with page.expect_download(timeout=SLOW) as download:
                page.get_by_role("button", name="下载 Excel（.xlsx）").click()
            target = tmp_path / "ranking.xlsx"
            download.value.save_as(target)
        finally:
            browser.close()

    engine = store.make_engine(server.db_url)
    newest = store.batch_history(engine, "cases", district).row(0, named=True)
    assert (newest["file_name"], newest["user_name"], newest["rows"], newest["period"]) == (
        "办件明细导出.xlsx", "staff", rows, month)
    downloads = accounts.audit_entries(engine, action="download")
    assert downloads["账号"].to_list() == ["evaluator"] and downloads["页面"].to_list() == ["排名下载"]
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
    assert by_district[district][4] == pytest.approx(round(row["index"], 2))
    assert table[1][1] == 1
    info = list(book["指标说明"].iter_rows(values_only=True))
    assert info[0][:2] == ("统计时段", period.label)


def test_first_visit_is_chinese_and_never_lists_the_files(server: Server):
    """The first visit shows the first-run view (no raw module names in the sidebar) and then the 总览."""
    assert any("正在准备看板" in t for t in server.first.texts)
    shown = " ".join(server.first.sidebar)
    for raw in ("dashboard", "account", "audit", "auth ui", "shared", "start", "overview"):
        assert raw not in shown
    assert not _english(server.first.texts), _english(server.first.texts)


def _pages_in_menu(page) -> list[str]:
    return [t.strip() for t in page.get_by_test_id("stSidebarNavLink").all_inner_texts()]


def _texts_after(page, title: str) -> list[str]:
    _nav(page, title)
    expect_heading(page, re.compile(f"^{re.escape(title)}"))
    _wait_idle(page)
    # Expanders and tabs hide part of a page: open every expander so its tables are read too.
    for summary in page.locator("[data-testid='stExpander'] summary").all():
        summary.click()
    page.wait_for_timeout(300)
    return _visible_texts(page)


def test_every_page_for_every_role_is_in_chinese(server: Server):
    from playwright.sync_api import sync_playwright

    found: dict[tuple[str, str], set[str]] = {}
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            for username, password in [(None, None), *DEMO_USERS.items()]:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(server.url + "/")
                expect_heading(page, re.compile("^总览"))
                if username:
                    _nav(page, "登录")
                    _login(page, username, password)
                    expect_heading(page, re.compile("^总览"))
                titles = [t.split("\n")[-1] for t in _pages_in_menu(page)]
                for title in titles:
                    if title == "登录" and username:
                        continue
                    words = _english(_texts_after(page, title))
                    if words:
                        found[(username or "未登录", title)] = words
                # The upload page's file uploader (Streamlit's own texts) is covered by the staff account.
                page.close()
        finally:
            browser.close()
    assert not found, "\n".join(f"{who} · {title}: {sorted(words)}" for (who, title), words in found.items())


def test_a_leader_finds_no_way_to_download_the_ranking(server: Server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            downloads = []
            page.on("download", lambda d: downloads.append(d))
            page.goto(server.url + "/")
            expect_heading(page, re.compile("^总览"))
            _nav(page, "登录")
            _login(page, "leader", "demo-leader")
            expect_heading(page, re.compile("^总览"))
            for title in ("排名下载", "总览"):
                _nav(page, title)
                expect_heading(page, re.compile(f"^{title}"))
                _wait_idle(page)
                labels = [b.text_content() or "" for b in page.get_by_test_id("stDownloadButton").all()]
                # The overview's alert lists (audited) may be downloaded; nothing offers the ranking.
                assert labels == [] if title == "排名下载" else all("清单" in t for t in labels), labels
                # Every table and chart: hovering shows its toolbar (search, fullscreen) but no download,
                # no data view, no chart spec to copy.
                for frame in page.locator("[data-testid='stDataFrame'], [data-testid='stVegaLiteChart']").all():
                    if not frame.is_visible():
                        continue
                    frame.hover()
                    toolbar = page.get_by_test_id("stElementToolbar")
                    labels = [b.get_attribute("aria-label") or "" for b in toolbar.get_by_role("button").all()
                              if b.is_visible()]
                    assert not any(w in label for label in labels for w in ("CSV", "下载", "Download", "数据", "data")), labels
                    assert all(not re.search("[A-Za-z]{3,}", label) for label in labels), labels
            # The ranking page says why, in Chinese.
            _nav(page, "排名下载")
            expect(page.get_by_text(re.compile("下载排名表.*需要"))).to_be_visible()
            assert downloads == []
        finally:
            browser.close()


def test_a_deep_link_survives_sign_in_and_a_reload_keeps_the_session(server: Server):
    """/ranking?period=… opened signed out: the login page, then the ranking of that period; a reload keeps
    the session through the signed cookie (no password, nothing in the URL); after signing out it does not."""
    from playwright.sync_api import expect, sync_playwright

    from datasets.periods import parse_period, quarter_of

    engine = store.make_engine(server.db_url)
    months = store.batch_history(engine, "cases")["period"].to_list()
    engine.dispose()
    quarter = quarter_of(sorted(months)[-4])  # a quarter with data, not the default period
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(f"{server.url}/ranking?period={quarter.key}")
            _login(page, "evaluator", "demo-evaluator")
            expect_heading(page, f"排名下载 · {parse_period(quarter.key).label}")
            _wait_idle(page)
            cookies = {c["name"]: c for c in context.cookies()}
            token = cookies["gov_dashboard_session"]["value"]
            assert "demo-evaluator" not in token and token.count(".") == 2
            assert "demo-evaluator" not in page.url and token not in page.url

            page.reload()
            expect_heading(page, f"排名下载 · {parse_period(quarter.key).label}")
            expect(page.get_by_test_id("stSidebar").get_by_text("示例评估人员（evaluator）")).to_be_visible()

            page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("退出登录")).click()
            expect_heading(page, "登录")
            _wait_idle(page)
            page.reload()
            expect_heading(page, re.compile("^(登录|总览)"))
            expect(page.get_by_test_id("stSidebar").get_by_text("示例评估人员（evaluator）")).to_have_count(0)
        finally:
            browser.close()
