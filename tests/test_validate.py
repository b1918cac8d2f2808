"""Validation rules (Great Expectations suites in expectations/) and the problem report."""

from __future__ import annotations

import datetime as dt
import io
import json

import openpyxl
import polars as pl
import pytest

from datasets.domain.schema import KINDS
from datasets.intake import report, validate
from datasets.intake.parsed import ERROR, WARNING, Problem
from datasets.intake.validate import StoreContext, build_suite, load_suite
from tests.bad_files.corpus import DISTRICT_A, DISTRICT_B, parsed_file, rows

NOW = dt.datetime(2024, 6, 15, 12, 0, 0)
CTX = StoreContext(
    districts={"甲区": DISTRICT_A, "甲": DISTRICT_A, "110101": DISTRICT_A, "乙区": DISTRICT_B},
    catalogs={DISTRICT_A: [("2024-01", frozenset({"I1", "I2"}))]},
)


def run(kind, table, *, ctx=CTX, district=None, period=None, headers=None, suites_dir=None):
    return validate.validate(parsed_file(kind, table, headers=headers), ctx, district=district, period=period,
                             now=NOW, suites_dir=suites_dir)


def only(v, rule):
    found = [p for p in v.problems if p.rule == rule]
    assert found, f"no {rule} in {[(p.rule, p.message) for p in v.problems]}"
    return found


# --- the suites ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_suite_files_cover_the_schema(kind):
    """Every expectation the schema implies is in expectations/<kind>.json (the file may add more)."""
    on_disk = load_suite(kind)
    have = {(e["type"], json.dumps(e["kwargs"], sort_keys=True)) for e in on_disk["expectations"]}
    for exp in build_suite(kind)["expectations"]:
        assert (exp["type"], json.dumps(exp["kwargs"], sort_keys=True)) in have, exp
    rules = {r["rule"] for r in on_disk["meta"]["file_rules"]}
    assert {"district_missing", "district_unknown"} <= rules


@pytest.mark.parametrize("kind", list(KINDS))
def test_suite_files_load_in_great_expectations(kind):
    from great_expectations.core import ExpectationSuite

    data = load_suite(kind)
    suite = ExpectationSuite(name=data["name"], expectations=data["expectations"], meta=data["meta"])
    assert len(suite.expectations) == len(data["expectations"])
    for exp in data["expectations"]:
        assert exp["meta"]["severity"] in ("error", "warning")


def test_required_fields_have_required_checks():
    for k in KINDS.values():
        suite = build_suite(k.name)
        required = {e["kwargs"]["column"] for e in suite["expectations"] if e["meta"]["rule"] == "required_empty"}
        assert required == {f"{f.name}__raw" for f in k.fields if f.required and f.name != "district"}


def test_a_broken_suite_file_is_refused(tmp_path):
    suite = build_suite("hotline")
    suite["expectations"][3]["meta"].pop("severity")
    (tmp_path / "hotline.json").write_text(json.dumps(suite), encoding="utf-8")
    with pytest.raises(RuntimeError, match="meta"):
        load_suite("hotline", tmp_path)
    suite = build_suite("hotline")
    suite["expectations"][3]["kwargs"]["column"] = "received_at__bogus"
    (tmp_path / "hotline.json").write_text(json.dumps(suite), encoding="utf-8")
    with pytest.raises(RuntimeError, match="辅助列"):
        load_suite("hotline", tmp_path)


def test_the_suite_file_drives_severity_and_messages(tmp_path):
    """Editing expectations/<kind>.json changes what is checked and said, without code changes."""
    table = rows("hotline", 3)
    table[1]["诉求类型"] = "表扬"
    assert not run("hotline", table).accepted
    suite = build_suite("hotline")
    for exp in suite["expectations"]:
        if exp["meta"]["rule"] == "value_not_allowed":
            exp["meta"]["severity"] = "warning"
            exp["meta"]["message"] = "自定义：{header}={value}"
    (tmp_path / "hotline.json").write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    v = run("hotline", table, suites_dir=tmp_path)
    assert v.accepted
    (p,) = only(v, "value_not_allowed")
    assert (p.severity, p.message, p.row) == (WARNING, "自定义：诉求类型=表扬", 3)


