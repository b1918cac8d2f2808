"""Builders for upload files and the corpus of bad files.

Files are generated rather than checked in: each case is a few lines here, reviewable in a diff, and
the big ones (100 000 rows, zip bomb) cost nothing in the repository.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from datasets.domain.schema import KINDS
from datasets.intake.parsed import ParsedFile
from datasets.intake.parsing import parse_field

DISTRICT_A, DISTRICT_B = "甲区", "乙区"

# --- valid rows (cell text keyed by canonical header) --------------------------------------------


def case_row(i: int = 1, **over: str) -> dict[str, str]:
    row = {
        "办件编号": f"BJ{i:06d}",
        "事项编码": "I1",
        "事项名称": "食品经营许可",
        "所属区县": DISTRICT_A,
        "实施部门": "区市场监管局",
        "申请渠道": "窗口",
        "办件类型": "承诺件",
        "受理时间": "2024-05-03 10:00:00",
        "办结时间": "2024-05-08 16:00:00",
        "办理状态": "已办结",
        "法定时限": "20",
        "承诺时限": "10",
    }
    row.update(over)
    return row


def item_row(i: int = 1, **over: str) -> dict[str, str]:
    row = {
        "事项编码": f"I{i}",
        "事项名称": f"事项{i}",
        "所属区县": DISTRICT_A,
        "实施部门": "区市场监管局",
        "事项类型": "行政许可",
        "办件类型": "承诺件",
        "法定时限": "20",
        "承诺时限": "10",
        "网上办理深度": "Ⅳ",
        "到办事现场次数": "0",
        "申请材料数": "3",
        "是否进驻大厅": "是",
    }
    row.update(over)
    return row


def evaluation_row(i: int = 1, **over: str) -> dict[str, str]:
    row = {
        "评价编号": f"PJ{i:06d}",
        "办件编号": f"BJ{i:06d}",
        "事项编码": "I1",
        "所属区县": DISTRICT_A,
        "评价渠道": "移动端",
        "评价等级": "满意",
        "评价时间": "2024-05-11 10:00:00",
        "是否主动评价": "是",
    }
    row.update(over)
    return row


def hotline_row(i: int = 1, **over: str) -> dict[str, str]:
    row = {
        "工单编号": f"GD{i:06d}",
        "所属区县": DISTRICT_A,
        "承办单位": "区住建局",
        "诉求类型": "咨询",
        "受理时间": "2024-05-03 09:00:00",
        "办理时限": "2024-05-08 18:00:00",
        "办结时间": "2024-05-06 11:30:00",
        "满意度": "满意",
    }
    row.update(over)
    return row


ROW_BUILDERS: dict[str, Callable[..., dict[str, str]]] = {
    "cases": case_row,
    "items": item_row,
    "evaluations": evaluation_row,
    "hotline": hotline_row,
}


def rows(kind: str, n: int, **over: str) -> list[dict[str, str]]:
    return [ROW_BUILDERS[kind](i, **over) for i in range(1, n + 1)]


# --- files ----------------------------------------------------------------------------------------


def _headers(table: Sequence[dict[str, str]], headers: Sequence[str] | None) -> list[str]:
    if headers is not None:
        return list(headers)
    out: list[str] = []
    for row in table:
        out += [h for h in row if h not in out]
    return out


def csv_bytes(table: Sequence[dict[str, str]], *, headers: Sequence[str] | None = None, encoding: str = "utf-8",
              title: str | None = None, delimiter: str = ",") -> bytes:
    cols = _headers(table, headers)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    if title:
        writer.writerow([title])
    writer.writerow(cols)
    for row in table:
        writer.writerow([row.get(c, "") for c in cols])
    return buf.getvalue().encode(encoding)


def xlsx_bytes(table: Sequence[dict[str, Any]], *, headers: Sequence[str] | None = None, title: str | None = None,
               formulas: dict[tuple[int, str], str] | None = None, constant_memory: bool = False) -> bytes:
    """An .xlsx with an optional title row; ``formulas`` maps (data row index, header) to a formula."""
    import xlsxwriter

    cols = _headers(table, headers)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"constant_memory": constant_memory, "strings_to_numbers": False,
                                   "strings_to_formulas": False})
    ws = wb.add_worksheet("Sheet1")
    r = 0
    if title:
        ws.write_string(0, 0, title)
        r = 1
    for c, h in enumerate(cols):
        ws.write_string(r, c, h)
    for i, row in enumerate(table, start=r + 1):
        for c, h in enumerate(cols):
            formula = (formulas or {}).get((i - r - 1, h))
            if formula is not None:
                ws.write_formula(i, c, formula)
                continue
            value = row.get(h)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                ws.write_string(i, c, value)
            else:
                ws.write(i, c, value)
    wb.close()
    return buf.getvalue()


def parsed_file(kind: str, table: Sequence[dict[str, str]], *, headers: Sequence[str] | None = None,
                first_row: int = 2, file_name: str = "test.xlsx") -> ParsedFile:
    """A ParsedFile as a reader would build it, from cell text under canonical headers."""
    k = KINDS[kind]
    cols = _headers(table, headers)
    by_header = {f.header: f for f in k.fields}
    fields = [by_header[h] for h in cols if h in by_header]
    raw = pl.DataFrame({f.name: [row.get(f.header, "") for row in table] for f in fields},
                       schema={f.name: pl.String for f in fields})
    frame = raw.select([parse_field(pl.col(f.name), f).alias(f.name) for f in fields]).with_columns(
        pl.int_range(first_row, first_row + raw.height, dtype=pl.Int64).alias("_row")
    )
    return ParsedFile(kind=kind, file_name=file_name, sha256="0" * 64, frame=frame, raw=raw,
                      headers={f.name: f.header for f in fields})


def zip_bomb_xlsx() -> bytes:
    """A well-formed .xlsx with a 64 MiB part that deflates to ~64 KB (ratio ~1000:1)."""
    base = zipfile.ZipFile(io.BytesIO(xlsx_bytes(rows("cases", 2))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in base.infolist():
            data = base.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                z.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                continue
            z.writestr(info, data)
        # a huge, highly compressible part the reader must refuse to inflate
        with z.open("xl/worksheets/sheet2.xml", "w", force_zip64=True) as fh:
            chunk = b" " * (1 << 20)
            for _ in range(64):
                fh.write(chunk)
    return out.getvalue()


def encrypted_xlsx() -> bytes:
    """What Excel writes for a password-protected workbook: an OLE compound file, not a zip."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 16 + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    body = "EncryptionInfo".encode("utf-16-le") + b"\x00" * 64 + "EncryptedPackage".encode("utf-16-le")
    return (header + b"\x00" * (512 - len(header)) + body).ljust(4096, b"\x00")


