"""Render the bulletin and the district report cards (metrics/bulletin.py) into the bureau's Word
template, and convert to PDF with LibreOffice when it is installed.

The template is a .docx with docxtpl placeholders: ``{{ title }}`` and ``{{p body }}`` are required,
``{{ issuer }}``, ``{{ issue_date }}``, ``{{ city }}`` and ``{{ period }}`` optional. The body is built
here with direct formatting after GB/T 9704 (仿宋 三号 body, 黑体/楷体 headings, fixed 28.95 pt lines),
so a bureau's own 红头 template only has to carry the letterhead, the margins and the page numbers.
Fonts are named as Word/WPS on a bureau PC knows them; where they are missing (a Linux server), the PDF
is rendered with free faces of the same style through metrics/fonts/fonts.conf (README: 字体).
"""

from __future__ import annotations

import fcntl
import io
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Pt, RGBColor
from docxtpl import DocxTemplate
from jinja2 import TemplateError as JinjaError

from metrics import template_guard
from metrics.bulletin import Block, Bulletin, DistrictReport, Figure, Inset, Paragraph, Table
from metrics.units import NULL_TEXT

TemplateError = template_guard.TemplateError  # what the page and the CLI catch
MAX_TEMPLATE_MIB = template_guard.MAX_TEMPLATE_BYTES // template_guard.MIB

DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "templates" / "bulletin.docx"
# fontconfig substitutions for the official fonts the .docx names (free faces of the same style).
FONTS_CONF = Path(__file__).resolve().parent / "fonts" / "fonts.conf"

TITLE_FONT, BODY_FONT, H1_FONT, H2_FONT = "方正小标宋简体", "仿宋_GB2312", "黑体", "楷体_GB2312"
LATIN_FONT = "Times New Roman"
SIZE_2, SIZE_3, SIZE_4, SIZE_5, SIZE_S5 = Pt(22), Pt(16), Pt(14), Pt(10.5), Pt(9)  # 二号 三号 四号 五号 小五
LINE = Pt(28.95)  # 22 lines in the 225 mm type area
TYPE_WIDTH_PT = 156 / 25.4 * 72  # the 156 mm type area
CHAR_SPACING_TWIPS = -5  # 三号 characters 0.25 pt closer: 28 × 15.75 pt fit the 442 pt line
SMALL_LINE, CARD_LINE, CARD_TABLE_LINE = Pt(18), Pt(20), Pt(12)
WRAP_CHARS = 8  # a wrapping column gets at least this many characters a line, else the table is set smaller


@dataclass(frozen=True)
class Layout:
    """Body sizes: the bulletin in 三号 after GB/T 9704; a report card smaller, to fit one page."""

    text: Pt = SIZE_3
    line: Pt = LINE
    table_text: Pt = SIZE_5
    table_line: Pt = SMALL_LINE


BULLETIN = Layout()
CARD = Layout(SIZE_4, CARD_LINE, SIZE_5, CARD_TABLE_LINE)
PDF_TIMEOUT_S = 180


# --- template -------------------------------------------------------------------------------------


def default_template() -> bytes:
    return DEFAULT_TEMPLATE.read_bytes()


def check_template(content: bytes) -> None:
    """Raise TemplateError (Chinese) unless ``content`` is a .docx with the required placeholders and
    nothing else that Jinja2 would run (metrics/template_guard.py)."""
    template_guard.check_template(content)


# --- formatting helpers ---------------------------------------------------------------------------


def _latin(east_asian: str) -> str:
    """Digits and Latin letters in Times New Roman beside 仿宋/楷体, but in the 小标宋 or 黑体 of a title,
    heading, caption or table header themselves: a serif "2026" in a heavy title or a 黑体 "12345热线"
    reads as a second face (and the title's year lighter than its words)."""
    return east_asian if east_asian in (TITLE_FONT, H1_FONT) else LATIN_FONT