def test_the_volume_threshold_is_read_from_the_suite(tmp_path):
    ctx = StoreContext(districts=CTX.districts, previous_rows=lambda *a: ("2024-04", 10))
    assert only(run("hotline", rows("hotline", 4), ctx=ctx), "month_volume_drop")
    suite = build_suite("hotline")
    for rule in suite["meta"]["file_rules"]:
        if rule["rule"] == "month_volume_drop":
            rule["threshold"] = 0.3
    (tmp_path / "hotline.json").write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    v = run("hotline", rows("hotline", 4), ctx=ctx, suites_dir=tmp_path)
    assert "month_volume_drop" not in v.counts


# --- error rules --------------------------------------------------------------------------------


def test_valid_files_pass_for_every_kind():
    for kind in KINDS:
        v = run(kind, rows(kind, 5), period="2024-05" if kind == "items" else None)
        assert v.accepted, [p.message for p in v.problems]
        assert v.error_count == 0 and v.frame.height == 5


def test_missing_required_column_names_header_and_aliases():
    table = [{k: v for k, v in r.items() if k != "办件编号"} for r in rows("cases", 3)]
    v = run("cases", table)
    (p,) = only(v, "column_missing")
    assert p.severity == ERROR and p.row is None
    assert "办件编号" in p.message and "申办流水号" in p.message and "受理编号" in p.message
    # no per-row noise about the missing column
    assert not [q for q in v.problems if q.rule == "required_empty"]


def test_required_cell_empty():
    table = rows("cases", 4)
    table[2]["实施部门"] = "  "
    (p,) = only(run("cases", table), "required_empty")
    assert (p.row, p.column) == (4, "实施部门")
    assert "必填" in p.message


def test_duplicate_ids_per_district_name_all_rows():
    table = rows("cases", 5)
    table[3]["办件编号"] = table[0]["办件编号"]
    table.append({**table[1], "所属区县": DISTRICT_B})  # same id in another district is fine
    ps = only(run("cases", table), "duplicate_id")
    assert [p.row for p in ps] == [2, 5]
    assert all("第 2、5 行" in p.message and p.value == "BJ000001" for p in ps)


def test_duplicate_ids_across_district_aliases():
    table = rows("evaluations", 2)
    table[1]["评价编号"] = table[0]["评价编号"]
    table[1]["所属区县"] = "甲"  # alias of 甲区: the same district
    assert [p.row for p in only(run("evaluations", table), "duplicate_id")] == [2, 3]


def test_unparseable_date_and_number_quote_the_cell():
    table = rows("cases", 3)
    table[1]["受理时间"] = "2024-13-45"
    table[2]["法定时限"] = "二十天左右"
    v = run("cases", table)
    (d,) = only(v, "date_unparseable")
    assert (d.row, d.column, d.value) == (3, "受理时间", "2024-13-45") and "2024-13-45" in d.message
    (n,) = only(v, "number_unparseable")
    assert (n.row, n.column, n.value) == (4, "法定时限", "二十天左右")


def test_completed_before_accepted():
    table = rows("cases", 2)
    table[1]["办结时间"] = "2024-05-01 09:00:00"
    (p,) = only(run("cases", table), "completed_before_accepted")
    assert (p.row, p.column, p.value) == (3, "办结时间", "2024-05-01 09:00:00")
    assert "2024-05-03 10:00:00" in p.message


def test_hotline_closed_before_received():
    table = rows("hotline", 2)
    table[0]["办结时间"] = "2024-05-02"
    (p,) = only(run("hotline", table), "completed_before_accepted")
    assert p.row == 2


