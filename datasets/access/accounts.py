"""Accounts, roles, district scope, login rules and the audit log.

Permissions are checked here, in the functions that do the work (import, rollback, settings), not
only in the UI: the CLI and every page go through the same rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa
from argon2 import Parameters, PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy.engine import Engine

from datasets.access import sessions
from datasets.common.config import load_settings
from datasets.storage import store
from datasets.storage.tables import audit_log, users

LEADER, STAFF, EVALUATOR, ADMIN = "领导", "工作人员", "评估人员", "管理员"
ROLES = (LEADER, STAFF, EVALUATOR, ADMIN)

MAX_FAILED_ATTEMPTS = 5
LOCKOUT_MINUTES = 15
SESSION_IDLE_MINUTES = sessions.IDLE_MINUTES
MIN_PASSWORD_LENGTH = 8

# Demo accounts exist only in the embedded demo database; their passwords are public on purpose.
DEMO_ACCOUNTS = (
    ("leader", "示例领导", "demo-leader", (LEADER,), ()),
    ("staff", "示例工作人员", "demo-staff", (STAFF,), None),  # None: the first demo district
    ("evaluator", "示例评估人员", "demo-evaluator", (EVALUATOR,), ()),
    ("admin", "示例管理员", "demo-admin", (ADMIN,), ()),
)

DEMO_PASSWORDS = frozenset(password for _, _, password, _, _ in DEMO_ACCOUNTS)
DEMO_USERNAMES = frozenset(username for username, *_ in DEMO_ACCOUNTS)

# One message for every failed sign-in (unknown account, wrong password, locked account): which
# accounts exist must not be learnt from the answer. A disabled account is named only to someone who
# gave its right password.
LOGIN_FAILED = f"账号或密码不正确。连续输错 {MAX_FAILED_ATTEMPTS} 次的账号将锁定 {LOCKOUT_MINUTES} 分钟。"
UNKNOWN_ACCOUNT = "（未知账号）"
# Failed sign-ins of unknown accounts and of locked accounts are audited at most this often per
# server process: anyone can type them, and each would be a row in an append-only log.
FAILED_LOGIN_AUDIT_LIMIT = 20  # rows …
FAILED_LOGIN_AUDIT_WINDOW = 60.0  # … per this many seconds

# Argon2id parameters per ``password_hash_profile`` setting. "test" makes a hash cost microseconds
# instead of ≈ 0.3 s of CPU: the test suite hashes and verifies a few hundred passwords.
HASH_PROFILES = {
    "standard": RFC_9106_LOW_MEMORY,  # argon2-cffi's default: 64 MiB, 3 passes, 4 lanes
    "test": Parameters(type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=1, memory_cost=8, parallelism=1),
}


@functools.cache
def _hasher_for(profile: str) -> tuple[PasswordHasher, str]:
    """The hasher of a ``password_hash_profile`` setting, and a hash it made of a dummy password
    (verified when the account does not exist, so that an unknown name takes as long as a wrong
    password). Verification reads the parameters from the stored hash, whatever the profile."""
    hasher = PasswordHasher.from_parameters(HASH_PROFILES[profile])
    return hasher, hasher.hash("dummy-password-for-timing")


def _hasher() -> PasswordHasher:
    return _hasher_for(load_settings().password_hash_profile)[0]


# At most this many argon2 computations (64 MiB each with the standard profile) run at once in this
# process; the others wait. Every path of a sign-in (unknown account, locked, wrong or right password)
# takes the same one slot, so waiting tells an attacker nothing about the account.
HASH_CONCURRENCY = 3
_hash_slots = threading.BoundedSemaphore(HASH_CONCURRENCY)
_slot_held = threading.local()


@contextlib.contextmanager
def _hash_slot() -> Iterator[None]:
    """One of the HASH_CONCURRENCY slots for this thread (re-entrant: a sign-in takes its slot before it
    opens a transaction, so a waiting request holds no database connection or row lock).

    Never wait for a slot inside a transaction (hash first, then write): a writer holding SQLite's lock
    while waiting for a slot, and sign-ins holding the slots while waiting for that lock, would wait
    for each other."""
    if getattr(_slot_held, "depth", 0):
        _slot_held.depth += 1
        try:
            yield
        finally:
            _slot_held.depth -= 1
        return
    with _hash_slots:
        _slot_held.depth = 1
        try:
            yield
        finally:
            _slot_held.depth = 0


def _dummy_hash() -> str:
    return _hasher_for(load_settings().password_hash_profile)[1]

ACTION_LABELS = {
    "login": "登录",
    "login_failed": "登录失败",
    "logout": "退出",
    "import": "导入",
    "import_rejected": "导入被拒",
    "rollback": "回滚",
    "withdraw": "撤销导入",
    "settings": "修改设置",
    "download": "下载",
    "account": "账号管理",
    "district": "区县配置",
    "password": "修改密码",
    "session": "结束会话",
}


class PermissionDenied(PermissionError):
    """The account may not do this; the message is shown to the user as is."""


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    roles: tuple[str, ...]
    districts: tuple[str, ...] = field(default_factory=tuple)
    active: bool = True

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def can_upload(self) -> bool:
        return STAFF in self.roles

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles


# A system identity for jobs started by administrators from the shell (demo loading, scripts).
SYSTEM = User("system", "系统", (ADMIN, STAFF), ("*",))


def _row_to_user(row: sa.Row) -> User:
    return User(
        username=row.username,
        display_name=row.display_name,
        roles=tuple(json.loads(row.roles)),
        districts=tuple(json.loads(row.districts)),
        active=bool(row.active),
    )


def _check_roles(roles: Iterable[str]) -> list[str]:
    roles = list(dict.fromkeys(roles))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"未知的角色：{'、'.join(unknown)}（可选：{'、'.join(ROLES)}）")
    if not roles:
        raise ValueError("账号至少需要一个角色")
    return roles


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    if password in DEMO_PASSWORDS:
        raise ValueError("该密码是公开的示例密码，不能使用，请换一个密码")


def hash_password(password: str) -> str:
    hasher = _hasher()
    with _hash_slot():
        return hasher.hash(password)


def add_user(
    engine: Engine,
    username: str,
    password: str,
    roles: Iterable[str],
    districts: Iterable[str] = (),
    display_name: str | None = None,
    *,
    demo: bool = False,
    actor: str = "system",
    page: str = "",
) -> User:
    username = username.strip()
    if not username:
        raise ValueError("账号名不能为空")
    roles = _check_roles(roles)
    if not demo:
        _check_password(password)
    districts = list(dict.fromkeys(districts))
    configured = set(store.list_districts(engine)["name"].to_list())
    unknown = [d for d in districts if d not in configured]
    if unknown:
        raise ValueError(f"区县未配置：{'、'.join(unknown)}")
    password_hash = hash_password(password)  # before the transaction: no lock is held while hashing
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise ValueError(f"账号“{username}”已存在")
        conn.execute(
            users.insert().values(
                username=username,
                display_name=display_name or username,
                password_hash=password_hash,
                roles=json.dumps(roles, ensure_ascii=False),
                districts=json.dumps(districts, ensure_ascii=False),
                active=True,
                failed_attempts=0,
                is_demo_password=password in DEMO_PASSWORDS,
                created_at=store.now(),
                password_changed_at=store.now(),
            )
        )
        _audit(conn, actor, "account", f"新建账号 {username}（{'、'.join(roles)}）", page)
    return User(username, display_name or username, tuple(roles), tuple(districts))


def set_password(engine: Engine, username: str, new_password: str, actor: str | None = None, page: str = "") -> None:
    _check_password(new_password)
    new_hash = hash_password(new_password)  # before the transaction: no lock is held while hashing
    with engine.begin() as conn:
        done = conn.execute(
            users.update()
            .where(users.c.username == username)
            .values(
                password_hash=new_hash,
                is_demo_password=new_password in DEMO_PASSWORDS,  # by value: never cleared by a flag
                failed_attempts=0,
                locked_until=None,
                password_changed_at=store.now(),
            )
        ).rowcount
        if not done:
            raise ValueError(f"账号“{username}”不存在")
        ended = sessions.revoke_all_in(conn, username, sessions.PASSWORD_CHANGED)
        _audit(conn, actor or username, "password", f"修改账号 {username} 的密码{_ended(ended)}", page)


def _ended(count: int) -> str:
    return f"，结束其 {count} 个登录会话" if count else ""


def change_own_password(engine: Engine, username: str, old_password: str, new_password: str, page: str = "") -> None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    if row is None or not _verify(row.password_hash, old_password):
        raise ValueError("原密码不正确")
    if old_password == new_password:
        raise ValueError("新密码不能与原密码相同")
    set_password(engine, username, new_password, actor=username, page=page)


def set_active(engine: Engine, username: str, active: bool, actor: str = "system", page: str = "") -> None:
    with engine.begin() as conn:
        done = conn.execute(users.update().where(users.c.username == username).values(active=active)).rowcount
        if not done:
            raise ValueError(f"账号“{username}”不存在")
        # Enabling revives nothing: a session revoked stays revoked.
        ended = 0 if active else sessions.revoke_all_in(conn, username, sessions.DISABLED)
        _audit(conn, actor, "account", f"{'启用' if active else '停用'}账号 {username}{_ended(ended)}", page)


def update_user(
    engine: Engine, username: str, *, roles: Iterable[str], districts: Iterable[str], actor: str, page: str = ""
) -> None:
    roles = _check_roles(roles)
    with engine.begin() as conn:
        conn.execute(
            users.update()
            .where(users.c.username == username)
            .values(roles=json.dumps(roles, ensure_ascii=False), districts=json.dumps(list(districts), ensure_ascii=False))
        )
        _audit(conn, actor, "account", f"修改账号 {username}：角色 {'、'.join(roles)}；区县 {'、'.join(districts) or '无'}",
               page)


def get_user(engine: Engine, username: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    return _row_to_user(row) if row else None


def current_account(conn: sa.Connection, username: str) -> User | None:
    """The account as stored now, read in the caller's transaction and held (FOR SHARE on PostgreSQL)
    until it ends, so a role or district change made meanwhile waits instead of slipping past a check."""
    row = conn.execute(sa.select(users).where(users.c.username == username).with_for_update(read=True)).first()
    return _row_to_user(row) if row else None


def active_admins(engine: Engine) -> list[str]:
    """The active accounts with the administrator role."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.username, users.c.roles).where(users.c.active.is_(True))).all()
    return [r.username for r in rows if ADMIN in json.loads(r.roles)]


