"""The benchmark's DuckDB and pandas implementations compute the same table as the project.

benchmarks/bench_metrics.py compares three implementations of the district × month indicator
table; these tests keep the two alternative ones honest on hand-made edge cases and on a small
demo city, so that a timing comparison is always a comparison of the same computation.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from benchmarks.alt_impl import (
    PARTS,
    compare,
    duckdb_table,
    mismatch_total,
    pandas_result_to_polars,
    pandas_table,
    project_table,
    to_pandas,
)
from datasets.domain.vocabulary import Rules
from metrics.prepare import Dataset, load_dataset
from metrics.registry import INDICATORS
from tests.factories import at, dataset

pytest.importorskip("duckdb")


def _alternatives(data: Dataset, rules: Rules | None = None) -> dict[str, pl.DataFrame]:
    return {
        "duckdb": duckdb_table(data, rules),
        "pandas": pandas_result_to_polars(pandas_table(to_pandas(data), rules)),
    }


def _assert_same(data: Dataset, rules: Rules | None = None) -> pl.DataFrame:
    reference = project_table(data, rules)
    for name, table in _alternatives(data, rules).items():
        summary = compare(reference, table)
        bad = summary.filter(pl.sum_horizontal(pl.exclude("indicator", "rows")) > 0)
        assert mismatch_total(summary) == 0, f"{name} differs from the project:\n{bad}"
    return reference


def _edge_cases() -> Dataset:
    items = [
        # 甲区: catalog of 2024-01, revised in 2024-09 (I1 shorter and in natural days, I2 dropped, I3 new).
        {"item_code": "I1", "period": "2024-01", "legal_limit": 10.0, "promised_limit": 3.0, "online_depth": 4,
         "visits_required": 0, "materials_count": 0, "in_hall": True, "case_type": "承诺件"},
        {"item_code": "I2", "period": "2024-01", "legal_limit": 20.0, "promised_limit": None, "online_depth": 2,
         "visits_required": 1, "materials_count": 3, "in_hall": None, "case_type": "即办件"},
        {"item_code": "I1", "period": "2024-09", "legal_limit": 8.0, "legal_limit_unit": "自然日",
         "promised_limit": 2.0, "promised_limit_unit": "自然日", "online_depth": 3, "visits_required": None,
         "in_hall": False},
        {"item_code": "I3", "period": "2024-09", "legal_limit": 0.0, "promised_limit": 0.0, "online_depth": None,
         "department": None},
        # 乙区: one catalog; its cases of other items have no limits at all.
        {"item_code": "I9", "district": "乙区", "period": "2024-06", "legal_limit": 15.0, "promised_limit": 5.0,
         "online_depth": 1, "visits_required": 2},
    ]
    cases = [
        # Own limits, on time, online; accepted the day before the National Day holiday.
        {"accepted_at": at(2024, 9, 30), "completed_at": at(2024, 10, 9), "legal_limit": 20.0,
         "promised_limit": 5.0, "channel": "网上申请"},
        # Limits from the 2024-09 catalog (natural days), over both: computed red card.
        {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 25), "channel": "移动端"},
        # Limits from the 2024-01 catalog (accepted before the revision).
        {"accepted_at": at(2024, 8, 5), "completed_at": at(2024, 8, 7), "period": "2024-08"},
        # Open: elapsed runs to the end of the export month (its as-of date); over the legal limit.
        {"accepted_at": at(2024, 9, 2), "completed_at": None, "status": "在办", "item_code": "I2"},
        # Open in an early export (as of 10-09): elapsed runs to 10-09 only (10-08, 10-09), within its limits.
        {"accepted_at": at(2024, 9, 30), "completed_at": None, "status": "在办", "item_code": "I2",
         "as_of": dt.date(2024, 10, 9)},
        # 已办结 without 办结时间 counts as open.
        {"accepted_at": at(2024, 10, 28), "completed_at": None, "item_code": "I2"},
        # Not accepted: in no accepted count.
        {"accepted_at": at(2024, 10, 10), "completed_at": None, "status": "不予受理"},
        # Supervision column wins: revoked card does not count, an explicit red card does.
        {"accepted_at": at(2024, 7, 1), "completed_at": at(2024, 10, 30), "supervision": "黄牌（已撤销）",
         "item_code": "I2"},
        {"accepted_at": at(2024, 10, 14), "completed_at": at(2024, 10, 15), "supervision": "红牌",
         "department": None},
        # Suspension subtracted, never below 0; completion before acceptance clipped to 0.
        {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 31), "suspended_days": 6.0,
         "legal_limit": 10.0, "legal_limit_unit": "自然日", "promised_limit": 4.0},
        {"accepted_at": at(2024, 10, 21), "completed_at": at(2024, 10, 18), "legal_limit": 3.0},
        # 即办件 (promised 0): same day is on time; the next working day is not.
        {"accepted_at": at(2024, 10, 16, 9), "completed_at": at(2024, 10, 16, 17), "legal_limit": 1.0,
         "promised_limit": 0.0},
        {"accepted_at": at(2024, 10, 16, 9), "completed_at": at(2024, 10, 17, 9), "legal_limit": 1.0,
         "promised_limit": 0.0},
        # 乙区: one case of the catalog item, one of an item the catalog does not list.
        {"district": "乙区", "item_code": "I9", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 11, 4),
         "period": "2024-11"},
        {"district": "乙区", "item_code": "X", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 10)},
    ]
    evaluations = [
        {"evaluated_at": at(2024, 10, 12), "rating": 5},
        {"evaluated_at": at(2024, 10, 12), "rating": 2, "rectify_status": "已整改",
         "rectified_at": at(2024, 10, 25)},
        {"evaluated_at": at(2024, 10, 12), "rating": 1, "rectify_status": "核实不属实",
         "rectified_at": at(2024, 11, 30), "item_code": "I3"},
        {"evaluated_at": at(2024, 10, 20), "rating": 2, "rectify_status": "整改中", "active": False},
        # An early export (as of 10-22): this 差评 of 10-08 is not due yet (deadline 10-28), that of 10-09
        # (deadline 10-29) neither; counted to 10-31 both would be.
        {"evaluated_at": at(2024, 10, 8), "rating": 1, "rectify_status": "整改中", "as_of": dt.date(2024, 10, 22)},
        {"evaluated_at": at(2024, 10, 9), "rating": 1, "as_of": dt.date(2024, 10, 22)},
        {"evaluated_at": at(2024, 10, 20), "rating": 2, "rectify_status": "已整改", "rectified_at": None,
         "department": None},
        {"evaluated_at": at(2024, 9, 3), "rating": 4, "active": None, "item_code": "I2"},
        # A month with evaluations but no completed cases (乙区 2024-12): actual_eval_rate denominator 0.
        {"district": "乙区", "item_code": "I9", "evaluated_at": at(2024, 12, 2), "rating": 3},
    ]
    hotline = [
        {"received_at": at(2024, 10, 8), "due_at": at(2024, 10, 10), "closed_at": at(2024, 10, 10),
         "satisfaction": "满意"},
        {"received_at": at(2024, 10, 8), "due_at": at(2024, 10, 10), "closed_at": at(2024, 10, 11),
         "satisfaction": "不满意"},
        {"received_at": at(2024, 10, 9), "due_at": None, "closed_at": at(2024, 10, 9), "satisfaction": "未回访"},
        {"received_at": at(2024, 10, 30), "due_at": at(2024, 11, 5), "closed_at": None, "satisfaction": None,
         "department": None},
        {"district": "乙区", "received_at": at(2024, 11, 2), "closed_at": at(2024, 11, 3),
         "satisfaction": "基本满意"},
    ]
    return dataset(cases=cases, items=items, evaluations=evaluations, hotline=hotline)


def test_edge_cases_agree():
    reference = _assert_same(_edge_cases())
    assert set(reference["indicator"]) == {i.id for i in INDICATORS} == set(PARTS)
    # The cases exercise what they are meant to (the comparison is not vacuous).
    totals = reference.group_by("indicator").agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    value = {r["indicator"]: (r["numerator"], r["denominator"]) for r in totals.iter_rows(named=True)}
    for ind in ("card_rate", "red_card_rate", "on_time_rate", "eval_item_coverage", "bad_rectified_on_time_rate",
                "hotline_on_time_rate", "commitment_compression", "statutory_speedup", "instant_item_rate"):
        assert value[ind][0] != 0 and value[ind][1] != 0, ind
    # Catalogs stay in force up to the last month with any data (2024-12).
    assert reference.filter(pl.col("indicator") == "online_available_rate")["month"].max() == "2024-12"


def test_edge_cases_agree_with_other_rules():
    _assert_same(_edge_cases(), Rules(yellow_grace_days=0, red_grace_days=3, rectify_days=5))


def test_compare_reports_differences():
    reference = project_table(_edge_cases())
    changed = reference.with_columns(
        pl.when(pl.col("indicator") == "card_rate").then(pl.col("numerator") + 1).otherwise("numerator")
        .alias("numerator")
    ).filter(~((pl.col("indicator") == "good_rate") & (pl.col("month") == "2024-10")))
    summary = compare(reference, changed)
    rows = {r["indicator"]: r for r in summary.iter_rows(named=True)}
    assert rows["card_rate"]["numerator_mismatches"] == reference.filter(pl.col("indicator") == "card_rate").height
    assert rows["good_rate"]["only_in_reference"] == 1
    assert mismatch_total(summary) == rows["card_rate"]["numerator_mismatches"] + 1


def test_demo_city_agrees(small_sqlite):
    """On the session's small demo city (conftest.SMALL_DEMO)."""
    data = load_dataset(small_sqlite)
    assert data.cases.height > 1000
    _assert_same(data)
