"""Helpers for the real-browser tests: starting ``streamlit`` servers on free loopback ports and driving
/usr/bin/chromium through Playwright (tests/test_browser.py, test_bulletin_browser.py,
test_login_link_browser.py, test_two_servers.py). The demo-mode server they share is the session
fixture ``browser_server`` in conftest.py.

Without /usr/bin/chromium the browser tests skip locally and fail in CI (CI=true).
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SLOW = 180_000  # ms: first render computes the indicators; validation reads the whole file
SERVER_OPTIONS = ["--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                  "--server.fileWatcherType", "none"]
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


def need_chromium() -> None:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"CI 环境必须提供 {CHROMIUM}")
        pytest.skip(f"未找到 {CHROMIUM}，跳过浏览器测试")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_idle(page, timeout: float = 60.0) -> None:
    """Wait until Streamlit's "running" indicator has been gone for a moment and no element of an
    earlier run is left on the page (``data-stale``: the previous page's elements stay until the new
    run has finished, and a short run may end before the indicator shows)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.get_by_test_id("stStatusWidgetRunningIcon").count()
        running += page.get_by_test_id("stStatusWidgetRunningManIcon").count()
        running += page.locator("[data-stale='true']").count()
        if running == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.6:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(200)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
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


@contextmanager
def running_server(command: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """Start ``command`` (a Streamlit server; the port is added) and give its URL once it is healthy."""
    port = free_port()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen([*command, *SERVER_OPTIONS, "--server.port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def streamlit_run() -> list[str]:
    """``streamlit run dashboard.py``: the dashboard as an st.App with the HttpOnly session cookie routes."""
    return [sys.executable, "-m", "streamlit", "run", "dashboard.py"]


def launcher() -> list[str]:
    """The real launcher of scripts/start.sh."""
    return [sys.executable, str(ROOT / "scripts" / "serve.py")]


def browser(p):
    return p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def visible_texts(page, selector: str = "body") -> list[str]:
    return page.evaluate(VISIBLE_TEXT_JS, selector)


@dataclass(frozen=True)
class FirstVisit:
    seconds: float  # from opening the page to the first 总览 metric
    texts: list[str]  # every visible text seen on the way
    sidebar: list[str]  # every sidebar navigation text seen on the way


@dataclass(frozen=True)
class Server:
    url: str
    db_url: str
    log: Path
    first: FirstVisit


def first_visit(url: str) -> FirstVisit:
    """Open the freshly started server once: the first-run view until the 总览 shows."""
    from playwright.sync_api import sync_playwright

    texts: list[str] = []
    sidebar: list[str] = []
    with sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            started = time.monotonic()
            page.goto(url + "/")
            while time.monotonic() - started < SLOW / 1000:
                texts.extend(visible_texts(page))
                sidebar.extend(visible_texts(page, "[data-testid='stSidebarNav']"))
                if page.get_by_test_id("stMetric").count():
                    break
                page.wait_for_timeout(100)
            seconds = time.monotonic() - started
        finally:
            b.close()
    return FirstVisit(seconds, texts, sidebar)


def nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()


def expect_heading(page, name: str | re.Pattern) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=name)).to_be_visible(timeout=SLOW)


def configured_store(tmp_path: Path, request, database: str):
    """(engine, URL) of an empty configured database for a server test: a SQLite file in ``tmp_path``, or
    the ``pg_engine`` fixture's PostgreSQL database."""
    from datasets.storage import store

    if database == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'configured.db'}"
        engine = store.make_engine(db_url)
        store.init_db(engine)
        return engine, db_url
    engine = request.getfixturevalue("pg_engine")
    return engine, engine.url.render_as_string(hide_password=False)


def page_heading(title: str) -> re.Pattern:
    """The heading a page shows: its catalog title, except 大屏展示 (a screen, headed by what it shows)."""
    return re.compile("^政务服务效能" if title == "大屏展示" else f"^{re.escape(title)}")


def login(page, username: str, password: str) -> None:
    expect_heading(page, "登录")
    page.get_by_label("账号", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()


# Latin words a user may read: file types, product and protocol names.
ALLOWED_WORDS = {"leader", "staff", "evaluator", "admin", "demo", "tester",  # account names and passwords are data
                 "XLSX", "XLS", "CSV", "TSV", "TXT", "EXCEL", "SSO", "OIDC", "UTF", "BOM", "MB", "KB", "ID",
                 "PC",  # 电脑端 in the registry's 网办 description
                 "PDF", "DOCX", "WORD", "WPS",  # the formats and word processors the 通报 is made for
                 "BJ",  # the prefix of the demo's 办件编号 (data)
                 # the placeholders an administrator writes into a 通报 template ({{ title }}, …)
                 "title", "body", "issuer", "issue_date", "city", "period", "doc_number", "cc", "printer", "print_date",
                 "JSON", "GEOJSON"}  # the boundary files an administrator uploads on 区县配置


def english_words(texts: list[str]) -> set[str]:
    """The Latin words in ``texts`` that a user should not read (file types and product names allowed)."""
    words = set()
    for text in texts:
        words.update(w for w in re.findall(r"[A-Za-z][A-Za-z_.()]*[A-Za-z)]|[A-Za-z]", text)
                     if w not in ALLOWED_WORDS and w.upper() not in ALLOWED_WORDS and len(w) > 1)
    return words