def _fonts(run, east_asian: str, size: Pt, bold: bool = False, colour: RGBColor | None = None) -> None:
    run.font.name = _latin(east_asian)
    run.font.size = size
    run.font.bold = bold
    if colour is not None:
        run.font.color.rgb = colour
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    fonts.set(qn("w:eastAsia"), east_asian)
    fonts.set(qn("w:hint"), "eastAsia")


def _paragraph(doc, text: str, font: str = BODY_FONT, size: Pt = SIZE_3, *, indent: bool = True,
               align: int | None = None, line: Pt = LINE, bold: bool = False, keep_next: bool = False):
    par = doc.add_paragraph()
    fmt = par.paragraph_format
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = line
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(0)
    fmt.first_line_indent = Pt(size.pt * 2) if indent else Pt(0)
    fmt.keep_with_next = keep_next
    if align is not None:
        par.alignment = align
    else:
        par.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    run = par.add_run(text)
    _fonts(run, font, size, bold)
    if size.pt == SIZE_3.pt:  # 28 characters a line in the 156 mm type area (16 pt × 28 is 448 pt)
        spacing = OxmlElement("w:spacing")
        spacing.set(qn("w:val"), str(CHAR_SPACING_TWIPS))
        run._element.get_or_add_rPr().append(spacing)
    return par


def _borders(table) -> None:
    """Single-line borders set directly, so the table needs no style from the bureau's template."""
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "single")
        el.set(qn("w:sz"), "4")
        el.set(qn("w:space"), "0")
        el.set(qn("w:color"), "000000")
        borders.append(el)
    tbl_pr.append(borders)


def _row_properties(row, header: bool) -> None:
    """Every row stays whole on one page (w:cantSplit); the header row repeats on each page."""
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:cantSplit")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)
    if header:
        el = OxmlElement("w:tblHeader")
        el.set(qn("w:val"), "true")
        tr_pr.append(el)


def _cell_xml(text: str, font: str, size: Pt, line: Pt, *, no_wrap: bool, align: str = "center") -> tuple[str, str]:
    """The cell's properties and its paragraph (a "\\n" in ``text`` is a line break)."""
    half_points = int(size.pt * 2)
    spacing = int(line.pt * 20)
    # Cells that must not break (numbers, district names) also say so (w:noWrap), besides the width.
    tc_pr = f'<w:tcPr {nsdecls("w")}><w:noWrap/><w:vAlign w:val="center"/></w:tcPr>' if no_wrap else (
        f'<w:tcPr {nsdecls("w")}><w:vAlign w:val="center"/></w:tcPr>')
    lines = text.split("\n")
    runs = "".join(
        (f'<w:r><w:rPr><w:rFonts w:ascii="{_latin(font)}" w:hAnsi="{_latin(font)}" w:eastAsia="{font}" '
         f'w:hint="eastAsia"/><w:sz w:val="{half_points}"/><w:szCs w:val="{half_points}"/></w:rPr>'
         + ("<w:br/>" if n else "") + f'<w:t xml:space="preserve">{escape(part)}</w:t></w:r>')
        for n, part in enumerate(lines)
    )
    paragraph = (
        f'<w:p {nsdecls("w")}><w:pPr><w:spacing w:before="0" w:after="0" w:line="{spacing}" w:lineRule="exact"/>'
        f'<w:ind w:firstLine="0" w:firstLineChars="0"/><w:jc w:val="{align}"/></w:pPr>{runs}</w:p>'
    )
    return tc_pr, paragraph


def _display_width(text: str) -> int:
    """Half-width units: a CJK character counts two."""
    return sum(1 if ord(ch) < 0x2E80 else 2 for ch in text)


CELL_PAD_PT = 4.0  # left and right cell margin (w:tblCellMar), each
FIT = 1.12  # room for the fonts' real advance widths (digits and Latin run wider than half an em)


