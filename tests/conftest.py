"""Shared fixtures: temporary SQLite stores and, where available, a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets import store

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
