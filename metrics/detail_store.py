"""Reading the row-level detail: the alert rows of every district and one district's drill-down
(both cached by metrics/derived.py).

The lists themselves are pure functions of these frames (metrics/alerts.py, metrics/drill.py).
"""

from __future__ import annotations

import polars as pl
from sqlalchemy.engine import Engine

from datasets.derived import snapshots
from datasets.domain.vocabulary import Rules
from metrics import derived
from metrics.alerts import NO_NAMES, Detail, alert_rows, build_detail
from metrics.prepare import Dataset


def load_alert_detail(engine: Engine, rules: Rules) -> Detail:
    """alert_rows() of every district (derived.district_alerts)."""
    keys = snapshots.active_keys(engine)
    parts = [derived.district_alerts(engine, d, rules, keys) for d in snapshots.districts_with_data(keys)]
    if not parts:
        return alert_rows(build_detail(Dataset.empty(), rules))
    return Detail(
        pl.concat([p.cases for p in parts], how="vertical_relaxed"),
        pl.concat([p.evaluations for p in parts], how="vertical_relaxed"),
        pl.DataFrame(schema=NO_NAMES),
    )


def load_district(engine: Engine, district: str, rules: Rules) -> tuple[Detail, pl.DataFrame]:
    """Detail and item parts (drill.item_parts) of one district.

    The detail holds the alert rows only: the drill-down's case lists are alert lists narrowed to a
    department or item. All three are cached when the district's components are counted
    (derived.district_components); they are built here only when missing.
    """
    keys = snapshots.active_keys(engine)
    alerts = derived.district_alerts(engine, district, rules, keys)
    names, parts = derived.district_drill(engine, district, rules, keys)
    return Detail(alerts.cases, alerts.evaluations, names), parts