def header_text(header: str, content_width: int = 0) -> str:
    """A header wider than its column's widest cell (``content_width``, half-width units) on two lines
    at a natural point ("12345↵热线", "名次↵变化"), so that the header does not widen the column; a
    header of up to three characters stays whole."""
    if _display_width(header) <= max(6, content_width) or "\n" in header:
        return header
    for n, ch in enumerate(header):  # digits or Latin then CJK: break between them ("12345热线")
        if n and ord(ch) >= 0x2E80 and ord(header[n - 1]) < 0x2E80 and header[n - 1] != "（":
            return header[:n] + "\n" + header[n:]
    if "（" in header:  # a unit in brackets goes on the second line
        head, tail = header.split("（", 1)
        return f"{head}\n（{tail}"
    half = (len(header) + 1) // 2
    return header[:half] + "\n" + header[half:]


def _is_number(text: str) -> bool:
    """A figure or the null dash (95.2, 100.0, 12, —)."""
    return text == NULL_TEXT or text.replace(".", "", 1).replace("-", "", 1).replace(",", "").isdigit()


def _columns(block: Table) -> list[list[str]]:
    return [[str(row[c]) for row in block.rows] for c in range(len(block.headers))]


def _headers(block: Table) -> list[str]:
    """The headers as printed: wrapped where wider than their column's content."""
    out = []
    for h, col in zip(block.headers, _columns(block), strict=True):
        widest = 0 if h in block.wrap else max((_display_width(v) for v in col), default=0)
        out.append(header_text(h, widest))
    return out


def _spaced_width(text: str) -> int:
    """Half-width units as laid out: Word and LibreOffice add space between CJK text and digits or
    Latin letters (autoSpaceDE/DN, "上升 2 位"), counted as one unit a side."""
    width = _display_width(text)
    for a, b in itertools.pairwise(text):
        if (ord(a) >= 0x2E80) != (ord(b) >= 0x2E80) and (a.isalnum() or b.isalnum()) and not (a + b).isspace():
            width += 1
    return width


def _line_width(text: str, size: Pt) -> float:
    return max((_spaced_width(part) for part in text.split("\n")), default=0) * size.pt / 2 * FIT


def _column_widths(block: Table, size: Pt, total: float = TYPE_WIDTH_PT) -> list[float]:
    """Widths (pt) that follow the content: a column that must not wrap is as wide as its widest cell
    (and its header, on at most two lines); the columns that may wrap (``block.wrap``) share what is
    left, in proportion to their longest text. Without such columns the spare width is shared out in
    proportion to the widths, so the table fills the type area."""
    pad = 2 * CELL_PAD_PT
    need = [max(_line_width(h, size), *(_line_width(str(v), size) for v in col)) + pad
            for h, col in zip(_headers(block), _columns(block), strict=True)]
    # Columns of numbers side by side (the index and the group scores) get one width, for an even grid.
    numeric = [c for c, col in enumerate(_columns(block)) if col and all(_is_number(v) for v in col)]
    if numeric:
        common = max(need[c] for c in numeric)
        for c in numeric:
            need[c] = common
    wraps = [c for c, h in enumerate(block.headers) if h in block.wrap]
    fixed = sum(w for c, w in enumerate(need) if c not in wraps)
    if wraps and fixed < total:
        # At least four characters a line for wrapping text, never more than it needs on one line.
        minimum = 4 * size.pt + pad
        spare = total - fixed
        share = sum(need[c] for c in wraps) or 1.0
        for c in wraps:
            need[c] = max(min(need[c], spare * need[c] / share), minimum)
    if sum(need) < total:  # fill the type area
        need = [w * total / sum(need) for w in need]
    elif sum(need) > total:  # too many columns for the page: squeeze evenly (cells may wrap then)
        need = [w * total / sum(need) for w in need]
    return need


def _squeezed(block: Table, size: Pt) -> bool:
    """Whether a wrapping column would get fewer than WRAP_CHARS characters a line, or the columns that
    must not wrap do not fit at all."""
    widths = _column_widths(block, size)
    wraps = [c for c, h in enumerate(block.headers) if h in block.wrap]
    pad = 2 * CELL_PAD_PT
    fixed_need = sum(max(_line_width(h, size), *(_line_width(v, size) for v in col)) + pad
                     for c, (h, col) in enumerate(zip(_headers(block), _columns(block), strict=True)) if c not in wraps)
    if fixed_need > TYPE_WIDTH_PT:
        return True
    return any(widths[c] < WRAP_CHARS * size.pt + pad for c in wraps
               if max((_line_width(v, size) for v in _columns(block)[c]), default=0) + pad > widths[c])


