"""Entry points the pages and the CLI call: read the store district by district, compute, cache.

Indicator components are additive per district (every counting rule looks at one district's own
cases, catalog and evaluations), so they are computed one district at a time from that district's
snapshot (datasets/snapshots.py) and cached per district. Memory is bounded by the largest district,
not the city, and after an import only the districts it touched are read and counted again.

The one thing that crosses districts is how long catalogs stay in force: up to the last month with
any data in the whole store (``until``). It is known from each district's cached last month before
any component is computed, and is part of every district's cache key.
"""

from __future__ import annotations

import contextlib

import polars as pl
from sqlalchemy.engine import Engine

from datasets import snapshots, store
from datasets.schema import KINDS
from datasets.side_by_side import Gate, each_district
from datasets.vocabulary import Rules
from metrics import detail_store
from metrics.compute import COMPONENT_SCHEMA, components
from metrics.drill import components_and_item_parts
from metrics.prepare import KEYS, Dataset, counted_columns, district_dataset, load_dataset
from metrics.scoring import ScoringSettings, load_settings

Keys = dict[tuple[str, str], str]
# Part of every cached district's key: bump it when the components' shape or counting changes.
COMPONENTS_VERSION = "2"


def store_until(engine: Engine, keys: Keys | None = None) -> str | None:
    """The last month with any data in the whole store (catalogs are in force up to it)."""
    keys = snapshots.active_keys(engine) if keys is None else keys
    months = [m for (district, kind) in keys if (m := snapshots.last_month(engine, kind, district, keys))]
    return max(months) if months else None


def district_components(
    engine: Engine, district: str, rules: Rules, until: str | None, keys: Keys, detail: bool = True,
    gate: Gate | None = None,
) -> pl.DataFrame:
    """One district's component rows, from its cache or computed from its snapshot.

    ``detail``: when they are computed, also cache what the pages read beside them from the same records
    (detail_store: the alert rows, the item names and the item parts of 区县对比's drill-down), so the
    overview's lists and the drill-down are ready when the indicators are. The item parts are collected
    with the components from one preparation of the sources (at scale 30 the largest district's parts
    cost ≈ 3 s on their own, the first view of 区县对比 after an import waited ≈ 7 s for them).
    ``gate``: entered around the computation only (not around reading a cached table).
    """
    key = snapshots.digest(snapshots.district_key(keys, district), rules.key(), until, COMPONENTS_VERSION)

    def build() -> pl.DataFrame:
        with gate() if gate is not None else contextlib.nullcontext():
            return compute()

    def compute() -> pl.DataFrame:
        if not detail:
            data = district_dataset(engine, district, keys, {kind: counted_columns(kind) for kind in KINDS})
            return components(data, rules, until=until).cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]
        # The alert lists and item names need every column; the counting only the counted ones.
        data = district_dataset(engine, district, keys)
        detail_store.district_alerts(engine, district, rules, keys, data)
        detail_store.district_item_names(engine, district, keys, lambda: data)
        # The other columns are let go before counting (a large district's names and ids are GBs).
        data = Dataset(*(getattr(data, kind).select(counted_columns(kind)) for kind in KINDS))
        comps, parts = components_and_item_parts(data, rules, until)
        detail_store.district_item_parts(engine, district, rules, keys, until, lambda: parts)
        return comps.cast(COMPONENT_SCHEMA)  # type: ignore[arg-type]

    return snapshots.cached(engine, "components", district, key, build)


def compute_components(
    engine: Engine, settings: ScoringSettings, use_cache: bool = True, detail: bool = True
) -> pl.DataFrame:
    """The additive base table (district × department × month × indicator) for the store's data.

    ``use_cache=False`` counts the whole store at once from store.load_records (for cross-checks);
    ``detail``: see district_components (False: the indicators only, e.g. bench_metrics' indicator table).
    """
    rules = settings.to_rules()
    if not use_cache:
        return components(load_dataset(engine), rules)
    keys = snapshots.active_keys(engine)
    snapshots.ensure(engine, keys)
    districts = snapshots.districts_with_data(keys)
    until = store_until(engine, keys)
    # Two districts at a time within the row budget (datasets/side_by_side.py). In name order: largest
    # first was slower at scale 10 (bench_metrics (a), best of 3: 7.43 s against 7.23 s, peak 2.3 GB
    # against 1.8 GB), the two largest then running together.
    parts = each_district(districts, snapshots.district_rows(engine), lambda district, gate: district_components(
        engine, district, rules, until, keys, detail, gate=gate))
    if not parts:
        return pl.DataFrame(schema=COMPONENT_SCHEMA)
    return pl.concat(parts).sort([*KEYS, "indicator", "since"], nulls_last=True)


def open_store(url: str) -> tuple[Engine, ScoringSettings, pl.DataFrame]:
    """The CLI's start: the store at ``url`` (tables created if missing), its settings and components.

    Raises datasets.calendar.CalendarError when a year the data covers has no holiday schedule.
    """
    engine = store.make_engine(url)
    store.init_db(engine)
    settings = load_settings(engine)
    return engine, settings, compute_components(engine, settings)
