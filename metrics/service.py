"""Entry points the pages and the CLI call: the component table of the whole store, put together from
its districts' (metrics/derived.py, which owns every derived frame, its key and how it is built).

Indicator components are additive per district (every counting rule looks at one district's own
cases, catalog and evaluations), so they are counted one district at a time from that district's
records and cached per district. Memory is bounded by the largest district, not the city. A district's
frames depend on its own batches only (and the rules, calendar and counting code): an import, a
rollback or a withdrawal counts that district again and no other, also when it opens a new month.
The one thing that crosses districts, how long catalogs stay in force (up to the store's last month),
is applied when the districts are put together (derived.extend_stocks).

A large count (more than DEFER_ROWS rows of active batches: a cold start, a rule change, an upgrade,
or an import into a large district) counts each district in memory with its alert lists (its
snapshot extended from the previous one, else built from its batch files) and leaves the record
snapshots and the drill-down parts for afterwards (finish_cache: in the app, in a background thread
once a page has been shown). docs/architecture.md says why that stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import polars as pl
from sqlalchemy.engine import Engine

from datasets.derived import snapshots
from datasets.derived.side_by_side import each_district
from datasets.domain.schema import KINDS
from datasets.domain.vocabulary import Rules
from datasets.storage import store
from metrics import derived
from metrics.compute import COMPONENT_SCHEMA
from metrics.prepare import KEYS
from metrics.scoring import ScoringSettings, load_settings

Keys = dict[tuple[str, str], str]


def store_until(engine: Engine, keys: Keys | None = None) -> str | None:
    """The last month with any data in the whole store (catalogs are in force up to it)."""
    keys = snapshots.active_keys(engine) if keys is None else keys
    months = [m for (district, kind) in keys if (m := snapshots.last_month(engine, kind, district, keys))]
    return max(months) if months else None


# Counting more rows of active batches than this is "large" (district_components' ``deferred``): the
# record snapshots and drill-down parts are written after the indicators are shown (finish_cache). Also
# for one district: a 200 k-row import into the largest district at scale 10 was visible on 总览 after
# 6.7 s with its snapshot and drill-down parts written first, 4.0–5.1 s without (benchmarks/README.md).
# A small store is counted faster in one pass (writing its snapshots first, the drill-down parts with
# the indicators) than in two. The background rebuilds the snapshot the count extended in memory
# (reading the previous one again): holding it until then would hold a large district's records.
DEFER_ROWS = 1_000_000
FINISH_MODES = ("now", "background", "later")


def compute_components(
    engine: Engine, settings: ScoringSettings, detail: bool = True, finish: str = "now"
) -> pl.DataFrame:
    """The additive base table (district × department × month × indicator) for the store's data.

    ``detail``: see derived.district_components (False: the indicators only, e.g. bench_metrics'
    indicator table). ``finish``: when many districts were counted (deferred), what was left for
    afterwards (finish_cache) is done ``now``, in the ``background`` (the app: the overview is shown
    meanwhile) or ``later`` (on first use, by whoever reads it).
    """
    if finish not in FINISH_MODES:
        raise ValueError(f"finish: {finish!r}")
    rules = settings.to_rules()
    keys = snapshots.active_keys(engine)
    districts = snapshots.districts_with_data(keys)
    rows = snapshots.district_rows(engine)
    todo = [d for d in districts if not derived.is_current(engine, "components", d, keys, rules)]
    # Without a cache (an in-memory database) nothing is kept, so nothing is left for afterwards.
    deferred = sum(rows.get(d, 0) for d in todo) > DEFER_ROWS and snapshots.cache_of(engine) is not None
    if deferred:  # the lost batch files of every district first, one SQL read per kind
        for kind in KINDS:
            snapshots.recreate_lost_batches(engine, kind, store.active_batches(engine, kind), todo)
    elif todo:
        # Their record snapshots written first (an import's extended from the previous one; the files
        # of replaced batches pruned), then counted from them.
        snapshots.ensure(engine, {slot: k for slot, k in keys.items() if slot[0] in todo})
    # Two districts at a time within the row budget (datasets/derived/side_by_side.py). In name order: largest
    # first was slower at scale 10 (bench_metrics (a), best of 3: 7.43 s against 7.23 s, peak 2.3 GB
    # against 1.8 GB), the two largest then running together.
    parts = each_district(districts, rows, lambda district, gate: derived.district_components(
        engine, district, rules, keys, detail, gate=gate, deferred=deferred))
    if deferred and detail:  # (the indicators alone leave nothing for afterwards: no drill-down parts wanted)
        finish_cache(engine, rules, keys, todo, finish)
    if not parts:
        return pl.DataFrame(schema=COMPONENT_SCHEMA)
    comps = derived.extend_stocks(pl.concat(parts), store_until(engine, keys))
    return comps.sort([*KEYS, "indicator", "since"], nulls_last=True)


_BACKGROUND: list[threading.Thread] = []
_PENDING: list[Callable[[], None]] = []
_BACKGROUND_GUARD = threading.Lock()
_log = logging.getLogger(__name__)


def finish_cache(engine: Engine, rules: Rules, keys: Keys, districts: list[str], mode: str = "now") -> None:
    """What a deferred count left out: every record snapshot (snapshots.ensure), then the drill-down's
    item names and parts of ``districts``. Pages that need them before this is done build them.

    ``background``: queued for start_background (the app calls it once a page has been shown, so the
    first overview of a cold start neither waits for this nor shares the CPU with it); ``later``: not
    at all.
    """
    def work() -> None:
        snapshots.ensure(engine, keys)
        for district in districts:
            derived.district_drill(engine, district, rules, keys)

    if mode == "now":
        work()
    elif mode == "background":
        with _BACKGROUND_GUARD:
            _PENDING.append(work)


def start_background() -> None:
    """Start the queued finish_cache work in a daemon thread (one after another: a later thread waits
    for the earlier ones). Cheap when nothing is queued."""
    with _BACKGROUND_GUARD:
        if not _PENDING:
            return
        todo, earlier = list(_PENDING), list(_BACKGROUND)
        _PENDING.clear()

        def run() -> None:
            for thread in earlier:
                thread.join()
            for work in todo:
                try:
                    work()
                except Exception:  # a cache left incomplete is built on first use; the app goes on
                    _log.exception("后台缓存补全失败")

        thread = threading.Thread(target=run, name="finish-cache", daemon=True)
        _BACKGROUND.append(thread)
        thread.start()


def wait_background(timeout: float | None = None) -> bool:
    """Start what is queued and wait for it (finish_cache); True when none is left running."""
    start_background()
    with _BACKGROUND_GUARD:
        threads = list(_BACKGROUND)
    for thread in threads:
        thread.join(timeout)
    with _BACKGROUND_GUARD:
        _BACKGROUND[:] = [t for t in _BACKGROUND if t.is_alive()]
        return not _BACKGROUND


def open_store(url: str) -> tuple[Engine, ScoringSettings, pl.DataFrame]:
    """The CLI's start: the store at ``url`` (tables created if missing), its settings and components.

    Raises datasets.domain.workdays.CalendarError when a year the data covers has no holiday schedule.
    """
    engine = store.make_engine(url)
    store.init_db(engine)
    settings = load_settings(engine)
    return engine, settings, compute_components(engine, settings)