def _table(doc, block: Table, layout: Layout) -> None:
    if block.caption:
        _paragraph(doc, block.caption, H1_FONT, SIZE_4, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER,
                   keep_next=True)
    table = doc.add_table(rows=1 + len(block.rows), cols=len(block.headers))
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    size, line = layout.table_text, layout.table_line
    if _squeezed(block, size) and size.pt > SIZE_S5.pt:  # 小五 rather than a reason four characters wide
        size, line = SIZE_S5, Pt(line.pt * SIZE_S5.pt / size.pt)
    widths = _column_widths(block, size)
    for column, width in zip(table.columns, widths, strict=True):
        column.width = Pt(width)
    # Fixed layout with a total width: LibreOffice otherwise shares the width out equally.
    tbl_pr = table._tbl.tblPr
    tbl_w = tbl_pr.find(qn("w:tblW"))
    if tbl_w is None:
        tbl_w = OxmlElement("w:tblW")
        tbl_pr.append(tbl_w)
    tbl_w.set(qn("w:w"), str(int(sum(widths) * 20)))
    tbl_w.set(qn("w:type"), "dxa")
    layout_el = OxmlElement("w:tblLayout")
    layout_el.set(qn("w:type"), "fixed")
    tbl_pr.append(layout_el)
    margins = OxmlElement("w:tblCellMar")
    for side in ("left", "right"):
        el = OxmlElement(f"w:{side}")
        el.set(qn("w:w"), str(int(CELL_PAD_PT * 20)))
        el.set(qn("w:type"), "dxa")
        margins.append(el)
    tbl_pr.append(margins)
    # The grid's own column widths: LibreOffice lays a fixed table out from w:tblGrid.
    for grid_col, width in zip(table._tbl.tblGrid.findall(qn("w:gridCol")), widths, strict=True):
        grid_col.set(qn("w:w"), str(int(width * 20)))
    _borders(table)
    wraps = {c for c, h in enumerate(block.headers) if h in block.wrap}
    headers = _headers(block)
    # Cell paragraphs as XML: through python-docx's setters a 30-row table costs a second.
    for r, (row, values) in enumerate(zip(table.rows, [headers, *block.rows], strict=True)):
        _row_properties(row, header=r == 0)
        font = H1_FONT if r == 0 else BODY_FONT
        for c, (cell, value, width) in enumerate(zip(row.cells, values, widths, strict=True)):
            cell.width = Pt(width)
            tc = cell._tc
            tc.remove(tc.p_lst[0])
            for old in tc.findall(qn("w:tcPr")):
                tc.remove(old)
            wrap = c in wraps and r > 0
            tc_pr, paragraph = _cell_xml(str(value), font, size, line, no_wrap=not wrap,
                                         align="left" if wrap else "center")
            tc.insert(0, parse_xml(tc_pr))
            tc.append(parse_xml(paragraph))
            # the width again, now inside the new tcPr
            tc_w = OxmlElement("w:tcW")
            tc_w.set(qn("w:w"), str(int(width * 20)))
            tc_w.set(qn("w:type"), "dxa")
            tc.tcPr.insert(0, tc_w)
    _paragraph(doc, "", indent=False, line=Pt(12))


_png_lock = threading.Lock()


# The charts' one face, for CJK text and digits alike: the 黑体 substitute of fonts.conf (vl-convert
# reads the system's fonts, not fontconfig's aliases, so the face is named as installed). Without it
# Vega's "sans-serif" comes out as a Latin face with CJK fallback: two faces in one label.
CHART_FONT = "Noto Sans CJK SC"


