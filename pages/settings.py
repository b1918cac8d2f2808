"""设置 (administrators): weights, targets, floors and counting rules, validated, saved with who/when/
old/new (and in the audit log), and applied to the index at once; the change history below."""

import streamlit as st

from datasets.access import accounts
from metrics import settings_form
from metrics.admin import save_scoring
from metrics.scoring import default_settings, settings_history
from pages import _auth_ui as ui
from pages import _bulletin_settings as bulletin_settings
from pages import _catalog as catalog
from pages import _shared as shared

ROUND, FLASH = "_settings_round", "_settings_flash"

engine, app, admin = ui.gate(catalog.PAGE_SETTINGS)
assert admin is not None  # the gate admits administrators only
settings = shared.scoring_now()

st.title("设置")
st.caption(
    "调整各指标的权重、目标值（得 100 分）和底线值（得 0 分）以及统计规则。百分比类指标按百分数填写（95 表示 95%）；"
    "“越低越好”的指标底线值应高于目标值。保存后立即用于效能指数和排名，每项修改都会记录操作人、时间、原值和新值。"
)
st.caption(f"操作人：{ui.who(admin)}")
for level, message, changes in st.session_state.pop(FLASH, []):
    getattr(st, level)(message)
    if changes is not None:
        shared.table(changes, key="settings_changes")

round_no = st.session_state.setdefault(ROUND, 0)
with st.form(f"settings_form_{round_no}"):
    st.markdown("**指标权重、目标值与底线值**")
    shared.wide_hint("settings_editor", rest="权重、目标值和底线值")
    edited = st.data_editor(
        settings_form.settings_frame(settings),
        key=f"settings_editor_{round_no}",
        hide_index=True,
        disabled=["编号", "分组", "指标", "方向", "单位"],
        column_config={
            "编号": None,
            "权重": st.column_config.NumberColumn("权重", min_value=0.0, step=0.5, required=True),
            "目标值": st.column_config.NumberColumn("目标值", step=0.1, required=True,
                                                 help="得 100 分的取值；百分比类指标填百分数"),
            "底线值": st.column_config.NumberColumn("底线值", step=0.1, required=True,
                                                 help="得 0 分的取值；百分比类指标填百分数"),
        },
        height="content",
    )
    st.markdown("**统计与排名规则**")
    rule_columns = st.columns(3)
    rules: dict[str, float | bool] = {}
    for n, (name, (label, description)) in enumerate(settings_form.RULE_LABELS.items()):
        value, col = getattr(settings.rules, name), rule_columns[n % 3]
        if isinstance(value, bool):
            rules[name] = col.checkbox(label, value=value, help=description, key=f"rule_{name}_{round_no}")
        else:
            rules[name] = col.number_input(label, value=int(value), step=1, help=description,
                                           key=f"rule_{name}_{round_no}")
    submitted = st.form_submit_button("保存设置", type="primary")

if submitted:
    try:
        new = settings_form.settings_from_frame(settings_form.as_polars(edited), rules)
        changes = save_scoring(engine, admin, new)
    except settings_form.SettingsError as exc:
        st.error("设置未保存：" + "；".join(exc.messages))
    except accounts.PermissionDenied as exc:
        st.error(shared.plain(f"设置未保存：{exc}"))
    else:
        if changes:
            st.session_state[FLASH] = [("success", f"已保存 {len(changes)} 项修改，效能指数和排名已按新设置重新计算。",
                                        settings_form.changes_table(changes))]
        else:
            st.session_state[FLASH] = [("info", "设置没有变化，未保存。", None)]
        st.session_state[ROUND] = round_no + 1
        st.rerun()

with st.expander("恢复为配置文件中的默认值"):
    st.caption("将全部权重、目标值、底线值和统计规则恢复为系统默认取值（随程序发布的配置文件中的取值）（作为一次修改记录在日志中）。")
    if st.button("恢复默认值", key="settings_reset"):
        changes = save_scoring(engine, admin, default_settings())
        st.session_state[FLASH] = [("success", f"已恢复默认值（{len(changes)} 项修改）。", settings_form.changes_table(changes))]
        st.session_state[ROUND] = round_no + 1
        st.rerun()

bulletin_settings.render(engine, admin)

st.subheader("修改记录")
shared.table(settings_form.history_table(settings_history(engine)), key="settings_history", max_rows=8)
