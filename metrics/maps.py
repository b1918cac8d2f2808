"""The district map: districts coloured by the index or one indicator. Returns Altair charts, never calls
Streamlit.

Shapes come from datasets/intake/boundaries.py (real, simplified boundaries, or the demo's hexagon tiles).
They are projected here onto a plane (longitude scaled by the cosine of the mean latitude, which is
true enough for one prefecture) and drawn with an identity projection, so the spec carries its data
inline and the browser fetches nothing.
"""

from __future__ import annotations

import json
import math

import altair as alt
import polars as pl
from sqlalchemy.engine import Engine

from datasets.intake import boundaries
from datasets.intake.boundaries import REAL, Shapes, label_point
from metrics.charts import TIER_NAMES, TIER_TITLE, tier_expr, tier_scale
from metrics.formatting import INDEX, INDEX_NAME, fmt_value
from metrics.registry import BY_ID
from metrics.scoring import ScoringSettings, score_expr

SELECTION = "district_pick"  # the click selection's name (pages read it from the chart's event)
GREY = "#c9c9c9"
NO_DATA = "本期无数据"
INDEX_SCALE = (0.0, 100.0)


def key_name(key: str) -> str:
    return INDEX_NAME if key == INDEX else BY_ID[key].name


def scale_of(key: str, settings: ScoringSettings) -> tuple[float, float]:
    """(worst, best) ends of the scale the legend states: 0–100 for the index, floor → target for an
    indicator (for a ↓ indicator the floor is above the target)."""
    if key == INDEX:
        return INDEX_SCALE
    target = settings.indicators[key]
    return (target.floor, target.target)


def legend_title(key: str, settings: ScoringSettings) -> str:
    """The legend states the scale and the target."""
    if key == INDEX:
        return f"{INDEX_NAME}（0–100 分；目标 100 分 = 各项指标均达到目标值）"
    worst, best = scale_of(key, settings)
    return f"{key_name(key)}（底线 {fmt_value(key, worst)} → 目标 {fmt_value(key, best)}）"


def map_values(rank: pl.DataFrame, key: str, districts: list[str]) -> pl.DataFrame:
    """One row per district of ``districts``: value, numerator, denominator, rank, whether it is coloured
    and, if not, why.

    ``rank``: metrics.scoring.ranking() output; ``key``: INDEX or an indicator id.
    """
    columns = [pl.col(INDEX).alias("value"), pl.lit(None, pl.Float64).alias("numerator"),
               pl.lit(None, pl.Float64).alias("denominator")] if key == INDEX else [
        pl.col(key).alias("value"), pl.col(f"{key}__num").alias("numerator"),
        pl.col(f"{key}__den").alias("denominator")]
    total = int(rank["ranked"].sum()) if rank.height else 0
    data = rank.select("district", "ranked", "unranked_reason", "rank", *columns)
    frame = pl.DataFrame({"district": districts}, schema={"district": pl.String}).join(
        data, on="district", how="left")
    return frame.with_columns(
        pl.col("ranked").fill_null(False),
        (pl.col("ranked").fill_null(False) & pl.col("value").is_not_null()).alias("coloured"),
        pl.when(pl.col("ranked").is_null()).then(pl.lit(NO_DATA))
        .when(~pl.col("ranked")).then(pl.col("unranked_reason").fill_null("数据不全"))
        .when(pl.col("value").is_null()).then(pl.lit(NO_DATA))
        .otherwise(None).alias("reason"),
    ).with_columns(
        pl.when(pl.col("coloured")).then(pl.format("第 {} 名 / 共 {} 个", pl.col("rank"), pl.lit(total)))
        .otherwise(pl.format("未排名：{}", pl.col("reason"))).alias("rank_text"),
        pl.col("value").map_elements(lambda v: fmt_value(key, v), return_dtype=pl.String, skip_nulls=False)
        .alias("value_text"),
    )