def test_promised_above_legal_only_in_the_same_unit():
    table = rows("cases", 3)
    table[0]["承诺时限"] = "25"
    table[1].update({"承诺时限": "25", "承诺时限单位": "自然日"})  # different units: not comparable
    table[2].update({"法定时限": "20个工作日", "承诺时限": "21"})
    v = run("cases", table, headers=[*table[0].keys(), "承诺时限单位"])
    assert [p.row for p in only(v, "promised_above_legal")] == [2, 4]
    items = rows("items", 2)
    items[1]["承诺时限"] = "30"
    assert [p.row for p in only(run("items", items, period="2024-05"), "promised_above_legal")] == [3]


@pytest.mark.parametrize("written", ["6", "0", "很好"])
def test_rating_outside_the_scale(written):
    table = rows("evaluations", 2)
    table[1]["评价等级"] = written
    (p,) = only(run("evaluations", table), "rating_out_of_scale")
    assert (p.row, p.value, p.severity) == (3, written, ERROR)


@pytest.mark.parametrize(
    ("kind", "header", "written"),
    [
        ("cases", "办理状态", "已完成"),
        ("cases", "申请渠道", "电话"),
        ("cases", "办件类型", "普通件"),
        ("cases", "监察结果", "绿牌"),
        ("items", "网上办理深度", "五级"),
        ("items", "是否进驻大厅", "也许"),
        ("evaluations", "是否主动评价", "不知道"),
        ("evaluations", "整改状态", "不整改"),
        ("hotline", "满意度", "很满意"),
    ],
)
def test_unknown_allowed_values(kind, header, written):
    table = rows(kind, 2)
    table[0][header] = written
    v = run(kind, table, period="2024-05" if kind == "items" else None)
    (p,) = only(v, "value_not_allowed")
    assert (p.row, p.column, p.value, p.severity) == (2, header, written, ERROR)
    assert written in p.message


def test_allowed_values_are_matched_in_their_written_variants():
    table = rows("cases", 2, 监察结果="黄牌(已撤销)")
    table[1]["申请渠道"] = " 网上申请 "
    v = run("cases", table)
    assert v.accepted
    assert v.frame["supervision"].to_list() == ["黄牌（已撤销）"] * 2


def test_negative_numbers():
    table = rows("items", 2)
    table[1]["申请材料数"] = "-1"
    (p,) = only(run("items", table, period="2024-05"), "number_negative")
    assert (p.row, p.value) == (3, "-1")


def test_district_unknown_and_normalised_to_configured_name():
    table = rows("hotline", 4)
    table[1]["所属区县"] = "甲"  # alias
    table[2]["所属区县"] = "１１０１０１"  # full-width code
    table[3]["所属区县"] = "丙区"
    v = run("hotline", table)
    (p,) = only(v, "district_unknown")
    assert (p.row, p.value) == (5, "丙区")
    assert v.frame["district"].to_list()[:3] == [DISTRICT_A] * 3


def test_district_column_missing_uses_the_uploader_district():
    table = [{k: v for k, v in r.items() if k != "所属区县"} for r in rows("hotline", 3)]
    v = run("hotline", table, district="甲")
    assert v.accepted
    assert v.frame["district"].unique().to_list() == [DISTRICT_A]
    v = run("hotline", table)
    (p,) = only(v, "district_missing")
    assert p.row is None and "所属区县" in p.message
    v = run("hotline", table, district="丁区")
    assert only(v, "district_unknown")[0].value == "丁区"


def test_empty_district_cell_takes_the_uploader_district_or_is_an_error():
    table = rows("hotline", 2)
    table[1]["所属区县"] = ""
    assert run("hotline", table, district=DISTRICT_B).frame["district"].to_list() == [DISTRICT_A, DISTRICT_B]
    (p,) = only(run("hotline", table), "district_missing")
    assert p.row == 3


def test_future_dates_but_not_deadlines():
    table = rows("hotline", 3)
    table[1]["受理时间"] = "2024-06-16 08:00:00"  # NOW is 2024-06-15 12:00
    table[1]["办结时间"] = ""
    table[2]["办理时限"] = "2024-12-31"  # a deadline may lie ahead
    v = run("hotline", table)
    (p,) = only(v, "future_date")
    assert (p.row, p.column) == (3, "受理时间")


