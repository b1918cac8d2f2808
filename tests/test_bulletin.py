"""The monthly bulletin (月度通报) and the district report cards, checked against the CLI.

The bulletins are generated from the session's small demo store and parsed back with python-docx;
every number is compared with what ``python -m metrics report`` / ``rank`` write for the same
period, formatted with the page formatters (metrics/formatting.py).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import polars as pl
import pytest
from docx import Document

from datasets.access import accounts, documents
from datasets.access.accounts import ADMIN, EVALUATOR, User
from datasets.domain.periods import Period, parse_period
from datasets.storage import store
from metrics import alerts, bulletin, bulletin_docx, detail_store
from metrics.__main__ import main
from metrics.compute import CITY
from metrics.formatting import INDEX, NULL_TEXT, fmt_delta, fmt_value
from metrics.registry import BY_ID, GROUPS, INDICATORS, PERCENT
from tests.apptest_support import Demo

EMPTY = parse_period("2031-01")


# --- helpers --------------------------------------------------------------------------------------


def inputs_for(demo: Demo, period: Period) -> bulletin.Inputs:
    engine = store.make_engine(demo.url)
    try:
        return bulletin.load_inputs(engine, demo.comps, demo.settings, period)
    finally:
        engine.dispose()


def docx_text(content: bytes) -> tuple[list[str], list[list[list[str]]]]:
    """Paragraph texts and tables (rows of cell texts) of a .docx."""
    doc = Document(io.BytesIO(content))
    paragraphs = [p.text.replace("\n", "") for p in doc.paragraphs]  # titles break before the period
    # Headers may break onto two lines over narrow columns ("名次↵变化"): compared without the break.
    tables = [[[c.text.replace("\n", "") for c in row.cells] for row in t.rows] for t in doc.tables]
    return paragraphs, tables


def all_xml(content: bytes) -> str:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))


def cli_rank(demo: Demo, period: Period, tmp_path: Path) -> pl.DataFrame:
    out = tmp_path / f"rank_{period.key}.csv"
    assert main(["rank", "--db", demo.url, "--period", period.key, "--out", str(out)]) == 0
    return pl.read_csv(out)


def cli_report(demo: Demo, period: Period, by: str, tmp_path: Path) -> dict[tuple[str, str], float | None]:
    """(district, indicator) -> value from ``python -m metrics report``."""
    out = tmp_path / f"report_{by}_{period.key}.json"
    assert main(["report", "--db", demo.url, "--from", period.first, "--to", period.last, "--by", by,
                 "--format", "json", "--out", str(out)]) == 0
    return {(r["district"], r["indicator"]): r["value"] for r in json.loads(out.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def month_doc(demo: Demo) -> tuple[bulletin.Inputs, bulletin.Bulletin, bytes]:
    inp = inputs_for(demo, demo.period)
    doc = bulletin.build_bulletin(inp)
    return inp, doc, bulletin_docx.bulletin_docx(doc)


# --- the bulletin ---------------------------------------------------------------------------------


def test_sections_title_and_no_placeholder_left(month_doc):
    inp, doc, content = month_doc
    paragraphs, _tables = docx_text(content)
    assert paragraphs.count(doc.title) == 1
    assert doc.title == f"澄州市政务服务效能评估通报（{inp.period.label}）"  # the demo city's name
    for title in bulletin.SECTION_TITLES:
        assert title in paragraphs, title
    xml = all_xml(content)
    assert "{{" not in xml and "{%" not in xml and "}}" not in xml
    assert "PAGE" in xml and "— " in xml  # the page number field in the footers
    # Requirements text, issuer and date from the defaults.
    assert bulletin.DEFAULT_REQUIREMENTS.splitlines()[0] in paragraphs
    assert doc.issue_date in paragraphs
    # The three charts (the trend, the ranking, the district map) are pictures in the document.
    assert xml.count("<pic:pic") == 3
    # GB/T 9704: A4, margins 37/35/28/26 mm (in twips), and the fonts Word/WPS on a bureau PC has.
    assert '<w:pgSz w:w="11906" w:h="16838"/>' in xml
    for side, mm in (("top", 37), ("bottom", 35), ("left", 28), ("right", 26)):
        assert f'w:{side}="{round(mm / 25.4 * 1440)}"' in xml, side
    for font in (bulletin_docx.TITLE_FONT, bulletin_docx.BODY_FONT, bulletin_docx.H1_FONT, bulletin_docx.H2_FONT):
        assert f'w:eastAsia="{font}"' in xml, font


@pytest.mark.parametrize("which", ["month", "quarter", "year"])
def test_ranking_table_equals_rank_cli(demo: Demo, tmp_path: Path, which: str):
    period = {"month": demo.period, "quarter": parse_period(f"{demo.period.last[:4]}-Q1"),
              "year": parse_period(str(int(demo.period.last[:4]) - 1))}[which]
    inp = inputs_for(demo, period)
    doc = bulletin.build_bulletin(inp, with_charts=False)
    paragraphs, tables = docx_text(bulletin_docx.bulletin_docx(doc))
    assert f"（{period.label}）" in doc.title
    rows = tables[0]
    assert rows[0] == ["名次", "名次变化", "区县", "效能指数", *GROUPS.values(), "说明"]
    cli = cli_rank(demo, period, tmp_path)
    assert len(rows) - 1 == len(inp.districts)
    expected = {r["district"]: r for r in cli.iter_rows(named=True)}
    for row in rows[1:]:
        rank, change, district, index, *groups, note = row
        want = expected[district]
        # Ranked or not, the index and the group scores in their own columns; the reason in 说明.
        assert index == fmt_value(INDEX, want["index"])
        assert groups == [fmt_value(INDEX, want[f"group_{g}"]) for g in GROUPS]
        if want["rank"] is None:
            assert (rank, change, note) == ("未排名", NULL_TEXT, want["unranked_reason"])
            continue
        assert rank == str(want["rank"]) and note == ""
        rc = want["rank_change"]
        assert change == ("上期未排名" if rc is None else "持平" if rc == 0 else
                          f"上升{rc}位" if rc > 0 else f"下降{-rc}位")
    # Top three named in the text, in rank order.
    ranked = cli.filter(pl.col("rank").is_not_null()).sort("rank", "district")
    top = "、".join(f"{r['district']}（{fmt_value(INDEX, r['index'])}）" for r in ranked.head(3).iter_rows(named=True))
    assert any(f"排名前三位的是：{top}" in p for p in paragraphs)


def test_every_number_in_the_overall_section_equals_the_report(demo: Demo, month_doc, tmp_path: Path):
    inp, _doc, content = month_doc
    paragraphs, _ = docx_text(content)
    text = "\n".join(paragraphs)
    now = cli_report(demo, inp.period, "city", tmp_path)
    before = cli_report(demo, inp.period.previous(), "city", tmp_path)
    checked = 0
    for ind in INDICATORS:
        for m in re.finditer(r"(?<![\u4e00-\u9fff])" + re.escape(ind.name) + r" (\S+ ?\S*?)，环比(上升|下降|增加|减少|持平) ?([^，；。]*)", text):
            value = now[CITY, ind.id]
            assert m.group(1) == fmt_value(ind.id, value), ind.id
            prev = before.get((CITY, ind.id))
            delta = fmt_delta(ind.id, value - prev)
            assert delta is not None
            if m.group(2) == "持平":
                assert not delta.startswith(("+", "-"))
            else:
                assert m.group(3) == delta[1:] and (delta[0] == "+") == (m.group(2) in ("上升", "增加"))
            checked += 1
    assert checked == sum(len(v) for v in bulletin.headline_indicators().values())
    # Every percentage in the section is one of these values or a change of one.
    section = text[text.index(bulletin.SECTION_TITLES[0]):text.index(bulletin.SECTION_TITLES[1])]
    shown = set(re.findall(r"\d+\.\d{2}%", section))
    allowed = {fmt_value(i.id, now[CITY, i.id]) for i in INDICATORS if i.unit == PERCENT}
    assert shown and shown <= allowed


def test_problems_count_the_alert_lists(demo: Demo, month_doc):
    inp, _doc, content = month_doc
    paragraphs, _tables = docx_text(content)
    text = "\n".join(paragraphs)
    engine = store.make_engine(demo.url)
    detail = detail_store.load_alert_detail(engine, demo.settings.to_rules())
    engine.dispose()
    for alert_id, alert in alerts.ALERTS.items():
        n = alerts.alert_list(detail, alert_id, inp.period).height
        if n:
            assert f"全市共有{alert.title} {n} {alert.unit}" in text
        else:
            assert f"全市无{alert.title}" in text
    assert "（四）数据报送" in paragraphs
    # The 差评 still within their rectification period are said beside those not rectified in time, as
    # many as the count beside the two rates, and per district as in the components.
    from metrics.compute import aggregate

    beside = aggregate(demo.comps, inp.period, by="district").filter(
        (pl.col("indicator") == "bad_rectified_rate") & (pl.col("aside") > 0))
    pending = {r["district"]: int(r["aside"]) for r in beside.iter_rows(named=True)}
    assert pending, "the demo's last month has 差评 within their rectification period"
    assert bulletin.pending_counts(inp) == pending
    assert f"另有整改期内差评 {sum(pending.values())} 条" in text
    district, n = max(pending.items(), key=lambda kv: kv[1])
    assert f"{district} {n} 条" in text


def test_requirements_and_names_come_from_the_store(demo_copy: Demo):
    engine = store.make_engine(demo_copy.url)
    admin = User("admin1", "admin1", (ADMIN,))
    assert documents.save_text(engine, admin, documents.REQUIREMENTS, "第一条要求。\n第二条要求。")
    assert documents.save_text(engine, admin, documents.CITY_NAME, "云州市")
    assert not documents.save_text(engine, admin, documents.CITY_NAME, "云州市")  # unchanged: not saved again
    inp = bulletin.load_inputs(engine, demo_copy.comps, demo_copy.settings, demo_copy.period)
    doc = bulletin.build_bulletin(inp, with_charts=False)
    assert doc.title.startswith("云州市政务服务效能评估通报")
    assert doc.issuer == "云州市" + bulletin.DEFAULT_ISSUER
    assert [b.text for b in doc.sections[4].blocks] == ["第一条要求。", "第二条要求。"]
    logged = accounts.audit_entries(engine, 50, "settings")
    assert logged.height == 2 and logged["页面"].to_list() == ["设置", "设置"]
    with pytest.raises(accounts.PermissionDenied):
        documents.save_text(engine, User("ev", "ev", (EVALUATOR,)), documents.REQUIREMENTS, "x")
    engine.dispose()


# --- empty and unranked -------------------------------------------------------------------------------


def test_empty_period(demo: Demo):
    inp = inputs_for(demo, EMPTY)
    doc = bulletin.build_bulletin(inp)
    paragraphs, tables = docx_text(bulletin_docx.bulletin_docx(doc))
    text = "\n".join(paragraphs)
    assert "全市尚无已报送的数据" in text and "没有可排名的区县" in text
    assert [r[0] for r in tables[0][1:]] == ["未排名"] * len(inp.districts)
    assert all(r[-1].startswith(f"缺少 {EMPTY.first} 办件明细；缺少 {EMPTY.first} 好差评") for r in tables[0][1:])
    # A catalog stays in force after the last month with data: the index of the catalog stocks alone is
    # shown beside 未排名 (its own column), the flow-only group (12345热线) is empty.
    assert all(re.fullmatch(r"\d+\.\d", r[3]) and r[8] == NULL_TEXT for r in tables[0][1:])
    assert "不作进退步比较" in text
    reports = bulletin.build_reports(inp, [inp.districts[0]])
    _, cards = docx_text(bulletin_docx.reports_docx(reports, doc))
    # Nothing was reported for the period; only the catalog indicators have values, since a catalog stays
    # in force after the last month with data.
    stocks = {f"{i.name}{i.arrow}" for i in INDICATORS if i.is_stock}
    flows = [r for r in cards[0][1:] if r[0] not in stocks]
    assert len(flows) == len(INDICATORS) - len(stocks)
    assert {r[1] for r in flows} == {NULL_TEXT} and {r[4] for r in flows} == {NULL_TEXT}
    assert NULL_TEXT not in {r[1] for r in cards[0][1:] if r[0] in stocks and "覆盖率" not in r[0]}


def test_a_district_without_data_is_unranked_with_its_reason(demo_copy: Demo, tmp_path: Path):
    engine = store.make_engine(demo_copy.url)
    store.add_district(engine, "新设区")
    inp = bulletin.load_inputs(engine, demo_copy.comps, demo_copy.settings, demo_copy.period)
    engine.dispose()
    doc = bulletin.build_bulletin(inp, with_charts=False)
    paragraphs, tables = docx_text(bulletin_docx.bulletin_docx(doc))
    last = next(r for r in tables[0] if r[2] == "新设区")
    month = demo_copy.period.first
    reason = f"缺少 {month} 办件明细；缺少 {month} 好差评；无事项清单"
    assert last[:4] == ["未排名", NULL_TEXT, "新设区", NULL_TEXT] and last[-1] == reason
    assert any(p.startswith("未参加排名的区县：") and f"新设区（{reason}）" in p for p in paragraphs)
    # The ranked districts keep the CLI's ranks.
    cli = cli_rank(demo_copy, demo_copy.period, tmp_path)
    ranked = cli.filter(pl.col("rank").is_not_null()).sort("rank", "district")["district"].to_list()
    assert [r[2] for r in tables[0][1:len(ranked) + 1]] == ranked
    card = bulletin.build_reports(inp, ["新设区"])[0]
    assert card.blocks[0].text.startswith(f"新设区{demo_copy.period.label}未参加排名（{reason}）")


def test_ranked_table_is_the_ranking_of_every_configured_district(demo: Demo):
    # "甲" is configured but has no rows: unranked, after every ranked district.
    table = bulletin.ranked_table(demo.comps, demo.period, demo.settings, demo.inventory, [*demo.districts, "甲"])
    expected, got = demo.ranking(), table.filter(pl.col("district") != "甲")
    keys = ["district", "rank", "ranked", "unranked_reason", "rank_change"]
    assert got.select(keys).equals(expected.select(keys))
    assert got["index"].to_list() == pytest.approx(expected["index"].to_list())
    new = table.filter(pl.col("district") == "甲").row(0, named=True)
    assert not new["ranked"] and new["unranked_reason"].endswith("无事项清单")
    assert table.filter(pl.col("ranked"))["rank"].is_sorted()


# --- report cards ----------------------------------------------------------------------------------


def test_report_cards_equal_the_report(demo: Demo, tmp_path: Path):
    inp = inputs_for(demo, demo.period)
    doc = bulletin.build_bulletin(inp, with_charts=False)
    content = bulletin_docx.reports_docx(bulletin.build_reports(inp), doc)
    _paragraphs, tables = docx_text(content)
    assert len(tables) == len(inp.districts)
    assert all_xml(content).count('w:type="page"') == len(inp.districts)  # cover, then one page each
    values = cli_report(demo, demo.period, "district", tmp_path)
    city = cli_report(demo, demo.period, "city", tmp_path)
    for district, table in zip(inp.districts, tables, strict=True):
        assert table[0] == ["指标", "本区县", CITY, "目标值", "达标"]
        for ind, row in zip(INDICATORS, table[1:], strict=True):
            value = values.get((district, ind.id))
            assert row[0] == f"{ind.name}{ind.arrow}"
            assert row[1] == fmt_value(ind.id, value)
            assert row[2] == fmt_value(ind.id, city.get((CITY, ind.id)))
            target = demo.settings.indicators[ind.id].target
            good = None if value is None else (value >= target if BY_ID[ind.id].direction > 0 else value <= target)
            assert row[4] == {None: NULL_TEXT, True: bulletin.PASS, False: bulletin.FAIL}[good]


# --- template --------------------------------------------------------------------------------------


def _template(*lines: str) -> bytes:
    doc = Document()
    for line in lines:
        doc.add_paragraph(line)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def test_template_with_a_missing_placeholder_is_refused_naming_it(month_doc):
    _, doc, _ = month_doc
    bad = _template("{{ title }}", "没有正文")
    with pytest.raises(bulletin_docx.TemplateError, match=r"缺少占位符 \{\{p body \}\}（正文）"):
        bulletin_docx.check_template(bad)
    with pytest.raises(bulletin_docx.TemplateError, match="缺少占位符"):
        bulletin_docx.bulletin_docx(doc, bad)
    with pytest.raises(bulletin_docx.TemplateError, match=r"无法识别的占位符 \{\{ author \}\}"):
        bulletin_docx.check_template(_template("{{ title }}", "{{p body }}", "{{ author }}"))
    with pytest.raises(bulletin_docx.TemplateError, match="不是有效的 Word 文档"):
        bulletin_docx.check_template(b"not a docx")


def test_an_administrators_template_is_used_and_reset(demo_copy: Demo):
    engine = store.make_engine(demo_copy.url)
    admin = User("admin1", "admin1", (ADMIN,))
    own = _template("澄州市行政审批服务局文件", "{{ title }}", "{{p body }}", "{{ issue_date }}")
    documents.save_template(engine, admin, own, "红头.docx")
    assert bulletin_docx.template_for(engine) == own
    inp = bulletin.load_inputs(engine, demo_copy.comps, demo_copy.settings, demo_copy.period)
    paragraphs, _ = docx_text(bulletin_docx.generate(inp, template=bulletin_docx.template_for(engine),
                                                     with_charts=False)[0])
    assert paragraphs[0] == "澄州市行政审批服务局文件" and bulletin.SECTION_TITLES[0] in paragraphs
    assert documents.reset_template(engine, admin)
    assert bulletin_docx.template_for(engine) == bulletin_docx.default_template()
    details = accounts.audit_entries(engine, 10, "settings")["内容"].to_list()
    assert details[0] == "通报模板恢复为默认模板" and details[1].startswith("上传通报模板：红头.docx")
    engine.dispose()


def test_default_template_is_the_committed_script_output(tmp_path: Path):
    """scripts/make_bulletin_template.py rebuilds the shipped template with the same placeholders."""
    import runpy

    module = runpy.run_path(str(Path(__file__).resolve().parent.parent / "scripts" / "make_bulletin_template.py"))
    built = module["build"](tmp_path / "t.docx").read_bytes()
    bulletin_docx.check_template(built)
    assert docx_text(built)[0] == docx_text(bulletin_docx.default_template())[0]


def test_documents_round_trip_on_both_databases(any_engine):
    payload = bytes(range(256)) * 10
    documents.put(any_engine, documents.TEMPLATE, payload, "admin", "a.docx")
    documents.put(any_engine, documents.TEMPLATE, payload[::-1], "admin", "b.docx")
    assert documents.get(any_engine, documents.TEMPLATE) == payload[::-1]
    assert documents.info(any_engine, documents.TEMPLATE)["file_name"] == "b.docx"
    assert documents.delete(any_engine, documents.TEMPLATE) and documents.get(any_engine, documents.TEMPLATE) is None


# --- CLI -----------------------------------------------------------------------------------------------


def test_cli_bulletin_and_bad_arguments(demo: Demo, tmp_path: Path, capsys):
    out = tmp_path / "b.docx"
    assert main(["bulletin", "--db", demo.url, "--period", demo.period.key, "--out", str(out)]) == 0
    paragraphs, _ = docx_text(out.read_bytes())
    assert f"澄州市政务服务效能评估通报（{demo.period.label}）" in paragraphs
    card = tmp_path / "card.docx"
    district = demo.districts[0]
    assert main(["bulletin", "--db", demo.url, "--period", demo.period.key, "--district", district,
                 "--out", str(card)]) == 0
    paragraphs, tables = docx_text(card.read_bytes())
    assert f"{district}政务服务效能评估报告单（{demo.period.label}）" in paragraphs and len(tables) == 1
    capsys.readouterr()
    assert main(["bulletin", "--db", demo.url, "--period", "2026-13"]) == 2
    assert "参数错误：--period" in capsys.readouterr().err
    assert main(["bulletin", "--db", demo.url, "--period", demo.period.key, "--district", "无此区"]) == 2
    assert "没有名为“无此区”的区县" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bulletin", "--db", demo.url, "--period", demo.period.key, "--format", "odt"])
    assert exc.value.code == 2


# --- PDF (LibreOffice) ------------------------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _need_pdf_tools() -> None:
    import shutil

    from tests.conftest import IN_CI

    missing = [name for name, ok in (("LibreOffice（soffice）", bulletin_docx.soffice()),
                                     ("pdftotext", shutil.which("pdftotext")), ("pdftoppm", shutil.which("pdftoppm")))
               if not ok]
    if missing:
        reason = f"没有安装 {'、'.join(missing)}（apt-get install libreoffice-writer-nogui poppler-utils）"
        if IN_CI:
            pytest.fail(f"CI 环境必须能生成 PDF：{reason}")
        pytest.skip(reason)


def test_pdf_shows_the_chinese_text_and_the_table(month_doc, month_pdf):
    import subprocess

    inp, doc, _ = month_doc
    pdf = month_pdf
    assert pdf.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", doc.title) in flat
    assert "表1" in flat and "各区县政务服务效能指数排名" in flat and all(d in flat for d in inp.districts)
    assert all(t in flat for t in bulletin.SECTION_TITLES)
    assert "{{" not in text and "{%" not in text
    assert "—1—" in flat  # the page number
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bulletin.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                    str(ARTIFACTS / "bulletin.pdf"), str(ARTIFACTS / "bulletin_page1")], check=True)
    assert (ARTIFACTS / "bulletin_page1.png").stat().st_size > 10_000


# --- the page ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("navigation_mode")
@pytest.mark.parametrize(("account", "downloads"), [("leader1", False), ("evaluator1", True)])
def test_page_previews_for_leaders_and_downloads_for_evaluators(demo_copy: Demo, monkeypatch, account: str,
                                                                downloads: bool):
    from tests.apptest_support import app, audit_rows, open_page, texts

    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users[account], period=demo_copy.period.key),
                   "pages/bulletin.py")
    assert at.title[0].value == f"月度通报 · {demo_copy.period.label}"
    assert [s.value for s in at.subheader] == list(bulletin.SECTION_TITLES)
    assert any("排名前三位的是" in m.value for m in at.markdown)
    assert len(at.get("vega_lite_chart")) == 3  # the trend, the ranking, the district map
    labels = [b.label for b in at.get("download_button")]
    if not downloads:
        assert labels == []
        assert "需要“评估人员”或“管理员”角色" in texts(at.caption)
        return
    assert labels[:1] == ["下载通报（Word）"] and "下载报告单（Word）" in labels
    ok_run = at.get("download_button")[0].click().run()
    assert not ok_run.exception
    row = audit_rows(demo_copy.url, "download").row(0, named=True)
    assert (row["账号"], row["页面"]) == (account, "月度通报")
    assert row["内容"].startswith(f"效能评估通报_{demo_copy.period.key}.docx")


@pytest.mark.usefixtures("navigation_mode")
def test_settings_page_saves_texts_and_refuses_a_template_without_body(demo_copy: Demo, monkeypatch):
    from tests.apptest_support import app, audit_rows, ok, open_page, texts

    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users["admin1"]), "pages/settings.py")
    at.text_area[0].set_value("请各区县于月底前报送整改情况。")
    ok(next(b for b in at.button if b.label == "保存通报文字").click().run())
    assert "已保存 1 项通报文字" in texts(at.success)
    engine = store.make_engine(demo_copy.url)
    assert documents.get_text(engine, documents.REQUIREMENTS) == "请各区县于月底前报送整改情况。"
    assert audit_rows(demo_copy.url, "settings")["内容"][0] == "修改通报下一步工作要求：请各区县于月底前报送整改情况。"

    # The template uploader states the page's limit (5 MB), not Streamlit's default 200 MB.
    assert at.file_uploader(key="bulletin_template_upload").proto.max_upload_size_mb == 5
    at.file_uploader(key="bulletin_template_upload").set_value(
        [("红头.docx", _template("{{ title }}"), "application/octet-stream")])
    ok(at.run())
    ok(at.button(key="bulletin_template_save").click().run())
    assert "模板未保存：通报模板缺少占位符" in texts(at.error) and "p body" in texts(at.error)
    assert documents.get(engine, documents.TEMPLATE) is None
    engine.dispose()



@pytest.fixture(scope="module")
def month_pdf(month_doc) -> bytes:
    _need_pdf_tools()
    return bulletin_docx.to_pdf(month_doc[2])


def pdf_fonts(pdf: bytes) -> set[str]:
    """Font names (subset prefix dropped) that ``pdffonts`` lists for the PDF."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdffonts", f.name], capture_output=True, check=True, text=True).stdout
    return {line.split()[0].split("+", 1)[-1] for line in out.splitlines()[2:] if line.strip()}