def print_spec(spec: dict, font: str = CHART_FONT) -> dict:
    """``spec`` with every text (marks, axes, legends, titles) in ``font``."""
    config = dict(spec.get("config") or {})
    config["font"] = font
    for part in ("axis", "legend", "header", "title"):  # a chart's own font for a part would win over config.font
        if isinstance(config.get(part), dict):
            config[part] = {k: v for k, v in config[part].items() if not k.endswith("Font")}
    for part in ("text", "mark"):
        if isinstance(config.get(part), dict):
            config[part] = {k: v for k, v in config[part].items() if k != "font"}
    return {**spec, "config": config}


def chart_png(spec: dict, scale: float = 2.0) -> bytes:
    """A Vega-Lite spec as PNG in the charts' one face (vl-convert renders offline with the server's fonts)."""
    import vl_convert as vlc

    with _png_lock:  # vl-convert's engine is shared: one conversion at a time
        return vlc.vegalite_to_png(print_spec(spec), scale=scale)


def _figure(doc, block: Figure) -> None:
    par = doc.add_paragraph()
    par.alignment = WD_ALIGN_PARAGRAPH.CENTER
    par.paragraph_format.keep_with_next = True
    par.add_run().add_picture(io.BytesIO(chart_png(block.spec)), width=Cm(15))
    _paragraph(doc, block.caption, BODY_FONT, SIZE_4, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER)


def _inset(doc, block: Inset) -> None:
    """The small picture, then its caption on the same line (one paragraph, no fixed line height)."""
    par = doc.add_paragraph()
    par.paragraph_format.space_before = Pt(2)
    par.add_run().add_picture(io.BytesIO(chart_png(block.spec)), height=Cm(block.height_cm))
    _fonts(par.add_run("　" + block.caption), BODY_FONT, SIZE_5)


def _blocks(doc, blocks: Sequence[Block], layout: Layout = BULLETIN) -> None:
    for block in blocks:
        if isinstance(block, Paragraph):
            if block.level == 2:
                _paragraph(doc, block.text, H2_FONT, layout.text, line=layout.line, keep_next=True)
            else:
                _paragraph(doc, block.text, size=layout.text, line=layout.line)
        elif isinstance(block, Table):
            _table(doc, block, layout)
        elif isinstance(block, Inset):
            _inset(doc, block)
        else:
            _figure(doc, block)


# --- documents ------------------------------------------------------------------------------------


# Placeholders whose line is left out when their value is empty (no 机关代字 set, no 抄送): filled with
# a marker first, so that their paragraph or table row can be found after rendering, whatever the template.
OMITTABLE = ("doc_number", "cc")
_EMPTY = "\ue000{}\ue000"  # private-use characters: never in a template or a value
EMU_PER_TWIP = 635
# What follows w:pBdr inside w:pPr (ECMA-376 CT_PPrBase order).
_AFTER_PBDR = tuple(f"w:{n}" for n in (
    "shd", "tabs", "suppressAutoHyphens", "kinsoku", "wordWrap", "overflowPunct", "topLinePunct", "autoSpaceDE",
    "autoSpaceDN", "bidi", "adjustRightInd", "snapToGrid", "spacing", "ind", "contextualSpacing", "mirrorIndents",
    "suppressOverlap", "jc", "textDirection", "textAlignment", "textboxTightWrap", "outlineLvl", "divId",
    "cnfStyle", "rPr", "sectPr", "pPrChange"))


def _text(el) -> str:
    return "".join(t.text or "" for t in el.iter(qn("w:t")))


def _has_content(p) -> bool:
    """A paragraph with text or a picture/text box (not a blank spacing line)."""
    return bool(_text(p).strip()) or p.find(f".//{qn('w:drawing')}") is not None


