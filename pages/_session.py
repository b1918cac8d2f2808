"""Sign-in sessions and page permissions: the dashboard's UI state (a page or dashboard.py imports this).

Independent of Streamlit widgets: every function takes the session as a plain mutable mapping
(``st.session_state`` in the app, a dict in tests), the engine and, where it matters, ``now``.

- ``current_user`` is called on every run: it checks the session's record in the store
  (datasets/access/sessions.py: revoked, idle, past its absolute end), re-reads the account (a disabled
  account or changed roles take effect at once) and records the activity.
- ``restore_from_cookie``/``cookie_action``: the reload cookie holds only the session's random id.
- ``page_access`` reads the page catalog (pages/_catalog.py): who may open which page, which pages
  are public, where a session lands.
- Account data, the audit log and the administration actions stay in datasets/ (accounts.py,
  admin.py); this module only keeps who is signed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from sqlalchemy.engine import Engine

from datasets.access import accounts, sessions
from datasets.access.accounts import SESSION_IDLE_MINUTES, User
from datasets.common.config import AppSettings
from datasets.storage import store
from pages._catalog import BY_TITLE, CATALOG, HOME_ORDER, PAGE_ACCOUNT, PAGE_LOGIN

# --- session keys -------------------------------------------------------------------------------

USER_KEY = "_auth_user"
SEEN_KEY = "_auth_last_seen"  # this session's last run
TOUCHED_KEY = "_auth_touched"  # when this session last wrote last_seen_at to the store
METHOD_KEY = "_auth_method"
SID_KEY = "_auth_session_id"  # the store's record of the session (datasets/access/sessions.py)
TOKEN_KEY = "_auth_session_token"  # the random token of the cookie (server memory only)
EXPIRES_KEY = "_auth_session_expires"
NOTICE_KEY = "_auth_notice"
SSO_PAUSED_KEY = "_auth_sso_paused"
SSO_REJECTED_KEY = "_auth_sso_rejected"
NEXT_KEY = "_auth_next_page"  # the page a visitor asked for before signing in
_SESSION_KEYS = (USER_KEY, SEEN_KEY, TOUCHED_KEY, METHOD_KEY, SID_KEY, TOKEN_KEY, EXPIRES_KEY)

PASSWORD, SSO = sessions.PASSWORD, sessions.SSO


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

    The page remembered is taken on the first run after signing in, whatever page that run shows: on a
    configured database the login page is the default page at "/", and the signed-in navigation serves
    its home page (总览) there, so that run is not the login page.
    """
    present = None if among is None else set(among)
    if user is not None and NEXT_KEY in state:
        wanted = state.pop(NEXT_KEY)
        if (wanted and wanted != page_name and page_access(user, wanted, anonymous_ok=anonymous_ok)
                and (present is None or wanted in present)):
            return wanted
    target = redirect_for(user, page_name, anonymous_ok=anonymous_ok, among=among)
    if target is None:
        return None
    if page_name == PAGE_LOGIN:
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
#
# A session is a record in the store (datasets/access/sessions.py); this Streamlit session keeps its record
# id, the account and, for a password session, the random token that the browser's cookie holds (in
# server memory only). Every run checks the record, so a sign-out, password change, disabling or an
# administrator's revocation elsewhere ends this session at its next run.


def _end(state: MutableMapping[str, Any]) -> None:
    for key in _SESSION_KEYS:
        state.pop(key, None)


def _adopt(state: MutableMapping[str, Any], user: User, record: sessions.Session, token: str | None,
           now: dt.datetime) -> None:
    state[USER_KEY] = user
    state[SEEN_KEY] = now
    state[TOUCHED_KEY] = now
    state[METHOD_KEY] = record.method
    state[SID_KEY] = record.id
    state[EXPIRES_KEY] = record.expires_at
    if token is not None and record.method == PASSWORD:
        state[TOKEN_KEY] = token
    state.pop(NOTICE_KEY, None)
    state.pop(SSO_PAUSED_KEY, None)
    state.pop(SSO_REJECTED_KEY, None)


def sign_in(state: MutableMapping[str, Any], engine: Engine, user: User, *, method: str = PASSWORD,
            now: dt.datetime | None = None, max_hours: float = sessions.MAX_HOURS, user_agent: str = "",
            client: str = "") -> None:
    """Start a session for an authenticated user (after ``accounts.authenticate`` or SSO mapping): a new
    record in the store, valid for ``max_hours`` at most."""
    now = now or store.now()
    token, record = sessions.create(engine, user.username, method, max_hours=max_hours, now=now,
                                    user_agent=user_agent, client=client)
    _adopt(state, user, record, token, now)


