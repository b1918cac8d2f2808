"""Reading real exports (.xlsx, .xls, .csv and tab-separated .tsv/.txt) into canonical columns: see read_file().

The file's format is decided by its content, not its name (an ".xlsx" that is really CSV text is read
as CSV, with a warning). Every sheet or CSV is first read as a grid of cell text in which grid row i is
spreadsheet row i + 1, so row numbers stay those the user sees in Excel whatever precedes the header.
The header row is the row among the first HEADER_SCAN_ROWS that matches most fields of one kind; which
columns are which comes only from the declarations in datasets/domain/schema.py.

Decisions:
- a file with a header but no data rows is rejected (ReadError rule "no_data_rows");
- an .xlsx/.xls that holds CSV text, or a .csv that holds a workbook, is read by its content and gets a
  warning (rule "extension_mismatch");
- a formula in a data cell of a recognised column is an error (rule "formula_cell"): exports hold values,
  a formula means the file was edited by hand. Detected for .xlsx only (.xls has no cheap way);
- a cell that is blank or holds only a placeholder ("-", "/", "null"...) is empty: null in both ``raw``
  and ``frame``. Otherwise ``raw`` holds the cell text unchanged, so "raw not null but frame null" is
  exactly "written but unparseable";
- a time limit written with its unit ("20个工作日") fills the unit field where the unit column is absent
  (the unit then appears in ``frame`` only, not in ``raw`` nor ``headers``) or its cell is empty;
- total rows (合计/总计/小计 starting one of the first three columns, or the row's first filled cell) and
  blank rows are dropped wherever they are.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import os
import posixpath
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree
from xml.parsers import expat

import fastexcel
import polars as pl

from datasets.common.text import normalize, normalize_header
from datasets.domain.schema import KINDS, LIMIT, Kind
from datasets.domain.schema import kind as get_kind
from datasets.intake import parsing
from datasets.intake.parsed import ERROR, WARNING, ParsedFile, Problem, ReadError

MAX_BYTES = 50 * 2**20
MAX_UNPACKED = 500 * 2**20  # total uncompressed size of an .xlsx
MAX_RATIO = 200  # uncompressed ÷ compressed size of one member larger than 1 MB
# The spreadsheet reader allocates every cell of a sheet's used range (first to last row × first to
# last column), filled or not: one cell at XFD1048576 would need ~550 GB. Rows × columns of the range
# are therefore measured from the XML before the reader sees the file (CSV: lines × columns).
MAX_GRID_CELLS = 6_000_000  # e.g. 500 000 rows × 12 columns; ~400 MB at the reader's peak
MAX_COLUMNS = 1_000
HEADER_SCAN_ROWS = 30
TOTAL_SCAN_COLUMNS = 3
FORMULA_PROBLEMS = 100  # formula cells listed one by one; the rest are counted in one problem
CSV_SEPARATORS = (",", "\t", ";", "|")

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_TOTAL = r"^[\s\u3000]*[合总小][\s\u3000]*计(?:$|[\s\u3000:：(（\[【\d])"  # 合计, 总 计, 合计：12 件, 小计(件)
_EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".xlsb")



# --- header matching ------------------------------------------------------------------------------


@cache
def _lookup(kind_name: str) -> dict[str, tuple[str, bool]]:
    """Normalised header → (field name, is the canonical header) for one kind."""
    out: dict[str, tuple[str, bool]] = {}
    for f in KINDS[kind_name].fields:
        for i, h in enumerate(f.headers):
            out.setdefault(normalize_header(h), (f.name, i == 0))
    return out


def _match(cells: list[Any], kind_name: str) -> tuple[dict[int, str], list[int]]:
    """Which cells of a header row are which field: ({cell index: field}, duplicate cell indexes).

    When two columns name the same field the canonical header wins over an alias, else the first one.
    """
    lookup = _lookup(kind_name)
    mapping: dict[int, str] = {}
    canonical: dict[str, bool] = {}
    duplicates: list[int] = []
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        hit = lookup.get(normalize_header(cell))
        if hit is None:
            continue
        name, is_canonical = hit
        owner = next((c for c, n in mapping.items() if n == name), None)
        if owner is None:
            mapping[i] = name
            canonical[name] = is_canonical
        elif is_canonical and not canonical[name]:
            del mapping[owner]
            duplicates.append(owner)
            mapping[i] = name
            canonical[name] = True
        else:
            duplicates.append(i)
    return dict(sorted(mapping.items())), sorted(duplicates)


def _fit(headers: list[Any], kind_name: str) -> tuple[int, int, int]:
    """(score, required fields matched, fields matched) of a header row for one kind."""
    matched = set(_match(headers, kind_name)[0].values())
    required = {f.name for f in KINDS[kind_name].fields if f.required}
    hits = len(matched & required)
    score = 3 * hits + len(matched - required) - 2 * (len(required) - hits)
    return score, hits, len(matched)


def detect_kind(headers: list[str]) -> str | None:
    """The kind whose fields best match these header cells, or None when none fits.

    Required fields weigh most: each one found counts 3, each one missing −2, any other field 1. A
    kind needs at least two fields, one of them required, and a positive score.
    """
    best: tuple[tuple[int, int], str] | None = None
    for name in KINDS:
        score, hits, matched = _fit(list(headers), name)
        if matched < 2 or hits < 1 or score <= 0:
            continue
        if best is None or (score, hits) > best[0]:
            best = ((score, hits), name)
    return best[1] if best else None


def _header_row(rows: list[list[Any]]) -> int | None:
    """Index of the row (among the first rows given) matching most fields of some kind; ties: the first."""
    best, best_count = None, 1
    for i, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
        count = max(len(_match(cells, name)[0]) for name in KINDS)
        if count > best_count:
            best, best_count = i, count
    return best


# Labels of the title line that states when a file was exported (导出时间：2026-12-07 09:30).
EXPORT_TIME_LABELS = ("导出时间", "导出日期")


def export_date(rows: list[list[Any]]) -> dt.date | None:
    """The export date stated in the title rows above the header, if any: a cell starting with an
    EXPORT_TIME_LABELS label, its date after the label (after a colon) or in the next filled cell
    of the row. The date is read with the data cells' parser (parsing.parse_datetime); a cell it
    cannot read states nothing. Several: the earliest."""
    found: list[dt.date] = []
    for cells in rows:
        texts = [str(c).strip() for c in cells if c is not None and str(c).strip()]
        for i, text in enumerate(texts):
            key = normalize(text)
            label = next((lab for lab in EXPORT_TIME_LABELS if key.startswith(lab)), None)
            if label is None:
                continue
            # The value after the label (NFKC makes a full-width colon ":"); the rest keeps its spaces
            # unless the label itself was written with spaces in it.
            nfkc = unicodedata.normalize("NFKC", text).strip()
            at = nfkc.find(label)
            rest = nfkc[at + len(label):] if at >= 0 else key[len(label):]
            value = rest.strip().removeprefix(":").strip()
            if not value and i + 1 < len(texts):
                value = texts[i + 1]
            parsed = pl.Series("v", [value], dtype=pl.String).to_frame().select(
                parsing.parse_datetime(parsing.clean(pl.col("v"))))["v"][0] if value else None
            if parsed is not None:
                found.append(parsed.date())
    return min(found) if found else None


# --- reading the bytes ----------------------------------------------------------------------------


@dataclass
class _Grid:
    """One sheet (or a CSV) as text: String columns c0…; row i is spreadsheet row i + 1."""

    frame: pl.DataFrame
    columns: list[int]  # absolute column index (A = 0) of each grid column
    sheet: str | None = None
    sheet_path: str | None = None  # member of the .xlsx holding the sheet, for formula lookup


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} 字节"


def load_bytes(source: Any, max_bytes: int) -> bytes:
    """The bytes of a path, bytes or file-like upload; ReadError when missing, empty or over ``max_bytes``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ReadError(f"找不到或无法打开文件：{path.name}", "file_not_found") from exc
        if size > max_bytes:
            raise ReadError(_too_large(size, max_bytes), "file_too_large")
        data = path.read_bytes()
    elif hasattr(source, "getvalue"):  # io.BytesIO, Streamlit's UploadedFile
        data = bytes(source.getvalue())
    elif hasattr(source, "read"):
        data = bytes(source.read(max_bytes + 1))
    else:
        raise TypeError(f"cannot read {type(source).__name__}")
    if len(data) > max_bytes:
        raise ReadError(_too_large(len(data), max_bytes), "file_too_large")
    if not data.strip():
        raise ReadError("文件是空的，没有任何内容。请重新导出后上传。", "file_empty")
    return data