def test_headers_as_written_are_quoted():
    table = rows("cases", 2)
    table[1]["办件编号"] = ""
    pf = parsed_file("cases", table)
    pf.headers["case_id"] = "申办流水号"  # the file used an alias
    (p,) = only(validate.validate(pf, CTX, now=NOW), "required_empty")
    assert p.column == "申办流水号" and "申办流水号" in p.message


def test_no_rows():
    v = run("cases", [], headers=list(rows("cases", 1)[0]))
    (p,) = only(v, "no_rows")
    assert p.severity == ERROR and not v.accepted


def test_counts_stay_exact_beyond_the_listed_problems(monkeypatch):
    monkeypatch.setattr(validate, "MAX_PROBLEMS_PER_RULE", 5)
    table = rows("hotline", 40, 诉求类型="表扬")
    v = run("hotline", table)
    assert v.counts["value_not_allowed"] == 40
    assert len([p for p in v.problems if p.rule == "value_not_allowed"]) == 5
    assert v.error_count == 40


# --- warnings -----------------------------------------------------------------------------------


def test_item_not_in_catalog_is_a_warning():
    table = rows("cases", 3)
    table[2]["事项编码"] = "I9"
    v = run("cases", table)
    assert v.accepted
    (p,) = only(v, "item_not_in_catalog")
    assert (p.severity, p.row, p.value) == (WARNING, 4, "I9") and DISTRICT_A in p.message


def test_catalog_applies_from_its_period():
    ctx = StoreContext(districts=CTX.districts, catalogs={DISTRICT_A: [("2024-01", frozenset({"I1"})),
                                                                       ("2024-06", frozenset({"I2"}))]})
    table = rows("evaluations", 2)
    table[1]["事项编码"] = "I2"  # only in the June catalog; these are May evaluations
    v = run("evaluations", table, ctx=ctx)
    assert [p.row for p in only(v, "item_not_in_catalog")] == [3]


def test_no_catalog_is_one_file_warning():
    v = run("cases", rows("cases", 3, 所属区县=DISTRICT_B))
    assert v.accepted
    (p,) = only(v, "catalog_missing")
    assert p.row is None and DISTRICT_B in p.message and "2024-05" in p.message
    assert not [q for q in v.problems if q.rule == "item_not_in_catalog"]


def test_case_open_longer_than_a_year():
    table = rows("cases", 7)  # filed under 2024-05: open since before 2023-06-01 is over a year
    table[1].update({"受理时间": "2023-04-20 09:00:00", "办结时间": "", "办理状态": "在办"})
    table[2].update({"受理时间": "2023-04-20 09:00:00", "办结时间": "", "办理状态": "不予受理"})
    table[3].update({"受理时间": "2023-06-20 09:00:00", "办结时间": "", "办理状态": "在办"})
    v = run("cases", table)
    assert v.accepted
    (p,) = only(v, "case_open_over_year")
    assert (p.row, p.severity) == (3, WARNING) and "2023-04-20" in p.message


def test_bad_rating_without_rectify_status():
    table = rows("evaluations", 4)
    table[1]["评价等级"] = "不满意"
    table[2].update({"评价等级": "1", "整改状态": "已整改"})
    table[3]["评价等级"] = "非常不满意"
    v = run("evaluations", table, headers=[*table[0].keys(), "整改状态"])
    assert v.accepted
    assert [(p.row, p.column) for p in only(v, "bad_without_rectify")] == [(3, "整改状态"), (5, "整改状态")]


