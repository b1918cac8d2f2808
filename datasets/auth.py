"""Sign-in sessions, the page permission table and account administration for the dashboard.

Independent of Streamlit widgets: every function takes the session as a plain mutable mapping
(``st.session_state`` in the app, a dict in tests), the engine and, where it matters, ``now``.

- ``current_user`` is called on every run: it ends a session after ``SESSION_IDLE_MINUTES`` without
  activity, re-reads the account (a disabled account or changed roles take effect at once) and
  refreshes the last-seen time.
- ``page_access`` is the single permission table; page names are the constants ``PAGE_*`` below and
  are also the navigation titles.
- The administration functions (``create_account`` …) take the acting ``User`` and check
  ``require_admin`` themselves, so a page that forgot to check cannot bypass them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets as _secrets
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets import accounts, store
from datasets.accounts import ADMIN, EVALUATOR, LEADER, ROLES, SESSION_IDLE_MINUTES, STAFF, User
from datasets.config import AppSettings

if TYPE_CHECKING:
    from metrics.scoring import ScoringSettings

# --- page names (navigation titles) ---------------------------------------------------------------

PAGE_OVERVIEW = "总览"
PAGE_COMPARE = "区县对比"
PAGE_PERIODS = "时段对比"
PAGE_RANKING = "排名下载"
PAGE_BULLETIN = "月度通报"
PAGE_UPLOAD = "数据上传"
PAGE_QUALITY = "数据质量"
PAGE_INDICATORS = "指标说明"
PAGE_START = "开始使用"
PAGE_SETTINGS = "设置"
PAGE_USERS = "账号管理"
PAGE_AUDIT = "审计日志"
PAGE_ACCOUNT = "修改密码"
PAGE_DISTRICTS = "区县配置"
PAGE_LOGIN = "登录"

_EVERYONE = frozenset(ROLES)

# page -> roles that may open it (a user with several roles gets the union).
PAGE_ROLES: dict[str, frozenset[str]] = {
    PAGE_OVERVIEW: _EVERYONE,
    PAGE_COMPARE: _EVERYONE,
    PAGE_PERIODS: _EVERYONE,
    PAGE_INDICATORS: _EVERYONE,
    PAGE_START: _EVERYONE,
    PAGE_RANKING: frozenset({EVALUATOR, LEADER, ADMIN}),
    PAGE_BULLETIN: frozenset({EVALUATOR, LEADER, ADMIN}),  # leaders preview; downloads: may_download
    PAGE_UPLOAD: frozenset({STAFF}),
    PAGE_QUALITY: frozenset({STAFF, ADMIN, LEADER}),
    PAGE_SETTINGS: frozenset({ADMIN}),
    PAGE_USERS: frozenset({ADMIN}),
    PAGE_AUDIT: frozenset({ADMIN}),
    PAGE_DISTRICTS: frozenset({ADMIN}),
    PAGE_ACCOUNT: _EVERYONE,
}
# Pages that a visitor who has not signed in may open when anonymous viewing is allowed.
PUBLIC_PAGES = frozenset({PAGE_OVERVIEW, PAGE_COMPARE, PAGE_PERIODS, PAGE_INDICATORS, PAGE_START})
# Where a session lands, in order of preference.
HOME_ORDER = (PAGE_OVERVIEW, PAGE_START, PAGE_UPLOAD, PAGE_QUALITY, PAGE_USERS, PAGE_INDICATORS, PAGE_ACCOUNT)
DOWNLOAD_ROLES = frozenset({EVALUATOR, ADMIN})

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
    if user is None:
        return anonymous_ok and page_name in PUBLIC_PAGES
    allowed = PAGE_ROLES.get(page_name)
    return bool(allowed and allowed & set(user.roles))


def pages_for(user: User | None, *, anonymous_ok: bool = False) -> list[str]:
    """The page names ``user`` may open, in the table's order (the login page last, for visitors)."""
    names = [p for p in PAGE_ROLES if page_access(user, p, anonymous_ok=anonymous_ok)]
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


def may_download(user: User | None) -> bool:
    """Downloads of ranked tables are for 评估人员 and 管理员; leaders view the ranking only."""
    return user is not None and bool(DOWNLOAD_ROLES & set(user.roles))


def anonymous_allowed(app_settings: AppSettings) -> bool:
    """Viewing without signing in: ``anonymous_view`` when set, else only in demo mode (embedded store)."""
    if app_settings.anonymous_view is not None:
        return bool(app_settings.anonymous_view)
    return app_settings.embedded