def session_user(state: Mapping[str, Any]) -> User | None:
    """The signed-in user as ``current_user`` left it this run (no database access, no expiry check)."""
    user = state.get(USER_KEY)
    return user if isinstance(user, User) else None


def session_method(state: Mapping[str, Any]) -> str | None:
    """How the session signed in: ``PASSWORD``, ``SSO`` or None."""
    return state.get(METHOD_KEY) if session_user(state) else None


def session_id(state: Mapping[str, Any]) -> int | None:
    """The store's record id of the signed-in session (None when nobody is signed in)."""
    sid = state.get(SID_KEY)
    return sid if session_user(state) is not None and isinstance(sid, int) else None


# Why a session ended, for the login page (the revocation itself was audited where it happened).
REVOKED_NOTICES = {
    sessions.LOGOUT: "此账号已退出登录（可能是在其他窗口或设备上），请重新登录。",
    sessions.PASSWORD_CHANGED: "账号密码已修改或重设，此前的登录均已失效，请用新密码重新登录。",
    sessions.DISABLED: "账号已停用，已退出登录。",
    sessions.ADMIN: "管理员已结束此登录会话，请重新登录。",
}


def _ended(state: MutableMapping[str, Any], engine: Engine, user: User, found: sessions.Check,
           idle_minutes: float) -> None:
    _end(state)
    state[SSO_PAUSED_KEY] = True
    record = found.session
    if found.status == sessions.IDLE:
        state[NOTICE_KEY] = f"超过 {idle_minutes:g} 分钟未操作，已自动退出登录，请重新登录。"
        accounts.audit(engine, user.username, "logout", f"超过 {idle_minutes:g} 分钟未操作，会话过期")
    elif found.status == sessions.EXPIRED and record is not None:
        hours = (record.expires_at - record.created_at).total_seconds() / 3600
        state[NOTICE_KEY] = f"登录已满 {hours:g} 小时，为安全起见请重新登录。"
        accounts.audit(engine, user.username, "logout", f"登录满 {hours:g} 小时，会话到期")
    elif found.status == sessions.REVOKED and record is not None:
        state[NOTICE_KEY] = REVOKED_NOTICES.get(record.revoked_reason or "", "登录会话已结束，请重新登录。")
    else:
        state[NOTICE_KEY] = "登录会话已失效，请重新登录。"


def current_user(state: MutableMapping[str, Any], engine: Engine, now: dt.datetime | None = None,
                 *, idle_minutes: float = SESSION_IDLE_MINUTES) -> User | None:
    """The signed-in user, or None.

    Checks the session's record: revoked (sign-out anywhere, password change or reset, disabling, an
    administrator), idle for more than ``idle_minutes`` or past its absolute end, the session ends
    here with a notice for the login page. Otherwise re-reads the account (a disabled account or
    changed roles take effect at once) and records the activity (written to the store at most once a
    minute).
    """
    user = session_user(state)
    if user is None:
        return None
    now = now or store.now()
    sid = state.get(SID_KEY)
    if not isinstance(sid, int):  # a signed-in state without a record is no session
        _ended(state, engine, user, sessions.Check(None, sessions.UNKNOWN), idle_minutes)
        return None
    seen = state.get(SEEN_KEY)
    found = sessions.check(engine, sid, idle_minutes=idle_minutes, now=now,
                           seen=seen if isinstance(seen, dt.datetime) else None)
    if not found.active or found.session is None or found.session.username != user.username:
        _ended(state, engine, user, found, idle_minutes)
        return None
    fresh = accounts.get_user(engine, user.username)
    if fresh is None or not fresh.active:
        sessions.revoke(engine, sid, sessions.DISABLED, now)
        _end(state)
        state[SSO_PAUSED_KEY] = True
        state[NOTICE_KEY] = "账号已停用或已删除，已退出登录。"
        accounts.audit(engine, user.username, "logout", "账号已停用或已删除，会话结束")
        return None
    state[USER_KEY] = fresh
    state[SEEN_KEY] = now
    touched = state.get(TOUCHED_KEY)
    if not isinstance(touched, dt.datetime) or now - touched >= dt.timedelta(seconds=sessions.TOUCH_SECONDS):
        sessions.touch(engine, sid, now)
        state[TOUCHED_KEY] = now
    return fresh