def pdf_runs(pdf: bytes) -> list[tuple[int, str, str, float]]:
    """(page, text, font family, size) of every text run, from poppler's ``pdftohtml -xml``."""
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdftohtml", "-xml", "-i", "-stdout", "-q", f.name], capture_output=True,
                             check=True).stdout
    root = ET.fromstring(out.replace(b"<!DOCTYPE pdf2xml SYSTEM \"pdf2xml.dtd\">", b""))
    runs = []
    for page in root.iter("page"):
        fonts = {s.get("id"): (s.get("family", "").split("+", 1)[-1], float(s.get("size", 0)))
                 for s in page.iter("fontspec")}
        fonts |= {s.get("id"): (s.get("family", "").split("+", 1)[-1], float(s.get("size", 0)))
                  for s in root.iter("fontspec")}
        for t in page.iter("text"):
            family, size = fonts[t.get("font")]
            runs.append((int(page.get("number")), "".join(t.itertext()), family, size))
    return runs


def pdf_lines(pdf: bytes) -> list[tuple[int, str]]:
    """(page, text) of every printed line: the runs pdftohtml finds at one height, left to right (a
    run ends where the font changes, as between CJK text and digits)."""
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdftohtml", "-xml", "-i", "-stdout", "-q", f.name], capture_output=True,
                             check=True).stdout
    root = ET.fromstring(out.replace(b"<!DOCTYPE pdf2xml SYSTEM \"pdf2xml.dtd\">", b""))
    out_lines: list[tuple[int, str]] = []
    for page in root.iter("page"):
        runs = sorted((int(t.get("top")), int(t.get("left")), "".join(t.itertext())) for t in page.iter("text"))
        line: list[tuple[int, str]] = []
        top = None
        for run_top, left, text in runs:  # runs within 3 px of the line's first run are on that line
            if top is not None and run_top - top > 3:
                out_lines.append((int(page.get("number")), "".join(t for _, t in sorted(line))))
                line = []
                top = None
            top = run_top if top is None else top
            line.append((left, text))
        if line:
            out_lines.append((int(page.get("number")), "".join(t for _, t in sorted(line))))
    return out_lines


