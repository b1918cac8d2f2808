"""District boundaries (datasets/intake/boundaries.py), their upload, and the map chart (metrics/maps.py)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from datasets.access import accounts
from datasets.access.accounts import ADMIN, LEADER
from datasets.intake import boundaries
from datasets.intake.boundaries import REAL, SCHEMATIC
from datasets.operations import admin
from datasets.storage import store
from metrics import charts, maps
from metrics.formatting import INDEX
from metrics.registry import INDICATORS
from metrics.scoring import load_settings

# 恩施土家族苗族自治州: its 8 county-level divisions and their real codes.
ENSHI = {"恩施市": "422801", "利川市": "422802", "建始县": "422822", "巴东县": "422823", "宣恩县": "422825",
         "咸丰县": "422826", "来凤县": "422827", "鹤峰县": "422828"}


@pytest.fixture
def enshi(sqlite_engine):
    for name, code in ENSHI.items():
        store.add_district(sqlite_engine, name, code)
    return sqlite_engine


def test_the_real_codes_of_a_prefecture_draw_all_its_counties(enshi):
    shapes = boundaries.district_shapes(enshi, list(ENSHI))
    assert shapes.kind == REAL
    assert list(shapes.geometries) == list(ENSHI) and shapes.missing == {}
    for name, geometry in shapes.geometries.items():
        raw = boundaries.packaged_geometry(ENSHI[name])
        # Simplified to a fraction of the vertices, but still a county-sized outline in 湖北's west.
        assert 4 <= boundaries.vertex_count(geometry) < boundaries.vertex_count(raw) / 2
        lon, lat = boundaries.label_point(geometry)
        assert 108.3 < lon < 110.7 and 29.0 < lat < 31.5, name
    chart = maps.district_map(shapes, maps.map_values(_rank(list(ENSHI)), INDEX, list(ENSHI)), INDEX, load_settings())
    spec = chart.to_dict()
    drawn = [f["district"] for f in _geo_values(spec)]
    assert drawn == list(ENSHI)


def test_an_unknown_code_is_listed_beside_the_map_and_the_others_drawn(enshi):
    store.add_district(enshi, "高新区", "429999")  # a valid-looking code with no boundary
    store.add_district(enshi, "开发区")  # no code at all
    store.add_district(enshi, "新城区", "42-801")
    names = [*ENSHI, "高新区", "开发区", "新城区"]
    shapes = boundaries.district_shapes(enshi, names)
    assert list(shapes.geometries) == list(ENSHI)
    assert shapes.missing == {
        "高新区": "边界数据中没有区划代码 429999，可在“区县配置”上传边界",
        "开发区": "未配置区划代码，可在“区县配置”上传边界",
        "新城区": "区划代码 42-801 不是 6 位数字，无法匹配边界",
    }
    table = maps.missing_table(shapes)
    assert table["区县"].to_list() == ["高新区", "开发区", "新城区"]


@pytest.mark.parametrize("code", ["../../../etc/passwd", "4228O1", "４２２８０１", "", "4228011", None])
def test_codes_that_are_not_six_ascii_digits_never_open_a_file(code):
    assert not boundaries.valid_code(code)
    assert boundaries.packaged_geometry(code or "") is None


def test_simplify_keeps_corners_and_drops_points_on_a_straight_edge():
    # A 1° square with a point in the middle of each edge and one 0.001° bump (below the tolerance).
    ring = [[0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1], [0.5, 1.001], [0, 1], [0, 0.5], [0, 0]]
    out = boundaries.simplify({"type": "Polygon", "coordinates": [ring]}, tolerance=0.002)
    kept = out["coordinates"][0][0]
    assert sorted(map(tuple, kept[:-1])) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert kept[0] == kept[-1]
    # A bump larger than the tolerance stays.
    ring[5] = [0.5, 1.01]
    kept = boundaries.simplify({"type": "Polygon", "coordinates": [ring]}, tolerance=0.002)["coordinates"][0][0]
    assert (0.5, 1.01) in map(tuple, kept)


def test_an_islet_below_the_tolerance_is_dropped_but_a_district_never_vanishes():
    square = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    islet = [[5, 5], [5.0001, 5], [5.0001, 5.0001], [5, 5]]
    out = boundaries.simplify({"type": "MultiPolygon", "coordinates": [[square], [islet]]})
    assert len(out["coordinates"]) == 1
    tiny = boundaries.simplify({"type": "Polygon", "coordinates": [islet]})
    assert len(tiny["coordinates"]) == 1 and len(tiny["coordinates"][0][0]) == 4


def test_label_point_of_a_square_is_its_centre():
    assert boundaries.label_point({"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}) \
        == pytest.approx((1.0, 1.0))


# --- upload validation -------------------------------------------------------------------------------

SQUARE = [[114.0, 30.0], [114.1, 30.0], [114.1, 30.1], [114.0, 30.1], [114.0, 30.0]]


def _geo_values(spec: dict) -> list[dict]:
    """The outlines layer's features (Altair moves inline data to the top-level datasets)."""
    data = spec["layer"][0]["data"]
    values = data["values"] if "values" in data else spec["datasets"][data["name"]]
    return json.loads(values) if isinstance(values, str) else values


