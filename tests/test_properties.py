"""Invariants of the indicator computation, on generated data (hypothesis)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.domain.schema import CASE_STATUSES, CHANNELS, HOTLINE_SATISFACTION, RECTIFY_STATUSES, SUPERVISION
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
    until = data.last_month()
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
        .agg(pl.col("numerator").sum(), pl.col("denominator").sum(), pl.col("aside").sum())
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


# --- as-of dates: an early export, then the full month ------------------------------------------------

MONTH_START = dt.datetime(2024, 11, 1)  # November 2024: a month without holidays, after National Day


@st.composite
def month_of_records(draw):
    """A November's cases and evaluations as the full export shows them (all within the month)."""
    cases_, evals = [], []
    for n in range(draw(st.integers(1, 12))):
        accepted = MONTH_START + dt.timedelta(days=draw(st.integers(0, 29)), hours=draw(st.integers(8, 17)))
        done = draw(st.none() | st.integers(0, 20))
        completed = accepted + dt.timedelta(days=done, hours=1) if done is not None else None
        if completed is not None and completed.month != 11:
            completed = None
        legal = draw(st.none() | st.sampled_from([1.0, 3.0, 5.0, 10.0]))
        cases_.append({
            "case_id": f"C{n}", "district": draw(st.sampled_from(DISTRICTS[:2])), "department": DEPTS[0],
            "item_code": "I1", "channel": "窗口", "accepted_at": accepted, "completed_at": completed,
            "status": "已办结" if completed is not None else "在办",
            "legal_limit": legal, "promised_limit": None if legal is None else draw(st.sampled_from([1.0, 2.0, legal])),
        })
    for n in range(draw(st.integers(0, 10))):
        at = MONTH_START + dt.timedelta(days=draw(st.integers(0, 29)), hours=10)
        rating = draw(st.integers(1, 5))
        fixed = draw(st.none() | st.integers(0, 25)) if rating <= 2 else None
        rectified = at + dt.timedelta(days=fixed) if fixed is not None else None
        if rectified is not None and rectified.month != 11:
            rectified = None
        evals.append({
            "eval_id": f"E{n}", "district": draw(st.sampled_from(DISTRICTS[:2])), "department": DEPTS[0],
            "item_code": "I1", "rating": rating, "active": True, "evaluated_at": at,
            "rectify_status": None if rating > 2 else ("已整改" if rectified is not None else "整改中"),
            "rectified_at": rectified,
        })
    return cases_, evals


def _known_on(cases_: list[dict], evals: list[dict], day: dt.date) -> tuple[list[dict], list[dict]]:
    """What an export taken at the end of ``day`` shows: records up to it, later endings not yet happened."""
    early_cases = []
    for c in cases_:
        if c["accepted_at"].date() > day:
            continue
        if c["completed_at"] is not None and c["completed_at"].date() > day:
            c = {**c, "completed_at": None, "status": "在办"}
        early_cases.append(c)
    early_evals = []
    for e in evals:
        if e["evaluated_at"].date() > day:
            continue
        if e["rectified_at"] is not None and e["rectified_at"].date() > day:
            e = {**e, "rectified_at": None, "rectify_status": "整改中"}
        early_evals.append(e)
    return early_cases, early_evals


def _store_components(imports: list[tuple[list[dict], list[dict], dt.datetime]]) -> tuple[pl.DataFrame, Dataset]:
    """Import each (cases, evaluations, import time) as November's exports into a fresh store."""
    import tempfile

    from datasets.domain.schema import KINDS
    from datasets.intake.ingest import import_frame
    from datasets.storage import store
    from metrics.prepare import load_dataset

    with tempfile.TemporaryDirectory(prefix="asof-") as tmp:
        engine = store.make_engine(f"sqlite:///{tmp}/s.db")
        store.init_db(engine)
        for n, (cases_, evals, when) in enumerate(imports):
            for kind, rows in (("cases", cases_), ("evaluations", evals)):
                if rows:
                    frame = pl.DataFrame([{**dict.fromkeys(KINDS[kind].names), **r} for r in rows],
                                         schema=KINDS[kind].polars_schema, orient="row")
                    import_frame(engine, kind, frame, file_name=f"{kind}{n}.xlsx", sha256=f"{kind}{n}",
                                 period="2024-11", created_at=when)
        data = load_dataset(engine)
        engine.dispose()
    return components(data), data


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(month_of_records(), st.integers(1, 29))
def test_an_early_export_then_the_full_month_equals_the_full_month_alone(records, day):
    cases_, evals = records
    d = dt.date(2024, 11, day)
    early_cases, early_evals = _known_on(cases_, evals, d)
    after_month = dt.datetime(2024, 12, 3, 9)
    both, _ = _store_components([(early_cases, early_evals, dt.datetime.combine(d, dt.time(18))),
                                 (cases_, evals, after_month)])
    full, _ = _store_components([(cases_, evals, after_month)])
    assert _sorted(both).equals(_sorted(full))

    # The early export alone (as of day d) calls nothing late before its deadline.
    from datasets.domain.vocabulary import Rules
    from datasets.domain.workdays import load_calendar
    from metrics.alerts import build_detail

    _, early = _store_components([(early_cases, early_evals, dt.datetime.combine(d, dt.time(18)))])
    cal, rules = load_calendar(), Rules()
    detail = build_detail(early, rules, cal)
    for row in detail.cases.filter(pl.col("is_open")).iter_rows(named=True):
        # 用时 runs to d, never beyond; overdue only once the deadline is before d.
        assert row["elapsed_wd"] == max(int(cal.cum[(d - cal.start).days] - cal.cum[(row["accepted_at"].date()
                                                                                      - cal.start).days]), 0), row
        if row["promised"] is not None and row["el_promised"] > row["promised"]:
            assert cal.add_working_days(row["accepted_at"].date(), int(row["promised"])) < d, row
    for row in detail.evaluations.filter(pl.col("is_bad")).iter_rows(named=True):
        deadline = cal.add_working_days(row["evaluated_at"].date(), rules.rectify_days)
        assert row["bad_due"] == (bool(row["bad_rectified"]) or deadline <= d), row