def test_month_volume_drop_compares_with_the_stored_previous_month():
    seen = []

    def previous(kind, district, period):
        seen.append((kind, district, period))
        return ("2024-04", 100)

    ctx = StoreContext(districts=CTX.districts, catalogs=CTX.catalogs, previous_rows=previous)
    v = run("cases", rows("cases", 40), ctx=ctx)
    assert v.accepted and seen == [("cases", DISTRICT_A, "2024-05")]
    (p,) = only(v, "month_volume_drop")
    assert "40" in p.message and "100" in p.message and p.severity == WARNING
    ctx.previous_rows = lambda *a: ("2024-04", 60)
    assert not [q for q in run("cases", rows("cases", 40), ctx=ctx).problems if q.rule == "month_volume_drop"]


def test_periods_are_the_majority_month_per_district():
    table = rows("cases", 5)
    table[0]["受理时间"] = "2024-04-28 10:00:00"
    table[0]["办结时间"] = ""
    table[0]["办理状态"] = "在办"
    table += [case_row_b for case_row_b in rows("cases", 2, 所属区县=DISTRICT_B, 受理时间="2024-04-02 10:00:00")]
    for i, r in enumerate(table):
        r["办件编号"] = f"X{i}"
    v = run("cases", table)
    assert v.periods == {DISTRICT_A: "2024-05", DISTRICT_B: "2024-04"}
    assert v.summary()["periods"] == v.periods


# --- report ---------------------------------------------------------------------------------------


PROBLEMS = [
    Problem(ERROR, "value_not_allowed", "取值不在允许范围", "“申请渠道”的值“=HYPERLINK(1)”不在允许的取值中", 5, "申请渠道",
            "=HYPERLINK(\"http://x\",\"y\")"),
    Problem(ERROR, "value_not_allowed", "取值不在允许范围", "…", 7, "申请渠道", "+1+2"),
    Problem(WARNING, "item_not_in_catalog", "事项不在事项清单", "…", 9, "事项编码", "@SUM(A1)"),
    Problem(ERROR, "column_missing", "缺少必填列", "缺少必填列“办件编号”", None, "办件编号", None),
    Problem(WARNING, "x", "-负号开头的规则名", "-1", 3, "-列", "-1"),
]


def test_problems_frame_has_chinese_columns():
    frame = report.problems_frame(PROBLEMS)
    assert frame.columns == ["严重程度", "行号", "列名", "值", "规则", "说明"]
    assert frame["行号"].to_list() == [5, 7, 9, None, 3]
    assert frame["规则"].to_list()[0] == "取值不在允许范围"
    assert report.problems_frame([]).height == 0


def test_report_xlsx_neutralises_formulas_and_counts_rules():
    buf = io.BytesIO()
    report.write_report_xlsx(PROBLEMS, buf, counts={"value_not_allowed": 1234})
    wb = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))
    assert wb.sheetnames == ["问题清单", "规则汇总"]
    sheet = wb["问题清单"]
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not [c for c in cells if c.data_type == "f"]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert not [t for t in texts if t[0] in "=+-@"], texts
    assert "'=HYPERLINK(\"http://x\",\"y\")" in texts and "'+1+2" in texts and "'@SUM(A1)" in texts
    header = [c.value for c in sheet[1]]
    assert header == ["严重程度", "行号", "列名", "值", "规则", "说明"]
    assert [c.value for c in wb["规则汇总"][1]] == ["严重程度", "规则", "数量"]  # Chinese rule names only
    summary = {r[1]: r[2] for r in wb["规则汇总"].iter_rows(min_row=2, values_only=True) if r[1]}
    assert summary["取值不在允许范围"] == 1234  # exact count, not the two listed
    assert summary["事项不在事项清单"] == 1 and summary["缺少必填列"] == 1


def test_neutralize():
    assert report.neutralize("=1+1") == "'=1+1"
    assert report.neutralize("-") == "'-"
    assert report.neutralize("正常") == "正常"
    assert report.neutralize(5) == 5


def test_validation_summary_is_json():
    table = rows("cases", 3)
    table[0]["事项编码"] = "I9"
    summary = run("cases", table).summary()
    assert json.loads(json.dumps(summary, ensure_ascii=False))["warnings"] == 1
    assert summary["rules"]["item_not_in_catalog"]["count"] == 1


