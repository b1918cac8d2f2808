"""Administration actions and small look-ups: what the pages and the command line do to the store.

Every administration function takes the acting ``User`` and checks it itself (``require_admin``, then
the account as stored now), so a page that forgot to check cannot bypass it; each change is audited.
No session or UI state here: that lives in pages/_session.py.

``page`` names where an action came from in the audit log; the defaults are the dashboard pages' titles
(pages/_catalog.py, checked by tests/test_catalog.py) for callers outside the UI.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Iterable

import polars as pl
from sqlalchemy.engine import Engine

from datasets.access import accounts, sessions
from datasets.access.accounts import ADMIN, User
from datasets.common import safe_export
from datasets.common.config import AppSettings
from datasets.common.text import normalize
from datasets.storage import quality, store

USERS_PAGE, DISTRICTS_PAGE, START_PAGE = "账号管理", "区县配置", "开始使用"
ANONYMOUS_NAME = "（未登录）"


# --- start-up checks and demo accounts ------------------------------------------------------------


# The example value of docs/sso.md, and the shortest SSO cookie secret accepted on a configured database.
EXAMPLE_SECRETS = frozenset({"一段足够长的随机字符串", "change-me", "changeme", "secret"})
MIN_SECRET_LENGTH = 32


def startup_problem(engine: Engine, app_settings: AppSettings, *, sso_cookie_secret: str | None = None) -> str | None:
    """Why the dashboard must not start, or None.

    A configured (non-embedded) database must not hold an active account whose password is a
    published demo password, and with single sign-on configured (``sso_cookie_secret``: the
    ``cookie_secret`` of secrets.toml's [auth] section, None without SSO) its secret must not be the
    documentation's example or short: it signs Streamlit's identity cookie, and whoever knows it can
    forge an identity. (The dashboard's own sessions need no secret: the cookie is a random id.)
    """
    if app_settings.embedded:
        return None
    if sso_cookie_secret is not None:
        secret = sso_cookie_secret.strip()
        if secret in EXAMPLE_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            return ("统一身份认证的 cookie_secret（.streamlit/secrets.toml 的 [auth] 部分）为空、过短或是文档中的示例值，"
                    f"为安全起见看板拒绝启动。请设置至少 {MIN_SECRET_LENGTH} 个字符的随机字符串，例如运行"
                    "“python -c \"import secrets; print(secrets.token_hex(32))\"”生成，然后重启看板。")
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
    return not accounts.active_admins(engine)


# --- account administration (administrators only) -------------------------------------------------


def check_actor(engine: Engine, actor: User) -> User:
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
    if accounts.active_admins(engine) == [username]:
        raise ValueError("不能停用或取消最后一个管理员账号，否则将无人能管理账号")


def create_account(engine: Engine, actor: User, username: str, display_name: str, roles: Iterable[str],
                   districts: Iterable[str] = (), password: str | None = None, *, page: str = USERS_PAGE) -> User:
    """New account. ``password=None``: an unguessable random password (the account signs in by SSO only)."""
    actor = check_actor(engine, actor)
    districts = _check_districts(engine, districts)
    secret = password if password is not None else _secrets.token_urlsafe(32)
    return accounts.add_user(engine, username, secret, roles, districts, display_name.strip() or None,
                             actor=actor.username, page=page)


def reset_password(engine: Engine, actor: User, username: str, new_password: str, *, page: str = USERS_PAGE) -> None:
    actor = check_actor(engine, actor)
    _existing(engine, username)
    accounts.set_password(engine, username, new_password, actor=actor.username, page=page)


def set_account_active(engine: Engine, actor: User, username: str, active: bool, *, page: str = USERS_PAGE) -> None:
    actor = check_actor(engine, actor)
    target = _existing(engine, username)
    if not active:
        if username == actor.username:
            raise ValueError("不能停用自己正在使用的账号")
        if target.is_admin:
            _keeps_an_admin(engine, username)
    accounts.set_active(engine, username, active, actor=actor.username, page=page)


def change_account(engine: Engine, actor: User, username: str, roles: Iterable[str],
                   districts: Iterable[str], *, page: str = USERS_PAGE) -> None:
    """Replace the roles and districts of an account."""
    actor = check_actor(engine, actor)
    target = _existing(engine, username)
    roles = list(dict.fromkeys(roles))
    districts = _check_districts(engine, districts)
    if target.is_admin and ADMIN not in roles:
        if username == actor.username:
            raise ValueError("不能取消自己账号的管理员角色")
        _keeps_an_admin(engine, username)
    accounts.update_user(engine, username, roles=roles, districts=districts, actor=actor.username, page=page)


# --- sign-in sessions (administrators only) -----------------------------------------------------------


def open_sessions(engine: Engine, actor: User, *, idle_minutes: float) -> pl.DataFrame:
    """The open sign-in sessions of every account (编号, 账号, 方式, 登录时间, 最近活动, 到期时间, 客户端)."""
    check_actor(engine, actor)
    return sessions.active_table(engine, idle_minutes=idle_minutes)


def session_labels(table: pl.DataFrame) -> dict[int, str]:
    """Record id -> how to name an open session in a choice (from ``open_sessions``)."""
    return {n: f"{n} · {u} · {m} · {t:%m-%d %H:%M} 登录"
            for n, u, m, t in table.select("编号", "账号", "方式", "登录时间").iter_rows()}


def session_accounts(table: pl.DataFrame) -> list[str]:
    """The accounts with an open session (from ``open_sessions``)."""
    return sorted(set(table["账号"].to_list()))


def end_session(engine: Engine, actor: User, session_id: int, *, page: str = USERS_PAGE) -> str:
    """End one session (the account is signed out at its next action); audited. Returns the account."""
    actor = check_actor(engine, actor)
    record = sessions.revoke(engine, session_id, sessions.ADMIN)
    if record is None:
        raise ValueError(f"登录会话 {session_id} 不存在")
    if record.revoked_at is not None:
        raise ValueError(f"登录会话 {session_id}（账号 {record.username}）已经结束")
    method = sessions.METHOD_LABELS.get(record.method, record.method)
    accounts.audit(engine, actor.username, "session",
                   f"结束账号 {record.username} 的登录会话 {session_id}（{method}，{record.created_at:%Y-%m-%d %H:%M} 登录）",
                   page)
    return record.username


def end_account_sessions(engine: Engine, actor: User, username: str, *, page: str = USERS_PAGE) -> int:
    """End every open session of an account; audited. Returns how many were open."""
    actor = check_actor(engine, actor)
    _existing(engine, username)
    ended = sessions.revoke_all(engine, username, sessions.ADMIN)
    accounts.audit(engine, actor.username, "session", f"结束账号 {username} 的全部登录会话（{ended} 个）", page)
    return ended


# --- audited actions of the data pages -----------------------------------------------------------


def record_download(engine: Engine, user: User | None, what: str, page: str) -> None:
    """Audit one download: who, what (file and period), from which page."""
    accounts.audit(engine, user.username if user is not None else ANONYMOUS_NAME, "download", what, page)


def load_demo_data(engine: Engine, actor: User, *, seed: int, scale: float, page: str = START_PAGE) -> str:
    """Generate the demo city into an empty store (administrators only); audited. Returns the summary."""
    from datasets.domain.workdays import load_calendar
    from datasets.sample.demo import generate_demo  # the generator is heavy; only this action needs it

    actor = check_actor(engine, actor)
    summary = generate_demo(engine, calendar=load_calendar(), seed=seed, scale=scale)
    accounts.audit(engine, actor.username, "import", f"载入示例数据：{summary}", page)
    return summary


def save_district(engine: Engine, actor: User, name: str, code: str | None, aliases: Iterable[str],
                  page: str = DISTRICTS_PAGE) -> str:
    """Add a district or set an existing one's code and aliases (administrators; audited).

    Names, codes and aliases identify districts in uploaded files, so none may belong to two districts.
    Returns a Chinese summary for the page.
    """
    actor = check_actor(engine, actor)
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
    if name in set(district_names(engine)):
        store.set_district(engine, name, code, wanted)
        what = "修改"
    else:
        store.add_district(engine, name, code, wanted)
        what = "新增"
    detail = f"{what}区县 {name}：代码 {code or '无'}；别名 {'、'.join(wanted) or '无'}"
    accounts.audit(engine, actor.username, "district", detail, page)
    return f"已{detail}。"


def upload_district_shape(engine: Engine, actor: User, district: str, raw: bytes, file_name: str = "",
                          page: str = DISTRICTS_PAGE) -> str:
    """Store an uploaded GeoJSON boundary for a configured district (administrators; validated; audited).

    Raises ValueError with a Chinese message when the file is not an acceptable boundary.
    """
    from datasets.intake.boundaries import parse_upload, vertex_count

    actor = check_actor(engine, actor)
    if district not in set(district_names(engine)):
        raise ValueError(f"区县“{district}”未配置。")
    geometry = parse_upload(raw)
    store.save_district_shape(engine, district, geometry, actor.username)
    detail = f"上传区县边界 {district}：{file_name or '（未命名文件）'}，{vertex_count(geometry)} 个坐标点"
    accounts.audit(engine, actor.username, "district", detail, page)
    return f"已{detail}。"


def remove_district_shape(engine: Engine, actor: User, district: str, page: str = DISTRICTS_PAGE) -> str:
    """Remove a district's uploaded boundary (administrators; audited)."""
    actor = check_actor(engine, actor)
    if not store.delete_district_shape(engine, district):
        return f"区县“{district}”没有上传过边界。"
    accounts.audit(engine, actor.username, "district", f"删除区县边界 {district}", page)
    return f"已删除区县“{district}”上传的边界。"


def upload_districts(engine: Engine, user: User | None) -> list[str]:
    """The configured districts ``user`` may upload and roll back (all of them for the ``*`` scope)."""
    if user is None or not user.can_upload:
        return []
    names = district_names(engine)
    return names if "*" in user.districts else [d for d in names if d in user.districts]


def history_districts(engine: Engine, user: User | None) -> list[str]:
    """The districts whose imports ``user`` sees in the upload history: every district, also one only
    in the data, for the ``*`` scope; else those it may upload (another district's file names and
    uploaders are not its business)."""
    if user is not None and user.can_upload and "*" in user.districts:
        return quality.all_districts(engine)
    return upload_districts(engine, user)


# --- small look-ups for the pages -----------------------------------------------------------------


def districts_shown(table: pl.DataFrame) -> pl.DataFrame:
    """The 区县配置 table (``store.list_districts``) with Chinese headers, aliases joined by 、."""
    return table.select(
        table["name"].alias("区县"),
        table["code"].alias("区划代码"),
        table["aliases"].list.join("、").alias("别名"),
    )


def district_names(engine: Engine) -> list[str]:
    """Configured districts, in their order."""
    return store.list_districts(engine)["name"].to_list()


def roles_text(user: User) -> str:
    return "、".join(user.roles)


def audit_csv(frame: pl.DataFrame) -> bytes:
    """An audit table as CSV: UTF-8 with BOM (Excel), cells that a spreadsheet would run neutralised."""
    return safe_export.csv_bytes(frame)