def account_names(engine: Engine) -> list[str]:
    """Every account name, in creation order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.username).order_by(users.c.id)).all()
    return [r.username for r in rows]


def audit_user_names(engine: Engine) -> list[str]:
    """Every name that appears in the audit log (including failed sign-ins with unknown names)."""
    column = audit_log.c.user_name
    with engine.connect() as conn:
        rows = conn.execute(sa.select(column).distinct().order_by(column)).all()
    return [r.user_name for r in rows]


def list_users(engine: Engine) -> pl.DataFrame:
    t = users
    frame = store.read_query(
        engine,
        sa.select(t.c.username, t.c.display_name, t.c.roles, t.c.districts, t.c.active, t.c.locked_until,
                  t.c.is_demo_password).order_by(t.c.id),
    )
    if frame.height == 0:
        return pl.DataFrame(schema={"账号": pl.String, "姓名": pl.String, "角色": pl.String, "区县": pl.String,
                                    "状态": pl.String})
    return frame.select(
        pl.col("username").alias("账号"),
        pl.col("display_name").alias("姓名"),
        pl.col("roles").map_elements(lambda s: "、".join(json.loads(s)), return_dtype=pl.String).alias("角色"),
        pl.col("districts").map_elements(lambda s: "、".join(json.loads(s)), return_dtype=pl.String).alias("区县"),
        pl.when(~pl.col("active").cast(pl.Boolean)).then(pl.lit("已停用")).otherwise(pl.lit("正常")).alias("状态"),
    )


def count_users(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar())


def _verify(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    hasher = _hasher()
    with _hash_slot():
        try:
            return hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    message: str


class _RateLimit:
    """At most ``limit`` events per ``window`` seconds (in this process); thread-safe."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] >= self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return False
            self._times.append(now)
            return True


