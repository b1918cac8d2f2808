"""Every dashboard page opened with streamlit.testing.v1.AppTest on a small demo store.

The store is generated once per session (``generate_demo(scale=0.01)``, the ``demo`` fixture in
conftest.py) and passed through DATABASE_URL; tests that change data work on a copy. A configured
database allows no anonymous viewing, so each test signs in an account (``tester`` holds every role
unless the test is about one role). Each test checks what the page shows against the functions in
metrics/ and datasets/ computed independently here.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from datasets.access import accounts
from datasets.domain.periods import Period
from datasets.domain.schema import KINDS
from datasets.storage import quality, store
from metrics import drill, formatting, overview
from metrics.compute import CITY, aggregate
from metrics.exports import rank_table_chinese
from metrics.registry import BY_ID, INDICATORS
from metrics.scoring import load_settings
from metrics.units import INDEX_UNIT
from tests.apptest_support import (
    ADMIN_NAME,
    ALL_NAME,
    DASHBOARD,
    ROOT,
    STAFF_NAME,
    TIMEOUT,
    Demo,
    cases_csv,
    charts,
    metrics,
    ok,
    open_page,
    sqlite_url,
    table,
    tables,
    texts,
)
from tests.apptest_support import app as _app

pytestmark = pytest.mark.usefixtures("navigation_mode")


def app(demo: Demo, monkeypatch: pytest.MonkeyPatch, user: str = ALL_NAME, **query: str | list[str]) -> AppTest:
    """The dashboard on the demo store with the account ``user`` signed in."""
    return _app(demo.url, monkeypatch, demo.users[user], **query)


# --- 总览 ---------------------------------------------------------------------------------------------


def test_overview_index_for_a_district_equals_ranking(demo: Demo, monkeypatch):
    rank = demo.ranking()
    row = rank.row(3, named=True)
    at = ok(app(demo, monkeypatch, period=demo.period.key, district=[row["district"]]).run())
    shown = metrics(at)
    assert shown["效能指数"] == f"{row['index']:.1f}"
    # Key indicator cards: value of the district, 环比 against the previous month.
    prev = demo.ranking(demo.period.previous()).filter(pl.col("district") == row["district"])
    card = next(m for m in at.metric if m.label.startswith("按时办结率"))
    assert card.value == formatting.fmt_value("on_time_rate", row["on_time_rate"])
    assert card.proto.delta == formatting.fmt_delta("on_time_rate", row["on_time_rate"] - prev["on_time_rate"][0])
    # Alerts use the counting rules of the indicators.
    assert shown["红牌办件"] == f"{int(row['red_card_rate__num'])} 件"
    late = row["bad_rectified_on_time_rate__den"] - row["bad_rectified_on_time_rate__num"]
    assert shown["差评未按时整改"] == f"{int(late)} 条"


def test_overview_city_cards_ranking_chart_and_alert_lists(demo: Demo, monkeypatch):
    at = ok(app(demo, monkeypatch).run())  # no query string: latest month, whole city
    assert at.title[0].value == f"总览 · {demo.period.label}"
    city = overview.pooled_scores(demo.comps, demo.period, demo.settings)
    assert metrics(at)["效能指数"] == f"{city['index']:.1f}"
    down = next(m for m in at.metric if m.label.startswith("平均办理用时"))
    assert down.proto.delta_description == "环比"
    # A ↓ indicator: its delta colour is inverted (a decrease is good).
    before = overview.pooled_scores(demo.comps, demo.period.previous(), demo.settings)["avg_handling_days"]
    if before is not None and city["avg_handling_days"] is not None and before != city["avg_handling_days"]:
        improved = city["avg_handling_days"] < before
        assert (down.proto.color == down.proto.GREEN) == improved

    rank = demo.ranking()
    shown = table(at, "上期排名")
    assert shown["区县"].to_list() == rank["district"].to_list()
    # One decimal, rounded once (metrics/units.py: Unit.shown).
    assert shown["效能指数"].to_list() == [INDEX_UNIT.shown(v) for v in rank["index"].to_list()]
    bar = next(c for c in charts(at) if "layer" in c and c["layer"][0]["mark"]["type"] == "bar")
    assert bar["layer"][0]["encoding"]["y"]["sort"] == rank["district"].to_list()

    red = int(rank["red_card_rate__num"].sum())
    assert metrics(at)["红牌办件"] == f"{red} 件"
    assert "load_alerts" not in [b.key for b in at.button]  # the lists are shown without a button
    red_list = next(e for e in at.expander if e.label.startswith("红牌办件清单"))
    assert red_list.label == f"红牌办件清单（{red} 件）"
    cases = pl.from_pandas(red_list.dataframe[0].value)
    assert cases.height == red and set(cases["红黄牌"].to_list()) <= {"红牌"}
    assert any("变化最大" in s.value for s in at.subheader)
    movers = table(at, "指数变化")
    assert 0 < movers.height <= 5
    overdue = next(e for e in at.expander if e.label.startswith("超期在办件清单"))
    assert metrics(at)["超期在办件"] == f"{overdue.dataframe[0].value.shape[0]} 件"


def test_overview_explains_ranks_and_colours(demo: Demo, monkeypatch):
    """总览 says why a district ranks where it does (its strongest and weakest group) and what the colours
    mean: the ranking's bars by score tier with a legend, the trend's lines by role with labels."""
    at = ok(app(demo, monkeypatch).run())
    rank = demo.ranking()
    assert any(s.value == "各区县强项与弱项" for s in at.subheader)
    shown = table(at, "弱项分组")
    expected = overview.strengths(rank)
    assert shown["区县"].to_list() == expected["区县"].to_list()
    for column in overview.STRENGTH_COLUMNS[1:]:
        assert shown[column].to_list() == expected[column].to_list()
    specs = charts(at)
    bar = next(c for c in specs if "layer" in c and c["layer"][0]["mark"]["type"] == "bar")
    colour = bar["layer"][0]["encoding"]["color"]
    assert colour["field"] == "tier" and colour["title"] == "得分等级（分）"
    # Streamlit moves the charts' data out of the spec, into Arrow tables beside it.
    elements = at.get("vega_lite_chart")
    trend = next(e for e, c in zip(elements, specs, strict=True) if "layer" in c and any(
        layer["encoding"].get("color", {}).get("field") == "role" for layer in c["layer"]))
    frames = [pl.from_arrow(pa.ipc.open_stream(d.data.data).read_all()) for d in trend.proto.datasets]
    labels = [label for f in frames if "label" in f.columns for label in f["label"].to_list()]
    last = rank.drop_nulls("index")
    best, worst = last["district"][0], last.sort("index")["district"][0]  # ranking order: best first
    assert CITY in labels and f"{best}（最好）" in labels and f"{worst}（最差）" in labels


def test_bad_period_in_the_link_is_a_message(demo: Demo, monkeypatch):
    at = ok(app(demo, monkeypatch, period="2024-13").run())
    assert "时段参数无效" in texts(at.warning)
    assert at.title[0].value == f"总览 · {demo.period.label}"
    at = ok(app(demo, monkeypatch, period="1999-05", district=["不存在区", "[点我](http://x)"]).run())
    warning = texts(at.warning)
    assert "没有数据" in warning and "不存在区" in warning
    assert "\\[点我\\]\\(http" in warning  # text from the link is never rendered as Markdown


def test_filters_are_kept_in_the_url(demo: Demo, monkeypatch):
    quarter = f"{demo.period.first[:4]}-Q{(int(demo.period.first[5:]) - 1) // 3 + 1}"
    at = ok(app(demo, monkeypatch, period=quarter, indicator=["good_rate"]).run())
    assert at.sidebar.radio(key="f_type").value == "季"
    assert at.title[0].value.endswith(Period(*_quarter(quarter)).label)
    assert [m.label for m in at.metric][:2] == ["效能指数", "好评率 ↑"]
    at.sidebar.radio(key="f_type").set_value("年")
    ok(at.run())
    assert at.query_params["period"] == demo.period.first[:4]
    at.sidebar.multiselect(key="f_districts").set_value([demo.districts[0]])
    ok(at.run())
    assert at.query_params["district"] in (demo.districts[0], [demo.districts[0]])
    assert at.query_params["indicator"] in ("good_rate", ["good_rate"])


def _quarter(key: str) -> tuple[str, str]:
    year, q = key.split("-Q")
    first = (int(q) - 1) * 3 + 1
    return f"{year}-{first:02d}", f"{year}-{first + 2:02d}"


# --- 区县对比 -------------------------------------------------------------------------------------------


def test_compare_page_charts_heatmap_and_drill_down(demo: Demo, monkeypatch):
    rank = demo.ranking()
    district = rank.sort("red_card_rate__num", descending=True)["district"][0]
    at = app(demo, monkeypatch, period=demo.period.key)
    at = open_page(at, "pages/compare.py")
    specs = charts(at)
    chosen = list(overview.KEY_INDICATORS)
    assert len(specs) == len(chosen) + 2  # one chart per chosen indicator, the district map, then the heatmap
    assert specs[-2]["layer"][0]["mark"]["type"] == "geoshape"
    # One colour scale for districts on every chart.
    domains = {json.dumps(layer["encoding"]["color"]["scale"]["domain"], ensure_ascii=False)
               for spec in specs[:len(chosen)] for layer in spec["layer"][:1]}
    assert len(domains) == 1
    # The heatmap's cells carry each district's score from the ranking.
    heat = pl.from_pandas(_chart_data(at, -1))
    assert heat.filter(pl.col("district") == district, pl.col("indicator") == "on_time_rate")["score"][0] == \
        pytest.approx(round(rank.filter(pl.col("district") == district)["score_on_time_rate"][0], 1))

    at.selectbox(key="drill_district").set_value(district)
    ok(at.run())
    departments = table(at, "部门")
    expected = drill.department_table(demo.comps, demo.period, district, chosen)
    assert departments.height == expected.height
    assert departments["按时办结率·分母"].to_list() == pytest.approx(expected["按时办结率·分母"].to_list())
    red = _tab_table(at, "红牌办件")
    numerator = int(rank.filter(pl.col("district") == district)["red_card_rate__num"][0])
    assert red.height == numerator
    if numerator:
        case = red.row(0, named=True)
        at.selectbox(key="drill_department").set_value(case["实施部门"])
        ok(at.run())
        at.selectbox(key="drill_item").set_value(case["事项编码"])
        ok(at.run())
        red = _tab_table(at, "红牌办件")
        assert case["办件编号"] in red["办件编号"].to_list()
        assert set(red["事项编码"].to_list()) == {case["事项编码"]}


def _tab_table(at: AppTest, label: str) -> pl.DataFrame:
    tab = next(t for t in at.tabs if t.label == label)
    return pl.from_pandas(tab.dataframe[0].value)


def _chart_data(at: AppTest, index: int):
    """The data of a chart as pandas (datasets are sent as Arrow)."""
    from streamlit import dataframe_util

    proto = at.get("vega_lite_chart")[index].proto
    data = proto.datasets[0].data.data if proto.datasets else proto.data.data
    return dataframe_util.convert_arrow_bytes_to_pandas_df(data)


# --- 时段对比 -------------------------------------------------------------------------------------------


def test_periods_page_compares_two_periods(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch, period=demo.period.key), "pages/periods.py")
    changes = table(at, "变化")
    city_now = aggregate(demo.comps, demo.period, by="city").filter(pl.col("indicator") == "on_time_rate")
    city_before = aggregate(demo.comps, demo.period.previous(), by="city").filter(pl.col("indicator") == "on_time_rate")
    row = changes.filter(pl.col("区县") == CITY, pl.col("指标") == "按时办结率 ↑").row(0, named=True)
    assert row[f"本期（{demo.period.label}）"] == formatting.fmt_value("on_time_rate", city_now["value"][0])
    assert row[f"对比期（{demo.period.previous().label}）"] == formatting.fmt_value("on_time_rate", city_before["value"][0])
    assert row["本期分母"] == city_now["denominator"][0]
    assert len(charts(at)) == 2 * len(overview.KEY_INDICATORS)  # comparison and trend per indicator
    # Changes first (issue 27): every indicator; the changed rows of the chosen ones, then of the others,
    # then 持平, then no value; the changes shown largest first within each of the first two.
    chosen = {f"{BY_ID[i].name} {BY_ID[i].arrow}" for i in overview.KEY_INDICATORS}
    assert set(changes["指标"]) == {f"{i.name} {i.arrow}" for i in INDICATORS}
    groups = [(0 if v in ("改善", "退步") else 1 if v == "持平" else 2, n not in chosen if v in ("改善", "退步") else 0)
              for v, n in zip(changes["评价"], changes["指标"], strict=True)]
    assert groups == sorted(groups) and groups[0] == (0, False)
    for group in ((0, False), (0, True)):
        sizes = [abs(float(c.split(" ")[1])) for c, g in zip(changes["变化"], groups, strict=True) if g == group]
        assert sizes == sorted(sizes, reverse=True), group

    at.radio(key="vs_mode").set_value("自选时段")
    ok(at.run())
    at.text_input(key="vs_text").set_value("2024-13")
    ok(at.run())
    assert "对比时段无效" in texts(at.error)
    year = demo.period.first[:4]
    at.text_input(key="vs_text").set_value(year)
    ok(at.run())
    assert not at.error
    assert any(c.startswith(f"对比期（{year}年）") for c in table(at, "变化").columns)


# --- 排名下载 -------------------------------------------------------------------------------------------


def test_ranking_page_table_and_downloads(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch, period=demo.period.key), "pages/ranking.py")
    shown = table(at, "排名")
    expected = rank_table_chinese(demo.ranking())
    assert shown.columns == expected.columns
    first = shown.row(0, named=True)
    assert first["区县"] == expected["区县"][0]
    assert first["排名"] == 1
    assert first["效能指数"] == pytest.approx(expected["效能指数"][0])
    assert first["按时办结率·分子"] == pytest.approx(expected["按时办结率·分子"][0])
    labels = [b.label for b in at.download_button]
    assert labels == ["下载 Excel（.xlsx）", "下载 CSV"]
    assert at.download_button[0].proto.url.endswith(".xlsx")
    # Every district and indicator is ranked: a district or indicator choice would change nothing.
    assert at.sidebar.radio(key="f_type") and not at.sidebar.multiselect


# --- 数据上传 -------------------------------------------------------------------------------------------


def test_upload_validate_import_and_roll_back(demo_copy: Demo, monkeypatch):
    district, month = demo_copy.districts[0], demo_copy.period.first
    data = cases_csv(demo_copy.url, district, month)
    # The 工作人员 account is responsible for the first district: the import is made in its name.
    at = open_page(app(demo_copy, monkeypatch, STAFF_NAME), "pages/upload.py")
    at.file_uploader[0].set_value([("办件*明细*.csv", data, "text/csv"), ("坏文件.csv", b"a,b\n1,2\n", "text/csv")])
    ok(at.run())
    assert "校验通过" in texts(at.success)
    assert "办件\\*明细\\*" in texts(at.success)  # a file name is shown as text, never as Markdown
    assert "坏文件" in texts(at.error) and "无法读取" in texts(at.error)
    good, bad = tables(at, "行号")  # one problem list per file
    assert "错误" not in good["严重程度"].to_list()
    assert bad["严重程度"].to_list() == ["错误"] and bad["规则"][0] == "无法识别数据类型"
    assert "下载校验报告（.xlsx）" in [b.label for b in at.download_button]

    button = at.button(key="up_import")
    assert button.label == "确认导入（1 个文件）"
    ok(button.click().run())
    assert "已导入" in texts(at.success)
    engine = store.make_engine(demo_copy.url)
    newest = store.batch_history(engine, "cases", district).row(0, named=True)
    assert (newest["file_name"], newest["period"], newest["version"], newest["user_name"]) == (
        "办件*明细*.csv", month, 2, STAFF_NAME)
    history = table(at, "批次号")
    assert history["批次号"][0] == newest["id"]

    previous = store.batch_history(engine, "cases", district).filter(pl.col("version") == 1)["id"][0]
    assert at.selectbox(key="rb_target_1").value is None  # no version is preselected
    assert at.button(key="rb_go_1").disabled
    at.selectbox(key="rb_target_1").set_value(previous)
    at.checkbox(key="rb_confirm_1").check()
    ok(at.run())
    ok(at.button(key="rb_go_1").click().run())
    assert "恢复为第 1 版" in texts(at.success)
    active = store.active_batches(engine, "cases").filter(pl.col("district") == district, pl.col("period") == month)
    assert active["id"].to_list() == [previous]
    # After the action nothing is ticked or chosen: a second click cannot roll back again unasked.
    assert at.checkbox(key="rb_confirm_2").value is False and at.selectbox(key="rb_target_2").value is None
    assert at.button(key="rb_go_2").disabled and at.button(key="wd_go_2").disabled

    # 撤销导入: the active version (the rolled-back-to first one) is withdrawn; its rows stop counting.
    at.selectbox(key="wd_target_2").set_value(previous)
    at.checkbox(key="wd_confirm_2").check()
    ok(at.run())
    ok(at.button(key="wd_go_2").click().run())
    assert "已撤销办件明细" in texts(at.success)
    assert store.active_batches(engine, "cases").filter(pl.col("district") == district,
                                                        pl.col("period") == month).height == 0
    history = table(at, "批次号")
    assert history.filter(pl.col("批次号") == previous)["状态"].to_list() == ["已撤销"]
    assert at.checkbox(key="wd_confirm_3").value is False and at.selectbox(key="wd_target_3").value is None
    # …and restored by a rollback to it.
    at.selectbox(key="rb_target_3").set_value(previous)
    at.checkbox(key="rb_confirm_3").check()
    ok(at.run())
    ok(at.button(key="rb_go_3").click().run())
    active = store.active_batches(engine, "cases").filter(pl.col("district") == district, pl.col("period") == month)
    assert active["id"].to_list() == [previous]
    # The import, the rollbacks and the withdrawal are in the audit log under the account, from this page.
    log = accounts.audit_entries(engine, 8)
    assert log.filter(pl.col("操作").is_in(["导入", "回滚", "撤销导入"]))[["操作", "账号", "页面"]].rows() == [
        ("回滚", STAFF_NAME, "数据上传"), ("撤销导入", STAFF_NAME, "数据上传"), ("回滚", STAFF_NAME, "数据上传"),
        ("导入", STAFF_NAME, "数据上传")]
    engine.dispose()
    assert len(at.download_button) >= len(KINDS)  # the import templates


# --- partial months and the bulletin's own period picker (issue 24) -------------------------------------


def test_a_partial_month_is_marked_in_the_picker_and_labelled_on_the_page(demo: Demo, monkeypatch):
    # In the demo city 松岭县 sent nothing for 2025-02; the default stays the latest complete month.
    at = open_page(app(demo, monkeypatch), "pages/overview.py")
    assert at.title[0].value == f"总览 · {demo.period.label}"
    options = at.selectbox(key="f_month").options
    assert "2025年2月（未报齐）" in options and "2025年3月" in options and "2025年3月（未报齐）" not in options
    assert not [w for w in at.warning if "数据截至" in str(w.value)]
    ok(at.selectbox(key="f_month").set_value("2025-02").run())
    assert at.title[0].value == "总览 · 2025年2月"
    assert "2025年2月数据未报齐。数据截至 2025年2月28日，已报送 9/10 个区县；未报送：松岭县" in texts(at.warning)


def test_an_early_upload_of_the_next_month_leaves_the_default_view(demo_copy: Demo, monkeypatch):
    import datetime as dt

    from datasets.intake.ingest import import_frame

    engine = store.make_engine(demo_copy.url)
    cases = store.load_records(engine, "cases")
    district = demo_copy.districts[0]
    july = cases.filter(pl.col("district") == district,
                        pl.col("accepted_at").dt.strftime("%Y-%m") == demo_copy.period.first).head(5).with_columns(
        pl.col("accepted_at").dt.offset_by("1mo"), pl.col("completed_at").dt.offset_by("1mo"),
        (pl.col("case_id") + "-7").alias("case_id")).drop("batch_id", "period")
    assert import_frame(engine, "cases", july, file_name="7月.xlsx", sha256="7" * 64,
                        created_at=dt.datetime(2025, 7, 7, 9)).results[0].period == "2025-07"
    engine.dispose()
    at = open_page(app(demo_copy, monkeypatch), "pages/overview.py")
    assert at.title[0].value == f"总览 · {demo_copy.period.label}"  # still June
    assert at.selectbox(key="f_month").options[0] == "2025年7月（未报齐）"
    assert not [w for w in at.warning if "数据截至" in str(w.value)]
    ok(at.selectbox(key="f_month").set_value("2025-07").run())
    assert at.title[0].value == "总览 · 2025年7月"
    assert f"2025年7月数据未报齐。数据截至 2025年7月7日，已报送 0/10 个区县；未报送：{district}（缺好差评）" in texts(at.warning)


def test_a_year_in_progress_is_shown_and_ranked_to_date(demo: Demo, monkeypatch):
    import datetime as dt

    from pages._shared import TODAY_KEY

    at = app(demo, monkeypatch, period="2025")
    at.session_state[TODAY_KEY] = dt.date(2025, 7, 3)  # the pages' clock: 2025 is in progress
    at = open_page(at, "pages/ranking.py")
    assert at.title[0].value == "排名下载 · 2025年（1—6月）"
    # 松岭县 sent nothing for 2025-02: the year is marked and the page names that month.
    assert at.selectbox(key="f_year").options[0] == "2025年（未报齐）"
    assert "2025年（1—6月）数据未报齐。2025年2月：数据截至 2025年2月28日" in texts(at.warning)
    expected = rank_table_chinese(demo.ranking(Period("2025-01", "2025-06", "2025")))
    assert table(at, "排名")["效能指数"].to_list() == pytest.approx(expected["效能指数"].to_list(), nan_ok=True)
    assert at.query_params["period"] == "2025"  # a bookmark keeps the year, measured to date when opened


def test_the_bulletin_page_has_its_own_period_picker(demo: Demo, monkeypatch):
    # The sidebar's choice elsewhere (a quarter) does not decide the bulletin's period.
    at = open_page(app(demo, monkeypatch, period="2025-Q1"), "pages/bulletin.py")
    assert at.title[0].value == f"月度通报 · {demo.period.label}"
    picker = at.selectbox(key="bulletin_period_月")
    assert picker.value == demo.period.key and "2025年2月（未报齐）" in picker.options
    ok(picker.set_value("2025-02").run())
    assert at.title[0].value == "月度通报 · 2025年2月"
    assert "数据截至 2025年2月28日，已报送 9/10 个区县；未报送：松岭县" in texts(at.warning)
    assert any("注：本期数据未报齐" in m.value for m in at.markdown)
    ok(at.radio(key="bulletin_period_type").set_value("季").run())
    assert at.selectbox(key="bulletin_period_季").value == "2025-Q2"
    assert at.title[0].value == "月度通报 · 2025年第2季度"


# --- 数据质量 -------------------------------------------------------------------------------------------


def test_quality_page(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch), "pages/quality.py")
    engine = store.make_engine(demo.url)
    grid = quality.completeness(engine)
    expected = quality.completeness_summary(grid)
    shown = table(at, "逾期报送")
    assert shown["数据类型"].to_list() == expected["数据类型"].to_list()
    assert shown["缺失"].to_list() == expected["缺失"].to_list()
    missing = table(at, "月份")
    assert missing.height == quality.missing_list(grid).height > 0
    last = table(at, "最近上传时间")
    assert set(last["区县"].to_list()) == set(demo.districts)
    history, stored = table(at, "校验提示"), store.batch_history(engine)
    assert history.height == min(500, stored.height)
    assert history["批次号"][0] == stored["id"].max()
    engine.dispose()
    assert len(charts(at)) == 1


# --- 指标说明 -------------------------------------------------------------------------------------------


def test_indicator_reference_lists_all_indicators(demo: Demo, monkeypatch):
    at = open_page(app(demo, monkeypatch), "pages/indicators.py")
    shown = table(at, "口径说明")
    assert shown.height == len(INDICATORS) == 28
    assert shown["指标"].to_list() == [i.name for i in INDICATORS]
    assert shown["公式"].to_list() == [i.formula for i in INDICATORS]
    assert shown["权重"].to_list() == [demo.settings.indicators[i.id].weight for i in INDICATORS]
    assert shown["目标值"][0] == formatting.fmt_value(INDICATORS[0].id, demo.settings.indicators[INDICATORS[0].id].target)
    assert table(at, "权重合计")["权重合计"].sum() == pytest.approx(
        sum(t.weight for t in demo.settings.indicators.values()))
    # The command line's ids (online_available_rate, …) are not shown: no English a user reads.
    (listed,) = [d for d in at.dataframe if "口径说明" in d.value.columns]
    assert json.loads(listed.proto.columns)["编号"].get("hidden") is True


# --- 设置 -----------------------------------------------------------------------------------------------


def _edit(at: AppTest, rows: dict[int, dict[str, float]]) -> None:
    at.session_state["settings_editor_0"] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}


def test_settings_save_updates_ranking(demo_copy: Demo, monkeypatch):
    at = open_page(app(demo_copy, monkeypatch, ADMIN_NAME, period=demo_copy.period.key), "pages/settings.py")
    editor = at.data_editor[0].value
    row = editor.index[editor["编号"] == "online_case_rate"][0]
    _edit(at, {int(row): {"权重": 40.0}})
    ok(at.form_submit_button[0].click().run())
    assert "已保存 1 项修改" in texts(at.success)
    engine = store.make_engine(demo_copy.url)
    saved = load_settings(engine)
    assert saved.indicators["online_case_rate"].weight == 40.0
    saved_now, history = tables(at, "设置项")  # the changes just saved, then the change log
    assert saved_now.rows() == [("实际网办率 · 权重", "8", "40")]
    assert history.row(0, named=True)["设置项"] == "实际网办率 · 权重"
    assert history.row(0, named=True)["操作人"] == ADMIN_NAME
    logged = accounts.audit_entries(engine, 1, "settings").row(0, named=True)
    assert (logged["账号"], logged["页面"]) == (ADMIN_NAME, "设置") and "实际网办率 · 权重：8 → 40" in logged["内容"]

    ok(at.switch_page("pages/ranking.py").run())
    expected = demo_copy.ranking(settings=saved)
    before = demo_copy.ranking()
    shown = table(at, "排名")
    assert shown["效能指数"].to_list() == [INDEX_UNIT.shown(v) for v in expected["index"].to_list()]
    assert expected["index"].to_list() != pytest.approx(before["index"].to_list())
    engine.dispose()


def test_settings_errors_are_messages(demo_copy: Demo, monkeypatch):
    at = open_page(app(demo_copy, monkeypatch, ADMIN_NAME), "pages/settings.py")
    first = next(i for i in INDICATORS)
    floor = demo_copy.settings.indicators[first.id].floor * 100
    _edit(at, {0: {"目标值": floor}, 1: {"权重": -1.0}})
    ok(at.form_submit_button[0].click().run())
    error = texts(at.error)
    assert f"{first.name}：目标值与底线值不能相同" in error
    assert f"{INDICATORS[1].name}的权重不能小于 0" in error
    engine = store.make_engine(demo_copy.url)
    assert store.read_query(engine, store.settings_changes.select()).height == 0
    assert accounts.audit_entries(engine, action="settings").height == 0
    engine.dispose()


# --- empty store, and the pages' own rules -------------------------------------------------------------


def test_first_start_without_configuration_loads_the_demo(tmp_path: Path, monkeypatch):
    """Nothing configured: the embedded SQLite file is used and, being empty, gets the demo city."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SQLITE_PATH", str(tmp_path / "dashboard.db"))
    monkeypatch.setenv("LOAD_DEMO_IF_EMPTY", "true")
    monkeypatch.setenv("DEMO_SCALE", "0.002")  # the smallest city: this test is about the first start
    at = ok(AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT).run())
    assert (tmp_path / "dashboard.db").exists()
    assert "示例数据" in texts(at.info)
    assert at.title[0].value.startswith("总览")  # demo mode: anonymous viewing allowed
    assert metrics(at)["效能指数"] != "—"


