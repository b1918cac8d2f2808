"""The indicator reference (指标说明): formulas, counting readings, group weights and rules in force."""

from __future__ import annotations

import polars as pl

from datasets.domain.vocabulary import readings
from metrics.formatting import fmt_value
from metrics.registry import GROUPS, INDICATORS, UP
from metrics.scoring import ScoringSettings
from metrics.settings_form import RULE_LABELS, setting_value_text


def indicator_reference(settings: ScoringSettings) -> pl.DataFrame:
    """Every indicator with its formula, counting rules, direction, group, weight, target and floor."""
    rows = []
    for ind in INDICATORS:
        t = settings.indicators[ind.id]
        rows.append(
            {
                "分组": f"{ind.group} {ind.group_name}",
                "指标": ind.name,
                "编号": ind.id,
                "方向": f"{ind.arrow} {'越高越好' if ind.direction == UP else '越低越好'}",
                "单位": ind.unit.name,
                "公式": ind.formula,
                "分子": ind.numerator_label,
                "分母": ind.denominator_label,
                "口径说明": ind.describe(settings.rules),
                # A count beside the value, in neither part (整改期内差评 beside the rectification rates).
                "单独列出": (f"{ind.aside.label}：{ind.aside.description.format(**settings.rules.model_dump())}"
                         if ind.aside is not None else ""),
                "数据来源": ind.data_source,
                "权重": t.weight,
                "目标值": fmt_value(ind.id, t.target),
                "底线值": fmt_value(ind.id, t.floor),
            }
        )
    return pl.DataFrame(rows)


def readings_table(settings: ScoringSettings) -> pl.DataFrame:
    """Every counting rule the product chose (datasets.domain.vocabulary.readings), with the settings in force."""
    return pl.DataFrame(readings(settings.rules), schema={"口径": pl.String, "规则": pl.String}, orient="row")


def group_weights(settings: ScoringSettings) -> pl.DataFrame:
    """Group, indicator count and total weight (share of the index)."""
    total = sum(settings.indicators[i.id].weight for i in INDICATORS) or 1.0
    rows = []
    for g, name in GROUPS.items():
        ids = [i.id for i in INDICATORS if i.group == g]
        w = sum(settings.indicators[i].weight for i in ids)
        rows.append({"分组": f"{g} {name}", "指标数": len(ids), "权重合计": w,
                     "占指数比重（%）": round(w / total * 100, 1)})
    return pl.DataFrame(rows)


def rules_table(settings: ScoringSettings) -> pl.DataFrame:
    rules = settings.rules.model_dump()
    return pl.DataFrame(
        [{"规则": RULE_LABELS[k][0], "取值": setting_value_text(f"rules.{k}", v), "说明": RULE_LABELS[k][1]}
         for k, v in rules.items()],
        schema={"规则": pl.String, "取值": pl.String, "说明": pl.String},
    )

