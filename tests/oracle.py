"""Reference implementation ("oracle") of the 28 indicators and the ranking, written from the
counting rules, not from the engine: plain Python over lists of dicts, record by record.

Input: the imported batches as the test generated them, in import order, each a dict
``{"kind", "district", "period", "order", "rows": [canonical row dicts]}``, optionally with ``as_of``
(the batch's 数据截止日, a date; default: the last day of its period). Nothing here reads the
store or imports ``metrics``; the holiday data comes from ``chinese_calendar`` plus
``datasets/holidays.csv`` and the weights from ``metrics/scoring.toml`` (both read as data).
"""

from __future__ import annotations

import csv
import datetime as dt
import tomllib
from collections import defaultdict
from functools import cache
from pathlib import Path

import chinese_calendar

ROOT = Path(__file__).resolve().parent.parent
CITY = "全市"
ID_FIELD = {"cases": "case_id", "evaluations": "eval_id", "hotline": "ticket_id"}
ONLINE = ("网上申请", "移动端")
CATALOG = "catalog"  # marks the item-level stocks below

# id → (group, source). Sources: catalog stock, accepted cases, completed cases, evaluations, hotline.
INDICATORS: dict[str, tuple[str, str]] = {
    "online_available_rate": ("A", CATALOG), "depth_3plus_rate": ("A", CATALOG),
    "full_online_rate": ("A", CATALOG), "online_case_rate": ("A", "accepted"),
    "commitment_compression": ("B", CATALOG), "statutory_speedup": ("B", "completed"),
    "promise_speedup": ("B", "completed"), "on_time_rate": ("B", "completed"),
    "card_rate": ("B", "accepted"), "red_card_rate": ("B", "accepted"),
    "avg_handling_days": ("B", "completed"), "completion_rate": ("B", "accepted"),
    "instant_item_rate": ("B", CATALOG),
    "zero_visit_rate": ("C", CATALOG), "at_most_once_rate": ("C", CATALOG),
    "zero_material_rate": ("C", CATALOG), "hall_entry_rate": ("C", CATALOG),
    "eval_item_coverage": ("D", CATALOG), "active_eval_rate": ("D", "evaluations"),
    "actual_eval_rate": ("D", "evaluations"), "good_rate": ("D", "evaluations"),
    "bad_rate": ("D", "evaluations"), "satisfaction_score": ("D", "evaluations"),
    "bad_rectified_rate": ("D", "evaluations"), "bad_rectified_on_time_rate": ("D", "evaluations"),
    "hotline_completion_rate": ("E", "hotline"), "hotline_on_time_rate": ("E", "hotline"),
    "hotline_satisfaction_rate": ("E", "hotline"),
}


# --- months and days ----------------------------------------------------------------------------

def month_of(t: dt.datetime | dt.date) -> str:
    return f"{t.year:04d}-{t.month:02d}"


def month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def shift(month: str, n: int) -> str:
    k = month_number(month) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    return [shift(first, i) for i in range(month_number(last) - month_number(first) + 1)]


def month_end(month: str) -> dt.date:
    return dt.date.fromisoformat(shift(month, 1) + "-01") - dt.timedelta(days=1)


