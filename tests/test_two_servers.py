"""Two app servers, one PostgreSQL, one S3-compatible bucket (the deployment of docs/deploy.md).

Two ``streamlit run dashboard.py`` processes on loopback ports share the database named by
TEST_POSTGRES_URL (the demo city's districts and first export files, ``write_first_exports``) and a
bucket on the session's moto server (``CACHE_URL``, conftest ``bucket``) holding the Parquet file of
every batch, written there by the imports. The first
server's 总览, opened in Chromium, counts the indicator components from those files (with the record
snapshots and drill-down parts: a store this small is counted in one pass; a large one would leave
those to that server's background, metrics.service.finish_cache, which the test waits for too);
the second server's 总览 then shows the same index without writing anything to the bucket: every
object keeps its modification time, and no object is added.

Without PostgreSQL or /usr/bin/chromium the test skips locally and fails in CI (CI=true).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datasets.derived import batch_files, cache_store
from datasets.storage import store
from tests.browser_support import ROOT, SERVER_OPTIONS, browser, free_port, need_chromium, wait_healthy, wait_idle
from tests.factories import cache_at, write_first_exports

pytestmark = pytest.mark.browser
TIMEOUT = 60_000  # ms


def _start(name: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w", encoding="utf-8") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", *SERVER_OPTIONS, "--server.port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def _index_shown(page, url: str) -> str:
    from playwright.sync_api import expect

    page.goto(url + "/")
    metric = page.get_by_test_id("stMetric").first
    expect(metric).to_contain_text("效能指数", timeout=TIMEOUT)
    wait_idle(page, TIMEOUT / 1000)  # the rest of the page (alert lists) is done too
    return metric.inner_text()


def _settled(cache, districts: int) -> dict[str, float]:
    """The bucket's objects once the first server's background work is done: a record snapshot and
    item parts for every district, and nothing changing for a second."""
    deadline = time.monotonic() + TIMEOUT / 1000
    seen = cache.mtimes()
    while time.monotonic() < deadline:
        time.sleep(1)
        now = cache.mtimes()
        done = all(sum(n.startswith(f"{folder}/") for n in now) >= districts for folder in ("cases", "item_parts"))
        if done and now == seen:
            return now
        seen = now
    raise AssertionError(f"后台缓存补全未在 {TIMEOUT / 1000:.0f} 秒内完成：{sorted(seen)}")


def test_second_server_shows_the_overview_without_rebuilding(pg_engine, bucket, tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright

    procs: list[subprocess.Popen] = []
    try:
        cache = cache_at(pg_engine, bucket)
        assert isinstance(cache, cache_store.ObjectCache)
        write_first_exports(pg_engine)  # the imports write their batch files to the bucket
        assert cache.mtimes(batch_files.FOLDER)
        assert not cache.mtimes("components")
        db_url = pg_engine.url.render_as_string(hide_password=False)
        # The bucket fixture's AWS variables go along with the rest of the environment.
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL", "ANONYMOUS_VIEW")}
        env.update(DATABASE_URL=db_url, CACHE_URL=bucket, ANONYMOUS_VIEW="true")
        urls = []
        for name in ("a", "b"):  # both start now; the second is opened only after the first has built
            port = free_port()
            procs.append(_start(name, port, env, tmp_path / f"server-{name}.log"))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc, name in zip(urls, procs, "ab", strict=True):
            wait_healthy(url, proc, tmp_path / f"server-{name}.log")

        with sync_playwright() as p:
            b = browser(p)
            try:
                page = b.new_page(viewport={"width": 1400, "height": 1000})
                first = _index_shown(page, urls[0])
                built = _settled(cache, len(store.list_districts(pg_engine)))
                assert any(n.startswith("components/") for n in built)
                second = _index_shown(b.new_page(viewport={"width": 1400, "height": 1000}), urls[1])
            finally:
                b.close()
        assert second == first
        assert cache.mtimes() == built  # nothing rebuilt, nothing added by the second server
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
