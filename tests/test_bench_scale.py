"""bench_scale's import → visible step leaves the store as it found it (a store that grew by 200 k rows
at every run made each later run slower than the one before)."""

from __future__ import annotations

import polars as pl

from benchmarks import bench_scale
from datasets.derived import batch_files, snapshots
from datasets.domain.schema import KINDS
from datasets.intake.ingest import import_frame
from datasets.storage import store


def _cache_names(engine) -> set[str]:
    return set(snapshots.cache_of(engine).names(f"{batch_files.FOLDER}/cases"))


def test_the_benchmark_import_is_deleted_after_its_rollback(small_sqlite) -> None:
    engine = small_sqlite
    before, files_before = store.record_counts(engine), _cache_names(engine)
    active = store.active_batches(engine, "cases").sort("rows", descending=True).row(0, named=True)
    rows = store.load_records(engine, "cases").filter(pl.col("district") == active["district"]).head(50)
    frame = rows.with_columns(pl.col("case_id") + "-B").select(KINDS["cases"].names)

    result = import_frame(engine, "cases", frame, file_name=bench_scale.BENCH_FILE, sha256="b" * 64,
                          period=active["period"])
    new = [r.batch_id for r in result.results]
    assert store.record_counts(engine)["cases"] == before["cases"] + 50
    assert len(_cache_names(engine) - files_before) == 1  # its batch file
    assert bench_scale._leftovers(engine) == []  # still active: not the benchmark's to delete
    bench_scale._forget(engine, new)
    assert store.record_counts(engine)["cases"] == before["cases"] + 50

    store.rollback_to(engine, active["id"], "bench")
    assert bench_scale._leftovers(engine) == new
    bench_scale._forget(engine, bench_scale._leftovers(engine))
    assert store.record_counts(engine) == before
    assert _cache_names(engine) == files_before
    assert bench_scale._leftovers(engine) == []


def test_the_new_month_import_is_deleted_after_its_withdrawal(small_sqlite) -> None:
    """import_new_month: a month after the store's last one, withdrawn, then deleted like the other."""
    assert [bench_scale._next_month(m) for m in ("2024-11", "2024-12")] == ["2024-12", "2025-01"]
    engine = small_sqlite
    before, files_before = store.record_counts(engine), _cache_names(engine)
    last = max(p for p in store.active_batches(engine)["period"].to_list() if p)
    district = store.list_districts(engine)["name"][0]
    rows = store.load_records(engine, "cases").filter(pl.col("district") == district).head(20)
    frame = rows.with_columns(pl.col("case_id") + "-M", pl.col("accepted_at").dt.offset_by("1mo")).select(
        KINDS["cases"].names)
    result = import_frame(engine, "cases", frame, file_name=bench_scale.BENCH_FILE, sha256="m" * 64,
                          period=bench_scale._next_month(last))
    for r in result.results:
        store.withdraw_batch(engine, r.batch_id, "bench")
    assert bench_scale._leftovers(engine) == [r.batch_id for r in result.results]
    bench_scale._forget(engine, bench_scale._leftovers(engine))
    assert store.record_counts(engine) == before
    assert _cache_names(engine) == files_before
