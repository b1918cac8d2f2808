"""Altair chart builders for the dashboard. They return charts and never call Streamlit.

Colour means one thing on every page and says so in a legend: bars are coloured by the score tier
(得分等级 优/良/中/差) of what they show, the index or an indicator's score against its target and
floor, in the hues of the score heat map; trend lines pick out 全市, the best and the worst district
and the chosen ones, each labelled at its line end, and draw the rest grey. Labels are Chinese,
percentages are formatted, and tooltips carry the numerator and denominator behind each value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import polars as pl

from metrics.compute import CITY
from metrics.formatting import INDEX, fmt_value, shown_column
from metrics.registry import BY_ID, INDICATORS, UP
from metrics.scoring import ScoringSettings, score_expr
from metrics.units import INDEX_UNIT, NULL_TEXT

Chart = alt.Chart | alt.LayerChart | alt.FacetChart | alt.VConcatChart | alt.HConcatChart

CITY_COLOUR = "#3b3b3b"
TARGET_COLOUR = "#2e7d32"
GREY = "#c9c9c9"
OTHERS = "其他区县"

STATUS_COLOURS = {"已报送": "#59a14f", "沿用": "#a7d3a0", "逾期报送": "#f28e2b", "缺失": "#e15759"}

# --- colour meaning, defined once -------------------------------------------------------------------

# Score tiers of a 0–100 score (the index or an indicator's score): (name, lowest score, colour), best
# first. The hues are those of the heat map's red-yellow-green score scale, so a colour reads the same
# on every page; a score sits in a tier as it is shown, rounded to one decimal (89.96 shows 90.0: 优).
TIER_TITLE = "得分等级（分）"
TIERS: tuple[tuple[str, float, str], ...] = (
    ("优 ≥90", 90.0, "#1a9641"),
    ("良 75–90", 75.0, "#a6d96a"),
    ("中 60–75", 60.0, "#fdae61"),
    ("差 <60", -math.inf, "#d7191c"),
)
TIER_NAMES = tuple(name for name, _, _ in TIERS)

# Roles of the lines of a trend (the legend's entries, in this order).
ROLE_TITLE = "线条"
BEST, WORST, CHOSEN = "最好", "最差", "所选区县"  # short: the legend fits one row at 390 px
ROLE_COLOURS: dict[str, str] = {CITY: CITY_COLOUR, BEST: TIERS[0][2], WORST: TIERS[-1][2], CHOSEN: "#2c7bb6",
                                OTHERS: GREY}
MAX_TIED = 2
TREND_NOTE = (f"黑色虚线为{CITY}，绿色为期末最好的区县，红色为最差的区县（超过两个区县并列时不突出），"
              "蓝色为在左侧“区县”中所选的区县，线尾注明区县名称；其余区县为灰色细线。")


def tier_expr(score: pl.Expr) -> pl.Expr:
    """The tier name of a 0–100 score (null stays null)."""
    shown = score.round(1)
    out = pl.when(score.is_null()).then(pl.lit(None, dtype=pl.String))
    for name, low, _ in TIERS[:-1]:
        out = out.when(shown >= low).then(pl.lit(name))
    return out.otherwise(pl.lit(TIERS[-1][0]))


def tier_scale() -> alt.Scale:
    """Every tier in the domain, present or not, so that the legend and the colours never shift."""
    return alt.Scale(domain=list(TIER_NAMES), range=[colour for _, _, colour in TIERS])


def tier_colour(orient: str = "bottom") -> alt.Color:
    """Colour by the ``tier`` column, with the tier legend below the chart (above it where another
    legend sits below: side by side, two legends do not fit a phone's width)."""
    return alt.Color("tier:N", scale=tier_scale(), title=TIER_TITLE,
                     legend=alt.Legend(orient=orient, columns=4, symbolLimit=0, labelLimit=160))


def district_domain(districts: Sequence[str]) -> list[str]:
    """All districts in their configured order, then 全市."""
    return [*[d for d in districts if d != CITY], CITY]


def value_format(indicator_id: str) -> str:
    """d3 format of an indicator's values (percentages as %, others with two decimals)."""
    return BY_ID[indicator_id].unit.d3_format


def axis_format(indicator_id: str) -> str:
    return BY_ID[indicator_id].unit.d3_axis_format


def axis_title(indicator_id: str) -> str | None:
    """The value axis title: the unit when it is not a percentage (the chart title names the indicator)."""
    unit = BY_ID[indicator_id].unit
    return None if unit.is_percent else unit.name


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


def line_roles(data: pl.DataFrame, value: str, direction: int, districts: Sequence[str],
               highlight: Sequence[str] | None) -> pl.DataFrame:
    """Add ``role`` (全市, 最好, 最差, 所选区县 or 其他区县) to monthly rows (district, month, value).

    Best and worst are judged on the last month in which any district has a value, in the indicator's
    direction, when at least two districts have one; up to ``MAX_TIED`` districts that tie share the
    role, more pick out none. A district
    chosen in the sidebar keeps 所选区县 unless it is the best or the worst (its label names it anyway).
    """
    rows = data.filter(pl.col("district") != CITY).drop_nulls(value)
    best: set[str] = set()
    worst: set[str] = set()
    if rows.height:
        last = rows.filter(pl.col("month") == rows["month"].max())
        if last.height >= 2:
            # Rounded so that float noise does not split a tie.
            signed = last.with_columns((pl.col(value) * direction).round(9).alias("_signed"))
            top, bottom = signed["_signed"].max(), signed["_signed"].min()
            if top != bottom:
                best = set(signed.filter(pl.col("_signed") == top)["district"].to_list())
                worst = set(signed.filter(pl.col("_signed") == bottom)["district"].to_list())
            # A best or worst shared by more than MAX_TIED districts singles nothing out (seven
            # districts without a red card): those lines stay grey.
            best, worst = (group if len(group) <= MAX_TIED else set() for group in (best, worst))
    chosen = set(highlight or ())
    district = pl.col("district")
    return data.with_columns(
        pl.when(district == CITY).then(pl.lit(CITY))
        .when(district.is_in(list(best))).then(pl.lit(BEST))
        .when(district.is_in(list(worst))).then(pl.lit(WORST))
        .when(district.is_in(list(chosen))).then(pl.lit(CHOSEN))
        .otherwise(pl.lit(OTHERS)).alias("role")
    )


def line_labels(data: pl.DataFrame, value: str, districts: Sequence[str]) -> pl.DataFrame:
    """One label per picked-out line, at its last point with a value: the district's name (with 最好 or
    最差); lines that end on the same point share one label ("甲区、乙区（最好）", from three on
    "甲区等3个区县（最好）") so that labels stay short beside the plot."""
    order = {d: n for n, d in enumerate(district_domain(districts))}
    ends = (
        data.filter(pl.col("role") != OTHERS).drop_nulls(value).sort("month")
        .group_by("district", maintain_order=True).last()
        .with_columns(pl.col("district").replace_strict(order, default=len(order)).alias("_order"))
        .sort("_order")
    )
    suffix = {BEST: "（最好）", WORST: "（最差）"}
    ends = ends.with_columns(pl.col(value).round(9).alias("_at"))
    out = ends.group_by("month", "_at", "role", maintain_order=True).agg(pl.col("district"), pl.col(value).first())
    count = pl.col("district").list.len()
    names = (
        pl.when(count <= MAX_TIED).then(pl.col("district").list.join("、"))
        .otherwise(pl.col("district").list.first() + pl.lit("等") + count.cast(pl.String) + pl.lit("个区县"))
    )
    return out.with_columns(
        (names + pl.col("role").replace_strict(suffix, default="")).alias("label")
    ).select("month", value, "role", "label")


def _role_scale(roles: Sequence[str]) -> alt.Scale:
    domain = [r for r in ROLE_COLOURS if r in set(roles)]
    return alt.Scale(domain=domain, range=[ROLE_COLOURS[r] for r in domain])


def _lines(data: pl.DataFrame, value: str, y: alt.Y, direction: int, districts: Sequence[str],
           tooltip: list[alt.Tooltip], highlight: Sequence[str] | None, height: int) -> Chart:
    """Monthly lines: 全市 (dashed), the best, the worst and the chosen districts in their role's colour
    and labelled at the line end, the other districts thin and grey; one legend explains the colours."""
    data = line_roles(data, value, direction, districts, highlight).with_columns(
        (pl.col("district") == CITY).alias("is_city")
    )
    labels = line_labels(data, value, districts)
    scale = _role_scale(data["role"].unique().to_list())
    colour = alt.Color("role:N", scale=scale, title=ROLE_TITLE,
                       legend=alt.Legend(orient="bottom", columns=5, symbolLimit=0, labelLimit=120))
    x = alt.X("month:O", title=None, axis=alt.Axis(labelAngle=-45, labelOverlap=True))
    grey = (
        alt.Chart().transform_filter(f"datum.role == '{OTHERS}'")
        .mark_line(strokeWidth=1, opacity=0.8)
        .encode(x=x, y=y, color=colour, detail="district:N", tooltip=tooltip)
    )
    picked = (
        alt.Chart().transform_filter(f"datum.role != '{OTHERS}'")
        .mark_line(point=True, strokeWidth=2.5)
        .encode(
            x=x, y=y, color=colour, detail="district:N",
            strokeDash=alt.StrokeDash("is_city:N", legend=None, scale=alt.Scale(domain=[False, True],
                                                                                range=[[1, 0], [6, 3]])),
            tooltip=tooltip,
        )
    )
    present = data[value].drop_nulls()
    low, high = (present.min(), present.max()) if present.len() else (0.0, 0.0)
    offsets = label_offsets(labels[value].to_list(), low, high, height - PLOT_MARGIN)
    # One text layer per label: each has its own vertical nudge (dy) so that labels never overlap.
    texts = [
        alt.Chart(labels.slice(n, 1))
        # Vega fits the labels into the chart's width: ``limit`` bounds what they take from the plot.
        .mark_text(align="left", dx=6, dy=offsets[n], fontSize=12, fontWeight="bold", limit=170)
        .encode(x=x, y=alt.Y(f"{value}:Q"), text="label:N", color=alt.Color("role:N", scale=scale, legend=None))
        for n in range(labels.height)
    ]
    return alt.layer(grey, picked, *texts, data=data).properties(height=height)


# px of a line chart's height taken by title, month labels and legend (measured in Chromium: 380 px leave
# about 200 px of plot); estimated on the safe side, as labels a little too far apart do no harm.
PLOT_MARGIN = 170
LABEL_GAP = 15  # px between the baselines of two line-end labels


def label_offsets(values: Sequence[float], low: float, high: float, plot_px: float) -> list[float]:
    """Vertical nudges (px, down positive) that keep line-end labels ``LABEL_GAP`` apart: labels too
    close to each other form a cluster, spread ``LABEL_GAP`` apart around the mean height of their
    lines; labels far from others stay where their lines end."""
    if not values:
        return []
    span = (high - low) * 1.15  # the axis rounds its ends outwards ("nice")
    scale = plot_px / span if span > 0 else 0.0
    wanted = [(high - v) * scale for v in values]
    clusters = [[n] for n in sorted(range(len(values)), key=lambda n: wanted[n])]

    def top(cluster: list[int]) -> float:
        return sum(wanted[n] for n in cluster) / len(cluster) - (len(cluster) - 1) * LABEL_GAP / 2

    merged = True
    while merged:
        merged = False
        for i in range(len(clusters) - 1):
            a, b = clusters[i], clusters[i + 1]
            if top(b) < top(a) + len(a) * LABEL_GAP:
                clusters[i : i + 2] = [a + b]
                merged = True
                break
    out = [0.0] * len(values)
    for cluster in clusters:
        start = top(cluster)
        for k, n in enumerate(cluster):
            out[n] = round(start + k * LABEL_GAP - wanted[n], 1)
    return out


def _district_axis(districts: Sequence[str], present: set[str]) -> alt.X:
    return alt.X(
        "district:N",
        title=None,
        sort=[d for d in district_domain(districts) if d in present],
        axis=alt.Axis(labelAngle=-45, labelOverlap=False, labelLimit=120),
    )


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
    """Horizontal bars of the index by district (best first), coloured by its tier (得分等级) and
    labelled with the rank change.

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
        tier_expr(pl.col("index")).alias("tier"),
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
        color=tier_colour(),
        opacity=alt.condition("datum.ranked", alt.value(1.0), alt.value(0.35)),
        tooltip=[
            alt.Tooltip("district:N", title="区县"),
            alt.Tooltip("rank:Q", title="排名"),
            alt.Tooltip("prev_rank:Q", title="上期排名"),
            alt.Tooltip("change_label:N", title="排名变化"),
            alt.Tooltip("index:Q", title="效能指数", format=INDEX_UNIT.d3_format),
            alt.Tooltip("tier:N", title=TIER_TITLE),
        ],
    )
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(
        x=alt.X("index:Q"), text=alt.Text("label:N")
    )
    # Streamlit fits the legend into the height too: 80 px more keep the bars 28 px a district.
    return alt.layer(bars, text, data=data).properties(height=max(160, 28 * data.height) + 80)


def index_trend_chart(trend: pl.DataFrame, districts: Sequence[str], highlight: Sequence[str] | None = None) -> Chart:
    """Lines of the index by month: 全市 (dashed), the best, the worst and the chosen districts stand out
    with labels, the rest grey.

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
    return _lines(data, "index", y, UP, districts, tooltip, highlight, 380)


# --- district comparison ------------------------------------------------------------------------------


def _scored(data: pl.DataFrame, indicator_id: str, settings: ScoringSettings) -> pl.DataFrame:
    """Add ``score`` (the value's score against the indicator's target and floor) and its ``tier``."""
    t = settings.indicators[indicator_id]
    score = score_expr(pl.col("value"), t.target, t.floor)
    return data.with_columns(score.alias("score"), tier_expr(score).alias("tier"))


def compare_chart(values: pl.DataFrame, indicator_id: str, districts: Sequence[str],
                  settings: ScoringSettings) -> Chart:
    """One indicator across districts: bars coloured by the value's score tier, the target (green) and
    the city value (dashed).

    ``values``: metrics.comparison.district_values() rows of this indicator.
    """
    data = _scored(values.filter(pl.col("indicator") == indicator_id), indicator_id, settings)
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
            color=tier_colour("top"),
            tooltip=[
                alt.Tooltip("district:N", title="区县"),
                alt.Tooltip("value:Q", title=BY_ID[indicator_id].name, format=fmt),
                *_num_den_tooltips(indicator_id),
                alt.Tooltip("score:Q", title="得分", format=".1f"),
                alt.Tooltip("tier:N", title=TIER_TITLE),
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
    # 400: Streamlit fits the title and both legends into the height too (≈ 200 px of bars on a phone).
    chart = alt.layer(bars, rules, data=data).resolve_scale(color="independent").properties(
        title=_title(indicator_id, note), height=400
    )
    return chart


# Heat map columns (pixels) narrower than this: district names upright; than this: no score text in the cells.
HEAT_SLANT_PX, HEAT_TEXT_PX = 40, 24


def heatmap_chart(scores: pl.DataFrame) -> Chart:
    """District × indicator scores (0–100) coloured by tier; cells without data grey with “—”.

    ``scores``: metrics.comparison.score_long() output, districts in ranking order.
    """
    data = scores.with_columns(
        pl.col("score").round(1),
        pl.when(pl.col("score").is_null()).then(pl.lit(NULL_TEXT)).otherwise(pl.col("score").round(0).cast(pl.Int64)
                                                                        .cast(pl.String)).alias("score_text"),
        tier_expr(pl.col("score")).alias("tier"),
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
        color=tier_colour(),  # the tiers of every bar chart, so that a colour means one thing
        tooltip=tooltip,
    )
    empty = base.transform_filter("!isValid(datum.score)").mark_rect(
        stroke="white", strokeWidth=1, color="#e6e6e6"
    ).encode(tooltip=tooltip)
    dark = f"datum.tier == '{TIER_NAMES[0]}' || datum.tier == '{TIER_NAMES[-1]}'"  # white text on the dark tiers
    shown = alt.ExprRef(expr=f"{column_px} < {HEAT_TEXT_PX} ? 0 : 1")
    light_text = base.transform_filter(dark).mark_text(fontSize=10, color="white", opacity=shown).encode(
        text="score_text:N")
    dark_text = base.transform_filter(f"!({dark})").mark_text(fontSize=10, color="black", opacity=shown).encode(
        text="score_text:N")
    return alt.layer(scored, empty, light_text, dark_text, data=data).properties(height=alt.Step(22))


# --- periods and trends ---------------------------------------------------------------------------


def trend_chart(values: pl.DataFrame, indicator_id: str, districts: Sequence[str],
                highlight: Sequence[str] | None = None) -> Chart:
    """One indicator by month: 全市 (dashed), the best, the worst and the chosen districts stand out with
    labels, the other districts grey.

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
    return _lines(data, "value", y, BY_ID[indicator_id].direction, districts, tooltip, highlight,
                  330).properties(title=_title(indicator_id))


def period_compare_chart(comparison: pl.DataFrame, indicator_id: str, districts: Sequence[str],
                         settings: ScoringSettings) -> Chart:
    """Two periods side by side per district (本期 solid, 对比期 pale), each bar coloured by the score
    tier of its value. ``comparison``: period_comparison()."""
    data = _scored(comparison.filter(pl.col("indicator") == indicator_id), indicator_id, settings).with_columns(
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
            color=tier_colour("top"),
            opacity=alt.Opacity("period_name:N", sort=names, scale=alt.Scale(domain=names, range=[1.0, 0.45][: len(names)]),
                                title="时段", legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("district:N", title="区县"),
                alt.Tooltip("period_name:N", title="时段"),
                alt.Tooltip("value:Q", title=BY_ID[indicator_id].name, format=fmt),
                *_num_den_tooltips(indicator_id),
                alt.Tooltip("score:Q", title="得分", format=".1f"),
                alt.Tooltip("tier:N", title=TIER_TITLE),
            ],
        )
        .properties(title=_title(indicator_id, note), height=400)
    )
    return chart


# --- data quality -----------------------------------------------------------------------------------


def completeness_chart(grid: pl.DataFrame) -> Chart:
    """District × month cells coloured 已报送 / 逾期报送 / 沿用 / 缺失, one row of panels per kind.

    ``grid``: datasets.storage.quality.completeness() (district, kind_label, month, status, files, rows).
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
