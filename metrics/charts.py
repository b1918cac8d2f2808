"""Altair chart builders for the dashboard. They return charts and never call Streamlit.

Every chart takes the list of all districts so that ``district_scale`` gives each district the same
colour on every page; labels are Chinese, percentages are formatted, and tooltips carry the
numerator and denominator behind each value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import polars as pl

from metrics.compute import CITY
from metrics.formatting import INDEX, fmt_value, shown_column
from metrics.registry import BY_ID, INDICATORS
from metrics.units import INDEX_UNIT, NULL_TEXT

Chart = alt.Chart | alt.LayerChart | alt.FacetChart | alt.VConcatChart | alt.HConcatChart

# Tableau 20 without its greys: distinct, colour-blind-tolerable hues for up to 18 districts.
PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#a0cbe8", "#ffbe7d", "#8cd17d", "#86bcb6", "#f1ce63", "#d4a6c8", "#fabfd2",
    "#d37295", "#499894",
)
CITY_COLOUR = "#3b3b3b"
TARGET_COLOUR = "#2e7d32"

STATUS_COLOURS = {"已报送": "#59a14f", "沿用": "#a7d3a0", "逾期报送": "#f28e2b", "缺失": "#e15759"}


def district_domain(districts: Sequence[str]) -> list[str]:
    """All districts in their configured order, then 全市."""
    return [*[d for d in districts if d != CITY], CITY]


def district_scale(districts: Sequence[str]) -> alt.Scale:
    """The one colour scale for districts: the same district has the same colour on every page."""
    domain = district_domain(districts)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(domain) - 1)] + [CITY_COLOUR]
    return alt.Scale(domain=domain, range=colours)


def district_colour(district: str, districts: Sequence[str]) -> str:
    scale = district_scale(districts)
    return dict(zip(scale.domain, scale.range, strict=True))[district]  # type: ignore[arg-type]


def value_format(indicator_id: str) -> str:
    """d3 format of an indicator's values (percentages as %, others with two decimals)."""
    return BY_ID[indicator_id].unit.d3_format


def axis_format(indicator_id: str) -> str:
    return BY_ID[indicator_id].unit.d3_axis_format


def axis_title(indicator_id: str) -> str | None:
    """The value axis title: the unit when it is not a percentage (the chart title names the indicator)."""
    unit = BY_ID[indicator_id].unit
    return None if unit.is_percent else unit.name


GREY = "#c9c9c9"
OTHERS = "其他区县"


def tick_format(indicator_id: str, values: pl.Series | Sequence[float | None]) -> str:
    """A d3 format with as many decimals as the values' spread needs, so that no two ticks read the
    same ("0.1%, 0.1%, 0.1%") and every tick of an axis has the same number of decimals."""
    unit = BY_ID[indicator_id].unit
    percent = unit.is_percent
    present = [float(v) for v in values if v is not None]
    if not present:
        return axis_format(indicator_id)
    scale = unit.scale
    span = (max(present) - min(present)) * scale
    step = span / 4 if span > 0 else max(abs(max(present)) * scale * 0.01, 0.01)
    decimals = max(0, min(3, math.ceil(-math.log10(step)))) if step < 1 else 0
    return f".{decimals}%" if percent else f",.{decimals}f"


def value_scale(indicator_id: str, values: Sequence[float | None]) -> tuple[alt.Scale, str | None]:
    """The value axis of bars: from 0, except for rates that are all high (按时办结率 near 100 %), whose
    bars start at a round percentage below the lowest value so that differences show; the note says so."""
    present = [float(v) for v in values if v is not None]
    if not BY_ID[indicator_id].unit.is_percent or not present or min(present) < 0.8:
        return alt.Scale(zero=True), None
    low, high = min(present), max(present)
    start = math.floor((low - max(high - low, 0.01) * 0.5) * 20) / 20  # a multiple of 5 %
    start = max(0.0, min(start, 0.95))
    return alt.Scale(domain=[start, max(1.0, high)], zero=False, clamp=True), f"纵轴从 {start:.0%} 起"


def _title(indicator_id: str, note: str | None = None) -> alt.TitleParams:
    text = f"{BY_ID[indicator_id].name} {BY_ID[indicator_id].arrow}"
    return alt.TitleParams(text, subtitle=note or "", anchor="start", subtitleColor="#8a6d3b")


