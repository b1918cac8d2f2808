"""Sign-in sessions and page permissions: the dashboard's UI state (a page or dashboard.py imports this).

Independent of Streamlit widgets: every function takes the session as a plain mutable mapping
(``st.session_state`` in the app, a dict in tests), the engine and, where it matters, ``now``.

- ``current_user`` is called on every run: it ends a session after ``SESSION_IDLE_MINUTES`` without
  activity, re-reads the account (a disabled account or changed roles take effect at once) and
  refreshes the last-seen time.
- ``page_access`` reads the page catalog (pages/_catalog.py): who may open which page, which pages
  are public, where a session lands.
- Account data, the audit log and the administration actions stay in datasets/ (accounts.py,
  admin.py); this module only keeps who is signed in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from sqlalchemy.engine import Engine

from datasets import accounts, store
from datasets.accounts import SESSION_IDLE_MINUTES, User
from datasets.config import AppSettings
from pages._catalog import BY_TITLE, CATALOG, HOME_ORDER, PAGE_ACCOUNT, PAGE_LOGIN

# --- session keys -------------------------------------------------------------------------------

USER_KEY = "_auth_user"
SEEN_KEY = "_auth_last_seen"
METHOD_KEY = "_auth_method"
NOTICE_KEY = "_auth_notice"
SSO_PAUSED_KEY = "_auth_sso_paused"
SSO_REJECTED_KEY = "_auth_sso_rejected"
NEXT_KEY = "_auth_next_page"  # the page a visitor asked for before signing in
_SESSION_KEYS = (USER_KEY, SEEN_KEY, METHOD_KEY)

PASSWORD, SSO = "password", "sso"


# --- permissions ----------------------------------------------------------------------------------


def page_access(user: User | None, page_name: str, *, anonymous_ok: bool = False) -> bool:
    """Whether ``user`` (None: not signed in) may open the page called ``page_name``.

    The login page is for visitors who have not signed in. Unknown page names are refused.
    """
    if page_name == PAGE_LOGIN:
        return user is None
    spec = BY_TITLE.get(page_name)
    if spec is None:
        return False
    if user is None:
        return anonymous_ok and spec.public
    return bool(spec.roles & set(user.roles))


def pages_for(user: User | None, *, anonymous_ok: bool = False) -> list[str]:
    """The page names ``user`` may open, in the catalog's order (the login page last, for visitors)."""
    names = [p.title for p in CATALOG if p.title != PAGE_LOGIN and page_access(user, p.title, anonymous_ok=anonymous_ok)]
    return [*names, PAGE_LOGIN] if user is None else names


def home_page(user: User | None, *, anonymous_ok: bool = False, among: Iterable[str] | None = None) -> str:
    """The page a session lands on: the overview when allowed, else the first page it may open.

    ``among``: the pages the navigation has now (e.g. 开始使用 instead of 总览 while there is no data).
    """
    present = None if among is None else set(among)
    for name in HOME_ORDER:
        if (present is None or name in present) and page_access(user, name, anonymous_ok=anonymous_ok):
            return name
    return PAGE_LOGIN if user is None else PAGE_ACCOUNT


def redirect_for(user: User | None, page_name: str, *, anonymous_ok: bool = False,
                 among: Iterable[str] | None = None) -> str | None:
    """None when the page may be shown; otherwise the page to switch to instead.

    A visitor is sent to the login page; a signed-in user without the role (or on the login page) home.
    """
    if page_access(user, page_name, anonymous_ok=anonymous_ok):
        return None
    if user is None:
        return PAGE_LOGIN
    return home_page(user, anonymous_ok=anonymous_ok, among=among)


def arrange(sections: Mapping[str, Iterable[str]], user: User | None, *,
            anonymous_ok: bool = False) -> tuple[dict[str, list[str]], list[str], str]:
    """Split a navigation (section -> page names) for ``user``: (menu, hidden, home).

    ``menu`` keeps the sections and pages the user may open (empty sections dropped); ``hidden`` lists
    the other pages, which stay registered so that a link to them can be answered with a redirect
    (``route``) instead of "page not found"; ``home`` is the default page among the menu's pages.
    """
    menu: dict[str, list[str]] = {}
    hidden: list[str] = []
    for section, names in sections.items():
        for name in names:
            if page_access(user, name, anonymous_ok=anonymous_ok):
                menu.setdefault(section, []).append(name)
            else:
                hidden.append(name)
    shown = [name for names in menu.values() for name in names]
    return menu, hidden, home_page(user, anonymous_ok=anonymous_ok, among=shown)


