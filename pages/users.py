"""账号管理 (administrators): list, create, reset passwords, disable/enable, change roles and districts.

Every change goes through datasets/operations/admin.py, which checks the administrator role again and records
the actor in the audit log.
"""

import streamlit as st

from datasets.access import accounts
from datasets.operations import admin as actions
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

FLASH = "_users_flash"

engine, app, admin = ui.gate(catalog.PAGE_USERS)
assert admin is not None
accounts.require_admin(admin)

st.title("账号管理")
st.caption(catalog.roles_caption() + "工作人员只能上传所负责区县的数据。"
           "使用统一身份认证时，账号名填写该人员的邮箱。所有操作记入审计日志。")
flash = st.session_state.pop(FLASH, None)
if flash:
    st.success(shared.plain(flash), icon=":material/check_circle:")

shared.table(accounts.list_users(engine), key="users_table")

districts = actions.district_names(engine)
names = accounts.account_names(engine)


def done(message: str) -> None:
    st.session_state[FLASH] = message
    st.rerun()


def failed(exc: Exception) -> None:
    st.error(shared.plain(f"操作未完成：{exc}"))


# Keyed, so that the tab in use stays open after a save (st.rerun) instead of jumping back to the first.
new_tab, password_tab, active_tab, edit_tab, sessions_tab = st.tabs(
    ["新建账号", "重设密码", "停用 / 启用", "修改角色与区县", "登录会话"], key="users_tab", on_change="rerun")

with new_tab, st.form("user_new", clear_on_submit=True):
    c1, c2 = st.columns(2)
    username = c1.text_input("账号名", key="new_username", max_chars=100, placeholder="如 zhangsan 或 邮箱")
    display_name = c2.text_input("姓名", key="new_display_name", max_chars=100)
    roles = st.multiselect("角色", list(accounts.ROLES), key="new_roles", placeholder="选择一个或多个角色")
    scope = st.multiselect("负责区县（工作人员只能上传这些区县的数据）", districts, key="new_districts",
                           placeholder="选择区县")
    sso_only = st.checkbox("仅使用统一身份认证登录（不设密码）", key="new_sso_only")
    c3, c4 = st.columns(2)
    password = c3.text_input("初始密码", type="password", key="new_password", autocomplete="new-password")
    repeat = c4.text_input("再次输入初始密码", type="password", key="new_repeat", autocomplete="new-password")
    create = st.form_submit_button("新建账号", type="primary")
if create:
    if not sso_only and password != repeat:
        st.error("两次输入的初始密码不一致。")
    else:
        try:
            made = actions.create_account(engine, admin, username, display_name, roles, scope,
                                          None if sso_only else password)
        except (ValueError, accounts.PermissionDenied) as exc:
            failed(exc)
        else:
            note = "。注意：尚未分配区县，暂不能上传数据" if made.can_upload and not made.districts else ""
            done(f"已新建账号 {made.username}（{actions.roles_text(made)}）{note}")

with password_tab, st.form("user_password", clear_on_submit=True):
    target = st.selectbox("账号", names, key="pw_target", index=None, placeholder="选择账号")
    c1, c2 = st.columns(2)
    new_password = c1.text_input("新密码", type="password", key="pw_reset", autocomplete="new-password")
    new_repeat = c2.text_input("再次输入新密码", type="password", key="pw_reset_repeat", autocomplete="new-password")
    reset = st.form_submit_button("重设密码", type="primary")
if reset:
    if not target:
        st.error("请选择账号。")
    elif new_password != new_repeat:
        st.error("两次输入的新密码不一致。")
    else:
        try:
            actions.reset_password(engine, admin, target, new_password)
        except (ValueError, accounts.PermissionDenied) as exc:
            failed(exc)
        else:
            done(f"已重设账号 {target} 的密码（连续输错造成的锁定同时解除）")

with active_tab, st.form("user_active"):
    target = st.selectbox("账号", names, key="active_target", index=None, placeholder="选择账号")
    action = st.radio("操作", ["停用", "启用"], key="active_action", horizontal=True)
    apply_active = st.form_submit_button("确定", type="primary")
if apply_active:
    if not target:
        st.error("请选择账号。")
    else:
        try:
            actions.set_account_active(engine, admin, target, action == "启用")
        except (ValueError, accounts.PermissionDenied) as exc:
            failed(exc)
        else:
            done(f"已{action}账号 {target}")

with edit_tab:
    target = st.selectbox("账号", names, key="edit_target", index=None, placeholder="选择账号")
    current = accounts.get_user(engine, target) if target else None
    if current is not None:
        # Keys carry the account so that the defaults follow the chosen account.
        with st.form(f"user_edit_{names.index(target)}"):
            roles = st.multiselect("角色", list(accounts.ROLES), default=list(current.roles),
                                   key=f"edit_roles_{names.index(target)}")
            scope = st.multiselect("负责区县", districts, default=[d for d in current.districts if d in districts],
                                   key=f"edit_districts_{names.index(target)}")
            save = st.form_submit_button("保存", type="primary")
        if save:
            try:
                actions.change_account(engine, admin, target, roles, scope)
            except (ValueError, accounts.PermissionDenied) as exc:
                failed(exc)
            else:
                done(f"已修改账号 {target} 的角色与区县")

with sessions_tab:
    st.caption(f"当前有效的登录会话（{app.session_idle_minutes} 分钟无操作或登录满 {app.session_max_hours:g} 小时自动结束）。"
               "退出登录、修改或重设密码、停用账号都会结束该账号的全部会话；结束会话后，该账号在对应浏览器中的"
               "下一次操作即需重新登录。")
    open_now = actions.open_sessions(engine, admin, idle_minutes=app.session_idle_minutes)
    shared.table(open_now, key="sessions_table")
    if open_now.height:
        labels = actions.session_labels(open_now)
        with st.form("session_end"):
            chosen = st.selectbox("结束一个会话", list(labels), key="session_target", index=None,
                                  format_func=labels.get, placeholder="选择会话")
            end_one = st.form_submit_button("结束此会话", type="primary")
        if end_one:
            if chosen is None:
                st.error("请选择会话。")
            else:
                try:
                    owner = actions.end_session(engine, admin, chosen)
                except (ValueError, accounts.PermissionDenied) as exc:
                    failed(exc)
                else:
                    done(f"已结束账号 {owner} 的登录会话 {chosen}")
        with st.form("session_end_all"):
            owner = st.selectbox("结束一个账号的全部会话", actions.session_accounts(open_now),
                                 key="session_account", index=None, placeholder="选择账号")
            end_all = st.form_submit_button("结束全部会话", type="primary")
        if end_all:
            if owner is None:
                st.error("请选择账号。")
            else:
                try:
                    count = actions.end_account_sessions(engine, admin, owner)
                except (ValueError, accounts.PermissionDenied) as exc:
                    failed(exc)
                else:
                    done(f"已结束账号 {owner} 的全部登录会话（{count} 个）")
