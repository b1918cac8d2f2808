"""How the dashboard runs in a server process, beyond what a page shows (pages/_shared.begin_run)."""

from __future__ import annotations

import gc

import pytest

from tests.apptest_support import ALL_NAME, Demo, app, ok

pytestmark = pytest.mark.usefixtures("navigation_mode")


def test_the_libraries_are_frozen_out_of_the_collection_after_every_run(demo: Demo, monkeypatch):
    """Streamlit collects garbage fully after every run (runner.postScriptGC); the libraries' objects are
    frozen on a process's first run, so that this collection scans only what the runs made."""
    ok(app(demo.url, monkeypatch, demo.users[ALL_NAME]).run())
    assert gc.get_freeze_count() > 100_000
