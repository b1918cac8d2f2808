"""The numbers behind the pages: metrics/overview.py, comparison.py, reference.py, settings_form.py,
metrics/drill.py and datasets/storage/quality.py, on small hand-made data (tests/factories.py) so that every count
can be checked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from datasets.domain import periods
from datasets.domain.periods import Period
from datasets.domain.vocabulary import Rules
from datasets.intake.ingest import import_frame
from datasets.storage import quality, store
from metrics import alerts, comparison, detail_store, drill, formatting, overview, reference, settings_form
from metrics.compute import CITY, aggregate, components
from metrics.registry import INDICATORS
from metrics.scoring import ScoringSettings, default_settings, ranking
from tests.factories import at, dataset, frame, inventory

OCT, SEP = Period("2024-10", "2024-10"), Period("2024-09", "2024-09")


@pytest.fixture(scope="module")
def data():
    """Two districts. 甲区 October: 4 accepted cases — one red card (legal 2, took 6 working days),
    one open and overdue (promised 2, accepted 10-08, still open at month end), one open but within
    its limit, one on time. Evaluations: two 差评 in October, one rectified in time."""
    cases = [
        {"case_id": "C1", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 16), "legal_limit": 2.0,
         "promised_limit": 1.0, "item_code": "I1"},
        {"case_id": "C2", "accepted_at": at(2024, 10, 8), "status": "在办", "promised_limit": 2.0,
         "legal_limit": 60.0, "item_code": "I2", "department": "区人社局"},
        {"case_id": "C3", "accepted_at": at(2024, 10, 30), "status": "在办", "promised_limit": 20.0,
         "legal_limit": 60.0, "item_code": "I1"},
        {"case_id": "C4", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 9), "promised_limit": 1.0,
         "legal_limit": 5.0, "item_code": "I2", "channel": "网上申请", "department": "区人社局"},
        {"case_id": "C5", "district": "乙区", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 10),
         "promised_limit": 1.0, "legal_limit": 5.0},
        {"case_id": "C6", "accepted_at": at(2024, 9, 9), "completed_at": at(2024, 9, 10), "promised_limit": 1.0,
         "legal_limit": 5.0, "period": "2024-09"},
    ]
    evaluations = [
        {"eval_id": "E1", "evaluated_at": at(2024, 10, 10), "rating": 1, "rectify_status": "已整改",
         "rectified_at": at(2024, 10, 14), "item_code": "I1"},
        {"eval_id": "E2", "evaluated_at": at(2024, 10, 11), "rating": 2, "rectify_status": "未整改",
         "item_code": "I2", "department": "区人社局"},
        {"eval_id": "E3", "evaluated_at": at(2024, 10, 12), "rating": 5, "item_code": "I1"},
    ]
    items = [
        {"item_code": "I1", "item_name": "食品经营许可", "online_depth": 4, "period": "2024-01"},
        {"item_code": "I2", "item_name": "社保转移", "online_depth": 1, "period": "2024-01",
         "department": "区人社局"},
        {"item_code": "I1", "district": "乙区", "online_depth": 2, "period": "2024-01"},
    ]
    return dataset(cases=cases, items=items, evaluations=evaluations)


@pytest.fixture(scope="module")
def comps(data) -> pl.DataFrame:
    return components(data)


@pytest.fixture(scope="module")
def inv(data) -> pl.DataFrame:
    return inventory(data)


@pytest.fixture(scope="module")
def detail(data) -> alerts.Detail:
    return alerts.build_detail(data, Rules())


# --- formatting ---------------------------------------------------------------------------------------


def test_formatting_is_direction_and_unit_aware():
    assert formatting.fmt_value("on_time_rate", 0.8534) == "85.34%"
    assert formatting.fmt_value("avg_handling_days", 3.2) == "3.20 工作日"
    assert formatting.fmt_value("satisfaction_score", 92.06) == "92.1 分"
    assert formatting.fmt_value("on_time_rate", None) == "—"
    assert formatting.fmt_value(formatting.INDEX, 71.64) == "71.6"
    assert formatting.fmt_delta("on_time_rate", -0.0123) == "-1.23 个百分点"
    assert formatting.fmt_delta("on_time_rate", 0.00001) == "0.00 个百分点"  # flat: no sign
    assert formatting.fmt_delta("avg_handling_days", 0.5) == "+0.50 工作日"
    assert formatting.is_good("avg_handling_days", -0.5) is True  # ↓ indicator: a decrease is good
    assert formatting.is_good("red_card_rate", 0.01) is False
    assert formatting.is_good("on_time_rate", 0.01) is True
    assert formatting.is_good("on_time_rate", 0.00001) is None
    assert formatting.is_good("on_time_rate", None) is None


def test_period_helpers():
    months = ["2023-11", "2023-12", "2024-01", "2024-02"]
    choices = periods.period_choices(months)
    assert choices["月"] == ["2024-02", "2024-01", "2023-12", "2023-11"]
    assert choices["季"] == ["2024-Q1", "2023-Q4"]
    assert choices["年"] == ["2024", "2023"]
    assert periods.period_type(Period("2024-04", "2024-06")) == "季"
    assert periods.period_type(Period("2024-01", "2024-12")) == "年"
    assert periods.period_type(Period("2024-02", "2024-05")) == "自定义"
    assert overview.trend_months(Period("2024-02", "2024-02"), months, 12) == months  # clipped to the data
    assert overview.trend_months(Period("2024-01", "2024-02"), [], 1) == ["2024-01", "2024-02"]
    assert formatting.scope_label([], ["甲区", "乙区"]) == CITY
    assert formatting.scope_label(["乙区"], ["甲区", "乙区"]) == "乙区"


# --- overview ----------------------------------------------------------------------------------------


def test_overview_cards_match_ranking_for_one_district(comps, inv):
    settings = default_settings()
    cards = overview.overview_cards(comps, OCT, settings, ["甲区"], ["on_time_rate", "avg_handling_days"])
    rank = ranking(comps, OCT, settings, inv).filter(pl.col("district") == "甲区").row(0, named=True)
    index, on_time, days = cards
    assert index.value == pytest.approx(rank["index"])
    # 甲区 October: C1 (6 working days, promised 1) late, C4 on time → 1 / 2
    assert (on_time.value, on_time.numerator, on_time.denominator) == (0.5, 1.0, 2.0)
    # September: C6 on time → 1 / 1; 环比 −50 percentage points, a decline
    assert on_time.previous == 1.0
    assert on_time.mom_text == "-50.00 个百分点"
    assert on_time.year_ago is None and on_time.yoy_text is None
    assert days.direction == -1 and days.label == "平均办理用时（工作日） ↓"


def test_city_cards_pool_numerators_and_denominators(comps):
    settings = default_settings()
    (_, on_time) = overview.overview_cards(comps, OCT, settings, None, ["on_time_rate"])
    # 甲区 1/2 and 乙区 C5 (1 working day, promised 1) on time 1/1 → 2/3, not the mean of 50% and 100%
    assert (on_time.numerator, on_time.denominator) == (2.0, 3.0)
    assert on_time.value == pytest.approx(2 / 3)


def test_movers_and_index_trend(comps, inv):
    settings = default_settings()
    trend = overview.index_trend(comps, settings, ["2024-09", "2024-10"])
    assert set(trend["district"].to_list()) == {"甲区", "乙区", CITY}
    october = ranking(comps, OCT, settings, inv)
    for row in october.iter_rows(named=True):
        shown = trend.filter(pl.col("district") == row["district"], pl.col("month") == "2024-10")["index"][0]
        assert shown == pytest.approx(row["index"])
    movers = overview.movers(october, ranking(comps, SEP, settings, inv))
    september = ranking(comps, SEP, settings, inv).filter(pl.col("district") == "甲区")["index"][0]
    jia = movers.filter(pl.col("区县") == "甲区").row(0, named=True)
    assert jia["指数变化"] == pytest.approx(round(october.filter(pl.col("district") == "甲区")["index"][0] - september, 1),
                                        abs=0.11)
    # 乙区 has only its catalog in September: its index then comes from item indicators alone.
    assert movers["区县"].to_list() == sorted(movers["区县"].to_list(), key=lambda d: -abs(
        movers.filter(pl.col("区县") == d)["指数变化"][0]))


# --- comparison tables -------------------------------------------------------------------------------


def test_district_values_and_period_comparison(comps):
    settings = default_settings()
    values = comparison.district_values(comps, OCT, settings, None, ["online_case_rate"])
    jia = values.filter(pl.col("district") == "甲区").row(0, named=True)
    assert (jia["numerator"], jia["denominator"], jia["value_text"]) == (1.0, 4.0, "25.00%")
    assert jia["city"] == pytest.approx(1 / 5)
    assert jia["target"] == settings.indicators["online_case_rate"].target
    table = comparison.compare_table(values)
    assert table.filter(pl.col("区县") == "甲区")["全市值"][0] == "20.00%"

    compared = comparison.period_comparison(comps, OCT, SEP, ["甲区"], ["on_time_rate"])
    changes = comparison.period_change_table(compared)
    assert changes["区县"].to_list() == ["甲区", CITY]  # districts first, the city last
    row = changes.row(0, named=True)
    assert (row["本期（2024年10月）"], row["对比期（2024年9月）"], row["变化"], row["评价"]) == (
        "50.00%", "100.00%", "▼ -50.00 个百分点", "退步")
    assert (row["本期分子"], row["本期分母"], row["对比期分子"], row["对比期分母"]) == (1.0, 2.0, 1.0, 1.0)


def test_period_changes_come_first_by_size_the_chosen_indicators_first(comps):
    """Issue 27: the changes first, largest first (as shown: percentage points, days), the chosen
    indicators' before the others'; 持平 after every change; rows without one period's value last.

    October against September (data()): 实际网办率 甲区 1/4 vs 0/1 (+25), 全市 1/5 vs 0/1 (+20);
    按时办结率 甲区 1/2 vs 1/1 (−50), 全市 2/3 vs 1/1 (−33.33); 平均办理用时 甲区 3.5 vs 1 day (+2.5),
    全市 2.67 vs 1 (+1.67); 网上可办率 unchanged everywhere; 乙区 has no September cases."""
    ids = ["online_available_rate", "online_case_rate", "on_time_rate", "avg_handling_days"]
    compared = comparison.period_comparison(comps, OCT, SEP, None, ids)
    changes = comparison.period_change_table(compared, ["online_case_rate"])
    assert changes.columns[:4] == ["区县", "指标", "变化", "评价"]  # what a phone shows first
    rows = list(zip(changes["区县"], [n.split(" ")[0] for n in changes["指标"]], changes["变化"], changes["评价"],
                    strict=True))
    assert rows == [
        ("甲区", "实际网办率", "▲ +25.00 个百分点", "改善"),  # the chosen indicator first
        (CITY, "实际网办率", "▲ +20.00 个百分点", "改善"),
        ("甲区", "按时办结率", "▼ -50.00 个百分点", "退步"),
        (CITY, "按时办结率", "▼ -33.33 个百分点", "退步"),
        ("甲区", "平均办理用时（工作日）", "▲ +2.50 工作日", "退步"),
        (CITY, "平均办理用时（工作日）", "▲ +1.67 工作日", "退步"),
        ("乙区", "网上可办率", "0.00 个百分点", "持平"),  # 持平 after every change
        ("甲区", "网上可办率", "0.00 个百分点", "持平"),
        (CITY, "网上可办率", "0.00 个百分点", "持平"),
        ("乙区", "实际网办率", "—", "—"),  # no September value: last, the chosen indicator first
        ("乙区", "按时办结率", "—", "—"),
        ("乙区", "平均办理用时（工作日）", "—", "—"),
    ]
    # Nothing chosen (or everything): by size alone, −50 and −33.33 before +25.
    plain = comparison.period_change_table(compared)
    assert list(zip(plain["区县"], plain["变化"], strict=True))[:4] == [
        ("甲区", "▼ -50.00 个百分点"), (CITY, "▼ -33.33 个百分点"), ("甲区", "▲ +25.00 个百分点"),
        (CITY, "▲ +20.00 个百分点")]


def test_monthly_values_are_ratios_of_sums(comps):
    monthly = comparison.monthly_values(comps, ["2024-09", "2024-10"], None, ["on_time_rate"])
    city = monthly.filter(pl.col("district") == CITY, pl.col("month") == "2024-10").row(0, named=True)
    expected = aggregate(comps, OCT, by="city").filter(pl.col("indicator") == "on_time_rate").row(0, named=True)
    assert (city["numerator"], city["denominator"]) == (expected["numerator"], expected["denominator"])


def test_score_long_from_ranking(comps, inv):
    rank = ranking(comps, OCT, default_settings(), inv)
    scores = comparison.score_long(rank, ["on_time_rate", "hotline_completion_rate"], ["甲区"])
    assert scores.height == 2
    hotline = scores.filter(pl.col("indicator") == "hotline_completion_rate").row(0, named=True)
    assert hotline["score"] is None and hotline["value_text"] == "—"  # no hotline data: null, never 0


# --- indicator reference and settings ------------------------------------------------------------------


def test_indicator_reference_is_generated_from_registry_and_settings():
    settings = default_settings()
    table = reference.indicator_reference(settings)
    assert table.height == 28
    assert table["编号"].to_list() == [i.id for i in INDICATORS]
    row = table.filter(pl.col("编号") == "card_rate").row(0, named=True)
    assert row["方向"].startswith("↓")
    assert row["目标值"] == "0.00%" and row["底线值"] == "5.00%"
    weights = reference.group_weights(settings)
    assert weights["占指数比重（%）"].sum() == pytest.approx(100, abs=0.3)


def test_settings_table_round_trip_has_no_spurious_changes():
    settings = default_settings()
    rebuilt = settings_form.settings_from_frame(settings_form.settings_frame(settings), settings.rules.model_dump())
    assert rebuilt == settings
    edited = settings_form.settings_frame(settings).with_columns(
        pl.when(pl.col("编号") == "good_rate").then(99.5).otherwise(pl.col("目标值")).alias("目标值")
    )
    changed = settings_form.settings_from_frame(edited, settings.rules.model_dump())
    assert changed.indicators["good_rate"].target == 0.995
    diff = {k: v for k, v in changed.flat().items() if settings.flat()[k] != v}
    assert diff == {"indicators.good_rate.target": 0.995}


def test_settings_errors_are_chinese_and_name_the_indicator():
    settings = default_settings()
    frame = settings_form.settings_frame(settings).with_columns(
        pl.when(pl.col("编号") == "on_time_rate").then(pl.col("底线值")).otherwise(pl.col("目标值")).alias("目标值"),
        pl.when(pl.col("编号") == "good_rate").then(-2.0).otherwise(pl.col("权重")).alias("权重"),
    )
    with pytest.raises(settings_form.SettingsError) as err:
        settings_form.settings_from_frame(frame, {**settings.rules.model_dump(), "rectify_days": 0})
    messages = err.value.messages
    assert "按时办结率：目标值与底线值不能相同" in messages
    assert "好评率的权重不能小于 0" in messages
    assert "差评整改时限（工作日）不能小于 1" in messages
    empty = settings_form.settings_frame(settings).with_columns(pl.lit(None, dtype=pl.Float64).alias("权重"))
    with pytest.raises(settings_form.SettingsError, match="权重不能为空"):
        settings_form.settings_from_frame(empty, settings.rules.model_dump())


def test_change_labels():
    assert settings_form.setting_label("indicators.on_time_rate.target") == "按时办结率 · 目标值"
    assert settings_form.setting_label("rules.rectify_days") == "差评整改时限（工作日）"
    assert settings_form.setting_value_text("indicators.on_time_rate.target", 0.95) == "95.00%"
    assert settings_form.setting_value_text("indicators.on_time_rate.weight", 8.0) == "8"
    table = settings_form.changes_table([("indicators.card_rate.floor", 0.05, 0.04)])
    assert table.rows() == [("红黄牌发生率 · 底线值", "5.00%", "4.00%")]
    assert isinstance(ScoringSettings.model_validate(default_settings().model_dump()), ScoringSettings)


# --- drill-down -----------------------------------------------------------------------------------------


def test_alert_lists_count_like_the_indicators(comps, detail, inv):
    rank = ranking(comps, OCT, default_settings(), inv).filter(pl.col("district") == "甲区").row(0, named=True)
    red = alerts.alert_list(detail, alerts.RED_CARDS, OCT, ["甲区"])
    assert red["办件编号"].to_list() == ["C1"]
    assert red.height == rank["red_card_rate__num"]
    overdue = alerts.alert_list(detail, alerts.OVERDUE_OPEN, OCT, ["甲区"])
    assert overdue["办件编号"].to_list() == ["C2"]  # C3 is open but within its 20 working days
    assert overdue["超出承诺时限"][0] > 0
    late = alerts.alert_list(detail, alerts.BAD_LATE, OCT, ["甲区"])
    assert late["评价编号"].to_list() == ["E2"]
    assert late.height == rank["bad_rectified_on_time_rate__den"] - rank["bad_rectified_on_time_rate__num"]
    assert late["评价等级"][0] == "不满意"
    assert alerts.alert_list(detail, alerts.BAD_ALL, OCT, ["甲区"])["评价编号"].to_list() == ["E1", "E2"]
    assert alerts.alert_counts(detail, OCT) == {alerts.RED_CARDS: 1, alerts.OVERDUE_OPEN: 1, alerts.BAD_LATE: 1}
    assert alerts.alert_counts(detail, SEP) == {alerts.RED_CARDS: 0, alerts.OVERDUE_OPEN: 0, alerts.BAD_LATE: 0}
    one = alerts.for_district(detail, "甲区")
    for alert in alerts.ALERTS:
        assert alerts.alert_list(one, alert, OCT).equals(alerts.alert_list(detail, alert, OCT, ["甲区"]))
    # Narrowed to a department and an item.
    assert alerts.alert_list(detail, alerts.OVERDUE_OPEN, OCT, ["甲区"], "区人社局", "I2").height == 1
    assert alerts.alert_list(detail, alerts.OVERDUE_OPEN, OCT, ["甲区"], "区市场监管局").height == 0


def test_departments_and_items_add_up_to_the_district(comps, data):
    ids = ["online_case_rate", "on_time_rate", "bad_rate", "full_online_rate"]
    departments = drill.department_table(comps, OCT, "甲区", ids)
    assert departments["部门"].to_list() == ["区人社局", "区市场监管局"]
    district = aggregate(comps, OCT, districts=["甲区"]).filter(pl.col("indicator") == "online_case_rate")
    assert departments["实际网办率·分母"].sum() == district["denominator"][0]
    sources = drill.build_sources(data, Rules())
    parts = drill.item_parts(sources)
    items = drill.item_table(parts, alerts.build_detail(data, Rules()), OCT, "甲区", None, ids)
    assert items["事项编码"].to_list() == ["I1", "I2"]
    assert items["事项名称"].to_list() == ["食品经营许可", "社保转移"]
    for name in ("实际网办率", "按时办结率", "差评率", "全程网办率"):
        total = aggregate(comps, OCT, districts=["甲区"]).filter(
            pl.col("indicator") == next(i.id for i in INDICATORS if i.name == name))
        assert items[f"{name}·分子"].sum() == total["numerator"][0]
        assert items[f"{name}·分母"].sum() == total["denominator"][0]
    assert drill.item_table(drill.item_parts(drill.sources_for_district(sources, "甲区")),
                            alerts.build_detail(data, Rules()), OCT, "甲区", None, ids).equals(items)
    one = drill.item_table(parts, alerts.build_detail(data, Rules()), OCT, "甲区", "区人社局", ids)
    assert one["事项编码"].to_list() == ["I2"]
    assert drill.item_level_indicators(["hotline_completion_rate", "good_rate"]) == ["good_rate"]
    assert "hotline" not in drill.item_sources(sources) and "evaluations" in drill.item_sources(sources)
    assert drill.item_options(items) == {"I1": "I1 食品经营许可", "I2": "I2 社保转移"}


def test_a_district_read_alone_adds_up_like_the_city(sqlite_engine):
    """Drill-down reads one district's rows; catalogs stay in force in every month of the store, so
    the district's items add up to its numbers in the component table even in a month in which the
    district itself reported nothing."""
    def rows(kind: str, entries: list[dict]) -> pl.DataFrame:
        return frame(kind, entries).drop("batch_id", "period")

    items = rows("items", [{"district": d, "item_code": c, "online_depth": depth}
                           for d in ("甲区", "乙区") for c, depth in (("I1", 4), ("I2", 2))])
    import_frame(sqlite_engine, "items", items, file_name="items.xlsx", sha256="i", period="2024-01")
    cases = rows("cases", [
        {"district": "甲区", "accepted_at": at(2024, 9, 9), "completed_at": at(2024, 9, 10), "item_code": "I1"},
        {"district": "甲区", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 10), "item_code": "I1"},
        {"district": "乙区", "accepted_at": at(2024, 9, 9), "completed_at": at(2024, 9, 10), "item_code": "I2",
         "channel": "网上申请"},
    ])
    import_frame(sqlite_engine, "cases", cases, file_name="cases.xlsx", sha256="c")
    from metrics.prepare import load_dataset

    comps = components(load_dataset(sqlite_engine))
    detail, parts = detail_store.load_district(sqlite_engine, "乙区", Rules())
    # Only 乙区's rows were read; the detail holds its alert rows only (none here: no card, no 差评).
    assert set(parts["district"].to_list()) == {"乙区"}
    assert set(detail.item_names["district"].to_list()) == {"乙区"} and detail.cases.height == 0
    ids = ["full_online_rate", "online_available_rate", "online_case_rate"]
    for period in (SEP, OCT):
        items_table = drill.item_table(parts, detail, period, "乙区", None, ids)
        expected = aggregate(comps, period, districts=["乙区"])
        for ind in ids:
            name = next(i.name for i in INDICATORS if i.id == ind)
            row = expected.filter(pl.col("indicator") == ind)
            assert items_table[f"{name}·分母"].sum() == (row["denominator"][0] if row.height else 0), (period, ind)
            assert items_table[f"{name}·分子"].sum() == (row["numerator"][0] if row.height else 0), (period, ind)
    # October: 乙区 reported nothing, yet its two catalog items are in force, as in the city's table.
    october = drill.item_table(parts, detail, OCT, "乙区", None, ids)
    assert october["全程网办率·分母"].sum() == 2


# --- data quality -----------------------------------------------------------------------------------


def _import(engine, kind: str, district: str, month: str, *, late: bool = False, sha: str = "a") -> None:
    rows = {"cases": {"accepted_at": at(int(month[:4]), int(month[5:]), 8)},
            "evaluations": {"evaluated_at": at(int(month[:4]), int(month[5:]), 8), "rating": 5},
            "items": {"item_code": "I1", "online_depth": 2}}[kind]
    canonical = frame(kind, [{**rows, "district": district}]).drop("batch_id", "period")
    import_frame(engine, kind, canonical, file_name=f"{kind}-{district}-{month}.xlsx", sha256=sha + month,
                 user_name="张三", period=month if kind == "items" else None, late=late,
                 created_at=dt.datetime(2024, 11, 5, 9, 30))


def test_completeness_grid_and_histories(sqlite_engine):
    for name in ("甲区", "乙区"):
        store.add_district(sqlite_engine, name)
    _import(sqlite_engine, "cases", "甲区", "2024-09")
    _import(sqlite_engine, "cases", "甲区", "2024-10", late=True)
    _import(sqlite_engine, "cases", "乙区", "2024-09")
    _import(sqlite_engine, "items", "甲区", "2024-09")
    _import(sqlite_engine, "cases", "甲区", "2024-10", sha="b")  # a corrected export: version 2
    grid = quality.completeness(sqlite_engine)
    status = {(r["kind"], r["district"], r["month"]): r["status"] for r in grid.iter_rows(named=True)}
    assert status[("cases", "甲区", "2024-09")] == quality.PRESENT
    assert status[("cases", "甲区", "2024-10")] == quality.PRESENT  # the active version was on time
    assert status[("cases", "乙区", "2024-10")] == quality.MISSING
    assert status[("items", "甲区", "2024-10")] == quality.CARRIED
    assert status[("items", "乙区", "2024-09")] == quality.MISSING
    assert status[("hotline", "甲区", "2024-09")] == quality.MISSING
    files = {(r["kind"], r["district"], r["month"]): r["files"] for r in grid.iter_rows(named=True)}
    assert files[("cases", "甲区", "2024-10")] == 2
    summary = quality.completeness_summary(grid).row(0, named=True)
    assert summary == {"数据类型": "办件明细", "已报送": 3, "逾期报送": 0, "沿用": 0, "缺失": 1}
    assert quality.missing_list(grid).filter(pl.col("数据类型") == "办件明细").rows() == [("办件明细", "乙区", "2024-10")]

    history = store.batch_history(sqlite_engine)
    table = quality.batch_table(history)
    assert table["状态"].to_list().count("已被新版本替换") == 1
    candidates = quality.rollback_candidates(history)
    assert candidates.height == 1 and candidates["version"][0] == 1
    store.rollback_to(sqlite_engine, int(candidates["id"][0]), "李四")
    grid = quality.completeness(sqlite_engine)
    late = grid.filter(pl.col("kind") == "cases", pl.col("district") == "甲区", pl.col("month") == "2024-10")
    assert late["status"][0] == quality.LATE  # the late version is active again

    last = quality.last_uploads(sqlite_engine, today=dt.date(2024, 11, 15))
    assert last["区县"].to_list() == ["甲区", "乙区"]
    assert last.filter(pl.col("区县") == "甲区")["距今天数"][0] == 10
    assert "张三" in quality.validation_history(sqlite_engine)["操作人"].to_list()
    label = quality.batch_label(candidates.row(0, named=True))
    assert label.startswith(f"批次 {candidates['id'][0]} · 办件明细 · 甲区 2024-10 第 1 版")


def test_empty_store_quality(sqlite_engine):
    assert quality.completeness(sqlite_engine).height == 0
    assert quality.batch_table(store.batch_history(sqlite_engine)).height == 0
    store.add_district(sqlite_engine, "甲区")
    last = quality.last_uploads(sqlite_engine)
    assert last.rows() == [("甲区", None, None, None, None, None, None)]


def test_districts_with_data_keep_the_order_given(comps):
    present = set(comps.filter(pl.col("month") == "2024-10")["district"].to_list())
    order = [*sorted(present, reverse=True), "无数据区"]
    assert comparison.districts_with_data(comps, OCT, order) == sorted(present, reverse=True)
    assert comparison.districts_with_data(comps, Period("1999-01", "1999-01"), order) == []


# --- the 整改期内 count beside the two rectification rates ----------------------------------------------


def test_pending_bad_evaluations_are_shown_beside_the_rates_everywhere():
    from metrics.exports import rank_table_chinese

    # October 2024: V1 due (deadline 10-28) and not rectified, V2 (10-25, deadline 11-15) and V3 (乙区,
    # 10-30) within their rectification period, V4 rectified.
    data = dataset(evaluations=[
        {"eval_id": "V1", "rating": 1, "evaluated_at": at(2024, 10, 8), "rectify_status": "整改中"},
        {"eval_id": "V2", "rating": 2, "evaluated_at": at(2024, 10, 25), "rectify_status": "整改中"},
        {"eval_id": "V3", "rating": 2, "evaluated_at": at(2024, 10, 30), "district": "乙区"},
        {"eval_id": "V4", "rating": 2, "evaluated_at": at(2024, 10, 25), "rectify_status": "已整改",
         "rectified_at": at(2024, 10, 28)},
    ])
    comps, period, settings = components(data), Period("2024-10", "2024-10"), default_settings()
    cards = {c.key: c for c in overview.overview_cards(comps, period, settings, None,
                                                       ["bad_rectified_rate", "bad_rate"])}
    assert (cards["bad_rectified_rate"].numerator, cards["bad_rectified_rate"].denominator) == (1, 2)
    assert cards["bad_rectified_rate"].aside == "整改期内差评 2 条" and cards["bad_rate"].aside is None
    values = comparison.district_values(comps, period, settings, None, ["bad_rectified_on_time_rate"])
    table = comparison.compare_table(values)
    assert dict(zip(table["区县"], table[comparison.ASIDE_COLUMN], strict=True)) == {
        "甲区": "整改期内差评 1 条", "乙区": "整改期内差评 1 条"}
    # Indicators without such a count get no such column.
    plain = comparison.compare_table(comparison.district_values(comps, period, settings, None, ["bad_rate"]))
    assert comparison.ASIDE_COLUMN not in plain.columns
    change = comparison.period_change_table(comparison.period_comparison(
        comps, period, Period("2024-09", "2024-09"), None, ["bad_rectified_rate"]))
    city = change.filter(pl.col("区县") == CITY).row(0, named=True)
    assert city[f"{comparison.PERIOD_A}{comparison.ASIDE_COLUMN}"] == "整改期内差评 2 条"
    departments = drill.department_table(comps, period, "甲区", ["bad_rectified_rate"])
    assert departments["差评整改率·整改期内差评"].to_list() == [1.0]
    download = rank_table_chinese(ranking(comps, period, settings, inventory(data)))
    assert dict(zip(download["区县"], download["差评按时整改率·整改期内差评"], strict=True)) == {"甲区": 1, "乙区": 1}


def _strength_row(district: str, rank: int | None, groups: dict[str, float], scores: dict[str, float]) -> dict:
    row = {"district": district, "rank": rank, "index": 50.0}
    row.update({f"group_{g}": groups.get(g) for g in "ABCDE"})
    row.update({f"score_{i.id}": scores.get(i.id) for i in INDICATORS})
    return row


@pytest.mark.parametrize(
    ("groups", "scores", "strong", "weak", "weakest"),
    [
        ({"A": 90.0, "B": 50.0, "C": 70.0}, {"on_time_rate": 10.0, "good_rate": 80.0},
         "网上办事 90.0", "办理时效 50.0", "按时办结率 10.0"),
        # 80.04 and 79.96 both show as 80.0: a tie, not a strongest group.
        ({"A": 80.04, "B": 79.96, "C": 60.0}, {"on_time_rate": 0.0, "good_rate": 0.0},
         "并列：网上办事、办理时效 80.0", "便利度 60.0", "并列：按时办结率、好评率 0.0"),
        ({"A": 70.0}, {}, "—", "—", "—"),  # one group scored: nothing to compare
        ({g: 100.0 for g in "ABCDE"}, {"online_case_rate": 100.0},
         "各分组持平 100.0", "各分组持平 100.0", "实际网办率 100.0"),
        ({"A": 40.0, "E": 60.0}, {"online_available_rate": 0.0, "depth_3plus_rate": 0.0, "full_online_rate": 0.0,
                                  "online_case_rate": 0.0, "on_time_rate": 5.0},
         "12345热线 60.0", "网上办事 40.0", "并列：网上可办率、网办深度三级及以上占比、全程网办率 等 4 项 0.0"),
    ],
)
def test_strengths_name_strongest_and_weakest_without_false_claims(groups, scores, strong, weak, weakest):
    rank = pl.DataFrame([_strength_row("甲区", 1, groups, scores)],
                        schema={"district": pl.String, "rank": pl.Int64, "index": pl.Float64,
                                **{f"group_{g}": pl.Float64 for g in "ABCDE"},
                                **{f"score_{i.id}": pl.Float64 for i in INDICATORS}})
    out = overview.strengths(rank)
    assert out.columns == list(overview.STRENGTH_COLUMNS)
    assert out.row(0) == ("甲区", 1, strong, weak, weakest)


def test_strengths_follow_the_ranking(comps, inv):
    rank = ranking(comps, Period("2024-10", "2024-10"), default_settings(), inv)
    out = overview.strengths(rank)
    assert out["区县"].to_list() == rank["district"].to_list()
    assert out["排名"].to_list() == rank["rank"].to_list()