def startup_problem(engine: Engine, app_settings: AppSettings) -> str | None:
    """Why the dashboard must not start, or None.

    A configured (non-embedded) database must not hold an active account whose password is a
    published demo password.
    """
    if app_settings.embedded:
        return None
    names = accounts.accounts_with_demo_password(engine)
    if not names:
        return None
    listed = "、".join(names)
    return (
        f"数据库中仍有使用示例密码的账号：{listed}。示例密码是公开的，为安全起见看板拒绝启动。"
        # No Markdown here: the page shows the message as plain text (account names are user input).
        f"请在服务器上运行“python -m datasets users passwd 账号名”重设密码，"
        f"或运行“python -m datasets users disable 账号名”停用这些账号后再启动。"
    )


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
    with engine.connect() as conn:
        row = conn.execute(sa.select(accounts.users.c.password_hash, accounts.users.c.active)
                           .where(accounts.users.c.username == username)).first()
    if row is None or not row.password_hash or not row.active:
        return None
    return hashlib.sha256(f"{server_secret}\x00{row.password_hash}".encode()).digest()


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


# --- demo accounts --------------------------------------------------------------------------------


def demo_accounts(engine: Engine, app_settings: AppSettings) -> pl.DataFrame:
    """In demo mode (embedded store): create the demo accounts if missing and list them with passwords.

    Empty on a configured database: demo accounts never exist there.
    """
    schema = {"账号": pl.String, "密码": pl.String, "角色": pl.String}
    if not app_settings.embedded:
        return pl.DataFrame(schema=schema)
    rows = accounts.ensure_demo_accounts(engine)
    return pl.DataFrame(rows, schema=schema, orient="row")


def needs_first_admin(engine: Engine) -> bool:
    """No active administrator yet: nobody can manage accounts from the dashboard."""
    return not _active_admins(engine)


# --- account administration (administrators only) -------------------------------------------------


def _active_admins(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(accounts.users.c.username, accounts.users.c.roles).where(accounts.users.c.active.is_(True))
        ).all()
    return [r.username for r in rows if ADMIN in json.loads(r.roles)]


def _check_actor(engine: Engine, actor: User) -> User:
    """The acting account as stored now: it must still exist, be active and be an administrator."""
    accounts.require_admin(actor)
    stored = accounts.get_user(engine, actor.username)
    if stored is None or not stored.active:
        raise accounts.PermissionDenied(f"账号“{actor.username}”已停用或不存在，不能执行管理员操作")
    accounts.require_admin(stored)
    return stored


def _existing(engine: Engine, username: str) -> User:
    user = accounts.get_user(engine, username)
    if user is None:
        raise ValueError(f"账号“{username}”不存在")
    return user


def _check_districts(engine: Engine, districts: Iterable[str]) -> list[str]:
    districts = list(dict.fromkeys(districts))
    configured = set(district_names(engine))
    unknown = [d for d in districts if d not in configured]
    if unknown:
        raise ValueError(f"区县未配置：{'、'.join(unknown)}")
    return districts


def _keeps_an_admin(engine: Engine, username: str) -> None:
    if _active_admins(engine) == [username]:
        raise ValueError("不能停用或取消最后一个管理员账号，否则将无人能管理账号")


def create_account(engine: Engine, actor: User, username: str, display_name: str, roles: Iterable[str],
                   districts: Iterable[str] = (), password: str | None = None) -> User:
    """New account. ``password=None``: an unguessable random password (the account signs in by SSO only)."""
    actor = _check_actor(engine, actor)
    districts = _check_districts(engine, districts)
    secret = password if password is not None else _secrets.token_urlsafe(32)
    return accounts.add_user(engine, username, secret, roles, districts, display_name.strip() or None,
                             actor=actor.username, page=PAGE_USERS)


def reset_password(engine: Engine, actor: User, username: str, new_password: str) -> None:
    actor = _check_actor(engine, actor)
    _existing(engine, username)
    accounts.set_password(engine, username, new_password, actor=actor.username, page=PAGE_USERS)


def set_account_active(engine: Engine, actor: User, username: str, active: bool) -> None:
    actor = _check_actor(engine, actor)
    target = _existing(engine, username)
    if not active:
        if username == actor.username:
            raise ValueError("不能停用自己正在使用的账号")
        if target.is_admin:
            _keeps_an_admin(engine, username)
    accounts.set_active(engine, username, active, actor=actor.username, page=PAGE_USERS)


def change_account(engine: Engine, actor: User, username: str, roles: Iterable[str],
                   districts: Iterable[str]) -> None:
    """Replace the roles and districts of an account."""
    actor = _check_actor(engine, actor)
    target = _existing(engine, username)
    roles = list(dict.fromkeys(roles))
    districts = _check_districts(engine, districts)
    if target.is_admin and ADMIN not in roles:
        if username == actor.username:
            raise ValueError("不能取消自己账号的管理员角色")
        _keeps_an_admin(engine, username)
    accounts.update_user(engine, username, roles=roles, districts=districts, actor=actor.username, page=PAGE_USERS)


