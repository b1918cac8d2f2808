"""Entry points the pages and the CLI call: load from the store, compute, keyed by data version.

Components are persisted in the store (``component_cache``) under a key made of the data content
version and the counting rules, so a fresh dashboard process or a CLI call reads ~100k small rows
instead of recomputing from millions of records; any import, rollback or rule change makes a new key.
"""

from __future__ import annotations

import json

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets import store
from metrics.compute import COMPONENT_SCHEMA, components
from metrics.prepare import load_dataset
from metrics.scoring import ScoringSettings


def cache_key(engine: Engine, settings: ScoringSettings) -> str:
    rules = json.dumps(settings.rules.model_dump(), sort_keys=True)
    return f"{store.content_version(engine)}|{rules}"


def compute_components(engine: Engine, settings: ScoringSettings, use_cache: bool = True) -> pl.DataFrame:
    """The additive base table (district × department × month × indicator) for the store's data."""
    if not use_cache:
        return components(load_dataset(engine), settings.to_rules())
    key = cache_key(engine, settings)
    t = store.component_cache
    cached = store.read_query(
        engine,
        sa.select(t.c.district, t.c.department, t.c.month, t.c.indicator, t.c.numerator, t.c.denominator).where(
            t.c.cache_key == key
        ),
    )
    if cached.height:
        return cached.cast(COMPONENT_SCHEMA).sort(["district", "department", "month", "indicator"])  # type: ignore[arg-type]
    comps = components(load_dataset(engine), settings.to_rules())
    _save(engine, key, comps)
    return comps


def _save(engine: Engine, key: str, comps: pl.DataFrame) -> None:
    t = store.component_cache
    with engine.begin() as conn:
        conn.execute(t.delete())  # one cached version is enough: older keys can never be asked again
        if comps.height:
            conn.execute(t.insert(), comps.with_columns(pl.lit(key).alias("cache_key")).to_dicts())