def test_empty_configured_database_shows_how_to_begin(tmp_path: Path, monkeypatch):
    url = sqlite_url(tmp_path / "empty.db")
    engine = store.make_engine(url)
    store.init_db(engine)
    admin = accounts.add_user(engine, "first-admin", "first-admin-pass", [accounts.ADMIN, accounts.STAFF])
    engine.dispose()
    at = ok(_app(url, monkeypatch, admin).run())
    assert "数据库中还没有数据" in texts(at.info)
    assert any(b.label.startswith("载入示例数据") for b in at.button)
    ok(at.switch_page("pages/upload.py").run())
    assert at.title[0].value == "数据上传"
    assert "尚未分配负责的区县" in texts(at.warning)  # no districts configured yet
    ok(at.switch_page("pages/indicators.py").run())
    assert table(at, "口径说明").height == len(INDICATORS)


def test_unreachable_database_is_a_message(monkeypatch):
    at = ok(_app("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", monkeypatch).run())
    error = texts(at.error)
    assert "无法连接数据库" in error and "secret" not in error


def test_deep_link_before_navigation(demo: Demo, monkeypatch):
    """Before any session has called st.navigation, Streamlit runs a page file straight from pages/;
    the page then runs the dashboard around itself (sidebar, context) instead of failing."""
    at = ok(app(demo, monkeypatch, period=demo.period.key).run())
    ok(at.switch_page("pages/ranking.py").run())
    assert at.title[0].value == f"排名下载 · {demo.period.label}"
    assert at.sidebar.radio(key="f_type").value == "月"
    assert table(at, "排名").height == len(demo.districts)