def _title_runs(pdf: bytes) -> list[tuple[str, str, bool]]:
    """(text, font with its subset prefix, bold) of the runs on page 1 in the title's size (二号, the
    largest black text)."""
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdftohtml", "-xml", "-i", "-stdout", "-q", "-f", "1", "-l", "1", f.name],
                             capture_output=True, check=True).stdout
    root = ET.fromstring(out.replace(b'<!DOCTYPE pdf2xml SYSTEM "pdf2xml.dtd">', b""))
    specs = {s.get("id"): s for s in root.iter("fontspec")}
    black = [t for t in root.iter("text") if specs[t.get("font")].get("color") == "#000000"
             and "".join(t.itertext()).strip()]
    size = max(int(specs[t.get("font")].get("size")) for t in black)
    return [("".join(t.itertext()), specs[t.get("font")].get("family"), t.find("b") is not None)
            for t in black if int(specs[t.get("font")].get("size")) == size]


def test_pdf_title_body_and_headings_come_out_in_different_faces(month_pdf):
    """The face the PDF uses for the title (小标宋), the body (仿宋), the 一、 headings (黑体) and the
    （一） headings (楷体) differ: official fonts when installed, else the free ones that
    metrics/fonts/fonts.conf substitutes. Checked on the bulletin's first page."""
    import shutil

    if not (shutil.which("pdffonts") and shutil.which("pdftohtml")):
        pytest.skip("没有安装 pdffonts、pdftohtml（poppler-utils）")
    runs = [r for r in pdf_runs(month_pdf) if r[0] == 1]

    def face(pred) -> str:
        found = [family for _, text, family, _ in runs if pred(text)]
        assert found, [r[1] for r in runs]
        return found[0]

    faces = {
        "title": face(lambda t: "政务服务效能评估通报" in t),
        "body": face(lambda t: "全市政务服务效能指数" in t),
        "h1": face(lambda t: t.strip() == bulletin.SECTION_TITLES[0]),
        "h2": face(lambda t: t.startswith("（一）")),
    }
    assert len(set(faces.values())) == 4, faces
    # 小标宋 is a heavy 宋: its free substitute (Noto Serif CJK) is taken in a bold weight, for the
    # title's digits too (pdftohtml marks a run of a Bold face with <b>; the subset prefix tells faces apart).
    title_runs = _title_runs(month_pdf)
    title = "".join(text for text, _, _ in title_runs)
    assert title.startswith("澄州市政务服务效能评估通报（") and any(ch.isdigit() for ch in title), title
    assert len({family for _, family, _ in title_runs}) == 1, title_runs
    if "NotoSerifCJK" in faces["title"]:
        assert all(bold for _, _, bold in title_runs), title_runs
    # pdffonts lists the same faces as embedded fonts.
    listed = pdf_fonts(month_pdf)
    assert all(any(f.startswith(face) or face.startswith(f.split("-")[0]) for f in listed)
               for face in faces.values()), (faces, listed)