def _too_large(size: int, max_bytes: int) -> str:
    return f"文件大小为 {_mb(size)}，超过上传上限 {_mb(max_bytes)}。请按月份或区县拆分后分别上传。"


def _sniff(data: bytes) -> str:
    """zip | ole | text, by content."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:8] == _OLE_MAGIC:
        return "ole"
    return "text"


def _corrupt(detail: str = "") -> ReadError:
    extra = f"（{detail}）" if detail else ""
    return ReadError(
        f"文件已损坏或不完整，无法打开{extra}。请确认文件能在 Excel 中正常打开，或从系统重新导出后上传。",
        "file_corrupt",
    )


def _encrypted() -> ReadError:
    return ReadError(
        "文件设置了打开密码（已加密），无法读取。请在 Excel 中打开，在“文件 → 信息 → 保护工作簿”中删除密码后另存，再上传。",
        "file_encrypted",
    )


def _xml_parser(where: str) -> expat.XMLParserType:
    """An expat parser that refuses a document type declaration: an export never has one, and a DTD is
    how entity expansion (billion laughs) and external entities get in. Nothing else is resolved."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(*_: object) -> None:
        raise ReadError(
            # Plain Chinese for the staff member; ``where`` (the member inside the package) is for the log.
            "文件内部含有文档类型声明（实体定义），Excel 不会写出这样的内容，疑似异常文件，已拒绝读取。",
            "file_corrupt",
        )

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    return parser


