"""Batch files (datasets/derived/batch_files.py) and the cache location (datasets/derived/cache_store.py): snapshots are
built from the per-batch Parquet copies without reading the SQL tables, a lost or wrong file is
recreated from SQL, an S3-compatible bucket works like a directory and is shared by two "servers",
and the build lock makes concurrent misses of one file build it once."""

from __future__ import annotations

import datetime as dt
import threading
import time

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets.derived import batch_files, cache_store, snapshots
from datasets.domain.schema import KINDS
from datasets.intake.ingest import import_frame
from datasets.storage import store
from metrics.compute import components
from metrics.prepare import load_dataset
from metrics.scoring import default_settings
from metrics.service import compute_components
from tests.conftest import SMALL_DEMO
from tests.factories import at, cache_at, frame, refuse_sql_record_reads, write_first_exports

END = SMALL_DEMO["end_month"]
KEY = ["district", "department", "month", "since", "indicator"]


def _whole_store(engine) -> pl.DataFrame:
    return components(load_dataset(engine), default_settings().to_rules()).sort(KEY, nulls_last=True)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(KEY, nulls_last=True)


@pytest.fixture
def demo_engine(small_demo):
    """A copy of the session's small demo store and of the batch files its imports wrote (tmp_path/cache)."""
    return small_demo


def test_import_writes_one_file_per_batch_and_snapshots_need_no_sql(demo_engine, monkeypatch):
    cache = snapshots.cache_of(demo_engine)
    active = store.active_batches(demo_engine)
    names = {batch_files.file_name(r["kind"], r["id"], r["sha256"], r["rows"], r["district"])
             for r in active.iter_rows(named=True)}
    on_disk = set(cache.mtimes(batch_files.FOLDER))
    assert names <= on_disk  # every active batch
    want = _whole_store(demo_engine)  # reads SQL: before the reads are refused
    for kind, id_field in (("cases", "case_id"), ("evaluations", "eval_id")):
        district = active.filter(pl.col("kind") == kind)["district"][0]
        # Row order is not part of the result (PostgreSQL returns rows in no fixed order).
        stored = store.load_records(demo_engine, kind, [district]).sort(id_field)
        for one_pass_rows in (batch_files.ONE_PASS_ROWS, 0):  # one pass (a small district), two passes
            got = batch_files.current_records(demo_engine, cache, kind, district, one_pass_rows=one_pass_rows)
            assert got.sort(id_field).equals(stored), one_pass_rows
    refuse_sql_record_reads(monkeypatch)
    got = compute_components(demo_engine, default_settings())
    assert_same(_sorted(got), want)


def assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.height == want.height > 0
    joined = got.join(want, on=KEY, how="full", suffix="_w", nulls_equal=True)
    assert joined.filter(pl.col("indicator").is_null() | pl.col("indicator_w").is_null()).height == 0
    assert (joined["numerator"] - joined["numerator_w"]).abs().max() < 1e-9
    assert (joined["denominator"] - joined["denominator_w"]).abs().max() < 1e-9


def test_lost_or_wrong_batch_files_are_recreated_from_sql(demo_engine):
    cache = snapshots.cache_of(demo_engine)
    want = _whole_store(demo_engine)
    batch = store.active_batches(demo_engine, "cases").row(0, named=True)
    name = batch_files.file_name("cases", batch["id"], batch["sha256"], batch["rows"], batch["district"])
    cache.write(name, cache.read(name).head(1))  # a file that does not match its batch's row count
    first_hotline = sorted(cache.mtimes(f"{batch_files.FOLDER}/hotline"))[0]
    cache.delete(first_hotline)
    snapshots.clear(demo_engine, keep_batches=True)
    assert_same(_sorted(compute_components(demo_engine, default_settings())), want)
    assert cache.read(name).height == batch["rows"]
    assert cache.exists(first_hotline)
    # Everything lost (a new cache directory): all of it comes back from SQL, the same table.
    snapshots.clear(demo_engine)
    assert cache.mtimes() == {}
    assert_same(_sorted(compute_components(demo_engine, default_settings())), want)


