"""Alert lists (metrics/alerts.py): every declaration complete, and the one generic list function
reproducing each list on hand-made data (tests/factories.py)."""

from __future__ import annotations

import dataclasses

import pytest

from datasets.domain.periods import Period
from datasets.domain.vocabulary import Rules
from metrics import alerts
from metrics.compute import components
from metrics.registry import BY_ID
from tests.factories import at, dataset

OCT, SEP = Period("2024-10", "2024-10"), Period("2024-09", "2024-09")


@pytest.fixture(scope="module")
def data():
    """甲区 unless noted, default rules (red card: more than 1 working day over the legal limit;
    差评 rectified within 15 working days).

    Cases: K1 red card (legal 2, took 6 working days); K2 open and past its promised 2 days at the
    end of October; K3 open within its 20 days; K4 on time; K5 not accepted (不予受理) although its
    监察结果 says 红牌; K6 a red card of September; K7 乙区, open and overdue.
    Evaluations: V1 差评 rectified in time; V2 差评 not rectified; V3 非常满意; V4 差评 rectified after
    more than 15 working days; V5 乙区 差评 not rectified and still within its rectification period.
    """
    cases = [
        {"case_id": "K1", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 16), "legal_limit": 2.0,
         "promised_limit": 1.0, "item_code": "I1"},
        {"case_id": "K2", "accepted_at": at(2024, 10, 8), "status": "在办", "promised_limit": 2.0,
         "legal_limit": 60.0, "item_code": "I2", "department": "区人社局"},
        {"case_id": "K3", "accepted_at": at(2024, 10, 30), "status": "在办", "promised_limit": 20.0,
         "legal_limit": 60.0},
        {"case_id": "K4", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 9), "promised_limit": 1.0,
         "legal_limit": 5.0},
        {"case_id": "K5", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 9), "status": "不予受理",
         "supervision": "红牌", "promised_limit": 1.0, "legal_limit": 5.0},
        {"case_id": "K6", "accepted_at": at(2024, 9, 2), "completed_at": at(2024, 9, 20), "legal_limit": 2.0,
         "promised_limit": 1.0, "period": "2024-09"},
        {"case_id": "K7", "district": "乙区", "accepted_at": at(2024, 10, 8), "status": "在办", "promised_limit": 2.0,
         "legal_limit": 60.0},
    ]
    evaluations = [
        {"eval_id": "V1", "evaluated_at": at(2024, 10, 10), "rating": 1, "rectify_status": "已整改",
         "rectified_at": at(2024, 10, 14)},
        {"eval_id": "V2", "evaluated_at": at(2024, 10, 11), "rating": 2, "rectify_status": "未整改",
         "department": "区人社局", "item_code": "I2"},
        {"eval_id": "V3", "evaluated_at": at(2024, 10, 12), "rating": 5},
        {"eval_id": "V4", "evaluated_at": at(2024, 10, 8), "rating": 1, "rectify_status": "已整改",
         "rectified_at": at(2024, 11, 29)},
        {"eval_id": "V5", "district": "乙区", "evaluated_at": at(2024, 10, 15), "rating": 2, "rectify_status": "未整改"},
    ]
    return dataset(cases=cases, evaluations=evaluations)


@pytest.fixture(scope="module")
def detail(data) -> alerts.Detail:
    return alerts.build_detail(data, Rules())


def test_every_declaration_is_complete(detail):
    ids = [a.id for a in alerts.ALERT_LISTS]
    assert len(ids) == len(set(ids)) == len(alerts.LISTS)
    assert list(alerts.ALERTS) == [a.id for a in alerts.ALERT_LISTS if a.warning]
    for a in alerts.ALERT_LISTS:
        assert a.title and a.description.endswith("。") and a.unit in ("件", "条"), a.id
        assert a.source in alerts.SOURCES, a.id
        columns = getattr(detail, a.source).columns
        assert set(a.filter.meta.root_names()) <= set(columns), a.id  # reads only its source's columns
        assert a.indicator is None or a.indicator in BY_ID, a.id
        assert not a.complement or a.indicator is not None, a.id
    with pytest.raises(ValueError, match="incomplete"):
        dataclasses.replace(alerts.ALERT_LISTS[0], title="")
    with pytest.raises(ValueError, match="incomplete"):
        dataclasses.replace(alerts.ALERT_LISTS[0], source="hotline")


EXPECTED = [
    # list, period, districts, department, ids in the list (sorted by district, time, id)
    (alerts.RED_CARDS, OCT, None, None, ["K1"]),  # not K5 (not accepted), not K6 (September)
    (alerts.RED_CARDS, SEP, None, None, ["K6"]),
    (alerts.OVERDUE_OPEN, OCT, None, None, ["K7", "K2"]),  # not K3 (within its limit); 乙 sorts before 甲
    (alerts.OVERDUE_OPEN, OCT, ["甲区"], None, ["K2"]),
    (alerts.OVERDUE_OPEN, OCT, ["甲区"], "区市场监管局", []),
    # not V1 (rectified in time), not V5: 15 working days after 10-15 is 11-05, after October's as-of
    # date (10-31), so 整改期内; V2's deadline (10-31) is on it: due
    (alerts.BAD_LATE, OCT, None, None, ["V4", "V2"]),
    (alerts.BAD_LATE, OCT, ["甲区"], "区人社局", ["V2"]),
    (alerts.BAD_ALL, OCT, ["甲区"], None, ["V4", "V1", "V2"]),
    (alerts.BAD_ALL, SEP, None, None, []),
]


@pytest.mark.parametrize(("alert_id", "period", "districts", "department", "ids"), EXPECTED)
def test_the_generic_list_reproduces_each_list(detail, alert_id, period, districts, department, ids):
    frame = alerts.alert_list(detail, alert_id, period, districts, department)
    key = "办件编号" if alerts.LISTS[alert_id].source == alerts.CASES else "评价编号"
    assert frame[key].to_list() == ids
    # The cached alert rows hold every row a list can show.
    assert alerts.alert_list(alerts.alert_rows(detail), alert_id, period, districts, department).equals(frame)


def test_lists_of_the_same_source_have_the_same_columns(detail):
    for source in alerts.SOURCES:
        shapes = {tuple(alerts.alert_list(detail, a.id, OCT).columns) for a in alerts.ALERT_LISTS if a.source == source}
        assert len(shapes) == 1, source


def test_counts_from_the_indicators_match_the_lists(data, detail):
    comps = components(data)
    from_components = alerts.alert_counts_from_components(comps, OCT)
    assert from_components == {alerts.RED_CARDS: 1, alerts.BAD_LATE: 2}
    counted = alerts.alert_counts(detail, OCT)
    assert counted == {alerts.RED_CARDS: 1, alerts.OVERDUE_OPEN: 2, alerts.BAD_LATE: 2}
    # 乙区's only 差评 (V5) is within its rectification period: not late
    assert alerts.alert_counts_from_components(comps, OCT, ["乙区"]) == {alerts.RED_CARDS: 0, alerts.BAD_LATE: 0}


def test_an_unknown_list_is_refused(detail):
    with pytest.raises(ValueError, match="未知的提醒类型"):
        alerts.alert_list(detail, "nothing", OCT)