def emphasis(data: pl.DataFrame, highlight: Sequence[str] | None) -> pl.DataFrame:
    """Add ``shown``: the district's own name for the chosen districts and 全市, 其他区县 for the rest
    (drawn grey). With no district chosen only 全市 stands out."""
    chosen = {*(highlight or ()), CITY}
    return data.with_columns(
        pl.when(pl.col("district").is_in(list(chosen))).then(pl.col("district")).otherwise(pl.lit(OTHERS))
        .alias("shown")
    )


def _emphasis_scale(districts: Sequence[str], shown: Sequence[str]) -> alt.Scale:
    full = dict(zip(district_scale(districts).domain, district_scale(districts).range, strict=True))  # type: ignore[arg-type]
    domain = [d for d in district_domain(districts) if d in set(shown)]
    return alt.Scale(domain=[*domain, OTHERS], range=[*(full[d] for d in domain), GREY])


def _lines(data: pl.DataFrame, y: alt.Y, districts: Sequence[str], tooltip: list[alt.Tooltip],
           highlight: Sequence[str] | None, height: int) -> Chart:
    """Monthly lines: the chosen districts and 全市 (dashed) in colour, the other districts thin and grey."""
    data = emphasis(data.with_columns((pl.col("district") == CITY).alias("is_city")), highlight)
    shown = [d for d in dict.fromkeys(data["shown"].to_list()) if d != OTHERS]
    x = alt.X("month:O", title=None, axis=alt.Axis(labelAngle=-45, labelOverlap=True))
    grey = (
        alt.Chart().transform_filter(f"datum.shown == '{OTHERS}'")
        .mark_line(strokeWidth=1, color=GREY, opacity=0.8)
        .encode(x=x, y=y, detail="district:N", tooltip=tooltip)
    )
    coloured = (
        alt.Chart().transform_filter(f"datum.shown != '{OTHERS}'")
        .mark_line(point=True, strokeWidth=2.5)
        .encode(
            x=x, y=y,
            color=alt.Color("shown:N", scale=_emphasis_scale(districts, shown), legend=_legend(), title=None),
            strokeDash=alt.StrokeDash("is_city:N", legend=None, scale=alt.Scale(domain=[False, True],
                                                                                range=[[1, 0], [6, 3]])),
            tooltip=tooltip,
        )
    )
    return alt.layer(grey, coloured, data=data).properties(height=height)


def _district_axis(districts: Sequence[str], present: set[str]) -> alt.X:
    return alt.X(
        "district:N",
        title=None,
        sort=[d for d in district_domain(districts) if d in present],
        axis=alt.Axis(labelAngle=-45, labelOverlap=False, labelLimit=120),
    )


def _legend() -> alt.Legend:
    """District legends below the chart, several per row, so that long lists are never cut off."""
    return alt.Legend(orient="bottom", columns=4, symbolLimit=0, labelLimit=120, title=None)


def _num_den_tooltips(indicator_id: str | None = None) -> list[alt.Tooltip]:
    num = BY_ID[indicator_id].numerator_label if indicator_id else "分子"
    den = BY_ID[indicator_id].denominator_label if indicator_id else "分母"
    return [
        alt.Tooltip("numerator:Q", title=f"分子：{num}", format=",.2f"),
        alt.Tooltip("denominator:Q", title=f"分母：{den}", format=",.2f"),
    ]


# --- overview ---------------------------------------------------------------------------------------


def _change_label(change: pl.Expr, prev: pl.Expr) -> pl.Expr:
    return (
        pl.when(prev.is_null())
        .then(pl.lit("（上期无排名）"))
        .when(change > 0)
        .then(pl.lit("上升") + change.cast(pl.String) + pl.lit("位"))
        .when(change < 0)
        .then(pl.lit("下降") + (-change).cast(pl.String) + pl.lit("位"))
        .otherwise(pl.lit("持平"))
    )