def _planar(geometry: dict, cos_lat: float) -> dict:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return {"type": "MultiPolygon", "coordinates": [
        [[[round(x * cos_lat, 5), y] for x, y, *_ in ring] for ring in polygon] for polygon in polygons]}


def _cos_lat(shapes: Shapes) -> float:
    if shapes.kind != REAL or not shapes.geometries:
        return 1.0
    lats = [label_point(g)[1] for g in shapes.geometries.values()]
    return math.cos(math.radians(sum(lats) / len(lats)))


# Tiers whose colour is deep enough for white type (优's green, 差's red); the others take black.
DARK_TIERS = (TIER_NAMES[0], TIER_NAMES[-1])


def _tiers(values: pl.DataFrame, key: str, settings: ScoringSettings) -> dict[str, str | None]:
    """Each district's score tier, as the bars of 总览/区县对比 colour it: the index is itself a score,
    an indicator's value is scored against its floor and target (metrics.scoring.score_expr)."""
    if key == INDEX:
        score = pl.col("value")
    else:
        target = settings.indicators[key]
        score = score_expr(pl.col("value"), target.target, target.floor)
    return dict(values.select("district", tier_expr(score)).iter_rows())


def _map_data(shapes: Shapes, values: pl.DataFrame, key: str, settings: ScoringSettings) -> tuple[list[dict], list[dict]]:
    """The outlines (GeoJSON features with their values) and the labels of district_map."""
    cos_lat = _cos_lat(shapes)
    rows = {r["district"]: r for r in values.iter_rows(named=True)}
    tiers = _tiers(values, key, settings)
    features, labels = [], []
    for district, geometry in shapes.geometries.items():
        row = rows.get(district) or {"value": None, "numerator": None, "denominator": None, "coloured": False,
                                     "value_text": "—", "rank_text": f"未排名：{NO_DATA}", "reason": NO_DATA}
        planar = _planar(geometry, cos_lat)
        features.append({"type": "Feature", "geometry": planar, "properties": {}, "district": district,
                         "value": row["value"],
                         # Vega-Lite drops marks whose colour field is null: uncoloured ones get a tier too
                         # (greyed anyway).
                         "tier": (tiers.get(district) if row["coloured"] else None) or TIER_NAMES[-1], "value_text": row["value_text"], "numerator": row["numerator"],
                         "denominator": row["denominator"], "rank_text": row["rank_text"],
                         "coloured": bool(row["coloured"])})
        x, y = label_point(planar)
        labels.append({"district": district, "x": x, "y": y,
                       "label": f"{district}\n{row['value_text'] if row['coloured'] else '未排名'}",
                       "white": bool(row["coloured"]) and tiers.get(district) in DARK_TIERS})
    return features, labels


def fill_spec(skeleton: dict, shapes: Shapes, values: pl.DataFrame, key: str, settings: ScoringSettings) -> dict:
    """to_spec(district_map(shapes, values, key, settings, …)) without building the chart again:
    ``skeleton`` is that spec for the same ``key`` and settings (any shapes and values), whose data are
    replaced. Altair takes ≈ 0.1 s to build the layered chart; the data alone take milliseconds, so a
    page keeps one skeleton per colouring and fills it for each period."""
    features, labels = _map_data(shapes, values, key, settings)
    spec = {k: v for k, v in skeleton.items() if k not in ("datasets", "layer")}
    outline, black, white = skeleton["layer"]
    name = outline["data"]["name"]
    spec["datasets"] = {name: features}
    spec["layer"] = [outline] + [
        {**layer, "data": {"values": [label for label in labels if label["white"] == is_white] or [{}]}}
        for layer, is_white in ((black, False), (white, True))]
    return spec


def _outlines_data(features: list[dict]) -> alt.InlineData:
    """Outlines as one JSON string, not nested lists: Altair deep-copies a spec's data several times
    while it builds a layered chart (≈ 1.5 s for a prefecture's outlines as lists, nothing as a string)."""
    return alt.InlineData(values=json.dumps(features, ensure_ascii=False, separators=(",", ":")),
                          format=alt.DataFormat(type="json"))