SC_FORMS = "直骨角令"  # hanzi whose Simplified Chinese forms differ from the Japanese, Korean and Traditional ones


def _ink(image):
    """The image cropped to its ink, in grey."""
    from PIL import ImageOps

    grey = image.convert("L")
    return grey.crop(ImageOps.invert(grey).getbbox())


@pytest.mark.parametrize("font", [bulletin_docx.TITLE_FONT, bulletin_docx.H1_FONT])
def test_cjk_collections_give_their_simplified_chinese_forms(font: str, tmp_path: Path):
    """The Noto CJK collections (.ttc) hold JP, KR, SC, TC and HK faces that share one CFF table, so
    pdffonts names every one "NotoSerifCJKjp-…" whichever was used; the face is told by its glyphs. Hanzi
    whose SC forms differ are set in the font as the bulletin sets it (a template's Japanese language
    turned zh-CN, fonts.conf), converted by LibreOffice, and compared with each face of the collection drawn
    by Pillow: the SC face is nearest (measured: mean difference 7–9 for SC, 20–43 for the others)."""
    import subprocess

    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls, qn
    from docx.shared import Pt
    from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageStat

    _need_pdf_tools()
    found = subprocess.run(["fc-match", "-f", "%{file}", f"{font}:weight={'bold' if font == bulletin_docx.TITLE_FONT else 'regular'}"],
                           capture_output=True, text=True, check=False, env=bulletin_docx.pdf_env()).stdout
    if not found.endswith(".ttc"):
        pytest.skip(f"{font} 由 {found or '未知字体'} 提供，不是字体集合")
    doc = Document()
    bulletin_docx._paragraph(doc, SC_FORMS, font, Pt(72), indent=False, line=Pt(90))
    # As a bureau's template saved on a Japanese system says: LibreOffice would take the JP face.
    doc.styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr")).find(
        qn("w:lang")).set(qn("w:eastAsia"), "ja-JP")
    doc.styles["Normal"].element.get_or_add_rPr().append(parse_xml(f'<w:lang {nsdecls("w")} w:eastAsia="ja-JP"/>'))
    bulletin_docx._chinese(doc)
    out = io.BytesIO()
    doc.save(out)
    pdf = tmp_path / "forms.pdf"
    pdf.write_bytes(bulletin_docx.to_pdf(out.getvalue()))
    subprocess.run(["pdftoppm", "-r", "100", "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(tmp_path / "forms")], check=True)
    printed = _ink(Image.open(tmp_path / "forms.png"))
    distance = {}
    for index in range(8):
        try:
            face = ImageFont.truetype(found, 100, index=index)
        except OSError:
            break
        canvas = Image.new("L", (600, 200), "white")
        ImageDraw.Draw(canvas).text((20, 20), SC_FORMS, font=face, fill="black")
        drawn = _ink(canvas).resize(printed.size)
        distance[face.getname()[0]] = ImageStat.Stat(ImageChops.difference(printed, drawn)).mean[0]
    assert len(distance) >= 4, distance
    nearest = min(distance, key=distance.__getitem__)
    assert nearest.endswith(" SC"), distance


def test_digits_take_the_face_of_titles_headers_and_captions(month_doc):
    """In 小标宋 and 黑体 runs (title, issuer, headings, captions, table headers) digits and Latin letters
    are in that face too ("表1", "12345热线", the title's year); beside 仿宋 and 楷体 in Times New Roman."""
    from docx.oxml.ns import qn

    _, _, content = month_doc
    doc = Document(io.BytesIO(content))
    seen = set()
    for run in doc.element.body.iter(qn("w:r")):
        fonts = run.find(f"{qn('w:rPr')}/{qn('w:rFonts')}")
        if fonts is None or fonts.get(qn("w:eastAsia")) is None:
            continue
        east = fonts.get(qn("w:eastAsia"))
        text = "".join(t.text or "" for t in run.iter(qn("w:t")))
        want = east if east in (bulletin_docx.TITLE_FONT, bulletin_docx.H1_FONT) else bulletin_docx.LATIN_FONT
        assert (fonts.get(qn("w:ascii")), fonts.get(qn("w:hAnsi"))) == (want, want), (text, east)
        if any(ch.isdigit() for ch in text):
            seen.add(east)
    # digits were met in the title, in 黑体 (captions, headers) and in the 仿宋 body
    assert {bulletin_docx.TITLE_FONT, bulletin_docx.H1_FONT, bulletin_docx.BODY_FONT} <= seen, seen


def test_chart_pictures_use_one_cjk_face_for_all_their_text(month_doc):
    """The charts embedded in the bulletin are rendered with every text (district names, digits, axis
    titles, legends) in the 黑体 substitute, not Vega's "sans-serif" (a Latin face with CJK fallback):
    checked on the SVG of the very spec chart_png renders, and that face is installed for vl-convert."""
    import vl_convert as vlc

    _, doc, _ = month_doc
    figures = [b for s in doc.sections for b in s.blocks if isinstance(b, bulletin.Figure)]
    assert len(figures) >= 2
    for figure in figures:
        svg = vlc.vegalite_to_svg(bulletin_docx.print_spec(figure.spec))
        families = re.findall(r'<text[^>]*font-family="([^"]*)"', svg)
        assert len(families) == svg.count("<text") > 5, figure.caption
        assert set(families) == {bulletin_docx.CHART_FONT}, (figure.caption, set(families))
    # A face vl-convert does not know would fall back silently: it must be among the system's fonts.
    import subprocess

    listed = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, check=False).stdout
    assert bulletin_docx.CHART_FONT in {f for line in listed.splitlines() for f in line.split(",")}


# --- one rounding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [(51.946, "51.9"), (51.95, "52.0"), (64.049, "64.0"), (0.04, "0.0")])
def test_the_index_reads_the_same_on_every_surface(demo: Demo, raw: float, shown: str):
    """One district's index set to ``raw`` reads ``shown`` on the page's table, in the Excel (value and
    one-decimal format), the CSV, the bulletin's .docx (sentence and table) and the ranking chart's
    label and tooltip value: rounded once from the unrounded value (51.946 never becomes 51.95 → 52.0)."""
    import openpyxl

    from metrics import charts, exports, overview

    inp = inputs_for(demo, demo.period)
    rank = inp.rank()
    district = rank.filter(pl.col("ranked"))["district"][0]
    rank = rank.with_columns(pl.when(pl.col("district") == district).then(pl.lit(raw)).otherwise(pl.col(INDEX))
                             .alias(INDEX))
    inp._rank[inp.period] = rank  # every surface below reads this ranking

    brief = overview.ranking_brief(rank).filter(pl.col("区县") == district)
    assert f"{brief['效能指数'][0]:.1f}" == shown

    book = openpyxl.load_workbook(io.BytesIO(exports.rank_xlsx_bytes(rank, demo.period, demo.settings)))
    sheet = book["排名"]
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[header.index("区县")].value == district)
    cell = row[header.index("效能指数")]
    assert (f"{cell.value:.1f}", cell.number_format) == (shown, "#,##0.0")
    assert all(row[header.index(f"{g}得分")].number_format == "#,##0.0" for g in GROUPS.values()
               if isinstance(row[header.index(f"{g}得分")].value, float))

    csv = pl.read_csv(io.BytesIO(exports.rank_csv_bytes(rank)), infer_schema=False)
    assert csv.filter(pl.col("区县") == district)["效能指数"][0] == shown

    doc = bulletin.build_bulletin(inp, with_charts=False)
    paragraphs, tables = docx_text(bulletin_docx.bulletin_docx(doc))
    table = next(t for t in tables if t[0][:4] == ["名次", "名次变化", "区县", "效能指数"])
    assert next(r for r in table if r[2] == district)[3] == shown
    assert any(f"{district}（{shown}）" in p for p in paragraphs)  # first in the ranking: named among 前三位

    spec = charts.ranking_chart(rank.filter(pl.col("ranked")), inp.districts).to_dict(validate=False)
    rows = next(iter(spec["datasets"].values()))
    mine = next(r for r in rows if r["district"] == district)
    assert mine["label"].startswith(f"{shown}  第") and f"{mine['index']:.1f}" == shown
    tooltip = next(t for t in spec["layer"][0]["encoding"]["tooltip"] if t["field"] == "index")
    assert tooltip["format"] == ",.1f"


