"""Ranking completeness: only districts with the data the index needs are ranked; the rest are listed
after them as 未排名 with the reason, and change nobody's rank."""

from __future__ import annotations

import polars as pl
import pytest

from datasets.common.config import AppSettings, sqlite_url
from datasets.domain.periods import Period
from datasets.domain.vocabulary import Rules
from datasets.domain.workdays import load_calendar
from datasets.sample.demo import generate_demo
from datasets.storage import store
from metrics.compute import components, latest_month
from metrics.exports import rank_export_frame, rank_table_chinese
from metrics.registry import INDICATORS
from metrics.scoring import data_gaps, default_settings, load_settings, ranking
from metrics.service import compute_components
from tests.apptest_support import Demo
from tests.factories import at, dataset, inventory

SEP, OCT, Q3 = Period("2024-09", "2024-09"), Period("2024-10", "2024-10"), Period("2024-07", "2024-09")


def _district(name: str, months: list[int], online: int, catalog: str = "2024-01", evaluations: bool = True):
    cases = [
        {"case_id": f"{name}{m}-{n}", "district": name, "accepted_at": at(2024, m, 8 + n),
         "completed_at": at(2024, m, 9 + n), "channel": "网上申请" if n < online else "窗口",
         "promised_limit": 5.0, "legal_limit": 10.0, "period": f"2024-{m:02d}"}
        for m in months for n in range(4)
    ]
    evals = [{"eval_id": f"{name}{m}", "district": name, "evaluated_at": at(2024, m, 20), "rating": 5,
              "period": f"2024-{m:02d}"} for m in months] if evaluations else []
    items = [{"district": name, "item_code": "I1", "online_depth": 4, "period": catalog}]
    return cases, evals, items


def _data(*parts):
    return dataset(cases=[r for p in parts for r in p[0]], evaluations=[r for p in parts for r in p[1]],
                   items=[r for p in parts for r in p[2]])


@pytest.fixture(scope="module")
def city():
    return _data(
        _district("甲区", [7, 8, 9, 10], online=4),
        _district("乙区", [7, 8, 9, 10], online=2),
        _district("丙县", [9, 10], online=3),  # no July or August exports
        _district("丁区", [7, 8, 9, 10], online=1, catalog="2023-09"),  # catalog 13 months old in October
        _district("戊区", [7, 8, 9, 10], online=3, evaluations=False),
    )


def _rows(rank: pl.DataFrame) -> dict[str, dict]:
    return {r["district"]: r for r in rank.iter_rows(named=True)}


def test_gaps_name_each_missing_export_and_a_stale_catalog(city):
    gaps = data_gaps(inventory(city), Q3, Rules(), ["甲区", "丙县", "丁区", "戊区", "己区"])
    assert gaps["甲区"] == []
    assert gaps["丙县"] == ["缺少 2024-07 办件明细", "缺少 2024-08 办件明细", "缺少 2024-07 好差评", "缺少 2024-08 好差评"]
    assert gaps["丁区"] == []  # in September the 2023-09 catalog is 12 months old: still in force for ranking
    assert gaps["戊区"] == ["缺少 2024-07 好差评", "缺少 2024-08 好差评", "缺少 2024-09 好差评"]
    assert gaps["己区"][-1] == "无事项清单"
    october = data_gaps(inventory(city), OCT, Rules(), ["丁区"])
    assert october["丁区"] == ["事项清单为 2023-09 版，已超过 12 个月"]
    relaxed = Rules(rank_needs_evaluations=False, catalog_max_age_months=24)
    assert data_gaps(inventory(city), OCT, relaxed, ["丁区", "戊区"]) == {"丁区": [], "戊区": []}


def test_unranked_districts_follow_and_change_no_rank(city):
    comps, inv, settings = components(city), inventory(city), default_settings()
    rank = ranking(comps, OCT, settings, inv, ["甲区", "乙区", "丙县", "丁区", "戊区", "己区"])
    rows = _rows(rank)
    assert rank["district"].to_list()[:3] == ["甲区", "丙县", "乙区"]  # online 4/4, 3/4, 2/4
    assert [rows[d]["rank"] for d in ("甲区", "丙县", "乙区")] == [1, 2, 3]
    assert rank["ranked"].to_list() == [True, True, True, False, False, False]
    assert rows["丁区"]["unranked_reason"] == "事项清单为 2023-09 版，已超过 12 个月"
    assert rows["戊区"]["unranked_reason"] == "缺少 2024-10 好差评"
    assert rows["己区"]["unranked_reason"] == "缺少 2024-10 办件明细；缺少 2024-10 好差评；无事项清单"
    assert rows["丁区"]["rank"] is None and rows["丁区"]["index"] is not None  # scored, not ranked
    # The same ranks as if the unranked districts were not there at all.
    alone = ranking(comps.filter(pl.col("district").is_in(["甲区", "乙区", "丙县"])), OCT, settings, inv,
                    ["甲区", "乙区", "丙县"])
    assert alone["rank"].to_list() == rank["rank"].to_list()[:3]