def _doc(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(("raw", "message"), [
    (b"x" * (boundaries.MAX_UPLOAD_BYTES + 1), "文件过大"),
    ("{}".encode("gbk") + "区".encode("gbk"), "不是 UTF-8"),
    (b'{"type": "Polygon", "coordinates": [', "不是有效的 JSON（第 1 行"),
    (b"[" * 100_000, "嵌套层数过多"),
    (b'{"type": "Polygon", "coordinates": [[[NaN, 30], [1, 2], [3, 4], [NaN, 30]]]}', "不能有 NaN"),
    (_doc([1, 2]), "应为一个 GeoJSON 对象"),
    (_doc({"type": "Point", "coordinates": [114, 30]}), "只接受面（Polygon 或 MultiPolygon），文件中是 Point"),
    (_doc({"type": "LineString", "coordinates": SQUARE}), "文件中是 LineString"),
    (_doc({"type": "FeatureCollection", "features": []}), "恰好有 1 个要素"),
    (_doc({"type": "Feature", "geometry": None}), "没有几何形状"),
    (_doc({"type": "Polygon", "coordinates": []}), "没有坐标"),
    (_doc({"type": "Polygon", "coordinates": [SQUARE[:3]]}), "第 1 个面的外边界至少要有 4 个坐标点"),
    (_doc({"type": "Polygon", "coordinates": [[*SQUARE[:4], [114.0, 30.05]]]}), "第 1 个面的外边界没有闭合"),
    (_doc({"type": "Polygon", "coordinates": [[[30.0, 114.0], *SQUARE[1:4], [30.0, 114.0]]]}),
     "第 1 个坐标点 [30.0, 114.0] 不在中国范围内"),
    (_doc({"type": "Polygon", "coordinates": [[[12700000, 3500000], *SQUARE[1:4], [12700000, 3500000]]]}),
     "不在中国范围内"),
    (_doc({"type": "Polygon", "coordinates": [[[114, True], *SQUARE[1:4], [114, True]]]}), "第 1 个坐标点格式不对"),
    (_doc({"type": "Polygon", "coordinates": [[["114", 30], *SQUARE[1:]]]}), "格式不对"),
    (_doc({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE, SQUARE[:2]]]}),
     "第 2 个面的第 1 个内洞至少要有 4 个坐标点"),
    (_doc({"type": "Polygon", "coordinates": [
        [[114 + i * 1e-5, 30.0] for i in range(boundaries.MAX_VERTICES)] + [[114.0, 30.0]]]}), "坐标点过多"),
])
def test_a_bad_upload_is_refused_with_a_chinese_reason(raw, message):
    with pytest.raises(ValueError) as caught:
        boundaries.parse_upload(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize("obj", [
    {"type": "Polygon", "coordinates": [SQUARE]},
    {"type": "Feature", "properties": {"name": "高新区"}, "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
    {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "MultiPolygon",
                                                                                 "coordinates": [[SQUARE]]}}]},
])
def test_a_good_upload_is_reduced_to_its_geometry(obj):
    geometry = boundaries.parse_upload(b"\xef\xbb\xbf" + _doc(obj))  # a BOM is fine
    assert geometry["type"] in ("Polygon", "MultiPolygon")
    assert boundaries.vertex_count(geometry) == 5