def ranking_chart(rank: pl.DataFrame, districts: Sequence[str]) -> Chart:
    """Horizontal bars of the index by district (best first), labelled with the rank change.

    ``rank``: metrics.scoring.ranking() output (district, rank, prev_rank, rank_change, index, ...).
    """
    data = rank.select(
        "district",
        "rank",
        "prev_rank",
        "rank_change",
        "ranked",
        # Rounded once, as every page shows it (51.946 → 51.9, never 51.95 → 52.0).
        shown_column(pl.col("index")),
        _change_label(pl.col("rank_change"), pl.col("prev_rank")).alias("change_label"),
    ).with_columns(
        pl.col("index").map_elements(lambda v: fmt_value(INDEX, v), return_dtype=pl.String).alias("index_text"),
    ).with_columns(
        pl.when(pl.col("index").is_null())
        .then(pl.lit("—（无数据）"))
        .when(~pl.col("ranked"))
        .then(pl.col("index_text") + pl.lit("  未排名（数据不全）"))
        .otherwise(
            pl.col("index_text") + pl.lit("  第") + pl.col("rank").cast(pl.String)
            + pl.lit("名 ") + pl.col("change_label").str.replace("上升", "▲").str.replace("下降", "▼")
            .str.replace("位", "")
        )
        .alias("label")
    )
    order = data["district"].to_list()
    base = alt.Chart().encode(
        # Every district labelled: Vega drops overlapping labels by default (every second one in a
        # narrow container).
        y=alt.Y("district:N", sort=order, title=None, axis=alt.Axis(labelLimit=160, labelOverlap=False)),
    )
    bars = base.mark_bar().encode(
        x=alt.X("index:Q", title="政务服务效能指数", scale=alt.Scale(domain=[0, 115]),
                axis=alt.Axis(values=[0, 20, 40, 60, 80, 100])),
        color=alt.Color("district:N", scale=district_scale(districts), legend=None),
        opacity=alt.condition("datum.ranked", alt.value(1.0), alt.value(0.35)),
        tooltip=[
            alt.Tooltip("district:N", title="区县"),
            alt.Tooltip("rank:Q", title="排名"),
            alt.Tooltip("prev_rank:Q", title="上期排名"),
            alt.Tooltip("change_label:N", title="排名变化"),
            alt.Tooltip("index:Q", title="效能指数", format=INDEX_UNIT.d3_format),
        ],
    )
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(
        x=alt.X("index:Q"), text=alt.Text("label:N")
    )
    return alt.layer(bars, text, data=data).properties(height=max(160, 28 * data.height))


def index_trend_chart(trend: pl.DataFrame, districts: Sequence[str], highlight: Sequence[str] | None = None) -> Chart:
    """Lines of the index by month: the chosen districts and 全市 (dashed) stand out, the rest grey.

    ``trend``: district, month, index.
    """
    data = trend.with_columns(shown_column(pl.col("index")))
    y = alt.Y("index:Q", title="效能指数", scale=alt.Scale(zero=False),
              axis=alt.Axis(format=",.0f", tickMinStep=1))
    tooltip = [
        alt.Tooltip("district:N", title="区县"),
        alt.Tooltip("month:O", title="月份"),
        alt.Tooltip("index:Q", title="效能指数", format=INDEX_UNIT.d3_format),
    ]
    return _lines(data, y, districts, tooltip, highlight, 380)


# --- district comparison ------------------------------------------------------------------------------