def _drop_row(row) -> None:
    """Remove a table row; a text box that holds the table (the 版记) gets shorter by the row's
    exact line height, so the box does not keep an empty line's room."""
    table = row.getparent()
    spacing = row.find(f".//{qn('w:spacing')}")
    anchor = next((a for a in row.iterancestors() if a.tag.endswith("}anchor") or a.tag.endswith("}inline")), None)
    table.remove(row)
    if not table.findall(qn("w:tr")):
        table.getparent().remove(table)
    if anchor is None or spacing is None or spacing.get(qn("w:lineRule")) != "exact":
        return
    shrink = int(spacing.get(qn("w:line"), "0")) * EMU_PER_TWIP
    for ext in anchor.iter():
        if ext.tag.endswith("}extent") or ext.tag.endswith("}ext"):
            cy = int(ext.get("cy", "0"))
            if cy > shrink:
                ext.set("cy", str(cy - shrink))


def _drop_paragraph(p) -> None:
    """Remove a paragraph whose only text was an empty placeholder. Its bottom border (the red rule
    under the 发文字号) moves up to the last paragraph with text before it, and the blank lines between
    go too: without a 发文字号 the rule sits under the issuer's name."""
    border = p.find(f"{qn('w:pPr')}/{qn('w:pBdr')}")
    if border is not None:
        blanks = []
        prev = p.getprevious()
        while prev is not None and prev.tag == qn("w:p") and not _has_content(prev):
            blanks.append(prev)
            prev = prev.getprevious()
        if prev is not None and prev.tag == qn("w:p"):
            ppr = prev.find(qn("w:pPr"))
            if ppr is None:
                ppr = OxmlElement("w:pPr")
                prev.insert(0, ppr)
            for old in ppr.findall(qn("w:pBdr")):
                ppr.remove(old)
            ppr.insert_element_before(border, *_AFTER_PBDR)  # Word checks the schema's order
            for blank in blanks:
                blank.getparent().remove(blank)
    p.getparent().remove(p)


def _omit_empty(root, markers: Sequence[str]) -> None:
    """Leave out the line of each empty optional placeholder (``markers``): a table row that holds
    nothing else is removed, a paragraph that holds nothing else is removed (_drop_paragraph), and a
    marker beside other text is simply erased."""
    for marker in markers:
        for p in [p for p in root.iter(qn("w:p")) if marker in _text(p)]:
            if p.getparent() is None:
                continue
            row = next((a for a in p.iterancestors(qn("w:tr"))), None)
            if row is not None and _text(row).replace(marker, "").strip() == "":
                _drop_row(row)
            elif _text(p).replace(marker, "").strip() == "":
                _drop_paragraph(p)
        for t in root.iter(qn("w:t")):
            if t.text and marker in t.text:
                t.text = t.text.replace(marker, "")


# East Asian languages whose glyph forms differ from Simplified Chinese: LibreOffice shapes CJK text with
# the run's East Asian language, and a Noto CJK face then gives that language's forms (its locl feature).
OTHER_CJK_FORMS = ("ja", "ko", "zh-TW", "zh-HK", "zh-MO", "zh-Hant")


def _chinese(doc) -> None:
    """Where the template names a Japanese, Korean or Traditional Chinese East Asian language (a
    template saved on such a system), say zh-CN instead, so the Noto CJK collections give the
    Simplified Chinese glyph forms. Other languages are left as they are: the default template's en-US
    gives the SC face's own forms, and a zh-CN template stays zh-CN."""
    for root in (doc.styles.element, doc.element.body):
        for lang in root.iter(qn("w:lang")):
            value = lang.get(qn("w:eastAsia")) or ""
            if any(value == tag or value.startswith(f"{tag}-") for tag in OTHER_CJK_FORMS):
                lang.set(qn("w:eastAsia"), "zh-CN")


SIGNATURE_HERE = _EMPTY.format("signature")  # a body paragraph: the template's signature goes there


