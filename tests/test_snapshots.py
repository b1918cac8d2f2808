"""Per-district snapshots and caches give exactly what a whole-store computation gives, and follow
imports and rollbacks district by district (datasets/derived/snapshots.py, metrics/service.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from datasets.derived import side_by_side, snapshots
from datasets.derived.side_by_side import RowBudget
from datasets.domain.periods import Period, shift_month
from datasets.domain.schema import KINDS
from datasets.intake.ingest import import_frame
from datasets.storage import store
from metrics import alerts, derived, detail_store, drill, service
from metrics.compute import aggregate, components
from metrics.prepare import NOT_COUNTED, Dataset, counted_columns, load_dataset
from metrics.registry import INDICATORS
from metrics.scoring import default_settings
from metrics.service import compute_components, store_until
from tests.conftest import SMALL_DEMO
from tests.factories import at, frame, refuse_sql_record_reads

END = SMALL_DEMO["end_month"]
KEY = ["district", "department", "month", "since", "indicator"]


@pytest.fixture
def demo_engine(small_demo):
    """A copy of the session's small demo store (conftest.SMALL_DEMO), its cache in the test's directory."""
    return small_demo


def _whole_store(engine) -> pl.DataFrame:
    return components(load_dataset(engine), default_settings().to_rules()).sort(KEY, nulls_last=True)


def _assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.height == want.height > 0
    joined = got.join(want, on=KEY, how="full", suffix="_w", nulls_equal=True)
    assert joined.filter(pl.col("indicator").is_null() | pl.col("indicator_w").is_null()).height == 0
    assert (joined["numerator"] - joined["numerator_w"]).abs().max() < 1e-9
    assert (joined["denominator"] - joined["denominator_w"]).abs().max() < 1e-9


def _files(engine, kind: str) -> dict[str, float]:
    folder = snapshots.cache_of(engine).root
    return {p.name: p.stat().st_mtime_ns for p in (folder / kind).glob("*.parquet")}


def test_district_by_district_equals_the_whole_store(demo_engine):
    settings = default_settings()
    first = compute_components(demo_engine, settings)
    _assert_same(first, _whole_store(demo_engine))
    districts = store.list_districts(demo_engine)["name"].to_list()
    assert len(_files(demo_engine, "components")) == len(districts) == SMALL_DEMO["districts"]
    # A second call reads the cached files: same table, nothing rebuilt.
    before = _files(demo_engine, "components")
    assert compute_components(demo_engine, settings).equals(first)
    assert _files(demo_engine, "components") == before
    assert store_until(demo_engine) == END


def test_an_import_rebuilds_only_its_district(demo_engine):
    settings = default_settings()
    compute_components(demo_engine, settings)
    cases_before = _files(demo_engine, "cases")
    comps_before = _files(demo_engine, "components")
    district = store.list_districts(demo_engine)["name"].to_list()[0]
    new = frame("cases", [
        {"case_id": "NEW-1", "district": district, "accepted_at": at(2024, 12, 2), "completed_at": at(2024, 12, 20),
         "legal_limit": 5.0, "promised_limit": 3.0},
        {"case_id": "NEW-2", "district": district, "accepted_at": at(2024, 12, 3), "status": "在办",
         "legal_limit": 2.0, "promised_limit": 1.0},
    ]).drop("batch_id", "period")
    import_frame(demo_engine, "cases", new, file_name="补报.xlsx", sha256="e" * 64, period=END)

    after = compute_components(demo_engine, settings)
    _assert_same(after, _whole_store(demo_engine))
    cases_after = _files(demo_engine, "cases")
    changed = {n for n in cases_after if cases_before.get(n) != cases_after[n]}
    tag = snapshots.district_tag(district)
    assert len(changed) == 1 and tag in next(iter(changed))  # the one district's cases snapshot
    assert len(cases_after) == len(cases_before)  # its old version was removed
    comps_after = _files(demo_engine, "components")
    assert {n for n in comps_after if comps_before.get(n) != comps_after[n]} == {
        n for n in comps_after if tag in n}


def test_rollback_follows_and_alert_lists_match_the_full_detail(demo_engine):
    settings = default_settings()
    rules = settings.to_rules()
    compute_components(demo_engine, settings)
    history = store.batch_history(demo_engine, "evaluations")
    target = history.filter(pl.col("state") == store.ACTIVE).sort("id").row(0, named=True)
    store.rollback_to(demo_engine, target["id"], "test")  # rolling back to itself is a no-op ...
    latest = history.sort("id", descending=True).row(0, named=True)
    prev = history.filter((pl.col("district") == latest["district"]) & (pl.col("period") == latest["period"])
                          & (pl.col("id") != latest["id"]))
    if prev.height:  # ... rolling back to an earlier version of a slot changes what counts
        store.rollback_to(demo_engine, prev["id"][0], "test")
    _assert_same(compute_components(demo_engine, settings), _whole_store(demo_engine))

    full = alerts.build_detail(load_dataset(demo_engine), rules)
    alert_rows = detail_store.load_alert_detail(demo_engine, rules)
    assert alert_rows.cases.height < full.cases.height / 5
    shown = 0
    for period in (Period(END, END), Period("2024-01", END), Period("2023-01", "2023-12")):
        for alert in (alerts.RED_CARDS, alerts.OVERDUE_OPEN, alerts.BAD_LATE, alerts.BAD_ALL):
            want = alerts.alert_list(full, alert, period)
            got = alerts.alert_list(alert_rows, alert, period)
            assert got.equals(want), (alert, period)
            shown += want.height
    assert shown > 0


def test_deleted_snapshots_are_rebuilt_and_memory_stores_work(demo_engine, tmp_path):
    settings = default_settings()
    first = compute_components(demo_engine, settings)
    snapshots.clear(demo_engine)
    assert not snapshots.cache_of(demo_engine).root.exists()
    assert compute_components(demo_engine, settings).equals(first)

    memory = store.make_engine("sqlite://")
    store.init_db(memory)
    assert snapshots.snapshot_dir(memory) is None
    assert compute_components(memory, settings).height == 0


def test_columns_the_rules_do_not_count_can_be_left_out(demo_engine):
    data = load_dataset(demo_engine)
    lean = Dataset(*(getattr(data, kind).select(counted_columns(kind)) for kind in KINDS))
    assert all(set(NOT_COUNTED[kind]) <= set(getattr(data, kind).columns) for kind in KINDS)
    rules = default_settings().to_rules()
    _assert_same(components(lean, rules).sort(KEY), components(data, rules).sort(KEY))


@pytest.mark.parametrize("rows_at_once", [300, 10_000_000])
def test_alert_rows_in_slices_equal_the_alert_rows_of_the_full_detail(demo_engine, monkeypatch, rows_at_once):
    """alerts.alert_detail flags the rows slice by slice (ROWS_AT_ONCE): the same rows as filtering
    build_detail's every-row frames, in whatever order."""
    monkeypatch.setattr(alerts, "ROWS_AT_ONCE", rows_at_once)
    rules = default_settings().to_rules()
    data = load_dataset(demo_engine)
    assert data.cases.height > 3 * 300 and data.evaluations.height > 3 * 300  # several slices
    want = alerts.alert_rows(alerts.build_detail(data, rules))
    got = alerts.alert_detail(data, rules)
    for kind, ids in (("cases", ["district", "case_id"]), ("evaluations", ["district", "eval_id"])):
        w, g = getattr(want, kind), getattr(got, kind)
        assert w.height > 0
        assert g.schema == w.schema
        assert g.sort(ids).equals(w.sort(ids)), kind