def _holiday_file() -> dict[dt.date, bool]:
    """datasets/holidays.csv: date → True for a make-up workday (班), False for a holiday (休)."""
    out: dict[dt.date, bool] = {}
    with (ROOT / "datasets" / "holidays.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(line for line in fh if line.strip() and not line.startswith("#")):
            out[dt.date.fromisoformat(row["date"].strip())] = row["kind"].strip() == "班"
    return out


EXTRA_DAYS = _holiday_file()


def is_workday(day: dt.date) -> bool:
    if day in EXTRA_DAYS:
        return EXTRA_DAYS[day]
    return chinese_calendar.is_workday(day)  # raises for a year it does not cover


@cache
def working_days(start: dt.date, end: dt.date) -> int:
    """Working days d with start < d ≤ end (0 when end ≤ start)."""
    count, day = 0, start + dt.timedelta(days=1)
    while day <= end:
        count += is_workday(day)
        day += dt.timedelta(days=1)
    return count


def calendar_days(start: dt.date, end: dt.date) -> int:
    return max((end - start).days, 0)


# --- the store as the rules see it ----------------------------------------------------------------

class Store:
    """Current records after "newest wins", and the catalog versions, from the batch list."""

    def __init__(self, batches: list[dict]):
        # A re-import of the same (kind, district, period) replaces the earlier batch wholesale.
        active: dict[tuple, dict] = {}
        for b in sorted(batches, key=lambda b: b["order"]):
            active[(b["kind"], b["district"], b["period"])] = b
        self.active = list(active.values())
        self.districts = sorted({b["district"] for b in batches})
        self.records: dict[str, list[dict]] = {}
        for kind, id_field in ID_FIELD.items():
            newest: dict[tuple, tuple] = {}
            for b in self.active:
                if b["kind"] != kind:
                    continue
                for row in b["rows"]:
                    key = (b["district"], row[id_field])
                    rank = (b["period"], b["order"])
                    if key not in newest or rank > newest[key][0]:
                        # A record is judged at the as-of date of the batch it is counted from.
                        as_of = b.get("as_of") or month_end(b["period"])
                        newest[key] = (rank, dict(row, district=b["district"], period=b["period"], as_of=as_of))
            self.records[kind] = [rec for _, rec in newest.values()]
        # district → {version period → {item_code → row}}
        self.catalogs: dict[str, dict[str, dict[str, dict]]] = defaultdict(dict)
        for b in self.active:
            if b["kind"] == "items":
                self.catalogs[b["district"]][b["period"]] = {r["item_code"]: r for r in b["rows"]}
        dated = {"cases": ("accepted_at", "completed_at"), "evaluations": ("evaluated_at",),
                 "hotline": ("received_at",)}
        months = {b["period"] for b in self.active}  # batch periods count, not only record dates
        for kind, cols in dated.items():
            months |= {month_of(r[c]) for r in self.records[kind] for c in cols if r[c] is not None}
        self.until = max(months) if months else None

    def catalog_version(self, district: str, month: str) -> str | None:
        """Period of the newest catalog version of the district on or before month."""
        older = [p for p in self.catalogs.get(district, {}) if p <= month]
        return max(older) if older else None

    def catalog_in_force(self, district: str, month: str) -> tuple[str | None, dict[str, dict]]:
        """(version, rows) of the catalog in force in month; a catalog stays in force until a newer one,
        also after the store's last month."""
        version = self.catalog_version(district, month)
        if version is None:
            return None, {}
        return version, self.catalogs[district][version]


# --- record-level facts -------------------------------------------------------------------------

def _limit(case: dict, row: dict | None, which: str) -> tuple[float | None, str]:
    if case[f"{which}_limit"] is not None:
        value, unit = case[f"{which}_limit"], case[f"{which}_limit_unit"]
    elif row is not None:
        value, unit = row[f"{which}_limit"], row[f"{which}_limit_unit"]
    else:
        value, unit = None, None
    return value, unit or "工作日"


def case_facts(case: dict, store: Store, rules: dict) -> dict:
    accepted, end = case["accepted_at"], case["completed_at"]
    # The item's row in the newest version on or before the accepted month; an item that version
    # dropped has no catalog limits (older versions are not searched).
    version = store.catalog_version(case["district"], month_of(accepted))
    row = store.catalogs[case["district"]][version].get(case["item_code"]) if version else None
    legal, legal_unit = _limit(case, row, "legal")
    promised, promised_unit = _limit(case, row, "promised")
    stop = end.date() if end is not None else case["as_of"]  # open: to its export's as-of date, never beyond
    suspended = case["suspended_days"] or 0
    el_wd = max(working_days(accepted.date(), stop) - suspended, 0)
    el_cd = max(calendar_days(accepted.date(), stop) - suspended, 0)
    el_legal = el_cd if legal_unit == "自然日" else el_wd
    el_promised = el_cd if promised_unit == "自然日" else el_wd
    if case["supervision"] is not None:
        red = case["supervision"] == "红牌"
        any_card = case["supervision"] in ("黄牌", "红牌")
    else:
        red = legal is not None and el_legal - legal > rules["red_grace_days"]
        yellow = promised is not None and el_promised - promised > rules["yellow_grace_days"]
        any_card = red or yellow
    return {
        "completed": case["status"] == "已办结" and end is not None,
        "legal": legal, "promised": promised, "el_wd": el_wd,
        "el_legal": el_legal, "el_promised": el_promised,
        "red": red, "any_card": any_card, "online": case["channel"] in ONLINE,
    }


# --- flows: numerators and denominators per (district, department, month) ----------------------

def flow_components(store: Store, rules: dict) -> dict[tuple, list[float]]:
    """(district, department, month, indicator) → [numerator, denominator, beside] for every flow
    indicator (beside: the 差评 still within their rectification period, beside the two rectification
    rates)."""
    comps: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

    def add(rec: dict, month: str, ind: str, num: float, den: float, beside: float = 0) -> None:
        part = comps[(rec["district"], rec["department"] or "", month, ind)]
        part[0] += num
        part[1] += den
        part[2] += beside

    for case in store.records["cases"]:
        if case["status"] == "不予受理":
            continue
        f = case_facts(case, store, rules)
        m = month_of(case["accepted_at"])
        add(case, m, "online_case_rate", f["online"], 1)
        add(case, m, "card_rate", f["any_card"], 1)
        add(case, m, "red_card_rate", f["red"], 1)
        add(case, m, "completion_rate", f["completed"], 1)
        if not f["completed"]:
            continue
        m = month_of(case["completed_at"])
        if f["legal"] is not None and f["legal"] > 0:
            add(case, m, "statutory_speedup", f["legal"] - f["el_legal"], f["legal"])
        if f["promised"] is not None and f["promised"] > 0:
            add(case, m, "promise_speedup", f["promised"] - f["el_promised"], f["promised"])
        on_time = f["promised"] is not None and f["el_promised"] <= f["promised"]
        add(case, m, "on_time_rate", on_time, 1)
        add(case, m, "avg_handling_days", f["el_wd"], 1)
        add(case, m, "actual_eval_rate", 0, 1)

    for ev in store.records["evaluations"]:
        m = month_of(ev["evaluated_at"])
        active = ev["active"] is True
        bad = ev["rating"] <= 2
        add(ev, m, "active_eval_rate", active, 1)
        add(ev, m, "actual_eval_rate", active, 0)
        add(ev, m, "good_rate", ev["rating"] >= 3, 1)
        add(ev, m, "bad_rate", bad, 1)
        add(ev, m, "satisfaction_score", ev["rating"] * 20, 1)
        if bad:
            rectified = ev["rectify_status"] in ("已整改", "核实不属实")
            on_time = (rectified and ev["rectified_at"] is not None and working_days(
                ev["evaluated_at"].date(), ev["rectified_at"].date()) <= rules["rectify_days"])
            # Due once rectified, or once its deadline (评价时间 + N working days) is on or before the
            # record's as-of date; otherwise 整改期内: in neither part, counted beside.
            due = rectified or working_days(ev["evaluated_at"].date(), ev["as_of"]) >= rules["rectify_days"]
            add(ev, m, "bad_rectified_rate", rectified, due, not due)
            add(ev, m, "bad_rectified_on_time_rate", on_time, due, not due)

    for t in store.records["hotline"]:
        m = month_of(t["received_at"])
        closed = t["closed_at"] is not None
        add(t, m, "hotline_completion_rate", closed, 1)
        if closed:
            add(t, m, "hotline_on_time_rate", t["due_at"] is not None and t["closed_at"] <= t["due_at"], 1)
        if t["satisfaction"] in ("满意", "基本满意", "不满意"):
            add(t, m, "hotline_satisfaction_rate", t["satisfaction"] != "不满意", 1)
    return comps


# --- stocks: the catalog in force in the period's last month ---------------------------------------

def stock_components(store: Store, first: str, last: str) -> dict[tuple, list[float]]:
    """(district, department, indicator) → [numerator, denominator], counting items (not item-months)."""
    comps: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])
    evaluated = {(e["district"], e["item_code"]) for e in store.records["evaluations"]
                 if first <= month_of(e["evaluated_at"]) <= last}
    for district in store.districts:
        _, rows = store.catalog_in_force(district, last)
        for item in rows.values():
            dept = item["department"] or ""
            depth, visits = item["online_depth"], item["visits_required"]
            flags = {
                "online_available_rate": depth is not None and depth >= 2,
                "depth_3plus_rate": depth is not None and depth >= 3,
                "full_online_rate": depth == 4,
                "instant_item_rate": item["case_type"] == "即办件",
                "zero_visit_rate": visits == 0,
                "at_most_once_rate": visits is not None and visits <= 1,
                "zero_material_rate": item["materials_count"] == 0,
                "hall_entry_rate": item["in_hall"] is True,
                "eval_item_coverage": (district, item["item_code"]) in evaluated,
            }
            for ind, flag in flags.items():
                comps[(district, dept, ind)][0] += flag
                comps[(district, dept, ind)][1] += 1
            legal = item["legal_limit"]
            if legal is not None and legal > 0:
                promised = item["promised_limit"] if item["promised_limit"] is not None else legal
                comps[(district, dept, "commitment_compression")][0] += legal - promised
                comps[(district, dept, "commitment_compression")][1] += legal
    return comps