def test_pages_are_thin():
    """Pages lay out results: no Polars, SQL or SQLAlchemy in pages/ (the shared helpers excepted)."""
    for page in (ROOT / "pages").glob("*.py"):
        if page.name.startswith("_"):
            continue
        source = page.read_text(encoding="utf-8")
        for banned in ("import polars", "sqlalchemy", "pl.col", "SELECT ", "unsafe_allow_html"):
            assert banned not in source, f"{page.name}: {banned}"


# --- tables ---------------------------------------------------------------------------------------------

SHORT, LONG2, LONG4 = "按时办结", "办" * 30, "办" * 100  # display widths 8, 60 (2 lines), 200 (4 lines)


@pytest.mark.parametrize(("values", "rows", "max_rows", "expected"), [
    ([SHORT], 3, 10, ((), None, "content")),  # fits: exactly its rows, no filler
    ([SHORT], 12, 10, ((), None, 35 + 10 * 35 + 2)),  # ten one-line rows, then it scrolls
    ([SHORT], 12, None, ((), None, "content")),
    ([SHORT, LONG2], 3, 10, (("说明",), 66, "content")),  # two lines: the least height Streamlit wraps in
    ([LONG4], 3, 10, (("说明",), 4 * 20 + 14, "content")),
    (["办" * 500], 3, 10, (("说明",), 4 * 20 + 14, "content")),  # at most four lines (a click shows the rest)
    ([SHORT, LONG2], 12, 10, (("说明",), 66, 35 + 10 * 66 + 2)),
    (["x" * 48], 3, 10, ((), None, "content")),  # 48 narrow characters fit on one line
])
def test_long_text_wraps_and_tables_have_no_filler_rows(values, rows, max_rows, expected):
    from pages._shared import table_layout

    frame = pl.DataFrame({"区县": ["甲区"] * rows, "说明": [values[i % len(values)] for i in range(rows)],
                          "值": [1.5] * rows})
    layout = table_layout(frame, max_rows)
    assert (layout.wrapped, layout.row_height, layout.height) == expected
    # Text columns are as wide as their longest text (at most 400 px), where that is wider than the header.
    longest = max(len(v) for v in values) * 2  # the values are Chinese (2 units each) or "x"s
    longest = longest // 2 if values[0].startswith("x") else longest
    assert layout.widths == {"说明": min(400, longest * 7 + 24)}


@pytest.mark.parametrize(("columns", "wide"), [
    ({"区县": ["甲区"], "效能指数": [91.5]}, False),  # two narrow columns fit a phone
    ({"区县": ["甲区"], "未排名原因": ["未排名：缺少 2024-10 办件明细、事项目录和评价数据"]}, True),
    ({f"指标{n}": [0.5] for n in range(8)}, True),  # eight columns: scrolls sideways on a phone
])
def test_a_table_wider_than_a_phone_says_it_scrolls(columns, wide):
    from pages._shared import table_layout

    assert table_layout(pl.DataFrame(columns)).wide is wide
