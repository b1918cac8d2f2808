"""The demo city: determinism, shape of the city and validity of every generated value."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import polars as pl
import pytest
import sqlalchemy as sa

from datasets import store
from datasets.calendar import load_calendar
from datasets.demo import _default_end_month, generate_demo
from datasets.schema import KINDS, RATINGS
from tests.apptest_support import DEMO_END, Demo

END = DEMO_END
MONTHS = [f"{y}-{m:02d}" for y, m in [(2023, m) for m in range(7, 13)] + [(2024, m) for m in range(1, 13)]
          + [(2025, m) for m in range(1, 7)]]
TINY = 0.001  # the determinism tests compare whole generations: the smallest city does


def _engine(path) -> sa.Engine:
    engine = store.make_engine(f"sqlite:///{path}")
    store.init_db(engine)
    return engine


@pytest.fixture(scope="module")
def demo(demo: Demo):
    """The session's demo store (conftest ``demo``: seed 7, scale 0.01, ending DEMO_END), only read here."""
    engine = store.make_engine(demo.url)
    data = {k: store.load_records(engine, k) for k in KINDS}
    yield engine, demo.summary, data
    engine.dispose()


def test_summary_is_one_chinese_line(demo):
    _, summary, data = demo
    assert "\n" not in summary
    assert "10 个区县" in summary and "2023-07 至 2025-06" in summary and "秒" in summary
    assert f"{data['cases'].height:,}" in summary  # distinct cases stored


def test_same_seed_same_records(tmp_path):
    """Two generations with one seed store the same records (compared on two tiny cities)."""
    first, again = _engine(tmp_path / "first.db"), _engine(tmp_path / "again.db")
    generate_demo(first, seed=7, scale=TINY, end_month=END)
    generate_demo(again, seed=7, scale=TINY, end_month=END)
    for kind in KINDS:
        want = store.load_records(first, kind)
        assert want.height > 0, kind
        assert store.load_records(again, kind).equals(want), kind


def test_other_seed_other_records(tmp_path, monkeypatch):
    """Compared on the frames handed to import (no database writes, so it stays fast)."""
    captured: dict[int, dict[str, list[pl.DataFrame]]] = {}

    def fake_import(engine, kind, frame, **kwargs):
        captured[seed].setdefault(kind, []).append(frame)
        return SimpleNamespace(results=[None])

    monkeypatch.setattr("datasets.demo.import_frame", fake_import)
    for seed in (7, 8):
        captured[seed] = {}
        generate_demo(_engine(tmp_path / f"s{seed}.db"), seed=seed, scale=TINY, end_month=END)
    for kind in KINDS:
        first, second = (pl.concat(captured[s][kind]) for s in (7, 8))
        assert not first.equals(second), kind


def test_districts(demo):
    engine, _, data = demo
    districts = store.list_districts(engine)
    assert districts.height >= 8
    assert districts["code"].null_count() == 0
    assert all(len(a) >= 1 for a in districts["aliases"].to_list())
    for kind in KINDS:
        assert set(data[kind]["district"].unique()) == set(districts["name"]), kind


def test_24_months_of_case_batches_with_a_few_missing(demo):
    engine, _, _ = demo
    active = store.active_batches(engine)
    names = store.list_districts(engine)["name"].to_list()
    expected = {(d, m) for d in names for m in MONTHS}
    for kind in ("cases", "evaluations"):
        slots = set(active.filter(pl.col("kind") == kind).select("district", "period").iter_rows())
        assert slots <= expected
        missing = expected - slots
        assert 1 <= len(missing) <= 3, kind
    cases = set(active.filter(pl.col("kind") == "cases").select("district", "period").iter_rows())
    assert max(m for _, m in cases) == END and min(m for _, m in cases) == MONTHS[0]
    hotline = set(active.filter(pl.col("kind") == "hotline").select("district", "period").iter_rows())
    assert hotline == expected  # the 12345 system never misses a month


def test_late_uploads(demo):
    engine, _, _ = demo
    batches = store.batch_history(engine)
    late = batches.filter(pl.col("late"))
    assert 1 <= late.height <= 6
    for period, created in late.select("period", "created_at").iter_rows():
        month_end = dt.datetime.strptime(period, "%Y-%m") + dt.timedelta(days=31)
        assert created > month_end + dt.timedelta(days=20)
    normal = batches.filter(~pl.col("late") & (pl.col("kind") != "items"))
    for period, created in normal.select("period", "created_at").iter_rows():
        assert dt.datetime.strptime(period, "%Y-%m") < created < dt.datetime.strptime(period, "%Y-%m") + dt.timedelta(days=40)