def district_map(shapes: Shapes, values: pl.DataFrame, key: str, settings: ScoringSettings, *,
                 dark: bool = False, height: int = 420) -> alt.LayerChart:
    """Districts coloured by ``key`` (values: map_values()), named and labelled with their value.

    Uncoloured districts (unranked or without data) are grey with a dashed outline and say why on hover.
    Clicking a district selects it (selection ``SELECTION``, field ``district``).
    """
    features, labels = _map_data(shapes, values, key, settings)
    # Colour is the score tier of every other page (metrics.charts.TIERS), so a district is the same
    # colour on the map as on the ranking bars. Labels sit on the fills, so they do not follow the page's
    # theme: white on the deep 优 green and 差 red, black elsewhere. Only the edges follow the theme.
    edge = "#0e1117" if dark else "#ffffff"
    tooltip = [alt.Tooltip("district:N", title="区县"), alt.Tooltip("value_text:N", title=key_name(key))]
    if key != INDEX:
        indicator = BY_ID[key]
        tooltip += [alt.Tooltip("numerator:Q", title=f"分子：{indicator.numerator_label}", format=",.2f"),
                    alt.Tooltip("denominator:Q", title=f"分母：{indicator.denominator_label}", format=",.2f")]
    tooltip.append(alt.Tooltip("rank_text:N", title="排名"))
    pick = alt.selection_point(name=SELECTION, fields=["district"], on="click")
    shapes_layer = (
        alt.Chart(_outlines_data(features))
        .mark_geoshape(stroke=edge, strokeWidth=1.2)
        .encode(
            color=alt.condition(
                "datum.coloured",
                alt.Color("tier:N", title=[TIER_TITLE, *_lines(legend_title(key, settings))], scale=tier_scale(),
                          legend=alt.Legend(orient="bottom", direction="horizontal", columns=4, symbolLimit=0,
                                            labelLimit=160, titleLimit=520)),
                alt.value(GREY),
            ),
            strokeDash=alt.condition("datum.coloured", alt.value([1, 0]), alt.value([4, 3])),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    font = max(12, round(height / 38))  # larger on the big screen's taller map
    texts = [  # one layer per ink: a second colour scale would break the layered chart
        alt.Chart(alt.Data(values=[label for label in labels if label["white"] == white] or [{}]))
        .mark_text(fontSize=font, lineBreak="\n", color="#ffffff" if white else "#1a1a1a", fontWeight="bold")
        .encode(longitude=alt.Longitude("x", type="quantitative"), latitude=alt.Latitude("y", type="quantitative"),
                text=alt.Text("label", type="nominal"))
        for white in (False, True)
    ]
    return (
        alt.layer(shapes_layer, *texts)
        .project(type="identity", reflectY=True)
        .properties(height=height)
        .configure_view(stroke=None)
    )


def _lines(title: str) -> list[str]:
    """The index's legend title on two lines, the scale and the target (one line is cut off beside a
    phone-wide map); an indicator's title is short enough for one."""
    head, sep, tail = title.partition("；")
    return [f"{head}）", tail.removesuffix("）")] if sep else [title]


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite spec for st.vega_lite_chart: the outlines as a list again (Streamlit turns inline
    values into a table and cannot read a JSON string), without Altair's schema validation."""
    spec = chart.to_dict(validate=False)
    datasets = spec.get("datasets", {})
    for name, values in datasets.items():
        if isinstance(values, str):
            datasets[name] = json.loads(values)
    for layer in [spec, *spec.get("layer", [])]:
        data = layer.get("data", {})
        if isinstance(data.get("values"), str):
            data["values"] = json.loads(data["values"])
        data.pop("format", None)
    return spec


def schematic_note(shapes: Shapes) -> str | None:
    """What the page says beside a schematic map."""
    if shapes.kind == REAL:
        return None
    return "示意图：示例城市为虚构城市，各区县以六边形示意，不代表真实位置和边界。"


def missing_table(shapes: Shapes) -> pl.DataFrame:
    """Districts that have no boundary, with why (listed beside the map)."""
    return pl.DataFrame({"区县": list(shapes.missing), "原因": list(shapes.missing.values())},
                        schema={"区县": pl.String, "原因": pl.String})


# --- the printed maps (月度通报, 区县报告单) ---------------------------------------------------------------

PRINT_SCHEME = "blues"  # one hue, lightness falls with the value: the order survives a black-and-white printer
PRINT_RANGE = (0.2, 1.0)  # the scheme's palest end stays off white, which is kept for the hatched districts
HATCH = "#7a7a7a"
OUTLINE = "#4d4d4d"
HERE, ELSEWHERE = "#3a3a3a", "#e6e6e6"


def shapes_for(engine: Engine, districts: list[str], demo: bool) -> Shapes:
    """The shapes a document draws: hexagon tiles for the (fictional) demo city, else the real ones."""
    return boundaries.schematic_shapes(districts) if demo else boundaries.district_shapes(engine, districts)


def print_domain(values: list[float]) -> tuple[float, float]:
    """The printed scale's ends: the coloured values' range widened to multiples of 5, so that the
    districts spread over the whole ramp (a 0–100 scale would print districts at 78 and 91 alike)."""
    if not values:
        return INDEX_SCALE
    low, high = math.floor(min(values) / 5) * 5, math.ceil(max(values) / 5) * 5
    if high - low < 10:
        low, high = max(0.0, high - 10), max(high, 10.0)
    return (float(low), float(high))


def hatch_lines(geometry: dict, spacing: float) -> list[list[list[float]]]:
    """Diagonal (45°) hatching lines clipped to a (planar) polygon, as line strings: the scan lines of
    an even–odd fill in coordinates turned by 45°, turned back."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    root = math.sqrt(0.5)

    def turn(x: float, y: float) -> tuple[float, float]:
        return ((x + y) * root, (y - x) * root)

    edges = []
    for polygon in polygons:
        for ring in polygon:
            points = [turn(x, y) for x, y, *_ in ring]
            edges += list(zip(points, [*points[1:], points[0]], strict=True))
    if not edges:
        return []
    vs = [v for edge in edges for _, v in edge]
    lines = []
    v = math.floor(min(vs) / spacing) * spacing + spacing / 2
    while v < max(vs):
        crossings = sorted(u1 + (v - v1) * (u2 - u1) / (v2 - v1)
                           for (u1, v1), (u2, v2) in edges if (v1 <= v < v2) or (v2 <= v < v1))
        for a, b in zip(crossings[::2], crossings[1::2], strict=False):
            lines.append([[(a - v) * root, (a + v) * root], [(b - v) * root, (b + v) * root]])
        v += spacing
    return lines


def _extent(geometries: list[dict]) -> float:
    xs, ys = [], []
    for g in geometries:
        for polygon in g["coordinates"]:
            for x, y, *_ in polygon[0]:
                xs.append(x)
                ys.append(y)
    return max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)


def print_map(shapes: Shapes, values: pl.DataFrame, *, width: int = 560, height: int = 400) -> alt.LayerChart:
    """各区县政务服务效能指数分布图 for print: one sequential scale whose order holds in greyscale, each
    district labelled with its name and index, unranked districts white with grey hatching and a
    dashed outline (values: map_values(rank, INDEX, …))."""
    cos_lat = _cos_lat(shapes)
    rows = {r["district"]: r for r in values.iter_rows(named=True)}
    planar = {d: _planar(g, cos_lat) for d, g in shapes.geometries.items()}
    coloured = [rows[d]["value"] for d in planar if d in rows and rows[d]["coloured"]]
    low, high = print_domain(coloured)
    spacing = _extent(list(planar.values())) / 70
    features, hatches, labels = [], [], []
    for district, geometry in planar.items():
        row = rows.get(district) or {"value": None, "coloured": False, "value_text": "—"}
        on = bool(row["coloured"])
        features.append({"type": "Feature", "geometry": geometry, "properties": {}, "district": district,
                         "shade": row["value"] if on else low, "coloured": on})
        if not on:
            hatches += [{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": line}}
                        for line in hatch_lines(geometry, spacing)]
        x, y = label_point(geometry)
        # White type on the darker half of the ramp, black on the paler half and on the hatching.
        dark_fill = on and (row["value"] - low) / (high - low) > 0.55
        labels.append({"x": x, "y": y, "label": f"{district}\n{row['value_text'] if on else '未排名'}",
                       "ink": "#ffffff" if dark_fill else "#000000", "hatched": not on})
    fills = (
        alt.Chart(_outlines_data(features))
        .mark_geoshape(stroke=OUTLINE, strokeWidth=0.8)
        .encode(
            color=alt.condition(
                "datum.coloured",
                alt.Color("shade:Q", title=f"{INDEX_NAME}（分）",
                          scale=alt.Scale(domain=[low, high], scheme=alt.SchemeParams(PRINT_SCHEME, extent=list(PRINT_RANGE)),
                                          clamp=True),
                          legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=240,
                                            format=".0f", tickCount=5)),
                alt.value("#ffffff"),
            ),
            strokeDash=alt.condition("datum.coloured", alt.value([1, 0]), alt.value([4, 2])),
        )
    )
    layers = [fills]
    if hatches:
        layers.append(alt.Chart(_outlines_data(hatches))
                      .mark_geoshape(filled=False, stroke=HATCH, strokeWidth=0.7))
    # One layer per ink (a second colour scale would break the layered chart); the labels on the
    # hatching get a white halo first so that the lines do not cross the type.
    for ink, halo in (("#ffffff", False), ("#ffffff", True), ("#000000", False)):
        chosen = [label for label in labels if (label["hatched"] if halo else label["ink"] == ink)]
        layers.append(
            alt.Chart(alt.Data(values=chosen or [{}]))
            .mark_text(fontSize=12, lineBreak="\n", fontWeight="bold", color=ink,
                       **({"stroke": "#ffffff", "strokeWidth": 4} if halo else {}))
            .encode(longitude=alt.Longitude("x", type="quantitative"), latitude=alt.Latitude("y", type="quantitative"),
                    text=alt.Text("label", type="nominal"))
        )
    return (alt.layer(*layers).project(type="identity", reflectY=True)
            .properties(width=width, height=height).configure_view(stroke=None))


def locator_map(shapes: Shapes, district: str, *, size: int = 220) -> alt.Chart:
    """Where ``district`` lies among the others, for a report card: it dark, the rest pale, no type
    (the picture is printed a few centimetres high; the caption names the district)."""
    cos_lat = _cos_lat(shapes)
    features = [{"type": "Feature", "geometry": _planar(geometry, cos_lat), "properties": {}, "here": name == district}
                for name, geometry in shapes.geometries.items()]
    return (
        alt.Chart(_outlines_data(features))
        .mark_geoshape(stroke="#ffffff", strokeWidth=1)
        .encode(color=alt.condition("datum.here", alt.value(HERE), alt.value(ELSEWHERE)))
        .project(type="identity", reflectY=True)
        .properties(width=size, height=size)
        .configure_view(stroke=None)
    )


def print_note(shapes: Shapes, values: pl.DataFrame) -> str:
    """The note under the printed map: what the hatching means and why, the schematic, missing shapes."""
    parts = []
    unranked = [r for r in values.iter_rows(named=True) if not r["coloured"] and r["district"] in shapes.geometries]
    if unranked:
        parts.append("斜线填充、虚线边框的区县未参加排名：" + "；".join(f"{r['district']}（{r['reason']}）" for r in unranked))
    if note := schematic_note(shapes):
        parts.append(note.rstrip("。"))
    if shapes.missing:
        parts.append("没有边界、未画在图上的区县：" + "、".join(shapes.missing))
    return "注：" + "。".join(parts) + "。" if parts else ""