failed_login_audit = _RateLimit(FAILED_LOGIN_AUDIT_LIMIT, FAILED_LOGIN_AUDIT_WINDOW)


def authenticate(engine: Engine, username: str, password: str, *, now: dt.datetime | None = None,
                 page: str = "登录") -> LoginResult:
    """Check a password; lock the account for a while after repeated failures.

    The account's row is locked (FOR UPDATE on PostgreSQL; SQLite serialises writers) while the
    password is checked and the failure counter written, so parallel attempts count one by one and
    no more than MAX_FAILED_ATTEMPTS wrong passwords are ever checked before the lock. Every failure
    gets the same message (LOGIN_FAILED) after the same work (one argon2 verification, against a
    dummy hash when there is nothing real to check), inside one of the process's HASH_CONCURRENCY
    hashing slots, taken before the transaction on every path alike. Sign-ins and wrong passwords of existing
    accounts are always audited; unknown accounts (under one fixed name, not the text typed) and
    attempts on a locked account are audited up to FAILED_LOGIN_AUDIT_LIMIT per minute.
    """
    now = now or store.now()
    username = username.strip()
    with _hash_slot(), engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username).with_for_update()).first()
        if row is None:
            _verify(_dummy_hash(), password)
            if failed_login_audit.allow():
                _audit(conn, UNKNOWN_ACCOUNT, "login_failed", "账号不存在", page)
            return LoginResult(None, LOGIN_FAILED)
        if row.locked_until and row.locked_until > now:
            _verify(_dummy_hash(), password)  # never the real hash: a locked account answers no guesses
            if failed_login_audit.allow():
                _audit(conn, username, "login_failed", "账号已锁定", page)
            return LoginResult(None, LOGIN_FAILED)
        if not _verify(row.password_hash, password):
            failed = row.failed_attempts + 1
            values: dict = {"failed_attempts": failed}
            if failed >= MAX_FAILED_ATTEMPTS:
                values = {"failed_attempts": 0, "locked_until": now + dt.timedelta(minutes=LOCKOUT_MINUTES)}
            conn.execute(users.update().where(users.c.id == row.id).values(**values))
            _audit(conn, username, "login_failed", "密码错误", page)
            return LoginResult(None, LOGIN_FAILED)
        if not row.active:
            _audit(conn, username, "login_failed", "账号已停用", page)
            return LoginResult(None, "账号已停用，请联系管理员")
        conn.execute(users.update().where(users.c.id == row.id).values(failed_attempts=0, locked_until=None))
        _audit(conn, username, "login", "密码登录", page)
    return LoginResult(_row_to_user(row), "")


