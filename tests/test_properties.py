"""Invariants of the indicator computation, on generated data (hypothesis)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.schema import CASE_STATUSES, CHANNELS, HOTLINE_SATISFACTION, RECTIFY_STATUSES, SUPERVISION
from metrics.compute import aggregate, components
from metrics.prepare import Dataset
from metrics.registry import BY_ID, PERCENT
from tests.factories import dataset

DISTRICTS = ["甲区", "乙区", "丙县"]
DEPTS = ["区市场监管局", "区人社局"]
BASE = dt.datetime(2024, 8, 1, 9)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _when(day: int, hour: int = 0) -> dt.datetime:
    return BASE + dt.timedelta(days=day, hours=hour)


@st.composite
def cases(draw):
    day = draw(st.integers(0, 120))
    status = draw(st.sampled_from(CASE_STATUSES))
    legal = draw(st.none() | st.integers(0, 30).map(float))
    promised = None if legal is None else draw(st.none() | st.integers(0, int(legal)).map(float))
    completed = _when(day + draw(st.integers(0, 40)), 5) if status == "已办结" else None
    return {
        "district": draw(st.sampled_from(DISTRICTS)),
        "department": draw(st.sampled_from(DEPTS)),
        "item_code": draw(st.sampled_from(["I1", "I2", "I3"])),
        "channel": draw(st.sampled_from(CHANNELS)),
        "status": status,
        "accepted_at": _when(day),
        "completed_at": completed,
        "legal_limit": legal,
        "legal_limit_unit": draw(st.sampled_from([None, "工作日", "自然日"])),
        "promised_limit": promised,
        "suspended_days": draw(st.none() | st.integers(0, 5).map(float)),
        "supervision": draw(st.none() | st.sampled_from(SUPERVISION)),
        "period": (completed or _when(day)).strftime("%Y-%m"),
    }


@st.composite
def evaluations(draw):
    day = draw(st.integers(0, 120))
    rating = draw(st.integers(1, 5))
    return {
        "district": draw(st.sampled_from(DISTRICTS)),
        "department": draw(st.sampled_from(DEPTS)),
        "item_code": draw(st.sampled_from(["I1", "I2", "I3", "I9"])),
        "rating": rating,
        "active": draw(st.booleans()),
        "evaluated_at": _when(day),
        "rectify_status": draw(st.sampled_from(RECTIFY_STATUSES)) if rating <= 2 else None,
        "rectified_at": _when(day + draw(st.integers(0, 40))) if rating <= 2 and draw(st.booleans()) else None,
        "period": _when(day).strftime("%Y-%m"),
    }


@st.composite
def tickets(draw):
    day = draw(st.integers(0, 120))
    return {
        "district": draw(st.sampled_from(DISTRICTS)),
        "received_at": _when(day),
        "due_at": draw(st.none() | st.just(_when(day + 5))),
        "closed_at": draw(st.none() | st.integers(0, 10).map(lambda d: _when(day + d, 3))),
        "satisfaction": draw(st.none() | st.sampled_from(HOTLINE_SATISFACTION)),
        "period": _when(day).strftime("%Y-%m"),
    }


@st.composite
def items(draw):
    out = []
    for district in DISTRICTS:
        for code in ["I1", "I2", "I3"]:
            legal = draw(st.none() | st.integers(0, 30).map(float))
            out.append({
                "district": district,
                "item_code": code,
                "department": draw(st.sampled_from(DEPTS)),
                "online_depth": draw(st.integers(1, 4)),
                "legal_limit": legal,
                "promised_limit": None if legal is None else draw(st.integers(0, int(legal)).map(float)),
                "visits_required": draw(st.none() | st.integers(0, 3)),
                "materials_count": draw(st.none() | st.integers(0, 5)),
                "in_hall": draw(st.none() | st.booleans()),
                "case_type": draw(st.sampled_from([None, "即办件", "承诺件"])),
                "period": draw(st.sampled_from(["2024-08", "2024-09"])),
            })
    return out


DATA = st.tuples(
    st.lists(cases(), max_size=40),
    st.lists(evaluations(), max_size=20),
    st.lists(tickets(), max_size=15),
    items(),
)


def _unique_ids(rows: list[dict], field: str, prefix: str) -> list[dict]:
    return [{**r, field: f"{prefix}{n}"} for n, r in enumerate(rows)]


def _build(c, e, h, i) -> Dataset:
    return dataset(
        cases=_unique_ids(c, "case_id", "C"),
        evaluations=_unique_ids(e, "eval_id", "E"),
        hotline=_unique_ids(h, "ticket_id", "T"),
        items=i,
    )


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["district", "department", "month", "indicator", "since"], nulls_last=True)


def _split(data: Dataset, predicate_by_kind) -> list[Dataset]:
    parts = []
    for keep in predicate_by_kind:
        parts.append(Dataset(*(getattr(data, k).filter(keep(k)) for k in ("cases", "items", "evaluations", "hotline"))))
    return parts


@SETTINGS
@given(DATA)
def test_splitting_by_district_and_rolling_up_gives_identical_components(data_rows):
    data = _build(*data_rows)
    until = data.months()[-1]
    whole = components(data, until=until)
    parts = [
        components(Dataset(*(getattr(data, k).filter(pl.col("district") == d) for k in
                             ("cases", "items", "evaluations", "hotline"))), until=until)
        for d in DISTRICTS
    ]
    rolled = pl.concat(parts)
    assert _sorted(rolled).equals(_sorted(whole))
    # and the city value is the ratio of the summed districts
    city = aggregate(whole, by="city")
    by_district = aggregate(whole, by="district").group_by("indicator").agg(pl.col("numerator", "denominator").sum())
    joined = city.join(by_district, on="indicator", suffix="_d")
    assert (joined["numerator"] - joined["numerator_d"]).abs().max() < 1e-6 if joined.height else True
    assert (joined["denominator"] - joined["denominator_d"]).abs().max() < 1e-6 if joined.height else True


@SETTINGS
@given(DATA)
def test_splitting_an_upload_by_month_gives_identical_components(data_rows):
    c, e, h, _ = data_rows
    data = _build(c, e, h, [])
    months = sorted(set(data.cases["period"]) | set(data.evaluations["period"]) | set(data.hotline["period"]))
    whole = components(data)
    parts = [
        components(Dataset(*(getattr(data, k).filter(pl.col("period") == m) for k in
                             ("cases", "items", "evaluations", "hotline"))))
        for m in months
    ]
    rolled = (
        pl.concat(parts).group_by(["district", "department", "month", "since", "indicator"])
        .agg(pl.col("numerator").sum(), pl.col("denominator").sum())
        if parts else whole
    )
    assert _sorted(rolled).select(whole.columns).equals(_sorted(whole))


@SETTINGS
@given(DATA, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(data_rows, rnd):
    c, e, h, i = data_rows
    c, e, h = _unique_ids(c, "case_id", "C"), _unique_ids(e, "eval_id", "E"), _unique_ids(h, "ticket_id", "T")
    shuffled = [list(x) for x in (c, e, h, i)]
    for x in shuffled:
        rnd.shuffle(x)
    a = components(dataset(cases=c, evaluations=e, hotline=h, items=i))
    b = components(dataset(cases=shuffled[0], evaluations=shuffled[1], hotline=shuffled[2], items=shuffled[3]))
    assert _sorted(a).equals(_sorted(b))


BOUNDS = {"statutory_speedup": (None, 1.0), "promise_speedup": (None, 1.0), "commitment_compression": (0.0, 1.0),
          "satisfaction_score": (20.0, 100.0), "avg_handling_days": (0.0, None),
          # 主动评价 ÷ completed cases: two sources, so it is not bounded by 1
          "actual_eval_rate": (0.0, None)}


@SETTINGS
@given(DATA)
def test_rates_lie_within_their_bounds(data_rows):
    long = aggregate(components(_build(*data_rows)), by="month")
    for row in long.filter(pl.col("denominator") > 0).iter_rows(named=True):
        ind = BY_ID[row["indicator"]]
        low, high = BOUNDS.get(ind.id, (0.0, 1.0) if ind.unit == PERCENT else (None, None))
        if low is not None:
            assert row["value"] >= low - 1e-9, row
        if high is not None:
            assert row["value"] <= high + 1e-9, row
        if ind.unit == PERCENT and ind.id not in BOUNDS:
            assert 0 <= row["numerator"] <= row["denominator"], row
    assert long.filter(pl.col("denominator") == 0)["value"].null_count() == long.filter(pl.col("denominator") == 0).height
