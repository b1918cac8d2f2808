"""Shared fixtures: temporary SQLite stores and, where available, a real PostgreSQL server."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets import store

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Put back the real ``__main__`` after each test.

    Streamlit's script runner (AppTest) installs the app script as ``sys.modules["__main__"]`` and
    leaves it there; a later ``multiprocessing`` spawn would then re-run that script (a temporary
    AppTest.from_function file, or dashboard.py) in the child, which fails and leaves the parent
    waiting forever.
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    store.init_db(engine)
    yield engine
    engine.dispose()


def _postgres_admin_url() -> str | None:
    return os.environ.get("TEST_POSTGRES_URL")


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh database on the PostgreSQL server named by TEST_POSTGRES_URL.

    Locally the tests skip with the reason; in CI (CI=true) a missing server fails them.
    """
    admin_url = _postgres_admin_url()
    reason = "未设置 TEST_POSTGRES_URL，无法连接 PostgreSQL 服务器"
    if admin_url:
        try:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any connection failure means "no server"
            reason = f"PostgreSQL 服务器不可用：{exc}"
            admin_url = None
    if not admin_url:
        if IN_CI:
            pytest.fail(f"CI 环境必须提供 PostgreSQL：{reason}")
        pytest.skip(reason)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name)
    engine = store.make_engine(url.render_as_string(hide_password=False))
    store.init_db(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request) -> Engine:
    """Run a test on the embedded SQLite store and on PostgreSQL."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")


# --- the dashboard under AppTest (tests/test_pages.py, tests/test_roles.py) -----------------------


@pytest.fixture
def navigation_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run AppTest like a server on which st.navigation is in force.

    AppTest resets Streamlit's multipage mode before every run, and with a pages/ directory it then
    starts each run from the page file (as a fresh server does for a deep link, see
    ``test_deep_link_before_navigation``). A running server leaves that mode after its first
    st.navigation call; these tests open the app in that state.
    """
    if "deep_link" in request.node.name:
        return
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """A small demo store (scale 0.01) with one account per role, generated once per test session."""
    from tests.apptest_support import make_demo

    return make_demo(tmp_path_factory.mktemp("pages") / "demo.db")


@pytest.fixture
def demo_copy(demo, tmp_path):
    """A private copy of the demo store for tests that import, save settings or sign in."""
    return demo.copy(tmp_path / "copy.db")
