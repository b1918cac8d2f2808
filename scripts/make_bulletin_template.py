"""Build the default bulletin template, metrics/templates/bulletin.docx (run from the project root):

    python scripts/make_bulletin_template.py

A4 with the GB/T 9704 margins (top 37 mm, bottom 35 mm, left 28 mm, right 26 mm), a red letterhead
with the issuer's name and the red rule, the title in 方正小标宋 二号, the body placeholder, the
signature and date, and page numbers "— 1 —" in 宋体 四号 (odd pages right, even pages left).
Administrators replace it with their own 红头 template on the 设置 page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metrics.bulletin_docx import BODY_FONT, LINE, SIZE_2, SIZE_3, SIZE_4, TITLE_FONT, _fonts  # noqa: E402

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
    ppr = par._p.get_or_add_pPr()
    bdr = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for k, v in {"w:val": "single", "w:sz": "18", "w:space": "6", "w:color": "E60012"}.items():
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
    _fonts(par.add_run("— "), "宋体", SIZE_4)
    run = par.add_run()
    _fonts(run, "宋体", SIZE_4)
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
    _fonts(par.add_run(" —"), "宋体", SIZE_4)


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

    # Letterhead: the issuer in red 小标宋 over a red rule.
    _par(doc, "{{ issuer }}", TITLE_FONT, Pt(26), WD_ALIGN_PARAGRAPH.CENTER, colour=RED, line=Pt(40))
    rule = _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER, line=Pt(12))
    _red_rule(rule)
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _par(doc, "{{ title }}", TITLE_FONT, SIZE_2, WD_ALIGN_PARAGRAPH.CENTER, line=Pt(35))
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.CENTER)
    _par(doc, "{{p body }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.LEFT)
    # The blank line and the signature stay together with the end of the body (keep with next).
    _par(doc, "", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.LEFT, keep_next=True)
    _par(doc, "{{ issuer }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.RIGHT, right_indent=Pt(64), keep_next=True)
    _par(doc, "{{ issue_date }}", BODY_FONT, SIZE_3, WD_ALIGN_PARAGRAPH.RIGHT, right_indent=Pt(64))

    _page_number(section.footer, WD_ALIGN_PARAGRAPH.RIGHT)
    _page_number(section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(out)
    return out


if __name__ == "__main__":
    print(build())