def test_movers_change_is_worked_out_from_unrounded_values_and_rounded_once():
    """64.049 → 53.751: the change 10.298 reads +10.3 (not 64.0 − 53.8 = 10.2), each number one decimal."""
    from metrics import overview

    now = pl.DataFrame({"district": ["甲区"], "rank": [1], "rank_change": [0], INDEX: [64.049]})
    before = pl.DataFrame({"district": ["甲区"], INDEX: [53.751]})
    row = overview.movers(now, before).row(0, named=True)
    assert (row["本期指数"], row["上期指数"], row["指数变化"]) == (64.0, 53.8, 10.3)
    raw = overview.movers(now, before, rounded=False).row(0, named=True)
    assert fmt_delta(INDEX, raw["指数变化"]) == "+10.3" and fmt_value(INDEX, raw["上期指数"]) == "53.8"


# --- tables that print well ----------------------------------------------------------------------------


def _tables_xml(content: bytes):
    from docx.oxml.ns import qn

    doc = Document(io.BytesIO(content))
    return [(t._tbl, qn) for t in doc.tables]


def test_tables_repeat_their_header_never_split_a_row_and_fit_their_cells(month_doc):
    """Every row of every table has w:cantSplit, the first row w:tblHeader; a column that must not wrap
    is at least as wide as its widest cell (as laid out, with the cell margins) and its cells say
    w:noWrap; the widths fill the 156 mm type area."""
    inp, doc, content = month_doc
    blocks = [b for s in doc.sections for b in s.blocks if isinstance(b, bulletin.Table)]
    reports = bulletin.build_reports(inp, inp.districts[:2])
    cards = bulletin_docx.reports_docx(reports, doc)
    card_blocks = [b for r in reports for b in r.blocks if isinstance(b, bulletin.Table)]
    checked = 0
    for content_, blocks_, layout in ((content, blocks, bulletin_docx.BULLETIN), (cards, card_blocks, bulletin_docx.CARD)):
        for (tbl, qn), block in zip(_tables_xml(content_), blocks_, strict=True):
            rows = tbl.findall(qn("w:tr"))
            assert len(rows) == len(block.rows) + 1
            assert all(r.find(f"{qn('w:trPr')}/{qn('w:cantSplit')}") is not None for r in rows)
            assert rows[0].find(f"{qn('w:trPr')}/{qn('w:tblHeader')}") is not None
            assert all(r.find(f"{qn('w:trPr')}/{qn('w:tblHeader')}") is None for r in rows[1:])
            widths = [int(g.get(qn("w:w"))) / 20 for g in tbl.find(qn("w:tblGrid")).findall(qn("w:gridCol"))]
            assert abs(sum(widths) - bulletin_docx.TYPE_WIDTH_PT) < 2
            size = bulletin_docx.SIZE_S5 if bulletin_docx._squeezed(block, layout.table_text) else layout.table_text
            for c, header in enumerate(block.headers):
                if header in block.wrap:
                    continue
                widest = max(bulletin_docx._line_width(str(r[c]), size) for r in block.rows)
                assert widths[c] >= widest + 2 * bulletin_docx.CELL_PAD_PT - 0.1, (header, widths[c], widest)
                cells = [r.findall(qn("w:tc"))[c] for r in rows[1:]]
                assert all(tc.find(f"{qn('w:tcPr')}/{qn('w:noWrap')}") is not None for tc in cells), header
            checked += 1
    assert checked >= 3  # 表1, 表2 and the cards' indicator tables