def _small_xml(zf: zipfile.ZipFile, name: str) -> ElementTree.Element:
    """A small part (workbook, relationships) as a tree, after expat has checked it has no DTD."""
    data = zf.read(name)
    try:
        _xml_parser(name).Parse(data, True)
        return ElementTree.fromstring(data)
    except (expat.ExpatError, ElementTree.ParseError) as exc:
        raise _corrupt(f"“{name}”不是有效的 XML") from exc


def _canonical_member(name: str) -> bool:
    """A zip member name as Excel writes it: relative, "/"-separated, no "." or ".." segments."""
    parts = name.split("/")
    return not name.startswith("/") and "\\" not in name and all(p not in ("", ".", "..") for p in parts[:-1])


def _sheet_paths(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → worksheet member path, from xl/workbook.xml and its relationships.

    A relationship target is resolved against xl/ (OPC: relative to the workbook part; "/..." from the
    package root) and normalised; a sheet whose part lies outside xl/ is refused, so the part the size
    check measures is the part the reader loads.
    """
    try:
        book = _small_xml(zf, "xl/workbook.xml")
        rels = _small_xml(zf, "xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter() if r.tag.endswith("Relationship")}
    out: dict[str, str] = {}
    for el in book.iter():
        if not el.tag.endswith("}sheet"):
            continue
        rid = next((v for k, v in el.attrib.items() if k.endswith("}id")), None)
        target = targets.get(rid, "")
        if not target:
            continue
        path = posixpath.normpath(target[1:] if target.startswith("/") else posixpath.join("xl", target))
        if "\\" in target or not path.startswith("xl/"):
            raise _corrupt(f"工作表“{el.get('name', '')}”指向工作簿以外的位置“{target}”")
        out[el.get("name", "")] = path
    return out


def _column_number(letters: str) -> int:
    """A = 1, Z = 26, AA = 27 … (letters already checked to be ASCII)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


@dataclass
class _Extent:
    """How large the reader's grid for one worksheet will be, measured from its XML.

    calamine skips cells without a value (``<c r="A5" s="1"/>``, what formatting a whole column
    leaves), so only cells with content (a ``<v>`` or ``<is>`` child) count.
    """

    rows: int = 0  # last row of a cell with content
    columns: int = 0  # last column of a cell with content (A = 1)
    cells: int = 0  # cells with content

    @property
    def grid(self) -> int:
        return self.rows * max(self.columns, 1)


_DIGITS = "0123456789"
_SHEET_ELEMENTS = {"c": 1, "v": 2, "is": 2, "row": 3, "f": 4}


def _scan_sheet(stream: IO[bytes], name: str, found: list[tuple[int, int]], extent: _Extent) -> int:
    """Parse a worksheet's XML as the reader will (expat, streaming); measure the used range of the
    cells with content and append (row, column index) of each formula cell. Returns the size read.

    Positions follow the reader's rules: a cell's ``r`` reference wins, in any letter case; a cell
    without one is the next column of the current row, a ``<row>`` without ``r`` the next row.
    Elements are matched by local name, whatever their namespace prefix. Numbers are compared as
    numbers. A reference that is not letters then digits makes the file corrupt (no export writes
    one, and the reader's reading of it is not worth guessing). One handler call per element: the hot path (``<c>``, ``<v>``) is kept small.
    """
    kinds: dict[str, int] = {}
    columns_of: dict[str, int] = {}
    row, row_text, col, cell_row, pending = 0, "0", 0, 0, False
    rows = columns = cells = 0

    def bad(ref: str) -> ReadError:
        return _corrupt(f"单元格位置“{ref[:20]}”无效")

    def start(tag: str, attrs: list[str]) -> None:
        nonlocal row, row_text, col, cell_row, pending, rows, columns, cells
        # The two commonest tags first, without the lookup (a sheet is mostly <c><v>).
        k = 2 if tag == "v" else 1 if tag == "c" else kinds.get(tag)
        if k is None:
            k = kinds[tag] = _SHEET_ELEMENTS.get(tag.rpartition(":")[2], 0)
        if k == 2:  # <v>/<is>: the open cell has content
            if pending:
                pending = False
                cells += 1
                if cell_row > rows:
                    rows = cell_row
                if col > columns:
                    columns = col
        elif k == 1:  # <c>
            pending = True
            ref = attrs[1] if attrs and attrs[0] == "r" else next(
                (attrs[i + 1] for i in range(2, len(attrs), 2) if attrs[i] == "r"), None)
            if ref is None:
                col += 1
                cell_row = row
                return
            letters = ref.rstrip(_DIGITS)
            digits = ref[len(letters):]
            if digits == row_text:
                cell_row = row
            elif digits:
                cell_row = int(digits)
            else:
                raise bad(ref)
            number = columns_of.get(letters)
            if number is None:
                if not (0 < len(letters) <= 7 and letters.isascii() and letters.isalpha()):
                    raise bad(ref)
                number = columns_of[letters] = _column_number(letters)
            col = number
        elif k == 3:  # <row>
            ref = next((attrs[i + 1] for i in range(0, len(attrs), 2) if attrs[i] == "r"), None)
            if ref is None:
                row += 1
                row_text = str(row)
            elif ref.isascii() and ref.isdigit():
                row, row_text = int(ref), ref
            else:
                raise bad(ref)
            col = 0
        elif k == 4:  # <f>: a formula in the open cell
            found.append((cell_row, col - 1))

    parser = _xml_parser(name)
    parser.ordered_attributes = True
    parser.StartElementHandler = start
    size = 0
    try:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            _check_unpacked(size)
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise _corrupt(f"工作表 XML 格式错误：第 {exc.lineno} 行") from exc
    except ValueError as exc:  # int() of digits that are not ASCII ("１２")
        if isinstance(exc, ReadError):
            raise
        raise _corrupt("单元格位置无效") from exc
    extent.rows, extent.columns, extent.cells = rows, columns, cells
    return size


def _over(extent: _Extent) -> bool:
    return extent.grid > MAX_GRID_CELLS or extent.cells > MAX_GRID_CELLS or extent.columns > MAX_COLUMNS


def _too_many_cells(where: str, extent: _Extent) -> ReadError:
    rows, columns = extent.grid // max(extent.columns, 1), max(extent.columns, 1)
    return ReadError(
        f"{where}的数据区域为 {rows:,} 行 × {columns:,} 列（{extent.grid:,} 个单元格），"
        f"超过可读取的上限 {MAX_GRID_CELLS:,} 个单元格（最多 {MAX_COLUMNS:,} 列）。"
        "文件中可能有远处的单元格或大量空白行、空白列：请在 Excel 中删除数据区域以外的行和列"
        "（或只把数据区域复制到新工作簿）后另存再上传；数据确实这么多时，请按月份或区县拆分后分别上传。",
        "sheet_too_large",
    )


def _check_unpacked(size: int) -> None:
    if size > MAX_UNPACKED:
        raise ReadError(
            f"文件解压后超过 {_mb(MAX_UNPACKED)}，疑似异常文件（压缩炸弹），已拒绝读取。", "zip_bomb"
        )


def _inspect_xlsx(data: bytes) -> tuple[dict[str, str], dict[str, list[tuple[int, int]]]]:
    """Check an .xlsx before calamine sees it: integrity, encryption, unpacked size, size of each
    sheet's used range (MAX_GRID_CELLS, MAX_COLUMNS); find formula cells.

    Returns (sheet name → member path, member path → formula cells). Every member is decompressed
    once through zipfile, which stops at the declared size and checks the CRC, so a member that lies
    about its size fails here instead of exhausting memory in the parser. The sheet's ``<dimension>``
    element is not trusted either way: calamine sizes its grid from the cells, and so does this check.
    Every part a sheet of the workbook points to is measured, and every part under xl/worksheets/.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise _corrupt("压缩结构不完整") from exc
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        raise ReadError(
            "文件不是 Excel 工作簿（可能是 Word、WPS 或其他压缩文件）。请上传 .xlsx、.xls 或 .csv 格式的导出文件。",
            "unsupported_format",
        )
    odd = next((n for n in names if not _canonical_member(n)), None)
    if odd is not None:  # "xl/worksheets/../s.xml" would be a part no relationship resolves to
        raise _corrupt(f"压缩包内含有异常路径“{odd[:80]}”")
    _check_unpacked(sum(i.file_size for i in infos))  # declared sizes
    for i in infos:
        if i.flag_bits & 0x1:
            raise _encrypted()
        if i.file_size > 2**20 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ReadError(
                f"文件中的“{i.filename}”压缩比异常（{i.file_size // max(i.compress_size, 1)} 倍），"
                "疑似异常文件（压缩炸弹），已拒绝读取。",
                "zip_bomb",
            )
    paths = _sheet_paths(zf)
    sheets = set(paths.values()) | {n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml")}
    formulas: dict[str, list[tuple[int, int]]] = {}
    names_by_path = {v: k for k, v in paths.items()}
    total = 0
    try:
        for i in infos:
            with zf.open(i) as stream:
                if i.filename in sheets:
                    found: list[tuple[int, int]] = []
                    extent = _Extent()
                    total += _scan_sheet(stream, i.filename, found, extent)
                    if _over(extent):
                        raise _too_many_cells(f"工作表“{names_by_path.get(i.filename, i.filename)}”", extent)
                    formulas[i.filename] = found
                else:
                    while chunk := stream.read(8 << 20):
                        total += len(chunk)
            _check_unpacked(total)
    except ReadError:
        raise
    except zipfile.BadZipFile as exc:
        raise _corrupt("内容校验失败" if "CRC" in str(exc) else "压缩结构不完整") from exc
    except Exception as exc:  # zlib.error, EOFError, NotImplementedError (compression method)...
        raise _corrupt("解压失败") from exc
    return paths, formulas


def _excel_error(exc: Exception) -> ReadError:
    text = str(exc).lower()
    if "password" in text or "encrypt" in text:
        return _encrypted()
    return _corrupt("无法解析工作簿结构")


def _excel_grids(data: bytes, paths: dict[str, str]) -> Iterator[_Grid | ReadError]:
    """Each sheet as a grid, or the ReadError of a sheet calamine cannot load (a chart sheet...)."""
    try:
        reader = fastexcel.read_excel(data)
        names = reader.sheet_names
    except Exception as exc:  # fastexcel.FastExcelError, and anything calamine panics with
        raise _excel_error(exc) from exc
    for name in names:
        try:
            sheet = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string")
            frame = sheet.to_polars()
            columns = [c.absolute_index for c in sheet.available_columns()]
        except Exception as exc:
            yield _excel_error(exc)
            continue
        frame = frame.rename({old: f"c{i}" for i, old in enumerate(frame.columns)})
        yield _Grid(frame, columns, name, paths.get(name))


def _utf16_without_bom(sample: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" when a sample's NUL bytes sit at one parity: separators, digits and line
    ends are ASCII, and in UTF-16 each has a NUL byte (second in little-endian, first in big-endian)."""
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd >= half // 10 and even <= odd // 10:
        return "utf-16-le"
    if even >= half // 10 and odd <= even // 10:
        return "utf-16-be"
    return None


# Other encodings a Chinese-language export may be in (Taiwan/Hong Kong or Japanese systems): none of
# them is read, but naming the likely one tells the user what to change.
_FOREIGN_ENCODINGS = (("cp950", "Big5（繁体中文）"), ("cp932", "Shift-JIS（日文）"))


def _foreign_encoding(data: bytes) -> str | None:
    """The likely encoding of text that is neither UTF-8 nor GBK; None when it reads as GBK text.

    Read as GB18030 almost any double-byte text decodes, but GBK text is nearly all GB2312
    characters, while Big5 or Shift-JIS read that way gives mostly rare ones. Returns the name of the
    encoding that decodes the whole file (Shift-JIS when its reading has kana), "" when none does.
    """
    chars = [ch for ch in data[:65536].decode("gb18030", errors="ignore") if ord(ch) > 0x7F]
    if not chars:
        return None
    common = 0
    for ch in chars:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    if common >= 0.9 * len(chars):
        return None
    readings = {}
    for encoding, label in _FOREIGN_ENCODINGS:
        try:
            readings[label] = data.decode(encoding)
        except UnicodeDecodeError:
            continue
    japanese = readings.get("Shift-JIS（日文）")
    if japanese is not None and any("\u3040" <= ch <= "\u30ff" for ch in japanese[:65536]):
        return "Shift-JIS（日文）"
    return next(iter(readings), "")


def _encoding_error(encoding: str | None) -> ReadError:
    likely = f"，看起来是 {encoding}编码" if encoding else ""
    return ReadError(
        f"文件的文字编码不是 UTF-8 或 GBK{likely}，无法正确识别其中的文字。"
        "请用 Excel 或记事本将文件另存为 UTF-8 或 GBK 编码的 CSV（或另存为 .xlsx）后上传。",
        "encoding_unknown",
    )


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    elif b"\x00" in data[:8192]:
        utf16 = _utf16_without_bom(data[:8192])
        if utf16 is None:
            raise ReadError(
                "文件不是表格文件（内容为无法识别的二进制数据）。请上传 .xlsx、.xls 或 .csv 格式的导出文件。",
                "unsupported_format",
            )
        encodings = (utf16,)
    else:
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    if encodings[0].startswith("utf-16"):
        raise _encoding_error("UTF-16（内容不完整）")
    raise _encoding_error(_foreign_encoding(data))


def _read_as_gb18030(data: bytes) -> bool:
    """Whether _decode fell back to GB18030 for this text (no BOM, no NUL bytes, not UTF-8)."""
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _sample_rows(text: str, separator: str, limit: int) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text[: 1 << 20]), delimiter=separator)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows


