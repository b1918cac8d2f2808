"""区县配置 (administrators): the districts that uploaded files are matched against — name, 区划代码
and aliases — listed, added and edited; every change is audited."""

import streamlit as st

from datasets.access import accounts
from datasets.intake import boundaries
from datasets.operations import admin as actions
from datasets.storage import store
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

st.subheader("区县边界（地图）")
st.caption("地图按区划代码自动使用内置的全国区县边界数据。没有自己代码的区县（新区、开发区）可上传一个 GeoJSON 文件"
           f"（一个或多个多边形，经纬度坐标，经度在前，不超过 {boundaries.MAX_UPLOAD_MB} MB）；上传的边界优先于按代码匹配的边界，上传记入审计日志。")
if names:
    shape_district = st.selectbox("区县", names, key="shape_district")
    shape_file = st.file_uploader("边界文件（.geojson / .json）", type=["geojson", "json"], key="shape_file",
                                  max_upload_size=boundaries.MAX_UPLOAD_MB)
    upload_col, remove_col = st.columns(2)
    if upload_col.button("上传边界", type="primary", disabled=shape_file is None, key="shape_upload"):
        assert shape_file is not None
        try:
            message = actions.upload_district_shape(engine, user, shape_district, shape_file.getvalue(),
                                                    shape_file.name)
        except (ValueError, accounts.PermissionDenied) as exc:
            st.error(shared.plain(str(exc)))
        else:
            st.session_state["_districts_flash"] = message
            st.rerun()
    if remove_col.button("删除已上传的边界", key="shape_remove"):
        st.session_state["_districts_flash"] = actions.remove_district_shape(engine, user, shape_district)
        st.rerun()