def test_catalogs(demo):
    _, _, data = demo
    items = data["items"]
    sizes = items.group_by("district", "period").len()
    assert sizes["len"].min() >= 1000 and sizes["len"].max() <= 3000
    per_district = sizes.group_by("district").agg(pl.col("period").min().alias("first"), pl.len().alias("versions"))
    assert (per_district["first"] == MONTHS[0]).all()
    assert per_district["versions"].min() >= 2  # a revised catalog later on
    assert items.filter(pl.col("promised_limit") > pl.col("legal_limit")).height == 0
    instant = items.filter(pl.col("case_type") == "即办件")
    assert instant.height and (instant["promised_limit"] == 0).all()
    assert items.filter(pl.col("legal_limit_unit") == "自然日").height > 0
    assert set(items["online_depth"].unique()) == {1, 2, 3, 4}
    # Revisions improve online depth.
    depth = items.group_by("district", "period").agg((pl.col("online_depth") >= 3).mean().alias("d3")).sort("period")
    first_last = depth.group_by("district").agg(pl.col("d3").first(), pl.col("d3").last().alias("last"))
    assert (first_last["last"] > first_last["d3"]).all()
    departments = set(items["department"].unique())
    assert {"区市场监管局", "区人社局", "县住建局", "县卫健委"} <= departments


def test_allowed_values_and_required_fields(demo):
    _, _, data = demo
    for name, frame in data.items():
        kind = KINDS[name]
        for f in kind.fields:
            column = frame[f.name]
            if f.required:
                assert column.null_count() == 0, (name, f.name)
            if f.allowed and f.name != "rating":
                assert set(column.drop_nulls().unique()) <= set(f.allowed), (name, f.name)
    assert set(data["evaluations"]["rating"].unique()) <= set(RATINGS.values())


def test_dates_are_consistent_and_never_in_the_future(demo):
    _, _, data = demo
    now = dt.datetime.now()
    for name, frame in data.items():
        for column, dtype in frame.schema.items():
            if isinstance(dtype, pl.Datetime):
                assert frame.filter(pl.col(column) > now).height == 0, (name, column)
    cases = data["cases"]
    assert cases.filter(pl.col("completed_at") < pl.col("accepted_at")).height == 0
    assert cases.filter(pl.col("applied_at") > pl.col("accepted_at")).height == 0
    assert cases.filter(pl.col("promised_limit") > pl.col("legal_limit")).height == 0
    open_ = pl.col("status") == "在办"
    assert cases.filter(open_ & pl.col("completed_at").is_not_null()).height == 0
    assert cases.filter(~open_ & pl.col("completed_at").is_null()).height == 0
    # Accepted on working days in office hours.
    hours = cases["accepted_at"].dt.hour()
    assert hours.min() >= 9 and hours.max() <= 17
    cal = load_calendar()
    day = pl.col("accepted_at")
    workday = cal.working_days_between(day - pl.duration(days=1), day) == 1  # holidays and 调休 honoured
    assert cases.select(workday.all()).item()
    hotline = data["hotline"]
    assert hotline.filter(pl.col("closed_at") < pl.col("received_at")).height == 0
    assert hotline.filter(pl.col("due_at") <= pl.col("received_at")).height == 0
    assert hotline.filter(pl.col("received_at") > now).height == 0


def test_overlapping_exports_count_once_with_newer_status(demo):
    engine, _, data = demo
    raw = store._arrow_read(
        engine,
        "SELECT c.district, c.case_id, c.status, b.period FROM cases c JOIN batches b ON b.id = c.batch_id "
        "WHERE b.state = 'active'",
    )
    twice = raw.group_by("district", "case_id").agg(pl.len(), pl.col("status").sort_by("period").alias("history"))
    twice = twice.filter(pl.col("len") > 1)
    assert twice.height > 0
    assert (twice["history"].list.first() == "在办").all()
    cases = data["cases"]
    assert cases.select(pl.struct("district", "case_id").is_unique().all()).item()
    merged = twice.join(cases, on=["district", "case_id"])
    assert merged.height == twice.height
    assert (merged["status"] == merged["history"].list.last()).all()
    assert (merged["status"] == "已办结").mean() > 0.9
    # Cases accepted late in the last month are still open.
    last = cases.filter(pl.col("accepted_at").dt.strftime("%Y-%m") == END)
    assert last.filter(pl.col("status") == "在办").height > 0


