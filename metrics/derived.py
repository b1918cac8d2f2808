"""The owner of the derived data: every frame computed from a district's records and kept in the cache.

Artefacts, per district (files named ``<name>/<name>-<district tag>-<key>.parquet``):

- ``components``: the indicator components (metrics/compute.py) with its catalogs in force up to the
  district's own last month; the store's later months are filled in when districts are put together
  (extend_stocks), so no district's frame depends on another district or on the store's last month.
- ``alert_cases`` / ``alert_evaluations``: the alert rows (metrics/alerts.py).
- ``item_names``: the item names of the drill-down (alerts.item_names).
- ``item_parts``: the components per item (metrics/drill.py), up to the district's own last month too
  (drill.item_values reads a range ending later in that month, as compute.stock_month does).

Every one has the same key (key()): the district's active batches with the code that makes records
from them (datasets/snapshots.active_keys), the counting rules, the working-day calendar in use
(datasets/domain/workdays.py: holiday file and library data) and the source of the counting code
(COUNTING_MODULES). Nothing is bumped by hand: when any of these changes the key changes, the next read
builds the frame again (here, _cached) and the older file of the same artefact and district is deleted
(datasets/snapshots.save). The storage primitives (files, build locks, dropping older files) are
datasets/derived/snapshots.py, which never calls back into metrics/; what is in a frame, its key and when it
is built are decided here.

The record snapshots and their last months (datasets/derived/snapshots.py) are keyed by the batches and the
record code only: no rules and no calendar go into making them.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter
from collections.abc import Callable

import polars as pl
from sqlalchemy.engine import Engine

from datasets.derived import snapshots
from datasets.derived.side_by_side import Gate
from datasets.domain.periods import month_range
from datasets.domain.schema import KINDS
from datasets.domain.vocabulary import Rules
from datasets.domain.workdays import load_calendar
from metrics.alerts import NO_NAMES, Detail, alert_detail, flags_and_alert_rows, item_names
from metrics.compute import COMPONENT_SCHEMA, COVERAGE_IDS, STOCK_IDS, components
from metrics.drill import components_and_item_parts, item_parts
from metrics.prepare import NOT_COUNTED, Dataset, counted_columns, district_dataset, prepare_sources_lazy

Keys = dict[tuple[str, str], str]

# The code a derived frame is counted with: its source is part of every key (datasets/derived/snapshots.py
# source_digest). A module that decides what a number is belongs here.
COUNTING_MODULES = (
    "datasets.domain.vocabulary", "datasets.domain.schema", "datasets.domain.periods", "datasets.domain.workdays",
    "metrics.prepare", "metrics.registry", "metrics.compute", "metrics.alerts", "metrics.drill", "metrics.derived",
)

# District computations done by this process, per artefact (tests and benchmarks read it).
COUNTS: Counter[str] = Counter()
_COUNTS_GUARD = threading.Lock()


def _counted(name: str) -> None:
    with _COUNTS_GUARD:
        COUNTS[name] += 1


def _cached(engine: Engine, name: str, district: str, k: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """The artefact ``name`` of ``district`` under key ``k``: read, else built here and saved (under the
    build lock, checking again once it is held: several threads or servers build it once)."""
    found = snapshots.read_cached(engine, name, district, k)
    if found is not None:
        return found
    with snapshots.building(engine, name, district, k):
        found = snapshots.read_cached(engine, name, district, k)
        if found is not None:
            return found
        frame = build()
        snapshots.save(engine, name, district, k, frame)
    return frame


def key(keys: Keys, district: str, rules: Rules) -> str:
    """The key of every derived frame of ``district`` (see the module docstring)."""
    return snapshots.digest(snapshots.district_key(keys, district), rules.key(), load_calendar().digest,
                            snapshots.source_digest(COUNTING_MODULES))


def is_current(engine: Engine, name: str, district: str, keys: Keys, rules: Rules) -> bool:
    """Whether the artefact ``name`` of ``district`` is cached under its current key."""
    return snapshots.is_cached(engine, name, district, key(keys, district, rules))


def district_components(
    engine: Engine, district: str, rules: Rules, keys: Keys, detail: bool = True,
    gate: Gate | None = None, deferred: bool = False,
) -> pl.DataFrame:
    """One district's component rows, from the cache or counted from its records.

    ``detail``: when they are counted, also cache what the pages read beside them from the same records
    (the alert rows, the item names and the item parts of 区县对比's drill-down), so the overview's lists
    and the drill-down are ready when the indicators are. The item parts are collected with the
    components from one preparation of the sources (at scale 30 the largest district's parts cost ≈ 3 s
    on their own).
    ``deferred``: many districts are counted at once (a cold start, a rule change): a missing snapshot
    is built in memory and not saved, and the drill-down's names and parts are left out; both follow
    in metrics.service.finish_cache, after the overview can be shown.
    ``gate``: entered around the computation only (not around reading a cached table).
    """
    k = key(keys, district, rules)

    def build() -> pl.DataFrame:
        with gate() if gate is not None else contextlib.nullcontext():
            return _count(engine, district, rules, keys, k, detail, deferred)

    return _cached(engine, "components", district, k, build)


def _count(engine: Engine, district: str, rules: Rules, keys: Keys, k: str, detail: bool,
           deferred: bool) -> pl.DataFrame:
    _counted("components")
    counted = {kind: counted_columns(kind) for kind in KINDS}
    if not detail:
        data = district_dataset(engine, district, keys, counted, keep=not deferred)
        _remember_last_months(engine, district, keys, data)
        return components(data, rules).cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]
    # The alert lists and item names need every column; the counting only the counted ones. The flags
    # of every case and evaluation are worked out once, for the alert lists and the counting.
    data = district_dataset(engine, district, keys, keep=not deferred)
    _remember_last_months(engine, district, keys, data)
    if not deferred:  # before the flags: the names' working frames beside them topped 4 GB at scale 30
        _cache_item_names(engine, district, k, lambda: data)
    flags, alert_rows = flags_and_alert_rows(data, rules)
    _cache_alerts(engine, district, k, lambda: alert_rows)
    # The other columns are let go before counting (a large district's names and ids are GBs).
    data = Dataset(*(getattr(data, kind).select(counted[kind]) for kind in KINDS))
    if deferred:
        return components(data, rules, flags=flags).cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]
    comps, parts = components_and_item_parts(data, rules, None, flags)
    _cached(engine, "item_parts", district, k, lambda: parts)
    return comps.cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]


def _remember_last_months(engine: Engine, district: str, keys: Keys, data: Dataset) -> None:
    # What store_until reads: kept from the rows at hand rather than read again from the snapshot.
    for kind in KINDS:
        snapshots.remember_last_month(engine, kind, district, keys, getattr(data, kind))


def _cache_alerts(engine: Engine, district: str, k: str, build: Callable[[], Detail]) -> Detail:
    @functools.cache  # both files come from one build when neither is cached
    def rows() -> Detail:
        _counted("alerts")
        return build()

    cases = _cached(engine, "alert_cases", district, k, lambda: rows().cases)
    evaluations = _cached(engine, "alert_evaluations", district, k, lambda: rows().evaluations)
    return Detail(cases, evaluations, pl.DataFrame(schema=NO_NAMES))


def _cache_item_names(engine: Engine, district: str, k: str, data: Callable[[], Dataset]) -> pl.DataFrame:
    def build() -> pl.DataFrame:
        _counted("item_names")
        return item_names(data())

    return _cached(engine, "item_names", district, k, build)


def district_alerts(engine: Engine, district: str, rules: Rules, keys: Keys) -> Detail:
    """alert_rows() of one district (metrics/alerts.py), from the cache or built from its records."""
    return _cache_alerts(engine, district, key(keys, district, rules),
                         lambda: alert_detail(district_dataset(engine, district, keys), rules))


def district_drill(engine: Engine, district: str, rules: Rules, keys: Keys) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The item names and item parts (drill.item_parts) of one district, from the cache or built."""
    k = key(keys, district, rules)

    @functools.cache
    def data() -> Dataset:
        # Only the columns the sources and the item names read (not every id and name of the district).
        return district_dataset(engine, district, keys, {
            kind: [*counted_columns(kind), *(["item_name"] if "item_name" in NOT_COUNTED[kind] else [])]
            for kind in KINDS
        })

    def parts() -> pl.DataFrame:
        _counted("item_parts")
        # Summed per item as the components are (lazily, no row-level frame kept).
        return item_parts(prepare_sources_lazy(data(), rules, load_calendar()))

    names = _cache_item_names(engine, district, k, data)
    return names, _cached(engine, "item_parts", district, k, parts)


def extend_stocks(comps: pl.DataFrame, until: str | None) -> pl.DataFrame:
    """The catalog rows of each district carried from its own last month up to ``until`` (the store's
    last month): what counting the district with the store's last month gives. No newer catalog and no
    evaluation of the district exists after its last month, so its catalog rows stay the same and no
    item is evaluated in those months (coverage's numerator, its ``evaluated`` flag, is 0 there;
    ``since`` stays)."""
    if until is None or comps.height == 0:
        return comps
    stock = comps.filter(pl.col("indicator").is_in(STOCK_IDS))
    if stock.height == 0:
        return comps
    lasts = stock.group_by("district").agg(pl.col("month").max().alias("_last"))
    carried = []
    for district, last in lasts.iter_rows():
        later = month_range(last, until)[1:]
        if not later:
            continue
        rows = stock.filter(pl.col("district") == district, pl.col("month") == last).with_columns(
            pl.when(pl.col("indicator").is_in(COVERAGE_IDS)).then(0.0).otherwise(pl.col("numerator")).alias("numerator"))
        months = pl.DataFrame({"month": later}, schema={"month": pl.String})
        carried.append(rows.drop("month").join(months, how="cross").select(comps.columns))
    return pl.concat([comps, *carried]) if carried else comps
