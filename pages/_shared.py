"""What every page shares: the cached resources, the per-run context, and small display helpers.

dashboard.py builds a ``Context`` once per run (engine, scoring settings, the component table and
the sidebar's filters) and stores it in the session; pages read it with ``current()`` and pass its
fields explicitly to functions in metrics/ and datasets/. Caches are keyed by the store's data
version, so an import, a rollback or a settings change shows at once and repeated views are instant.
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from datasets import store
from datasets.config import AppSettings
from datasets.periods import Period, parse_period
from datasets.quality import all_districts
from datasets.vocabulary import Rules
from metrics.alerts import Detail
from metrics.detail_store import load_alert_detail, load_district
from metrics.formatting import NULL_TEXT, fmt_value, in_percentage_points, is_good, percent_columns, score_columns
from metrics.overview import Card
from metrics.registry import INDICATORS
from metrics.scoring import ScoringSettings, load_settings, ranking
from metrics.service import compute_components
from metrics.units import PERCENT

CONTEXT_KEY = "_dashboard_context"
BASE_KEY = "_dashboard_base"
DASHBOARD_FILE = Path(__file__).resolve().parent.parent / "dashboard.py"
NO_DATA = "empty"
EMPTY_TABLE = "emptytable_"  # key prefix of the container of an empty table (hidden by CSS)


# --- cached resources -----------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    """One engine (connection pool) per database URL for the whole server."""
    engine = store.make_engine(url)
    store.init_db(engine)
    return engine


@st.cache_resource(show_spinner=False, max_entries=8)
def get_scoring(url: str, version: int) -> ScoringSettings:
    """The scoring settings in force (file defaults + saved changes) at a data version."""
    return load_settings(get_engine(url))


@st.cache_data(show_spinner=False, max_entries=8)
def data_fingerprint(url: str, version: int) -> str:
    """Identifies the stored records (active batches); unchanged by settings-only revisions."""
    active = store.active_batches(get_engine(url))
    if active.height == 0:
        return NO_DATA
    ids = ",".join(str(i) for i in sorted(active["id"].to_list()))
    return hashlib.sha256(ids.encode()).hexdigest()


@st.cache_data(show_spinner=False, max_entries=8)
def get_districts(url: str, version: int, in_data: tuple[str, ...]) -> list[str]:
    """Configured districts in their order, then districts found only in the data."""
    names = all_districts(get_engine(url))
    return [*names, *sorted(set(in_data) - set(names))]


@st.cache_data(show_spinner=False, max_entries=8)
def is_demo(url: str, version: int) -> bool:
    """Whether the store holds the generated demo city (its batches carry the demo's user name)."""
    from datasets.demo import USER

    history = store.batch_history(get_engine(url))
    return bool(history.height) and USER in set(history["user_name"].to_list())


@st.cache_resource(show_spinner=False)
def load_demo_once(url: str, seed: int, scale: float) -> str | None:
    """Generate the demo city into an empty store, once per server (concurrent sessions wait)."""
    from datasets.calendar import load_calendar
    from datasets.demo import generate_demo

    engine = get_engine(url)
    if store.active_batches(engine).height:
        return None
    return generate_demo(engine, calendar=load_calendar(), seed=seed, scale=scale)


def rules_key(settings: ScoringSettings) -> str:
    """The counting rules (card thresholds, rectification days) as a cache key."""
    return settings.rules.model_dump_json()


def _rules(rules_key: str) -> Rules:
    return Rules(**json.loads(rules_key))


@st.cache_resource(show_spinner="正在计算指标…", max_entries=8)
def get_components(url: str, fingerprint: str, rules_key: str) -> pl.DataFrame:
    """The additive component table (district × department × month × indicator).

    One frame shared by every run and session (a cached resource, not a copy per run: polars frames
    are never changed in place), so that its department totals (metrics.compute.department_totals)
    are summed once per data version.

    metrics.service.compute_components reads each district's part from its cache file when the
    district's records and the rules are unchanged, so a restarted server does not recount. Keyed by the stored records and the
    counting rules: a change of weights, targets or floors only re-scores (get_ranking).
    """
    from metrics.scoring import default_settings

    settings = default_settings().model_copy(update={"rules": _rules(rules_key)})
    # The drill-down parts and snapshots a cold start leaves out follow in the background.
    comps = compute_components(get_engine(url), settings, finish="background")
    _ready().add((url, fingerprint, rules_key))
    return comps


@st.cache_resource(show_spinner=False)
def _ready() -> set[tuple[str, str, str]]:
    return set()


def components_ready(url: str, fingerprint: str, rules_key: str) -> bool:
    """Whether get_components has counted these records in this server (a page can open without waiting)."""
    return (url, fingerprint, rules_key) in _ready()


@st.cache_resource(show_spinner="正在读取预警办件和差评明细…", max_entries=2)
def get_detail(url: str, fingerprint: str, rules_key: str) -> Detail:
    """The cases and evaluations the alert lists can show (red cards, overdue open cases, 差评)."""
    return load_alert_detail(get_engine(url), _rules(rules_key))


@st.cache_resource(show_spinner="正在读取该区县的办件和评价明细…", max_entries=24)
def get_district_drill(
    url: str, fingerprint: str, rules_key: str, district: str, months: tuple[str, ...]
) -> tuple[Detail, pl.DataFrame]:
    """The alert rows and item parts (metrics.drill.item_parts) of one district, for drill-down."""
    return load_district(get_engine(url), district, _rules(rules_key), months)


@st.cache_data(show_spinner=False, max_entries=256)
def get_ranking(url: str, fingerprint: str, rules_key: str, version: int, period_key: str) -> pl.DataFrame:
    """metrics.scoring.ranking for a period with the settings in force at ``version``: every district
    (configured or in the data), those without the data the index needs as 未排名."""
    comps = get_components(url, fingerprint, rules_key)
    engine = get_engine(url)
    return ranking(comps, parse_period(period_key), get_scoring(url, version), get_inventory(url, fingerprint),
                   all_districts(engine))


@st.cache_data(show_spinner=False, max_entries=8)
def get_inventory(url: str, fingerprint: str) -> pl.DataFrame:
    """The active batches (district, kind, period): what each district reported, for ranking completeness."""
    return store.active_batches(get_engine(url)).select("district", "kind", "period")


@st.cache_data(show_spinner=False)
def template(kind: str) -> bytes:
    """The import template of a kind (.xlsx), built once."""
    from datasets.templates import template_bytes

    return template_bytes(kind)


# --- the per-run context --------------------------------------------------------------------------


@dataclass
class Context:
    """Everything a page needs, built by dashboard.py for the current run."""

    url: str
    engine: Engine
    app: AppSettings
    version: int
    fingerprint: str
    settings: ScoringSettings
    comps: pl.DataFrame
    districts_all: list[str]
    months: list[str]  # months with any data, oldest first
    period: Period
    districts: list[str] = field(default_factory=list)  # chosen in the sidebar; empty = all
    indicators: list[str] = field(default_factory=list)  # chosen indicator ids
    demo: bool = False

    @property
    def rules_key(self) -> str:
        return rules_key(self.settings)

    @property
    def scope(self) -> list[str] | None:
        """The chosen districts, or None for the whole city."""
        return list(self.districts) or None

    @property
    def shown_districts(self) -> list[str]:
        return list(self.districts) or list(self.districts_all)

    def ranking(self, period: Period | None = None) -> pl.DataFrame:
        return get_ranking(self.url, self.fingerprint, self.rules_key, self.version, (period or self.period).key)

    def detail(self) -> Detail:
        return get_detail(self.url, self.fingerprint, self.rules_key)

    def district_drill(self, district: str) -> tuple[Detail, pl.DataFrame]:
        """Alert rows and item parts of one district (cached per district)."""
        months = tuple(sorted(self.comps["month"].unique().to_list()))
        return get_district_drill(self.url, self.fingerprint, self.rules_key, district, months)


_RUN = threading.local()


DB_UNAVAILABLE = "数据库暂时不可用，请稍后刷新页面重试。已保存的数据不受影响，导入要么完整入库、要么完全没有入库。"


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning the database cannot be reached now (a restart, a dropped connection)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:  # the columnar PostgreSQL reads (ADBC) and raw COPY (psycopg) raise their drivers' errors
        import adbc_driver_manager

        errors += [adbc_driver_manager.OperationalError, adbc_driver_manager.InterfaceError]
    except ImportError:
        pass
    try:
        import psycopg

        errors += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:
        pass
    return tuple(errors)


UNAVAILABLE_ERRORS = _unavailable_errors()


def database_unavailable(exc: BaseException) -> None:
    """What a run shows when the database went away under it; the next run reconnects (pool_pre_ping)."""
    st.error(DB_UNAVAILABLE, icon=":material/cloud_off:")
    st.caption(f"（{type(exc).__name__}）")


_IMPORTS_FROZEN = threading.Event()


def begin_run() -> None:
    """dashboard.py marks the thread's current run; pages check it (see ``_through_dashboard``).

    On the process's first run, the objects of the imported libraries (≈ 340 000) are moved out of the
    garbage collector's sight (``gc.freeze``): Streamlit runs a full collection after every script run
    (``runner.postScriptGC``), which scanned them all, 0.3 s of CPU on every click. They live as long as
    the process; what the runs create is still collected, and reference counting frees frozen objects
    as before.
    """
    if not _IMPORTS_FROZEN.is_set():
        _IMPORTS_FROZEN.set()
        gc.collect()
        gc.freeze()
    _RUN.active = True


def end_run() -> None:
    _RUN.active = False


def set_current(ctx: Context) -> None:
    st.session_state[CONTEXT_KEY] = ctx


def current() -> Context:
    """The context dashboard.py built for this run."""
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None or not getattr(_RUN, "active", False):
        _through_dashboard()
    return ctx


def engine_only() -> tuple[Engine, AppSettings]:
    """For pages that work without data (upload, settings, indicator reference)."""
    base = st.session_state.get(BASE_KEY)
    if base is None or not getattr(_RUN, "active", False):
        _through_dashboard()
    return base


def _through_dashboard() -> None:
    """A page file ran without dashboard.py around it.

    Streamlit serves the files of pages/ directly until some session has called st.navigation (a deep
    link to a freshly started server, and every AppTest run). Run the dashboard here instead: it builds
    the sidebar and the context, and its st.navigation picks this same page (same url path) and runs
    it; then this outer run of the page stops.
    """
    import runpy

    runpy.run_path(str(DASHBOARD_FILE), run_name="__main__")
    st.stop()


def scoring_now() -> ScoringSettings:
    engine, app = engine_only()
    return get_scoring(app.url, store.data_version(engine))


# --- display helpers ------------------------------------------------------------------------------


def column_config(frame: pl.DataFrame) -> dict[str, object]:
    """One number format per column: percent indicators with two decimals (shown from percentage
    points, see ``table``), numerators and denominators with separators, changes with their sign,
    scores with two decimals."""
    config: dict[str, object] = {}
    percents = set(percent_columns(frame.columns))
    scores = set(score_columns(frame.columns))
    for name, dtype in frame.schema.items():
        if not dtype.is_numeric():
            continue
        if name in scores:  # the index, group scores and their change: one decimal, as everywhere
            config[name] = st.column_config.NumberColumn(name, format="%+.1f" if "变化" in name else "%.1f")
        elif name in percents:
            config[name] = st.column_config.NumberColumn(name, format=f"%.{PERCENT.decimals}f%%")
        elif name.endswith(("分子", "分母")):
            config[name] = st.column_config.NumberColumn(name, format="localized")
        elif "变化" in name:
            config[name] = st.column_config.NumberColumn(name, format="%+.2f" if dtype.is_float() else "%+d")
        elif dtype.is_float():
            config[name] = st.column_config.NumberColumn(name, format="%.2f")
    return config


def table(frame: pl.DataFrame, *, key: str | None = None, height: int | str = "auto") -> None:
    """A read-only table; nulls shown as —, text cells shown as text (never rendered as HTML/Markdown)."""
    if frame.height == 0:
        # Streamlit draws an empty table as a row reading "empty" (on a canvas no script can
        # translate); the table stays for the page's structure but is hidden (pages/_browser.py CSS).
        with st.container(key=f"{EMPTY_TABLE}{key or id(frame)}"):
            st.caption("暂无记录")
            st.dataframe(frame, hide_index=True, key=key, height=40)
        return
    st.dataframe(in_percentage_points(frame), hide_index=True, placeholder=NULL_TEXT, column_config=column_config(frame),
                 key=key, height=height)


def chart(figure: alt.TopLevelMixin) -> None:
    """Draw a chart from metrics/charts.py at full width.

    The spec is built without Altair's JSON-schema validation, which costs tens of milliseconds per
    chart on every rerun; the builders' output is validated by tests/test_charts.py instead.
    """
    st.vega_lite_chart(figure.to_dict(validate=False), width="stretch")


def _delta_colour(card: Card, good: bool | None) -> str:
    return "gray" if good is None else ("green" if good else "red")


def metric_card(card: Card) -> None:
    """st.metric with the 环比 change (direction-aware colour), the 同比 change, and the numbers behind."""
    with st.container(border=True):
        flat = card.mom is not None and is_good(card.key, card.mom) is None
        st.metric(
            card.label,
            card.text,
            delta=card.mom_text,
            delta_color="off" if flat else ("inverse" if card.direction < 0 else "normal"),
            delta_description="环比" if card.mom_text else None,
            delta_arrow="off" if flat else "auto",
            help=card.help or None,
        )
        good = is_good(card.key, card.yoy)
        if card.yoy_text:
            arrow = "" if good is None else ("▲" if (card.yoy or 0) > 0 else "▼")
            st.markdown(f"同比 :{_delta_colour(card, good)}[{arrow} {card.yoy_text}]")
        else:
            st.markdown("同比 :gray[—]")
        st.caption(f"上期 {_fmt_prev(card, card.previous)} · 去年同期 {_fmt_prev(card, card.year_ago)}")
        if card.denominator is not None:
            st.caption(f"分子 {_num(card.numerator)} ÷ 分母 {_num(card.denominator)}")


def _num(value: float | None) -> str:
    if value is None:
        return NULL_TEXT
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _fmt_prev(card: Card, value: float | None) -> str:
    return fmt_value(card.key, value)


def metric_row(cards: Sequence[Card], per_row: int = 4) -> None:
    for start in range(0, len(cards), per_row):
        cols = st.columns(per_row)
        for col, card in zip(cols, cards[start : start + per_row], strict=False):
            with col:
                metric_card(card)


def indicator_label(indicator_id: str) -> str:
    for ind in INDICATORS:
        if ind.id == indicator_id:
            return f"{ind.name} {ind.arrow}"
    return indicator_id


_MARKDOWN_SPECIAL = "\\`*_{}[]()#+-.!|<>~$:"


def plain(text: object) -> str:
    """User-supplied text (district, department, item or file names) made inert inside Markdown."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in str(text))


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """UTF-8 with BOM (opens correctly in Excel), formula-like cells neutralised."""
    from datasets import safe_export

    return safe_export.csv_bytes(frame)


def file_period(period: Period) -> str:
    return period.key.replace("~", "至")
