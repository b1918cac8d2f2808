"""What every page shares: the cached resources, the per-run context, and small display helpers.

dashboard.py builds a ``Context`` once per run (engine, scoring settings, the component table and
the sidebar's filters) and stores it in the session; pages read it with ``current()`` and pass its
fields explicitly to functions in metrics/ and datasets/. Caches are keyed by the store's data
version, so an import, a rollback or a settings change shows at once and repeated views are instant.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from datasets.common import faults
from datasets.common.config import AppSettings
from datasets.domain.periods import MONTH, QUARTER, YEAR, Period, parse_period, period_choices
from datasets.domain.vocabulary import Rules
from datasets.storage import store
from datasets.storage.coverage import Coverage, coverage
from datasets.storage.quality import all_districts
from metrics.alerts import Detail
from metrics.detail_store import load_alert_detail, load_district
from metrics.formatting import (
    NULL_TEXT,
    fmt_value,
    in_percentage_points,
    is_good,
    percent_columns,
    rank_change_labels,
    score_columns,
)
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
WIDE_HINT = "widehint_"  # key prefix of the hint above a wide table (shown by CSS on narrow screens only)
PHONE_PX = 360  # a table wider than this scrolls sideways on a phone
SCROLL_BOX = "scrollbox_"  # key prefix of a box that scrolls sideways (pages/_browser.py CSS)


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


def data_fingerprint(url: str, version: int) -> str:
    """Identifies the stored records (active batches) and the working-day calendar they are counted
    with (a holiday registered in the file while the server runs is counted on the next rerun);
    unchanged by settings-only revisions."""
    from datasets.domain.workdays import load_calendar

    batches = _batches_fingerprint(url, version)
    return batches if batches == NO_DATA else f"{batches}:{load_calendar().digest}"


@st.cache_data(show_spinner=False, max_entries=8)
def _batches_fingerprint(url: str, version: int) -> str:
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
    from datasets.sample.demo import USER

    history = store.batch_history(get_engine(url))
    return bool(history.height) and USER in set(history["user_name"].to_list())


@st.cache_resource(show_spinner=False)
def load_demo_once(url: str, seed: int, scale: float) -> str | None:
    """Generate the demo city into an empty store, once per server (concurrent sessions wait)."""
    from datasets.domain.workdays import load_calendar
    from datasets.sample.demo import generate_demo

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
def get_district_drill(url: str, fingerprint: str, rules_key: str, district: str) -> tuple[Detail, pl.DataFrame]:
    """The alert rows and item parts (metrics.drill.item_parts) of one district, for drill-down."""
    return load_district(get_engine(url), district, _rules(rules_key))


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


TODAY_KEY = "_today"  # tests put a date here: the pages' clock (which months have ended)


def today() -> dt.date:
    """Today for deciding which months have ended: the session's injected date (tests), else the date."""
    injected = st.session_state.get(TODAY_KEY)
    return injected if isinstance(injected, dt.date) else dt.date.today()


@st.cache_data(show_spinner=False, max_entries=8)
def get_coverage(url: str, version: int, rules_key: str, day: dt.date) -> Coverage:
    """datasets.storage.coverage.coverage: complete months, the default month, the partial months' notes."""
    return coverage(get_engine(url), _rules(rules_key), day)


@st.cache_data(show_spinner=False)
def template(kind: str) -> bytes:
    """The import template of a kind (.xlsx), built once."""
    from datasets.intake.templates import template_bytes

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
    coverage: Coverage | None = None  # complete months (datasets/storage/coverage.py)

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

    def banner(self, period: Period | None = None) -> str | None:
        """数据截至 …，已报送 N/M 个区县 for the partial months of the period (None: all complete)."""
        return self.coverage.banner(period or self.period) if self.coverage is not None else None

    def ranking(self, period: Period | None = None) -> pl.DataFrame:
        return get_ranking(self.url, self.fingerprint, self.rules_key, self.version, (period or self.period).key)

    def detail(self) -> Detail:
        return get_detail(self.url, self.fingerprint, self.rules_key)

    def district_drill(self, district: str) -> tuple[Detail, pl.DataFrame]:
        """Alert rows and item parts of one district (cached per district)."""
        return get_district_drill(self.url, self.fingerprint, self.rules_key, district)


_RUN = threading.local()


def own_period_picker(ctx: Context, key: str) -> Period:
    """A page's own period picker (月/季/年), defaulting to the latest complete month; partial months
    marked （未报齐）, a quarter or year in progress measured to date."""
    cover = ctx.coverage or Coverage(tuple(ctx.districts_all))
    choices = period_choices(ctx.months)
    c1, c2 = st.columns([1, 2])
    kind = c1.radio("时段类型", (MONTH, QUARTER, YEAR), key=f"{key}_type", horizontal=True)
    options = choices[kind]
    default = {MONTH: ctx.period.last, QUARTER: f"{ctx.period.last[:4]}-Q{(int(ctx.period.last[5:7]) - 1) // 3 + 1}",
               YEAR: ctx.period.last[:4]}[kind]
    chosen = c2.selectbox("时段", options, index=options.index(default) if default in options else 0,
                          key=f"{key}_{kind}", format_func=cover.period_label)
    return cover.measured(parse_period(chosen))



