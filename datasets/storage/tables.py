"""Every table of the store, on one metadata.

Declared here, below the modules that use them (store, accounts, documents), so that those modules
import this one and not each other: ``store.init_db`` creates every table without importing the
account or document modules.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa

from datasets.domain.schema import KINDS, Kind

metadata = sa.MetaData()

_SA_TYPES: dict[type, Any] = {
    pl.String: sa.String(200),
    pl.Float64: sa.Float(),
    pl.Int64: sa.BigInteger(),
    pl.Int8: sa.SmallInteger(),
    pl.Boolean: sa.Boolean(),
    pl.Datetime: sa.DateTime(),
}

districts = sa.Table(
    "districts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("code", sa.String(50), unique=True),
    sa.Column("aliases", sa.Text, nullable=False, default="[]"),  # JSON list
    sa.Column("sort_order", sa.Integer, nullable=False, default=0),
)

# A boundary an administrator uploaded for a district (a 新区 or 开发区 without its own code): one
# validated GeoJSON geometry (datasets/boundaries.parse_upload); it wins over the packaged one.
district_shapes = sa.Table(
    "district_shapes",
    metadata,
    sa.Column("district", sa.String(100), primary_key=True),
    sa.Column("geometry", sa.Text, nullable=False),  # GeoJSON Polygon/MultiPolygon
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("uploaded_at", sa.DateTime, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("upload_id", sa.String(64), nullable=False),  # shared by the batches of one file
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("district", sa.String(100), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),  # YYYY-MM
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("rows_replaced", sa.Integer, nullable=False, default=0),
    sa.Column("warnings", sa.Integer, nullable=False, default=0),
    sa.Column("summary", sa.Text, nullable=False, default="{}"),  # JSON validation summary
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    # 数据截止日: the last day the export knows about (store.as_of_date). Nullable only because a store
    # made before it gets the column added and filled by store.init_db.
    sa.Column("as_of", sa.Date),
    sa.Index("ix_batches_slot", "kind", "district", "period", "state"),
)

# Every change of what counts (import, replace, rollback, settings) adds a revision, so caches key
# on one number.
revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("what", sa.String(200), nullable=False),
)

settings_changes = sa.Table(
    "settings_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text),
)


def _record_table(k: Kind) -> sa.Table:
    cols = [sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False)]
    for f in k.fields:
        sa_type = _SA_TYPES[type(f.dtype)] if type(f.dtype) in _SA_TYPES else _SA_TYPES[f.dtype]
        cols.append(sa.Column(f.name, sa_type, nullable=f.name not in ("district", k.id_field)))
    return sa.Table(
        k.name,
        metadata,
        *cols,
        # Records are read by batch only (newest-wins is worked out in Polars, not in SQL). An index on
        # (district, id) served no query and cost 0.5–0.6 s of a 200 k-row import at scale 10; stores
        # made with it lose it in store.init_db (UNUSED_INDEXES).
        sa.Index(f"ix_{k.name}_batch", "batch_id"),
    )


# Indexes older stores have and nothing reads: dropped at start-up.
UNUSED_INDEXES = tuple(f"ix_{name}_key" for name in KINDS)


record_tables: dict[str, sa.Table] = {name: _record_table(k) for name, k in KINDS.items()}


# --- accounts and the audit log (datasets/access/accounts.py) ---

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("roles", sa.Text, nullable=False, default="[]"),
    sa.Column("districts", sa.Text, nullable=False, default="[]"),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("failed_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("is_demo_password", sa.Boolean, nullable=False, default=False),
    sa.Column("sso_subject", sa.String(200), unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("password_changed_at", sa.DateTime),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("page", sa.String(100), nullable=False, default=""),
)

# Sign-in sessions (datasets/access/sessions.py): the browser's cookie holds a random id, the store only its
# SHA-256, so a copied database cannot be turned into cookies.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("username", sa.String(100), nullable=False, index=True),
    sa.Column("method", sa.String(20), nullable=False),  # password / sso
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),  # absolute end, whatever the activity
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("revoked_reason", sa.String(20)),  # logout / password / disabled / admin
    sa.Column("user_agent", sa.String(300), nullable=False, default=""),
    sa.Column("client", sa.String(100), nullable=False, default=""),  # IP address as the server saw it
)


# --- the bulletin's template and texts (datasets/access/documents.py) ---

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("key", sa.String(50), primary_key=True),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("file_name", sa.String(200), nullable=False, default=""),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)
