"""月度通报 (evaluators, administrators; leaders preview): the bulletin of the period picked here (default:
the latest complete month) as text,
tables and charts, with .docx/.pdf downloads of the bulletin and of the district report cards for
the accounts that may download (session.may_download), each download recorded in the audit log."""

import streamlit as st

from datasets.access import documents
from datasets.operations import admin as actions
from metrics import bulletin, bulletin_docx
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _session as session
from pages import _shared as shared

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

engine, app, user = ui.gate(catalog.PAGE_BULLETIN)
ctx = shared.current()
title = st.empty()
period = shared.own_period_picker(ctx, "bulletin_period")

inputs = bulletin.load_inputs(engine, ctx.comps, ctx.settings, period, detail=ctx.detail(), today=shared.today(),
                              cover=ctx.coverage)
doc = bulletin.build_bulletin(inputs)
template = bulletin_docx.template_for(engine)

title.title(f"月度通报 · {period.label}")
if inputs.note:
    st.warning(shared.plain(f"{period.label}数据未报齐。{inputs.note}"), icon=":material/schedule:")
st.caption(
    "按所选时段（月、季、年；默认为最近一个数据报齐的月份）自动生成通报：总体情况、区县排名、进步与退步、存在问题和下一步工作要求。"
    "数字与排名下载、总览页面一致；模板、城市名称、发文单位和工作要求由管理员在“设置”页修改。"
)


def _download(label: str, district: str | None, fmt: str, key: str) -> None:
    name = f"{bulletin_docx.file_stem(doc, district)}.{fmt}"
    what = "区县报告单" if district else "月度通报"
    numbered = district is None and inputs.doc_prefix.strip()
    if numbered:  # the 发文字号 goes into the audit entry and becomes the last number issued
        number = bulletin.doc_number(inputs.doc_prefix, inputs.today.year, inputs.sequence)
        record, args = documents.record_number, (
            engine, user.username, inputs.today.year, inputs.sequence,
            f"{name}（{what}，{period.label}，发文字号 {number}）", catalog.PAGE_BULLETIN)
    else:
        record, args = actions.record_download, (engine, user, f"{name}（{what}，{period.label}）",
                                                 catalog.PAGE_BULLETIN)
    st.download_button(
        label,
        # Generated when clicked (on a separate thread), so the page itself stays quick.
        lambda: bulletin_docx.generate(inputs, district, fmt, template)[0],
        file_name=name,
        mime=DOCX_MIME if fmt == "docx" else "application/pdf",
        key=key,
        on_click=record,
        args=args,
    )


template_problem = None
try:  # a stored template that is refused now (an older upload) must not fail inside a download
    bulletin_docx.check_template(template)
except bulletin_docx.TemplateError as exc:
    template_problem = str(exc)

if template_problem is not None and session.may_download(user, catalog.PAGE_BULLETIN):
    st.error(shared.plain(f"通报模板不可用，暂不能下载：{template_problem}。请管理员在“设置”页上传新模板或恢复默认模板。"))
elif session.may_download(user, catalog.PAGE_BULLETIN):
    pdf = bulletin_docx.soffice() is not None
    c1, c2 = st.columns(2)
    with c1.container(border=True):
        st.markdown("**月度通报**")
        if inputs.doc_prefix.strip():  # proposed: one after the last number issued this year
            inputs.sequence = int(st.number_input(
                f"发文字号序号（{inputs.doc_prefix}〔{inputs.today.year}〕□号）", min_value=1, max_value=9999,
                value=inputs.sequence, step=1, key="bulletin_sequence",
                help="按上一份下载的通报顺延；下载时记入审计日志"))
        _download("下载通报（Word）", None, "docx", "dl_bulletin_docx")
        if pdf:
            _download("下载通报（PDF）", None, "pdf", "dl_bulletin_pdf")
    with c2.container(border=True):
        st.markdown("**区县报告单**（每个区县一页）")
        choice = st.selectbox("区县", [bulletin_docx.ALL_DISTRICTS, *inputs.districts], key="bulletin_district",
                              format_func=lambda d: "全部区县" if d == bulletin_docx.ALL_DISTRICTS else d)
        _download("下载报告单（Word）", choice, "docx", "dl_reports_docx")
        if pdf:
            _download("下载报告单（PDF）", choice, "pdf", "dl_reports_pdf")
    if not pdf:
        st.caption("服务器上没有安装 LibreOffice，暂不能下载 PDF（安装方法见 README）。")
else:
    st.caption("下载通报和区县报告单（Word、PDF）需要“评估人员”或“管理员”角色；这里可以预览全文。")

st.divider()
st.markdown(f"### {shared.plain(doc.title)}")
for section in doc.sections:
    st.subheader(section.title)
    for n, block in enumerate(section.blocks):
        if isinstance(block, bulletin.Paragraph):
            st.markdown(("**" + shared.plain(block.text) + "**") if block.level == 2 else shared.plain(block.text))
        elif isinstance(block, bulletin.Table):
            st.caption(block.caption)
            shared.table(block.frame(), key=f"bulletin_{section.title}_{n}")
        else:
            st.vega_lite_chart(block.spec)
            st.caption(block.caption)
st.caption(f"{doc.issuer}　{doc.issue_date}")