def _csv_grid(data: bytes) -> _Grid:
    text = _decode(data)
    if "\n" not in text and "\r" in text:  # classic Mac line ends
        text = text.replace("\r", "\n")
    head = text[:4096].lstrip().lower()
    if head.startswith(("<!doctype html", "<html", "<table")) or ("<table" in head and "<td" in head):
        raise ReadError(
            "文件实际是网页（HTML）格式，不是真正的 Excel 或 CSV 文件（部分系统这样导出“.xls”）。"
            "请用 Excel 打开后“另存为” .xlsx 格式再上传。",
            "unsupported_format",
        )
    if head.startswith("<?xml") and "urn:schemas-microsoft-com:office:spreadsheet" in text[:4096]:
        raise ReadError("文件是旧版 XML 表格格式。请用 Excel 打开后“另存为” .xlsx 格式再上传。", "unsupported_format")

    def score(sep: str) -> tuple[int, int]:
        rows = _sample_rows(text, sep, HEADER_SCAN_ROWS)
        best = max((max(len(_match(r, k)[0]) for k in KINDS) for r in rows), default=0)
        return best, text[:65536].count(sep)

    separator = max(CSV_SEPARATORS, key=score)
    width = max((len(r) for r in _sample_rows(text, separator, 1000)), default=1)
    lines = text.count("\n") + 1
    if width > MAX_COLUMNS or lines * width > MAX_GRID_CELLS:
        raise _too_many_cells("CSV 文件", _Extent(rows=lines, columns=width))
    try:
        frame = pl.read_csv(
            text.encode("utf-8"),
            has_header=False,
            separator=separator,
            schema={f"c{i}": pl.String for i in range(width)},
            missing_columns="insert",
            truncate_ragged_lines=True,
            infer_schema=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise _corrupt("CSV 格式错误，可能有未闭合的引号") from exc
    return _Grid(frame, list(range(width)))


# --- from grid to canonical columns ---------------------------------------------------------------


def _unknown_kind(cells: list[Any] | None) -> ReadError:
    labels = "、".join(k.label for k in KINDS.values())
    if cells:
        named = [f"“{str(c).strip()}”" for c in cells if c is not None and str(c).strip()]
        shown = "、".join(named[:8]) + ("等" if len(named) > 8 else "")
        detail = f"找到的表头为 {shown}，与{labels}的列名都对不上"
    else:
        detail = f"前 {HEADER_SCAN_ROWS} 行中没有找到{labels}的表头"
    return ReadError(
        f"无法识别文件类型：{detail}。请确认上传的是系统导出的明细表（表头应包含如“办件编号”“事项编码”“受理时间”等列名），"
        "或下载导入模板对照修改表头。",
        "unknown_kind",
    )


def _resolve(grid: _Grid, kind_name: str | None) -> tuple[int, str] | ReadError:
    """(header row index, kind) of a grid, or the ReadError explaining why it has none."""
    rows = grid.frame.head(HEADER_SCAN_ROWS).rows()
    h = _header_row([list(r) for r in rows])
    if h is None:
        if kind_name is None:
            return _unknown_kind(None)
        k = KINDS[kind_name]
        required = "、".join(f"“{f.header}”" for f in k.fields if f.required)
        return ReadError(
            f"在前 {HEADER_SCAN_ROWS} 行中没有找到{k.label}的表头（应包含 {required} 等列）。"
            "请确认文件类型选择正确，或下载导入模板对照修改表头。",
            "header_not_found",
        )
    cells = list(rows[h])
    detected = detect_kind(cells)
    if kind_name is None:
        return (h, detected) if detected else _unknown_kind(cells)
    _, hits, matched = _fit(cells, kind_name)
    required = sum(f.required for f in KINDS[kind_name].fields)
    if detected is not None and detected != kind_name and (hits < required or matched < 2):
        return ReadError(
            f"所选数据类型为“{KINDS[kind_name].label}”，但文件的表头（第 {h + 1} 行）看起来是“{KINDS[detected].label}”。"
            "请选择正确的数据类型，或检查是否传错了文件。",
            "kind_mismatch",
        )
    if matched < 2:
        return ReadError(
            f"在前 {HEADER_SCAN_ROWS} 行中没有找到{KINDS[kind_name].label}的表头。请确认文件类型选择正确。",
            "header_not_found",
        )
    return h, kind_name


def _formula_problems(
    cells: list[tuple[int, int]], rows: pl.DataFrame, column_fields: dict[int, str], headers: dict[str, str]
) -> list[Problem]:
    """Errors for formula cells that fall in a data row and a recognised column."""
    if not cells:
        return []
    kept = set(rows["_row"].to_list())
    hits = sorted((r, c) for r, c in cells if r in kept and c in column_fields)
    unlocated = sum(1 for r, c in cells if c < 0)
    if not hits and not unlocated:
        return []
    raw_by_row = {r["_row"]: r for r in rows.filter(pl.col("_row").is_in([r for r, _ in hits[:FORMULA_PROBLEMS]])).to_dicts()}
    problems = []
    for r, c in hits[:FORMULA_PROBLEMS]:
        name = column_fields[c]
        value = raw_by_row.get(r, {}).get(name)
        problems.append(
            Problem(
                ERROR,
                "formula_cell",
                "单元格含公式",
                f"第 {r} 行“{headers[name]}”列的单元格是公式，不是系统导出的原始值，可能被手工修改过。"
                "请使用系统原始导出文件，或将公式转换为数值后重新上传。",
                row=r,
                column=headers[name],
                value=value,
            )
        )
    rest = len(hits) - len(problems) + unlocated
    if rest > 0:
        problems.append(
            Problem(
                ERROR,
                "formula_cell",
                "单元格含公式",
                f"另有 {rest} 个数据单元格是公式（上面只列出前 {FORMULA_PROBLEMS} 个）。"
                "请使用系统原始导出文件，或将公式转换为数值后重新上传。",
            )
        )
    return problems


def _parse_distinct(
    values: pl.Series, parser: Callable[[pl.Expr], pl.Expr], fast: Callable[[pl.Expr], pl.Expr] | None = None
) -> pl.Series:
    """parser applied to each distinct value once, mapped back to the rows (exports repeat values a lot).

    ``fast`` (see parsing.fast_path) is tried first; parser then only sees the values it left null.
    """
    name = values.name
    distinct = values.drop_nulls().unique().to_frame()
    if fast is None:
        distinct = distinct.with_columns(parser(pl.col(name)).alias("__parsed"))
    else:
        distinct = distinct.with_columns(fast(pl.col(name)).alias("__parsed"))
        done = distinct.filter(pl.col("__parsed").is_not_null())
        rest = distinct.filter(pl.col("__parsed").is_null()).with_columns(parser(pl.col(name)).alias("__parsed"))
        distinct = pl.concat([done, rest])
    joined = values.to_frame().join(distinct, on=name, how="left", maintain_order="left")
    return joined["__parsed"].alias(name)


def _build(
    grid: _Grid, h: int, kind_name: str, formulas: list[tuple[int, int]]
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str], list[str], list[Problem]]:
    k: Kind = KINDS[kind_name]
    header_cells = list(grid.frame.row(h))
    mapping, duplicates = _match(header_cells, kind_name)
    headers = {name: str(header_cells[i]).strip() for i, name in mapping.items()}
    problems: list[Problem] = []
    for i in duplicates:
        name = _match([header_cells[i]], kind_name)[0][0]
        problems.append(
            Problem(
                WARNING,
                "duplicate_column",
                "重复的列",
                f"“{str(header_cells[i]).strip()}”列与“{headers[name]}”列是同一字段，已使用“{headers[name]}”列，忽略该列。",
                column=str(header_cells[i]).strip(),
            )
        )
    ignored = [
        str(c).strip()
        for i, c in enumerate(header_cells)
        if i not in mapping and c is not None and str(c).strip()
    ]

    first = next((i for i, c in enumerate(header_cells) if c is not None and str(c).strip()), 0)
    total_columns = [f"c{i}" for i in range(first, min(first + TOTAL_SCAN_COLUMNS, len(header_cells)))]
    order = [f.name for f in k.fields if f.name in mapping.values()]
    cells = (
        grid.frame.slice(h + 1)
        .with_row_index("_idx")
        .select(
            (pl.col("_idx").cast(pl.Int64) + h + 2).alias("_row"),
            *[parsing.clean(pl.col(f"c{i}")).alias(name) for i, name in mapping.items()],
            pl.any_horizontal([pl.col(c).str.contains(_TOTAL).fill_null(False) for c in total_columns]).alias("_total"),
        )
    )
    blank = pl.all_horizontal([pl.col(name).is_null() for name in order])
    first_filled = pl.coalesce([pl.col(name) for name in mapping.values()])  # in column order
    total = pl.col("_total") | first_filled.str.contains(_TOTAL).fill_null(False)
    raw = cells.filter(~blank & ~total).select("_row", *order)

    parsed = {
        name: _parse_distinct(raw[name], partial(parsing.parse_field, field=k.field(name)), parsing.fast_path(k.field(name)))
        for name in order
    }
    for f in k.fields:  # a limit written with its unit fills the unit field
        unit = f"{f.name}_unit"
        if f.parser != LIMIT or f.name not in parsed or unit not in k.names:
            continue
        derived = _parse_distinct(raw[f.name], parsing.limit_unit)
        parsed[unit] = parsed[unit].fill_null(derived) if unit in parsed else derived
    frame = pl.DataFrame([raw["_row"], *[parsed[n].alias(n) for n in k.names if n in parsed]])

    column_fields = {grid.columns[i]: name for i, name in mapping.items()}
    problems += _formula_problems(formulas, raw, column_fields, headers)
    return frame, raw, headers, ignored, problems


