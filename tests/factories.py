"""Small builders for canonical rows, so tests state only the fields that matter."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import polars as pl
import pytest
from sqlalchemy.engine import Engine

from datasets.derived import snapshots
from datasets.derived.cache_store import Cache
from datasets.domain.schema import KINDS
from datasets.domain.workdays import load_calendar
from datasets.sample.demo import _City, write_bulk
from datasets.storage import store
from metrics.prepare import Dataset

DEFAULTS: dict[str, dict[str, Any]] = {
    "cases": {
        "district": "甲区",
        "department": "区市场监管局",
        "item_code": "I1",
        "channel": "窗口",
        "status": "已办结",
        "period": "2024-10",
        "batch_id": 1,
    },
    "items": {
        "district": "甲区",
        "department": "区市场监管局",
        "item_name": "事项",
        "online_depth": 1,
        "period": "2024-01",
        "batch_id": 1,
    },
    "evaluations": {
        "district": "甲区",
        "department": "区市场监管局",
        "item_code": "I1",
        "active": True,
        "period": "2024-10",
        "batch_id": 1,
    },
    "hotline": {"district": "甲区", "department": "区住建局", "period": "2024-10", "batch_id": 1},
}


def frame(kind: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of a kind with the full canonical schema plus batch_id, period and as_of (None: the last
    day of the period, as for an export imported after its month)."""
    k = KINDS[kind]
    schema = {"batch_id": pl.Int64, **k.polars_schema, "period": pl.String, "as_of": pl.Date}
    filled = []
    for n, row in enumerate(rows):
        full = {name: None for name in schema}
        full.update(DEFAULTS[kind])
        full[k.id_field] = f"{kind[:2].upper()}{n + 1}"
        full.update(row)
        filled.append(full)
    return pl.DataFrame(filled, schema=schema, orient="row") if filled else pl.DataFrame(schema=schema)


def dataset(
    cases: list[dict] | None = None,
    items: list[dict] | None = None,
    evaluations: list[dict] | None = None,
    hotline: list[dict] | None = None,
) -> Dataset:
    return Dataset(
        frame("cases", cases or []),
        frame("items", items or []),
        frame("evaluations", evaluations or []),
        frame("hotline", hotline or []),
    )


def at(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi)


def inventory(data: Dataset) -> pl.DataFrame:
    """What the store's active batches would say of ``data``: district, kind and period of each batch."""
    frames = [getattr(data, kind).select("district", pl.lit(kind).alias("kind"), "period") for kind in KINDS]
    return pl.concat(frames).unique().sort("district", "kind", "period")


def write_first_exports(engine: Engine, exports: int = 12, seed: int = 5, scale: float = 0.002,
                        end_month: str = "2024-12", districts: int = 3) -> int:
    """The first ``districts`` of the demo city and its first ``exports`` export files (every kind, its
    first months), written as generate_demo writes them: a store with data in every district and few
    batches (each batch costs a file, and a request where the cache is a bucket). Returns the batches
    made."""
    city = _City(load_calendar(), seed, scale, end_month, dt.datetime(2026, 1, 1), districts=districts)
    for p in city.profiles:
        store.add_district(engine, p.name, p.code, p.aliases)
    return write_bulk(engine, itertools.islice(city.exports(), exports))


def refuse_sql_record_reads(monkeypatch) -> None:
    """Make any read of the SQL record tables fail the test (what must come from the batch files)."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the SQL record tables were read")

    monkeypatch.setattr(store, "arrow_read", refuse)
    monkeypatch.setattr(store, "sqlite_read_many", refuse)


def cache_at(engine: Engine, location: str) -> Cache:
    """Give a new engine its cache at ``location`` (a directory or s3://…) the way a deployment does, by
    the ``CACHE_URL`` setting, read at the engine's first use (snapshots.cache_of)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CACHE_URL", location)
        cache = snapshots.cache_of(engine)
    # An engine already used keeps the cache it had: this must be its first use.
    assert cache is not None and cache.describe() == location.rstrip("/"), f"{engine.url} already has its cache elsewhere"
    return cache