def _move_signature(root, date_marker: str, issuer: str) -> None:
    """Move the template's signature (the 成文日期 paragraph and the 署名 and blank lines before it) to
    the body paragraph that says SIGNATURE_HERE, in the template's own formatting: the covering text of
    the report cards is signed on page 1 and the cards follow as its attachments (GB/T 9704: 正文,
    署名, 成文日期, then 附件; the 版记 stays on the last page)."""
    here = next((p for p in root.iter(qn("w:p")) if _text(p) == SIGNATURE_HERE), None)
    if here is None:
        return
    date = next((p for p in root.iter(qn("w:p")) if date_marker in _text(p)), None)
    if date is None or date.getparent() is not root:  # no date, or inside a table or text box: left alone
        here.getparent().remove(here)
        return
    group = [date]
    prev = date.getprevious()
    while (prev is not None and prev.tag == qn("w:p") and prev.find(f".//{qn('w:drawing')}") is None
           and _text(prev).strip() in ("", issuer)):
        group.insert(0, prev)
        prev = prev.getprevious()
    for p in group:
        here.addprevious(p)
    here.getparent().remove(here)


def _render(template: bytes, context: dict, build_body) -> bytes:
    check_template(template)
    tpl = DocxTemplate(io.BytesIO(template))
    body = tpl.new_subdoc()
    build_body(body)
    markers = {k: _EMPTY.format(k) for k in OMITTABLE if not str(context.get(k) or "").strip()}
    date_marker = _EMPTY.format("issue_date")
    try:  # the checked template again, in the sandbox that admits placeholders only
        tpl.render({**context, **markers, "issue_date": date_marker, "body": body},
                   template_guard.BulletinEnvironment())
    except JinjaError as exc:
        raise template_guard.render_error(exc) from None
    doc = tpl.docx
    _omit_empty(doc.element.body, list(markers.values()))
    _move_signature(doc.element.body, date_marker, str(context.get("issuer") or ""))
    for t in doc.element.body.iter(qn("w:t")):
        if t.text and date_marker in t.text:
            t.text = t.text.replace(date_marker, str(context.get("issue_date") or ""))
    _chinese(doc)
    out = io.BytesIO()
    tpl.save(out)
    return out.getvalue()


def title_lines(title: str) -> str:
    """A title longer than one line of 二号 breaks before its bracketed period, not inside it."""
    if _display_width(title) > 36 and "（" in title:  # 20 characters of 二号 fill the line; digits run wider
        head, tail = title.split("（", 1)
        return f"{head}\n（{tail}"
    return title


def bulletin_docx(bulletin: Bulletin, template: bytes | None = None) -> bytes:
    def body(doc) -> None:
        for section in bulletin.sections:
            _paragraph(doc, section.title, H1_FONT, SIZE_3, keep_next=True)
            _blocks(doc, section.blocks)
        # The signature must not stand alone on the last page: the last paragraph goes with it.
        if doc.paragraphs:
            doc.paragraphs[-1].paragraph_format.keep_with_next = True

    return _render(template or default_template(), _context(bulletin, bulletin.title), body)


def _context(bulletin: Bulletin, title: str, *, numbered: bool = True) -> dict[str, str]:
    """What the template's placeholders are filled with (metrics/template_guard.py: ALLOWED); the
    report cards carry no 发文字号 of their own (``numbered`` False)."""
    return {"title": title_lines(title), "issuer": bulletin.issuer, "issue_date": bulletin.issue_date,
            "city": bulletin.city, "period": bulletin.period.label,
            "doc_number": bulletin.doc_number if numbered else "",
            "cc": bulletin.cc, "printer": bulletin.issuer, "print_date": bulletin.print_date}


def reports_docx(reports: Sequence[DistrictReport], bulletin: Bulletin, template: bytes | None = None) -> bytes:
    """The report cards, one district per page, in the same template."""

    def body(doc) -> None:
        if len(reports) > 1:
            # A covering text on the letterhead page, signed there; one page per district after it. The
            # last page then holds the last card and the 版记, not the signature alone.
            _paragraph(doc, f"现将{bulletin.period.label}各区县政务服务效能评估报告单印发给你们，请对照整改。"
                            f"报告单共 {len(reports)} 页，每个区县一页：{'、'.join(r.district for r in reports)}。")
            _paragraph(doc, SIGNATURE_HERE, indent=False)
        for report in reports:
            if len(reports) > 1:
                doc.add_page_break()
                _paragraph(doc, report.title, TITLE_FONT, SIZE_3, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER,
                           keep_next=True)
            _blocks(doc, report.blocks, CARD)
        if len(reports) == 1 and doc.paragraphs:  # the signature never stands alone on the last page
            doc.paragraphs[-1].paragraph_format.keep_with_next = True

    title = reports[0].title if len(reports) == 1 else f"{bulletin.city}各区县政务服务效能评估报告单（{bulletin.period.label}）"
    return _render(template or default_template(), _context(bulletin, title, numbered=False), body)


