"""What the account pages share: the permission gate and the signed-in user box for the sidebar.

The engine and settings come from dashboard.py through ``pages._shared.engine_only()`` like every
other page; the permission rules are in pages/_session.py and pages/_catalog.py.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from datasets.access.accounts import User
from datasets.common.config import AppSettings
from datasets.operations import admin as actions
from pages import _session as session
from pages import _shared as shared


def gate(page_name: str) -> tuple[Engine, AppSettings, User | None]:
    """The engine, the settings and the signed-in user; stops the page when the user may not open it."""
    engine, app = shared.engine_only()
    user = session.current_user(st.session_state, engine, idle_minutes=app.session_idle_minutes)
    if not session.page_access(user, page_name, anonymous_ok=session.anonymous_allowed(app)):
        st.title(page_name)
        notice = session.pop_notice(st.session_state)
        if notice:
            st.warning(shared.plain(notice))
        if user is None:
            st.warning("请先登录。", icon=":material/login:")
        else:
            st.error(f"当前账号没有“{page_name}”页面的权限。", icon=":material/block:")
        st.stop()
    return engine, app, user


def who(user: User) -> str:
    """Name, account and roles of a user, made inert for Markdown."""
    return shared.plain(f"{user.display_name}（{user.username}）· {actions.roles_text(user)}")


def finish_sign_out(method: str | None) -> None:
    """After ``session.sign_out``: an SSO session also drops the identity cookie (st.logout starts a new session)."""
    if method == session.SSO:
        st.logout()
    st.rerun()


def account_box(engine: Engine, user: User | None, page: str = "") -> None:
    """For the sidebar (dashboard.py): who is signed in, and a sign-out button (``page``: the page shown, for the log)."""
    if user is None:
        return
    with st.sidebar.container(border=True):
        st.caption("当前账号")
        st.markdown(who(user))
        if st.button("退出登录", key="sidebar_sign_out", icon=":material/logout:"):
            finish_sign_out(session.sign_out(st.session_state, engine, page=page))