_FAILURE_RANK = {"no_data_rows": 3, "kind_mismatch": 2, "header_not_found": 1, "unknown_kind": 1}


def _worse(kept: ReadError | None, new: ReadError) -> ReadError:
    """The more telling of two reasons why a sheet could not be used (ties: the first one)."""
    if kept is None or _FAILURE_RANK.get(new.rule, 0) > _FAILURE_RANK.get(kept.rule, 0):
        return new
    return kept


def _has_cells(grid: _Grid) -> bool:
    return bool(grid.frame.select(pl.any_horizontal(parsing.clean(pl.col(c)).is_not_null().any() for c in grid.frame.columns)).item())


def _extension_warning(file_name: str, actual: str) -> Problem | None:
    ext = Path(file_name).suffix.lower()
    if actual == "csv" and ext in _EXCEL_EXTENSIONS:
        message = f"文件扩展名为 {ext}，但内容是 CSV 文本，已按 CSV 读取。"
    elif actual == "xlsx" and ext in (".csv", ".xls"):
        message = f"文件扩展名为 {ext}，但内容是 .xlsx 工作簿，已按 .xlsx 读取。"
    elif actual == "xls" and ext in (".csv", ".xlsx", ".xlsm"):
        message = f"文件扩展名为 {ext}，但内容是旧版 .xls 工作簿，已按 .xls 读取。"
    else:
        return None
    return Problem(WARNING, "extension_mismatch", "扩展名与内容不符", message)