# --- indicator tables ---------------------------------------------------------------------------

def indicators(store: Store, first: str, last: str, by: str = "district",
               rules: dict | None = None) -> dict[tuple, tuple[float, float, float | None]]:
    """(key, indicator) → (numerator, denominator, value) for the period [first, last].

    Keys: (district,) for ``by="district"`` (the full grid: every district with a batch × every
    indicator), (district, department) for ``"department"`` (only what was counted), (全市,) for ``"city"``.
    """
    rules = rules or load_settings()["rules"]
    sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])

    def key(district: str, dept: str) -> tuple:
        return {"district": (district,), "department": (district, dept), "city": (CITY,)}[by]

    for (district, dept, month, ind), (num, den, _) in flow_components(store, rules).items():
        if first <= month <= last:
            part = sums[(*key(district, dept), ind)]
            part[0] += num
            part[1] += den
    for (district, dept, ind), (num, den) in stock_components(store, first, last).items():
        part = sums[(*key(district, dept), ind)]
        part[0] += num
        part[1] += den
    keys = {k[:-1] for k in sums}
    if by == "district":
        keys |= {(d,) for d in store.districts}
    elif by == "city":
        keys = {(CITY,)}
    out = {}
    for k in keys:
        for ind in INDICATORS:
            if by == "department" and (*k, ind) not in sums:
                continue
            num, den = sums.get((*k, ind), (0.0, 0.0))
            out[(*k, ind)] = (num, den, num / den if den else None)
    return out