def route(state: MutableMapping[str, Any], user: User | None, page_name: str, *, anonymous_ok: bool = False,
          among: Iterable[str] | None = None) -> str | None:
    """None when ``page_name`` may be shown; otherwise the page to switch to, with a notice left for it.

    A visitor is sent to the login page ("please sign in first") and the page asked for is remembered:
    once signed in, the session goes there (when the account may open it), else home. A signed-in user
    without the role goes home ("no permission"). A notice already waiting (why the last session
    ended) is kept.
    """
    target = redirect_for(user, page_name, anonymous_ok=anonymous_ok, among=among)
    if target is None:
        return None
    if page_name == PAGE_LOGIN:
        wanted = state.pop(NEXT_KEY, None)
        present = None if among is None else set(among)
        if wanted and page_access(user, wanted, anonymous_ok=anonymous_ok) and (present is None or wanted in present):
            return wanted
        return target
    if user is None:
        state[NEXT_KEY] = page_name
    if NOTICE_KEY in state:
        return target
    if user is None:
        state[NOTICE_KEY] = f"“{page_name}”页面需要登录后才能查看，请先登录。"
    else:
        state[NOTICE_KEY] = f"当前账号没有“{page_name}”页面的权限，已转到“{target}”页面。"
    return target


def may_download(user: User | None, page_name: str) -> bool:
    """Whether ``user`` may download the ranked tables of a page (the catalog's ``download_roles``).

    Leaders view the ranking and preview the bulletin only.
    """
    spec = BY_TITLE.get(page_name)
    return user is not None and spec is not None and bool(spec.download_roles & set(user.roles))


def anonymous_allowed(app_settings: AppSettings) -> bool:
    """Viewing without signing in: ``anonymous_view`` when set, else only in demo mode (embedded store)."""
    if app_settings.anonymous_view is not None:
        return bool(app_settings.anonymous_view)
    return app_settings.embedded


# --- sessions -------------------------------------------------------------------------------------


def _end(state: MutableMapping[str, Any]) -> None:
    for key in _SESSION_KEYS:
        state.pop(key, None)


def sign_in(state: MutableMapping[str, Any], user: User, *, method: str = PASSWORD,
            now: dt.datetime | None = None) -> None:
    """Start a session for an authenticated user (after ``accounts.authenticate`` or SSO mapping)."""
    state[USER_KEY] = user
    state[SEEN_KEY] = now or store.now()
    state[METHOD_KEY] = method
    state.pop(NOTICE_KEY, None)
    state.pop(SSO_PAUSED_KEY, None)
    state.pop(SSO_REJECTED_KEY, None)


def session_user(state: Mapping[str, Any]) -> User | None:
    """The signed-in user as ``current_user`` left it this run (no database access, no expiry check)."""
    user = state.get(USER_KEY)
    return user if isinstance(user, User) else None


def session_method(state: Mapping[str, Any]) -> str | None:
    """How the session signed in: ``PASSWORD``, ``SSO`` or None."""
    return state.get(METHOD_KEY) if session_user(state) else None


def current_user(state: MutableMapping[str, Any], engine: Engine, now: dt.datetime | None = None,
                 *, idle_minutes: int = SESSION_IDLE_MINUTES) -> User | None:
    """The signed-in user, or None.

    Ends the session (audited, with a notice for the login page) after ``idle_minutes`` without a
    run, or when the account was disabled or removed; otherwise re-reads the account so that role
    and district changes apply at once, and refreshes the last-seen time.
    """
    user = session_user(state)
    if user is None:
        return None
    now = now or store.now()
    last = state.get(SEEN_KEY)
    if not isinstance(last, dt.datetime) or accounts.session_expired(last, now, idle_minutes):
        _end(state)
        state[SSO_PAUSED_KEY] = True
        state[NOTICE_KEY] = f"超过 {idle_minutes} 分钟未操作，已自动退出登录，请重新登录。"
        accounts.audit(engine, user.username, "logout", f"超过 {idle_minutes} 分钟未操作，会话过期")
        return None
    fresh = accounts.get_user(engine, user.username)
    if fresh is None or not fresh.active:
        _end(state)
        state[SSO_PAUSED_KEY] = True
        state[NOTICE_KEY] = "账号已停用或已删除，已退出登录。"
        accounts.audit(engine, user.username, "logout", "账号已停用或已删除，会话结束")
        return None
    state[USER_KEY] = fresh
    state[SEEN_KEY] = now
    return fresh


def pop_notice(state: MutableMapping[str, Any]) -> str | None:
    """A message for the login page (why the last session ended, or why SSO gave no access), once."""
    return state.pop(NOTICE_KEY, None)


def sign_out(state: MutableMapping[str, Any], engine: Engine, *, page: str = PAGE_ACCOUNT) -> str | None:
    """End the session (audited). Returns how it had signed in (``PASSWORD``/``SSO``), None if nobody had.

    After ``SSO`` the page should also call ``st.logout()`` to remove the identity cookie.
    """
    user = session_user(state)
    method = state.get(METHOD_KEY)
    _end(state)
    state[SSO_PAUSED_KEY] = True
    if user is None:
        return None
    detail = "退出登录（统一身份认证）" if method == SSO else "退出登录"
    accounts.audit(engine, user.username, "logout", detail, page)
    return method or PASSWORD


# --- the reload token (a signed, expiring cookie) -----------------------------------------------------

TOKEN_MINUTES = SESSION_IDLE_MINUTES
TOKEN_REFRESH_MINUTES = 5
TOKEN_KEY = "_auth_token_issued"  # when this session last wrote the cookie
RESTORED_KEY = "_auth_cookie_checked"  # the cookie is read once, on a session's first run


