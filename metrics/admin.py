"""Saving the scoring settings as an administrator: the metrics-side counterpart of datasets/operations/admin.py.

Here and not in datasets/ because it needs ``ScoringSettings`` and the settings' labels (metrics/).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from datasets.access import accounts, documents
from datasets.access.accounts import User
from datasets.operations import admin
from metrics.scoring import ScoringSettings, save_settings
from metrics.settings_form import setting_label, setting_value_text


def save_scoring(engine: Engine, actor: User, new: ScoringSettings, *,
                 page: str = documents.PAGE) -> list[tuple[str, float, float]]:
    """Save scoring settings as an administrator; audited.

    Returns the changes (key, old, new); nothing is saved or audited when nothing changed.
    """
    actor = admin.check_actor(engine, actor)
    changes = save_settings(engine, new, actor.username)
    if changes:
        listed = "；".join(f"{setting_label(k)}：{setting_value_text(k, old)} → {setting_value_text(k, value)}"
                          for k, old, value in changes)
        accounts.audit(engine, actor.username, "settings", f"修改 {len(changes)} 项设置：{listed}", page)
    return changes