def keep_displaying(state: MutableMapping[str, Any], engine: Engine, now: dt.datetime | None = None, *,
                    max_hours: float = sessions.MAX_HOURS, idle_minutes: float = SESSION_IDLE_MINUTES) -> None:
    """Called by 大屏展示 on each of its runs (it reruns itself at least every few minutes): the session
    that shows it slides its absolute end forward (sessions.renew), and the reload cookie is written
    again with the new lifetime. A session that is not shown any more still ends when idle, and a
    revocation (sign-out, password, an administrator) still ends it at once."""
    sid = session_id(state)
    if sid is None:
        return
    end = sessions.renew(engine, sid, max_hours=max_hours, idle_minutes=idle_minutes, now=now or store.now())
    if end is not None:
        state[EXPIRES_KEY] = end
        state.pop(COOKIE_KEY, None)  # cookie_action sets the cookie again, for the new lifetime


def pop_notice(state: MutableMapping[str, Any]) -> str | None:
    """A message for the login page (why the last session ended, or why SSO gave no access), once."""
    return state.pop(NOTICE_KEY, None)


def sign_out(state: MutableMapping[str, Any], engine: Engine, *, page: str = PAGE_ACCOUNT) -> str | None:
    """End the session and every other session of the account (audited). Returns how it had signed in
    (``PASSWORD``/``SSO``), None if nobody had.

    After ``SSO`` the page should also call ``st.logout()`` to remove the identity cookie.
    """
    user = session_user(state)
    method = state.get(METHOD_KEY)
    _end(state)
    state[SSO_PAUSED_KEY] = True
    if user is None:
        return None
    ended = sessions.revoke_all(engine, user.username, sessions.LOGOUT)
    detail = "退出登录（统一身份认证）" if method == SSO else "退出登录"
    if ended > 1:
        detail += f"，同时结束该账号的其他 {ended - 1} 个登录会话"
    accounts.audit(engine, user.username, "logout", detail, page)
    return method or PASSWORD


# --- the reload cookie (an opaque session id) ---------------------------------------------------------

RESTORED_KEY = "_auth_cookie_checked"  # the cookie is read once, on a session's first run
COOKIE_KEY = "_auth_cookie_session"  # the session record the browser's cookie holds (0: a stale cookie)
SET, CLEAR = "set", "clear"


def restore_from_cookie(state: MutableMapping[str, Any], engine: Engine, token: str | None,
                        now: dt.datetime | None = None, *, idle_minutes: float = SESSION_IDLE_MINUTES) -> User | None:
    """On a session's first run (a page reload), sign in again with the session the cookie names.

    Only an open session of an active account counts; anything else (revoked, idle, expired, an old
    signed token from before server-side sessions, a forged value) is refused and the cookie removed.
    """
    if state.get(RESTORED_KEY):
        return None
    state[RESTORED_KEY] = True
    if session_user(state) is not None or not token:
        return None
    now = now or store.now()
    found = sessions.check_token(engine, token, idle_minutes=idle_minutes, now=now)
    user = accounts.get_user(engine, found.session.username) if found.active and found.session else None
    if found.session is None or user is None or not user.active:
        state[COOKIE_KEY] = 0
        return None
    _adopt(state, user, found.session, token, now)
    state[COOKIE_KEY] = found.session.id
    sessions.touch(engine, found.session.id, now)
    return user


def cookie_action(state: MutableMapping[str, Any], now: dt.datetime | None = None) -> tuple[str, str, int] | None:
    """What the browser's cookie needs now: (``SET``, token, max-age seconds) once per password session,
    (``CLEAR``, "", 0) after the session ended or for a refused cookie, None when it is in step.

    SSO sessions set none: Streamlit's own identity cookie signs them in again after a reload.
    """
    written = state.get(COOKIE_KEY)
    sid = session_id(state)
    if sid is None:
        if written is None:
            return None
        state.pop(COOKIE_KEY, None)
        return CLEAR, "", 0
    token, expires = state.get(TOKEN_KEY), state.get(EXPIRES_KEY)
    if written == sid or state.get(METHOD_KEY) != PASSWORD or not token or not isinstance(expires, dt.datetime):
        return None
    state[COOKIE_KEY] = sid
    return SET, token, max(0, int((expires - (now or store.now())).total_seconds()))


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


def sso_cookie_secret(secrets: Mapping[str, Any]) -> str | None:
    """The ``cookie_secret`` of the [auth] section when SSO is configured (for the start-up check), else None."""
    if not sso_configured(secrets):
        return None
    return str(secrets.get("auth", {}).get("cookie_secret") or "")


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
                now: dt.datetime | None = None, *, max_hours: float = sessions.MAX_HOURS, user_agent: str = "",
                client: str = "") -> User | None:
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
    sign_in(state, engine, user, method=SSO, now=now, max_hours=max_hours, user_agent=user_agent, client=client)
    return user