def pending_bad(store: Store, first: str, last: str, rules: dict | None = None) -> dict[str, float]:
    """district → 差评 of [first, last] still within their rectification period (整改期内)."""
    rules = rules or load_settings()["rules"]
    out: dict[str, float] = defaultdict(float)
    for (district, _, month, ind), (_, _, beside) in flow_components(store, rules).items():
        if first <= month <= last and ind == "bad_rectified_rate":
            out[district] += beside
    return dict(out)


# --- ranking ------------------------------------------------------------------------------------

def load_settings(path: Path = ROOT / "metrics" / "scoring.toml") -> dict:
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    rules = {"yellow_grace_days": 1, "red_grace_days": 1, "rectify_days": 15, **raw.get("rules", {})}
    return {"indicators": raw["indicators"], "rules": rules}


def score(value: float | None, target: float, floor: float) -> float | None:
    if value is None:
        return None
    return min(max((value - floor) / (target - floor), 0.0), 1.0) * 100


def weighted_mean(pairs: list[tuple[float | None, float]]) -> float | None:
    present = [(s, w) for s, w in pairs if s is not None]
    total = sum(w for _, w in present)
    return sum(s * w for s, w in present) / total if present and total > 0 else None


def unranked_reasons(store: Store, first: str, last: str, district: str) -> list[str]:
    have = {(b["kind"], b["period"]) for b in store.active if b["district"] == district}
    months = months_between(first, last)
    reasons = [f"缺少 {m} 办件明细" for m in months if ("cases", m) not in have]
    reasons += [f"缺少 {m} 好差评" for m in months if ("evaluations", m) not in have]
    version, _ = store.catalog_in_force(district, last)
    if version is None:
        reasons.append("无事项清单")
    elif month_number(last) - month_number(version) > 12:
        reasons.append(f"事项清单为 {version} 版，已超过 12 个月")
    return reasons


def scored(store: Store, first: str, last: str, settings: dict) -> dict[str, dict]:
    """Per district: scores, group scores, index, ranked, reason and rank for one period."""
    table = indicators(store, first, last, "district", settings["rules"])
    targets = settings["indicators"]
    out = {}
    for district in store.districts:
        row: dict = {"scores": {}}
        for ind in INDICATORS:
            t = targets[ind]
            row["scores"][ind] = score(table[(district, ind)][2], t["target"], t["floor"])
        for group in "ABCDE":
            row[f"group_{group}"] = weighted_mean([(row["scores"][i], targets[i]["weight"])
                                                   for i, (g, _) in INDICATORS.items() if g == group])
        row["index"] = weighted_mean([(row["scores"][i], targets[i]["weight"]) for i in INDICATORS])
        reasons = unranked_reasons(store, first, last, district)
        if not reasons and row["index"] is None:
            reasons = ["无可计算的指标"]
        row["ranked"] = not reasons
        row["reason"] = "；".join(reasons) or None
        out[district] = row
    ranked = {d: round(r["index"], 6) for d, r in out.items() if r["ranked"]}
    for district, row in out.items():
        row["rank"] = (1 + sum(v > ranked[district] for v in ranked.values())) if row["ranked"] else None
    return out


def ranking(store: Store, first: str, last: str, settings: dict | None = None) -> dict[str, dict]:
    """scored() plus prev_rank and rank_change against the previous period of the same length."""
    settings = settings or load_settings()
    n = month_number(last) - month_number(first) + 1
    now = scored(store, first, last, settings)
    before = scored(store, shift(first, -n), shift(last, -n), settings)
    for district, row in now.items():
        row["prev_rank"] = before[district]["rank"]
        both = row["rank"] is not None and row["prev_rank"] is not None
        row["rank_change"] = row["prev_rank"] - row["rank"] if both else None
    return now
