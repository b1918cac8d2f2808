"""登录: account and password (with lockout), single sign-on when configured, demo accounts in demo mode."""

import streamlit as st
from streamlit.errors import StreamlitAuthError, StreamlitMissingAuthlibError

from datasets.access import accounts
from datasets.operations import admin as actions
from pages import _auth_ui as ui
from pages import _browser as browser
from pages import _catalog as catalog
from pages import _session as session
from pages import _shared as shared

engine, app = shared.engine_only()
state = st.session_state
user = session.current_user(state, engine, idle_minutes=app.session_idle_minutes)
sso = session.sso_configured(st.secrets)
identity = st.user.to_dict() if sso else {}
if user is None and sso and session.sso_pending(state, identity):
    # Back from the identity provider: map the identity to an account.
    user = session.sign_in_sso(state, engine, identity, max_hours=app.session_max_hours, **browser.client_info())
    if user is not None:
        st.rerun()

st.title("登录")
notice = session.pop_notice(state)
if notice:
    st.warning(shared.plain(notice), icon=":material/info:")

if user is not None:
    st.success(f"已登录：{ui.who(user)}", icon=":material/check_circle:")
    st.caption("请从左侧菜单选择页面。")
    if st.button("退出登录", key="login_sign_out"):
        ui.finish_sign_out(session.sign_out(state, engine, page=catalog.PAGE_LOGIN))
else:
    # Before the form: a sign-in sent while the first run was still creating them failed (账号或密码不正确).
    demo = actions.demo_accounts(engine, app)
    if session.anonymous_allowed(app):
        st.caption("未登录也可以查看总览、区县对比、时段对比和指标说明；上传数据、下载排名和管理功能需要登录。")
    with st.form("login_form", clear_on_submit=True):
        username = st.text_input("账号", key="login_username", max_chars=100, autocomplete="username")
        password = st.text_input("密码", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("登录", type="primary", icon=":material/login:")
    if submitted:
        if not username.strip() or not password:
            st.error("请输入账号和密码。")
        else:
            result = accounts.authenticate(engine, username, password, page=catalog.PAGE_LOGIN)
            if result.user is not None:
                session.sign_in(state, engine, result.user, max_hours=app.session_max_hours,
                                **browser.client_info())
                st.rerun()
            st.error(shared.plain(result.message))

    if sso:
        st.divider()
        if st.button("使用统一身份认证登录", key="login_sso", icon=":material/badge:"):
            if identity.get("is_logged_in"):
                # The identity cookie is still there (after a sign-out or an expired session): map it again.
                if session.sign_in_sso(state, engine, identity, max_hours=app.session_max_hours,
                                       **browser.client_info()) is not None:
                    st.rerun()
                st.error(shared.plain(session.pop_notice(state) or "统一身份认证登录失败。"))
            else:
                try:
                    st.login()
                except StreamlitMissingAuthlibError:
                    st.error("统一身份认证不可用：服务器未安装 Authlib（pip install \"Authlib>=1.3.2\"）。")
                except StreamlitAuthError as exc:
                    st.error(f"统一身份认证配置有误（.streamlit/secrets.toml 的 [auth] 部分）：{exc}")

    if not app.embedded and actions.needs_first_admin(engine):
        st.info("系统中还没有可用的管理员账号。请在服务器上运行 "
                "`python -m datasets users add admin --role 管理员` 创建第一个管理员。", icon=":material/info:")

    if demo.height:
        st.subheader("示例账号")
        st.caption("示例模式（内置数据库）下自动创建，密码公开，仅用于演示。接入正式数据库后这些账号不可用。")
        shared.table(demo, key="demo_accounts")
