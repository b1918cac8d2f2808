"""区县配置 (administrators): the districts that uploaded files are matched against — name, 区划代码
and aliases — listed, added and edited; every change is audited."""

import streamlit as st

from datasets import accounts, store
from datasets import admin as actions
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

NEW = "（新增区县）"

engine, app, user = ui.gate(catalog.PAGE_DISTRICTS)
assert user is not None  # the gate admits 管理员 only
st.title("区县配置")
st.caption("上传文件中的区县名称、区划代码或别名必须能对应到这里配置的区县。名称一经使用不可修改（已导入的数据按名称归属）；"
           "代码和别名可以随时修改，修改记入审计日志。")
flash = st.session_state.pop("_districts_flash", None)
if flash:
    st.success(shared.plain(flash))

table = store.list_districts(engine)
shared.table(actions.districts_shown(table), key="districts_table")

st.subheader("新增或修改")
names = table["name"].to_list()
choice = st.selectbox("区县", [NEW, *names], key="district_choice")
current = None if choice == NEW else table.row(names.index(choice), named=True)
with st.form("district_form"):
    name = st.text_input("区县名称", value="" if current is None else current["name"], disabled=current is not None,
                         key=f"district_name_{choice}")
    code = st.text_input("区划代码（可不填）", value="" if current is None else (current["code"] or ""),
                         key=f"district_code_{choice}")
    aliases = st.text_input("别名（多个用顿号或逗号分隔）",
                            value="" if current is None else "、".join(current["aliases"]),
                            key=f"district_aliases_{choice}")
    submitted = st.form_submit_button("保存", type="primary")
if submitted:
    parts = [a for chunk in aliases.replace("，", "、").replace(",", "、").split("、") for a in [chunk.strip()] if a]
    try:
        message = actions.save_district(engine, user, current["name"] if current else name, code, parts)
    except (ValueError, accounts.PermissionDenied) as exc:
        st.error(shared.plain(str(exc)))
    else:
        st.session_state["_districts_flash"] = message
        st.rerun()