def _token_key(engine: Engine, username: str, server_secret: str) -> bytes | None:
    """The HMAC key of one account: the server secret and the account's password hash (server-side only).

    A password change, reset or account removal therefore invalidates every token issued before it.
    """
    state = accounts.password_state(engine, username)
    if state is None or not state[0] or not state[1]:
        return None
    return hashlib.sha256(f"{server_secret}\x00{state[0]}".encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def session_token(engine: Engine, user: User, server_secret: str, now: dt.datetime | None = None,
                  minutes: int = TOKEN_MINUTES) -> str | None:
    """``<account>.<expiry>.<signature>`` for the reload cookie; None when the account has no password."""
    key = _token_key(engine, user.username, server_secret)
    if key is None:
        return None
    expires = int(((now or store.now()) + dt.timedelta(minutes=minutes)).timestamp())
    body = f"{_b64(user.username.encode())}.{expires}"
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def user_from_token(engine: Engine, token: str | None, server_secret: str,
                    now: dt.datetime | None = None) -> User | None:
    """The account a valid, unexpired token names (None for anything else: malformed, forged, expired)."""
    if not token or token.count(".") != 2:
        return None
    name_part, expires, signature = token.split(".")
    try:
        username = base64.urlsafe_b64decode(name_part + "=" * (-len(name_part) % 4)).decode()
        expiry = int(expires)
    except (ValueError, UnicodeDecodeError):
        return None
    if expiry < (now or store.now()).timestamp():
        return None
    key = _token_key(engine, username, server_secret)
    if key is None:
        return None
    wanted = _b64(hmac.new(key, f"{name_part}.{expires}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(wanted, signature):
        return None
    return accounts.get_user(engine, username)


def restore_from_token(state: MutableMapping[str, Any], engine: Engine, token: str | None, server_secret: str,
                       now: dt.datetime | None = None) -> User | None:
    """On a session's first run (a page reload), sign in the account a valid cookie token names."""
    if state.get(RESTORED_KEY):
        return None
    state[RESTORED_KEY] = True
    if session_user(state) is not None:
        return None
    user = user_from_token(engine, token, server_secret, now)
    if user is not None:
        sign_in(state, user, now=now)
    return user


def token_due(state: Mapping[str, Any], now: dt.datetime | None = None) -> bool:
    """Whether the session should (re)write its cookie: password sessions, every few minutes."""
    if session_method(state) != PASSWORD:
        return False
    issued = state.get(TOKEN_KEY)
    now = now or store.now()
    return not isinstance(issued, dt.datetime) or now - issued >= dt.timedelta(minutes=TOKEN_REFRESH_MINUTES)


# --- single sign-on -------------------------------------------------------------------------------

_SSO_REQUIRED = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


def sso_configured(secrets: Mapping[str, Any]) -> bool:
    """Whether .streamlit/secrets.toml has an ``[auth]`` section for ``st.login()`` (the default provider)."""
    try:
        section = secrets.get("auth")
    except (FileNotFoundError, KeyError, AttributeError):  # st.secrets without a secrets.toml
        return False
    if not isinstance(section, Mapping):
        return False
    return all(str(section.get(key) or "").strip() for key in _SSO_REQUIRED)


def _identity_key(identity: Mapping[str, Any]) -> str:
    return str(identity.get("sub") or identity.get("email") or "")


def identity_label(identity: Mapping[str, Any]) -> str:
    """How to name an SSO identity to its owner: the e-mail, else the name, else the subject."""
    return str(identity.get("email") or identity.get("name") or identity.get("sub") or "（未知身份）")


def sso_pending(state: Mapping[str, Any], identity: Mapping[str, Any]) -> bool:
    """True when an SSO identity is present and should be mapped now.

    Not when someone is signed in, after a sign-out or expiry in this session (the user must ask
    again), or when this identity was already found to have no account.
    """
    if not identity.get("is_logged_in") or session_user(state) is not None:
        return False
    if state.get(SSO_PAUSED_KEY):
        return False
    return state.get(SSO_REJECTED_KEY) != _identity_key(identity)


def sign_in_sso(state: MutableMapping[str, Any], engine: Engine, identity: Mapping[str, Any],
                now: dt.datetime | None = None) -> User | None:
    """Map an SSO identity (``st.user.to_dict()``) to an active account and sign it in.

    No account (or a disabled one) → None, a notice for the page, and no access. Audited by
    ``accounts.user_for_identity``.
    """
    if not identity.get("is_logged_in"):
        return None
    user = accounts.user_for_identity(engine, dict(identity))
    if user is None:
        state[SSO_REJECTED_KEY] = _identity_key(identity)
        state[NOTICE_KEY] = (
            f"统一身份认证已通过（{identity_label(identity)}），但系统中没有对应的可用账号。"
            "请联系管理员在“账号管理”中以该邮箱为账号名开通并分配角色。"
        )
        return None
    sign_in(state, user, method=SSO, now=now)
    return user
