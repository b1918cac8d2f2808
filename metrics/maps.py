"""The district map: districts coloured by the index or one indicator. Returns Altair charts, never calls
Streamlit.

Shapes come from datasets/boundaries.py (real, simplified boundaries, or the demo's hexagon tiles).
They are projected here onto a plane (longitude scaled by the cosine of the mean latitude, which is
true enough for one prefecture) and drawn with an identity projection, so the spec carries its data
inline and the browser fetches nothing.
"""

from __future__ import annotations

import json
import math

import altair as alt
import polars as pl

from datasets.boundaries import REAL, Shapes, label_point
from metrics.formatting import INDEX, INDEX_NAME, fmt_value
from metrics.registry import BY_ID
from metrics.scoring import ScoringSettings

SELECTION = "district_pick"  # the click selection's name (pages read it from the chart's event)
GREY = "#c9c9c9"
NO_DATA = "本期无数据"
SCHEME = "redyellowgreen"  # red at the floor, green at the target: good and bad at a glance
INDEX_SCALE = (0.0, 100.0)


def key_name(key: str) -> str:
    return INDEX_NAME if key == INDEX else BY_ID[key].name


def scale_of(key: str, settings: ScoringSettings) -> tuple[float, float]:
    """(worst, best) ends of the colour scale: 0–100 for the index, floor → target for an indicator
    (for a ↓ indicator the floor is above the target, so the scale runs downwards by itself)."""
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


def district_map(shapes: Shapes, values: pl.DataFrame, key: str, settings: ScoringSettings, *,
                 dark: bool = False, height: int = 420) -> alt.LayerChart:
    """Districts coloured by ``key`` (values: map_values()), named and labelled with their value.

    Uncoloured districts (unranked or without data) are grey with a dashed outline and say why on hover.
    Clicking a district selects it (selection ``SELECTION``, field ``district``).
    """
    cos_lat = _cos_lat(shapes)
    rows = {r["district"]: r for r in values.iter_rows(named=True)}
    features, labels = [], []
    for district, geometry in shapes.geometries.items():
        row = rows.get(district) or {"value": None, "numerator": None, "denominator": None, "coloured": False,
                                     "value_text": "—", "rank_text": f"未排名：{NO_DATA}", "reason": NO_DATA}
        planar = _planar(geometry, cos_lat)
        features.append({"type": "Feature", "geometry": planar, "properties": {}, "district": district,
                         "value": row["value"],
                         # Vega-Lite drops marks whose colour field is null: uncoloured ones get 0 (greyed anyway).
                         "shade": row["value"] if row["coloured"] else 0.0, "value_text": row["value_text"], "numerator": row["numerator"],
                         "denominator": row["denominator"], "rank_text": row["rank_text"],
                         "coloured": bool(row["coloured"])})
        x, y = label_point(planar)
        labels.append({"district": district, "x": x, "y": y,
                       "label": f"{district}\n{row['value_text'] if row['coloured'] else '未排名'}"})
    worst, best = scale_of(key, settings)
    # Labels sit on the (light) fills, so they stay dark on the dark screen too; only the edges change.
    ink, edge = "#1a1a1a", ("#0e1117" if dark else "#ffffff")
    tooltip = [alt.Tooltip("district:N", title="区县"), alt.Tooltip("value_text:N", title=key_name(key))]
    if key != INDEX:
        indicator = BY_ID[key]
        tooltip += [alt.Tooltip("numerator:Q", title=f"分子：{indicator.numerator_label}", format=",.2f"),
                    alt.Tooltip("denominator:Q", title=f"分母：{indicator.denominator_label}", format=",.2f")]
    tooltip.append(alt.Tooltip("rank_text:N", title="排名"))
    pick = alt.selection_point(name=SELECTION, fields=["district"], on="click")
    shapes_layer = (
        # One JSON string, not nested lists: Altair deep-copies a spec's data several times while it
        # builds a layered chart (≈ 1.5 s for a prefecture's outlines as lists, nothing as a string).
        alt.Chart(alt.InlineData(values=json.dumps(features, ensure_ascii=False, separators=(",", ":")),
                                 format=alt.DataFormat(type="json")))
        .mark_geoshape(stroke=edge, strokeWidth=1.2)
        .encode(
            color=alt.condition(
                "datum.coloured",
                alt.Color("shade:Q", title=legend_title(key, settings),
                          scale=alt.Scale(domain=[worst, best], scheme=SCHEME, clamp=True),
                          legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=260,
                                            titleLimit=520, format=_legend_format(key))),
                alt.value(GREY),
            ),
            strokeDash=alt.condition("datum.coloured", alt.value([1, 0]), alt.value([4, 3])),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    text = (
        alt.Chart(alt.Data(values=labels))
        .mark_text(fontSize=12, lineBreak="\n", color=ink, fontWeight="bold")
        .encode(longitude=alt.Longitude("x", type="quantitative"), latitude=alt.Latitude("y", type="quantitative"),
                text=alt.Text("label", type="nominal"))
    )
    return (
        alt.layer(shapes_layer, text)
        .project(type="identity", reflectY=True)
        .properties(height=height)
        .configure_view(stroke=None)
    )


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite spec for st.vega_lite_chart: the outlines as a list again (Streamlit turns inline
    values into a table and cannot read a JSON string), without Altair's schema validation."""
    spec = chart.to_dict(validate=False)
    datasets = spec.get("datasets", {})
    for name, values in datasets.items():
        if isinstance(values, str):
            datasets[name] = json.loads(values)
    for layer in spec.get("layer", []):
        data = layer.get("data", {})
        if isinstance(data.get("values"), str):
            data["values"] = json.loads(data["values"])
        data.pop("format", None)
    return spec


def _legend_format(key: str) -> str:
    return ".0f" if key == INDEX else BY_ID[key].unit.d3_axis_format


def schematic_note(shapes: Shapes) -> str | None:
    """What the page says beside a schematic map."""
    if shapes.kind == REAL:
        return None
    return "示意图：示例城市为虚构城市，各区县以六边形示意，不代表真实位置和边界。"


def missing_table(shapes: Shapes) -> pl.DataFrame:
    """Districts that have no boundary, with why (listed beside the map)."""
    return pl.DataFrame({"区县": list(shapes.missing), "原因": list(shapes.missing.values())},
                        schema={"区县": pl.String, "原因": pl.String})
