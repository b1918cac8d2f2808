"""Chart builders (metrics/charts.py): colour means the score tier on every bar chart and a line's role on
every trend, both stated in a Chinese legend; trend lines labelled at their ends; Chinese labels,
formatted percentages, numerator and denominator in tooltips, nulls not drawn as zero."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import altair as alt
import polars as pl
import pytest

from datasets.domain.periods import Period
from metrics import charts, comparison
from metrics.compute import CITY, components
from metrics.registry import INDICATORS
from metrics.scoring import default_settings, ranking
from tests.factories import at, dataset, inventory

DISTRICTS = ["甲区", "乙区", "丙县"]
OCT = Period("2024-10", "2024-10")


@pytest.fixture(scope="module")
def data():
    """Three districts over September and October 2024 with cases, a red card and evaluations."""
    cases, evaluations = [], []
    for d, online in zip(DISTRICTS, (3, 1, 0), strict=True):
        for month in (9, 10):
            for n in range(4):
                cases.append({
                    "district": d, "accepted_at": at(2024, month, 8 + n), "completed_at": at(2024, month, 10 + n),
                    "channel": "网上申请" if n < online else "窗口", "promised_limit": 5.0, "legal_limit": 10.0,
                    "period": f"2024-{month:02d}",
                })
            evaluations.append({"district": d, "evaluated_at": at(2024, month, 20), "rating": 5 if d != "丙县" else 1,
                                "rectify_status": "未整改" if d == "丙县" else None, "period": f"2024-{month:02d}"})
    cases.append({"district": "乙区", "accepted_at": at(2024, 10, 8), "completed_at": at(2024, 10, 31),
                  "channel": "窗口", "promised_limit": 5.0, "legal_limit": 10.0, "period": "2024-10"})
    items = [{"district": d, "item_code": "I1", "online_depth": 4 if d == "甲区" else 2, "period": "2024-01"}
             for d in DISTRICTS]
    return dataset(cases=cases, items=items, evaluations=evaluations)


@pytest.fixture(scope="module")
def comps(data) -> pl.DataFrame:
    return components(data)


@pytest.fixture(scope="module")
def inv(data) -> pl.DataFrame:
    return inventory(data)


def spec(chart: charts.Chart) -> dict:
    return chart.to_dict()


def layers(chart_spec: dict) -> list[dict]:
    return chart_spec.get("layer", [chart_spec])


def dataset_rows(chart_spec: dict) -> list[dict]:
    """Every row of every dataset embedded in the chart."""
    return [row for rows in chart_spec["datasets"].values() for row in rows]


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (100.0, "优 ≥90"), (90.0, "优 ≥90"), (89.96, "优 ≥90"),  # shown as 90.0
        (89.94, "良 75–90"), (75.0, "良 75–90"), (74.9, "中 60–75"), (60.0, "中 60–75"),
        (59.9, "差 <60"), (0.0, "差 <60"), (None, None),
    ],
)
def test_tiers_of_a_score(score, tier):
    frame = pl.DataFrame({"s": [score]}, schema={"s": pl.Float64})
    assert frame.select(charts.tier_expr(pl.col("s")).alias("tier"))["tier"][0] == tier


def _colour(chart_spec: dict) -> dict:
    return next(layer["encoding"]["color"] for layer in layers(chart_spec) if "color" in layer.get("encoding", {}))


def test_bars_on_every_page_are_coloured_by_score_tier_with_a_legend(comps, inv):
    """One meaning of colour on every bar chart (总览, 区县对比, 时段对比, the bulletin's ranking): the
    score tier, all four tiers in the legend titled 得分等级, whichever tiers the data has."""
    settings = default_settings()
    scale = charts.tier_scale()
    assert scale.domain == list(charts.TIER_NAMES) and len(set(scale.range)) == 4
    rank = ranking(comps, OCT, settings, inv)
    values = comparison.district_values(comps, OCT, settings, None, ["online_case_rate"])
    compared = comparison.period_comparison(comps, OCT, OCT.previous(), None, ["online_case_rate"])
    built = {
        "ranking": charts.ranking_chart(rank, DISTRICTS),
        "compare": charts.compare_chart(values, "online_case_rate", DISTRICTS, settings),
        "periods": charts.period_compare_chart(compared, "online_case_rate", DISTRICTS, settings),
    }
    target = settings.indicators["online_case_rate"]
    for name, chart in built.items():
        chart_spec = spec(chart)
        colour = _colour(chart_spec)
        assert colour["field"] == "tier", name
        assert colour["scale"]["domain"] == list(charts.TIER_NAMES) and colour["scale"]["range"] == scale.range
        # Above the bars where the reference lines' or the periods' legend sits below.
        assert colour["title"] == "得分等级（分）" and colour["legend"]["orient"] == (
            "bottom" if name == "ranking" else "top")
        rows = [r for r in dataset_rows(chart_spec) if "tier" in r]
        assert rows, name
        for r in rows:
            score = r["index"] if name == "ranking" else (
                min(100.0, max(0.0, (r["value"] - target.floor) / (target.target - target.floor) * 100)))
            expected = None if score is None else next(t for t, low, _ in charts.TIERS if round(score, 1) >= low)
            assert r["tier"] == expected, (name, r)
    # 甲区 online 3 of 4 (75 %: score 90, 优), 乙区 1 of 5 (20 %: below the floor, 差).
    tiers = {r["district"]: r["tier"] for r in dataset_rows(spec(built["compare"])) if "tier" in r}
    assert tiers["甲区"] == "优 ≥90" and tiers["乙区"] == "差 <60"


@pytest.mark.parametrize(
    ("indicator", "values", "expected"),
    [
        ("on_time_rate", [0.001, 0.0012, 0.0015], ".2%"),  # ticks 0.01 % apart: ".1%" would repeat 0.1%
        ("on_time_rate", [0.95, 0.99], ".0%"),
        ("on_time_rate", [0.2, 0.8], ".0%"),
        ("on_time_rate", [0.971, 0.975], ".1%"),
        ("avg_handling_days", [1.8, 2.4], ",.1f"),
        ("avg_handling_days", [2.0, 12.0], ",.0f"),
        ("on_time_rate", [None, None], charts.axis_format("on_time_rate")),
    ],
)
def test_tick_format_has_enough_decimals_for_distinct_ticks(indicator, values, expected):
    assert charts.tick_format(indicator, values) == expected


@pytest.mark.parametrize(
    ("values", "domain", "note"),
    [
        ([0.97, 0.99, 1.0], [0.95, 1.0], "纵轴从 95% 起"),
        ([0.86, 0.99], [0.75, 1.0], "纵轴从 75% 起"),  # 0.86 − 0.065 rounded down to 5 %
        ([0.5, 0.99], None, None),  # low values: bars from zero
        ([], None, None),
    ],
)
def test_high_rates_get_a_scale_where_differences_show(values, domain, note):
    scale, shown_note = charts.value_scale("on_time_rate", values)
    assert shown_note == note
    if domain is None:
        assert scale.zero is True
    else:
        assert scale.domain == pytest.approx(domain) and scale.zero is False


def test_lines_pick_out_city_best_worst_and_chosen_with_labels(comps):
    monthly = comparison.monthly_values(comps, ["2024-09", "2024-10"], None, ["online_case_rate"])
    # October: 甲区 75 %, 乙区 20 %, 丙县 0 %: best 甲区, worst 丙县.
    chart_spec = spec(charts.trend_chart(monthly, "online_case_rate", DISTRICTS, highlight=["乙区"]))
    rows = dataset_rows(chart_spec)
    roles = {r["district"]: r["role"] for r in rows if "district" in r}
    assert roles == {"甲区": charts.BEST, "乙区": charts.CHOSEN, "丙县": charts.WORST, CITY: CITY}
    grey, picked, *texts = chart_spec["layer"]
    assert grey["transform"] == [{"filter": f"datum.role == '{charts.OTHERS}'"}]
    colour = picked["encoding"]["color"]
    assert colour["field"] == "role" and colour["title"] == "线条" and colour["legend"]["orient"] == "bottom"
    assert dict(zip(colour["scale"]["domain"], colour["scale"]["range"], strict=True)) == {
        CITY: charts.CITY_COLOUR, charts.BEST: charts.ROLE_COLOURS[charts.BEST],
        charts.WORST: charts.ROLE_COLOURS[charts.WORST], charts.CHOSEN: charts.ROLE_COLOURS[charts.CHOSEN]}
    # Labels at the line ends, in the lines' colours.
    assert all(t["mark"]["type"] == "text" and t["encoding"]["text"]["field"] == "label" for t in texts)
    labels = {r["label"]: r["month"] for t in texts for r in chart_spec["datasets"][t["data"]["name"]]}
    assert labels == {"甲区（最好）": "2024-10", "丙县（最差）": "2024-10", "乙区": "2024-10", CITY: "2024-10"}
    # Streamlit fits title, month labels and legend into the height: 300 and more leaves the plot ≥ 180 px.
    assert chart_spec["height"] >= 300
    # Nothing chosen: 全市, the best and the worst stand out, 乙区 is grey.
    plain = dataset_rows(spec(charts.trend_chart(monthly, "online_case_rate", DISTRICTS)))
    assert {r["district"]: r["role"] for r in plain if "district" in r}["乙区"] == charts.OTHERS


@pytest.mark.parametrize(
    ("last", "direction", "best", "worst"),
    [
        ({"甲区": 0.5, "乙区": 0.7, "丙县": 0.6}, 1, {"乙区"}, {"甲区"}),
        ({"甲区": 0.5, "乙区": 0.7, "丙县": 0.6}, -1, {"甲区"}, {"乙区"}),  # ↓ indicator: lowest is best
        ({"甲区": 1.0, "乙区": 1.0, "丙县": 0.6}, 1, {"甲区", "乙区"}, {"丙县"}),  # a tie shares the role
        ({"甲区": 0.0, "乙区": 0.0, "丙县": 0.0, "丁县": 0.1}, -1, set(), {"丁县"}),  # three tied: none picked
        ({"甲区": 0.6, "乙区": 0.6, "丙县": 0.6}, 1, set(), set()),  # all equal: no best, no worst
        ({"甲区": 0.6, "乙区": None, "丙县": None}, 1, set(), set()),  # one district: nothing to compare
    ],
)
def test_best_and_worst_lines(last, direction, best, worst):
    rows = [{"district": d, "month": "2024-10", "value": v} for d, v in last.items()]
    rows += [{"district": d, "month": "2024-09", "value": 0.9} for d in last]  # an earlier month does not count
    rows.append({"district": CITY, "month": "2024-10", "value": 2.0})  # the city is never best or worst
    roles = charts.line_roles(pl.DataFrame(rows), "value", direction, [*DISTRICTS, "丁县"], None)
    got = {r["district"]: r["role"] for r in roles.filter(pl.col("month") == "2024-10").iter_rows(named=True)}
    assert {d for d, r in got.items() if r == charts.BEST} == best
    assert {d for d, r in got.items() if r == charts.WORST} == worst
    assert got[CITY] == CITY


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 1.0, 0.5, 0.5], ["甲区、乙区（最好）", "丙县、丁县（最差）", CITY]),
        # Three chosen districts ending on one point: one short label.
        ([1.0, 1.0, 1.0, 0.5], ["甲区等3个区县", "丁县（最差）", CITY]),
    ],
)
def test_lines_ending_on_one_point_share_a_label(values, expected):
    districts = [*DISTRICTS, "丁县"]
    data = pl.DataFrame({"district": [*districts, CITY], "month": ["2024-10"] * 5, "value": [*values, 0.8]})
    roles = charts.line_roles(data, "value", 1, districts, districts[:3])
    labels = charts.line_labels(roles, "value", districts)
    assert sorted(labels["label"].to_list()) == sorted(expected)


def test_ranking_chart_orders_by_rank_and_labels_changes(comps, inv):
    rank = ranking(comps, OCT, default_settings(), inv)
    chart_spec = spec(charts.ranking_chart(rank, DISTRICTS))
    bars, text = chart_spec["layer"]
    assert text["mark"]["type"] == "text" and text["encoding"]["text"]["field"] == "label"
    assert bars["encoding"]["y"]["sort"] == rank["district"].to_list()
    assert bars["encoding"]["x"]["title"] == "政务服务效能指数"
    rows = {r["district"]: r for r in dataset_rows(chart_spec)}
    for r in rank.iter_rows(named=True):
        label = rows[r["district"]]["label"]
        assert label.startswith(f"{r['index']:.1f}  第{r['rank']}名")
        if r["rank_change"] and r["rank_change"] > 0:
            assert f"▲{r['rank_change']}" in label
        elif r["rank_change"] and r["rank_change"] < 0:
            assert f"▼{-r['rank_change']}" in label
    titles = [t["title"] for t in bars["encoding"]["tooltip"]]
    assert titles == ["区县", "排名", "上期排名", "排名变化", "效能指数", "得分等级（分）"]
    # Every district labelled, however narrow the container (Vega drops overlapping labels otherwise).
    assert bars["encoding"]["y"]["axis"]["labelOverlap"] is False
    # The index once rounded, to the one decimal of every page (51.946 → 51.9, not 51.95 → 52.0).
    assert all(rows[d]["index"] == round(v, 1) for d, v in zip(rank["district"], rank["index"], strict=True)
               if v is not None)
    assert bars["encoding"]["tooltip"][-2]["format"] == ",.1f"


def test_compare_chart_target_city_and_tooltips(comps):
    settings = default_settings()
    values = comparison.district_values(comps, OCT, settings, None, ["online_case_rate", "avg_handling_days"])
    chart_spec = spec(charts.compare_chart(values, "online_case_rate", DISTRICTS, settings))
    bars, rules = chart_spec["layer"]
    assert rules["mark"]["type"] == "rule"
    assert chart_spec["title"]["text"] == "实际网办率 ↑"
    # 0 %, 20 %, 75 % and a 60 % target: ticks 20 points apart need no decimals.
    assert bars["encoding"]["y"]["axis"]["format"] == ".0%"
    tips = {t["title"]: t for t in bars["encoding"]["tooltip"]}
    assert tips["实际网办率"]["format"] == ".2%"
    assert "分子：网上渠道受理件数" in tips and "分母：受理件数" in tips and "得分等级（分）" in tips
    lines = {r["line"]: r["target"] for r in dataset_rows(chart_spec) if "line" in r}
    assert lines["目标值"] == settings.indicators["online_case_rate"].target
    city = values.filter(pl.col("indicator") == "online_case_rate")["city"][0]
    assert lines[f"{CITY}值"] == pytest.approx(city)
    # Days are not formatted as percentages and the axis names the unit.
    days = spec(charts.compare_chart(values, "avg_handling_days", DISTRICTS, settings))["layer"][0]
    assert days["encoding"]["y"]["title"] == "工作日"
    assert re.fullmatch(r",\.\df", days["encoding"]["y"]["axis"]["format"])


def test_heatmap_shows_missing_scores_as_dash(comps, inv):
    rank = ranking(comps, OCT, default_settings(), inv)
    scores = comparison.score_long(rank)
    chart_spec = spec(charts.heatmap_chart(scores))
    rows = dataset_rows(chart_spec)
    assert len(rows) == len(DISTRICTS) * len(INDICATORS)
    missing = [r for r in rows if r["score"] is None]
    assert missing and all(r["score_text"] == "—" and r["value_text"] == "—" for r in missing)
    rect, empty = chart_spec["layer"][:2]
    assert rect["encoding"]["color"]["field"] == "tier"
    assert rect["encoding"]["color"]["scale"]["domain"] == list(charts.TIER_NAMES)
    assert all(r["tier"] is None for r in missing)
    assert rect["transform"] == [{"filter": "isValid(datum.score)"}]
    assert empty["transform"] == [{"filter": "!isValid(datum.score)"}] and empty["mark"]["color"] == "#e6e6e6"
    assert rect["encoding"]["y"]["sort"] == [i.name for i in INDICATORS]
    assert rect["encoding"]["x"]["sort"] == rank["district"].to_list()


def _vega_expr(expr: str, width: float) -> float:
    """A ``cond ? a : b`` Vega expression over ``width``, evaluated."""
    cond, _, rest = expr.partition(" ? ")
    yes, _, no = rest.partition(" : ")
    return float(yes if eval(cond.replace("width", str(width))) else no)  # our own spec's expression


@pytest.mark.parametrize(("plot_px", "angle", "opacity"), [
    (200, -90, 0),  # a phone: 20 px a column
    (1000, -45, 1),  # a desk: 100 px a column
])
def test_heatmap_on_a_phone_stands_names_upright_and_drops_cell_text(comps, inv, plot_px, angle, opacity):
    """Issue 27: at 390 px the slanted district names overlapped and three-digit scores overflowed
    their cells; the chart now reads its own width (Vega's ``width`` signal)."""
    rank = ranking(comps, OCT, default_settings(), inv)
    chart_spec = spec(charts.heatmap_chart(comparison.score_long(rank)))
    columns = len(rank["district"])
    width = plot_px / 10 * columns  # each column as wide as one of ten districts across ``plot_px``
    angle_expr = chart_spec["layer"][0]["encoding"]["x"]["axis"]["labelAngle"]["expr"]
    assert _vega_expr(angle_expr, width) == angle
    for text in chart_spec["layer"][2:]:
        assert text["mark"]["type"] == "text"
        assert _vega_expr(text["mark"]["opacity"]["expr"], width) == opacity


def test_trend_and_period_charts_keep_nulls(comps):
    values = comparison.monthly_values(comps, ["2024-08", "2024-09", "2024-10"], None, ["on_time_rate"])
    rows = [r for r in dataset_rows(spec(charts.trend_chart(values, "on_time_rate", DISTRICTS))) if "district" in r]
    august = [r for r in rows if r["month"] == "2024-08"]
    assert all(r["value"] is None for r in august)  # no data: a gap, never 0
    assert {r["district"] for r in rows} == {*DISTRICTS, CITY}
    compared = comparison.period_comparison(comps, OCT, OCT.previous(), None, ["on_time_rate"])
    chart_spec = spec(charts.period_compare_chart(compared, "on_time_rate", DISTRICTS, default_settings()))
    assert chart_spec["encoding"]["xOffset"]["field"] == "period_name"
    assert {r["period_name"] for r in dataset_rows(chart_spec)} == {"本期：2024年10月", "对比期：2024年9月"}


def test_completeness_chart_colours_statuses():
    grid = pl.DataFrame({
        "kind": ["cases"] * 3, "kind_label": ["办件明细"] * 3, "district": ["甲区"] * 3,
        "month": ["2024-08", "2024-09", "2024-10"], "status": ["已报送", "逾期报送", "缺失"],
        "files": [1, 1, 0], "rows": [10, 12, 0],
    })
    chart_spec = spec(charts.completeness_chart(grid))
    colour = chart_spec["spec"]["encoding"]["color"]
    assert colour["scale"]["domain"] == list(charts.STATUS_COLOURS)
    assert chart_spec["facet"]["row"]["field"] == "kind_label"


def test_chart_builders_never_call_streamlit():
    source = Path(charts.__file__).read_text(encoding="utf-8")
    imported = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not any(name.startswith("streamlit") for name in imported)
    assert isinstance(charts.heatmap_chart(pl.DataFrame({
        "district": ["甲区"], "indicator": ["on_time_rate"], "name": ["按时办结率"], "group": ["B"],
        "score": [None], "value": [None], "numerator": [0.0], "denominator": [0.0], "value_text": ["—"],
    }, schema_overrides={"score": pl.Float64, "value": pl.Float64})), alt.LayerChart)
    json.dumps(spec(charts.index_trend_chart(pl.DataFrame(schema={"district": pl.String, "month": pl.String,
                                                                  "index": pl.Float64}), DISTRICTS)))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([90.0, 70.0, 50.0], [0.0, 0.0, 0.0]),  # far apart: each label at its line
        ([72.0, 71.0, 50.0], [-5.0, 5.0, 0.0]),  # lines 5 px apart: labels spread to 15 px around their middle
        ([60.0, 60.0, 60.0], [-15.0, 0.0, 15.0]),  # one point: a column of three
        ([], []),
    ],
)
def test_line_end_labels_keep_apart(values, expected):
    # 40 units × 1.15 over 230 px: 5 px per unit, so 72 and 71 are 5 px apart (less than LABEL_GAP).
    assert charts.label_offsets(values, 50.0, 90.0, 230.0) == pytest.approx(expected)
