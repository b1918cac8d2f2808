"""The scoring settings form: the editable table, turning it back into validated settings with Chinese
error messages, and the labels of settings in change lists and the history. No Streamlit here: the
settings page lays these out."""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl
from pydantic import ValidationError

from datasets.domain.vocabulary import Rules
from metrics.formatting import NULL_TEXT, fmt_value
from metrics.registry import BY_ID, INDICATORS
from metrics.scoring import ScoringSettings

# Rule → (Chinese title, description): declared once on the rules model.
RULE_LABELS: dict[str, tuple[str, str]] = Rules.titles()

FIELD_LABELS = {"weight": "权重", "target": "目标值", "floor": "底线值"}


def _edit_scale(indicator_id: str) -> float:
    """Values are edited as shown: percentages as numbers of percent (95 rather than 0.95)."""
    return BY_ID[indicator_id].unit.scale


def settings_frame(settings: ScoringSettings) -> pl.DataFrame:
    """Editable table: one row per indicator; percentages shown as numbers of percent."""
    rows = []
    for ind in INDICATORS:
        t = settings.indicators[ind.id]
        k = _edit_scale(ind.id)
        rows.append(
            {
                "编号": ind.id,
                "分组": f"{ind.group} {ind.group_name}",
                "指标": ind.name,
                "方向": ind.arrow,
                "单位": ind.unit.name,
                "权重": float(t.weight),
                "目标值": round(t.target * k, 6),
                "底线值": round(t.floor * k, 6),
            }
        )
    return pl.DataFrame(rows)


def as_polars(frame: object) -> pl.DataFrame:
    """A table returned by a widget (Polars, pandas or Arrow) as a Polars frame."""
    if isinstance(frame, pl.DataFrame):
        return frame
    try:
        return pl.from_pandas(frame)  # type: ignore[arg-type]
    except TypeError:
        return pl.DataFrame(frame)


class SettingsError(ValueError):
    """Settings an administrator entered that cannot be used; ``messages`` are in Chinese."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("；".join(messages))
        self.messages = messages


def settings_from_frame(frame: pl.DataFrame, rules: dict[str, float | bool]) -> ScoringSettings:
    """Build validated settings from the edited table and rule values (raises SettingsError in Chinese)."""
    messages: list[str] = []
    indicators: dict[str, dict[str, float | None]] = {}
    for row in frame.iter_rows(named=True):
        ind_id = row["编号"]
        k = _edit_scale(ind_id)
        values: dict[str, float | None] = {}
        for field, label in FIELD_LABELS.items():
            v = row.get(label)
            if v is None:
                messages.append(f"{BY_ID[ind_id].name}：{label}不能为空")
            # Rounded so that 99.9 % edited back is 0.999 again, not 0.9990000000000001 (a spurious change).
            values[field] = None if v is None else round(float(v) / (1.0 if field == "weight" else k), 10)
        indicators[ind_id] = values
    if messages:
        raise SettingsError(messages)
    try:
        return ScoringSettings.model_validate({"indicators": indicators, "rules": rules})
    except ValidationError as exc:
        raise SettingsError(settings_error_messages(exc)) from None


def settings_error_messages(exc: ValidationError) -> list[str]:
    """Pydantic errors as Chinese sentences naming the indicator and the field."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        what = "设置"
        if loc and loc[0] == "indicators" and len(loc) >= 2 and loc[1] in BY_ID:
            what = BY_ID[loc[1]].name + (f"的{FIELD_LABELS[loc[2]]}" if len(loc) >= 3 and loc[2] in FIELD_LABELS else "")
        elif loc and loc[0] == "rules" and len(loc) >= 2 and loc[1] in RULE_LABELS:
            what = RULE_LABELS[loc[1]][0]
        kind = err["type"]
        if kind == "greater_than_equal":
            out.append(f"{what}不能小于 {err['ctx']['ge']:g}")
        elif kind == "less_than_equal":
            out.append(f"{what}不能大于 {err['ctx']['le']:g}")
        elif kind in ("float_parsing", "int_parsing", "float_type", "int_type", "int_from_float"):
            out.append(f"{what}必须是{'整数' if 'int' in kind else '数字'}")
        elif kind == "value_error":
            out.append(f"{what}：{str(err['msg']).removeprefix('Value error, ')}")
        else:
            out.append(f"{what}：取值无效")
    return out


def setting_label(key: str) -> str:
    """``indicators.<id>.<field>`` or ``rules.<field>`` as a Chinese label."""
    parts = key.split(".")
    if parts[0] == "indicators" and len(parts) == 3 and parts[1] in BY_ID:
        return f"{BY_ID[parts[1]].name} · {FIELD_LABELS.get(parts[2], parts[2])}"
    if parts[0] == "rules" and len(parts) == 2 and parts[1] in RULE_LABELS:
        return RULE_LABELS[parts[1]][0]
    return key


def setting_value_text(key: str, value: object) -> str:
    if value is None:
        return NULL_TEXT
    parts = key.split(".")
    if parts[0] == "indicators" and len(parts) == 3 and parts[2] in ("target", "floor") and parts[1] in BY_ID:
        return fmt_value(parts[1], float(value))  # type: ignore[arg-type]
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def changes_table(changes: Sequence[tuple[str, object, object]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"设置项": setting_label(k), "原值": setting_value_text(k, old), "新值": setting_value_text(k, new)}
         for k, old, new in changes],
        schema={"设置项": pl.String, "原值": pl.String, "新值": pl.String},
    )


def history_table(history: pl.DataFrame) -> pl.DataFrame:
    """settings_history() with Chinese headers and readable values."""
    rows = []
    for r in history.iter_rows(named=True):
        old = json.loads(r["old_value"]) if r.get("old_value") else None
        new = json.loads(r["new_value"]) if r.get("new_value") else None
        rows.append(
            {
                "时间": str(r["at"]),
                "操作人": r["user_name"],
                "设置项": setting_label(r["key"]),
                "原值": setting_value_text(r["key"], old),
                "新值": setting_value_text(r["key"], new),
            }
        )
    return pl.DataFrame(rows, schema={"时间": pl.String, "操作人": pl.String, "设置项": pl.String,
                                      "原值": pl.String, "新值": pl.String})