def test_validation_of_a_large_frame_is_vectorised():
    """100 000 rows validate in a few seconds (GX on pandas plus Polars helper columns; the benchmark
    measures 200 000)."""
    import time

    table = rows("cases", 1)[0]
    n = 100_000
    big = pl.DataFrame({h: [table[h]] * n for h in table}).with_columns(
        pl.format("BJ{}", pl.int_range(0, n)).alias("办件编号")
    )
    pf = parsed_file("cases", big.head(1).to_dicts())
    from datasets.intake.parsing import parse_field

    k = KINDS["cases"]
    by_header = {f.header: f for f in k.fields}
    raw = big.rename({h: by_header[h].name for h in big.columns})
    pf.raw = raw
    pf.frame = raw.select([parse_field(pl.col(c), k.field(c)).alias(c) for c in raw.columns]).with_columns(
        pl.int_range(2, n + 2, dtype=pl.Int64).alias("_row")
    )
    validate.validate(pf, CTX, now=NOW)  # warm up GX
    t = time.perf_counter()
    v = validate.validate(pf, CTX, now=NOW)
    elapsed = time.perf_counter() - t
    assert v.accepted and v.frame.height == n
    assert elapsed < 10, elapsed


def test_rule_catalog_lists_every_rule_once_per_kind():
    catalog = validate.rule_catalog()
    assert catalog.columns == ["数据类型", "规则", "规则名称", "严重程度"]
    cases = catalog.filter(pl.col("数据类型") == "办件明细")
    assert cases["规则"].n_unique() == cases.height
    assert {"duplicate_id", "future_date", "item_not_in_catalog", "month_volume_drop"} <= set(cases["规则"])
    assert cases.filter(pl.col("规则") == "case_open_over_year")["严重程度"].item() == WARNING
    assert "case_open_over_year" not in set(catalog.filter(pl.col("数据类型") == "好差评")["规则"])


def test_an_unknown_district_is_listed_once_per_name_with_its_row_count():
    """Every row of an unconfigured district fails the same way: one problem per name, with the count."""
    table = rows("hotline", 25)
    for r in table[:23]:
        r["所属区县"] = "丙区"
    table[23]["所属区县"] = "丁区"
    v = run("hotline", table)
    problems = only(v, "district_unknown")
    assert [(p.value, p.row) for p in problems] == [("丙区", 2), ("丁区", 25)]
    assert "共 23 行：第 2、3、4、5、6、7、8、9、10、11 行等" in problems[0].message
    assert "共" not in problems[1].message  # a single row reads as before
    assert v.counts["district_unknown"] == 24 and v.error_count == 24
    summary = report.rule_counts(v.problems, v.counts)
    assert summary.filter(pl.col("规则") == "区县未配置")["数量"].to_list() == [24]


@pytest.mark.parametrize(
    ("file_name", "chosen", "named"),
    [
        ("乙区2024年5月热线工单.xlsx", "甲", DISTRICT_B),  # names another district: warned
        ("甲区2024年5月热线工单.xlsx", "甲区", None),  # names the chosen one
        ("热线工单2024年5月.xlsx", "甲区", None),  # names none
        ("甲区乙区合并导出.xlsx", "甲区", None),  # names the chosen one among others: not a mix-up
        ("110101_乙.xlsx", "甲区", None),  # codes and one-character aliases are too short to tell
    ],
)
def test_a_file_naming_another_district_than_the_chosen_one_is_warned(file_name, chosen, named):
    table = [{k: v for k, v in r.items() if k != "所属区县"} for r in rows("hotline", 2)]
    v = validate.validate(parsed_file("hotline", table, file_name=file_name), CTX, district=chosen, now=NOW)
    found = [p for p in v.problems if p.rule == "district_name_mismatch"]
    assert v.accepted  # a warning only
    if named is None:
        assert not found
    else:
        (p,) = found
        assert p.severity == WARNING and f"“{named}”" in p.message and f"“{DISTRICT_A}”" in p.message