def test_an_administrator_uploads_a_boundary_it_wins_and_is_audited(enshi):
    accounts.add_user(enshi, "boss", "a-long-password-1", [ADMIN])
    accounts.add_user(enshi, "lead", "a-long-password-1", [LEADER])
    boss, lead = accounts.get_user(enshi, "boss"), accounts.get_user(enshi, "lead")
    store.add_district(enshi, "高新区")
    raw = _doc({"type": "Polygon", "coordinates": [SQUARE]})
    with pytest.raises(accounts.PermissionDenied):
        admin.upload_district_shape(enshi, lead, "高新区", raw)
    with pytest.raises(ValueError, match="未配置"):
        admin.upload_district_shape(enshi, boss, "不存在区", raw)
    with pytest.raises(ValueError, match="没有闭合"):
        admin.upload_district_shape(enshi, boss, "高新区", _doc({"type": "Polygon", "coordinates": [SQUARE[:4] * 2]}))
    message = admin.upload_district_shape(enshi, boss, "高新区", raw, "gaoxin.geojson")
    assert "高新区" in message and "5 个坐标点" in message
    shapes = boundaries.district_shapes(enshi, ["恩施市", "高新区"])
    assert set(shapes.geometries) == {"恩施市", "高新区"} and shapes.uploaded == {"高新区"}
    log = accounts.audit_entries(enshi)
    assert log["内容"][0] == "上传区县边界 高新区：gaoxin.geojson，5 个坐标点"
    assert log["账号"][0] == "boss"
    # An upload for a district with a code replaces the packaged outline.
    admin.upload_district_shape(enshi, boss, "恩施市", raw)
    assert boundaries.district_shapes(enshi, ["恩施市"]).geometries["恩施市"]["coordinates"][0][0][0] == [114.0, 30.0]
    assert "已删除" in admin.remove_district_shape(enshi, boss, "恩施市")
    assert boundaries.district_shapes(enshi, ["恩施市"]).uploaded == set()


def test_the_demo_city_gets_hexagon_tiles_never_real_shapes():
    names = [f"区{i}" for i in range(11)]
    shapes = boundaries.schematic_shapes(names)
    assert shapes.kind == SCHEMATIC and list(shapes.geometries) == names
    centres = {boundaries.label_point(g) for g in shapes.geometries.values()}
    assert len(centres) == len(names)  # no two tiles on one place
    assert maps.schematic_note(shapes).startswith("示意图")
    assert maps.schematic_note(boundaries.Shapes(REAL)) is None


# --- the chart ---------------------------------------------------------------------------------------

IND = INDICATORS[0].id


def _rank(names: list[str]) -> pl.DataFrame:
    n = len(names)
    return pl.DataFrame({
        "district": names, "ranked": [True] * (n - 1) + [False],
        "unranked_reason": [None] * (n - 1) + ["缺少 2025-06 好差评数据"],
        "rank": [*range(1, n), None], "index": [90.0 - 5 * i for i in range(n)],
        IND: [0.99 - 0.01 * i for i in range(n)], f"{IND}__num": [99.0 - i for i in range(n)],
        f"{IND}__den": [100.0] * n,
    })


def test_map_values_rank_text_and_reasons():
    rank = _rank(["甲区", "乙区", "丙区"])
    values = maps.map_values(rank, IND, ["甲区", "乙区", "丙区", "丁区"])
    assert values.select("district", "coloured", "rank_text", "value_text", "numerator", "denominator").rows() == [
        ("甲区", True, "第 1 名 / 共 2 个", "99.00%", 99.0, 100.0),
        ("乙区", True, "第 2 名 / 共 2 个", "98.00%", 98.0, 100.0),
        ("丙区", False, "未排名：缺少 2025-06 好差评数据", "97.00%", 97.0, 100.0),
        ("丁区", False, "未排名：本期无数据", "—", None, None),
    ]


