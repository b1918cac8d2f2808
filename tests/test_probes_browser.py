"""Issue 23's file and template probes replayed against a running server (``streamlit run dashboard.py``
on a configured database, SQLite and PostgreSQL), through the pages a staff member and an administrator
use: every hostile file is refused in Chinese, the server stays up, and the store is unchanged.

The classes themselves are covered in-process (tests/test_bad_files.py, tests/test_hostile_templates.py);
this is the end-to-end check that the server survives them.
"""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from datasets.access import accounts, documents
from datasets.storage import store
from tests.bad_files.corpus import CORPUS
from tests.browser_support import (
    SLOW,
    browser,
    configured_store,
    english_words,
    expect_heading,
    login,
    nav,
    need_chromium,
    running_server,
    streamlit_run,
    visible_texts,
    wait_idle,
)
from tests.test_hostile_templates import with_text, zip_bomb

pytestmark = pytest.mark.browser

# The variants of the far cell the issue names, a row of cells without references at row 1048576, a
# sheet reached through "..", and an entity bomb.
FILES = {c.name: c for c in CORPUS if c.name in {
    "far_cell_single_quotes", "far_cell_spaces_around_equals", "far_cell_lowercase",
    "far_row_of_unreferenced_cells", "sheet_through_dotdot", "doctype_billion_laughs"}}
TEMPLATES = {
    "代码注入.docx": (with_text("{{ cycler.__init__.__globals__.os.popen('id').read() }}"), "模板未保存"),
    "大字符串.docx": (with_text("{{ ('x'*400000000)|length }}"), "模板未保存"),
    "压缩炸弹.docx": (zip_bomb(), "模板未保存"),
}


def _counts(engine) -> tuple[int, ...]:
    from datasets.storage import tables

    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                     for t in (tables.batches, tables.documents))


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as response:
        return response.read().decode().strip() == "ok"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_hostile_files_and_templates_leave_a_running_server_up_and_the_store_unchanged(tmp_path: Path, request,
                                                                                       database: str):
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    engine, db_url = configured_store(tmp_path, request, database)
    store.add_district(engine, "甲区")
    accounts.add_user(engine, "clerk", "clerk-pass-1", [accounts.STAFF], ["甲区"], "办事员")
    accounts.add_user(engine, "adm", "admin-pass-1", [accounts.ADMIN], [], "管理员")
    before = _counts(engine)
    for name, case in FILES.items():
        (tmp_path / f"{name}.xlsx").write_bytes(case.build())
    for name, (content, _says) in TEMPLATES.items():
        (tmp_path / name).write_bytes(content)
    env = {**{k: v for k, v in os.environ.items() if k != "ANONYMOUS_VIEW"}, "DATABASE_URL": db_url,
           "CACHE_URL": str(tmp_path / "cache")}
    with running_server(streamlit_run(), env, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        b = browser(p)
        try:
            page = b.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(f"{url}/upload")
            login(page, "clerk", "clerk-pass-1")
            expect_heading(page, "数据上传")
            for name, case in FILES.items():
                wait_idle(page)
                page.locator("input[type='file']").set_input_files(str(tmp_path / f"{name}.xlsx"))
                expect(page.get_by_text(re.compile(f"{name}.xlsx：无法读取")).first).to_be_visible(timeout=SLOW)
                expect(page.get_by_text(case.message).first).to_be_visible(timeout=SLOW)
                assert _healthy(url), name
                texts = visible_texts(page, "[data-testid='stMain']")
                # Latin letters a user reads here come from the file (its name, its sheet "Sheet1") and
                # the account name; nothing else.
                foreign = {w for w in english_words(texts) if ".xlsx" not in w} - {"clerk", "Sheet"}
                assert not foreign, (name, foreign)
                assert page.get_by_test_id("stException").count() == 0
            page.context.close()

            page = b.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(f"{url}/settings")
            login(page, "adm", "admin-pass-1")
            expect_heading(page, "设置")
            for name, (_content, says) in TEMPLATES.items():
                wait_idle(page)
                uploader = page.get_by_test_id("stFileUploader").filter(has_text="上传新模板")
                uploader.locator("input[type='file']").set_input_files(str(tmp_path / name))
                # The upload's own rerun first (it clears the last refusal), then the click: a click
                # during that rerun can be dropped, so it is repeated until the page answers.
                expect(page.get_by_test_id("stFileChip").filter(has_text=name)).to_have_count(1, timeout=60_000)
                refusal = page.get_by_text(re.compile(says))
                expect(refusal).to_have_count(0, timeout=60_000)
                wait_idle(page)
                for attempt in range(3):
                    page.get_by_role("button", name="使用上传的模板").click()
                    try:
                        expect(refusal.first).to_be_visible(timeout=60_000)
                        break
                    except AssertionError:
                        if attempt == 2:
                            raise
                        wait_idle(page)
                assert _healthy(url), name
                assert page.get_by_test_id("stException").count() == 0
            nav(page, "审计日志")
            expect_heading(page, "审计日志")
        finally:
            b.close()
    assert _counts(engine) == before
    assert documents.get(engine, documents.TEMPLATE) is None
    assert "uid=" not in (tmp_path / "streamlit.log").read_text(encoding="utf-8", errors="replace")
    if database == "sqlite":
        engine.dispose()
