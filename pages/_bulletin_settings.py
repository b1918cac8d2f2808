"""The 设置 page's 月度通报 part (administrators): the Word template with the bureau's letterhead
(upload, download, back to the default), the city's and the issuer's names and the
五、下一步工作要求 text. Stored in the database and audited (datasets/access/documents.py)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from datasets.access import documents
from datasets.access.accounts import PermissionDenied, User
from metrics import bulletin, bulletin_docx
from pages import _shared as shared

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FLASH = "_bulletin_settings_flash"


def render(engine: Engine, admin: User) -> None:
    st.subheader("月度通报")
    for level, message in st.session_state.pop(FLASH, []):
        getattr(st, level)(message)
    with st.form("bulletin_texts"):
        city = st.text_input("城市名称", value=documents.get_text(engine, documents.CITY_NAME) or "",
                             placeholder=bulletin.default_city(engine), help="用于通报标题，如“澄州市”；留空用默认值")
        issuer = st.text_input("发文单位", value=documents.get_text(engine, documents.ISSUER) or "",
                               placeholder=bulletin.DEFAULT_ISSUER, help="红头和落款；不含城市名称时自动加在前面")
        prefix = st.text_input("发文字号的机关代字", value=documents.get_text(engine, documents.DOC_PREFIX) or "",
                               placeholder="如：澄政数", help="发文字号写作“机关代字〔年份〕序号号”，如 澄政数〔2026〕12号；"
                               "序号在下载通报时按上一份通报顺延（可改）。留空则通报不写发文字号")
        cc = st.text_input("抄送机关", value=documents.get_text(engine, documents.CC) or "",
                           placeholder="如：市委办公室，市政府办公室", help="写在版记的“抄送：”之后；留空则版记不列抄送")
        text = st.text_area("五、下一步工作要求（每段一行）", height=160,
                            value=documents.get_text(engine, documents.REQUIREMENTS) or bulletin.DEFAULT_REQUIREMENTS)
        saved = st.form_submit_button("保存通报文字")
    if saved:
        try:
            changed = [documents.save_text(engine, admin, key, value) for key, value in
                       ((documents.CITY_NAME, city), (documents.ISSUER, issuer), (documents.DOC_PREFIX, prefix),
                        (documents.CC, cc), (documents.REQUIREMENTS, text))]
        except PermissionDenied as exc:
            st.error(shared.plain(f"未保存：{exc}"))
        else:
            st.session_state[FLASH] = [("success", f"已保存 {sum(changed)} 项通报文字。") if any(changed)
                                       else ("info", "通报文字没有变化，未保存。")]
            st.rerun()

    stored = documents.info(engine, documents.TEMPLATE)
    st.markdown("**通报模板（Word）**")
    st.caption(
        "通报按模板生成：模板中必须有 {{ title }}（标题）和单独成段的 {{p body }}（正文），可选 {{ issuer }}（发文单位）、"
        "{{ issue_date }}（成文日期）、{{ city }}、{{ period }}、{{ doc_number }}（发文字号）、{{ cc }}（抄送）、"
        "{{ printer }}（印发机关）、{{ print_date }}（印发日期）。可以先下载当前模板，在 Word/WPS 中换成本单位的红头后上传。"
        f"模板中只能写这些占位符（不能有表达式、过滤器或 {{% %}} 语句），文件不超过 {bulletin_docx.MAX_TEMPLATE_MIB} MB。"
    )
    st.caption("当前：" + ("默认模板" if stored is None else
                          shared.plain(f"{stored['file_name']}（{stored['user_name']} 于 {stored['at']} 上传）")))
    c1, c2 = st.columns(2)
    c1.download_button("下载当前模板", bulletin_docx.template_for(engine), file_name="通报模板.docx", mime=DOCX_MIME,
                       key="bulletin_template_download")
    if stored is not None and c2.button("恢复默认模板", key="bulletin_template_reset"):
        bulletin_docx_reset(engine, admin)
    upload = st.file_uploader("上传新模板（.docx）", type=["docx"], key="bulletin_template_upload",
                              max_upload_size=bulletin_docx.MAX_TEMPLATE_MIB)
    if upload is not None and st.button("使用上传的模板", key="bulletin_template_save", type="primary"):
        content = upload.getvalue()
        try:
            bulletin_docx.check_template(content)
            documents.save_template(engine, admin, content, upload.name)
        except (bulletin_docx.TemplateError, PermissionDenied) as exc:
            st.error(shared.plain(f"模板未保存：{exc}"))
        else:
            st.session_state[FLASH] = [("success", shared.plain(f"已使用模板“{upload.name}”。"))]
            st.rerun()


def bulletin_docx_reset(engine: Engine, admin: User) -> None:
    try:
        documents.reset_template(engine, admin)
    except PermissionDenied as exc:
        st.error(shared.plain(f"未恢复：{exc}"))
        return
    st.session_state[FLASH] = [("success", "已恢复为默认模板。")]
    st.rerun()