@dataclass
class BadFile:
    """One corpus entry: a file, how to upload it, and what must be said about it."""

    name: str  # test id
    file_name: str
    build: Callable[[], bytes]
    rule: str  # the rule that must be reported (as an ERROR)
    message: str  # a substring of the Chinese message
    kind: str | None = None
    district: str | None = None
    period: str | None = None
    row: int | None = None  # the Excel row the problem must name
    column: str | None = None  # the header as written that the problem must name
    max_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _col_letters(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def fast_xlsx_bytes(table: Sequence[dict[str, str]], *, headers: Sequence[str] | None = None,
                    title: str | None = None) -> bytes:
    """A minimal .xlsx (shared strings, like Excel writes) built directly: 100 000 rows in a few seconds.

    xlsxwriter needs ~20 s for that many cells; the big test files only need text cells.
    """
    cols = _headers(table, headers)
    letters = [_col_letters(i) for i in range(len(cols))]
    shared: dict[str, int] = {}
    lines = []

    def row_xml(n: int, values: Sequence[str]) -> str:
        cells = []
        for i, v in enumerate(values):
            if v:
                idx = shared.get(v)
                if idx is None:
                    idx = shared[v] = len(shared)
                cells.append(f'<c r="{letters[i]}{n}" t="s"><v>{idx}</v></c>')
        return f'<row r="{n}">{"".join(cells)}</row>'

    r = 1
    if title:
        lines.append(row_xml(r, [title]))
        r += 1
    lines.append(row_xml(r, cols))
    for i, row in enumerate(table, start=r + 1):
        lines.append(row_xml(i, [row.get(c, "") for c in cols]))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    strings = "".join(f"<si><t>{_xml_escape(v)}</t></si>" for v in shared)
    parts = {
        "[Content_Types].xml": (
            f'{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'{head}<Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            f'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'{head}<workbook xmlns="{main}" xmlns:r="{rel}">'
            f'<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{head}<Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": f'{head}<worksheet xmlns="{main}"><sheetData>{"".join(lines)}</sheetData></worksheet>',
        "xl/sharedStrings.xml": f'{head}<sst xmlns="{main}" count="{len(shared)}" uniqueCount="{len(shared)}">{strings}</sst>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, text in parts.items():
            z.writestr(name, text.encode("utf-8"))
    return out.getvalue()


def _patched_sheet(data: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """The .xlsx ``data`` with its first worksheet's XML passed through ``edit``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            body = src.read(info.filename)
            z.writestr(info.filename, edit(body) if info.filename == "xl/worksheets/sheet1.xml" else body)
    return out.getvalue()


def far_cell_xlsx() -> bytes:
    """A valid 办件 sheet plus one cell at XFD1048576 (~2.4 KB): the reader would allocate ~550 GB."""
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    return _patched_sheet(fast_xlsx_bytes(rows("cases", 3)), lambda b: b.replace(b"</sheetData>", far))


def blank_rows_xlsx(n: int = 1_000_000) -> bytes:
    """A valid 办件 sheet followed by ``n`` rows holding an empty text cell (~5 MB for a million)."""
    def edit(body: bytes) -> bytes:
        blank = b"".join(b'<row r="%d"><c r="A%d" t="inlineStr"><is><t></t></is></c></row>' % (r, r)
                         for r in range(10, n + 10))
        return body.replace(b"</sheetData>", blank + b"</sheetData>")

    return _patched_sheet(fast_xlsx_bytes(rows("cases", 3)), edit)


def formatted_blank_rows_xlsx(n: int = 1_000_000) -> bytes:
    """A valid 办件 sheet followed by ``n`` formatted cells without values (what Excel writes for a
    column formatted to the end): the reader skips them, so the file is valid."""
    def edit(body: bytes) -> bytes:
        blank = b"".join(b'<row r="%d"><c r="A%d" s="1"/></row>' % (r, r) for r in range(10, n + 10))
        return body.replace(b"</sheetData>", blank + b"</sheetData>")

    return _patched_sheet(fast_xlsx_bytes(rows("cases", 3)), edit)


def wide_csv() -> bytes:
    """A header row of 办件 columns followed by one line of 100 000 separators."""
    return csv_bytes(rows("cases", 2)) + b"," * 100_000 + b"\n"


# --- the corpus -----------------------------------------------------------------------------------


def _without(table: list[dict[str, str]], header: str) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != header} for r in table]


def _with(kind: str, n: int, index: int, **over: str) -> list[dict[str, str]]:
    table = rows(kind, n)
    table[index].update(over)
    return table


def _truncated() -> bytes:
    data = xlsx_bytes(rows("cases", 50))
    return data[: len(data) // 2]


def _not_a_workbook_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("[Content_Types].xml", "<Types/>")
    return out.getvalue()


def _garbage() -> bytes:
    return bytes((i * 7919 + 13) % 256 for i in range(4096))


def _html_as_xls() -> bytes:
    return "<html><body><table><tr><td>办件编号</td><td>事项编码</td></tr></table></body></html>".encode()


def _duplicates() -> bytes:
    table = rows("cases", 6)
    table[4]["办件编号"] = table[1]["办件编号"]
    return xlsx_bytes(table, title="甲区2024年5月办件明细表")


def _formulas() -> bytes:
    table = rows("cases", 4)
    return xlsx_bytes(table, formulas={(2, "法定时限"): "=10+10"})


def _future() -> bytes:
    return csv_bytes(_with("evaluations", 3, 2, 评价时间="2099-01-01 08:00:00"))


def _evaluations_file() -> bytes:
    return xlsx_bytes(rows("evaluations", 3))


CORPUS: list[BadFile] = [
    # unreadable files
    BadFile("empty_csv", "空文件.csv", lambda: b"", "file_empty", "空的"),
    BadFile("empty_xlsx", "空文件.xlsx", lambda: b"", "file_empty", "空的"),
    BadFile("blank_lines_csv", "空行.csv", lambda: b"\r\n\r\n  \r\n", "file_empty", "空的"),
    BadFile("header_only_xlsx", "只有表头.xlsx", lambda: xlsx_bytes([], headers=list(case_row())), "no_data_rows",
            "没有数据行"),
    BadFile("header_only_csv", "只有表头.csv", lambda: csv_bytes([], headers=list(hotline_row())), "no_data_rows",
            "没有数据行"),
    BadFile("truncated_xlsx", "下载中断.xlsx", _truncated, "file_corrupt", "损坏"),
    BadFile("encrypted_xlsx", "加密.xlsx", encrypted_xlsx, "file_encrypted", "密码"),
    BadFile("zip_bomb_xlsx", "炸弹.xlsx", zip_bomb_xlsx, "zip_bomb", "压缩炸弹"),
    BadFile("far_cell_xlsx", "远处单元格.xlsx", far_cell_xlsx, "sheet_too_large", "1,048,576 行 × 16,384 列"),
    BadFile("million_blank_rows_xlsx", "百万空行.xlsx", blank_rows_xlsx, "sheet_too_large", "6,000,000 个单元格"),
    BadFile("wide_csv", "超宽.csv", wide_csv, "sheet_too_large", "列"),
    BadFile("over_size_limit", "过大.csv", lambda: csv_bytes(rows("hotline", 400)), "file_too_large", "超过上传上限",
            max_bytes=20_000),
    BadFile("binary_garbage", "乱码.xlsx", _garbage, "unsupported_format", "上传 .xlsx"),
    BadFile("word_zip_named_xlsx", "其实是Word.xlsx", _not_a_workbook_zip, "unsupported_format", "不是 Excel 工作簿"),
    BadFile("html_named_xls", "网页.xls", _html_as_xls, "unsupported_format", "网页"),
    BadFile("unknown_headers", "其他表.csv", lambda: csv_bytes([{"姓名": "张三", "电话": "123"}]), "unknown_kind",
            "无法识别文件类型"),
    BadFile("wrong_kind", "好差评.xlsx", _evaluations_file, "kind_mismatch", "好差评", kind="cases"),
    # row-level errors
    BadFile("duplicate_ids", "重复编号.xlsx", _duplicates, "duplicate_id", "重复", row=7, column="办件编号"),
    BadFile("future_dates", "未来日期.csv", _future, "future_date", "晚于当前时间", row=4, column="评价时间"),
    BadFile("formula_cells", "公式.xlsx", _formulas, "formula_cell", "公式", row=4, column="法定时限"),
    BadFile("missing_required_column", "缺列.csv", lambda: csv_bytes(_without(rows("cases", 3), "受理时间")),
            "column_missing", "受理时间"),
    BadFile("missing_required_column_alias_named", "缺列2.csv",
            lambda: csv_bytes(_without(rows("cases", 3), "办件编号")), "column_missing", "申办流水号"),
    BadFile("required_cell_empty", "缺名称.csv", lambda: csv_bytes(_with("items", 3, 1, 事项名称="")),
            "required_empty", "必填", period="2024-05", row=3, column="事项名称"),
    BadFile("required_cell_placeholder", "占位符.csv", lambda: csv_bytes(_with("cases", 3, 2, 实施部门="-")),
            "required_empty", "必填", row=4, column="实施部门"),
    BadFile("unparseable_date", "坏日期.csv", lambda: csv_bytes(_with("cases", 3, 0, 受理时间="2024年13月5日")),
            "date_unparseable", "2024年13月5日", row=2, column="受理时间"),
    BadFile("unparseable_number", "坏数字.csv", lambda: csv_bytes(_with("cases", 3, 1, 法定时限="约二十天")),
            "number_unparseable", "约二十天", row=3, column="法定时限"),
    BadFile("completed_before_accepted", "办结早于受理.csv",
            lambda: csv_bytes(_with("cases", 3, 1, 办结时间="2024-05-02 08:00:00")), "completed_before_accepted",
            "早于", row=3, column="办结时间"),
    BadFile("promised_above_legal", "承诺超法定.csv", lambda: csv_bytes(_with("cases", 3, 2, 承诺时限="30")),
            "promised_above_legal", "超过", row=4, column="承诺时限"),
    BadFile("rating_out_of_scale", "评价等级6.csv", lambda: csv_bytes(_with("evaluations", 3, 0, 评价等级="6")),
            "rating_out_of_scale", "评价等级", row=2, column="评价等级"),
    BadFile("unknown_status", "未知状态.csv", lambda: csv_bytes(_with("cases", 3, 0, 办理状态="已归档")),
            "value_not_allowed", "已归档", row=2, column="办理状态"),
    BadFile("unknown_channel", "未知渠道.csv", lambda: csv_bytes(_with("cases", 3, 2, 申请渠道="电话")),
            "value_not_allowed", "电话", row=4, column="申请渠道"),
    BadFile("unknown_depth", "未知深度.csv", lambda: csv_bytes(_with("items", 2, 1, 网上办理深度="五级")),
            "value_not_allowed", "网上办理深度", period="2024-05", row=3, column="网上办理深度"),
    BadFile("unknown_active", "主动评价.csv", lambda: csv_bytes(_with("evaluations", 2, 1, 是否主动评价="也许")),
            "value_not_allowed", "也许", row=3, column="是否主动评价"),
    BadFile("negative_number", "负数.csv", lambda: csv_bytes(_with("items", 2, 0, 申请材料数="-2")),
            "number_negative", "负数", period="2024-05", row=2, column="申请材料数"),
    BadFile("unknown_district", "未知区县.csv", lambda: csv_bytes(_with("hotline", 3, 1, 所属区县="火星区")),
            "district_unknown", "火星区", row=3, column="所属区县"),
    BadFile("no_district_anywhere", "无区县.csv", lambda: csv_bytes(_without(rows("hotline", 3), "所属区县")),
            "district_missing", "未指定区县"),
    BadFile("uploader_district_unknown", "上传区县未配置.csv",
            lambda: csv_bytes(_without(rows("hotline", 3), "所属区县")), "district_unknown", "丙区", district="丙区"),
    BadFile("hotline_duplicate_ids", "热线重复.csv",
            lambda: csv_bytes(_with("hotline", 3, 2, 工单编号="GD000001")), "duplicate_id", "GD000001", row=4,
            column="工单编号"),
    BadFile("hotline_closed_before_received", "热线倒序.csv",
            lambda: csv_bytes(_with("hotline", 2, 0, 办结时间="2024-05-01")), "completed_before_accepted", "早于",
            row=2, column="办结时间"),
    BadFile("items_duplicate_codes", "重复事项.csv", lambda: csv_bytes(_with("items", 3, 2, 事项编码="I1")),
            "duplicate_id", "I1", period="2024-05", row=4, column="事项编码"),
    BadFile("items_without_period", "事项清单.csv", lambda: csv_bytes(rows("items", 3)), "period_missing", "适用月份"),
]


# --- hostile sheets for the size check (issue 23): each is a valid 办件 sheet plus one trick ------------

def _far(cell: bytes, row: bytes = b'<row r="1048576">') -> Callable[[], bytes]:
    """A builder: three valid rows, then ``row`` holding ``cell`` (before </sheetData>)."""
    def build() -> bytes:
        return _patched_sheet(fast_xlsx_bytes(rows("cases", 3)),
                              lambda b: b.replace(b"</sheetData>", row + cell + b"</row></sheetData>"))
    return build


far_cell_single_quotes = _far(b"<c r='XFD1048576' t='inlineStr'><is><t>x</t></is></c>", b"<row r='1048576'>")
far_cell_spaces = _far(b'<c r = "XFD1048576" t="inlineStr"><is><t>x</t></is></c>', b'<row r = "1048576" >')
far_cell_lowercase = _far(b'<c r="xfd1048576" t="inlineStr"><is><t>x</t></is></c>')
far_cell_second_attribute = _far(b'<c t="inlineStr" r="XFD1048576"><is><t>x</t></is></c>')
far_cell_prefixed = _far(b'<x:c xmlns:x="urn:x" r="XFD1048576"><x:v>1</x:v></x:c>')
# 16 384 cells without references in the last row: the reader places them at A…XFD.
unreferenced_far_row = _far(b"<c><v>1</v></c>" * 16_384)
# Rows compared as numbers: with text comparison "200000" > "1048576" and the sheet looked small.
row_200000_and_1048576 = _far(b'<c r="A1048576"><v>1</v></c>',
                              b'<row r="200000"><c r="L200000"><v>1</v></c></row><row r="1048576">')


def _with_parts(data: bytes, parts: dict[str, bytes], rels_target: str | None = None) -> bytes:
    """``data`` with members added or replaced, and optionally the first sheet's relationship target."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "xl/_rels/workbook.xml.rels" and rels_target is not None:
                body = body.replace(b'Target="worksheets/sheet1.xml"', f'Target="{rels_target}"'.encode())
            if info.filename not in parts:
                z.writestr(info.filename, body)
        for name, body in parts.items():
            z.writestr(name, body)
    return out.getvalue()


def _far_sheet_xml() -> bytes:
    return zipfile.ZipFile(io.BytesIO(far_cell_xlsx())).read("xl/worksheets/sheet1.xml")


def sheet_through_dotdot() -> bytes:
    """The sheet's relationship reaches the far-cell part through ".." (it resolves inside xl/)."""
    return _with_parts(fast_xlsx_bytes(rows("cases", 3)), {"xl/data/far.xml": _far_sheet_xml()},
                       rels_target="../xl/worksheets/../data/far.xml")


def sheet_outside_xl() -> bytes:
    """The sheet's relationship points outside xl/."""
    return _with_parts(fast_xlsx_bytes(rows("cases", 3)), {"far.xml": _far_sheet_xml()},
                       rels_target="../../far.xml")


def member_named_with_dotdot() -> bytes:
    """A zip member literally named "xl/x/../far.xml", and the relationship naming it as written."""
    return _with_parts(fast_xlsx_bytes(rows("cases", 3)), {"xl/x/../far.xml": _far_sheet_xml()},
                       rels_target="x/../far.xml")


def _sheet_edit(edit: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    return lambda: _patched_sheet(fast_xlsx_bytes(rows("cases", 3)), edit)


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
                  + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
                             for i in range(9))
                  + b"]>")
doctype_billion_laughs = _sheet_edit(
    lambda b: BILLION_LAUGHS + b[b.index(b"<worksheet"):].replace(b"<t>", b"<t>&j;", 1))
deeply_nested = _sheet_edit(lambda b: b.replace(b"</sheetData>", b"<x>" * 100_000 + b"</x>" * 100_000 + b"</sheetData>"))
huge_dimension = _sheet_edit(lambda b: b.replace(b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>'))


def giant_line_csv() -> bytes:
    """A 办件 header, then one 30 MB line without a line break (an unclosed quote to the end)."""
    return csv_bytes(rows("cases", 2)) + b'"' + b"x" * (30 << 20)


FAR = "1,048,576 行 × 16,384 列"
CORPUS += [
    # issue 23: spellings of the far cell that a regular expression missed (the reader then aborted)
    BadFile("far_cell_single_quotes", "单引号.xlsx", far_cell_single_quotes, "sheet_too_large", FAR),
    BadFile("far_cell_spaces_around_equals", "等号空格.xlsx", far_cell_spaces, "sheet_too_large", FAR),
    BadFile("far_cell_lowercase", "小写引用.xlsx", far_cell_lowercase, "sheet_too_large", FAR),
    BadFile("far_cell_second_attribute", "引用在后.xlsx", far_cell_second_attribute, "sheet_too_large", FAR),
    BadFile("far_cell_other_prefix", "前缀.xlsx", far_cell_prefixed, "sheet_too_large", FAR),
    BadFile("far_row_of_unreferenced_cells", "无引用整行.xlsx", unreferenced_far_row, "sheet_too_large", FAR),
    BadFile("rows_compared_as_numbers", "行号比较.xlsx", row_200000_and_1048576, "sheet_too_large",
            "1,048,576 行 × 12 列"),
    BadFile("sheet_through_dotdot", "上级路径.xlsx", sheet_through_dotdot, "sheet_too_large", FAR),
    BadFile("sheet_outside_xl", "工作簿外.xlsx", sheet_outside_xl, "file_corrupt", "工作簿以外"),
    BadFile("member_named_with_dotdot", "异常路径.xlsx", member_named_with_dotdot, "file_corrupt", "异常路径"),
    BadFile("doctype_billion_laughs", "实体炸弹.xlsx", doctype_billion_laughs, "file_corrupt", "文档类型声明"),
    BadFile("giant_single_line_csv", "超长行.csv", giant_line_csv, "file_corrupt", "未闭合的引号"),
]
