"""Entry points the pages and the CLI call: read the store district by district, compute, cache.

Indicator components are additive per district (every counting rule looks at one district's own
cases, catalog and evaluations), so they are computed one district at a time from that district's
snapshot (datasets/snapshots.py) and cached per district. Memory is bounded by the largest district,
not the city, and after an import only the districts it touched are read and counted again.

A cold start (many districts to count: a restored or lost cache, a rule change) counts each district
from its batch files in memory with its alert lists, and leaves the record snapshots and the drill-down
parts for afterwards (finish_cache: in the app, in the background once a page has been shown).

The one thing that crosses districts is how long catalogs stay in force: up to the last month with
any data in the whole store (``until``), part of every district's cache key. It is known from each
district's cached last month; on a cold start it is bounded from the batch files first and checked
once every district is counted (compute_components).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import polars as pl
from sqlalchemy.engine import Engine

from datasets import snapshots, store
from datasets.schema import KINDS
from datasets.side_by_side import Gate, each_district
from datasets.vocabulary import Rules
from metrics import detail_store
from metrics.alerts import flags_and_alert_rows
from metrics.compute import COMPONENT_SCHEMA, components
from metrics.drill import components_and_item_parts
from metrics.prepare import KEYS, Dataset, counted_columns, district_dataset, load_dataset
from metrics.scoring import ScoringSettings, load_settings

Keys = dict[tuple[str, str], str]
# Part of every cached district's key: bump it when the components' shape or counting changes.
COMPONENTS_VERSION = "3"  # 3: as-of dates (open cases, due 差评), the ``aside`` column


def store_until(engine: Engine, keys: Keys | None = None) -> str | None:
    """The last month with any data in the whole store (catalogs are in force up to it)."""
    keys = snapshots.active_keys(engine) if keys is None else keys
    months = [m for (district, kind) in keys if (m := snapshots.last_month(engine, kind, district, keys))]
    return max(months) if months else None


def _until_bound(engine: Engine, keys: Keys, unknown: list[str]) -> str | None:
    """store_until or a month after it, without building any snapshot: the known last months, and for
    the ``unknown`` districts' batch_files.last_month_bound (their lost batch files recreated first,
    one SQL read per kind)."""
    active = {kind: store.active_batches(engine, kind) for kind in KINDS}
    for kind in KINDS:
        snapshots.recreate_lost_batches(engine, kind, active[kind], unknown)
    # Hundreds of small reads of date columns: side by side (1.15 s one after another at scale 10).
    with ThreadPoolExecutor(max_workers=4) as pool:
        months = [m for m, _ in pool.map(
            lambda slot: snapshots.last_month_or_bound(engine, slot[1], slot[0], keys, active[slot[1]]), list(keys))
            if m is not None]
    return max(months) if months else None


def district_components(
    engine: Engine, district: str, rules: Rules, until: str | None, keys: Keys, detail: bool = True,
    gate: Gate | None = None, deferred: bool = False,
) -> pl.DataFrame:
    """One district's component rows, from its cache or computed from its snapshot.

    ``detail``: when they are computed, also cache what the pages read beside them from the same records
    (detail_store: the alert rows, the item names and the item parts of 区县对比's drill-down), so the
    overview's lists and the drill-down are ready when the indicators are. The item parts are collected
    with the components from one preparation of the sources (at scale 30 the largest district's parts
    cost ≈ 3 s on their own, the first view of 区县对比 after an import waited ≈ 7 s for them).
    ``deferred``: many districts are counted at once (a cold start, a rule change): a missing snapshot
    is built in memory and not saved, and the drill-down's names and parts are left out; both follow
    in finish_cache, after the overview can be shown.
    ``gate``: entered around the computation only (not around reading a cached table).
    """
    key = _components_key(keys, district, rules, until)

    def build() -> pl.DataFrame:
        with gate() if gate is not None else contextlib.nullcontext():
            return compute()

    def compute() -> pl.DataFrame:
        counted = {kind: counted_columns(kind) for kind in KINDS}
        if not detail:
            data = district_dataset(engine, district, keys, counted, keep=not deferred)
            return components(data, rules, until=until).cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]
        # The alert lists and item names need every column; the counting only the counted ones. The
        # flags of every case and evaluation are worked out once, for the alert lists and the counting.
        data = district_dataset(engine, district, keys, keep=not deferred)
        if not deferred:  # before the flags: the names' working frames beside them topped 4 GB at scale 30
            detail_store.district_item_names(engine, district, keys, lambda: data)
        flags, alert_rows = flags_and_alert_rows(data, rules)
        detail_store.district_alerts(engine, district, rules, keys, lambda: alert_rows)
        # The other columns are let go before counting (a large district's names and ids are GBs).
        data = Dataset(*(getattr(data, kind).select(counted[kind]) for kind in KINDS))
        if deferred:
            return components(data, rules, until=until, flags=flags).cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]
        comps, parts = components_and_item_parts(data, rules, until, flags)
        detail_store.district_item_parts(engine, district, rules, keys, until, lambda: parts)
        return comps.cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]

    return snapshots.cached(engine, "components", district, key, build)


def _components_key(keys: Keys, district: str, rules: Rules, until: str | None) -> str:
    return snapshots.digest(snapshots.district_key(keys, district), rules.key(), until, COMPONENTS_VERSION)


# Counting more districts than this at once, with more rows of active batches than DEFER_ROWS, is
# "many" (district_components' ``deferred``): an import touches one district, whose snapshot and
# drill-down parts are best ready with its indicators; a small store is counted faster in one pass
# (writing its snapshots first, the drill-down parts with the indicators) than in two.
FEW_DISTRICTS = 1
DEFER_ROWS = 1_000_000
FINISH_MODES = ("now", "background", "later")


def compute_components(
    engine: Engine, settings: ScoringSettings, use_cache: bool = True, detail: bool = True, finish: str = "now"
) -> pl.DataFrame:
    """The additive base table (district × department × month × indicator) for the store's data.

    ``use_cache=False`` counts the whole store at once from store.load_records (for cross-checks);
    ``detail``: see district_components (False: the indicators only, e.g. bench_metrics' indicator table).
    ``finish``: when many districts were counted (deferred), what was left for afterwards (finish_cache)
    is done ``now``, in the ``background`` (the app: the overview is shown meanwhile) or ``later`` (on
    first use, by whoever reads it).

    ``until`` (the store's last month) is part of every district's key, and known only from every
    district's records. When many are not built yet (a cold start), the districts are counted with an
    upper bound of it from the batch files (_until_bound); it is equal to the real one unless a
    superseded row held the store's latest date, and in that case every district is counted again.
    """
    if finish not in FINISH_MODES:
        raise ValueError(f"finish: {finish!r}")
    rules = settings.to_rules()
    if not use_cache:
        return components(load_dataset(engine), rules)
    keys = snapshots.active_keys(engine)
    districts = snapshots.districts_with_data(keys)
    rows = snapshots.district_rows(engine)

    def many(some: list[str]) -> bool:
        # Without a cache (an in-memory database) nothing is kept, so nothing is left for afterwards.
        return (len(some) > FEW_DISTRICTS and sum(rows.get(d, 0) for d in some) > DEFER_ROWS
                and snapshots.cache_of(engine) is not None)

    unknown = sorted({d for (d, kind), key in keys.items() if not snapshots.is_cached(engine, f"last_month_{kind}", d, key)})
    if many(unknown):
        until = _until_bound(engine, keys, unknown)
    else:
        # The snapshots of the few districts whose last month is not known written first (an import's
        # extended; the replaced batches' files pruned), then the exact last month. Only theirs: the
        # snapshots a cold start left for its background work are not waited for here if a restart
        # came before it finished.
        if unknown:
            snapshots.ensure(engine, {slot: key for slot, key in keys.items() if slot[0] in unknown})
        unknown = []
        until = store_until(engine, keys)
    todo = [d for d in districts
            if not snapshots.is_cached(engine, "components", d, _components_key(keys, d, rules, until))]
    deferred = many(todo)

    def count(until: str | None) -> list[pl.DataFrame]:
        # Two districts at a time within the row budget (datasets/side_by_side.py). In name order:
        # largest first was slower at scale 10 (bench_metrics (a), best of 3: 7.43 s against 7.23 s,
        # peak 2.3 GB against 1.8 GB), the two largest then running together.
        return each_district(districts, rows, lambda district, gate: district_components(
            engine, district, rules, until, keys, detail, gate=gate, deferred=deferred))

    parts = count(until)
    if unknown and (exact := store_until(engine, keys)) != until:
        until = exact  # the bound was after the real last month: counted again with the real one
        parts = count(until)
    if deferred and detail:  # (the indicators alone leave nothing for afterwards: no drill-down parts wanted)
        finish_cache(engine, rules, keys, until, todo, finish)
    if not parts:
        return pl.DataFrame(schema=COMPONENT_SCHEMA)
    return pl.concat(parts).sort([*KEYS, "indicator", "since"], nulls_last=True)


_BACKGROUND: list[threading.Thread] = []
_PENDING: list[Callable[[], None]] = []
_BACKGROUND_GUARD = threading.Lock()
_log = logging.getLogger(__name__)


def finish_cache(engine: Engine, rules: Rules, keys: Keys, until: str | None, districts: list[str],
                 mode: str = "now") -> None:
    """What a deferred count left out: every record snapshot (snapshots.ensure), then the drill-down's
    item names and parts of ``districts``. Pages that need them before this is done build them.

    ``background``: queued for start_background (the app calls it once a page has been shown, so the
    first overview of a cold start neither waits for this nor shares the CPU with it); ``later``: not
    at all.
    """
    def work() -> None:
        snapshots.ensure(engine, keys)
        for district in districts:
            detail_store.district_drill(engine, district, rules, keys, until)

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

    Raises datasets.calendar.CalendarError when a year the data covers has no holiday schedule.
    """
    engine = store.make_engine(url)
    store.init_db(engine)
    settings = load_settings(engine)
    return engine, settings, compute_components(engine, settings)
