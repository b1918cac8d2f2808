"""Every indicator on hand-computed data: numerator, denominator and value.

Calendar facts used below (State Council schedule): 2024-10-01..07 National Day holiday, 2024-10-12
(Saturday) a make-up workday; 2024-05-11 (Saturday) a make-up workday; 2024-06-10 Dragon Boat
Festival holiday.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from datasets.domain.periods import Period
from datasets.domain.vocabulary import Rules
from datasets.domain.workdays import CalendarError
from metrics.compute import aggregate, components
from tests.factories import at, dataset

OCT = Period("2024-10", "2024-10")


def result(data, period=OCT, rules=None) -> dict[str, tuple[float, float, float | None]]:
    long = aggregate(components(data, rules), period, by="district")
    return {r["indicator"]: (r["numerator"], r["denominator"], r["value"]) for r in long.iter_rows(named=True)}


def check(data, expected: dict[str, tuple[float, float, float | None]], period=OCT) -> None:
    got = result(data, period)
    for ind, (num, den, value) in expected.items():
        assert ind in got, f"{ind} missing"
        g_num, g_den, g_val = got[ind]
        assert (g_num, g_den) == pytest.approx((num, den)), ind
        if value is None:
            assert g_val is None, ind
        else:
            assert g_val == pytest.approx(value), ind


# --- A. online service ----------------------------------------------------------------------

ITEMS_4 = [
    # depth 1..4; 即办件 only the 4th; visits 0,1,2,None; materials 0,0,3,5; in_hall 是,是,否,None
    {"item_code": "I1", "online_depth": 1, "visits_required": 0, "materials_count": 0, "in_hall": True,
     "legal_limit": 20.0, "promised_limit": 5.0, "case_type": "承诺件"},
    {"item_code": "I2", "online_depth": 2, "visits_required": 1, "materials_count": 0, "in_hall": True,
     "legal_limit": 10.0, "promised_limit": 10.0, "case_type": "承诺件"},
    {"item_code": "I3", "online_depth": 3, "visits_required": 2, "materials_count": 3, "in_hall": False,
     "legal_limit": 0.0, "promised_limit": 0.0, "case_type": "承诺件"},
    {"item_code": "I4", "online_depth": 4, "visits_required": None, "materials_count": 5, "in_hall": None,
     "case_type": "即办件"},
]


def test_item_indicators_hand_computed():
    data = dataset(
        items=ITEMS_4,
        evaluations=[
            {"item_code": "I1", "evaluated_at": at(2024, 10, 9), "rating": 5},
            {"item_code": "I1", "evaluated_at": at(2024, 10, 10), "rating": 4},
            {"item_code": "I2", "evaluated_at": at(2024, 10, 11), "rating": 5},
            {"item_code": "I3", "evaluated_at": at(2024, 9, 11), "rating": 5},  # September: not October
        ],
    )
    check(
        data,
        {
            "online_available_rate": (3, 4, 0.75),
            "depth_3plus_rate": (2, 4, 0.5),
            "full_online_rate": (1, 4, 0.25),
            "instant_item_rate": (1, 4, 0.25),
            "zero_visit_rate": (1, 4, 0.25),
            "at_most_once_rate": (2, 4, 0.5),
            "zero_material_rate": (2, 4, 0.5),
            "hall_entry_rate": (2, 4, 0.5),
            # items with legal > 0: I1 (20, 5), I2 (10, 10): (30 − 15) / 30
            "commitment_compression": (15, 30, 0.5),
            # distinct items evaluated in October: I1, I2
            "eval_item_coverage": (2, 4, 0.5),
        },
    )


def test_newest_catalog_on_or_before_month_is_used():
    data = dataset(
        items=[
            {"item_code": "I1", "online_depth": 1, "period": "2024-01"},
            {"item_code": "I2", "online_depth": 1, "period": "2024-01"},
            {"item_code": "I1", "online_depth": 4, "period": "2024-10", "batch_id": 2},
            {"item_code": "I1", "online_depth": 4, "period": "2024-11", "batch_id": 3},
            {"item_code": "I2", "online_depth": 4, "period": "2024-11", "batch_id": 3},
            {"item_code": "I3", "online_depth": 4, "period": "2024-11", "batch_id": 3},
        ],
        cases=[{"accepted_at": at(2024, 11, 4), "completed_at": at(2024, 11, 4), "period": "2024-11"}],
    )
    check(data, {"full_online_rate": (0, 2, 0.0)}, Period("2024-09", "2024-09"))
    check(data, {"full_online_rate": (1, 1, 1.0)}, OCT)  # October catalog: only I1
    check(data, {"full_online_rate": (3, 3, 1.0)}, Period("2024-11", "2024-11"))
    # A stock: a range is measured on the catalog in force in its last month (Nov: 3/3), never item-months
    check(data, {"full_online_rate": (3, 3, 1.0)}, Period("2024-09", "2024-11"))
    check(data, {"full_online_rate": (1, 1, 1.0)}, Period("2024-09", "2024-10"))


def test_online_case_rate_and_completion_rate():
    data = dataset(
        cases=[
            {"channel": "网上申请", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9)},
            {"channel": "移动端", "accepted_at": at(2024, 10, 8), "status": "在办"},
            {"channel": "窗口", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 9)},
            {"channel": "自助终端", "accepted_at": at(2024, 10, 9), "status": "退件"},
            # not accepted: neither numerator nor denominator
            {"channel": "网上申请", "accepted_at": at(2024, 10, 9), "status": "不予受理"},
            # accepted in September, completed in October: an October completed case only
            {"channel": "网上申请", "accepted_at": at(2024, 9, 27), "completed_at": at(2024, 10, 8)},
        ]
    )
    check(data, {"online_case_rate": (2, 4, 0.5), "completion_rate": (2, 4, 0.5)})
    check(data, {"online_case_rate": (1, 1, 1.0), "completion_rate": (1, 1, 1.0)}, Period("2024-09", "2024-09"))


# --- B. speed -------------------------------------------------------------------------------

def test_elapsed_working_days_across_national_day_and_make_up_saturday():
    data = dataset(
        cases=[
            # 09-30 → 10-08: 10-01..07 are holidays, 10-08 is a workday → 1 working day
            {"accepted_at": at(2024, 9, 30), "completed_at": at(2024, 10, 8, 16), "legal_limit": 5.0,
             "promised_limit": 1.0},
            # Fri 10-11 → Mon 10-14: Sat 10-12 is a make-up workday, Sun off, Mon → 2 working days
            {"accepted_at": at(2024, 10, 11), "completed_at": at(2024, 10, 14), "legal_limit": 5.0,
             "promised_limit": 2.0},
        ]
    )
    check(
        data,
        {
            "avg_handling_days": (3, 2, 1.5),
            "statutory_speedup": (10 - 3, 10, 0.7),
            "promise_speedup": (3 - 3, 3, 0.0),
            "on_time_rate": (2, 2, 1.0),
        },
    )


def test_instant_cases_with_promised_limit_zero():
    data = dataset(
        cases=[
            {"case_type": "即办件", "accepted_at": at(2024, 10, 14, 9), "completed_at": at(2024, 10, 14, 17),
             "legal_limit": 1.0, "promised_limit": 0.0},
            {"case_type": "即办件", "accepted_at": at(2024, 10, 14, 9), "completed_at": at(2024, 10, 15, 9),
             "legal_limit": 1.0, "promised_limit": 0.0},
            {"case_type": "即办件", "accepted_at": at(2024, 10, 14, 9), "completed_at": at(2024, 10, 16, 9),
             "legal_limit": 1.0, "promised_limit": 0.0},
        ]
    )
    check(
        data,
        {
            # same day on time; 1 and 2 working days late
            "on_time_rate": (1, 3, 1 / 3),
            # promised 0 for all: the promise speed-up has an empty denominator → null, not 0
            "promise_speedup": (0, 0, None),
            # elapsed 0,1,2 vs legal 1 each: (3 − 3) / 3
            "statutory_speedup": (0, 3, 0.0),
            # yellow only when elapsed exceeds 0 by more than 1 (the third); red needs > legal + 1
            "card_rate": (1, 3, 1 / 3),
            "red_card_rate": (0, 3, 0.0),
        },
    )


def test_special_procedure_days_are_subtracted_never_below_zero():
    data = dataset(
        cases=[
            # Mon 05-06 → Fri 05-17: 05-07..10 (4), Sat 05-11 make-up (1), 05-13..17 (5) = 10; minus 4 → 6
            {"accepted_at": at(2024, 5, 6), "completed_at": at(2024, 5, 17), "suspended_days": 4.0,
             "legal_limit": 10.0, "promised_limit": 5.0, "period": "2024-05"},
            # 1 working day, 3 suspended → 0, not −2
            {"accepted_at": at(2024, 5, 6), "completed_at": at(2024, 5, 7), "suspended_days": 3.0,
             "legal_limit": 10.0, "promised_limit": 5.0, "period": "2024-05"},
        ]
    )
    check(
        data,
        {
            "avg_handling_days": (6, 2, 3.0),
            "on_time_rate": (1, 2, 0.5),
            "statutory_speedup": (20 - 6, 20, 0.7),
            "card_rate": (0, 2, 0.0),  # 6 − 5 = 1 is not more than 1
        },
        Period("2024-05", "2024-05"),
    )


def test_natural_day_limits_count_calendar_days():
    data = dataset(
        cases=[
            # Mon 06-03 → Fri 06-14: 11 calendar days; 8 working days (06-10 holiday)
            {"accepted_at": at(2024, 6, 3), "completed_at": at(2024, 6, 14), "legal_limit": 10.0,
             "legal_limit_unit": "自然日", "promised_limit": 8.0, "promised_limit_unit": "工作日",
             "period": "2024-06"},
        ]
    )
    check(
        data,
        {
            "statutory_speedup": (10 - 11, 10, -0.1),  # negative values are kept
            "promise_speedup": (0, 8, 0.0),
            "on_time_rate": (1, 1, 1.0),
            "avg_handling_days": (8, 1, 8.0),  # average handling time is always in working days
            "red_card_rate": (0, 1, 0.0),  # 11 − 10 = 1 is not more than 1
        },
        Period("2024-06", "2024-06"),
    )


def test_open_cases_run_to_end_of_export_month_and_supervision_column_wins():
    data = dataset(
        cases=[
            # open, accepted 10-08, export of 2024-10: 18 working days to 10-31 > legal 10 + 1 → red
            {"accepted_at": at(2024, 10, 8), "status": "在办", "legal_limit": 10.0, "promised_limit": 5.0},
            # open, 18 working days vs promised 16 → yellow only (legal 20)
            {"accepted_at": at(2024, 10, 8), "status": "在办", "legal_limit": 20.0, "promised_limit": 16.0},
            # far over its limits but the card was revoked in the supervision system → no card
            {"accepted_at": at(2024, 10, 8), "status": "在办", "legal_limit": 1.0, "promised_limit": 1.0,
             "supervision": "红牌（已撤销）"},
            # within limits but the supervision system gave a yellow card → counts
            {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9), "legal_limit": 10.0,
             "promised_limit": 5.0, "supervision": "黄牌"},
            # warning is not a card
            {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9), "legal_limit": 10.0,
             "promised_limit": 5.0, "supervision": "预警"},
        ]
    )
    check(data, {"card_rate": (3, 5, 0.6), "red_card_rate": (1, 5, 0.2), "completion_rate": (2, 5, 0.4)})


DEC26 = Period("2026-12", "2026-12")
EARLY = dt.date(2026, 12, 7)  # a December export imported on 12-07: its 数据截止日


# An open case's 用时 runs to its as-of date, never beyond. December 2026 has no holiday: 12-02 → 12-07
# is 3 working days (12-03, 12-04, 12-07), 12-01 → 12-07 is 4, 12-02 → 12-31 is 21.
# (case fields, as-of date, elapsed working days, overdue open (超期在办), card, red card)
OPEN_CASES = [
    # the case: accepted 12-02, 5-day promise, listed overdue on 12-07 when counted to 12-31
    ({"accepted_at": at(2026, 12, 2), "promised_limit": 5.0, "legal_limit": 10.0}, EARLY, 3, False, False, False),
    ({"accepted_at": at(2026, 12, 2), "promised_limit": 5.0, "legal_limit": 10.0}, None, 21, True, True, True),
    # deadline 12-03 is before 12-07: overdue, 4 − 2 > 1 → yellow
    ({"accepted_at": at(2026, 12, 1), "promised_limit": 2.0, "legal_limit": 10.0}, EARLY, 4, True, True, False),
    # deadline on the as-of date itself (4 working days by 12-07): not yet late
    ({"accepted_at": at(2026, 12, 1), "promised_limit": 4.0, "legal_limit": 10.0}, EARLY, 4, False, False, False),
    # a completed case runs to its end time whatever the as-of date
    ({"accepted_at": at(2026, 12, 1), "completed_at": at(2026, 12, 4), "status": "已办结", "promised_limit": 1.0},
     EARLY, 3, False, True, False),
]


@pytest.mark.parametrize(("case", "as_of", "elapsed", "overdue", "card", "red"), OPEN_CASES)
def test_open_cases_run_to_their_as_of_date(case, as_of, elapsed, overdue, card, red):
    from metrics.alerts import OVERDUE_OPEN, alert_list, build_detail

    data = dataset(cases=[{"status": "在办", **case, "period": "2026-12", "as_of": as_of}])
    detail = build_detail(data, Rules())
    assert detail.cases["elapsed_wd"].to_list() == [elapsed]
    assert alert_list(detail, OVERDUE_OPEN, DEC26).height == int(overdue)
    got = result(data, DEC26)
    assert got["card_rate"][:2] == (int(card), 1) and got["red_card_rate"][:2] == (int(red), 1)


# Whether a 差评 is due (应整改) at its record's as-of date: 15 working days after 10-08 is 10-28, after
# 10-25 is 11-15 (2024). (evaluation fields, export period, as-of date, due, rectified on time)
BAD = [
    # deadline 10-28 on or before 10-31: due, not rectified
    ({"rating": 1, "evaluated_at": at(2024, 10, 8), "rectify_status": "整改中"}, "2024-10", None, True, False),
    # deadline 11-15 after 10-31: 整改期内
    ({"rating": 2, "evaluated_at": at(2024, 10, 25), "rectify_status": "整改中"}, "2024-10", None, False, False),
    # rectified: due whatever its deadline, and on time (3 working days)
    ({"rating": 2, "evaluated_at": at(2024, 10, 25), "rectify_status": "已整改", "rectified_at": at(2024, 10, 30)},
     "2024-10", None, True, True),
    # the same October review counted from November's export (as of 11-30): due by then
    ({"rating": 2, "evaluated_at": at(2024, 10, 25), "rectify_status": "整改中"}, "2024-11", None, True, False),
    # an early October export (as of 10-20): the 10-08 review is not due yet (deadline 10-28)
    ({"rating": 1, "evaluated_at": at(2024, 10, 8)}, "2024-10", dt.date(2024, 10, 20), False, False),
    # deadline exactly on the as-of date: due
    ({"rating": 1, "evaluated_at": at(2024, 10, 8)}, "2024-10", dt.date(2024, 10, 28), True, False),
]


@pytest.mark.parametrize(("evaluation", "period", "as_of", "due", "on_time"), BAD)
def test_bad_evaluations_count_in_the_rectification_rates_once_due(evaluation, period, as_of, due, on_time):
    data = dataset(evaluations=[{**evaluation, "period": period, "as_of": as_of}])
    long = aggregate(components(data), OCT)
    rows = {r["indicator"]: r for r in long.iter_rows(named=True)}
    rectified = evaluation.get("rectify_status") == "已整改"
    assert (rows["bad_rectified_rate"]["numerator"], rows["bad_rectified_rate"]["denominator"]) == (rectified, due)
    assert (rows["bad_rectified_on_time_rate"]["numerator"],
            rows["bad_rectified_on_time_rate"]["denominator"]) == (on_time, due)
    # 整改期内: beside both rates, in neither of their parts; every 差评 is still in 差评率
    assert rows["bad_rectified_rate"]["aside"] == rows["bad_rectified_on_time_rate"]["aside"] == (not due)
    assert rows["bad_rate"]["numerator"] == 1


def test_due_and_pending_bad_evaluations_add_up():
    # The rows of BAD in one October: 6 差评, 4 due (rows 1, 3, 4, 6), 2 整改期内, 1 rectified (on time).
    data = dataset(evaluations=[{**e, "period": p, "as_of": a, "batch_id": n} for n, (e, p, a, _, _) in enumerate(BAD)])
    check(data, {"bad_rectified_rate": (1, 4, 0.25), "bad_rectified_on_time_rate": (1, 4, 0.25),
                 "bad_rate": (6, 6, 1.0)})
    from metrics.alerts import BAD_LATE, alert_list, build_detail

    # 差评未按时整改 is the due 差评 not rectified on time: 4 − 1
    assert alert_list(build_detail(data, Rules()), BAD_LATE, OCT).height == 3


def test_a_catalog_stays_in_force_after_the_last_month_with_data():
    # One catalog, for 2026-10 alone; reported over 2026-10..2026-12 (and over December alone).
    data = dataset(items=[
        {"item_code": "I1", "online_depth": 2, "legal_limit": 20.0, "promised_limit": 10.0, "period": "2026-10"},
        {"item_code": "I2", "online_depth": 3, "legal_limit": 10.0, "promised_limit": 0.0, "period": "2026-10"},
    ])
    for period in (Period("2026-10", "2026-12"), DEC26):
        check(data, {"online_available_rate": (2, 2, 1.0), "commitment_compression": (20, 30, 20 / 30)}, period)


def test_limits_missing_on_the_case_come_from_the_catalog_in_force():
    data = dataset(
        items=[
            {"item_code": "I1", "legal_limit": 20.0, "promised_limit": 5.0, "period": "2024-09"},
            # a newer catalog applies from November only
            {"item_code": "I1", "legal_limit": 20.0, "promised_limit": 1.0, "period": "2024-11", "batch_id": 2},
        ],
        cases=[
            # Mon 10-14 → Mon 10-28: 10 working days
            {"accepted_at": at(2024, 10, 14), "completed_at": at(2024, 10, 28)},
            # the case's own limits win over the catalog
            {"accepted_at": at(2024, 10, 14), "completed_at": at(2024, 10, 28), "legal_limit": 12.0,
             "promised_limit": 12.0},
        ],
    )
    check(
        data,
        {
            "statutory_speedup": ((20 - 10) + (12 - 10), 32, 12 / 32),
            "promise_speedup": ((5 - 10) + (12 - 10), 17, -3 / 17),
            "on_time_rate": (1, 2, 0.5),
            "card_rate": (1, 2, 0.5),  # 10 − 5 > 1: yellow
        },
    )


def test_completed_cases_belong_to_their_completion_month():
    data = dataset(
        cases=[{"accepted_at": at(2024, 9, 30), "completed_at": at(2024, 10, 8), "legal_limit": 5.0}]
    )
    september = result(data, Period("2024-09", "2024-09"))
    assert september["avg_handling_days"] == (0, 0, None)  # accepted in September, completed in October
    assert september["completion_rate"] == (1, 1, 1.0)  # volume indicators follow the accepted month
    check(data, {"avg_handling_days": (1, 1, 1.0)})


# --- D. evaluations -------------------------------------------------------------------------

EVALS = [
    {"rating": 5, "active": True, "evaluated_at": at(2024, 10, 8)},
    {"rating": 4, "active": True, "evaluated_at": at(2024, 10, 8)},
    {"rating": 3, "active": False, "evaluated_at": at(2024, 10, 8)},
    # 差评 rectified after 10 working days (10-14 → 10-28): on time
    {"rating": 2, "active": True, "evaluated_at": at(2024, 10, 14), "rectify_status": "已整改",
     "rectified_at": at(2024, 10, 28)},
    # 差评 verified as untrue after 20 working days (10-14 → 11-11): rectified, not on time
    {"rating": 1, "active": False, "evaluated_at": at(2024, 10, 14), "rectify_status": "核实不属实",
     "rectified_at": at(2024, 11, 11)},
]


def test_evaluation_indicators_hand_computed():
    data = dataset(
        evaluations=EVALS,
        cases=[
            {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9)},
            {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9)},
            {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9)},
            {"accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9)},
            {"accepted_at": at(2024, 10, 8), "status": "在办"},
        ],
    )
    check(
        data,
        {
            "active_eval_rate": (3, 5, 0.6),
            "actual_eval_rate": (3, 4, 0.75),  # 主动评价 ÷ completed cases
            "good_rate": (3, 5, 0.6),
            "bad_rate": (2, 5, 0.4),
            "satisfaction_score": ((5 + 4 + 3 + 2 + 1) * 20, 5, 60.0),
            "bad_rectified_rate": (2, 2, 1.0),
            "bad_rectified_on_time_rate": (1, 2, 0.5),
        },
    )


def test_rectify_deadline_is_a_setting():
    data = dataset(evaluations=EVALS)
    long = aggregate(components(data, Rules(rectify_days=20)), OCT)
    row = long.filter(indicator="bad_rectified_on_time_rate").row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (2, 2)


def test_unrectified_bad_evaluations_and_empty_denominators():
    data = dataset(
        evaluations=[
            {"rating": 1, "evaluated_at": at(2024, 10, 8), "rectify_status": "整改中"},
            {"rating": 2, "evaluated_at": at(2024, 10, 8)},
            {"rating": 5, "evaluated_at": at(2024, 10, 8)},
        ]
    )
    got = result(data)
    assert got["bad_rectified_rate"] == (0, 2, 0.0)
    # no completed cases: actual evaluation rate has an empty denominator → null
    assert got["actual_eval_rate"][1] == 0 and got["actual_eval_rate"][2] is None


# --- E. hotline -----------------------------------------------------------------------------

def test_hotline_indicators_hand_computed():
    data = dataset(
        hotline=[
            {"received_at": at(2024, 10, 8), "due_at": at(2024, 10, 10, 18), "closed_at": at(2024, 10, 10, 18),
             "satisfaction": "满意"},
            {"received_at": at(2024, 10, 8), "due_at": at(2024, 10, 10, 18), "closed_at": at(2024, 10, 11, 9),
             "satisfaction": "不满意"},
            {"received_at": at(2024, 10, 8), "due_at": at(2024, 10, 10, 18), "satisfaction": "未回访"},
            {"received_at": at(2024, 10, 9), "closed_at": at(2024, 10, 9, 15), "satisfaction": "基本满意"},
            {"received_at": at(2024, 9, 9), "closed_at": at(2024, 10, 9, 15)},  # September ticket
        ]
    )
    check(
        data,
        {
            "hotline_completion_rate": (3, 4, 0.75),
            "hotline_on_time_rate": (1, 3, 1 / 3),  # the one without a due time is not on time
            "hotline_satisfaction_rate": (2, 3, 2 / 3),
        },
    )


# --- empty data and calendar coverage ----------------------------------------------------------

def test_empty_dataset_gives_no_rows():
    assert components(dataset()).height == 0


def test_year_without_holiday_data_is_an_error_naming_the_year():
    data = dataset(cases=[{"accepted_at": at(2031, 3, 3), "completed_at": at(2031, 3, 4), "period": "2031-03"}])
    with pytest.raises(CalendarError, match="2031"):
        components(data)


# --- counting conventions clarified 2026-11-30 ------------------------------------------------------


def test_withdrawn_and_returned_cases_are_ended_not_open():
    # Period 2024-10. Legal 2, promised 1 (working days). Grace 1.
    data = dataset(
        cases=[
            # 退件 on 10-09 after 1 working day: within both limits → no card. Counted as open it would run
            # to 10-31 (18 working days after 10-08, 10-12 a make-up workday) and get a red card.
            {"case_id": "C1", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9), "status": "退件",
             "legal_limit": 2.0, "promised_limit": 1.0},
            # 撤件 on 10-11 after 3 working days: 3 − 1 = 2 > 1 → yellow; 3 − 2 = 1 → not red
            {"case_id": "C2", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 11), "status": "撤件",
             "legal_limit": 2.0, "promised_limit": 1.0},
            # 在办 without an end time: runs to 10-31 → 18 working days → red
            {"case_id": "C3", "accepted_at": at(2024, 10, 8), "status": "在办",
             "legal_limit": 2.0, "promised_limit": 1.0},
            # 已办结 on 10-09: the only completed case (1 working day)
            {"case_id": "C4", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 9), "status": "已办结",
             "legal_limit": 2.0, "promised_limit": 1.0},
        ]
    )
    check(data, {
        "card_rate": (2, 4, 0.5),
        "red_card_rate": (1, 4, 0.25),
        "completion_rate": (1, 4, 0.25),  # 退件/撤件 are not completed
        "avg_handling_days": (1, 1, 1.0),  # only the completed case
        "on_time_rate": (1, 1, 1.0),
    })


def test_item_stocks_and_coverage_over_a_range():
    items = [{"item_code": c, "online_depth": 4 if c == "I1" else 2, "period": "2024-09"} for c in ("I1", "I2", "I3")]
    data = dataset(
        items=items,
        evaluations=[
            {"item_code": "I1", "evaluated_at": at(2024, 9, 10), "rating": 5, "period": "2024-09"},
            {"item_code": "I1", "evaluated_at": at(2024, 10, 10), "rating": 5},
            {"item_code": "I2", "evaluated_at": at(2024, 10, 11), "rating": 4},
            {"item_code": "I9", "evaluated_at": at(2024, 10, 11), "rating": 4},  # not in the catalog
        ],
    )
    sep_oct = Period("2024-09", "2024-10")
    check(data, {"eval_item_coverage": (1, 3, 1 / 3)}, Period("2024-09", "2024-09"))
    check(data, {"eval_item_coverage": (2, 3, 2 / 3)}, OCT)
    # Distinct items over the range (I1, I2 of 3), never item-months (3/6)
    check(data, {"eval_item_coverage": (2, 3, 2 / 3), "full_online_rate": (1, 3, 1 / 3),
                 "online_available_rate": (3, 3, 1.0)}, sep_oct)


def test_coverage_over_a_range_uses_the_last_months_catalog():
    data = dataset(
        items=[
            {"item_code": "I1", "period": "2024-09"},
            {"item_code": "I2", "period": "2024-09"},
            # October's catalog drops I1 and adds I3
            {"item_code": "I2", "period": "2024-10", "batch_id": 2},
            {"item_code": "I3", "period": "2024-10", "batch_id": 2},
        ],
        evaluations=[
            {"item_code": "I1", "evaluated_at": at(2024, 9, 10), "rating": 5, "period": "2024-09"},
            {"item_code": "I3", "evaluated_at": at(2024, 9, 10), "rating": 5, "period": "2024-09"},
        ],
    )
    # October's catalog (I2, I3); I3 was evaluated in September, inside the range
    check(data, {"eval_item_coverage": (1, 2, 0.5)}, Period("2024-09", "2024-10"))
    check(data, {"eval_item_coverage": (0, 2, 0.0)}, OCT)


def test_every_table_has_the_full_grid():
    data = dataset(hotline=[{"received_at": at(2024, 10, 9), "closed_at": at(2024, 10, 10)}])
    long = aggregate(components(data), OCT, by="district", districts=["甲区", "乙区"])
    assert long.height == 2 * 28
    empty = long.filter(pl.col("district") == "乙区")
    assert empty["numerator"].sum() == 0 and empty["denominator"].sum() == 0
    assert empty["value"].null_count() == 28
    assert aggregate(components(data), OCT, by="city").height == 28


def test_catalog_fallback_uses_the_catalog_in_force_not_an_older_row():
    data = dataset(
        items=[
            {"item_code": "I1", "legal_limit": 1.0, "promised_limit": 1.0, "period": "2024-08"},
            # September's catalog no longer lists I1
            {"item_code": "I2", "legal_limit": 5.0, "period": "2024-09", "batch_id": 2},
        ],
        cases=[{"item_code": "I1", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 18)}],
    )
    # No limits: not counted in the speed-up denominators, not on time, no card (8 working days)
    check(data, {"statutory_speedup": (0, 0, None), "on_time_rate": (0, 1, 0.0), "card_rate": (0, 1, 0.0)})


def test_catalog_limits_are_scattered_onto_the_cases_that_lack_their_own() -> None:
    """prepare._with_catalog keeps the cases' order: the catalog in force in the accepted month (none
    before its first version, none without an accepted time) fills only the cases without a limit."""
    from metrics.prepare import _with_catalog

    unit = {"legal_limit_unit": pl.String, "promised_limit_unit": pl.String}
    cases = pl.DataFrame({
        "district": ["A", "A", "A", "A", "B"],
        "item_code": ["x", "y", "y", "y", "y"],
        "accepted_at": [dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 5), dt.datetime(2025, 11, 5), None,
                        dt.datetime(2026, 1, 5)],
        "legal_limit": [5.0, None, None, None, None], "promised_limit": [3.0, None, 2.0, None, None],
        "legal_limit_unit": [None] * 5, "promised_limit_unit": [None] * 5,
    }, schema_overrides=unit)
    items = pl.DataFrame({"district": ["A", "A"], "item_code": ["y", "y"], "period": ["2025-12", "2026-02"],
                          "legal_limit": [9.0, 7.0], "legal_limit_unit": ["工作日", "工作日"],
                          "promised_limit": [4.0, 1.0], "promised_limit_unit": ["自然日", "自然日"]})
    got = _with_catalog(cases, items).collect()
    assert got.select(cases.columns).equals(cases)
    assert got["cat_legal"].to_list() == [None, 9.0, None, None, None]
    assert got["cat_promised_unit"].to_list() == [None, "自然日", None, None, None]
    assert _with_catalog(cases.filter(pl.col("legal_limit").is_not_null()), items).collect()["cat_legal"].to_list() == [None]


@pytest.mark.parametrize("when", [
    dt.datetime(2026, 1, 31, 23, 59, 59), dt.datetime(2026, 12, 1), dt.datetime(2004, 2, 29, 12), dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31), None,
])
def test_month_of_a_date_is_its_year_and_month(when) -> None:
    """prepare.month_text looks the "YYYY-MM" up by month number: the same text as strftime, null for null."""
    from metrics.prepare import month_text

    frame = pl.DataFrame({"t": [when]}, schema={"t": pl.Datetime("us")})
    got = frame.lazy().select(month_text(pl.col("t"))).collect().item()
    assert got == (None if when is None else f"{when.year:04d}-{when.month:02d}")


def test_sums_are_grouped_by_month_number_and_written_as_text() -> None:
    """compute.summed: the source frames carry a month number (prepare.month_number); the sums carry
    YYYY-MM, and a null ``since`` where the source has none (a null month stays null)."""
    from metrics.compute import summed
    from metrics.prepare import month_number

    rows = pl.DataFrame({
        "district": ["甲区"] * 4, "department": ["局"] * 4,
        "t": [dt.datetime(2025, 12, 31), dt.datetime(2025, 12, 1), dt.datetime(2026, 1, 1), None],
        "n": [1, 2, 4, 8],
    }).with_columns(month_number(pl.col("t")).alias("month"))
    assert rows["month"].to_list() == [2025 * 12 + 12, 2025 * 12 + 12, 2026 * 12 + 1, None]
    got = summed(rows, ["district", "department", "month", "since"], [pl.col("n").sum()]).collect()
    assert got.schema["month"] == pl.String and got.schema["since"] == pl.String
    assert sorted(got.select("month", "since", "n").rows(), key=str) == [
        ("2025-12", None, 3), ("2026-01", None, 4), (None, None, 8)]
    with_since = rows.with_columns(pl.lit("2025-11").alias("since"))
    assert summed(with_since, ["district", "month", "since"], [pl.col("n").sum()]).collect()["since"].unique().to_list() == [
        "2025-11"]