@pytest.mark.parametrize(("text", "width"), [("92.2", 4), ("上升2位", 9), ("澜湾新区", 8), ("12345热线", 10)])
def test_cell_width_counts_the_space_between_cjk_and_digits(text, width):
    assert bulletin_docx._spaced_width(text) == width


@pytest.mark.parametrize(("header", "content", "shown"),
                         [("12345热线", 5, "12345\n热线"), ("名次变化", 8, "名次变化"), ("名次变化", 4, "名次\n变化"),
                          ("便利度", 4, "便利度"), ("差评未按时整改（条）", 2, "差评未按时整改\n（条）")])
def test_a_header_wraps_only_where_wider_than_its_column(header, content, shown):
    assert bulletin_docx.header_text(header, content) == shown


def test_pdf_table_cells_are_never_broken(month_doc, month_pdf):
    """In the PDF, every district name and every number of 表1 stands whole on one line, and the
    unranked district's row (index and reason) is on one page."""
    import shutil

    if not shutil.which("pdftohtml"):
        pytest.skip("没有安装 pdftohtml（poppler-utils）")
    inp, _, _ = month_doc
    table = bulletin.ranking_rows(inp)
    flat = [(page, re.sub(r"\s+", "", text)) for page, text in pdf_lines(month_pdf)]
    for row in table.rows:
        pages = set()
        for header, cell in zip(table.headers, row, strict=True):
            if header in table.wrap or not cell or cell == NULL_TEXT:
                continue
            hits = {page for page, text in flat if re.sub(r"\s+", "", cell) in text}
            assert hits, (row[2], header, cell)
            pages |= hits
        if row[0] == "未排名":
            reason_start = re.sub(r"\s+", "", row[-1])[:4]
            assert {page for page, text in flat if reason_start in text} & pages, row


