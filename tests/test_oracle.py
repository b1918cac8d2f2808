"""The engine against the reference implementation (tests/oracle.py) on generated, messy stores.

Each example writes a list of batches into a fresh SQLite store the way an import does, computes
through the product's path (compute_components → aggregate / ranking) and compares every numerator,
denominator and value, for single months, quarters, a year, custom ranges and the whole span, by
district (the full grid), by department and for the city, and the ranking. The oracle reads the same
batch list, never the store. A few hand-computed examples check the oracle itself.

Environment: ORACLE_EXAMPLES (default 8) sets how many stores are generated; ORACLE_SHRINK=1 lets
hypothesis shrink a failing store to a minimal one (slow: every example costs a few seconds).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import os
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from datasets import store as store_mod
from datasets.schema import CASE_STATUSES, CHANNELS, HOTLINE_SATISFACTION, KINDS, RECTIFY_STATUSES, SUPERVISION
from tests import oracle

DISTRICTS = ["甲区", "乙区", "丙县"]
DEPTS = ["区市场监管局", "区人社局"]
MONTHS = oracle.months_between("2024-08", "2025-03")
CATALOG_MONTHS = ["2023-06", "2024-02", "2024-03", *MONTHS]  # 2023-06 and 2024-02 go stale within the span
ITEM_CODES = ["I1", "I2", "I3", "I4"]
# Around National Day 2024 (9-29 Sunday and 10-12 Saturday are workdays) and Spring Festival 2025
# (1-26 Sunday and 2-8 Saturday are workdays), Mid-Autumn 2024 (9-14 Saturday workday), New Year.
TRICKY_DAYS = [dt.date.fromisoformat(d) for d in (
    "2024-08-31", "2024-09-14", "2024-09-15", "2024-09-27", "2024-09-29", "2024-09-30", "2024-10-01",
    "2024-10-04", "2024-10-07", "2024-10-08", "2024-10-12", "2024-12-31", "2025-01-01", "2025-01-24",
    "2025-01-26", "2025-01-27", "2025-01-28", "2025-02-04", "2025-02-05", "2025-02-08", "2025-03-31",
)]
FIRST_DAY = dt.date(2024, 8, 1)


def full_row(kind: str, **values) -> dict:
    """A row with every canonical field of the kind (None where not given)."""
    return {**dict.fromkeys(KINDS[kind].names), **values}


# --- generated stores -----------------------------------------------------------------------------

@st.composite
def moment(draw, period: str) -> dt.datetime:
    """A time on or before the end of the export month, often on a day around a holiday."""
    end = oracle.month_end(period)
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range((end - FIRST_DAY).days + 1)]
    this_month = [d for d in days if oracle.month_of(d) == period]
    tricky = [d for d in TRICKY_DAYS if d <= end]
    pools = [st.sampled_from(this_month), st.sampled_from(days)] + ([st.sampled_from(tricky)] if tricky else [])
    day = draw(st.one_of(pools))
    return dt.datetime.combine(day, dt.time(draw(st.sampled_from([0, 9, 16, 23])), draw(st.sampled_from([0, 59]))))


def limit_values(values: list[float]) -> st.SearchStrategy:
    return st.none() | st.sampled_from(values)


UNITS = st.sampled_from([None, "工作日", "自然日"])


@st.composite
def case_rows(draw, period: str, supervised: bool) -> list[dict]:
    rows = []
    for case_id in draw(st.lists(st.sampled_from(["C1", "C2", "C3", "C4", "C5", "C6"]), min_size=1, max_size=5,
                                 unique=True)):
        accepted = draw(moment(period))
        completed = None
        if draw(st.booleans()):  # an end time, sometimes before acceptance; never after the export month
            completed = accepted + dt.timedelta(days=draw(st.integers(-1, 25)), hours=draw(st.integers(-3, 6)))
            if completed.date() > oracle.month_end(period):
                completed = None
        rows.append(full_row(
            "cases", case_id=case_id, item_code=draw(st.sampled_from([*ITEM_CODES, "I9"])), item_name="事项",
            department=draw(st.none() | st.sampled_from(DEPTS)), channel=draw(st.sampled_from(CHANNELS)),
            case_type=draw(st.sampled_from([None, "即办件", "承诺件"])), accepted_at=accepted,
            completed_at=completed, status=draw(st.sampled_from(CASE_STATUSES)),
            legal_limit=draw(limit_values([0.0, 1.0, 3.0, 5.0, 20.0])), legal_limit_unit=draw(UNITS),
            promised_limit=draw(limit_values([0.0, 1.0, 2.0, 5.0])), promised_limit_unit=draw(UNITS),
            suspended_days=draw(st.none() | st.sampled_from([0.0, 1.0, 2.0, 0.5])),
            supervision=draw(st.none() | st.sampled_from(SUPERVISION)) if supervised else None,
        ))
    return rows


@st.composite
def item_rows(draw) -> list[dict]:
    return [
        full_row(
            "items", item_code=code, item_name="事项", department=draw(st.none() | st.sampled_from(DEPTS)),
            case_type=draw(st.sampled_from([None, "即办件", "承诺件"])),
            legal_limit=draw(limit_values([0.0, 5.0, 10.0, 20.0])), legal_limit_unit=draw(UNITS),
            promised_limit=draw(limit_values([0.0, 1.0, 3.0, 5.0])), promised_limit_unit=draw(UNITS),
            online_depth=draw(st.integers(1, 4)), visits_required=draw(st.none() | st.integers(0, 2)),
            materials_count=draw(st.none() | st.sampled_from([0, 2])), in_hall=draw(st.none() | st.booleans()),
        )
        for code in draw(st.lists(st.sampled_from(ITEM_CODES), min_size=1, max_size=4, unique=True))
    ]


@st.composite
def evaluation_rows(draw, period: str) -> list[dict]:
    rows = []
    for eval_id in draw(st.lists(st.sampled_from(["E1", "E2", "E3", "E4", "E5"]), min_size=1, max_size=4,
                                 unique=True)):
        at = draw(moment(period))
        rating = draw(st.integers(1, 5))
        rows.append(full_row(
            "evaluations", eval_id=eval_id, item_code=draw(st.sampled_from([*ITEM_CODES, "I9"])),
            department=draw(st.none() | st.sampled_from(DEPTS)), rating=rating, evaluated_at=at,
            active=draw(st.none() | st.booleans()),
            rectify_status=draw(st.none() | st.sampled_from(RECTIFY_STATUSES)) if rating <= 2 else None,
            rectified_at=at + dt.timedelta(days=draw(st.integers(0, 30))) if draw(st.booleans()) else None,
        ))
    return rows


@st.composite
def hotline_rows(draw, period: str) -> list[dict]:
    rows = []
    for ticket_id in draw(st.lists(st.sampled_from(["T1", "T2", "T3"]), min_size=1, max_size=3, unique=True)):
        at = draw(moment(period))
        rows.append(full_row(
            "hotline", ticket_id=ticket_id, department=draw(st.none() | st.sampled_from(DEPTS)), received_at=at,
            due_at=at + dt.timedelta(days=draw(st.integers(0, 5)), hours=4) if draw(st.booleans()) else None,
            closed_at=at + dt.timedelta(days=draw(st.integers(0, 8)), hours=draw(st.integers(0, 8)))
            if draw(st.booleans()) else None,
            satisfaction=draw(st.none() | st.sampled_from(HOTLINE_SATISFACTION)),
        ))
    return rows


@st.composite
def batch_lists(draw) -> list[dict]:
    """Batches of 2–3 districts, imported in a random order (re-imports of a month included)."""
    found = []
    for district in draw(st.lists(st.sampled_from(DISTRICTS), min_size=2, max_size=3, unique=True)):
        supervised = draw(st.booleans())  # this district's case exports carry 监察结果
        months = st.sampled_from(MONTHS)
        # Often a run of consecutive months with both exports (so that districts get ranked), one
        # of them perhaps missing its 好差评; besides that, exports of random months.
        run: list[str] = []
        if draw(st.booleans()):
            start = draw(st.integers(0, len(MONTHS) - 1))
            run = MONTHS[start:start + draw(st.integers(1, 4))]
        gap = draw(st.none() | st.sampled_from(run)) if run else None
        for period in [*run, *draw(st.lists(months, max_size=3))]:
            found.append(("cases", district, period, draw(case_rows(period, supervised))))
        for period in [*(m for m in run if m != gap), *draw(st.lists(months, max_size=3))]:
            found.append(("evaluations", district, period, draw(evaluation_rows(period))))
        for period in draw(st.lists(months, max_size=2)):
            found.append(("hotline", district, period, draw(hotline_rows(period))))
        for period in draw(st.lists(st.sampled_from(CATALOG_MONTHS), max_size=3)):
            found.append(("items", district, period, draw(item_rows())))
    order = draw(st.permutations(range(len(found))))
    return [{"kind": k, "district": d, "period": p, "order": o, "rows": r}
            for o, (k, d, p, r) in zip(order, found, strict=True)]


def write_store(batches: list[dict], path: Path):
    """Import the batches in their order, each in one transaction, as datasets/ingest.py does."""
    engine = store_mod.make_engine(f"sqlite:///{path}")
    store_mod.init_db(engine)
    for n, b in enumerate(sorted(batches, key=lambda b: b["order"])):
        rows = [{**r, "district": b["district"]} for r in b["rows"]]
        frame = pl.DataFrame(rows, schema=KINDS[b["kind"]].polars_schema, orient="row")
        with engine.begin() as conn:
            batch_id, _ = store_mod.create_batch(
                conn, upload_id=f"u{n}", kind=b["kind"], district=b["district"], period=b["period"],
                file_name=f"{b['kind']}-{n}.xlsx", sha256=f"{n:064d}", user_name="test", rows=frame.height,
            )
            store_mod.insert_records(conn, b["kind"], batch_id, frame)
    return engine


# --- the engine's API: the one place that knows its names -----------------------------------------

class Engine:
    """The engine's numbers for one store, through the product's path."""

    def __init__(self, engine, scope: list[str]):
        from metrics import scoring, service

        self.scope = scope
        self.settings = scoring.default_settings()
        self.comps = service.compute_components(engine, self.settings)
        self.inventory = store_mod.active_batches(engine)

    def table(self, first: str, last: str, by: str) -> dict[tuple, tuple]:
        from metrics.compute import aggregate
        from metrics.periods import Period

        frame = aggregate(self.comps, Period(first, last), by=by, districts=self.scope)
        keys = ["district", "department"] if by == "department" else ["district"]
        return {(*(r[k] for k in keys), r["indicator"]): (r["numerator"], r["denominator"], r["value"])
                for r in frame.iter_rows(named=True)}

    def ranking(self, first: str, last: str) -> dict[str, dict]:
        from metrics import scoring
        from metrics.periods import Period

        period = Period(first, last)
        if "inventory" in inspect.signature(scoring.ranking).parameters:
            frame = scoring.ranking(self.comps, period, self.settings, self.inventory)
        else:  # the engine before ranking completeness
            frame = scoring.ranking(self.comps, period, self.settings)
        out = {}
        for r in frame.iter_rows(named=True):
            r.setdefault("ranked", r["rank"] is not None)
            r.setdefault("unranked_reason", None)
            out[r["district"]] = r
        return out


# --- comparison -----------------------------------------------------------------------------------

def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


ZERO = (0.0, 0.0, None)


def compare_tables(what: str, mine: dict, theirs: dict, full_grid: bool) -> list[str]:
    """Every (key, indicator) of either side; with ``full_grid`` a row missing from the engine is a
    mismatch, otherwise it stands for nothing counted (0, 0, None)."""
    out = []
    for key in sorted(set(mine) | set(theirs), key=str):
        want = mine.get(key, ZERO)
        got = theirs.get(key)
        if got is None and full_grid:
            out.append(f"{what} {key}: engine has no row, oracle {want}")
            continue
        got = got or ZERO
        if not all(same(a, b) for a, b in zip(got, want, strict=True)):
            out.append(f"{what} {key}: engine {got} oracle {want}")
    return out


RANK_FIELDS = ["ranked", "unranked_reason", "rank", "rank_change", "index", *[f"group_{g}" for g in "ABCDE"]]


def compare_rankings(what: str, mine: dict, theirs: dict) -> list[str]:
    out = []
    for district, want in mine.items():
        got = theirs.get(district)
        if got is None:
            out.append(f"{what} {district}: engine has no row")
            continue
        for field in RANK_FIELDS:
            if not same(got.get(field), want[field if field != "unranked_reason" else "reason"]):
                out.append(f"{what} {district} {field}: engine {got.get(field)!r} oracle "
                           f"{want[field if field != 'unranked_reason' else 'reason']!r}")
    return out


def periods(custom: list[tuple[str, str]]) -> list[tuple[str, str]]:
    quarters = [("2024-07", "2024-09"), ("2024-10", "2024-12"), ("2025-01", "2025-03")]
    return [*((m, m) for m in MONTHS), *quarters, ("2024-01", "2024-12"), (MONTHS[0], MONTHS[-1]), *custom]


def mismatches(batches: list[dict], custom: list[tuple[str, str]]) -> list[str]:
    mine = oracle.Store(batches)
    with tempfile.TemporaryDirectory(prefix="oracle-") as tmp:
        engine = write_store(batches, Path(tmp) / "store.db")
        try:
            theirs = Engine(engine, mine.districts)
        finally:
            engine.dispose()
    found = []
    for first, last in periods(custom):
        for by in ("district", "department", "city"):
            found += compare_tables(f"{by} {first}~{last}", oracle.indicators(mine, first, last, by),
                                    theirs.table(first, last, by), full_grid=by == "district")
        found += compare_rankings(f"ranking {first}~{last}", oracle.ranking(mine, first, last),
                                  theirs.ranking(first, last))
    return found


def report(found: list[str]) -> str:
    """How many mismatches of each kind (grouping and indicator, or ranking field), then the first ones."""
    kinds: dict[str, int] = {}
    for line in found:
        what, rest = line.split(" ", 1)
        words = rest.split(":")[0].replace("'", "").replace(")", "").replace(",", "").split()
        kind = f"{what} {words[-1]}" if "no row" not in line else f"{what} {words[-1] if what != 'ranking' else ''}(no row)"
        kinds[kind] = kinds.get(kind, 0) + 1
    summary = "\n".join(f"  {n:4d}  {kind}" for kind, n in sorted(kinds.items()))
    head = "\n".join(found[:40])
    return f"{len(found)} mismatches between the engine and the oracle:\n{summary}\nThe first ones:\n{head}"


# A store written by hand that holds every trap at once, checked before any generated one.
def _hand_store() -> list[dict]:
    def b(kind, district, period, order, rows):
        return {"kind": kind, "district": district, "period": period, "order": order, "rows": rows}

    at = dt.datetime
    def case(**v):
        return full_row("cases", **{"item_name": "事项", "department": "区人社局", "channel": "窗口", **v})

    catalog_old = [full_row("items", item_code="I1", item_name="事项", department="区人社局", online_depth=4,
                            legal_limit=5.0, promised_limit=2.0, promised_limit_unit="自然日", in_hall=True)]
    catalog_new = [full_row("items", item_code="I2", item_name="事项", department=None, online_depth=2,
                            legal_limit=10.0, visits_required=0, materials_count=0, case_type="即办件")]
    return [
        b("items", "甲区", "2024-09", 1, catalog_old),
        b("items", "甲区", "2024-10", 2, catalog_new),
        b("cases", "甲区", "2024-10", 3, [
            case(case_id="C1", item_code="I1", status="已办结", accepted_at=at(2024, 9, 30, 10),
                 completed_at=at(2024, 10, 8, 9)),
            case(case_id="C2", item_code="I1", status="退件", accepted_at=at(2024, 10, 8, 9),
                 completed_at=at(2024, 10, 9, 9), legal_limit=0.0),
            case(case_id="C3", item_code="I2", status="在办", accepted_at=at(2024, 10, 28, 9), legal_limit=1.0,
                 legal_limit_unit="自然日", channel="移动端"),
            case(case_id="C4", item_code="I2", status="不予受理", accepted_at=at(2024, 10, 9, 9)),
        ]),
        # September's export imported after October's: October's C1 still wins.
        b("cases", "甲区", "2024-09", 4, [case(case_id="C1", item_code="I1", status="在办",
                                               accepted_at=at(2024, 9, 30, 10))]),
        b("evaluations", "甲区", "2024-10", 5, [
            full_row("evaluations", eval_id="E1", item_code="I2", rating=2, active=True,
                     evaluated_at=at(2024, 9, 30, 9), rectify_status="已整改", rectified_at=at(2024, 10, 25, 9)),
        ]),
        b("cases", "乙区", "2024-10", 6, [
            case(case_id="C1", item_code="I1", status="撤件", accepted_at=at(2024, 8, 1, 9),
                 completed_at=at(2024, 10, 31, 9), supervision="红牌（已撤销）"),
        ]),
        b("items", "乙区", "2023-06", 7, catalog_old),
        b("hotline", "乙区", "2024-10", 8, [
            full_row("hotline", ticket_id="T1", received_at=at(2024, 10, 1, 9), due_at=at(2024, 10, 3, 9),
                     closed_at=at(2024, 10, 3, 9), satisfaction="基本满意"),
        ]),
    ]


def _examples() -> int:
    return int(os.environ.get("ORACLE_EXAMPLES", "8"))


_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
if os.environ.get("ORACLE_SHRINK") == "1":
    _PHASES.append(Phase.shrink)

CUSTOM = st.lists(
    st.tuples(st.sampled_from(["2024-07", *MONTHS]), st.sampled_from([*MONTHS, "2025-04"])).map(sorted).map(tuple),
    min_size=1, max_size=2,
)


@settings(max_examples=_examples(), deadline=None, phases=_PHASES,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=batch_lists(), custom=CUSTOM)
@example(batches=_hand_store(), custom=[("2024-09", "2024-11")])
def test_engine_matches_oracle(batches, custom):
    found = mismatches(batches, custom)
    assert not found, report(found)


# --- the oracle itself, against numbers worked out by hand ------------------------------------------

def test_oracle_indicator_list_matches_the_registry():
    from metrics.registry import INDICATORS

    assert {i.id: i.group for i in INDICATORS} == {k: g for k, (g, _) in oracle.INDICATORS.items()}


@pytest.mark.parametrize(("start", "end", "expected"), [
    ("2024-09-27", "2024-10-08", 3),  # 9-29 (Sunday, make-up), 9-30, 10-8; 10-1..7 off
    ("2025-01-24", "2025-02-05", 3),  # 1-26 (Sunday, make-up), 1-27, 2-5; 1-28..2-4 off
    ("2024-10-11", "2024-10-14", 2),  # 10-12 Saturday make-up, 10-14 Monday
    ("2024-10-08", "2024-10-08", 0),  # same day
    ("2024-10-08", "2024-10-01", 0),  # end before start
])
def test_working_days_by_hand(start, end, expected):
    assert oracle.working_days(dt.date.fromisoformat(start), dt.date.fromisoformat(end)) == expected


def _values(table: dict, key: tuple) -> dict[str, tuple]:
    return {k[-1]: v[:2] for k, v in table.items() if k[:-1] == key}


def test_cases_by_hand():
    s = oracle.Store(_hand_store())
    sep = _values(oracle.indicators(s, "2024-09", "2024-09"), ("甲区",))
    # C1 is accepted on 2024-09-30 (October's row wins) and completed in October.
    assert sep["online_case_rate"] == (0, 1) and sep["completion_rate"] == (1, 1)
    oct_ = _values(oracle.indicators(s, "2024-10", "2024-10"), ("甲区",))
    # C2 (退件 ended 10-09, legal 0: 1 working day late is not > 1) and C3 (open, 10-28 → 10-31 is
    # 3 calendar days against 1 自然日: red). C4 (不予受理) counts nowhere.
    assert oct_["card_rate"] == (1, 2) and oct_["red_card_rate"] == (1, 2)
    assert oct_["online_case_rate"] == (1, 2) and oct_["completion_rate"] == (0, 2)
    # C1: catalog of 2024-09 (legal 5 工作日, promised 2 自然日); elapsed 9-30 → 10-08 is 1 working
    # day, 8 calendar days.
    assert oct_["avg_handling_days"] == (1, 1)
    assert oct_["statutory_speedup"] == (4, 5)
    assert oct_["promise_speedup"] == (2 - 8, 2) and oct_["on_time_rate"] == (0, 1)
    # The evaluation of 9-30 belongs to September; its rectification on 10-25 is exactly 15 working
    # days later (10-8..11, Saturday 10-12, 10-14..18, 10-21..25).
    assert sep["bad_rectified_on_time_rate"] == (1, 1) and sep["actual_eval_rate"] == (1, 0)
    assert oct_["actual_eval_rate"] == (0, 1)
    # 乙区: 撤件 with a revoked red card: no card even though it ran far over.
    aug = _values(oracle.indicators(s, "2024-08", "2024-08"), ("乙区",))
    assert aug["card_rate"] == (0, 1) and aug["red_card_rate"] == (0, 1) and aug["completion_rate"] == (0, 1)
    yi = _values(oracle.indicators(s, "2024-10", "2024-10"), ("乙区",))
    assert yi["card_rate"] == (0, 0) and yi["hotline_on_time_rate"] == (1, 1)
    assert yi["hotline_satisfaction_rate"] == (1, 1)


def test_stocks_and_coverage_over_a_range_by_hand():
    s = oracle.Store(_hand_store())
    q = _values(oracle.indicators(s, "2024-08", "2024-10"), ("甲区",))
    # The catalog in force in October has one item (I2), counted once, not once per month.
    assert q["online_available_rate"] == (1, 1) and q["full_online_rate"] == (0, 1)
    assert q["instant_item_rate"] == (1, 1) and q["zero_visit_rate"] == (1, 1)
    assert q["hall_entry_rate"] == (0, 1) and q["commitment_compression"] == (0, 10)
    # I2 was evaluated in September, inside the range; not in October alone.
    assert q["eval_item_coverage"] == (1, 1)
    assert _values(oracle.indicators(s, "2024-10", "2024-10"), ("甲区",))["eval_item_coverage"] == (0, 1)
    # September alone: the 2024-09 catalog (I1, legal 5, promised 2).
    sep = _values(oracle.indicators(s, "2024-09", "2024-09"), ("甲区",))
    assert sep["commitment_compression"] == (3, 5) and sep["hall_entry_rate"] == (1, 1)


def test_grid_has_every_district_and_indicator():
    s = oracle.Store(_hand_store())
    table = oracle.indicators(s, "2025-01", "2025-01")  # after the store's last month: nothing counts
    assert len(table) == 2 * 28 and all(v == (0.0, 0.0, None) for v in table.values())


def test_ranking_by_hand():
    def b(kind, district, period, order, rows):
        return {"kind": kind, "district": district, "period": period, "order": order, "rows": rows}

    def cases(n_online: int, n: int, month: str) -> list[dict]:
        at = dt.datetime.fromisoformat(f"{month}-02 09:00")
        return [full_row("cases", case_id=f"C{i}", item_code="I1", channel="网上申请" if i < n_online else "窗口",
                         status="在办", accepted_at=at) for i in range(n)]

    evals = [full_row("evaluations", eval_id="E1", item_code="I1", rating=5, active=True,
                      evaluated_at=dt.datetime(2024, 10, 2))]
    items = [full_row("items", item_code="I1", online_depth=1)]
    batches = []
    for n, (district, online, catalog) in enumerate([("甲区", 1, "2024-01"), ("乙区", 2, "2024-01"),
                                                     ("丙县", 1, "2024-01"), ("丁区", 2, "2023-06")]):
        batches += [b("cases", district, "2024-10", 10 * n, cases(online, 2, "2024-10")),
                    b("evaluations", district, "2024-10", 10 * n + 1, evals),
                    b("items", district, catalog, 10 * n + 2, items)]
    batches.append(b("cases", "甲区", "2024-09", 50, cases(2, 2, "2024-09")))  # September: 甲区 has no 好差评
    settings = oracle.load_settings()
    for ind in settings["indicators"]:
        settings["indicators"][ind] = {"weight": 0.0, "target": 1.0, "floor": 0.0}
    settings["indicators"]["online_case_rate"]["weight"] = 1.0
    got = oracle.ranking(oracle.Store(batches), "2024-10", "2024-10", settings)
    assert {d: (r["rank"], r["index"]) for d, r in got.items()} == {
        "甲区": (2, 50.0), "乙区": (1, 100.0), "丙县": (2, 50.0), "丁区": (None, 100.0)}
    assert got["丁区"]["reason"] == "事项清单为 2023-06 版，已超过 12 个月"
    assert got["甲区"]["group_A"] == 50.0 and got["甲区"]["group_B"] is None
    before = oracle.ranking(oracle.Store(batches), "2024-09", "2024-09", settings)
    assert before["甲区"]["reason"] == "缺少 2024-09 好差评"
    assert before["乙区"]["reason"] == "缺少 2024-09 办件明细；缺少 2024-09 好差评"
    assert all(r["rank_change"] is None for r in got.values())