def session_expired(last_seen: dt.datetime, now: dt.datetime | None = None,
                    idle_minutes: int = SESSION_IDLE_MINUTES) -> bool:
    return (now or store.now()) - last_seen > dt.timedelta(minutes=idle_minutes)


def user_for_identity(engine: Engine, identity: dict) -> User | None:
    """Map a single-sign-on identity (st.user: sub, email, name) to an active account.

    The account is found by its SSO subject, else by username = e-mail; the first match binds the
    subject so a changed e-mail keeps working. No account → no access (accounts are not created
    automatically: an administrator decides the roles).
    """
    sub = identity.get("sub")
    email = (identity.get("email") or "").strip().lower()
    with engine.begin() as conn:
        row = None
        if sub:
            row = conn.execute(sa.select(users).where(users.c.sso_subject == sub)).first()
        if row is None and email:
            row = conn.execute(sa.select(users).where(sa.func.lower(users.c.username) == email)).first()
            if row is not None and sub and not row.sso_subject:
                conn.execute(users.update().where(users.c.id == row.id).values(sso_subject=sub))
        if row is None or not row.active:
            _audit(conn, email or str(sub), "login_failed", "单点登录身份无对应账号或账号已停用", "登录")
            return None
        _audit(conn, row.username, "login", "单点登录", "登录")
    return _row_to_user(row)


# --- scope --------------------------------------------------------------------------------------


