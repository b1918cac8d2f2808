"""Helpers for opening the dashboard with streamlit.testing.v1.AppTest (tests/test_pages.py, test_roles.py).

The demo store (``make_demo``, the ``demo`` fixture in conftest.py) holds the demo city at scale 0.01
ending ``DEMO_END`` (fixed, so that no test depends on today's date) and one account per role; ``app`` opens the dashboard on it through DATABASE_URL (a configured
database: anonymous viewing is off unless ANONYMOUS_VIEW says otherwise) with an account signed in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl
from streamlit.testing.v1 import AppTest

from datasets.access import accounts
from datasets.access.accounts import ADMIN, EVALUATOR, LEADER, ROLES, STAFF, User
from datasets.domain.periods import Period
from datasets.domain.schema import KINDS
from datasets.domain.workdays import load_calendar
from datasets.sample.demo import generate_demo
from datasets.storage import store
from metrics.compute import latest_month
from metrics.scoring import ScoringSettings, load_settings, ranking
from metrics.service import compute_components
from pages import _session as session

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = str(ROOT / "dashboard.py")
PAGES = ROOT / "pages"
TIMEOUT = 120
PW = "page-test-pass"
DEMO_SEED, DEMO_SCALE, DEMO_END = 7, 0.01, "2025-06"

# Test accounts: name -> roles ("tester" holds every role and every district).
LEADER_NAME, STAFF_NAME, EVALUATOR_NAME, ADMIN_NAME, ALL_NAME = "leader1", "staff1", "evaluator1", "admin1", "tester"
ROLE_ACCOUNTS = {LEADER_NAME: (LEADER,), STAFF_NAME: (STAFF,), EVALUATOR_NAME: (EVALUATOR,), ADMIN_NAME: (ADMIN,)}


@dataclass(frozen=True)
class Demo:
    path: Path
    url: str
    comps: pl.DataFrame
    settings: ScoringSettings
    period: Period
    districts: list[str]
    inventory: pl.DataFrame
    users: dict[str, User] = field(default_factory=dict)
    summary: str = ""  # what generate_demo said

    def ranking(self, period: Period | None = None, settings: ScoringSettings | None = None) -> pl.DataFrame:
        """scoring.ranking as the pages compute it (every configured district, completeness from the batches)."""
        return ranking(self.comps, period or self.period, settings or self.settings, self.inventory, self.districts)

    def copy(self, target: Path) -> Demo:
        shutil.copy(self.path, target)
        # The snapshots and caches (datasets/derived/snapshots.py) are keyed by the batches, which the copy
        # shares: copied along, the copy need not rebuild them.
        cache = self.path.with_name(self.path.name + ".snapshots")
        if cache.exists():
            link_tree(cache, target.with_name(target.name + ".snapshots"))
        return replace(self, path=target, url=sqlite_url(target))


def link_tree(source: Path, target: Path) -> None:
    """Copy a cache directory (datasets/derived/snapshots.py) with hard links for its Parquet files: a cache file
    is never changed in place (written beside, then renamed over), so copies can share them, and linking
    the ≈ 850 files of a demo store's cache costs a fraction of copying them for every test."""

    def link(src: str, dst: str) -> None:
        if src.endswith(".parquet"):
            os.link(src, dst)
        else:  # lock files and anything else: a copy of its own
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_demo(path: Path) -> Demo:
    url = sqlite_url(path)
    engine = store.make_engine(url)
    store.init_db(engine)
    summary = generate_demo(engine, calendar=load_calendar(), seed=DEMO_SEED, scale=DEMO_SCALE, end_month=DEMO_END)
    settings = load_settings(engine)
    comps = compute_components(engine, settings)
    districts = store.list_districts(engine)["name"].to_list()
    users = {name: accounts.add_user(engine, name, PW, roles, districts[:1] if STAFF in roles else (), name)
             for name, roles in ROLE_ACCOUNTS.items()}
    users[ALL_NAME] = accounts.add_user(engine, ALL_NAME, PW, ROLES, districts, "测试员")
    month = latest_month(comps)
    assert month is not None
    inventory = store.active_batches(engine).select("district", "kind", "period")
    engine.dispose()
    return Demo(path, url, comps, settings, Period(month, month), districts, inventory, users, summary)


def sign_in(at: AppTest, user: User, url: str, now: dt.datetime | None = None) -> AppTest:
    """Put a signed-in session (as ``session.sign_in`` makes it: a record in the store at ``url``) into
    the app's session state."""
    # Through the engine the app itself uses in this process (one pool per URL, pages/_shared.get_engine),
    # so that the app finds the record on the connections it reads from.
    from pages._shared import get_engine

    state: dict = {}
    session.sign_in(state, get_engine(url), user, now=now)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def app(url: str, monkeypatch, user: User | None = None, **query: str | list[str]) -> AppTest:
    """The dashboard on ``url`` (DATABASE_URL), with ``user`` signed in (None: a visitor)."""
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return sign_in(at, user, url) if user is not None else at


def ok(at: AppTest) -> AppTest:
    """The run raised nothing and showed no traceback."""
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    ok(at.run())
    return ok(at.switch_page(page).run())


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest, column: str) -> pl.DataFrame:
    """The one table on the page that has ``column``."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, f"{len(found)} tables with column {column}"
    return pl.from_pandas(found[0])


def tables(at: AppTest, column: str) -> list[pl.DataFrame]:
    return [pl.from_pandas(d.value) for d in at.dataframe if column in d.value.columns]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def audit_rows(url: str, action: str | None = None) -> pl.DataFrame:
    engine = store.make_engine(url)
    try:
        return accounts.audit_entries(engine, 10_000, action)
    finally:
        engine.dispose()


def cases_csv(url: str, district: str, month: str, rows: int = 25) -> bytes:
    """A valid 办件明细 export (Chinese headers) made from stored cases of one district and month."""
    engine = store.make_engine(url)
    cases = store.load_records(engine, "cases", [district])
    engine.dispose()
    part = cases.filter(pl.col("accepted_at").dt.strftime("%Y-%m") == month).head(rows)
    assert part.height
    k = KINDS["cases"]
    out = part.select(
        (pl.col(f.name).dt.strftime("%Y-%m-%d %H:%M:%S") if f.dtype == pl.Datetime("us") else pl.col(f.name))
        .alias(f.header)
        for f in k.fields
    )
    return out.write_csv().encode("utf-8")
