"""Reading real exports: messy forms that must be read, value by value, and files that must be refused."""

from __future__ import annotations

import csv
import datetime as dt
import io
import struct
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter

from datasets.common.text import normalize_header
from datasets.domain.schema import KINDS
from datasets.intake import parsing
from datasets.intake.parsed import ERROR, WARNING, ReadError
from datasets.intake.readers import detect_kind, read_file

# --- fixture writers ------------------------------------------------------------------------------


class Formula:
    def __init__(self, formula: str, value: Any) -> None:
        self.formula, self.value = formula, value


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]], *, first_col: int = 0) -> Path:
    """One worksheet per entry; cells: str (always text), int/float, datetime/date, bool, Formula, None."""
    wb = xlsxwriter.Workbook(str(path))
    stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row, start=first_col):
                if value is None:
                    continue
                if isinstance(value, Formula):
                    ws.write_formula(r, c, value.formula, None, value.value)
                elif isinstance(value, bool):
                    ws.write_boolean(r, c, value)
                elif isinstance(value, dt.datetime):
                    ws.write_datetime(r, c, value, stamp)
                elif isinstance(value, dt.date):
                    ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), day)
                elif isinstance(value, (int, float)):
                    ws.write_number(r, c, value)
                else:
                    ws.write_string(r, c, str(value))
    wb.close()
    return path