def test_batch_files_recreated_in_small_groups_are_the_same_files(demo_engine):
    """recreate reads groups of batches of a bounded size (memory), across districts: every file comes
    back with exactly its batch's rows, whatever the grouping."""
    cache = snapshots.cache_of(demo_engine)
    active = store.active_batches(demo_engine, "cases")
    batches = batch_files._wanted(active, "cases")
    names = [batch_files.file_name("cases", *b) for b in batches]
    before = {n: cache.read(n).sort(pl.all(), nulls_last=True) for n in names}
    largest = max(b[2] for b in batches)
    groups = batch_files._groups(batches, largest // 2)
    assert sum(len(g) for g in groups) == len(batches) and len(groups) > len({b[3] for b in batches})
    assert all(len(g) == 1 or sum(b[2] for b in g) <= largest // 2 for g in groups)
    for name in names:
        cache.delete(name)
    batch_files.recreate(demo_engine, cache, "cases", batches, group_rows=largest // 2)
    for name in names:
        assert cache.read(name).sort(pl.all(), nulls_last=True).equals(before[name]), name


def test_an_import_is_visible_through_its_batch_file(demo_engine, monkeypatch):
    settings = default_settings()
    compute_components(demo_engine, settings)
    district = store.list_districts(demo_engine)["name"][0]
    new = frame("cases", [
        {"case_id": "NEW-1", "district": district, "accepted_at": dt.datetime(2024, 12, 2, 10, 15, 30, 500_000),
         "completed_at": at(2024, 12, 20), "legal_limit": 5.0, "promised_limit": 3.0},
    ]).drop("batch_id", "period")
    result = import_frame(demo_engine, "cases", new, file_name="补报.xlsx", sha256="f" * 64, period=END)
    want = _whole_store(demo_engine)
    stored = store.load_records(demo_engine, "cases", [district])
    refuse_sql_record_reads(monkeypatch)  # the new batch's file was written by the import
    assert_same(_sorted(compute_components(demo_engine, settings)), want)
    rows = batch_files.current_records(demo_engine, snapshots.cache_of(demo_engine), "cases", district)
    assert rows.sort("case_id").equals(stored.sort("case_id"))  # fractions of a second as the store keeps them (none on SQLite)
    assert rows.filter(pl.col("case_id") == "NEW-1")["batch_id"].to_list() == [result.results[0].batch_id]


def test_files_of_replaced_batches_are_removed_and_come_back_on_rollback(demo_engine):
    settings = default_settings()
    compute_components(demo_engine, settings)
    cache = snapshots.cache_of(demo_engine)
    old = store.active_batches(demo_engine, "cases").row(0, named=True)
    old_name = batch_files.file_name("cases", old["id"], old["sha256"], old["rows"], old["district"])
    assert cache.exists(old_name)
    corrected = store.load_records(demo_engine, "cases", [old["district"]]).filter(pl.col("batch_id") == old["id"])
    corrected = corrected.head(corrected.height - 1).drop("batch_id", "period")
    import_frame(demo_engine, "cases", corrected, file_name="更正.xlsx", sha256="c" * 64, period=old["period"])
    compute_components(demo_engine, settings)
    assert not cache.exists(old_name)  # replaced: its file went with the rebuild
    active = store.active_batches(demo_engine)
    assert set(cache.mtimes(batch_files.FOLDER)) == {
        batch_files.file_name(r["kind"], r["id"], r["sha256"], r["rows"], r["district"]) for r in active.iter_rows(named=True)}
    store.rollback_to(demo_engine, old["id"], "test")
    want = _whole_store(demo_engine)
    assert_same(_sorted(compute_components(demo_engine, settings)), want)
    assert cache.exists(old_name)  # recreated from SQL when the rolled-back batch was read


def test_concurrent_misses_build_a_file_once(any_engine, tmp_path):
    cache_at(any_engine, str(tmp_path / "cache"))
    calls: list[int] = []

    def build() -> pl.DataFrame:
        calls.append(1)
        time.sleep(0.3)  # long enough for the other threads to miss the file too
        return pl.DataFrame({"x": [1, 2, 3]})

    results: list[pl.DataFrame] = []
    threads = [threading.Thread(target=lambda: results.append(
        snapshots.cached(any_engine, "components", "云湖区", "k1", build))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 4 and all(r["x"].to_list() == [1, 2, 3] for r in results)


# --- an S3-compatible bucket (moto's server) -----------------------------------------------------------


def test_a_bucket_is_shared_by_two_servers(pg_engine, bucket):
    cache = cache_at(pg_engine, bucket)
    assert isinstance(cache, cache_store.ObjectCache)
    write_first_exports(pg_engine)
    assert cache.mtimes(batch_files.FOLDER)  # the imports wrote their batch files to the bucket
    settings = default_settings()
    first = compute_components(pg_engine, settings)
    assert_same(_sorted(first), _whole_store(pg_engine))
    built = cache.mtimes()
    assert any(n.startswith("components/") for n in built)

    # A second server: its own engine on the same database, the same bucket; it builds nothing.
    other = store.make_engine(pg_engine.url.render_as_string(hide_password=False))
    try:
        cache_at(other, bucket)
        assert compute_components(other, settings).equals(first)
        assert cache.mtimes() == built
    finally:
        other.dispose()


def test_bucket_operations(bucket):
    cache = cache_store.open_cache(bucket)
    assert cache.read("x/a.parquet") is None and not cache.exists("x/a.parquet")
    cache.write("x/a.parquet", pl.DataFrame({"v": [1, 2]}))
    cache.write("x/b.parquet", pl.DataFrame({"v": [3]}))
    cache.write("y/c.parquet", pl.DataFrame({"v": [4]}))
    assert cache.read("x/a.parquet", ["v"])["v"].to_list() == [1, 2]
    assert cache.read("x/b.parquet")["v"].to_list() == [3]
    assert cache.names("x", "a") == ["a.parquet"] and cache.names("x") == ["a.parquet", "b.parquet"]
    cache.clear(keep="y")
    assert sorted(cache.mtimes()) == ["y/c.parquet"]
    cache.delete("y/c.parquet")
    assert cache.mtimes() == {}


@pytest.mark.parametrize(("setting", "kind"), [
    ("s3://dash-cache/prod", cache_store.ObjectCache),
    ("/srv/cache", cache_store.LocalCache),
    ("file:///srv/cache", cache_store.LocalCache),
])
def test_cache_url_setting_picks_the_location(tmp_path, monkeypatch, setting, kind):
    monkeypatch.setenv("CACHE_URL", setting)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        cache = snapshots.cache_of(engine)
        assert isinstance(cache, kind)
        assert cache.describe() in (setting, "/srv/cache")
    finally:
        engine.dispose()
    monkeypatch.delenv("CACHE_URL")
    default = store.make_engine(f"sqlite:///{tmp_path / 'y.db'}")
    assert snapshots.cache_of(default).describe() == str(tmp_path / "y.db.snapshots")
    assert snapshots.cache_of(store.make_engine("sqlite://")) is None


# --- newest-wins, two passes (store.newest_wins) ----------------------

_BATCH = st.tuples(
    st.sampled_from([None, "2025-01", "2025-02", "2025-03"]),  # the export month (equal ones included)
    # rows: (district, id); few distinct values, so duplicates within one batch and across batches abound
    st.lists(st.tuples(st.sampled_from(["甲区", "乙区"]), st.sampled_from(["a", "b", "c", "d", None])),
             max_size=8),
)


def _batch_frame(kind: str, batch_id: int, rows: list[tuple[str, str | None]]) -> pl.DataFrame:
    """A typed batch file: the kind's columns, ``item_name`` (or ``department``) marking each row."""
    k = KINDS[kind]
    marker = "item_name" if "item_name" in k.polars_schema else "department"
    data: dict[str, list] = {f.name: [None] * len(rows) for f in k.fields}
    data["district"] = [d for d, _ in rows]
    data[k.id_field] = [i for _, i in rows]
    data[marker] = [f"{batch_id}-{n}" for n in range(len(rows))]
    return pl.DataFrame(data, schema=k.polars_schema).select(pl.lit(batch_id, pl.Int64).alias("batch_id"), pl.all())


def _the_rule(kind: str, rows: pl.DataFrame, active: pl.DataFrame) -> pl.DataFrame:
    """Newest-wins stated plainly, on every row at once: sorted by export month (missing first) and
    batch id, stably, the last row of each district × id (× period for catalogs) kept."""
    k = KINDS[kind]
    periods = active.select(pl.col("id").alias("batch_id"), "period", "as_of")
    frame = rows.join(periods, on="batch_id", how="left", maintain_order="left")
    key = ["district", k.id_field] + (["period"] if kind == "items" else [])
    frame = frame.sort(["period", "batch_id"], maintain_order=True).unique(subset=key, keep="last", maintain_order=True)
    return frame.select(list(store.record_schema(kind)))


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(["cases", "items", "evaluations"]),
       batches=st.lists(_BATCH, max_size=6), order=st.randoms(use_true_random=False), hold=st.booleans())
def test_newest_wins_equals_the_rule_on_every_batch_at_once(kind, batches, order, hold):
    """Same rows, order and types as the rule (_the_rule) on all the batches concatenated: duplicates
    within a batch, equal and missing periods, re-exports of older months (batch ids not in period
    order), catalogs keyed by period too, empty batches; files read twice or (``hold``) once."""
    ids = list(range(1, len(batches) + 1))
    order.shuffle(ids)  # a later import may carry an older month
    files = {i: _batch_frame(kind, i, rows) for i, (_, rows) in zip(ids, batches, strict=True)}
    # Each batch its own as-of date, so a row carrying another batch's would show.
    active = pl.DataFrame({"id": ids, "period": [p for p, _ in batches],
                           "as_of": [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in ids]},
                          schema={"id": pl.Int64, "period": pl.String, "as_of": pl.Date})
    reads: list[tuple[int, list[str] | None]] = []

    def read(batch_id: int, columns: list[str] | None) -> pl.DataFrame:
        reads.append((batch_id, columns))
        return files[batch_id].select(columns) if columns is not None else files[batch_id]

    got = store.newest_wins(kind, active, read, hold=hold)
    want = _the_rule(kind, pl.concat(list(files.values())), active) if files else store.empty_records(kind)
    assert got.schema == want.schema
    assert got.to_dicts() == want.to_dicts()
    if hold:  # every batch read once, whole
        assert sorted(reads) == sorted((i, None) for i in ids)
        return
    # The first pass reads only the key columns of every batch; the second only batches with a winner.
    key_reads = [b for b, cols in reads if cols is not None]
    assert sorted(key_reads) == sorted(ids)
    winners = set(want["batch_id"].to_list())
    assert {b for b, cols in reads if cols is None} == winners


_PERIODS = ["2025-01", "2025-02", "2025-03"]
_ROWS = st.lists(st.sampled_from(["a", "b", "c", "d", None]), max_size=8)


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(["cases", "items"]),
       old=st.lists(st.tuples(st.sampled_from(_PERIODS), _ROWS), max_size=5),
       new=st.tuples(st.sampled_from(_PERIODS), _ROWS), new_id=st.integers(0, 6))
def test_a_snapshot_extended_by_a_newer_batch_equals_the_full_rebuild(tmp_path_factory, kind, old, new, new_id):
    """snapshots.extend: the previous snapshot without the new batch's keys, then the new batch's rows,
    is the full newest-wins rule whenever the new batch sorts after every previous one; otherwise
    (an older month re-exported, an id below an older batch's of the same month) it declines."""
    cache = cache_store.LocalCache(tmp_path_factory.mktemp("cache"))
    district = "甲区"

    def batch(batch_id: int, period: str, ids: list[str | None]) -> dict:
        rows = [(district, i) for i in ids]
        sha = f"{batch_id:064x}"
        cache.write(batch_files.file_name(kind, batch_id, sha, len(rows), district), _batch_frame(kind, batch_id, rows))
        return {"id": batch_id, "created_at": dt.datetime(2025, 1, 1) + dt.timedelta(days=batch_id), "sha256": sha,
                "rows": len(rows), "period": period, "as_of": dt.date(2025, 2, 1) + dt.timedelta(days=batch_id),
                "district": district, "kind": kind}

    before = pl.DataFrame([batch(i + 1, p, ids) for i, (p, ids) in enumerate(old)],
                          schema={"id": pl.Int64, "created_at": pl.Datetime("us"), "sha256": pl.String,
                                  "rows": pl.Int64, "period": pl.String, "as_of": pl.Date, "district": pl.String,
                                  "kind": pl.String})
    # The new batch's id: after every old one (an import), or among them (not a newer batch).
    added_id = len(old) + 1 if new_id >= len(old) else new_id + 100
    after = pl.concat([before, pl.DataFrame([batch(added_id, new[0], new[1])], schema=before.schema)])
    first = snapshots.build_records(None, cache, kind, district, "k1", before)  # type: ignore[arg-type]
    cache.write(snapshots._name(kind, district, "k1"), first)

    got = snapshots.extend(None, cache, kind, district, after)  # type: ignore[arg-type]
    full = batch_files.current_records(None, cache, kind, district, after)  # type: ignore[arg-type]
    newest = all((p, i + 1) < (new[0], added_id) for i, (p, _) in enumerate(old))
    if newest:
        assert got is not None
        assert got.schema == full.schema
        assert got.to_dicts() == full.to_dicts()
    else:
        assert got is None
    # Through build_records (which also records what the new snapshot was built from).
    assert snapshots.build_records(None, cache, kind, district, "k2", after).to_dicts() == full.to_dicts()  # type: ignore[arg-type]
    assert cache.names(f"built_from_{kind}") == [snapshots._name(f"built_from_{kind}", district, "k2").rsplit("/")[-1]]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["甲区", "乙区"]), st.sampled_from(["a", "b", "c", "ab", None]),
                               st.sampled_from(["2025-01", "2025-02", None])), max_size=30))
def test_last_of_each_is_the_last_distinct_key(rows):
    """The hash shortcut gives exactly is_last_distinct on the whole key: the same id in two districts
    (or, for catalogs, two periods) is two keys, a repeated key only its last row wins, nulls included."""
    frame = pl.DataFrame(rows, schema={"district": pl.String, "case_id": pl.String, "period": pl.String},
                         orient="row")
    for key in (["district", "case_id"], ["district", "case_id", "period"]):
        want = frame.select(pl.struct(key).is_last_distinct()).to_series()
        assert store.last_of_each(frame, key, "case_id").to_list() == want.to_list(), key