_FAULT_ICONS = {faults.DATABASE: ":material/cloud_off:", faults.DISK_FULL: ":material/hard_drive:",
                faults.CACHE: ":material/hard_drive:"}


def log_fault(kind: str, exc: BaseException) -> None:
    logging.getLogger(__name__).warning("页面运行中断（%s）：%r", kind, exc, exc_info=faults.traceback_wanted())


def show_fault(fault: faults.Fault, exc: BaseException) -> None:
    """What a run shows when the system failed under it (datasets/common/faults.py: the database went away, a
    full disk); the next run tries again (pool_pre_ping reconnects). The exception goes to the log."""
    log_fault(fault.kind, exc)
    st.error(f"{fault.message}恢复后刷新页面即可，无需重启看板。", icon=_FAULT_ICONS.get(fault.kind))


def cache_notice(engine: Engine) -> None:
    """A warning while the computation cache cannot be written (the numbers shown are computed in memory)."""
    from datasets.derived import cache_store, snapshots

    problem = cache_store.write_problem(snapshots.cache_of(engine))
    if problem is not None:
        st.warning(plain(faults.cache_warning(problem)), icon=":material/hard_drive:")


_IMPORTS_FROZEN = threading.Event()


def begin_run() -> None:
    """dashboard.py marks the thread's current run; pages check it (see ``_through_dashboard``).

    The mark also starts the run without a context: a page sees only the context this run built
    (``set_current``), never one an earlier run of the session left behind.

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
    st.session_state.pop(CONTEXT_KEY, None)


def end_run() -> None:
    _RUN.active = False


def in_dashboard_run() -> bool:
    """Whether dashboard.py is running around the page (it marked this thread's run)."""
    return getattr(_RUN, "active", False)


def set_current(ctx: Context) -> None:
    st.session_state[CONTEXT_KEY] = ctx


def current() -> Context:
    """The context dashboard.py built for this run.

    Only a page the catalog declares ``filtered`` has one (dashboard.py builds it with the sidebar's
    filters; tests/test_catalog.py checks that every page calling this is declared so). Inside a
    dashboard run a missing context is never a reason to run the dashboard again: that drew the
    sidebar a second time and failed on its duplicate widgets.
    """
    if not in_dashboard_run():
        _through_dashboard()
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None:
        st.error("此页面暂时无法显示统计数据。请从左侧菜单打开“总览”，再回到此页面。", icon=":material/error:")
        st.stop()
    return ctx


def engine_only() -> tuple[Engine, AppSettings]:
    """For pages that work without data (upload, settings, indicator reference)."""
    if not in_dashboard_run():
        _through_dashboard()
    return st.session_state[BASE_KEY]


def _through_dashboard() -> None:
    """A page file ran without dashboard.py around it.

    Streamlit serves the files of pages/ directly until some session has called st.navigation (a deep
    link to a freshly started server, and every AppTest run). Run the dashboard here instead: it builds
    the sidebar and the context, and its st.navigation picks this same page (same url path) and runs
    it; then this outer run of the page stops.
    """
    import runpy

    if in_dashboard_run():  # never twice in one run (see ``current``)
        raise RuntimeError("dashboard.py is already running around this page")
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
        if name == "排名变化" and dtype == pl.String:  # +2 / 持平 (rank_change_labels): aligned as numbers
            config[name] = st.column_config.TextColumn(name, alignment="right")
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


ROW_PX = 35  # Streamlit's table row (and header) height
CHAR_PX, MAX_COLUMN_PX = 7, 400  # pixels per display unit (half a Chinese character); the widest column
# A line of the widest column: 54 units (27 Chinese characters); longer text wraps onto lines of LINE_PX.
LINE_UNITS, LINE_PX, MAX_LINES = 54, 20, 4
WRAP_AFTER = LINE_UNITS


def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


@dataclass(frozen=True)
class TableLayout:
    """How a table is drawn: the text columns that wrap, the row height, and the element's height."""

    wrapped: tuple[str, ...]
    row_height: int | None  # None: Streamlit's one-line rows
    height: int | str  # "content": exactly the rows (no empty filler rows); pixels: scrolls
    widths: dict[str, int]  # pixels of the text columns wider than their first rows suggest (none: Streamlit's)
    width_px: int = 0  # about how wide the whole table is drawn

    @property
    def wide(self) -> bool:
        """Wider than a phone's screen: it scrolls sideways there (the page says so)."""
        return self.width_px > PHONE_PX


def table_layout(frame: pl.DataFrame, max_rows: int | None = 10) -> TableLayout:
    """Long text columns wrap (Streamlit wraps cell text only in rows taller than 4rem) in rows tall
    enough for their longest text (at most ``MAX_LINES`` lines; a click on a cell shows all of it); the
    table is as tall as its rows, or ``max_rows`` rows with a scroll bar when it has more."""
    widths = {name: max((_display_width(v) for v in frame[name].drop_nulls().to_list()), default=0)
              for name, dtype in frame.schema.items() if dtype == pl.String}
    wrapped = tuple(name for name, width in widths.items() if width > WRAP_AFTER)
    row_height = None
    if wrapped:
        lines = min(MAX_LINES, max(-(-widths[name] // LINE_UNITS) for name in wrapped))
        row_height = max(4 * 16 + 2, lines * LINE_PX + 14)
    # Streamlit sizes a column by its header and first rows: a long text further down is cut.
    sized = {name: min(MAX_COLUMN_PX, width * CHAR_PX + 24) for name, width in widths.items()
             if width > _display_width(name)}
    every = {name: max([_display_width(name), *(_display_width(str(v)) for v in frame[name].head(50).to_list())])
             for name in frame.columns}
    width_px = sum(sized.get(name, min(MAX_COLUMN_PX, units * CHAR_PX + 24)) for name, units in every.items())
    if max_rows is None or frame.height <= max_rows:
        return TableLayout(wrapped, row_height, "content", sized, width_px)
    return TableLayout(wrapped, row_height, ROW_PX + max_rows * (row_height or ROW_PX) + 2, sized, width_px)


def wide_hint(key: str, what: str = "表格", rest: str = "其余各列") -> None:
    """On a narrow screen only (pages/_browser.py CSS): the element below scrolls sideways."""
    with st.container(key=f"{WIDE_HINT}{key}"):
        st.caption(f":material/swipe: {what}较宽：左右滑动{what}查看{rest}。")


def table(frame: pl.DataFrame, *, key: str | None = None, max_rows: int | None = 10,
          hidden: tuple[str, ...] = ()) -> None:
    """A read-only table; nulls shown as —, text cells shown as text (never rendered as HTML/Markdown).

    ``max_rows``: the rows shown before the table scrolls (None: all); see ``table_layout``.
    ``hidden``: columns kept in the frame (e.g. for its download) but not shown."""
    if frame.height == 0:
        # Streamlit draws an empty table as a row reading "empty" (on a canvas no script can
        # translate); the table stays for the page's structure but is hidden (pages/_browser.py CSS).
        with st.container(key=f"{EMPTY_TABLE}{key or id(frame)}"):
            st.caption("暂无记录")
            st.dataframe(frame, hide_index=True, key=key, height=40)
        return
    frame = rank_change_labels(frame)  # +2, -1, 持平 as in the exports
    layout = table_layout(frame, max_rows)
    config = column_config(frame)
    config.update({name: st.column_config.TextColumn(name, width=px) for name, px in layout.widths.items()})
    config.update(dict.fromkeys(hidden))  # None hides a column
    if layout.wide:  # a phone shows the first columns only, and its scroll bar only while scrolling
        wide_hint(str(key or id(frame)))
    st.dataframe(in_percentage_points(frame), hide_index=True, placeholder=NULL_TEXT, column_config=config,
                 key=key, height=layout.height, row_height=layout.row_height)


def chart(figure: alt.TopLevelMixin, *, scroll_key: str | None = None) -> None:
    """Draw a chart from metrics/charts.py at full width.

    ``scroll_key``: a chart of fixed width (a faceted grid, which cannot take the page's width) is drawn
    at its own width in a box that scrolls sideways on a narrow screen, with the wide-table hint.

    The spec is built without Altair's JSON-schema validation, which costs tens of milliseconds per
    chart on every rerun; the builders' output is validated by tests/test_charts.py instead.
    """
    if scroll_key is None:
        st.vega_lite_chart(figure.to_dict(validate=False), width="stretch")
        return
    wide_hint(scroll_key, "图表", "其余部分")
    with st.container(key=f"{SCROLL_BOX}{scroll_key}"):
        st.vega_lite_chart(figure.to_dict(validate=False), width="content")


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
        if card.aside:  # e.g. 整改期内差评: in neither part, shown so that nothing is hidden
            st.caption(f"{card.aside}（不计入分子、分母）")


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


def csv_bytes(frame: pl.DataFrame, note: str | None = None) -> bytes:
    """UTF-8 with BOM (opens correctly in Excel), formula-like cells neutralised, numbers as the table
    shows them; ``note`` (a partial month's 数据截至 … line) first."""
    from metrics.exports import table_csv_bytes

    return table_csv_bytes(frame, note)


def file_period(period: Period) -> str:
    return period.key.replace("~", "至")