# --- PDF ------------------------------------------------------------------------------------------


def soffice() -> str | None:
    """The LibreOffice command, when installed (Debian: libreoffice-writer-nogui)."""
    return shutil.which("soffice") or shutil.which("libreoffice")


_pdf_lock = threading.Lock()


def pdf_env() -> dict[str, str]:
    """LibreOffice's environment: the project's font substitutions (which include the system's
    configuration), unless the operator has pointed FONTCONFIG_FILE elsewhere."""
    env = dict(os.environ)
    env.setdefault("FONTCONFIG_FILE", str(FONTS_CONF))
    return env


def to_pdf(docx: bytes) -> bytes:
    """Convert with LibreOffice (headless); RuntimeError in Chinese when it is missing or fails."""
    command = soffice()
    if command is None:
        raise RuntimeError("服务器上没有安装 LibreOffice，无法生成 PDF（见 README：apt-get install libreoffice-writer-nogui）")
    # One LibreOffice profile for all conversions by this user (creating one costs seconds), used by one
    # conversion at a time: LibreOffice refuses to share a profile between running instances.
    profile = Path(tempfile.gettempdir()) / f"dashboard-lo-profile-{os.getuid()}"
    lock_file = profile.with_suffix(".lock")
    with _pdf_lock, lock_file.open("a") as lock, tempfile.TemporaryDirectory(prefix="bulletin-") as tmp:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src = Path(tmp) / "bulletin.docx"
        src.write_bytes(docx)
        result = subprocess.run(
            [command, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
             "--convert-to", "pdf", "--outdir", tmp, str(src)],
            capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False, env=pdf_env(),
        )
        pdf = Path(tmp) / "bulletin.pdf"
        if result.returncode != 0 or not pdf.exists():
            raise RuntimeError(f"LibreOffice 转换 PDF 失败：{(result.stderr or result.stdout).strip()[-300:]}")
        return pdf.read_bytes()



# --- one call for the page, the CLI and the benchmark ---------------------------------------------

ALL_DISTRICTS = "全部"


def template_for(engine) -> bytes:
    """The administrator's template when one is stored, else the default."""
    from datasets.access import documents

    return documents.get(engine, documents.TEMPLATE) or default_template()


def file_stem(bulletin: Bulletin, district: str | None = None) -> str:
    key = bulletin.period.key.replace("~", "至")
    if district is None:
        return f"效能评估通报_{key}"
    return f"区县报告单_{'全部区县' if district == ALL_DISTRICTS else district}_{key}"


def generate(inputs, district: str | None = None, fmt: str = "docx", template: bytes | None = None,
             with_charts: bool = True) -> tuple[bytes, str]:
    """The bulletin (``district`` None) or report cards (a district's name, or 全部) as .docx or .pdf.

    ``inputs``: metrics.bulletin.load_inputs(...). Returns the file's bytes and its name.
    """
    from metrics.bulletin import build_bulletin, build_reports

    bulletin = build_bulletin(inputs, with_charts=with_charts and district is None)
    if district is None:
        content = bulletin_docx(bulletin, template)
    else:
        reports = build_reports(inputs, None if district == ALL_DISTRICTS else [district])
        content = reports_docx(reports, bulletin, template)
    if fmt == "pdf":
        content = to_pdf(content)
    return content, f"{file_stem(bulletin, district)}.{fmt}"
