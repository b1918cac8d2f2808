"""Build the default bulletin template, metrics/templates/bulletin.docx (run from the project root):

    python scripts/make_bulletin_template.py

A4 with the GB/T 9704 margins (top 37 mm, bottom 35 mm, left 28 mm, right 26 mm: a 156 × 225 mm type
area of 22 lines), the red 版头 (the issuer in red 小标宋, the 发文字号 under it, the red rule 4 mm below
it), the title in 方正小标宋 二号 two lines below the rule, the body placeholder, the signature and date,
the 版记 (抄送, 印发机关 and 印发日期 between rules) at the foot of the last page, and page numbers
"— 1 —" in 宋体 四号 on the outside corners (odd pages right, even pages left).
Administrators replace it with their own 红头 template on the 设置 page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Mm, Pt, RGBColor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metrics.bulletin_docx import (  # noqa: E402
    BODY_FONT,
    LATIN_FONT,
    LINE,
    SIZE_2,
    SIZE_3,
    SIZE_4,
    TITLE_FONT,
    TYPE_WIDTH_PT,
    _fonts,
)

OUT = ROOT / "metrics" / "templates" / "bulletin.docx"
RED = RGBColor(0xE6, 0x00, 0x12)


def _par(doc_or_part, text: str, font: str, size: Pt, align: int, *, colour: RGBColor | None = None,
         line: Pt = LINE, right_indent: Pt | None = None, keep_next: bool = False):
    par = doc_or_part.add_paragraph()
    fmt = par.paragraph_format
    fmt.keep_with_next = keep_next
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = line
    fmt.space_before = fmt.space_after = Pt(0)
    if right_indent is not None:
        fmt.right_indent = right_indent
    par.alignment = align
    if text:
        _fonts(par.add_run(text), font, size, colour=colour)
    return par


def _red_rule(par) -> None:
    """The red rule 4 mm (11 pt) below the 发文字号, 2.25 pt thick."""
    ppr = par._p.get_or_add_pPr()
    bdr = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for k, v in {"w:val": "single", "w:sz": "18", "w:space": "11", "w:color": "E60012"}.items():
        bottom.set(qn(k), v)
    bdr.append(bottom)
    ppr.append(bdr)


def _page_number(footer, align: int) -> None:
    """— PAGE — in 宋体 四号, one character in from the outer edge."""
    footer.is_linked_to_previous = False
    par = footer.paragraphs[0]
    par.alignment = align
    fmt = par.paragraph_format
    if align == WD_ALIGN_PARAGRAPH.RIGHT:
        fmt.right_indent = Pt(14)
    else:
        fmt.left_indent = Pt(14)
    _songti(par.add_run("— "))
    run = par.add_run()
    _songti(run)
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        elif text == "1":
            el = OxmlElement("w:t")
            el.text = text
        else:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        run._r.append(el)
    _songti(par.add_run(" —"))


def _songti(run) -> None:
    """宋体 四号 for the digits and the dashes too (GB/T 9704: 半角宋体阿拉伯数字, 一字线)."""
    _fonts(run, "宋体", SIZE_4)
    fonts = run._element.rPr.rFonts
    fonts.set(qn("w:ascii"), "宋体")
    fonts.set(qn("w:hAnsi"), "宋体")


def _imprint(doc) -> None:
    """版记 at the foot of the last page's type area (GB/T 9704 7.4): 抄送 over 印发机关 and 印发日期
    (四号仿宋, one character in from either side), a thick rule above and below and a thin one between.
    A table in a text box anchored to the bottom of the margin (wp:anchor, wrapTopAndBottom): Word and
    LibreOffice both put it there (a w:framePr frame or a floating table LibreOffice places inline)."""
    size = int(SIZE_4.pt * 2)
    width = int(TYPE_WIDTH_PT * 20)
    half = width * 3 // 5  # 印发机关 on the left, 印发日期 (with 印发) on the right
    indent = int(SIZE_4.pt * 20)

    def run(text: str) -> str:
        return (f'<w:r><w:rPr><w:rFonts w:ascii="{LATIN_FONT}" w:hAnsi="{LATIN_FONT}" w:eastAsia="{BODY_FONT}" '
                f'w:hint="eastAsia"/><w:sz w:val="{size}"/><w:szCs w:val="{size}"/></w:rPr><w:t>{text}</w:t></w:r>')

    def cell(text: str, w: int, align: str, span: int = 1) -> str:
        grid = f'<w:gridSpan w:val="{span}"/>' if span > 1 else ""
        return (f'<w:tc><w:tcPr><w:tcW w:w="{w}" w:type="dxa"/>{grid}</w:tcPr><w:p><w:pPr>'
                f'<w:spacing w:before="0" w:after="0" w:line="{int(LINE.pt * 20)}" w:lineRule="exact"/>'
                f'<w:ind w:left="{indent}" w:right="{indent}" w:firstLine="0"/><w:jc w:val="{align}"/></w:pPr>'
                f'{run(text)}</w:p></w:tc>')

    rule = 'w:val="single" w:space="0" w:color="000000"'
    xml = (
        f'<w:tbl {nsdecls("w")}><w:tblPr><w:tblW w:w="{width}" w:type="dxa"/><w:jc w:val="center"/>'
        '<w:tblLayout w:type="fixed"/>'
        f'<w:tblBorders><w:top {rule} w:sz="8"/><w:left w:val="nil"/><w:bottom {rule} w:sz="8"/>'
        f'<w:right w:val="nil"/><w:insideH {rule} w:sz="6"/><w:insideV w:val="nil"/></w:tblBorders>'
        '<w:tblCellMar><w:left w:w="0" w:type="dxa"/><w:right w:w="0" w:type="dxa"/></w:tblCellMar>'
        f'</w:tblPr><w:tblGrid><w:gridCol w:w="{half}"/><w:gridCol w:w="{width - half}"/></w:tblGrid>'
        f'<w:tr><w:trPr><w:cantSplit/></w:trPr>{cell("{{ cc }}", width, "left", 2)}</w:tr>'
        f'<w:tr><w:trPr><w:cantSplit/></w:trPr>{cell("{{ printer }}", half, "left")}'
        f'{cell("{{ print_date }}", width - half, "right")}</w:tr></w:tbl>'
    )
    # The table in a text box anchored to the foot of the type area, in an empty paragraph after the date.
    emu_w, emu_h = int(TYPE_WIDTH_PT * 12700), int(3 * LINE.pt * 12700)
    ns = ('xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
          'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
          'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"')
    anchor = (
        f'<w:r {nsdecls("w")} {ns}><w:drawing><wp:anchor distT="0" distB="0" distL="0" distR="0" simplePos="0" '
        'relativeHeight="2" behindDoc="0" locked="0" layoutInCell="1" allowOverlap="0">'
        '<wp:simplePos x="0" y="0"/><wp:positionH relativeFrom="margin"><wp:align>center</wp:align></wp:positionH>'
        '<wp:positionV relativeFrom="margin"><wp:align>bottom</wp:align></wp:positionV>'
        f'<wp:extent cx="{emu_w}" cy="{emu_h}"/><wp:effectExtent l="0" t="0" r="0" b="0"/><wp:wrapTopAndBottom/>'
        '<wp:docPr id="900" name="版记"/><wp:cNvGraphicFramePr/>'
        '<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">'
        '<wps:wsp><wps:cNvSpPr txBox="1"/><wps:spPr>'
        f'<a:xfrm><a:off x="0" y="0"/><a:ext cx="{emu_w}" cy="{emu_h}"/></a:xfrm>'
        '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:noFill/><a:ln><a:noFill/></a:ln></wps:spPr>'
        f'<wps:txbx><w:txbxContent>{xml.replace(nsdecls("w"), "")}<w:p/></w:txbxContent></wps:txbx>'
        '<wps:bodyPr rot="0" lIns="0" tIns="0" rIns="0" bIns="0" anchor="b"><a:noAutofit/></wps:bodyPr>'
        '</wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></w:r>'
    )
    holder = doc.add_paragraph()
    holder.paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    holder.paragraph_format.line_spacing = Pt(1)
    holder._p.append(parse_xml(anchor))


def build(out: Path = OUT) -> Path:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    section.header_distance, section.footer_distance = Mm(15), Mm(25)
    doc.settings.odd_and_even_pages_header_footer = True
    normal = doc.styles["Normal"]
    normal.font.name = "Times New Roman"
    normal.font.size = SIZE_3
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)

    # 版头: the issuer in red 小标宋; two lines below it the 发文字号 (3号仿宋), the red rule under it;
    # the title two lines below the rule.
    _par(doc, "{{ issuer }}", TITLE_FONT, Pt(26), WD_ALIGN_PARAGRAPH.CENTER, colour=RED, line=Pt(40))
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    number = _par(doc, "{{ doc_number }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _red_rule(number)
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _par(doc, "{{ title }}", TITLE_FONT, SIZE_2, WD_ALIGN_PARAGRAPH.CENTER, line=Pt(35))
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _par(doc, "{{p body }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.LEFT)
    # The blank line and the signature stay together with the end of the body (keep with next).
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.LEFT, keep_next=True)
    _par(doc, "{{ issuer }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.RIGHT, right_indent=Pt(64), keep_next=True)
    _par(doc, "{{ issue_date }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.RIGHT, right_indent=Pt(64), keep_next=True)
    _imprint(doc)

    _page_number(section.footer, WD_ALIGN_PARAGRAPH.RIGHT)
    _page_number(section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(out)
    return out


if __name__ == "__main__":
    print(build())