def test_map_spec_tooltip_legend_and_greyed_unranked():
    names = ["甲区", "乙区", "丙区"]
    settings = load_settings()
    shapes = boundaries.schematic_shapes(names)
    spec = maps.district_map(shapes, maps.map_values(_rank(names), IND, names), IND, settings).to_dict()
    geo = spec["layer"][0]
    titles = [t["title"] for t in geo["encoding"]["tooltip"]]
    indicator = INDICATORS[0]
    assert titles == ["区县", indicator.name, f"分子：{indicator.numerator_label}",
                      f"分母：{indicator.denominator_label}", "排名"]
    colour = geo["encoding"]["color"]
    target = settings.indicators[IND]
    assert colour["condition"]["test"] == "datum.coloured" and colour["value"] == maps.GREY
    # The map's colour is the score tier of the ranking bars, with the same four-colour scale.
    assert colour["condition"]["field"] == "tier"
    assert colour["condition"]["scale"] == charts.tier_scale().to_dict()
    tier_title, legend = colour["condition"]["title"]
    assert tier_title == charts.TIER_TITLE
    assert legend.startswith(indicator.name) and "底线" in legend and "目标" in legend
    assert (target.floor, target.target) == (0.8, 1.0)  # the defaults the hand-computed tiers below use
    assert geo["encoding"]["strokeDash"]["value"] == [4, 3]  # dashed outline when not coloured
    assert geo["data"]["format"] == {"type": "json"}
    features = {f["district"]: f for f in _geo_values(spec)}
    assert [features[n]["coloured"] for n in names] == [True, True, False]
    assert [features[n]["tier"] for n in names[:2]] == ["优 ≥90", "优 ≥90"]  # 99 %: 95 分, 98 %: 90 分
    assert features["丙区"]["rank_text"] == "未排名：缺少 2025-06 好差评数据"
    assert spec["params"] == [{"name": maps.SELECTION, "select": {"type": "point", "fields": ["district"], "on": "click"},
                               "views": [geo["name"]]}]
    black, white = (spec["layer"][n]["data"]["values"] for n in (1, 2))
    # 99 % and 98 % score 优 (deep green, white type); unranked is grey with black type.
    assert [row["label"] for row in black if row] == ["丙区\n未排名"]
    assert [row["label"] for row in white if row] == ["甲区\n99.00%", "乙区\n98.00%"]
    assert "url" not in json.dumps(spec)  # inline data only: the browser fetches nothing
    for_streamlit = maps.to_spec(maps.district_map(shapes, maps.map_values(_rank(names), IND, names), IND, settings))
    (name,) = [n for n, v in for_streamlit["datasets"].items() if isinstance(v, list) and "geometry" in v[0]]
    assert for_streamlit["layer"][0]["data"] == {"name": name}  # no string left for Streamlit to tabulate
    assert for_streamlit["datasets"][name] == _geo_values(spec)


@pytest.mark.parametrize(("index", "tier", "white"), [
    (95.0, "优 ≥90", True), (89.96, "优 ≥90", True),  # shown as 90.0, so 优 as on the bars
    (89.94, "良 75–90", False), (75.0, "良 75–90", False), (74.9, "中 60–75", False),
    (60.0, "中 60–75", False), (59.9, "差 <60", True), (0.0, "差 <60", True),
])
def test_the_map_colours_a_district_by_the_tier_of_its_bar(index, tier, white):
    names = ["甲区", "乙区"]
    rank = _rank(names).with_columns(pl.Series("index", [index, 50.0]))
    spec = maps.district_map(boundaries.schematic_shapes(names), maps.map_values(rank, INDEX, names), INDEX,
                             load_settings()).to_dict()
    feature = {f["district"]: f for f in _geo_values(spec)}["甲区"]
    assert feature["tier"] == tier
    bar = charts.tier_expr(pl.lit(index))
    assert pl.select(bar).item() == tier  # the bars' own rule gives the same tier
    labels = {row["label"].split("\n")[0]: n for n in (1, 2) for row in spec["layer"][n]["data"]["values"] if row}
    assert labels["甲区"] == (2 if white else 1)


def test_index_legend_states_the_scale_and_target():
    title = maps.legend_title(INDEX, load_settings())
    assert "0–100" in title and "目标 100" in title


@pytest.mark.parametrize("key", [INDEX, IND])
def test_a_filled_skeleton_is_the_spec_built_afresh(key):
    """pages/_map.py builds a colouring's spec once and fills it for each period (maps.fill_spec)."""
    names = ["甲区", "乙区", "丙区", "丁区"]
    settings = load_settings()
    shapes = boundaries.schematic_shapes(names)
    other = maps.map_values(_rank(names[:2]), key, names)  # another period: two districts with data
    skeleton = maps.to_spec(maps.district_map(shapes, other, key, settings))
    values = maps.map_values(_rank(names[:3]), key, names)

    def named(spec: dict) -> dict:  # Altair names a data set by its content's hash: compare it by place
        (name,) = spec["datasets"]
        text = json.dumps(spec, ensure_ascii=False, sort_keys=True)
        return json.loads(text.replace(name, "outlines"))

    filled = maps.fill_spec(skeleton, shapes, values, key, settings)
    assert named(filled) == named(maps.to_spec(maps.district_map(shapes, values, key, settings)))
    assert named(filled) != named(skeleton)


def test_the_index_legend_is_on_two_lines():
    names = ["甲区", "乙区"]
    spec = maps.district_map(boundaries.schematic_shapes(names), maps.map_values(_rank(names), INDEX, names), INDEX,
                             load_settings()).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["condition"]["title"] == [
        charts.TIER_TITLE, "效能指数（0–100 分）", "目标 100 分 = 各项指标均达到目标值"]