def test_report_cards_print_one_page_each_with_no_near_blank_page(month_doc):
    """All districts' cards: page 1 is the signed covering text (署名 and 成文日期 there, as before
    attachments), then one page per district, each card whole on its page, and the 版记 on the last
    card's page: no page that holds only a signature or a stray line."""
    import dataclasses

    _need_pdf_tools()
    inp, doc, _ = month_doc
    doc = dataclasses.replace(doc, cc="抄送：市委办公室。")
    reports = bulletin.build_reports(inp)
    pdf = bulletin_docx.to_pdf(bulletin_docx.reports_docx(reports, doc))
    lines = [(page, re.sub(r"\s+", "", text)) for page, text in pdf_lines(pdf)]
    pages = max(page for page, _ in lines)
    assert pages == 1 + len(reports), pages
    on = {page: "".join(text for p, text in lines if p == page) for page in range(1, pages + 1)}
    assert doc.issue_date.replace(" ", "") in on[1] and "报告单共" in on[1]
    assert all(doc.issue_date not in on[page].replace(doc.print_date, "") for page in range(2, pages + 1))  # signed once
    for n, report in enumerate(reports, start=2):
        text = on[n]
        assert report.title.replace(" ", "") in text, (n, report.district)
        assert "预警：" in text and text.rstrip("—0123456789").count("报告单（") == 1, n  # the card ends on its page
    assert doc.cc in on[pages] and doc.print_date in on[pages]  # the 版记 with the last card


# --- 发文字号, 抄送 and 版记 ---------------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "year", "seq", "text"),
                         [("澄政数", 2026, 12, "澄政数〔2026〕12号"), (" 澄政数 ", 2027, 1, "澄政数〔2027〕1号"),
                          ("", 2026, 3, "")])
def test_doc_number_is_written_after_gbt_9704(prefix, year, seq, text):
    assert bulletin.doc_number(prefix, year, seq) == text


def test_the_sequence_is_proposed_after_the_last_download_and_recorded_in_the_audit_log(sqlite_engine):
    engine = sqlite_engine
    assert documents.next_sequence(engine, 2026) == 1
    documents.record_number(engine, "evaluator1", 2026, 12, "通报.pdf（发文字号 澄政数〔2026〕12号）", "月度通报")
    assert documents.next_sequence(engine, 2026) == 13
    assert documents.next_sequence(engine, 2027) == 1  # numbers restart each year
    # Downloading an earlier number again does not move the proposal back.
    documents.record_number(engine, "evaluator1", 2026, 5, "通报.docx（发文字号 澄政数〔2026〕5号）", "月度通报")
    assert documents.last_number(engine) == (2026, 12) and documents.next_sequence(engine, 2026) == 13
    log = accounts.audit_entries(engine, action="download")
    assert log.height == 2 and "澄政数〔2026〕12号" in log["内容"].to_list()[-1]


def test_letterhead_number_and_imprint_come_from_the_settings(demo_copy: Demo):
    engine = store.make_engine(demo_copy.url)
    admin = next(u for u in demo_copy.users.values() if u.is_admin)
    documents.save_text(engine, admin, documents.DOC_PREFIX, "澄政数")
    documents.save_text(engine, admin, documents.CC, "市委办公室，市政府办公室")
    documents.record_number(engine, admin.username, 2026, 11, "x", "月度通报")
    inp = bulletin.load_inputs(engine, demo_copy.comps, demo_copy.settings, demo_copy.period,
                               today=dt.date(2026, 12, 7))
    engine.dispose()
    assert inp.sequence == 12
    doc = bulletin.build_bulletin(inp, with_charts=False)
    assert (doc.doc_number, doc.cc, doc.print_date) == ("澄政数〔2026〕12号", "抄送：市委办公室，市政府办公室。",
                                                         "2026年12月7日印发")
    content = bulletin_docx.bulletin_docx(doc)
    paragraphs, _ = docx_text(content)
    # The 发文字号 stands between the issuer (red) and the title.
    assert paragraphs.index(doc.doc_number) < paragraphs.index(doc.title)
    assert paragraphs.index(doc.issuer) < paragraphs.index(doc.doc_number)
    # The 版记: a table in a text box anchored to the foot of the last page's type area.
    xml = all_xml(content)
    box = xml[xml.index('name="版记"'):]
    assert '<wp:positionV relativeFrom="margin"><wp:align>bottom</wp:align>' in xml
    assert box.index(doc.cc) < box.index(doc.issuer) < box.index(doc.print_date)
    # The report cards carry no number of their own.
    cards, _ = docx_text(bulletin_docx.reports_docx(bulletin.build_reports(inp, inp.districts[:1]), doc))
    assert doc.doc_number not in cards


RED_RULE = "E60012"


def _letterhead(content: bytes) -> tuple[list[tuple[str, bool]], list[list[str]], int]:
    """The body's paragraphs up to the title as (text, carries the red rule); the 版记's rows (cell
    texts); the 版记 text box's height (EMU)."""
    from docx.oxml.ns import qn

    doc = Document(io.BytesIO(content))
    head = []
    for p in doc.element.body.iter(qn("w:p")):
        if p.find(f".//{qn('w:txbxContent')}") is not None:
            break
        text = "".join(t.text or "" for t in p.iter(qn("w:t")))
        bottom = p.find(f"{qn('w:pPr')}/{qn('w:pBdr')}/{qn('w:bottom')}")
        head.append((text, bottom is not None and bottom.get(qn("w:color")) == RED_RULE))
        if "效能评估" in text:  # the title
            break
    box = next(b for b in doc.element.body.iter(qn("w:txbxContent")))
    rows = [["".join(t.text or "" for t in tc.iter(qn("w:t"))) for tc in tr.findall(qn("w:tc"))]
            for tr in box.iter(qn("w:tr"))]
    anchor = next(a for a in doc.element.body.iter() if a.tag.endswith("}anchor"))
    height = int(next(e for e in anchor if e.tag.endswith("}extent")).get("cy"))
    return head, rows, height


