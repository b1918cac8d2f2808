"""Reading the row-level detail from the store: the alert rows of each district (cached with its
snapshot), one district's detail and source frames for drill-down, and the whole store for tests.

The lists themselves are pure functions of these frames (metrics/alerts.py, metrics/drill.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import polars as pl
from sqlalchemy.engine import Engine

from datasets import snapshots
from datasets.calendar import load_calendar
from datasets.schema import KINDS
from datasets.vocabulary import Rules
from metrics.alerts import NO_NAMES, Detail, alert_detail, alert_rows, build_detail, item_names
from metrics.drill import item_parts
from metrics.prepare import NOT_COUNTED, Dataset, counted_columns, district_dataset, load_dataset, prepare_sources_lazy

# Part of the cached alert rows' key: bump it when what an alert list counts changes
# (metrics/alerts.py ALERT_LISTS).
ALERTS_VERSION = "3"  # 3: open cases and 差评 judged at their as-of date
# Part of the cached item parts' key: bump it when their shape or counting changes (metrics/drill.py).
ITEM_PARTS_VERSION = "2"  # 2: the ``aside`` column; stocks after the last month


def district_alerts(
    engine: Engine, district: str, rules: Rules, keys: dict[tuple[str, str], str],
    build: Callable[[], Detail] | None = None,
) -> Detail:
    """alert_rows() of one district, cached with its snapshot (``build``: gives them when they are not
    cached, e.g. from flags already worked out; by default from the district's records)."""
    key = snapshots.digest(snapshots.district_key(keys, district), rules.key(), ALERTS_VERSION)

    @functools.cache  # both files come from one build when neither is cached
    def rows() -> Detail:
        return build() if build is not None else alert_detail(district_dataset(engine, district, keys), rules)

    cases = snapshots.cached(engine, "alert_cases", district, key, lambda: rows().cases)
    evaluations = snapshots.cached(engine, "alert_evaluations", district, key, lambda: rows().evaluations)
    return Detail(cases, evaluations, pl.DataFrame(schema=NO_NAMES))


def load_alert_detail(engine: Engine, rules: Rules) -> Detail:
    """alert_rows() of every district (see district_alerts)."""
    keys = snapshots.active_keys(engine)
    parts = [district_alerts(engine, d, rules, keys) for d in snapshots.districts_with_data(keys)]
    if not parts:
        return alert_rows(build_detail(Dataset.empty(), rules))
    return Detail(
        pl.concat([p.cases for p in parts], how="vertical_relaxed"),
        pl.concat([p.evaluations for p in parts], how="vertical_relaxed"),
        pl.DataFrame(schema=NO_NAMES),
    )


def district_item_names(
    engine: Engine, district: str, keys: dict[tuple[str, str], str], build: Callable[[], Dataset]
) -> pl.DataFrame:
    """The item names of one district (alerts.item_names), cached with its snapshot; ``build`` gives its
    records (with item_name) when they are not cached."""
    return snapshots.cached(engine, "item_names", district, snapshots.digest(snapshots.district_key(keys, district)),
                            lambda: item_names(build()))


def district_item_parts(
    engine: Engine, district: str, rules: Rules, keys: dict[tuple[str, str], str], until: str | None,
    build: Callable[[], pl.DataFrame],
) -> pl.DataFrame:
    """drill.item_parts of one district, cached with its snapshot (``until``: the store's last month,
    as for its components); ``build`` computes them when they are not cached."""
    key = snapshots.digest(snapshots.district_key(keys, district), rules.key(), until, ITEM_PARTS_VERSION)
    return snapshots.cached(engine, "item_parts", district, key, build)


def load_district(
    engine: Engine, district: str, rules: Rules, months: Sequence[str]
) -> tuple[Detail, pl.DataFrame]:
    """Detail and item parts (drill.item_parts) of one district, cached with its snapshot.

    The detail holds the alert rows only (district_alerts, cached): the drill-down's case lists are
    alert lists narrowed to a department or item. ``months``: the months of the whole store (catalogs
    are in force up to the last one, as in the component table). All three are cached when the
    district's components are computed (metrics.service.district_components); they are built here
    only when missing.
    """
    keys = snapshots.active_keys(engine)
    alerts = district_alerts(engine, district, rules, keys)
    names, parts = district_drill(engine, district, rules, keys, max(months) if months else None)
    return Detail(alerts.cases, alerts.evaluations, names), parts


def district_drill(
    engine: Engine, district: str, rules: Rules, keys: dict[tuple[str, str], str], until: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The item names and item parts of one district, read from the cache or built (and cached)."""

    @functools.cache
    def data() -> Dataset:
        # Only the columns the sources and the item names read (not every id and name of the district).
        return district_dataset(engine, district, keys, {
            kind: [*counted_columns(kind), *(["item_name"] if "item_name" in NOT_COUNTED[kind] else [])]
            for kind in KINDS
        })

    names = district_item_names(engine, district, keys, data)
    # Summed per item as the components are (lazily, no row-level frame kept): the row-level sources
    # of a large district were gigabytes and seconds to build on every first view of 区县对比.
    parts = district_item_parts(engine, district, rules, keys, until,
                                lambda: item_parts(prepare_sources_lazy(data(), rules, load_calendar(), until)))
    return names, parts


def load_detail(engine: Engine, rules: Rules) -> Detail:
    """Every case and evaluation with its flags (the whole store in memory: for tests and small stores)."""
    return build_detail(load_dataset(engine), rules)