def compare_chart(values: pl.DataFrame, indicator_id: str, districts: Sequence[str]) -> Chart:
    """One indicator across districts: bars, the target (green) and the city value (dashed).

    ``values``: metrics.comparison.district_values() rows of this indicator.
    """
    data = values.filter(pl.col("indicator") == indicator_id)
    fmt = value_format(indicator_id)
    every = [*data["value"].to_list(), *data["target"].to_list(), *data["city"].to_list()]
    scale, note = value_scale(indicator_id, every)
    bars = (
        alt.Chart()  # the data sits on the layer: Altair deep-copies sub-charts, data included
        .mark_bar()
        .encode(
            x=_district_axis(districts, set(data["district"].to_list())),
            y=alt.Y("value:Q", title=axis_title(indicator_id), scale=scale,
                    axis=alt.Axis(format=tick_format(indicator_id, every))),
            color=alt.Color("district:N", scale=district_scale(districts), legend=None),
            tooltip=[
                alt.Tooltip("district:N", title="区县"),
                alt.Tooltip("value:Q", title=BY_ID[indicator_id].name, format=fmt),
                *_num_den_tooltips(indicator_id),
                alt.Tooltip("target:Q", title="目标值", format=fmt),
                alt.Tooltip("city:Q", title=f"{CITY}值", format=fmt),
            ],
        )
    )
    target = data.select("target").unique().with_columns(pl.lit("目标值").alias("line"))
    city = data.select(pl.col("city").alias("target")).unique().with_columns(pl.lit(f"{CITY}值").alias("line"))
    lines = pl.concat([target, city]).drop_nulls("target")
    rules = (
        alt.Chart(lines)
        .mark_rule(strokeWidth=2)
        .encode(
            y=alt.Y("target:Q"),
            color=alt.Color("line:N", scale=alt.Scale(domain=["目标值", f"{CITY}值"],
                                                      range=[TARGET_COLOUR, CITY_COLOUR]), title="参考线",
                            legend=alt.Legend(orient="bottom")),  # below: on a phone the bars keep the width
            strokeDash=alt.StrokeDash("line:N", scale=alt.Scale(domain=["目标值", f"{CITY}值"],
                                                               range=[[1, 0], [6, 3]]), legend=None),
            tooltip=[alt.Tooltip("line:N", title="参考线"), alt.Tooltip("target:Q", title="取值", format=fmt)],
        )
    )
    chart = alt.layer(bars, rules, data=data).resolve_scale(color="independent").properties(
        title=_title(indicator_id, note), height=340
    )
    return chart


# Heat map columns (pixels) narrower than this: district names upright; than this: no score text in the cells.
HEAT_SLANT_PX, HEAT_TEXT_PX = 40, 24


def heatmap_chart(scores: pl.DataFrame) -> Chart:
    """District × indicator scores (0–100); cells without data grey with “—”.

    ``scores``: metrics.comparison.score_long() output, districts in ranking order.
    """
    data = scores.with_columns(
        pl.col("score").round(1),
        pl.when(pl.col("score").is_null()).then(pl.lit(NULL_TEXT)).otherwise(pl.col("score").round(0).cast(pl.Int64)
                                                                        .cast(pl.String)).alias("score_text"),
    )
    order = [i.name for i in INDICATORS if i.name in set(data["name"].to_list())]
    rows = list(dict.fromkeys(data["district"].to_list()))
    # Indicators down the side (names stay horizontal and readable), districts across in ranking order.
    # On a phone a column is narrower than a slanted name: the names stand upright, and the scores
    # (readable in the tooltip) leave cells too narrow for three digits.
    column_px = f"width / {max(len(rows), 1)}"
    base = alt.Chart().encode(
        y=alt.Y("name:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False,
                                                                 labelLimit=alt.ExprRef(expr="width < 300 ? 130 : 200"))),
        x=alt.X("district:N", sort=rows, title=None,
                axis=alt.Axis(orient="top", labelAngle=alt.ExprRef(expr=f"{column_px} < {HEAT_SLANT_PX} ? -90 : -45"),
                              labelOverlap=False, labelLimit=120)),
    )
    tooltip = [
        alt.Tooltip("district:N", title="区县"),
        alt.Tooltip("name:N", title="指标"),
        alt.Tooltip("score_text:N", title="得分"),
        alt.Tooltip("value_text:N", title="实际值"),
        *_num_den_tooltips(),
    ]
    # Filters rather than alt.condition: conditions are costly to build and validate on every rerun.
    scored = base.transform_filter("isValid(datum.score)").mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("score:Q", title="得分", scale=alt.Scale(domain=[0, 100], scheme="redyellowgreen")),
        tooltip=tooltip,
    )
    empty = base.transform_filter("!isValid(datum.score)").mark_rect(
        stroke="white", strokeWidth=1, color="#e6e6e6"
    ).encode(tooltip=tooltip)
    dark = "isValid(datum.score) && (datum.score < 25 || datum.score > 80)"
    shown = alt.ExprRef(expr=f"{column_px} < {HEAT_TEXT_PX} ? 0 : 1")
    light_text = base.transform_filter(dark).mark_text(fontSize=10, color="white", opacity=shown).encode(
        text="score_text:N")
    dark_text = base.transform_filter(f"!({dark})").mark_text(fontSize=10, color="black", opacity=shown).encode(
        text="score_text:N")
    return alt.layer(scored, empty, light_text, dark_text, data=data).properties(height=alt.Step(22))


