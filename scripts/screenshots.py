"""Screenshots of every page of every role (issue 27's "done when"): not part of the test suite.

    .venv/bin/python scripts/screenshots.py [--out DIR] [--widths 1440,390] [--roles leader,admin]
                                            [--pages compare,periods] [--ways click,url,reload]

Starts ``streamlit run dashboard.py`` in demo mode on a fresh SQLite file (the app fills it with the
demo), blocks every request to a host other than the server, signs in as each demo account (README:
leader, evaluator, staff, admin) and, for every page the account's menu lists and every width, saves
a full-page PNG after reaching the page by a click in the menu, by its URL and after a reload:
``DIR/<width>/<account>-<page>-<way>.png``. ``DIR/notes.txt`` lists, per picture, what a reader of the
pictures should look at first: exception boxes, English words, blocked requests.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datasets.access.accounts import ADMIN, EVALUATOR, LEADER, STAFF  # noqa: E402
from pages import _catalog as catalog  # noqa: E402
from tests.browser_support import (  # noqa: E402
    SLOW,
    browser,
    english_words,
    expect_heading,
    login,
    page_heading,
    running_server,
    streamlit_run,
    visible_texts,
    wait_idle,
)

ACCOUNTS = {"leader": LEADER, "evaluator": EVALUATOR, "staff": STAFF, "admin": ADMIN}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
WAYS = ("click", "url", "reload")


def _parser() -> argparse.ArgumentParser:
    from datasets.operations.cli import ChineseArgumentParser

    parser = ChineseArgumentParser(prog="python scripts/screenshots.py",
                                   description="为每个角色的每个页面截图（1440 与 390 像素宽），检查用，不属于测试。")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "screens", metavar="目录", help="截图保存目录")
    parser.add_argument("--widths", default="1440,390", metavar="宽度", help="窗口宽度（像素），逗号分隔")
    parser.add_argument("--roles", default=",".join(ACCOUNTS), metavar="账号", help="示例账号，逗号分隔")
    parser.add_argument("--pages", default="", metavar="页面", help="只截这些页面（页面文件名，逗号分隔；默认全部）")
    parser.add_argument("--ways", default=",".join(WAYS), metavar="方式", help="进入方式：click（点击菜单）、url（打开网址）、reload（刷新），逗号分隔")
    return parser


class Outside:
    """Blocks every request to a host other than the server's, and keeps them."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, route) -> None:
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.urls.append(route.request.url)
            route.abort()


def _open_menu(page) -> None:
    """At a phone's width the sidebar starts closed: open it, and show the whole menu."""
    button = page.get_by_test_id("stExpandSidebarButton")
    if button.count() and button.first.is_visible():
        button.first.click()
        page.wait_for_timeout(600)
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and more.first.is_visible() and "收起" not in (more.first.text_content() or ""):
        more.first.click()
        page.wait_for_timeout(300)


def _shoot(page, spec, way: str, folder: Path, account: str, notes: list[str]) -> None:
    name = f"{account}-{spec.file}-{way}"
    try:
        expect_heading(page, page_heading(spec.title))
    except AssertionError:
        notes.append(f"{name}: 标题未出现")
    wait_idle(page)
    # Charts and tables draw after the run ends (a grey placeholder until then).
    deadline = time.monotonic() + 60
    while page.locator("[data-testid='stSkeleton'], [data-testid='stSkeletonElement']").count() and \
            time.monotonic() < deadline:
        page.wait_for_timeout(300)
    page.wait_for_timeout(800)
    problems = []
    close = page.get_by_test_id("stSidebarCollapseButton")
    sidebar = page.get_by_test_id("stSidebar")
    if (page.viewport_size or {}).get("width", 1440) < 700 and sidebar.count() and \
            sidebar.first.get_attribute("data-collapsed") == "false":
        # On a phone the open menu covers the page: noted, and closed for the picture.
        problems.append("menu open")
        if close.count() and close.first.is_visible():
            close.first.click()
            page.wait_for_timeout(600)
    if page.get_by_test_id("stException").count():
        problems.append("exception")
    words = english_words(visible_texts(page))
    if words:
        problems.append("english=" + ",".join(sorted(words)))
    # The page scrolls inside Streamlit's main container, not the document: make the window as tall as
    # its content for the picture (at most 8000 px), then give it back its size.
    size = page.viewport_size
    tall = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                         "'[data-testid=stMain], [data-testid=stAppViewContainer], [data-testid=stSidebarContent]')]"
                         ".map(e => e.scrollHeight), document.body.scrollHeight)")
    page.set_viewport_size({"width": size["width"], "height": min(8000, max(size["height"], tall))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)
    notes.append(f"{name}: {'; '.join(problems) or 'ok'}")


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    args = _parser().parse_args(argv)
    widths = [int(w) for w in args.widths.split(",") if w]
    roles = [r for r in args.roles.split(",") if r]
    only = {p for p in args.pages.split(",") if p}
    ways = [w for w in args.ways.split(",") if w]
    args.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    outside = Outside()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ANONYMOUS_VIEW", "CACHE_URL")}
        env["SQLITE_PATH"] = str(Path(tmp) / "demo.db")
        started = time.monotonic()
        with running_server(streamlit_run(), env, args.out / "streamlit.log") as url, sync_playwright() as p:
            b = browser(p)
            try:
                for width in widths:
                    folder = args.out / str(width)
                    folder.mkdir(exist_ok=True)
                    for account in roles:
                        role = ACCOUNTS[account]
                        context = b.new_context(viewport={"width": width, "height": 900 if width > 600 else 844})
                        context.route("**/*", outside)
                        page = context.new_page()
                        page.set_default_timeout(SLOW)
                        page.goto(url + "/login")
                        expect_heading(page, "登录")
                        wait_idle(page)
                        login(page, account, f"demo-{account}")
                        expect_heading(page, re.compile("^总览"))
                        wait_idle(page)
                        specs = [s for s in catalog.CATALOG if role in s.roles and catalog.FULL in s.navs
                                 and (not only or s.file in only)]
                        for spec in specs:
                            for way in ways:
                                try:
                                    if way == "click":
                                        if spec.file == "bigscreen" or page.url.rstrip("/").endswith("/bigscreen"):
                                            page.goto(url + "/")
                                            wait_idle(page)
                                        _open_menu(page)
                                        page.get_by_test_id("stSidebarNavLink").filter(has_text=spec.title).first.click()
                                    elif way == "url":
                                        page.goto(f"{url}/{spec.file}")
                                    else:
                                        page.reload()
                                    _shoot(page, spec, way, folder, account, notes)
                                except Exception as exc:  # a picture that failed is noted; the others go on
                                    notes.append(f"{account}-{spec.file}-{way}@{width}: 失败 {exc!r}"[:400])
                            print(f"{width} {account} {spec.file} ({time.monotonic() - started:.0f} s)", flush=True)
                        context.close()
            finally:
                b.close()
    notes.append(f"外部请求：{sorted(set(outside.urls)) or '无'}")
    (args.out / "notes.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
    print("\n".join(n for n in notes if not n.endswith(": ok")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