@pytest.mark.parametrize("numbered", [True, False])
@pytest.mark.parametrize("with_cc", [True, False])
def test_unset_number_and_cc_leave_no_empty_line(month_doc, numbered: bool, with_cc: bool):
    """Set: the 发文字号 stands alone above the red rule, the 版记 has 抄送 over 印发机关 and 印发日期.
    Unset: no empty 发文字号 line (the red rule moves under the issuer, with nothing between them) and no
    empty 抄送 row (the 版记 keeps its 印发 row and is one line shorter)."""
    import dataclasses

    from docx.shared import Pt

    _, doc, _ = month_doc
    doc = dataclasses.replace(doc, sections=doc.sections[:1], doc_number="澄政数〔2026〕12号" if numbered else "",
                              cc="抄送：市委办公室。" if with_cc else "")
    head, rows, height = _letterhead(bulletin_docx.bulletin_docx(doc))
    issuer = [n for n, (text, _) in enumerate(head) if text == doc.issuer]
    assert len(issuer) == 1
    after = head[issuer[0]:]
    ruled = [text for text, red in head if red]
    texts = [t for t, _ in after]
    title_at = next(n for n, t in enumerate(texts) if "效能评估" in t)
    if numbered:  # issuer, two blank lines, the number over the rule, two blank lines, the title
        assert texts[:title_at] == [doc.issuer, "", "", doc.doc_number, "", ""]
        assert ruled == [doc.doc_number]
    else:  # issuer over the rule, two blank lines, the title
        assert texts[:title_at] == [doc.issuer, "", ""]
        assert ruled == [doc.issuer]
    # Between the issuer and the rule nothing but the number (if any): the blank lines went with it.
    rule_at = next(n for n, (_, red) in enumerate(head) if red)
    assert rule_at - issuer[0] == (3 if numbered else 0)
    imprint = [doc.issuer, doc.print_date]
    assert rows == ([[doc.cc], imprint] if with_cc else [imprint])
    line = int(Pt(28.95).emu)
    assert abs(height - (3 if with_cc else 2) * line) < 1000, height
    assert "\ue000" not in all_xml(bulletin_docx.bulletin_docx(doc))


# --- wording: no "most" where values tie -------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "text"),
    [
        (["甲", "乙", "乙"], "最多的事项是“乙”（2 件）"),
        (["甲", "乙", "丙"], "涉及 3 个事项，各 1 件"),  # every item once: no "most"
        (["甲", "甲", "乙", "乙", "丙"], "“乙”“甲”并列最多（各 2 件）"),  # names in sorted order
        (["甲"], "涉及的事项是“甲”（1 件）"),
    ],
)
def test_the_worst_item_is_named_only_when_it_is_alone(items, text):
    frame = pl.DataFrame({"事项名称": items, "实施部门": ["局"] * len(items), "所属区县": ["甲区"] * len(items)})
    assert bulletin._worst(alerts.RED_CARDS, frame) == text


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        ([("甲区", "证明")], "涉及的事项是“证明”（1 件）。"),  # one district: no "甲区最多"
        ([("甲区", "证明"), ("甲区", "证明"), ("乙区", "执照")], "甲区最多（2 件），涉及的事项是“证明”（2 件）。"),
        ([("甲区", "证明"), ("乙区", "执照"), ("乙区", "证明"), ("甲区", "执照"), ("丙区", "执照")],
         "乙区、甲区并列最多（各 2 件）。全市最多的事项是“执照”（3 件）。"),  # code-point order
        ([("甲区", "证明"), ("乙区", "执照")], "全市涉及 2 个事项，各 1 件。"),  # every district once: no "most"
    ],
)
def test_the_district_with_most_alerts_is_named_only_among_several(rows, text):
    frame = pl.DataFrame({"所属区县": [d for d, _ in rows], "事项名称": [i for _, i in rows],
                          "实施部门": ["局"] * len(rows)})
    counts = frame.group_by("所属区县").len().rows()
    by = sorted(counts, key=lambda kv: (-kv[1], kv[0]))
    assert bulletin.most_district_text(alerts.RED_CARDS, by, frame) == text


def test_tied_ranks_are_all_named_among_the_first_three(demo: Demo):
    inp = inputs_for(demo, demo.period)
    rank = inp.rank()
    ranked = rank.filter(pl.col("ranked"))
    fourth = ranked["district"][3]
    # The fourth district ties with the third: both have rank 3.
    rank = rank.with_columns(pl.when(pl.col("district") == fourth).then(pl.lit(3)).otherwise(pl.col("rank"))
                             .alias("rank"))
    inp._rank[inp.period] = rank
    blocks = bulletin._ranking_section(inp, with_charts=False)
    text = next(b.text for b in blocks if isinstance(b, bulletin.Paragraph) and "前三位" in b.text)
    head = text.split("；")[0]
    assert fourth in head and all(d in head for d in ranked["district"][:3].to_list())


def test_pdf_layout_follows_gbt_9704(month_pdf):
    """Measured on the PDF (pdftohtml's boxes): A4; text inside the 156 mm type area (left 28 mm,
    right 26 mm); full lines of 三号 text hold 28 characters; the page numbers "— n —" sit one
    character in from the outside corner (odd pages right, even pages left), about 7 mm below the type
    area."""
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    if not shutil_which("pdftohtml"):
        pytest.skip("没有安装 pdftohtml（poppler-utils）")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(month_pdf)
        f.flush()
        out = subprocess.run(["pdftohtml", "-xml", "-i", "-stdout", "-q", f.name], capture_output=True,
                             check=True).stdout
    root = ET.fromstring(out.replace(b'<!DOCTYPE pdf2xml SYSTEM "pdf2xml.dtd">', b""))
    pages = list(root.iter("page"))
    assert len(pages) >= 3
    for page in pages:
        width, height = int(page.get("width")), int(page.get("height"))
        assert abs(height / width - 297 / 210) < 0.002  # A4
        mm = width / 210
        texts = [t for t in page.iter("text") if "".join(t.itertext()).strip()]
        number = [t for t in texts if "—" in "".join(t.itertext()) and int(t.get("top")) > 262 * mm]
        body = [t for t in texts if t not in number]
        assert min(int(t.get("left")) for t in body) >= 28 * mm - 2
        assert max(int(t.get("left")) + int(t.get("width")) for t in body) <= (210 - 26) * mm + 2
        assert number, page.get("number")
        left = min(int(t.get("left")) for t in number)
        right = max(int(t.get("left")) + int(t.get("width")) for t in number)
        if int(page.get("number")) % 2:  # odd: right, one 四号 character (4.9 mm) in from the type area
            assert abs(right - (210 - 26 - 4.9) * mm) < 2 * mm, (page.get("number"), right / mm)
        else:
            assert abs(left - (28 + 4.9) * mm) < 2 * mm, (page.get("number"), left / mm)
        top = min(int(t.get("top")) for t in number) / mm
        assert 262 + 2 < top < 262 + 9, top  # below the type area (its foot at 297 − 35 mm)
    # 28 characters a line: the longest line of Chinese text only (the requirements) holds 28.
    cjk_lines = [text for _, text in pdf_lines(month_pdf)
                 if len(text.strip()) >= 20 and all(ord(ch) >= 0x2E80 for ch in text.strip())]
    assert cjk_lines and max(len(t.strip()) for t in cjk_lines) == 28, cjk_lines


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)