# --- periods and trends ---------------------------------------------------------------------------


def trend_chart(values: pl.DataFrame, indicator_id: str, districts: Sequence[str],
                highlight: Sequence[str] | None = None) -> Chart:
    """One indicator by month: the chosen districts and 全市 (dashed) stand out, the other districts grey.

    ``values``: metrics.comparison.monthly_values().
    """
    data = values.filter(pl.col("indicator") == indicator_id)
    fmt = value_format(indicator_id)
    y = alt.Y("value:Q", title=axis_title(indicator_id), scale=alt.Scale(zero=False),
              axis=alt.Axis(format=tick_format(indicator_id, data["value"].to_list()), tickCount=5))
    tooltip = [
        alt.Tooltip("district:N", title="区县"),
        alt.Tooltip("month:O", title="月份"),
        alt.Tooltip("value:Q", title=BY_ID[indicator_id].name, format=fmt),
        *_num_den_tooltips(indicator_id),
    ]
    # The height covers title, month labels and legend too: 330 leaves the plot itself about 200 px.
    return _lines(data, y, districts, tooltip, highlight, 330).properties(title=_title(indicator_id))


def period_compare_chart(comparison: pl.DataFrame, indicator_id: str, districts: Sequence[str]) -> Chart:
    """Two periods side by side per district (本期 solid, 对比期 pale). ``comparison``: period_comparison()."""
    data = comparison.filter(pl.col("indicator") == indicator_id).with_columns(
        (pl.col("period") + "：" + pl.col("period_label")).alias("period_name")
    )
    fmt = value_format(indicator_id)
    names = data.select("period", "period_name").unique().sort("period", descending=True)["period_name"].to_list()
    present = set(data["district"].to_list())
    scale, note = value_scale(indicator_id, data["value"].to_list())
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=_district_axis(districts, present),
            xOffset=alt.XOffset("period_name:N", sort=names),
            y=alt.Y("value:Q", title=axis_title(indicator_id), scale=scale,
                    axis=alt.Axis(format=tick_format(indicator_id, data["value"].to_list()))),
            color=alt.Color("district:N", scale=district_scale(districts), legend=None),
            opacity=alt.Opacity("period_name:N", sort=names, scale=alt.Scale(domain=names, range=[1.0, 0.45][: len(names)]),
                                title="时段", legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("district:N", title="区县"),
                alt.Tooltip("period_name:N", title="时段"),
                alt.Tooltip("value:Q", title=BY_ID[indicator_id].name, format=fmt),
                *_num_den_tooltips(indicator_id),
            ],
        )
        .properties(title=_title(indicator_id, note), height=340)
    )
    return chart


# --- data quality -----------------------------------------------------------------------------------


def completeness_chart(grid: pl.DataFrame) -> Chart:
    """District × month cells coloured 已报送 / 逾期报送 / 沿用 / 缺失, one row of panels per kind.

    ``grid``: datasets.quality.completeness() (district, kind_label, month, status, files, rows).
    """
    domain = list(STATUS_COLOURS)
    rows = list(dict.fromkeys(grid["district"].to_list()))
    kinds = list(dict.fromkeys(grid["kind_label"].to_list()))
    base = alt.Chart(grid).mark_rect(stroke="white", strokeWidth=1).encode(
        x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
        y=alt.Y("district:N", title=None, sort=rows, axis=alt.Axis(labelOverlap=False)),
        color=alt.Color("status:N", title="状态",
                        scale=alt.Scale(domain=domain, range=[STATUS_COLOURS[s] for s in domain])),
        tooltip=[
            alt.Tooltip("kind_label:N", title="数据类型"),
            alt.Tooltip("district:N", title="区县"),
            alt.Tooltip("month:O", title="月份"),
            alt.Tooltip("status:N", title="状态"),
            alt.Tooltip("files:Q", title="版本数"),
            alt.Tooltip("rows:Q", title="行数", format=","),
        ],
    )
    return (
        base.properties(height=alt.Step(18), width=alt.Step(24))
        .facet(row=alt.Row("kind_label:N", title=None, sort=kinds,
                           header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=13)))
    )