def test_row_budget_runs_small_districts_side_by_side_and_the_largest_alone():
    budget = RowBudget(10)
    both_in = threading.Barrier(2, timeout=10)
    alone: list[int] = []

    def small(rows: int) -> None:
        with budget.hold(rows):
            both_in.wait()  # returns only when the other small one is inside too

    def large() -> None:
        with budget.hold(12):  # more than the budget: runs, but only with nothing else
            alone.append(budget.running)
            time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=3) as pool:
        for f in [pool.submit(large), pool.submit(small, 4), pool.submit(small, 6)]:
            f.result(timeout=30)
    assert alone == [1]
    assert budget.used == budget.running == 0
    assert budget.peak == 12  # the large one alone; the small ones together held 10


def test_districts_are_computed_within_the_row_budget(demo_engine, monkeypatch):
    """compute_components holds each district's rows of active batches while computing it."""
    rows = snapshots.district_rows(demo_engine)
    assert sum(rows.values()) == store.active_batches(demo_engine)["rows"].sum()
    snapshots.ensure(demo_engine)  # the snapshots' builds hold the budget too: not counted here
    held: list[tuple[str, int]] = []
    real = RowBudget.hold

    def hold(self, n: int):
        held.append((threading.current_thread().name, n))
        return real(self, n)

    monkeypatch.setattr(RowBudget, "hold", hold)
    monkeypatch.setattr(side_by_side, "ROWS_SIDE_BY_SIDE", 1)  # every district alone: same table
    got = compute_components(demo_engine, default_settings(), detail=False)
    _assert_same(got, _whole_store(demo_engine))
    assert sorted(n for _, n in held) == sorted(rows.values())  # each district holds its own rows


