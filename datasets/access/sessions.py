"""Sign-in sessions as server-side records (the ``sessions`` table of datasets/storage/tables.py).

The browser's cookie holds only a random id (``secrets.token_urlsafe(32)``); the store keeps its
SHA-256, so neither a copy of the database nor a password hash can be turned into a cookie. A
session ends when it is revoked (sign-out, password change or reset, disabling the account, an
administrator), after ``idle_minutes`` without activity, or at its absolute ``expires_at``. A revoked
session stays revoked: nothing here ever clears ``revoked_at``, so re-enabling an account revives none.

``last_seen_at`` is written at most once per ``TOUCH_SECONDS`` per session, so a Streamlit rerun does
not write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets.common import config
from datasets.storage import store
from datasets.storage.tables import sessions

IDLE_MINUTES = config.SESSION_IDLE_MINUTES  # defaults of the settings session_idle_minutes and session_max_hours
MAX_HOURS = config.SESSION_MAX_HOURS
TOUCH_SECONDS = 60
PURGE_DAYS = 90  # records of sessions that ended longer ago are deleted

PASSWORD, SSO = "password", "sso"
METHOD_LABELS = {PASSWORD: "账号密码", SSO: "统一身份认证"}

# Why a session was revoked (``revoked_reason``).
LOGOUT, PASSWORD_CHANGED, DISABLED, ADMIN = "logout", "password", "disabled", "admin"

# What a check of a session found.
ACTIVE, UNKNOWN, REVOKED, IDLE, EXPIRED = "active", "unknown", "revoked", "idle", "expired"


@dataclass(frozen=True)
class Session:
    id: int
    username: str
    method: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_reason: str | None


@dataclass(frozen=True)
class Check:
    """A session record and what it is now: ``ACTIVE`` or why not (``UNKNOWN``, ``REVOKED``, ``IDLE``, ``EXPIRED``)."""

    session: Session | None
    status: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _row(row: sa.Row) -> Session:
    return Session(row.id, row.username, row.method, row.created_at, row.last_seen_at, row.expires_at,
                   row.revoked_at, row.revoked_reason)


def create(engine: Engine, username: str, method: str, *, max_hours: float, now: dt.datetime | None = None,
           user_agent: str = "", client: str = "") -> tuple[str, Session]:
    """A new session for an authenticated account: (the token for the cookie, its record)."""
    now = now or store.now()
    token = secrets.token_urlsafe(32)
    values = {
        "token_hash": token_hash(token), "username": username, "method": method, "created_at": now,
        "last_seen_at": now, "expires_at": now + dt.timedelta(hours=max_hours),
        "user_agent": (user_agent or "")[:300], "client": (client or "")[:100],
    }
    with engine.begin() as conn:
        new_id = conn.execute(sessions.insert().values(**values)).inserted_primary_key[0]
        _purge_in(conn, now, PURGE_DAYS)
    return token, Session(new_id, username, method, now, now, values["expires_at"], None, None)


def _status(record: Session | None, now: dt.datetime, idle_minutes: float) -> str:
    if record is None:
        return UNKNOWN
    if record.revoked_at is not None:
        return REVOKED
    if now >= record.expires_at:
        return EXPIRED
    if now - record.last_seen_at > dt.timedelta(minutes=idle_minutes):
        return IDLE
    return ACTIVE


def check(engine: Engine, session_id: int, *, idle_minutes: float, now: dt.datetime | None = None,
          seen: dt.datetime | None = None) -> Check:
    """The session with this record id, as it is now.

    ``seen``: the last activity this server knows of (the session's own runs, between the throttled
    writes of ``last_seen_at``); the later of the two counts for the idle timeout.
    """
    with engine.connect() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).first()
    record = _row(row) if row else None
    if record is not None and seen is not None and seen > record.last_seen_at:
        record = Session(record.id, record.username, record.method, record.created_at, seen, record.expires_at,
                         record.revoked_at, record.revoked_reason)
    return Check(record, _status(record, now or store.now(), idle_minutes))


def check_token(engine: Engine, token: str | None, *, idle_minutes: float, now: dt.datetime | None = None) -> Check:
    """The session a cookie's token names. Anything that is not a token of a stored session (an old
    signed token, a forged or truncated value) is ``UNKNOWN``."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return Check(None, UNKNOWN)
    with engine.connect() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.token_hash == token_hash(token))).first()
    record = _row(row) if row else None
    return Check(record, _status(record, now or store.now(), idle_minutes))


def touch(engine: Engine, session_id: int, now: dt.datetime | None = None) -> bool:
    """Record activity: writes ``last_seen_at`` only when the stored one is ``TOUCH_SECONDS`` old (one
    UPDATE with that condition, so parallel tabs of one session do not write twice). True if written."""
    now = now or store.now()
    with engine.begin() as conn:
        done = conn.execute(
            sessions.update()
            .where((sessions.c.id == session_id) & sessions.c.revoked_at.is_(None)
                   & (sessions.c.last_seen_at <= now - dt.timedelta(seconds=TOUCH_SECONDS)))
            .values(last_seen_at=now)
        ).rowcount
    return bool(done)