def check_import_scope(user: User, districts: Iterable[str], *, rollback: bool = False) -> None:
    """A 工作人员 may import and roll back only the districts assigned to the account.

    ``rollback``: the refusal is worded for a rollback instead of an import.
    """
    districts = sorted(set(districts))
    if not user.active:
        raise PermissionDenied(f"账号“{user.username}”已停用，不能{'回滚' if rollback else '上传'}数据")
    if not user.can_upload:
        what = "回滚" if rollback else "上传"
        raise PermissionDenied(f"账号“{user.username}”没有{what}数据的权限（需要“{STAFF}”角色）")
    if "*" in user.districts:
        return
    outside = [d for d in districts if d not in user.districts]
    if outside:
        mine = "、".join(user.districts) or "（未分配区县）"
        if rollback:
            raise PermissionDenied(
                f"账号“{user.username}”只能回滚 {mine} 的数据，不能回滚 {'、'.join(outside)} 的数据"
            )
        raise PermissionDenied(
            f"账号“{user.username}”只能上传或回滚 {mine} 的数据，文件中含有 {'、'.join(outside)} 的数据行，未入库"
        )


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise PermissionDenied(f"账号“{user.username}”不是管理员，不能修改设置或管理账号")


# --- demo ---------------------------------------------------------------------------------------


def ensure_demo_accounts(engine: Engine) -> list[tuple[str, str, str]]:
    """Create the demo accounts (only called for the embedded demo database). Returns (username, password, roles)."""
    districts = store.list_districts(engine)["name"].to_list()
    out = []
    for username, name, password, roles, scope in DEMO_ACCOUNTS:
        scope = tuple(districts[:1]) if scope is None else scope
        if get_user(engine, username) is None:
            try:
                add_user(engine, username, password, roles, scope, name, demo=True)
            except (ValueError, sa.exc.IntegrityError):
                # Two first runs at once (two tabs, a reload while the first one hashes): the other made it.
                if get_user(engine, username) is None:
                    raise
        out.append((username, password, "、".join(roles) + (f"（{'、'.join(scope)}）" if scope else "")))
    return out


def accounts_with_demo_password(engine: Engine) -> list[str]:
    """Active accounts whose password is a published demo password.

    Recognised by value: the flag set when a password is stored, and, for the demo account names
    (where an older version could clear the flag while keeping the demo password), the stored hash
    checked against the demo passwords (at most a few argon2 verifications at startup).
    """
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(users.c.username, users.c.password_hash, users.c.is_demo_password)
            .where(users.c.active.is_(True) & (users.c.is_demo_password.is_(True) | users.c.username.in_(DEMO_USERNAMES)))
            .order_by(users.c.id)
        ).all()
    return [r.username for r in rows
            if r.is_demo_password or any(_verify(r.password_hash, p) for p in DEMO_PASSWORDS)]


# --- audit --------------------------------------------------------------------------------------


def _audit(conn: sa.Connection, user_name: str, action: str, detail: str = "", page: str = "") -> None:
    conn.execute(
        audit_log.insert().values(at=store.now(), user_name=user_name[:100], action=action, detail=detail, page=page)
    )


def audit_in(conn: sa.Connection, user_name: str, action: str, detail: str = "", page: str = "") -> None:
    """Append one entry inside the caller's transaction: it commits with the change it records."""
    _audit(conn, user_name, action, detail, page)


def audit(engine: Engine, user_name: str, action: str, detail: str = "", page: str = "") -> None:
    """Append one entry; the application never updates or deletes audit rows."""
    with engine.begin() as conn:
        _audit(conn, user_name, action, detail, page)


def audit_entries(engine: Engine, limit: int = 500, action: str | None = None, user_name: str | None = None) -> pl.DataFrame:
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action:
        query = query.where(audit_log.c.action == action)
    if user_name:
        query = query.where(audit_log.c.user_name == user_name)
    frame = store.read_query(engine, query)
    if frame.height == 0:
        return pl.DataFrame(schema={"时间": pl.Datetime, "账号": pl.String, "操作": pl.String, "内容": pl.String,
                                    "页面": pl.String})
    return frame.select(
        pl.col("at").alias("时间"),
        pl.col("user_name").alias("账号"),
        pl.col("action").replace_strict(ACTION_LABELS, default=pl.col("action")).alias("操作"),
        pl.col("detail").alias("内容"),
        pl.col("page").alias("页面"),
    )
