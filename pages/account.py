"""修改密码: change one's own password; sign out."""

import streamlit as st

from datasets.access import accounts
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _session as session

engine, app, user = ui.gate(catalog.PAGE_ACCOUNT)
assert user is not None  # the gate admits signed-in users only

st.title("修改密码")
st.markdown(f"当前账号：{ui.who(user)}")

if session.session_method(st.session_state) == session.SSO:
    st.info("您通过统一身份认证登录，密码由统一身份认证系统管理，请在该系统中修改。", icon=":material/badge:")
else:
    st.caption(f"新密码至少 {accounts.MIN_PASSWORD_LENGTH} 位。修改后此账号的所有登录（包括本窗口和其他设备）"
               "都会结束，请使用新密码重新登录。")
    with st.form("password_form", clear_on_submit=True):
        old = st.text_input("原密码", type="password", key="pw_old", autocomplete="current-password")
        new = st.text_input("新密码", type="password", key="pw_new", autocomplete="new-password")
        repeat = st.text_input("再次输入新密码", type="password", key="pw_repeat", autocomplete="new-password")
        submitted = st.form_submit_button("修改密码", type="primary")
    if submitted:
        if not old or not new:
            st.error("请填写原密码和新密码。")
        elif new != repeat:
            st.error("两次输入的新密码不一致。")
        else:
            try:
                accounts.change_own_password(engine, user.username, old, new, page=catalog.PAGE_ACCOUNT)
            except ValueError as exc:
                st.error(f"密码未修改：{exc}。")
            else:
                st.rerun()  # every session of the account has ended: the login page says why

st.divider()
st.subheader("退出登录")
if st.button("退出登录", key="account_sign_out", icon=":material/logout:"):
    ui.finish_sign_out(session.sign_out(st.session_state, engine, page=catalog.PAGE_ACCOUNT))