def test_snapshots_are_built_within_the_row_budget(demo_engine, monkeypatch):
    """ensure builds districts side by side, each holding its rows of the kind being built, and the
    snapshots are those of a build one district at a time."""
    held: list[tuple[str, int]] = []
    real = RowBudget.hold

    def hold(self, n: int):
        held.append((threading.current_thread().name, n))
        return real(self, n)

    snapshots.ensure(demo_engine)
    want = {kind: {d: snapshots.current_records(demo_engine, kind, d) for d in snapshots.districts_with_data(
        snapshots.active_keys(demo_engine))} for kind in KINDS}
    snapshots.clear(demo_engine, keep_batches=True)
    monkeypatch.setattr(RowBudget, "hold", hold)
    assert snapshots.ensure(demo_engine) == sum(len(v) for v in want.values())
    active = store.active_batches(demo_engine)
    per_kind = active.group_by("kind", "district").agg(pl.col("rows").sum())["rows"].to_list()
    assert sorted(n for _, n in held) == sorted(per_kind)
    # One pool per kind, AT_ONCE threads each (ThreadPoolExecutor-<pool>_<thread>).
    assert {name.rsplit("_", 1)[1] for name, _ in held} == {str(i) for i in range(side_by_side.AT_ONCE)}
    for kind, by_district in want.items():
        for district, records in by_district.items():
            assert snapshots.current_records(demo_engine, kind, district).equals(records), (kind, district)


def test_item_parts_add_up_to_each_district_and_are_cached(demo_engine):
    """The drill-down's item table sums drill.item_parts (cached per district): over the items it gives
    each district's own numbers, for one month and longer ranges (catalog stocks, coverage)."""
    rules = default_settings().to_rules()
    comps = compute_components(demo_engine, default_settings())
    ids = drill.item_level_indicators([i.id for i in INDICATORS])
    assert "hotline_completion_rate" not in ids and {"eval_item_coverage", "full_online_rate"} <= set(ids)
    for district in store.list_districts(demo_engine)["name"].to_list()[:3]:
        _, parts = detail_store.load_district(demo_engine, district, rules)
        assert 0 < parts.height
        for period in (Period(END, END), Period("2024-01", END)):
            items = drill.item_values(parts, period, district, None, ids)
            summed = items.group_by("indicator").agg(pl.col("numerator").sum(), pl.col("denominator").sum())
            want = aggregate(comps, period, districts=[district]).filter(pl.col("indicator").is_in(ids))
            joined = want.join(summed, on="indicator", how="left", suffix="_items").fill_null(0.0)
            assert joined.height == len(ids)
            assert (joined["numerator"] - joined["numerator_items"]).abs().max() < 1e-6, (district, period)
            assert (joined["denominator"] - joined["denominator_items"]).abs().max() < 1e-6, (district, period)
    # The parts were cached with every district's components (the same key as the page's read), and
    # equal what the drill-down builds on its own when the file is missing.
    before = _files(demo_engine, "item_parts")
    assert len(before) == len(store.list_districts(demo_engine))
    _, again = detail_store.load_district(demo_engine, district, rules)
    assert again.equals(parts) and _files(demo_engine, "item_parts") == before
    names = {n for n in before if n.startswith(f"item_parts-{snapshots.district_tag(district)}-")}
    assert len(names) == 1
    (snapshots.cache_of(demo_engine).root / "item_parts" / names.pop()).unlink()
    _, rebuilt = detail_store.load_district(demo_engine, district, rules)
    assert rebuilt.sort([*drill.ITEM_KEYS, "indicator"], nulls_last=True).equals(
        parts.sort([*drill.ITEM_KEYS, "indicator"], nulls_last=True))


