"""What administrators set for the monthly bulletin (月度通报): the Word template with the bureau's
letterhead, the 五、下一步工作要求 text, the city's and the issuing bureau's names.

Kept in the database (not on an app server's disk) so that every server renders the same document;
every change is audited like a settings change.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datasets.access import accounts
from datasets.access.accounts import PermissionDenied, User
from datasets.storage import store
from datasets.storage.tables import documents

TEMPLATE, REQUIREMENTS, CITY_NAME, ISSUER = "bulletin_template", "bulletin_requirements", "bulletin_city", "bulletin_issuer"
# The 发文字号's 机关代字 (澄政数 in 澄政数〔2026〕12号), the 抄送 line, and the last number issued ("2026-12").
DOC_PREFIX, CC, LAST_NUMBER = "bulletin_doc_prefix", "bulletin_cc", "bulletin_last_number"
TEXT_LABELS = {REQUIREMENTS: "下一步工作要求", CITY_NAME: "城市名称", ISSUER: "发文单位", DOC_PREFIX: "机关代字",
               CC: "抄送机关"}
PAGE = "设置"



def get(engine: Engine, key: str) -> bytes | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(documents.c.content).where(documents.c.key == key)).scalar()


def get_text(engine: Engine, key: str) -> str | None:
    content = get(engine, key)
    return None if content is None else content.decode("utf-8")


def info(engine: Engine, key: str) -> dict | None:
    """file_name, user_name, at of a stored document (None when the default is in force)."""
    t = documents
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.c.file_name, t.c.user_name, t.c.at).where(t.c.key == key)).first()
    return None if row is None else dict(row._mapping)


def put(engine: Engine, key: str, content: bytes, user_name: str, file_name: str = "") -> None:
    """Replace the stored document (delete + insert in one transaction works on SQLite and PostgreSQL)."""
    with engine.begin() as conn:
        conn.execute(documents.delete().where(documents.c.key == key))
        conn.execute(documents.insert().values(key=key, content=content, file_name=file_name[:200],
                                               user_name=user_name, at=store.now()))


def delete(engine: Engine, key: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(documents.delete().where(documents.c.key == key)).rowcount > 0


# --- administrators' changes, audited -------------------------------------------------------------


def _check_admin(engine: Engine, actor: User) -> None:
    accounts.require_admin(actor)
    stored = accounts.get_user(engine, actor.username)
    if stored is None or not stored.active or not stored.is_admin:
        raise PermissionDenied(f"账号“{actor.username}”已停用、不存在或不是管理员，不能修改通报设置")


def save_template(engine: Engine, actor: User, content: bytes, file_name: str) -> None:
    """Store an uploaded template (validate it first: metrics.bulletin_docx.check_template)."""
    _check_admin(engine, actor)
    put(engine, TEMPLATE, content, actor.username, file_name)
    accounts.audit(engine, actor.username, "settings", f"上传通报模板：{file_name}（{len(content)} 字节）", PAGE)


def reset_template(engine: Engine, actor: User) -> bool:
    """Back to the template that ships with the code; False when it was already in force."""
    _check_admin(engine, actor)
    removed = delete(engine, TEMPLATE)
    if removed:
        accounts.audit(engine, actor.username, "settings", "通报模板恢复为默认模板", PAGE)
    return removed


def save_text(engine: Engine, actor: User, key: str, text: str) -> bool:
    """Save one of the bulletin's texts; empty text goes back to the default. False when unchanged."""
    _check_admin(engine, actor)
    text = text.strip()
    old = get_text(engine, key)
    if (old or "") == text:
        return False
    if text:
        put(engine, key, text.encode("utf-8"), actor.username)
    else:
        delete(engine, key)
    label = TEXT_LABELS[key]
    shown = text if len(text) <= 200 else text[:200] + "…"
    accounts.audit(engine, actor.username, "settings", f"修改通报{label}：{shown or '（恢复默认）'}", PAGE)
    return True


# --- the 发文字号's sequence number ----------------------------------------------------------------


def last_number(engine: Engine) -> tuple[int, int] | None:
    """(year, sequence) of the last bulletin downloaded with a 发文字号, or None."""
    text = get_text(engine, LAST_NUMBER)
    if not text:
        return None
    year, _, seq = text.partition("-")
    return (int(year), int(seq)) if year.isdigit() and seq.isdigit() else None


def next_sequence(engine: Engine, year: int) -> int:
    """The sequence number proposed for a new bulletin: one after the last recorded in ``year``
    (numbers restart at 1 each year)."""
    last = last_number(engine)
    return last[1] + 1 if last is not None and last[0] == year else 1


def record_number(engine: Engine, user_name: str, year: int, sequence: int, what: str, page: str) -> None:
    """Record a download that carries 发文字号 ``sequence`` of ``year``: the audit entry names the file and
    the number, and the number becomes the last one issued unless a later one already is (a bulletin
    downloaded again keeps its number). One transaction."""
    last = last_number(engine)
    with engine.begin() as conn:
        if last is None or (year, sequence) > last:
            conn.execute(documents.delete().where(documents.c.key == LAST_NUMBER))
            conn.execute(documents.insert().values(key=LAST_NUMBER, content=f"{year}-{sequence}".encode(),
                                                   file_name="", user_name=user_name, at=store.now()))
        accounts.audit_in(conn, user_name, "download", what, page)
