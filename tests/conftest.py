"""Shared fixtures: temporary SQLite stores and, where available, a real PostgreSQL server."""

from __future__ import annotations

import fcntl
import functools
import os
import pickle
import shutil
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets.domain.workdays import load_calendar
from datasets.storage import store
from tests.apptest_support import link_tree
from tests.factories import cache_at

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Passwords hashed at the "test" cost (datasets/accounts.HASH_PROFILES): a few hundred hashes and
# verifications would otherwise take about a minute of CPU. Set in the environment, so the servers the
# tests start inherit it; tests/test_accounts.py checks the standard cost.
os.environ.setdefault("PASSWORD_HASH_PROFILE", "test")


def _scan_installed_components_once() -> None:
    """Every new AppTest scans the metadata of every installed distribution for Streamlit components
    (BidiComponentManager.discover_and_register_components, Streamlit 1.67): ≈ 0.4 s of CPU per AppTest,
    a third of an AppTest-based test file's time. The installed packages do not change during a run, so
    the scan's result is kept."""
    from streamlit.components.v2 import manifest_scanner

    if not hasattr(manifest_scanner.scan_component_manifests, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


_scan_installed_components_once()


def _compile_app_scripts_once() -> None:
    """Every AppTest run makes a new ScriptCache (streamlit/testing/v1/app_test.py, Streamlit 1.67), so
    dashboard.py and the page file are read, rewritten for "magic" and compiled again on every run,
    ≈ 12 ms each, where a server compiles them once. Compiled code is kept per file and modification
    time for the process."""
    from streamlit.runtime.scriptrunner import script_cache

    cls = script_cache.ScriptCache
    if getattr(cls.get_bytecode, "_kept", False):
        return
    original = cls.get_bytecode
    kept: dict[tuple[str, int], object] = {}

    def get_bytecode(self, script_path: str):
        key = (script_path, os.stat(script_path).st_mtime_ns)
        if key not in kept:
            kept[key] = original(self, script_path)
        return kept[key]

    get_bytecode._kept = True  # type: ignore[attr-defined]
    cls.get_bytecode = get_bytecode


_compile_app_scripts_once()


# --- how pytest-xdist shares the work out (scripts/test.sh: -n 4 --dist loadfile --no-loadscope-reorder) --

# Files using the session's demo-mode browser server (conftest ``browser_server``): one work unit, so
# one worker starts that server once.
SHARED_SERVER_FILES = ("test_browser.py", "test_bulletin_browser.py")
# The longest units first (seconds of a full run, 2026-11-30), so that no long unit starts last and
# keeps one worker busy while the other has nothing left; the rest follow in file order.
HEAVY_FIRST = ("browser", "test_every_page_browser.py", "test_probes_browser.py", "test_batch_files.py", "test_snapshots.py", "test_roles.py", "test_demo.py",
               "test_pages.py", "test_upload.py", "test_bulletin.py", "test_two_servers.py")


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or "browser" for the files sharing the browser server."""
    name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return "browser" if name in SHARED_SERVER_FILES else name


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """--dist loadfile with the browser files as one unit (xdist's loadgroup cannot group here: it
    renames items through ``_nodeid``, which pytest 9 no longer reads)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return FileUnits(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In xdist workers, the heaviest units first: xdist hands the units out in collection order
    (with --no-loadscope-reorder)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {unit: n for n, unit in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))  # stable: file order otherwise


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


@pytest.fixture(autouse=True)
def _background_cache_work_done() -> Iterator[None]:
    """A page's cold start finishes the cache in a background thread (metrics.service.finish_cache):
    it is waited for before the test's store is removed, and it must have ended."""
    yield
    from metrics import service

    assert service.wait_background(timeout=600), "后台缓存补全未结束"


@pytest.fixture(autouse=True)
def _fresh_audit_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the full budget of audited failed sign-ins, as a fresh server does.

    The limit (accounts.failed_login_audit) counts per process and per minute: without this, the
    failures of earlier tests in the same minute (test_races locks an account with 29 attempts) leave
    a later test's attempts on a locked account unaudited, depending on how fast the suite runs.
    """
    from datasets.access import accounts

    monkeypatch.setattr(accounts, "failed_login_audit",
                        accounts._RateLimit(accounts.failed_login_audit.limit, accounts.failed_login_audit.window))


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    store.init_db(engine)
    yield engine
    engine.dispose()


def _postgres_admin() -> Engine:
    """An AUTOCOMMIT engine on the PostgreSQL server named by TEST_POSTGRES_URL.

    Locally the tests skip with the reason; in CI (CI=true) a missing server fails them.
    """
    admin_url = os.environ.get("TEST_POSTGRES_URL")
    reason = "未设置 TEST_POSTGRES_URL，无法连接 PostgreSQL 服务器"
    if admin_url:
        try:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return admin
        except Exception as exc:  # any connection failure means "no server"
            reason = f"PostgreSQL 服务器不可用：{exc}"
    if IN_CI:
        pytest.fail(f"CI 环境必须提供 PostgreSQL：{reason}")
    pytest.skip(reason)


def _database_url(admin: Engine, name: str) -> str:
    return admin.url.set(database=name).render_as_string(hide_password=False)


@contextmanager
def _pg_database(template: str | None = None) -> Iterator[Engine]:
    """A new database on the test server (a copy of ``template`` when given), dropped afterwards."""
    admin = _postgres_admin()
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine = store.make_engine(_database_url(admin, name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- stores built once per run, shared by the xdist workers ------------------------------------------


def _run_root(factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of the whole run: every xdist worker's own folder is inside it."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _run_tag(factory: pytest.TempPathFactory) -> str:
    """A name part unique to this run (pytest numbers the runs' folders), for shared databases."""
    return _run_root(factory).name.replace("-", "_")


@contextmanager
def built_once(factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """(folder, already built) for a fixture the xdist workers of one run share, under a lock: the first
    worker builds it into the folder and calls ``done``; the others wait, then find it built.

    Generating a demo store takes 5–10 s; each worker used to generate its own.
    """
    folder = _run_root(factory) / f"shared-{name}"
    folder.mkdir(exist_ok=True)
    with (folder.parent / f"shared-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder, (folder / "built").exists()
        (folder / "built").touch()


def _drop_run_databases(tag: str) -> None:
    admin_url = os.environ.get("TEST_POSTGRES_URL")
    if not admin_url:
        return
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                 {"p": f"run_{tag}_%"}).scalars().all()
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    except sa.exc.OperationalError:
        pass  # no server: nothing was created on it


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's shared template databases go when the whole run ends (not when one worker does)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        _drop_run_databases(_run_tag(factory))


@pytest.fixture(scope="session")
def pg_empty_template() -> Iterator[str]:
    """An initialised, empty store on the test server: copying it is several times faster than creating
    the tables again in every test."""
    with _pg_database() as engine:
        store.init_db(engine)
        name = engine.url.database
        engine.dispose()  # a template database must have no open connections
        assert name is not None
        yield name


@pytest.fixture
def pg_engine(pg_empty_template: str) -> Iterator[Engine]:
    """A fresh, initialised database on the PostgreSQL server named by TEST_POSTGRES_URL."""
    with _pg_database(template=pg_empty_template) as engine:
        yield engine


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

    This stays a patch: AppTest.run sets ``PagesManager.uses_pages_directory = None`` and builds a new
    PagesManager for every run, whose constructor sets it from whether the script's folder has a pages/
    directory (streamlit/testing/v1/app_test.py, runtime/pages_manager.py, Streamlit 1.67); no AppTest
    argument, option or environment variable chooses the mode. dashboard.py sets the same flag for the
    real server (as the st.App that ``streamlit run dashboard.py`` serves).
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
    """A small demo store (scale 0.01) with one account per role, generated once per run (built_once) and
    copied once per worker. Only read through this fixture (apart from the sign-in session records that
    a signed-in AppTest needs, written by ``apptest_support.sign_in``); tests that write use ``demo_copy``."""
    from tests.apptest_support import make_demo

    with built_once(tmp_path_factory, "demo") as (folder, built):
        if built:
            made = pickle.loads((folder / "demo.pickle").read_bytes())
        else:
            made = make_demo(folder / "demo.db")
            (folder / "demo.pickle").write_bytes(pickle.dumps(made))
    # Each worker reads (and signs in to: session records) its own copy, made once: a SQLite file written
    # by several worker processes at once showed stale reads and "disk I/O error" in CI runs.
    return made.copy(tmp_path_factory.mktemp("demo") / "demo.db")


@pytest.fixture
def demo_copy(demo, tmp_path):
    """A private copy of the demo store for tests that import, save settings or sign in."""
    return demo.copy(tmp_path / "copy.db")


# --- a small demo store on both engines (store-level tests: snapshots, batch files) -------------------

# Generated once per session and per engine; each test gets its own copy (a file copy for SQLite,
# CREATE DATABASE … TEMPLATE for PostgreSQL), with the batch files the imports wrote. Four districts
# over 13 months (a year and its comparison month): ≈ 150 batches instead of the full city's 742, as
# the store tests' cost goes with the number of batches and district snapshots, not with rows.
SMALL_DEMO = {"seed": 3, "scale": 0.002, "end_month": "2024-12", "months": 13, "districts": 4}


@pytest.fixture(scope="session")
def small_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datasets.sample.demo import generate_demo

    with built_once(tmp_path_factory, "small") as (folder, built):
        path = folder / "small.db"
        if not built:
            engine = store.make_engine(f"sqlite:///{path}")
            store.init_db(engine)
            generate_demo(engine, calendar=load_calendar(), **SMALL_DEMO)
            engine.dispose()  # the last connection's close checkpoints the WAL: the .db file is complete
        return path


@pytest.fixture(scope="session")
def small_pg_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(database name, cache directory) of the small demo on the test server, built once per run; the
    database is dropped when the run ends (pytest_sessionfinish)."""
    from datasets.sample.demo import generate_demo

    admin = _postgres_admin()
    name = f"run_{_run_tag(tmp_path_factory)}_small"
    with built_once(tmp_path_factory, "small_pg") as (folder, built):
        cache = folder / "cache"
        if not built:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            engine = store.make_engine(_database_url(admin, name))
            cache_at(engine, str(cache))
            store.init_db(engine)
            generate_demo(engine, calendar=load_calendar(), **SMALL_DEMO)
            engine.dispose()  # a template database must have no open connections
    admin.dispose()
    return name, cache


def _sqlite_copy(template: Path, folder: Path) -> Engine:
    """A copy of a SQLite store and of its default cache directory (beside the copy: no setting needed)."""
    target = folder / template.name
    shutil.copy(template, target)
    link_tree(template.with_name(template.name + ".snapshots"), target.with_name(target.name + ".snapshots"))
    return store.make_engine(f"sqlite:///{target}")


@pytest.fixture
def small_sqlite(small_sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """A private copy of the small demo store (``SMALL_DEMO``) on SQLite."""
    engine = _sqlite_copy(small_sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def small_demo(request: pytest.FixtureRequest) -> Engine:
    """A private copy of the small demo store (``SMALL_DEMO``) on SQLite and on PostgreSQL, its cache in tmp_path."""
    return request.getfixturevalue("small_sqlite" if request.param == "sqlite" else "small_pg")


@pytest.fixture
def small_pg(small_pg_template: tuple[str, Path], tmp_path: Path) -> Iterator[Engine]:
    """A private copy (CREATE DATABASE … TEMPLATE) of the small demo store on PostgreSQL, with a copy of
    the batch files its imports wrote (tmp_path/cache)."""
    name, template_cache = small_pg_template
    with _pg_database(template=name) as engine:
        cache = tmp_path / "cache"
        link_tree(template_cache, cache)
        cache_at(engine, str(cache))
        yield engine


# --- an S3-compatible bucket (moto's server, one per session) ------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch) -> str:
    """A new bucket on the session's moto server, the AWS variables pointing at it; its cache URL."""
    name = f"cache-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/{name}", method="PUT")).close()
    for var, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(var, value)
    return f"s3://{name}/dashboard"


# --- the dashboard in a real browser (tests/test_browser.py, test_bulletin_browser.py) -----------------


@pytest.fixture(scope="session")
def browser_server(demo, tmp_path_factory: pytest.TempPathFactory):
    """The dashboard as scripts/start.sh runs it (scripts/serve.py), one server for the session, in demo
    mode: nothing configured, the embedded SQLite file (``SQLITE_PATH``) a copy of the session's demo
    store without its caches, so that the first visit (recorded in ``Server.first``) computes the
    indicators under the first-run view."""
    from tests.browser_support import Server, first_visit, launcher, need_chromium, running_server

    need_chromium()
    base = tmp_path_factory.mktemp("browser")
    db_path = base / "demo.db"
    shutil.copy(demo.path, db_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ANONYMOUS_VIEW", "CACHE_URL")}
    env["SQLITE_PATH"] = str(db_path)
    log = base / "streamlit.log"
    with running_server(launcher(), env, log) as url:
        yield Server(url, f"sqlite:///{db_path}", log, first_visit(url))