def test_the_drill_down_finds_its_parts_cached_after_the_components(demo_engine, monkeypatch):
    """compute_components caches each district's item parts and names with its alert rows: the first
    view of 区县对比 after an import builds nothing."""
    compute_components(demo_engine, default_settings())

    def refuse(*_args, **_kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(derived, "item_parts", refuse)
    monkeypatch.setattr(derived, "item_names", refuse)
    monkeypatch.setattr(derived, "alert_detail", refuse)
    for district in store.list_districts(demo_engine)["name"].to_list():
        detail, parts = detail_store.load_district(demo_engine, district, default_settings().to_rules())
        assert parts.height > 0 and detail.item_names.height > 0


def test_a_cold_start_counts_from_the_batch_files_and_leaves_the_rest_for_afterwards(demo_engine, monkeypatch):
    """With only the batch files left (a restored cache), every district is counted from them in memory:
    the same table, the alert lists and last months cached, no record snapshot or drill-down part
    written yet. Afterwards (finish_cache) and on first use they are built; an import still follows."""
    settings = default_settings()
    want = compute_components(demo_engine, settings)
    districts = store.list_districts(demo_engine)["name"].to_list()
    monkeypatch.setattr(service, "DEFER_ROWS", 0)  # the small demo counted as a large store is
    snapshots.clear(demo_engine, keep_batches=True)
    with monkeypatch.context() as m:
        refuse_sql_record_reads(m)
        got = compute_components(demo_engine, settings, finish="later")
    assert got.equals(want)
    for kind in KINDS:
        assert _files(demo_engine, kind) == {}, kind  # no snapshot written
        assert len(_files(demo_engine, f"last_month_{kind}")) > 0
    assert len(_files(demo_engine, "alert_cases")) == len(_files(demo_engine, "components")) == len(districts)
    assert _files(demo_engine, "item_parts") == {} and _files(demo_engine, "item_names") == {}
    # A restart before the rest was written reads the cached indicators without writing it first.
    assert compute_components(demo_engine, settings, finish="later").equals(want)
    assert all(_files(demo_engine, kind) == {} for kind in KINDS)
    # The overview's lists read the cached alert rows; the same rows as from the whole store.
    rules = settings.to_rules()
    full = alerts.build_detail(load_dataset(demo_engine), rules)
    listed = detail_store.load_alert_detail(demo_engine, rules)
    for alert in (alerts.RED_CARDS, alerts.OVERDUE_OPEN, alerts.BAD_LATE, alerts.BAD_ALL):
        assert alerts.alert_list(listed, alert, Period("2023-01", END)).equals(
            alerts.alert_list(full, alert, Period("2023-01", END))), alert
    # First use of one district's drill-down builds its snapshots and parts; finish_cache the rest.
    detail_store.load_district(demo_engine, districts[0], rules)
    assert len(_files(demo_engine, "item_parts")) == 1 and len(_files(demo_engine, "cases")) == 1
    service.finish_cache(demo_engine, rules, snapshots.active_keys(demo_engine), districts)
    assert len(_files(demo_engine, "item_parts")) == len(_files(demo_engine, "cases")) == len(districts)
    assert compute_components(demo_engine, settings).equals(want)
    # An import into a district whose snapshot a cold start did not write (no previous file to extend).
    snapshots.clear(demo_engine, keep_batches=True)
    compute_components(demo_engine, settings, finish="later")
    new = frame("cases", [
        {"case_id": "COLD-1", "district": districts[1], "accepted_at": at(2024, 12, 2),
         "completed_at": at(2024, 12, 20), "legal_limit": 5.0, "promised_limit": 3.0},
    ]).drop("batch_id", "period")
    import_frame(demo_engine, "cases", new, file_name="补报.xlsx", sha256="d" * 64, period=END)
    _assert_same(compute_components(demo_engine, settings, finish="later"), _whole_store(demo_engine))


def test_the_background_finish_writes_what_the_cold_start_left(demo_engine, monkeypatch):
    settings = default_settings()
    want = compute_components(demo_engine, settings)
    monkeypatch.setattr(service, "DEFER_ROWS", 0)
    parts_before = {n: snapshots.cache_of(demo_engine).read(f"item_parts/{n}") for n in _files(demo_engine, "item_parts")}
    snapshots.clear(demo_engine, keep_batches=True)
    assert compute_components(demo_engine, settings, finish="background").equals(want)
    assert service.wait_background(timeout=120)
    districts = store.list_districts(demo_engine)["name"].to_list()
    assert len(_files(demo_engine, "cases")) == len(_files(demo_engine, "item_parts")) == len(districts)
    for name, parts in parts_before.items():  # the same files, under the same keys
        again = snapshots.cache_of(demo_engine).read(f"item_parts/{name}")
        assert again is not None and again.sort(pl.all(), nulls_last=True).equals(parts.sort(pl.all(), nulls_last=True))
    with pytest.raises(ValueError):
        compute_components(demo_engine, settings, finish="soon")


def test_an_import_into_a_large_district_shows_its_numbers_before_its_snapshot_is_written(demo_engine, monkeypatch):
    """Over DEFER_ROWS rows an import's one district is counted in memory, its snapshot extended from
    the previous one (a later month only adds a batch), and its snapshot and drill-down parts are
    written afterwards (finish_cache): the same numbers as the whole store's, before and after."""
    settings = default_settings()
    compute_components(demo_engine, settings)
    district = store.list_districts(demo_engine)["name"].to_list()[0]
    month = shift_month(store.active_batches(demo_engine, "cases")["period"].max(), 1)
    year, mon = int(month[:4]), int(month[5:])
    new = frame("cases", [
        {"case_id": "NEXT-1", "district": district, "accepted_at": at(year, mon, 2), "completed_at": at(year, mon, 9),
         "legal_limit": 5.0, "promised_limit": 3.0},
    ]).drop("batch_id", "period")
    import_frame(demo_engine, "cases", new, file_name="下月.xlsx", sha256="f" * 64, period=month)
    monkeypatch.setattr(service, "DEFER_ROWS", 0)
    extended: list[int] = []
    real_extend = snapshots.extend

    def extend(*args, **kwargs):
        got = real_extend(*args, **kwargs)
        extended.append(-1 if got is None else got.height)
        return got

    monkeypatch.setattr(snapshots, "extend", extend)
    counted = derived.COUNTS["components"]
    cases_before = _files(demo_engine, "cases")
    got = compute_components(demo_engine, settings, finish="later")
    assert derived.COUNTS["components"] - counted == 1
    assert len(extended) == 1 and extended[0] > 0  # extended in memory, not rebuilt from every batch file
    _assert_same(got, _whole_store(demo_engine))
    assert _files(demo_engine, "cases") == cases_before  # no snapshot written yet
    keys = snapshots.active_keys(demo_engine)
    assert not derived.is_current(demo_engine, "item_parts", district, keys, settings.to_rules())
    service.finish_cache(demo_engine, settings.to_rules(), keys, [district])
    assert derived.is_current(demo_engine, "item_parts", district, keys, settings.to_rules())
    cases_after = _files(demo_engine, "cases")
    assert len(cases_after) == len(cases_before) and set(cases_after) - set(cases_before) == {
        n for n in cases_after if snapshots.district_tag(district) in n}  # its snapshot, replaced
    assert compute_components(demo_engine, settings).equals(got)


def test_a_small_store_is_counted_in_one_pass_with_its_snapshots_and_drill_down_parts(demo_engine):
    """Under DEFER_ROWS rows a cold start writes the snapshots first and the drill-down parts with the
    indicators (nothing left for afterwards, nothing queued for the background)."""
    settings = default_settings()
    want = compute_components(demo_engine, settings)
    assert sum(snapshots.district_rows(demo_engine).values()) < service.DEFER_ROWS
    snapshots.clear(demo_engine, keep_batches=True)
    assert compute_components(demo_engine, settings, finish="later").equals(want)
    districts = store.list_districts(demo_engine)["name"].to_list()
    assert len(_files(demo_engine, "cases")) == len(_files(demo_engine, "item_parts")) == len(districts)
    assert not service._PENDING


def test_a_superseded_row_with_the_latest_date_does_not_move_the_last_month(demo_engine, monkeypatch):
    """The store's last month (catalogs stay in force up to it) is that of the current records: a
    superseded row dated after everything else does not count, on a cold start either; the same table
    as the whole store's."""
    settings = default_settings()
    district = store.list_districts(demo_engine)["name"].to_list()[0]
    # A wrong date in an old month's export (a re-export of the same month would replace that batch
    # instead), then a later month's export with the right date: the old row stays, superseded.
    wrong = frame("cases", [{"case_id": "LATE-1", "district": district, "accepted_at": at(2025, 3, 2),
                             "completed_at": at(2025, 3, 4), "legal_limit": 5.0, "promised_limit": 3.0}])
    import_frame(demo_engine, "cases", wrong.drop("batch_id", "period"), file_name="错.xlsx", sha256="a" * 64,
                 period="2022-06")
    right = wrong.with_columns(pl.lit(at(2024, 12, 2)).alias("accepted_at"), pl.lit(at(2024, 12, 4)).alias("completed_at"))
    import_frame(demo_engine, "cases", right.drop("batch_id", "period"), file_name="更正.xlsx", sha256="b" * 64,
                 period=END)
    monkeypatch.setattr(service, "DEFER_ROWS", 0)
    snapshots.clear(demo_engine, keep_batches=True)
    keys = snapshots.active_keys(demo_engine)
    got = compute_components(demo_engine, settings, finish="later")
    assert store_until(demo_engine, keys) == END
    _assert_same(got, _whole_store(demo_engine))
    assert got["month"].max() <= END
