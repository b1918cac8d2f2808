"""Entry points the pages and the CLI call: load from the store, compute, keyed by data version."""

from __future__ import annotations

import polars as pl
from sqlalchemy.engine import Engine

from metrics.compute import components
from metrics.prepare import load_dataset
from metrics.scoring import ScoringSettings


def compute_components(engine: Engine, settings: ScoringSettings) -> pl.DataFrame:
    """The additive base table (district × department × month × indicator) from the store."""
    return components(load_dataset(engine), settings.to_rules())