# --- audited actions of the data pages -----------------------------------------------------------

ANONYMOUS_NAME = "（未登录）"


def record_download(engine: Engine, user: User | None, what: str, page: str) -> None:
    """Audit one download: who, what (file and period), from which page."""
    accounts.audit(engine, user.username if user is not None else ANONYMOUS_NAME, "download", what, page)


def save_scoring(engine: Engine, actor: User, new: ScoringSettings) -> list[tuple[str, float, float]]:
    """Save scoring settings as an administrator; audited.

    Returns the changes (key, old, new); nothing is saved or audited when nothing changed.
    """
    from metrics.scoring import save_settings
    from metrics.views import setting_label, setting_value_text

    actor = _check_actor(engine, actor)
    changes = save_settings(engine, new, actor.username)
    if changes:
        listed = "；".join(f"{setting_label(k)}：{setting_value_text(k, old)} → {setting_value_text(k, value)}"
                          for k, old, value in changes)
        accounts.audit(engine, actor.username, "settings", f"修改 {len(changes)} 项设置：{listed}", PAGE_SETTINGS)
    return changes


def load_demo_data(engine: Engine, actor: User, *, seed: int, scale: float) -> str:
    """Generate the demo city into an empty store (administrators only); audited. Returns the summary."""
    from datasets.calendar import load_calendar
    from datasets.demo import generate_demo

    actor = _check_actor(engine, actor)
    summary = generate_demo(engine, calendar=load_calendar(), seed=seed, scale=scale)
    accounts.audit(engine, actor.username, "import", f"载入示例数据：{summary}", PAGE_START)
    return summary


def save_district(engine: Engine, actor: User, name: str, code: str | None, aliases: Iterable[str],
                  page: str = PAGE_DISTRICTS) -> str:
    """Add a district or set an existing one's code and aliases (administrators; audited).

    Names, codes and aliases identify districts in uploaded files, so none may belong to two districts.
    Returns a Chinese summary for the page.
    """
    from datasets.text import normalize

    actor = _check_actor(engine, actor)
    name = name.strip()
    if not name:
        raise ValueError("区县名称不能为空。")
    code = (code or "").strip() or None
    wanted = sorted({a.strip() for a in aliases if a and a.strip() and a.strip() != name})
    taken = {key: owner for key, owner in store.district_lookup(engine).items() if owner != name}
    clashes = [t for t in (name, code, *wanted) if t and normalize(t) in taken]
    if clashes:
        owner = taken[normalize(clashes[0])]
        raise ValueError(f"“{clashes[0]}”已是区县“{owner}”的名称、代码或别名，不能重复使用。")
    existing = set(store.list_districts(engine)["name"].to_list())
    if name in existing:
        with engine.begin() as conn:
            conn.execute(store.districts.update().where(store.districts.c.name == name)
                         .values(code=code, aliases=json.dumps(wanted, ensure_ascii=False)))
            store.add_revision(conn, f"district {name}")
        what = "修改"
    else:
        store.add_district(engine, name, code, wanted)
        what = "新增"
    detail = f"{what}区县 {name}：代码 {code or '无'}；别名 {'、'.join(wanted) or '无'}"
    accounts.audit(engine, actor.username, "district", detail, page)
    return f"已{detail}。"


def upload_districts(engine: Engine, user: User | None) -> list[str]:
    """The configured districts ``user`` may upload and roll back (all of them for the ``*`` scope)."""
    if user is None or not user.can_upload:
        return []
    names = district_names(engine)
    return names if "*" in user.districts else [d for d in names if d in user.districts]


# --- small look-ups for the pages -----------------------------------------------------------------


def district_names(engine: Engine) -> list[str]:
    """Configured districts, in their order."""
    return store.list_districts(engine)["name"].to_list()


def account_names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(accounts.users.c.username).order_by(accounts.users.c.id)).all()
    return [r.username for r in rows]


def audit_user_names(engine: Engine) -> list[str]:
    """Every name that appears in the audit log (including failed sign-ins with unknown names)."""
    column = accounts.audit_log.c.user_name
    with engine.connect() as conn:
        rows = conn.execute(sa.select(column).distinct().order_by(column)).all()
    return [r.user_name for r in rows]


def roles_text(user: User) -> str:
    return "、".join(user.roles)


def audit_csv(frame: pl.DataFrame) -> bytes:
    """An audit table as CSV: UTF-8 with BOM (Excel), cells that a spreadsheet would run neutralised."""
    from datasets import safe_export

    return safe_export.csv_bytes(frame)
