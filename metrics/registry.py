"""The indicator registry: every indicator declared once.

Each numerator and denominator is a *row-level* Polars expression over one prepared source frame
(see metrics/prepare.py); computation sums them per district × department × month, so every rollup
is a ratio of sums of the same numerators and denominators. Tables, charts, the 指标说明 page,
scoring and exports all read this registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

UP, DOWN = 1, -1

GROUPS: dict[str, str] = {
    "A": "网上办事",
    "B": "办理时效",
    "C": "便利度",
    "D": "好差评",
    "E": "12345热线",
}

# Prepared source frames (metrics/prepare.py) and what they count.
SOURCES: dict[str, str] = {
    "items": "事项清单（各月适用的最新清单，按事项·月累计）",
    "cases_accepted": "办件明细（按受理时间所在月份，不含不予受理）",
    "cases_completed": "办件明细（已办结件，按办结时间所在月份）",
    "evaluations": "好差评（按评价时间所在月份）",
    "hotline": "12345热线工单（按受理时间所在月份）",
}

LEVELS = {"item": "事项", "case": "办件", "eval": "评价", "hotline": "工单"}

PERCENT, DAYS, POINTS = "%", "工作日", "分"


@dataclass(frozen=True)
class Indicator:
    id: str
    name: str
    unit: str  # PERCENT: value is a fraction shown as %; DAYS; POINTS
    direction: int  # UP (↑ higher is better) or DOWN (↓)
    group: str  # A–E
    level: str  # item | case | eval | hotline
    numerator: pl.Expr
    denominator: pl.Expr
    source: str  # prepared frame of the numerator
    description: str  # Chinese: formula and counting rules
    numerator_label: str
    denominator_label: str
    denominator_source: str | None = None  # when the denominator comes from another frame

    @property
    def den_source(self) -> str:
        return self.denominator_source or self.source

    @property
    def arrow(self) -> str:
        return "↑" if self.direction == UP else "↓"

    @property
    def group_name(self) -> str:
        return GROUPS[self.group]

    @property
    def data_source(self) -> str:
        if self.denominator_source and self.denominator_source != self.source:
            return f"分子：{SOURCES[self.source]}；分母：{SOURCES[self.denominator_source]}"
        return SOURCES[self.source]

    @property
    def formula(self) -> str:
        return f"{self.numerator_label} ÷ {self.denominator_label}"


def _flag(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Int64)


# Counts rows: every prepared row has a district (import refuses rows without one).
_ONE = pl.col("district").is_not_null().cast(pl.Int64)

INDICATORS: tuple[Indicator, ...] = (
    # A. 网上办事
    Indicator(
        "online_available_rate", "网上可办率", PERCENT, UP, "A", "item",
        _flag("depth_ge2"), _ONE, "items",
        "网上办理深度达到Ⅱ级（在线预约/表格下载/在线咨询）及以上的事项占全部事项的比例。",
        "网上办理深度 ≥ Ⅱ 的事项数", "全部事项数",
    ),
    Indicator(
        "depth_3plus_rate", "网办深度三级及以上占比", PERCENT, UP, "A", "item",
        _flag("depth_ge3"), _ONE, "items",
        "网上办理深度达到Ⅲ级（在线预审/网上申报，到现场不超过一次）及以上的事项占比。",
        "网上办理深度 ≥ Ⅲ 的事项数", "全部事项数",
    ),
    Indicator(
        "full_online_rate", "全程网办率", PERCENT, UP, "A", "item",
        _flag("depth_eq4"), _ONE, "items",
        "网上办理深度为Ⅳ级（全程网办、零跑动）的事项占比。",
        "网上办理深度 = Ⅳ 的事项数", "全部事项数",
    ),
    Indicator(
        "online_case_rate", "实际网办率", PERCENT, UP, "A", "case",
        _flag("is_online"), _ONE, "cases_accepted",
        "受理的办件中通过网上申请（PC）或移动端申请的比例；窗口、自助终端、邮寄、其他不计为网办。",
        "网上渠道受理件数", "受理件数",
    ),
    # B. 办理时效
    Indicator(
        "commitment_compression", "承诺压缩比", PERCENT, UP, "B", "item",
        pl.col("legal_pos") - pl.col("promised_for_legal_pos"), pl.col("legal_pos"), "items",
        "法定时限 > 0 的事项中，(Σ法定时限 − Σ承诺时限) ÷ Σ法定时限。",
        "Σ法定时限 − Σ承诺时限（法定时限 > 0 的事项）", "Σ法定时限",
    ),
    Indicator(
        "statutory_speedup", "法定提速率", PERCENT, UP, "B", "case",
        pl.col("legal_pos") - pl.col("elapsed_for_legal_pos"), pl.col("legal_pos"), "cases_completed",
        "法定时限 > 0 的已办结件中，(Σ法定时限 − Σ用时) ÷ Σ法定时限；超期严重时可为负数，按实际值保留。"
        "用时按工作日计（自然日时限按自然日计），不含受理当日，扣除特别程序时长。",
        "Σ法定时限 − Σ用时（法定时限 > 0 的已办结件）", "Σ法定时限",
    ),
    Indicator(
        "promise_speedup", "承诺提速率", PERCENT, UP, "B", "case",
        pl.col("promised_pos") - pl.col("elapsed_for_promised_pos"), pl.col("promised_pos"), "cases_completed",
        "承诺时限 > 0 的已办结件中，(Σ承诺时限 − Σ用时) ÷ Σ承诺时限。",
        "Σ承诺时限 − Σ用时（承诺时限 > 0 的已办结件）", "Σ承诺时限",
    ),
    Indicator(
        "on_time_rate", "按时办结率", PERCENT, UP, "B", "case",
        _flag("on_time"), _ONE, "cases_completed",
        "已办结件中用时不超过承诺时限的比例（即办件承诺时限为 0，当日办结才算按时）。"
        "办件未填时限时取事项清单的时限；两者均无承诺时限的件计入分母、不计入分子。",
        "用时 ≤ 承诺时限的已办结件数", "已办结件数",
    ),
    Indicator(
        "card_rate", "红黄牌发生率", PERCENT, DOWN, "B", "case",
        _flag("any_card"), _ONE, "cases_accepted",
        "受理件中被亮黄牌或红牌的比例（一件只计一次）。黄牌：用时超过承诺时限 1 个工作日以上；"
        "红牌：用时超过法定时限 1 个工作日以上。在办件用时计至导出所属月份月末。"
        "导出含“监察结果”列时以该列为准，已撤销的红黄牌不计。",
        "亮黄牌或红牌的受理件数", "受理件数",
    ),
    Indicator(
        "red_card_rate", "红牌发生率", PERCENT, DOWN, "B", "case",
        _flag("red_card"), _ONE, "cases_accepted",
        "受理件中被亮红牌（用时超过法定时限 1 个工作日以上，或监察结果为红牌且未撤销）的比例。",
        "亮红牌的受理件数", "受理件数",
    ),
    Indicator(
        "avg_handling_days", "平均办理用时（工作日）", DAYS, DOWN, "B", "case",
        pl.col("elapsed_wd"), _ONE, "cases_completed",
        "已办结件的平均用时：Σ用时 ÷ 已办结件数。用时为受理日之后至办结日（含）的工作日数，扣除特别程序时长，不小于 0。",
        "Σ用时（工作日）", "已办结件数",
    ),
    Indicator(
        "completion_rate", "办结率", PERCENT, UP, "B", "case",
        _flag("is_completed"), _ONE, "cases_accepted",
        "当期受理的办件中已办结的比例（按受理时间归属月份）。",
        "当期受理且已办结的件数", "当期受理件数",
    ),
    Indicator(
        "instant_item_rate", "即办事项占比", PERCENT, UP, "B", "item",
        _flag("is_instant"), _ONE, "items",
        "办件类型为即办件的事项占全部事项的比例。",
        "即办件事项数", "全部事项数",
    ),
    # C. 便利度
    Indicator(
        "zero_visit_rate", "零跑动事项占比", PERCENT, UP, "C", "item",
        _flag("zero_visit"), _ONE, "items",
        "到办事现场次数为 0 的事项占比（未填写次数的事项计入分母）。",
        "到办事现场次数 = 0 的事项数", "全部事项数",
    ),
    Indicator(
        "at_most_once_rate", "最多跑一次事项占比", PERCENT, UP, "C", "item",
        _flag("at_most_once"), _ONE, "items",
        "到办事现场次数不超过 1 次的事项占比。",
        "到办事现场次数 ≤ 1 的事项数", "全部事项数",
    ),
    Indicator(
        "zero_material_rate", "零材料事项占比", PERCENT, UP, "C", "item",
        _flag("zero_material"), _ONE, "items",
        "申请材料数为 0 的事项占比。",
        "申请材料数 = 0 的事项数", "全部事项数",
    ),
    Indicator(
        "hall_entry_rate", "进驻率", PERCENT, UP, "C", "item",
        _flag("in_hall_yes"), _ONE, "items",
        "是否进驻大厅为“是”的事项占比。",
        "进驻大厅的事项数", "全部事项数",
    ),
    # D. 好差评
    Indicator(
        "eval_item_coverage", "评价事项覆盖率", PERCENT, UP, "D", "item",
        _flag("evaluated"), _ONE, "items",
        "当月有至少 1 条评价的清单事项占全部事项的比例；多月合计时按“事项·月”累计分子分母。",
        "当月有评价的事项数", "全部事项数",
    ),
    Indicator(
        "active_eval_rate", "主动评价率", PERCENT, UP, "D", "eval",
        _flag("active"), _ONE, "evaluations",
        "主动评价（办事人自己作出的评价）占全部评价的比例，其余为系统默认好评。",
        "主动评价数", "评价总数",
    ),
    Indicator(
        "actual_eval_rate", "实际评价率", PERCENT, UP, "D", "case",
        _flag("active"), _ONE, "evaluations",
        "主动评价数 ÷ 已办结件数（评价按评价时间、办结件按办结时间归属月份）。",
        "主动评价数", "已办结件数",
        denominator_source="cases_completed",
    ),
    Indicator(
        "good_rate", "好评率", PERCENT, UP, "D", "eval",
        _flag("is_good"), _ONE, "evaluations",
        "（非常满意 + 满意 + 基本满意）÷ 全部评价。",
        "非常满意、满意、基本满意评价数", "评价总数",
    ),
    Indicator(
        "bad_rate", "差评率", PERCENT, DOWN, "D", "eval",
        _flag("is_bad"), _ONE, "evaluations",
        "差评（不满意、非常不满意）÷ 全部评价。",
        "差评数", "评价总数",
    ),
    Indicator(
        "satisfaction_score", "满意度得分", POINTS, UP, "D", "eval",
        pl.col("rating").cast(pl.Int64) * 20, _ONE, "evaluations",
        "评价等级平均分 × 20（非常满意 5、满意 4、基本满意 3、不满意 2、非常不满意 1），满分 100。",
        "Σ评价等级 × 20", "评价总数",
    ),
    Indicator(
        "bad_rectified_rate", "差评整改率", PERCENT, UP, "D", "eval",
        _flag("bad_rectified"), _flag("is_bad"), "evaluations",
        "整改状态为“已整改”或“核实不属实”的差评 ÷ 全部差评。",
        "已整改或核实不属实的差评数", "差评数",
    ),
    Indicator(
        "bad_rectified_on_time_rate", "差评按时整改率", PERCENT, UP, "D", "eval",
        _flag("bad_rectified_on_time"), _flag("is_bad"), "evaluations",
        "评价时间后 15 个工作日内（可在设置中调整）完成整改（已整改或核实不属实，且有整改完成时间）的差评 ÷ 全部差评。",
        "按时整改的差评数", "差评数",
    ),
    # E. 12345 热线
    Indicator(
        "hotline_completion_rate", "热线办结率", PERCENT, UP, "E", "hotline",
        _flag("is_closed"), _ONE, "hotline",
        "当期受理的工单中已办结（有办结时间）的比例。",
        "已办结工单数", "受理工单数",
    ),
    Indicator(
        "hotline_on_time_rate", "热线按时办结率", PERCENT, UP, "E", "hotline",
        _flag("closed_on_time"), _flag("is_closed"), "hotline",
        "已办结工单中在办理时限当时或之前办结的比例；无办理时限的已办结工单计入分母、不计入分子。",
        "按时办结工单数", "已办结工单数",
    ),
    Indicator(
        "hotline_satisfaction_rate", "热线满意率", PERCENT, UP, "E", "hotline",
        _flag("satisfied"), _flag("answered"), "hotline",
        "（满意 + 基本满意）÷ 有回访结果的工单（未回访或空白不计）。",
        "满意和基本满意工单数", "有回访结果的工单数",
    ),
)

BY_ID: dict[str, Indicator] = {i.id: i for i in INDICATORS}


def get(indicator_id: str) -> Indicator:
    return BY_ID[indicator_id]


def by_group() -> dict[str, list[Indicator]]:
    out: dict[str, list[Indicator]] = {g: [] for g in GROUPS}
    for ind in INDICATORS:
        out[ind.group].append(ind)
    return out