def test_case_content(demo):
    _, _, data = demo
    cases, items = data["cases"], data["items"]
    catalog = items.select("district", "item_code", "item_name", "department").unique()
    joined = cases.join(catalog, on=["district", "item_code"], how="left", suffix="_cat")
    listed = joined.filter(pl.col("item_name_cat").is_not_null())
    assert listed.height / cases.height > 0.99
    assert (listed["item_name"] == listed["item_name_cat"]).all()
    assert (listed["department"] == listed["department_cat"]).all()
    # Unlisted codes still carry their limits.
    assert joined.filter(pl.col("item_name_cat").is_null() & pl.col("legal_limit").is_null()).height == 0
    empty_limits = cases["legal_limit"].null_count() / cases.height
    assert 0.1 < empty_limits < 0.35
    statuses = cases["status"].value_counts()
    assert set(statuses["status"]) == {"已办结", "在办", "不予受理", "退件", "撤件"}
    assert (cases["status"] == "已办结").mean() > 0.9
    assert cases["suspended_days"].drop_nulls().len() > 0
    # 监察结果 in about half of the districts, complete where present.
    supervised = cases.group_by("district").agg(pl.col("supervision").is_not_null().mean().alias("share"))
    assert set(supervised["share"].unique()) == {0.0, 1.0}
    assert 3 <= (supervised["share"] == 1.0).sum() <= 7
    assert cases["supervision"].is_in(["黄牌", "红牌"]).sum() > 0


def test_trends_and_holiday_dips(demo):
    _, _, data = demo
    cases = data["cases"].with_columns(pl.col("accepted_at").dt.strftime("%Y-%m").alias("month"))
    monthly = cases.group_by("month").agg(
        pl.len(), pl.col("channel").is_in(["网上申请", "移动端"]).mean().alias("online")
    ).sort("month")
    median = monthly["len"].median()
    volume = dict(monthly.select("month", "len").iter_rows())
    assert volume["2024-02"] < 0.85 * median  # Spring Festival
    assert volume["2024-10"] < 0.9 * median  # National Day
    online = monthly["online"].to_list()
    assert sum(online[-6:]) > sum(online[:6])
    by_district = cases.group_by("district").agg(pl.col("channel").is_in(["网上申请", "移动端"]).mean().alias("o"))
    assert by_district["o"].max() - by_district["o"].min() > 0.2


def test_evaluations(demo):
    _, _, data = demo
    ev, cases = data["evaluations"], data["cases"]
    bad = ev.filter(pl.col("rating") <= 2)
    assert bad.height > 0 and bad["rectify_status"].null_count() == 0
    assert ev.filter((pl.col("rating") > 2) & pl.col("rectify_status").is_not_null()).height == 0
    assert ev.filter(pl.col("rectified_at") < pl.col("evaluated_at")).height == 0
    assert (ev["rating"] >= 4).mean() > 0.9
    assert 0.1 < ev["active"].mean() < 0.8
    linked = ev.join(cases, on=["district", "case_id"], how="inner", suffix="_case")
    assert linked.height / ev.height > 0.97
    # Completed cases only; a case whose completion fell in a missing month stays 在办 in the store.
    assert (linked["status"] == "已办结").mean() > 0.99
    assert (linked["item_code"] == linked["item_code_case"]).all()
    assert (linked["evaluated_at"] >= linked["completed_at"]).all()


def test_hotline(demo):
    _, _, data = demo
    hotline = data["hotline"]
    closed = hotline.filter(pl.col("closed_at").is_not_null())
    assert 0.95 < closed.height / hotline.height < 1.0
    late = (closed["closed_at"] > closed["due_at"]).mean()
    assert 0.0 < late < 0.25
    assert hotline.filter(pl.col("closed_at").is_null() & pl.col("satisfaction").is_not_null()).height == 0


def test_end_month_rules(tmp_path):
    assert _default_end_month(dt.date(2026, 1, 15)) == "2025-12"
    assert _default_end_month(dt.date(2026, 3, 1)) == "2026-02"
    engine = _engine(tmp_path / "x.db")
    future = _default_end_month(dt.date.today() + dt.timedelta(days=62))
    with pytest.raises(ValueError, match="尚未结束"):
        generate_demo(engine, end_month=future)
    with pytest.raises(ValueError, match="无效"):
        generate_demo(engine, end_month="2025-13")
    assert store.record_counts(engine)["batches"] == 0