def renew(engine: Engine, session_id: int, *, max_hours: float, idle_minutes: float,
          now: dt.datetime | None = None) -> dt.datetime | None:
    """Move an active session's absolute end to ``now + max_hours`` (大屏展示: a screen that shows the
    dashboard for days). Written only once less than half of ``max_hours`` is left, so at most twice
    a period; a revoked, expired or idle session is never renewed. Returns the new end, or None when
    nothing was written."""
    now = now or store.now()
    end = now + dt.timedelta(hours=max_hours)
    with engine.begin() as conn:
        done = conn.execute(
            sessions.update()
            .where((sessions.c.id == session_id) & sessions.c.revoked_at.is_(None)
                   & (sessions.c.expires_at > now)
                   & (sessions.c.last_seen_at >= now - dt.timedelta(minutes=idle_minutes))
                   & (sessions.c.expires_at < now + dt.timedelta(hours=max_hours / 2)))
            .values(expires_at=end)
        ).rowcount
    return end if done else None


def revoke(engine: Engine, session_id: int, reason: str, now: dt.datetime | None = None) -> Session | None:
    """End one session (no-op if it already ended). Returns the record as it was, None if there is none."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).first()
        if row is None:
            return None
        conn.execute(sessions.update().where((sessions.c.id == session_id) & sessions.c.revoked_at.is_(None))
                     .values(revoked_at=now or store.now(), revoked_reason=reason))
    return _row(row)


def revoke_all_in(conn: sa.Connection, username: str, reason: str, now: dt.datetime | None = None) -> int:
    """End every session of an account in the caller's transaction (it commits with the change that
    ends them: a password change, disabling). Returns how many were still open."""
    return conn.execute(
        sessions.update()
        .where((sessions.c.username == username) & sessions.c.revoked_at.is_(None))
        .values(revoked_at=now or store.now(), revoked_reason=reason)
    ).rowcount


def revoke_all(engine: Engine, username: str, reason: str, now: dt.datetime | None = None) -> int:
    with engine.begin() as conn:
        return revoke_all_in(conn, username, reason, now)


def active(engine: Engine, *, idle_minutes: float, now: dt.datetime | None = None,
           username: str | None = None) -> list[Session]:
    """Open sessions (not revoked, not expired, not idle), newest first."""
    now = now or store.now()
    query = (
        sa.select(sessions)
        .where(sessions.c.revoked_at.is_(None) & (sessions.c.expires_at > now)
               & (sessions.c.last_seen_at >= now - dt.timedelta(minutes=idle_minutes)))
        .order_by(sessions.c.id.desc())
    )
    if username is not None:
        query = query.where(sessions.c.username == username)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query).all()]


def active_table(engine: Engine, *, idle_minutes: float, now: dt.datetime | None = None) -> pl.DataFrame:
    """Open sessions for 账号管理: 编号, 账号, 方式, 登录时间, 最近活动, 到期时间, 客户端."""
    now = now or store.now()
    query = (
        sa.select(sessions.c.id, sessions.c.username, sessions.c.method, sessions.c.created_at,
                  sessions.c.last_seen_at, sessions.c.expires_at, sessions.c.user_agent, sessions.c.client)
        .where(sessions.c.revoked_at.is_(None) & (sessions.c.expires_at > now)
               & (sessions.c.last_seen_at >= now - dt.timedelta(minutes=idle_minutes)))
        .order_by(sessions.c.username, sessions.c.id.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(
        {
            "编号": [r.id for r in rows],
            "账号": [r.username for r in rows],
            "方式": [METHOD_LABELS.get(r.method, r.method) for r in rows],
            "登录时间": [r.created_at for r in rows],
            "最近活动": [r.last_seen_at for r in rows],
            "到期时间": [r.expires_at for r in rows],
            "客户端": [" · ".join(p for p in (r.client, r.user_agent) if p) for r in rows],
        },
        schema={"编号": pl.Int64, "账号": pl.String, "方式": pl.String, "登录时间": pl.Datetime,
                "最近活动": pl.Datetime, "到期时间": pl.Datetime, "客户端": pl.String},
    )


def _purge_in(conn: sa.Connection, now: dt.datetime, older_than_days: int) -> int:
    """Delete records of sessions that ended more than ``older_than_days`` ago (done at each sign-in, so
    the table stays small; the audit log keeps the sign-ins and sign-outs)."""
    cutoff = now - dt.timedelta(days=older_than_days)
    return conn.execute(
        sessions.delete().where((sessions.c.expires_at < cutoff)
                                | (sessions.c.revoked_at.is_not(None) & (sessions.c.revoked_at < cutoff)))
    ).rowcount