def read_file(
    path_or_bytes: str | os.PathLike[str] | bytes | IO[bytes],
    file_name: str,
    kind: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> ParsedFile:
    """Read an .xlsx, .xls or .csv export into canonical columns (see ParsedFile and the module doc).

    ``kind`` forces the kind instead of detecting it from the header. Raises ReadError, with a
    Chinese message and a rule id, when the file cannot be read at all.
    """
    if kind is not None:
        get_kind(kind)  # ValueError for an unknown kind name
    data = load_bytes(path_or_bytes, max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    fmt = _sniff(data)
    formulas: dict[str, list[tuple[int, int]]] = {}
    if fmt == "zip":
        paths, formulas = _inspect_xlsx(data)
        grids = _excel_grids(data, paths)
        actual = "xlsx"
    elif fmt == "ole":
        if _ENCRYPTED_PACKAGE in data:
            raise _encrypted()
        grids = _excel_grids(data, {})
        actual = "xls"
    else:
        grids = iter([_csv_grid(data)])
        actual = "csv"

    failure: ReadError | None = None  # why no sheet could be used: the most telling reason is kept
    for grid in grids:
        if isinstance(grid, ReadError):
            failure = _worse(failure, grid)
            continue
        if grid.frame.height == 0 or grid.frame.width == 0:
            continue
        found = _resolve(grid, kind)
        if isinstance(found, ReadError):
            if _has_cells(grid):
                failure = _worse(failure, found)
            continue
        h, kind_name = found
        frame, raw, headers, ignored, problems = _build(grid, h, kind_name, formulas.get(grid.sheet_path or "", []))
        if frame.height == 0:
            where = f"工作表“{grid.sheet}”" if grid.sheet else "文件"
            failure = _worse(
                failure,
                ReadError(
                    f"{where}只有表头（第 {h + 1} 行），没有数据行。请确认导出时选择了正确的时间范围。", "no_data_rows"
                ),
            )
            continue
        warning = _extension_warning(file_name, actual)
        exported = export_date([list(r) for r in grid.frame.head(h).rows()])
        return ParsedFile(
            kind=kind_name,
            file_name=file_name,
            sha256=sha256,
            frame=frame,
            raw=raw,
            headers=headers,
            sheet=grid.sheet,
            ignored_columns=ignored,
            problems=([warning] if warning else []) + problems,
            exported=exported,
        )
    if failure is not None:
        if actual == "csv" and failure.rule in ("unknown_kind", "header_not_found", "kind_mismatch"):
            # Headers not recognised in a file read as GB18030: maybe it is Big5 or Shift-JIS text.
            encoding = _foreign_encoding(data) if _read_as_gb18030(data) else None
            if encoding is not None:
                raise _encoding_error(encoding)
        raise failure
    raise ReadError("文件是空的，没有任何内容。请重新导出后上传。", "file_empty")