def test_rank_change_only_for_districts_ranked_in_both_periods(city):
    rank = ranking(components(city), OCT, default_settings(), inventory(city), ["甲区", "乙区", "丙县", "丁区"])
    rows = _rows(rank)
    # September: 甲区 1, 丙县 2, 乙区 3, 丁区 4 (its catalog was 12 months old then: ranked);
    # October: 甲区 1, 丙县 2, 乙区 3, 丁区 unranked
    assert (rows["甲区"]["prev_rank"], rows["甲区"]["rank_change"]) == (1, 0)
    assert (rows["乙区"]["prev_rank"], rows["乙区"]["rank_change"]) == (3, 0)
    assert (rows["丁区"]["prev_rank"], rows["丁区"]["rank"], rows["丁区"]["rank_change"]) == (4, None, None)
    # A quarter with missing months: 丙县 reported only September → unranked in Q3
    q3 = _rows(ranking(components(city), Q3, default_settings(), inventory(city), ["甲区", "乙区", "丙县"]))
    assert q3["丙县"]["ranked"] is False and [q3["甲区"]["rank"], q3["乙区"]["rank"]] == [1, 2]


def test_unranked_in_the_exports(city):
    rank = ranking(components(city), OCT, default_settings(), inventory(city), ["甲区", "乙区", "丙县", "戊区"])
    chinese = rank_table_chinese(rank)
    last = chinese.row(chinese.height - 1, named=True)
    assert (last["区县"], last["排名"], last["未排名原因"]) == ("戊区", None, "未排名：缺少 2024-10 好差评")
    assert chinese.filter(pl.col("排名").is_not_null())["未排名原因"].to_list() == ["", "", ""]
    cli = rank_export_frame(rank)
    assert cli["unranked_reason"].to_list() == [None, None, None, "缺少 2024-10 好差评"]


def _stuck(rank: pl.DataFrame) -> list[str]:
    """Indicators on which every district that has a score scores 0, or every one 100."""
    stuck = []
    for indicator in INDICATORS:
        scores = rank[f"score_{indicator.id}"].drop_nulls().to_list()
        if scores and (all(s == 0.0 for s in scores) or all(s == 100.0 for s in scores)):
            stuck.append(f"{indicator.name}={scores[0]:.0f}")
    return stuck


def test_no_indicator_scores_the_same_extreme_for_every_district(demo: Demo):
    """The default targets and floors fit the demo city: an indicator on which every district scores 0
    (or 100) tells a leader nothing and hides whether the data or the districts are at fault."""
    rank = demo.ranking()
    assert rank.height == len(demo.districts)
    assert not _stuck(rank), "、".join(_stuck(rank))


def test_the_apps_own_demo_has_no_indicator_stuck_at_an_extreme(tmp_path):
    """The same on the demo a first start generates (demo_scale 0.05) in its default month: with a few
    差评 a district a month, the rectification rates were 100 % for every district that had one."""
    defaults = AppSettings.model_fields  # the shipped defaults, whatever the environment says
    engine = store.make_engine(sqlite_url(tmp_path / "demo.db"))
    store.init_db(engine)
    generate_demo(engine, calendar=load_calendar(), seed=defaults["demo_seed"].default,
                  scale=defaults["demo_scale"].default,
                  end_month="2026-11")
    settings = load_settings(engine)
    comps = compute_components(engine, settings)
    month = latest_month(comps)
    assert month == "2026-11"
    districts = store.list_districts(engine)["name"].to_list()
    inventory = store.active_batches(engine).select("district", "kind", "period")
    rank = ranking(comps, Period(month, month), settings, inventory, districts)
    engine.dispose()
    for rate in ("bad_rectified_rate", "bad_rectified_on_time_rate"):  # the two that were stuck at 100
        assert rank[f"score_{rate}"].drop_nulls().len() >= 3, rate
    assert not _stuck(rank), "、".join(_stuck(rank))