def csv_bytes(rows: list[list[Any]], *, encoding: str = "utf-8", sep: str = ",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows([["" if v is None else v for v in r] for r in rows])
    return buf.getvalue().encode(encoding)


def xlsx_bytes(tmp_path: Path, rows: list[list[Any]]) -> bytes:
    return write_xlsx(tmp_path / "t.xlsx", {"Sheet1": rows}).read_bytes()


def ole_file(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE compound file (CFB v3) holding the given streams (each padded to ≥ 4096 bytes)."""
    sector, end, free, fat_sect, no_stream = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    names = list(streams)
    datas = [streams[n].ljust(4096, b"\0") for n in names]
    datas = [d.ljust(-(-len(d) // sector) * sector, b"\0") for d in datas]
    fat = [fat_sect, end]  # sector 0: the FAT, sector 1: the directory
    starts = []
    for d in datas:
        starts.append(len(fat))
        n = len(d) // sector
        fat += [len(fat) + i + 1 for i in range(n - 1)] + [end]
    fat += [free] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, start: int, size: int, child: int = no_stream, right: int = no_stream) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBB", len(raw), kind, 1)
            + struct.pack("<III", no_stream, right, child)
            + b"\0" * 36
            + struct.pack("<IQ", start, size)
        )

    entries = [entry("Root Entry", 5, end, 0, child=1)]
    for i, (name, start) in enumerate(zip(names, starts, strict=True)):
        right = i + 2 if i + 1 < len(names) else no_stream
        entries.append(entry(name, 2, start, len(streams[name].ljust(4096, b"\0")), right=right))
    directory = b"".join(entries).ljust(sector, b"\0")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", free) * 108
    )
    assert len(header) == sector
    return header + struct.pack(f"<{len(fat)}I", *fat) + directory + b"".join(datas)


CASE_HEADER = ["办件编号", "事项编码", "实施部门", "申请渠道", "受理时间", "办理状态"]


def case_rows(n: int = 3) -> list[list[Any]]:
    return [[f"BJ{i:04d}", "I1", "区市场监管局", "窗口", f"2024-05-0{i + 1} 10:00:00", "已办结"] for i in range(n)]


# --- parsers --------------------------------------------------------------------------------------


def parsed(values: list[Any], parser, **kw: Any) -> list[Any]:
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(parser(pl.col("v"), **kw))["v"].to_list()


def test_parse_datetime_reads_every_written_form():
    values = [
        "2024-05-03 14:22:05",
        "2024/5/3 14:22",
        "2024年5月3日",
        "20240503",
        "45415.6",
        "2024-5-3 9:05",
        "2024-05-03T14:22:05",
        "2024-05-03 14:22:05.5",
        "2024年5月3日 14时22分",
        "２０２４－０５－０３",
        "20240503142205",
        "2024.5.3",
        "45415",
        "2024/5/3 下午 2:22:05",
        "2024/5/3 上午 12:05",
        "2024-05-03 02:22 PM",
    ]
    assert parsed(values, parsing.parse_datetime) == [
        dt.datetime(2024, 5, 3, 14, 22, 5),
        dt.datetime(2024, 5, 3, 14, 22),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3, 14, 24),
        dt.datetime(2024, 5, 3, 9, 5),
        dt.datetime(2024, 5, 3, 14, 22, 5),
        dt.datetime(2024, 5, 3, 14, 22, 5, 500000),
        dt.datetime(2024, 5, 3, 14, 22),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3, 14, 22, 5),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3, 14, 22, 5),
        dt.datetime(2024, 5, 3, 0, 5),
        dt.datetime(2024, 5, 3, 14, 22),
    ]


def test_parse_datetime_gives_null_for_impossible_or_unknown_text():
    assert parsed(["2024-02-30", "2024-13-01", "昨天", "123", "2024-05-03 25:00", None], parsing.parse_datetime) == [
        None
    ] * 6


def test_parse_limit_and_its_unit():
    values = ["20个工作日", "即办", "5天", "10个自然日", "20", " 20（工作日） ", "3个月", "很快", "当场办结"]
    assert parsed(values, parsing.parse_limit) == [20.0, 0.0, 5.0, 10.0, 20.0, 20.0, None, None, 0.0]
    assert parsed(values, parsing.limit_unit) == ["工作日", None, None, "自然日", None, "工作日", None, None, None]


def test_parse_number_with_units_and_integer_fields():
    values = ["3个", "5天", "2次", "1,200", "1.5", "0", "３", "三个", "-1"]
    assert parsed(values, parsing.parse_number) == [3.0, 5.0, 2.0, 1200.0, 1.5, 0.0, 3.0, None, -1.0]
    assert parsed(values, parsing.parse_number, dtype=pl.Int64) == [3, 5, 2, 1200, None, 0, 3, None, -1]


def test_parse_depth_every_form():
    values = ["1", "2", "3", "4", "一级", "二级", "三级", "四级", "Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ", "I", "II", "III", "IV",
              "全程网办（Ⅳ级）", "Ⅳ 全程网办（零跑动）", "Ⅲ级", "第二级", "四级（全程网办）", "全程网办", "4.0", "iv"]  # fmt: skip
    expected = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 4, 4, 3, 2, 4, 4, 4, 4]
    assert parsed(values, parsing.parse_depth) == expected
    assert parsed(["5", "0", "五级", "V", "Ⅵ级", "高"], parsing.parse_depth) == [None] * 6


def test_parse_rating_bool_and_active():
    assert parsed(["非常满意", "满意", "基本满意", "不满意", "非常不满意", "5", "1", "3.0", "6", "好"], parsing.parse_rating) == [
        5, 4, 3, 2, 1, 5, 1, 3, None, None
    ]  # fmt: skip
    assert parsed(["是", "否", "Y", "n", "1", "0", "true", "FALSE", "也许"], parsing.parse_bool) == [
        True, False, True, False, True, False, True, False, None
    ]  # fmt: skip
    assert parsed(["是", "否", "主动评价", "默认好评", "随便"], parsing.parse_active) == [True, False, True, False, None]


def test_allowed_values_are_normalised_but_never_changed_to_another_value():
    allowed = ("已办结", "PC端", "黄牌（已撤销）")
    values = [" 已办结 ", "已 办结", "pc端", "黄牌(已撤销)", "办结", "已办结了", "ＰＣ端"]
    assert parsed(values, parsing.parse_allowed, allowed=allowed) == [
        "已办结", "已办结", "PC端", "黄牌（已撤销）", "办结", "已办结了", "PC端"
    ]  # fmt: skip


def test_text_is_trimmed_and_nfkc_and_csv_formula_wrapping_is_removed():
    values = ["  BJ001\u3000", "ＢＪ００２", '="00123"', "  "]
    assert parsed(values, parsing.parse_text) == ["BJ001", "BJ002", "00123", None]


def test_placeholders_are_empty():
    assert parsed(["-", " / ", "—", "null", "x", "", "0"], parsing.clean) == [None, None, None, None, "x", None, "0"]


def test_parsers_keep_the_column_name():
    frame = pl.DataFrame({"a": ["1"], "b": ["2024-05-03"]})
    out = frame.select(parsing.parse_depth(pl.col("a")), parsing.parse_datetime(pl.col("b")))
    assert out.columns == ["a", "b"]


@pytest.mark.parametrize("field", [f for k in KINDS.values() for f in k.fields if parsing.fast_path(f)], ids=str)
def test_fast_path_agrees_with_the_full_parser(field):
    values = ["2024-05-03 14:22:05", "2024-5-3 9:05:00", " 2024-05-03 14:22:05", "2024-05-03 14:22", "2024-02-30 00:00:00",
              "2024-05-03 14:22:05.5", "BJ001", " BJ001", "BJ 001", "ＢＪ００１", '="001"', "=1", "甲区", "a\tb", "x "]  # fmt: skip
    frame = pl.DataFrame({"v": values}).select(
        parsing.fast_path(field)(pl.col("v")).alias("fast"), parsing.parse_field(pl.col("v"), field).alias("full")
    )
    accepted = frame.filter(pl.col("fast").is_not_null())
    assert accepted.height >= 2
    assert accepted["fast"].to_list() == accepted["full"].to_list()


# --- detect_kind ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_detect_kind_on_canonical_headers(kind):
    assert detect_kind([f.header for f in KINDS[kind].fields]) == kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_detect_kind_on_aliases(kind):
    headers = [f.aliases[0] if f.aliases else f.header for f in KINDS[kind].fields]
    assert detect_kind(headers) == kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_detect_kind_on_required_headers_only_written_loosely(kind):
    headers = [f" {f.header}（单位）\u3000" for f in KINDS[kind].fields if f.required]
    assert detect_kind(headers) == kind


def test_detect_kind_cases_missing_two_required_columns_is_still_cases():
    headers = [f.header for f in KINDS["cases"].fields if f.name not in ("channel", "status")]
    assert detect_kind(headers) == "cases"


def test_detect_kind_none_for_unrelated_headers():
    assert detect_kind([]) is None
    assert detect_kind(["姓名", "性别", "年龄"]) is None
    assert detect_kind(["办件编号"]) is None


def test_headers_do_not_collide_within_a_kind():
    for k in KINDS.values():
        seen: dict[str, str] = {}
        for f in k.fields:
            for h in f.headers:
                key = normalize_header(h)
                assert seen.setdefault(key, f.name) == f.name, (k.name, h)


# --- messy files that must be read ----------------------------------------------------------------


def test_title_rows_total_row_and_blank_rows_keep_excel_row_numbers(tmp_path):
    rows = [
        ["XX区2024年5月办件明细表"],
        ["导出时间：2024-06-01 08:00:00", None, "导出人：张三"],
        [],
        ["序号", *CASE_HEADER],
        [1, *case_rows(3)[0]],
        [2, *case_rows(3)[1]],
        [],
        [3, *case_rows(3)[2]],
        ["合计", None, None, None, None, None, "3件"],
        [],
        [],
    ]
    path = write_xlsx(tmp_path / "明细.xlsx", {"5月": rows})
    pf = read_file(path, "明细.xlsx")
    assert pf.kind == "cases" and pf.sheet == "5月"
    assert pf.frame["_row"].to_list() == [5, 6, 8]
    assert pf.raw["_row"].to_list() == [5, 6, 8]
    assert pf.frame["case_id"].to_list() == ["BJ0000", "BJ0001", "BJ0002"]
    assert pf.frame["accepted_at"].to_list()[2] == dt.datetime(2024, 5, 3, 10)
    assert pf.ignored_columns == ["序号"]
    assert pf.headers["case_id"] == "办件编号"
    assert pf.frame.schema["_row"] == pl.Int64
    assert pf.problems == []


def test_total_row_in_the_second_column_and_subtotal_are_dropped(tmp_path):
    rows = [["序号", *CASE_HEADER], [1, *case_rows(1)[0]], [None, "小计", None], [None, "总 计", None, None, None, None, None],
            [2, *case_rows(2)[1]], [None, None, None, None, None, "合计：2 件"],
            [3, "BJ9", "总计划001", "小计划科", "窗口", "2024-05-03", "在办"]]  # fmt: skip
    pf = read_file(write_xlsx(tmp_path / "a.xlsx", {"s": rows}), "a.xlsx")
    assert pf.frame["_row"].to_list() == [2, 5, 7]
    assert pf.frame["item_code"].to_list()[2] == "总计划001"


def test_dates_as_excel_cells_serials_and_text(tmp_path):
    header = ["办件编号", "事项编码", "实施部门", "申请渠道", "受理时间", "办结时间", "办理状态"]
    when = [
        dt.datetime(2024, 5, 3, 14, 22, 5),
        45415.6,
        "2024-05-03 14:22:05",
        "2024/5/3 14:22",
        "2024年5月3日",
        "20240503",
        dt.date(2024, 5, 3),
        "不知道",
    ]
    rows = [header] + [[f"B{i}", "I1", "局", "窗口", w, None if i % 2 else "2024-05-10", "已办结"] for i, w in enumerate(when)]
    pf = read_file(write_xlsx(tmp_path / "d.xlsx", {"s": rows}), "d.xlsx")
    assert pf.frame["accepted_at"].to_list() == [
        dt.datetime(2024, 5, 3, 14, 22, 5),
        dt.datetime(2024, 5, 3, 14, 24),
        dt.datetime(2024, 5, 3, 14, 22, 5),
        dt.datetime(2024, 5, 3, 14, 22),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3),
        dt.datetime(2024, 5, 3),
        None,
    ]
    assert pf.raw["accepted_at"].to_list()[1] == "45415.6"
    assert pf.raw["accepted_at"].to_list()[7] == "不知道"  # written but unparseable: raw kept, frame null
    assert pf.frame["completed_at"].to_list()[:2] == [dt.datetime(2024, 5, 10), None]
    assert pf.frame.schema["accepted_at"] == pl.Datetime("us")


def test_limits_with_units_fill_the_unit_field(tmp_path):
    header = [*CASE_HEADER, "法定时限（工作日）", "承诺时限", "承诺时限单位", "特别程序时长", "跑动次数"]
    limits = [
        ("20个工作日", "即办", None, "5天", "3个"),
        ("10个自然日", "10个自然日", "工作日", "0", "1"),
        (20, 15, "自然日", None, 2),
        ("5天", "3个工作日", None, "1.5", "很多"),
    ]
    rows = [header] + [[*r, *lim] for r, lim in zip(case_rows(4), limits, strict=True)]
    pf = read_file(write_xlsx(tmp_path / "l.xlsx", {"s": rows}), "l.xlsx")
    f = pf.frame
    assert f["legal_limit"].to_list() == [20.0, 10.0, 20.0, 5.0]
    assert f["legal_limit_unit"].to_list() == ["工作日", "自然日", None, None]  # unit column absent
    assert "legal_limit_unit" not in pf.raw.columns and "legal_limit_unit" not in pf.headers
    assert f["promised_limit"].to_list() == [0.0, 10.0, 15.0, 3.0]
    assert f["promised_limit_unit"].to_list() == [None, "工作日", "自然日", "工作日"]  # the column wins when filled
    assert f["suspended_days"].to_list() == [5.0, 0.0, None, 1.5]
    assert f["visits"].to_list() == [3, 1, 2, None]
    assert f.schema["visits"] == pl.Int64
    assert pf.raw["visits"].to_list() == ["3个", "1", "2", "很多"]
    assert pf.headers["legal_limit"] == "法定时限（工作日）"


def test_aliases_spaces_width_and_units_in_headers(tmp_path):
    header = [" 申办流水号 ", "实施编码", "\u3000受理部门", "申请 方式", "受理时间(北京时间)", "办件状态", "法定时限(工作日)", "网点"]
    rows = [header, ["B1", "I1", "局", "移动端", "2024-05-03", "已办结", "20", "一号窗口"]]
    pf = read_file(write_xlsx(tmp_path / "h.xlsx", {"s": rows}), "h.xlsx")
    assert pf.kind == "cases"
    assert pf.frame.row(0, named=True) | {} == {
        "_row": 2, "case_id": "B1", "item_code": "I1", "department": "局", "channel": "移动端",
        "accepted_at": dt.datetime(2024, 5, 3), "status": "已办结", "legal_limit": 20.0, "legal_limit_unit": None,
    }  # fmt: skip
    assert pf.headers["case_id"] == "申办流水号"
    assert pf.headers["department"] == "受理部门"
    assert pf.ignored_columns == ["网点"]


def test_allowed_values_normalised_in_a_file_unknown_kept(tmp_path):
    header = [*CASE_HEADER, "监察结果"]
    base = case_rows(1)[0]
    rows = [header]
    for status, sup in [(" 已办结 ", "黄牌(已撤销)"), ("已 办结", "正常"), ("办结", "红牌 "), ("在办", "蓝牌")]:
        rows.append([*base[:5], status, sup])
    pf = read_file(write_xlsx(tmp_path / "v.xlsx", {"s": rows}), "v.xlsx")
    assert pf.frame["status"].to_list() == ["已办结", "已办结", "办结", "在办"]
    assert pf.frame["supervision"].to_list() == ["黄牌（已撤销）", "正常", "红牌", "蓝牌"]
    assert pf.raw["status"].to_list()[0] == " 已办结 "


def test_items_depth_booleans_and_counts(tmp_path):
    header = ["事项编码", "事项名称", "实施部门", "网上办理深度", "是否网办", "到办事现场次数", "申请材料数", "是否进驻大厅"]
    data = [
        ("I1", "Ⅳ", "是", "0", "3个", "是"),
        ("I2", "三级", "否", "1次", "5", "否"),
        ("I3", "全程网办（Ⅳ级）", "Y", 2, 1, "N"),
        ("I4", "II", "1", "-", None, "0"),
        ("I5", 1, "true", "0", "2", "false"),
        ("I6", "五级", "可以", "0", "2", "是"),
    ]
    rows = [header] + [[code, "事项", "局", depth, online, visits, mats, hall] for code, depth, online, visits, mats, hall in data]
    pf = read_file(write_xlsx(tmp_path / "i.xlsx", {"s": rows}), "i.xlsx")
    assert pf.kind == "items"
    f = pf.frame
    assert f["online_depth"].to_list() == [4, 3, 4, 2, 1, None]
    assert f.schema["online_depth"] == pl.Int8
    assert f["online_available"].to_list() == [True, False, True, True, True, None]
    assert f["visits_required"].to_list() == [0, 1, 2, None, 0, 0]
    assert pf.raw["visits_required"].to_list()[3] is None  # "-" is a placeholder, not an unparseable value
    assert f["materials_count"].to_list() == [3, 5, 1, None, 2, 2]
    assert f["in_hall"].to_list() == [True, False, False, False, False, True]


def test_evaluations_ratings_and_active(tmp_path):
    header = ["评价编号", "事项编码", "评价等级", "评价时间", "是否主动评价", "评价渠道"]
    data = [("非常满意", "是", "pc端"), ("2", "否", "评价器"), ("基本满意", "主动评价", "短信"), (5, "默认好评", "微信")]
    rows = [header] + [[f"P{i}", "I1", r, "2024-05-11 10:00", a, c] for i, (r, a, c) in enumerate(data)]
    pf = read_file(write_xlsx(tmp_path / "e.xlsx", {"s": rows}), "e.xlsx")
    assert pf.kind == "evaluations"
    assert pf.frame["rating"].to_list() == [5, 2, 3, 5]
    assert pf.frame.schema["rating"] == pl.Int8
    assert pf.frame["active"].to_list() == [True, False, True, False]
    assert pf.frame["eval_channel"].to_list() == ["PC端", "评价器", "短信", "微信"]


def test_hotline_file(tmp_path):
    rows = [["工单编号", "承办区县", "承办部门", "工单类型", "来电时间", "要求办结时间", "办结时间", "回访结果"],
            ["G1", "甲区", "区住建局", "投诉", "2024-05-03 09:00", "2024-05-08 18:00", None, "满意"]]  # fmt: skip
    pf = read_file(write_xlsx(tmp_path / "g.xlsx", {"s": rows}), "g.xlsx")
    assert pf.kind == "hotline"
    assert pf.frame.row(0, named=True)["due_at"] == dt.datetime(2024, 5, 8, 18)
    assert pf.frame["district"].to_list() == ["甲区"]


def test_several_districts_and_no_district_column(tmp_path):
    header = ["所属区县", *CASE_HEADER]
    rows = [header, ["甲区", *case_rows(2)[0]], ["乙区", *case_rows(2)[1]]]
    pf = read_file(write_xlsx(tmp_path / "m.xlsx", {"s": rows}), "m.xlsx")
    assert pf.frame["district"].to_list() == ["甲区", "乙区"]
    pf = read_file(write_xlsx(tmp_path / "n.xlsx", {"s": [CASE_HEADER, *case_rows(2)]}), "n.xlsx")
    assert "district" not in pf.frame.columns and "district" not in pf.raw.columns


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
@pytest.mark.parametrize("sep", [",", "\t"])
def test_csv_encodings_and_separators(encoding, sep):
    rows = [["XX区2024年5月办件明细表"], ["所属区县", *CASE_HEADER, "法定时限"],
            ["示例区", *case_rows(2)[0], "20个工作日"], ["样例区", *case_rows(2)[1], "即办"], ["合计", "2"]]  # fmt: skip
    pf = read_file(csv_bytes(rows, encoding=encoding, sep=sep), "明细.csv")
    assert pf.kind == "cases" and pf.sheet is None
    assert pf.frame["_row"].to_list() == [3, 4]
    assert pf.frame["district"].to_list() == ["示例区", "样例区"]
    assert pf.frame["accepted_at"].to_list() == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 2, 10)]
    assert pf.frame["legal_limit"].to_list() == [20.0, 0.0]
    assert pf.frame["legal_limit_unit"].to_list() == ["工作日", None]
    assert pf.problems == []


@pytest.mark.parametrize("name", ["明细.tsv", "明细.txt", "明细.TSV"])
def test_tab_separated_exports_named_tsv_or_txt_are_read_without_warnings(name):
    rows = [["所属区县", *CASE_HEADER], ["示例区", *case_rows(2)[0]], ["样例区", *case_rows(2)[1]]]
    pf = read_file(csv_bytes(rows, encoding="gb18030", sep="\t"), name)
    assert pf.kind == "cases" and pf.frame["_row"].to_list() == [2, 3]
    assert pf.frame["district"].to_list() == ["示例区", "样例区"]
    assert pf.problems == []


def test_csv_blank_lines_and_quoted_newlines_keep_row_numbers():
    text = "办件编号,事项编码,实施部门,申请渠道,受理时间,办理状态\n" \
           "B1,I1,\"区市场\n监管局\",窗口,2024-05-03,已办结\n" \
           "\n" \
           "B2,I1,局,窗口,20240504,在办\n" \
           "B3,I1,局,窗口,2024/5/5,在办,多出的一列\n"  # fmt: skip
    pf = read_file(text.encode("gbk"), "a.csv")
    assert pf.frame["_row"].to_list() == [2, 4, 5]
    assert pf.frame["department"].to_list() == ["区市场\n监管局", "局", "局"]
    assert pf.frame["accepted_at"].to_list()[1] == dt.datetime(2024, 5, 4)


def test_csv_with_old_mac_line_ends():
    pf = read_file(csv_bytes([CASE_HEADER, *case_rows(2)]).replace(b"\r\n", b"\r"), "a.csv")
    assert pf.frame["_row"].to_list() == [2, 3]


def test_xlsx_that_is_really_csv_is_read_as_csv_with_a_warning():
    pf = read_file(csv_bytes([CASE_HEADER, *case_rows(2)], encoding="gbk"), "明细.xlsx")
    assert pf.frame["case_id"].to_list() == ["BJ0000", "BJ0001"]
    assert [(p.severity, p.rule) for p in pf.problems] == [(WARNING, "extension_mismatch")]
    assert "CSV" in pf.problems[0].message


def test_csv_holding_a_workbook_is_read_as_xlsx_with_a_warning(tmp_path):
    pf = read_file(xlsx_bytes(tmp_path, [CASE_HEADER, *case_rows(1)]), "明细.csv")
    assert pf.frame.height == 1 and pf.sheet == "Sheet1"
    assert [p.rule for p in pf.problems] == ["extension_mismatch"]


def test_the_data_sheet_is_found_after_an_instructions_sheet(tmp_path):
    sheets = {"填写说明": [["字段", "说明"], ["办件编号", "唯一编号"], ["受理时间", "日期"]], "数据": [CASE_HEADER, *case_rows(2)]}
    pf = read_file(write_xlsx(tmp_path / "s.xlsx", sheets), "s.xlsx")
    assert pf.sheet == "数据" and pf.frame.height == 2
    sheets = {"空表": [CASE_HEADER], "图表": [["无关"]], "数据": [CASE_HEADER, *case_rows(1)]}
    assert read_file(write_xlsx(tmp_path / "t.xlsx", sheets), "t.xlsx").sheet == "数据"


def test_read_from_bytes_path_and_file_object_agree(tmp_path):
    path = write_xlsx(tmp_path / "x.xlsx", {"s": [CASE_HEADER, *case_rows(2)]})
    a = read_file(path, "x.xlsx")
    b = read_file(path.read_bytes(), "x.xlsx")
    c = read_file(io.BytesIO(path.read_bytes()), "x.xlsx")
    assert a.sha256 == b.sha256 == c.sha256
    assert a.frame.equals(b.frame) and b.frame.equals(c.frame)


def test_kind_override_reads_a_file_detection_cannot_place(tmp_path):
    path = write_xlsx(tmp_path / "k.xlsx", {"s": [["办件编号", "受理时间"], ["B1", "2024-05-03"]]})
    with pytest.raises(ReadError) as err:
        read_file(path, "k.xlsx")
    assert err.value.rule == "unknown_kind"
    pf = read_file(path, "k.xlsx", kind="cases")
    assert pf.kind == "cases" and pf.frame.columns == ["_row", "case_id", "accepted_at"]


def test_duplicate_columns_keep_the_canonical_header_and_warn(tmp_path):
    rows = [["申办流水号", *CASE_HEADER], ["X1", *case_rows(1)[0]]]
    pf = read_file(write_xlsx(tmp_path / "dup.xlsx", {"s": rows}), "dup.xlsx")
    assert pf.frame["case_id"].to_list() == ["BJ0000"]
    assert pf.headers["case_id"] == "办件编号"
    assert pf.ignored_columns == ["申办流水号"]
    assert [(p.severity, p.rule, p.column) for p in pf.problems] == [(WARNING, "duplicate_column", "申办流水号")]


def test_raw_not_null_and_frame_null_exactly_for_unparseable_cells(tmp_path):
    rows = [[*CASE_HEADER, "法定时限", "跑动次数"],
            ["B1", "I1", "局", "窗口", "2024-13-01", "已办结", "很快", "-"],
            ["B2", "I1", "局", "窗口", " ", "已办结", "20", "x次"]]  # fmt: skip
    pf = read_file(write_xlsx(tmp_path / "u.xlsx", {"s": rows}), "u.xlsx")
    bad = {
        (row, name)
        for name in pf.raw.columns[1:]
        for row, r, f in zip(pf.raw["_row"], pf.raw[name], pf.frame[name], strict=True)
        if r is not None and f is None
    }
    assert bad == {(2, "accepted_at"), (2, "legal_limit"), (3, "visits")}
    assert pf.raw["accepted_at"].to_list() == ["2024-13-01", None]


# --- formulas -------------------------------------------------------------------------------------


def test_formula_cells_in_data_are_errors_with_row_and_column(tmp_path):
    rows = [
        [Formula('="XX区"&"明细"', "XX区明细")],
        ["序号", *CASE_HEADER],
        [Formula("=1", 1), *case_rows(2)[0]],  # a formula in an ignored column
        [2, "BJ0001", "I1", "区市场监管局", "窗口", Formula('="2024-05-02 10:00:00"', "2024-05-02 10:00:00"), "已办结"],
    ]
    pf = read_file(write_xlsx(tmp_path / "f.xlsx", {"s": rows}, first_col=1), "f.xlsx")
    assert pf.frame["accepted_at"].to_list()[1] == dt.datetime(2024, 5, 2, 10)  # cached value is read
    assert [(p.severity, p.rule, p.row, p.column, p.value) for p in pf.problems] == [
        (ERROR, "formula_cell", 4, "受理时间", "2024-05-02 10:00:00")
    ]
    assert "公式" in pf.problems[0].message


def test_shared_formulas_are_found(tmp_path):
    rows = [CASE_HEADER] + [[f"B{i}", Formula('="I"&"1"', "I1"), "局", "窗口", "2024-05-03", "在办"] for i in range(3)]
    path = write_xlsx(tmp_path / "shared.xlsx", {"s": rows})
    src = zipfile.ZipFile(path)
    xml = src.read("xl/worksheets/sheet1.xml").decode()
    first, rest = xml.split('<f>"I"&amp;"1"</f>', 1)
    xml = first + '<f t="shared" ref="B2:B4" si="0">"I"&amp;"1"</f>' + rest.replace('<f>"I"&amp;"1"</f>', '<f t="shared" si="0"/>')
    assert xml.count("<f ") == 3
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, xml if info.filename == "xl/worksheets/sheet1.xml" else src.read(info))
    pf = read_file(out.getvalue(), "shared.xlsx")
    assert pf.frame["item_code"].to_list() == ["I1"] * 3
    assert [(p.rule, p.row, p.column) for p in pf.problems] == [("formula_cell", r, "事项编码") for r in (2, 3, 4)]


def test_many_formula_cells_are_listed_then_counted(tmp_path):
    rows = [CASE_HEADER] + [[Formula(f'="B{i}"', f"B{i}"), "I1", "局", "窗口", "2024-05-03", "在办"] for i in range(130)]
    pf = read_file(write_xlsx(tmp_path / "many.xlsx", {"s": rows}), "many.xlsx")
    assert len(pf.problems) == 101
    assert [p.row for p in pf.problems[:3]] == [2, 3, 4]
    assert pf.problems[-1].row is None and "30" in pf.problems[-1].message


# --- files that cannot be read --------------------------------------------------------------------


def read_error(data: bytes | Path, name: str = "a.xlsx", **kw: Any) -> ReadError:
    with pytest.raises(ReadError) as err:
        read_file(data, name, **kw)
    assert err.value.message and err.value.message == str(err.value)
    return err.value


def test_empty_file(tmp_path):
    assert read_error(b"").rule == "file_empty"
    assert read_error(b"\r\n \r\n", "a.csv").rule == "file_empty"
    (tmp_path / "e.csv").write_bytes(b"")
    assert read_error(tmp_path / "e.csv", "e.csv").rule == "file_empty"
    assert read_error(write_xlsx(tmp_path / "e.xlsx", {"s": []})).rule == "file_empty"
    assert read_error(b",,,\r\n,,\r\n", "a.csv").rule == "file_empty"


def test_header_only_is_rejected(tmp_path):
    err = read_error(write_xlsx(tmp_path / "h.xlsx", {"s": [["标题"], CASE_HEADER, [], ["合计", "0"]]}))
    assert err.rule == "no_data_rows" and "工作表“s”只有表头（第 2 行）" in err.message
    assert read_error(csv_bytes([CASE_HEADER]), "h.csv").rule == "no_data_rows"


def test_truncated_xlsx(tmp_path):
    data = xlsx_bytes(tmp_path, [CASE_HEADER, *case_rows(50)])
    err = read_error(data[: len(data) // 2])
    assert err.rule == "file_corrupt" and "损坏" in err.message


def test_zip_member_lying_about_its_size_is_corrupt(tmp_path):
    data = bytearray(xlsx_bytes(tmp_path, [CASE_HEADER, *case_rows(200)]))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("xl/worksheets/sheet1.xml")
    # patch the declared uncompressed size in the central directory entry of the worksheet
    entry = data.find(b"xl/worksheets/sheet1.xml", data.find(b"PK\x01\x02")) - 46
    assert data[entry : entry + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, entry + 24, info.file_size // 10)
    assert read_error(bytes(data)).rule == "file_corrupt"


def test_zip_bomb_by_ratio_and_by_declared_size(tmp_path):
    good = xlsx_bytes(tmp_path, [CASE_HEADER, *case_rows(2)])
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info))
        z.writestr("xl/worksheets/sheet2.xml", b" " * (8 << 20))
    err = read_error(out.getvalue())
    assert err.rule == "zip_bomb" and "压缩" in err.message

    data = bytearray(good)
    entry = data.find(b"xl/worksheets/sheet1.xml", data.find(b"PK\x01\x02")) - 46
    struct.pack_into("<I", data, entry + 24, 600 << 20)  # declares 600 MB unpacked
    assert read_error(bytes(data)).rule == "zip_bomb"


def test_password_protected_xlsx(tmp_path):
    data = ole_file({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00", "EncryptedPackage": b"\x01" * 5000})
    err = read_error(data, "加密.xlsx")
    assert err.rule == "file_encrypted" and "密码" in err.message


def test_ole_file_that_is_not_a_workbook_is_corrupt():
    assert read_error(ole_file({"Foo": b"bar"}), "a.xls").rule == "file_corrupt"


def test_file_over_max_bytes(tmp_path):
    path = write_xlsx(tmp_path / "big.xlsx", {"s": [CASE_HEADER, *case_rows(3)]})
    size = path.stat().st_size
    err = read_error(path, max_bytes=size - 1)
    assert err.rule == "file_too_large" and f"{size:,} 字节" in err.message and f"{size - 1:,} 字节" in err.message
    err = read_error(b"x" * (3 << 20), "a.csv", max_bytes=2 << 20)
    assert err.message.startswith("文件大小为 3.0 MB，超过上传上限 2.0 MB")
    assert read_error(path.read_bytes(), max_bytes=1000).rule == "file_too_large"
    assert read_file(path, "big.xlsx", max_bytes=size).frame.height == 3


def test_headers_matching_no_kind(tmp_path):
    err = read_error(write_xlsx(tmp_path / "x.xlsx", {"s": [["姓名", "性别"], ["张三", "男"]]}))
    assert err.rule == "unknown_kind" and err.message.startswith("无法识别文件类型")
    err = read_error(csv_bytes([["所属区县", "办件类型", "申请时间"], ["甲区", "即办件", "2024-05-03"]]), "x.csv")
    assert err.rule == "unknown_kind" and "“所属区县”" in err.message


def test_kind_given_but_file_is_another_kind(tmp_path):
    rows = [["评价编号", "事项编码", "评价等级", "评价时间", "是否主动评价"], ["P1", "I1", "满意", "2024-05-11", "是"]]
    err = read_error(write_xlsx(tmp_path / "e.xlsx", {"s": rows}), kind="cases")
    assert err.rule == "kind_mismatch" and "好差评" in err.message and "办件明细" in err.message
    err = read_error(write_xlsx(tmp_path / "x.xlsx", {"s": [["姓名", "性别"], ["张三", "男"]]}), kind="hotline")
    assert err.rule == "header_not_found" and "工单编号" in err.message


def test_unknown_kind_name_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="未知的数据类型"):
        read_file(b"x", "a.csv", kind="nope")


def test_other_formats_are_refused():
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    assert read_error(docx.getvalue(), "a.xlsx").rule == "unsupported_format"
    html = "<html><body><table><tr><td>办件编号</td></tr></table></body></html>".encode()
    err = read_error(html, "export.xls")
    assert err.rule == "unsupported_format" and "HTML" in err.message
    assert read_error(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a.png").rule == "unsupported_format"
