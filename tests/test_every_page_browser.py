"""Every page of every role in a real browser, on a server started the Streamlit way
(``streamlit run dashboard.py``, demo mode: nothing configured, the embedded SQLite file a copy of the
session's demo store), with every request to another host blocked (issue 27).

- The first visit to the fresh server shows no raw file name of pages/ in the sidebar (a
  MutationObserver records every state of the sidebar menu, not only what a poll catches).
- For each demo account (leader, staff, evaluator, admin: README), each page its menu lists is reached
  by a click in the sidebar, opened by its URL (a new session, signed in again by the reload cookie)
  and reloaded: each time the page's heading shows once, with no exception box, no English text and
  one sidebar account box.
- No request leaves the server: every request to a host other than the server's fails the test.

``UI_SHOTS=folder`` also saves a screenshot of every page after each of the three ways in.
Without /usr/bin/chromium the test is skipped locally and fails in CI (CI=true).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from datasets.access.accounts import ADMIN, EVALUATOR, LEADER, STAFF
from pages import _catalog as catalog
from tests.browser_support import (
    SLOW,
    browser,
    english_words,
    expect_heading,
    login,
    need_chromium,
    page_heading,
    running_server,
    streamlit_run,
    visible_texts,
    wait_idle,
)

pytestmark = pytest.mark.browser

# The demo accounts (README) and the role each holds.
ACCOUNTS = {"leader": LEADER, "staff": STAFF, "evaluator": EVALUATOR, "admin": ADMIN}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Every state of the sidebar menu on this page, with the time it began (ms; installed before the page's
# own scripts run, so that a state too short for any poll is recorded too).
RECORD_MENU_JS = """
window.__menuStates = [];
new MutationObserver(() => {
  const n = document.querySelector('[data-testid="stSidebarNav"]');
  const words = [];
  if (n) {
    const walker = document.createTreeWalker(n, NodeFilter.SHOW_TEXT);
    let t;
    while ((t = walker.nextNode())) {
      // Icon ligatures (compare_arrows, login, …) are drawn as pictures, not words.
      if (!t.parentElement.closest('[data-testid="stIconMaterial"]') && t.nodeValue.trim()) words.push(t.nodeValue.trim());
    }
  }
  window.__menuStates.push([performance.now(), words.join("\\n")]);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
# The names Streamlit's automatic page list shows for the files of pages/ (underscores as spaces).
RAW_NAMES = sorted({p.stem.lstrip("_").replace("_", " ") for p in (Path(__file__).parents[1] / "pages").glob("*.py")}
                   | {"dashboard"})


@pytest.fixture(scope="module")
def plain_server(demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run dashboard.py`` in demo mode on a copy of the demo store without its caches."""
    need_chromium()
    base = tmp_path_factory.mktemp("plain")
    db_path = base / "demo.db"
    shutil.copy(demo.path, db_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ANONYMOUS_VIEW", "CACHE_URL")}
    env["SQLITE_PATH"] = str(db_path)
    with running_server(streamlit_run(), env, base / "streamlit.log") as url:
        yield url


class Outside:
    """Blocks every request of a browser context to a host other than the server's, and keeps them."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, route) -> None:
        url = route.request.url
        if urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.urls.append(url)
            route.abort()


# A page laid out for a wall screen, without the sidebar (its menu and account box).
NO_SIDEBAR = {catalog.PAGE_BIGSCREEN}


def _context(b, outside: Outside):
    context = b.new_context(viewport={"width": 1440, "height": 1000})
    context.route("**/*", outside)
    return context


def _expand_menu(page) -> None:
    """A long menu shows its first items and a button for the rest: open it."""
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "收起" not in (more.first.text_content() or ""):
        more.first.click()
        page.wait_for_timeout(300)


def _words(texts: list[str]) -> set[str]:
    return {w for t in texts for w in re.split(r"[\n,]", t) if w.strip()}


def _check(page, title: str, how: str, shots: Path | None, account: str, file: str) -> None:
    """The page ``title`` is shown, once and whole: its heading, one account box, no error in any language."""
    from playwright.sync_api import expect

    where = f"{account} {title} ({how})"
    expect_heading(page, page_heading(title))
    wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0, where
    texts = visible_texts(page)
    assert not english_words(texts), (where, sorted(english_words(texts)))
    assert not any("页面不存在" in t or "Page not found" in t for t in texts), where
    if title not in NO_SIDEBAR:
        # The sign-out button can come seconds after the page looks idle (also before issue 27's changes).
        expect(page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("退出登录"))).to_have_count(
            1, timeout=30_000)
        assert sum("当前账号" == t for t in texts) == 1, where
    if shots is not None:
        page.screenshot(path=str(shots / f"{account}-{file}-{how}.png"), full_page=True)


def _raw_names_shown(states: list[list]) -> tuple[float, set[str]]:
    """How long (ms) the menu held raw file names, and which."""
    shown, names = 0.0, set()
    for (start, text), (end, _next) in zip(states, [*states[1:], [states[-1][0], ""]], strict=True):
        raw = _words([text]) & set(RAW_NAMES)
        if raw:
            shown += end - start
            names |= raw
    return shown, names


def test_first_visit_to_streamlit_run_shows_no_file_names(plain_server: str):
    """The first screen of a fresh ``streamlit run dashboard.py``: the first-run view, then the 总览.

    ``streamlit run dashboard.py`` serves dashboard.py's st.App, which switches Streamlit's automatic list
    of the files of pages/ off before the first visitor: the menu never holds a raw file name. Before,
    it stayed for seconds, while the first start ran."""
    from playwright.sync_api import sync_playwright

    outside = Outside()
    with sync_playwright() as p:
        b = browser(p)
        try:
            context = _context(b, outside)
            context.add_init_script(RECORD_MENU_JS)
            page = context.new_page()
            page.goto(plain_server + "/")
            expect_heading(page, re.compile("^总览"))
            wait_idle(page)
            first = page.evaluate("window.__menuStates")
            # A later visit (the process has left Streamlit's automatic list behind): none at all.
            page.goto(plain_server + "/compare")
            expect_heading(page, re.compile("^区县对比"))
            wait_idle(page)
            later = page.evaluate("window.__menuStates")
        finally:
            b.close()
    assert {"总览", "区县对比", "登录"} <= _words([first[-1][1]])
    assert _raw_names_shown(first) == (0.0, set())
    assert _raw_names_shown(later) == (0.0, set())
    assert outside.urls == []


def test_every_page_of_every_role_by_click_by_url_and_after_a_reload(plain_server: str):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ["UI_SHOTS"]) if os.environ.get("UI_SHOTS") else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    outside = Outside()
    started = time.monotonic()
    opened = 0
    with sync_playwright() as p:
        b = browser(p)
        try:
            for account, role in ACCOUNTS.items():
                context = _context(b, outside)  # its own cookies: one sign-in per account
                page = context.new_page()
                page.goto(plain_server + "/login")
                login(page, account, f"demo-{account}")
                expect_heading(page, re.compile("^总览"))
                wait_idle(page)
                expected = [s for s in catalog.CATALOG if role in s.roles and catalog.FULL in s.navs]
                _expand_menu(page)
                menu = [t.strip().split("\n")[-1] for t in page.get_by_test_id("stSidebarNavLink").all_inner_texts()]
                assert menu == [s.title for s in expected], account
                for spec in expected:
                    _expand_menu(page)
                    page.get_by_test_id("stSidebarNavLink").filter(has_text=spec.title).click()
                    _check(page, spec.title, "click", shots, account, spec.file)
                    page.goto(f"{plain_server}/{spec.file}")
                    _check(page, spec.title, "url", shots, account, spec.file)
                    page.reload()
                    _check(page, spec.title, "reload", shots, account, spec.file)
                    opened += 3
                    if spec.title in NO_SIDEBAR:  # no menu to click on: back to the home page by its address
                        page.goto(plain_server + "/")
                        expect_heading(page, re.compile("^总览"))
                context.close()
        finally:
            b.close()
    seconds = time.monotonic() - started
    print(f"\n{opened} page views in {seconds:.0f} s ({seconds / opened:.1f} s each)")
    assert outside.urls == [], sorted(set(outside.urls))
    assert seconds < SLOW / 1000 * 4  # a page view takes seconds, not minutes
