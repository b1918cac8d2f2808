"""The indicator registry: every indicator declared once.

Each numerator and denominator is a *row-level* Polars expression over one prepared source frame
(see metrics/prepare.py); computation sums them per district × department × month, so every rollup
is a ratio of sums of the same numerators and denominators. Tables, charts, the 指标说明 page,
scoring and exports all read this registry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import polars as pl

from datasets.domain.vocabulary import Rules
from metrics.prepare import Dataset, prepare_sources_lazy
from metrics.units import DAYS, PERCENT, POINTS, UNITS, Unit  # declared once, in metrics/units.py

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
    "items": "事项清单（时段最后一个月适用的最新清单，按事项计数）",
    "items_coverage": "事项清单（时段最后一个月适用的最新清单）与好差评（时段内任一月份）",
    "cases_accepted": "办件明细（按受理时间所在月份，不含不予受理）",
    "cases_completed": "办件明细（已办结件，按办结时间所在月份）",
    "evaluations": "好差评（按评价时间所在月份）",
    "hotline": "12345热线工单（按受理时间所在月份）",
}

# Catalog sources: stocks, measured on the catalog in force in a range's last month (compute.aggregate).
STOCK_SOURCES = ("items", "items_coverage")

LEVELS = {"item": "事项", "case": "办件", "eval": "评价", "hotline": "工单"}


@dataclass(frozen=True)
class Aside:
    """A count shown beside an indicator's value, in none of its parts (e.g. the 差评 still within their
    rectification period beside the two rectification rates): summed per district × department × month
    like a numerator (the components' ``aside`` column), so its rollups are sums too."""

    expr: pl.Expr  # row-level, over the indicator's numerator source
    label: str  # Chinese, e.g. 整改期内差评
    unit: str  # 条, 件
    description: str  # Chinese: what it counts and why it is beside, not inside, the rate


@dataclass(frozen=True)
class Indicator:
    id: str
    name: str
    unit: Unit  # PERCENT: value is a fraction shown as %; DAYS; POINTS
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
    aside: Aside | None = None  # a count shown beside the value (see Aside)

    def __post_init__(self) -> None:
        missing = [f for f in ("id", "name", "unit", "group", "level", "source", "description",
                               "numerator_label", "denominator_label") if not getattr(self, f)]
        if (missing or self.direction not in (UP, DOWN) or self.group not in GROUPS or self.level not in LEVELS
                or self.unit not in UNITS):
            raise ValueError(f"indicator {self.id!r} is incomplete: {missing or 'direction/group/level/unit'}")

    @property
    def is_stock(self) -> bool:
        """Catalog indicators are stocks: over a range they are measured in the range's last month."""
        return self.source in STOCK_SOURCES

    def describe(self, rules: Rules | None = None) -> str:
        """The description with the settings in force filled in (``{rectify_days}`` → 15)."""
        return self.description.format(**(rules or Rules()).model_dump())

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
        """分子 ÷ 分母, a sum or difference in brackets, a scope such as （法定时限 > 0 的事项） last:
        "(Σ法定时限 − Σ承诺时限) ÷ Σ法定时限（法定时限 > 0 的事项）"."""
        num, num_scope = _split_scope(self.numerator_label)
        den, den_scope = _split_scope(self.denominator_label)
        if not (_compound(num) or _compound(den)):
            return f"{self.numerator_label} ÷ {self.denominator_label}"
        return f"{_bracket(num)} ÷ {_bracket(den)}{num_scope}{den_scope}"


def _split_scope(label: str) -> tuple[str, str]:
    """A label and its trailing （…） remark: ("Σ法定时限 − Σ承诺时限", "（法定时限 > 0 的事项）")."""
    if label.endswith("）") and "（" in label:
        head, _, remark = label.partition("（")
        return head.rstrip(), f"（{remark}"
    return label, ""


def _compound(expr: str) -> bool:
    return " − " in expr or " + " in expr


def _bracket(expr: str) -> str:
    return f"({expr})" if _compound(expr) else expr


def _flag(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Int64)


# Counts rows: every prepared row has a district (import refuses rows without one).
_ONE = pl.col("district").is_not_null().cast(pl.Int64)

# 差评 within their rectification deadline and not yet rectified: in neither part of the two rates.
BAD_PENDING = Aside(
    expr=pl.col("bad_pending").cast(pl.Int64),
    label="整改期内差评",
    unit="条",
    description="评价时间后 {rectify_days} 个工作日的整改期限晚于数据截止日、且尚未整改的差评，还没到应整改的时候，"
    "既不计入分子也不计入分母，单独列出数量。",
)

INDICATORS: tuple[Indicator, ...] = (
    # A. 网上办事
    Indicator(
        id="online_available_rate",
        name="网上可办率",
        unit=PERCENT,
        direction=UP,
        group="A",
        level="item",
        numerator=_flag("depth_ge2"),
        denominator=_ONE,
        source="items",
        description="网上办理深度达到Ⅱ级（在线预约/表格下载/在线咨询）及以上的事项占全部事项的比例。",
        numerator_label="网上办理深度 ≥ Ⅱ 的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="depth_3plus_rate",
        name="网办深度三级及以上占比",
        unit=PERCENT,
        direction=UP,
        group="A",
        level="item",
        numerator=_flag("depth_ge3"),
        denominator=_ONE,
        source="items",
        description="网上办理深度达到Ⅲ级（在线预审/网上申报，到现场不超过一次）及以上的事项占比。",
        numerator_label="网上办理深度 ≥ Ⅲ 的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="full_online_rate",
        name="全程网办率",
        unit=PERCENT,
        direction=UP,
        group="A",
        level="item",
        numerator=_flag("depth_eq4"),
        denominator=_ONE,
        source="items",
        description="网上办理深度为Ⅳ级（全程网办、零跑动）的事项占比。",
        numerator_label="网上办理深度 = Ⅳ 的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="online_case_rate",
        name="实际网办率",
        unit=PERCENT,
        direction=UP,
        group="A",
        level="case",
        numerator=_flag("is_online"),
        denominator=_ONE,
        source="cases_accepted",
        description="受理的办件中通过网上申请（PC）或移动端申请的比例；窗口、自助终端、邮寄、其他不计为网办。",
        numerator_label="网上渠道受理件数",
        denominator_label="受理件数",
    ),
    # B. 办理时效
    Indicator(
        id="commitment_compression",
        name="承诺压缩比",
        unit=PERCENT,
        direction=UP,
        group="B",
        level="item",
        numerator=pl.col("legal_pos") - pl.col("promised_for_legal_pos"),
        denominator=pl.col("legal_pos"),
        source="items",
        description="法定时限 > 0 的事项中，(Σ法定时限 − Σ承诺时限) ÷ Σ法定时限。",
        numerator_label="Σ法定时限 − Σ承诺时限（法定时限 > 0 的事项）",
        denominator_label="Σ法定时限",
    ),
    Indicator(
        id="statutory_speedup",
        name="法定提速率",
        unit=PERCENT,
        direction=UP,
        group="B",
        level="case",
        numerator=pl.col("legal_pos") - pl.col("elapsed_for_legal_pos"),
        denominator=pl.col("legal_pos"),
        source="cases_completed",
        description="法定时限 > 0 的已办结件中，(Σ法定时限 − Σ用时) ÷ Σ法定时限；超期严重时可为负数，按实际值保留。"
        "用时按工作日计（自然日时限按自然日计），不含受理当日，扣除特别程序时长。",
        numerator_label="Σ法定时限 − Σ用时（法定时限 > 0 的已办结件）",
        denominator_label="Σ法定时限",
    ),
    Indicator(
        id="promise_speedup",
        name="承诺提速率",
        unit=PERCENT,
        direction=UP,
        group="B",
        level="case",
        numerator=pl.col("promised_pos") - pl.col("elapsed_for_promised_pos"),
        denominator=pl.col("promised_pos"),
        source="cases_completed",
        description="承诺时限 > 0 的已办结件中，(Σ承诺时限 − Σ用时) ÷ Σ承诺时限。",
        numerator_label="Σ承诺时限 − Σ用时（承诺时限 > 0 的已办结件）",
        denominator_label="Σ承诺时限",
    ),
    Indicator(
        id="on_time_rate",
        name="按时办结率",
        unit=PERCENT,
        direction=UP,
        group="B",
        level="case",
        numerator=_flag("on_time"),
        denominator=_ONE,
        source="cases_completed",
        description="已办结件中用时不超过承诺时限的比例（即办件承诺时限为 0，当日办结才算按时）。"
        "办件未填时限时取事项清单的时限；两者均无承诺时限的件计入分母、不计入分子。",
        numerator_label="用时 ≤ 承诺时限的已办结件数",
        denominator_label="已办结件数",
    ),
    Indicator(
        id="card_rate",
        name="红黄牌发生率",
        unit=PERCENT,
        direction=DOWN,
        group="B",
        level="case",
        numerator=_flag("any_card"),
        denominator=_ONE,
        source="cases_accepted",
        description="受理件中被亮黄牌或红牌的比例（一件只计一次）。黄牌：用时超过承诺时限 {yellow_grace_days} 个工作日以上；"
        "红牌：用时超过法定时限 {red_grace_days} 个工作日以上（时限单位为自然日的按自然日比较）。"
        "在办件用时计至其导出的数据截止日（不晚于导出所属月份月末）；退件、撤件用时计至其结束时间。"
        "导出含“监察结果”列时以该列为准，已撤销的红黄牌不计。",
        numerator_label="亮黄牌或红牌的受理件数",
        denominator_label="受理件数",
    ),
    Indicator(
        id="red_card_rate",
        name="红牌发生率",
        unit=PERCENT,
        direction=DOWN,
        group="B",
        level="case",
        numerator=_flag("red_card"),
        denominator=_ONE,
        source="cases_accepted",
        description="受理件中被亮红牌（用时超过法定时限 {red_grace_days} 个工作日以上，或监察结果为红牌且未撤销）的比例。",
        numerator_label="亮红牌的受理件数",
        denominator_label="受理件数",
    ),
    Indicator(
        id="avg_handling_days",
        name="平均办理用时（工作日）",
        unit=DAYS,
        direction=DOWN,
        group="B",
        level="case",
        numerator=pl.col("elapsed_wd"),
        denominator=_ONE,
        source="cases_completed",
        description="已办结件的平均用时：Σ用时 ÷ 已办结件数。用时为受理日之后至办结日（含）的工作日数，扣除特别程序时长，不小于 0；"
        "时限单位为自然日的办件在这里同样按工作日计。",
        numerator_label="Σ用时（工作日）",
        denominator_label="已办结件数",
    ),
    Indicator(
        id="completion_rate",
        name="办结率",
        unit=PERCENT,
        direction=UP,
        group="B",
        level="case",
        numerator=_flag("is_completed"),
        denominator=_ONE,
        source="cases_accepted",
        description="当期受理的办件中已办结的比例（按受理时间归属月份；退件、撤件不算办结）。",
        numerator_label="当期受理且已办结的件数",
        denominator_label="当期受理件数",
    ),
    Indicator(
        id="instant_item_rate",
        name="即办事项占比",
        unit=PERCENT,
        direction=UP,
        group="B",
        level="item",
        numerator=_flag("is_instant"),
        denominator=_ONE,
        source="items",
        description="办件类型为即办件的事项占全部事项的比例。",
        numerator_label="即办件事项数",
        denominator_label="全部事项数",
    ),
    # C. 便利度
    Indicator(
        id="zero_visit_rate",
        name="零跑动事项占比",
        unit=PERCENT,
        direction=UP,
        group="C",
        level="item",
        numerator=_flag("zero_visit"),
        denominator=_ONE,
        source="items",
        description="到办事现场次数为 0 的事项占比（未填写次数的事项计入分母）。",
        numerator_label="到办事现场次数 = 0 的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="at_most_once_rate",
        name="最多跑一次事项占比",
        unit=PERCENT,
        direction=UP,
        group="C",
        level="item",
        numerator=_flag("at_most_once"),
        denominator=_ONE,
        source="items",
        description="到办事现场次数不超过 1 次的事项占比。",
        numerator_label="到办事现场次数 ≤ 1 的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="zero_material_rate",
        name="零材料事项占比",
        unit=PERCENT,
        direction=UP,
        group="C",
        level="item",
        numerator=_flag("zero_material"),
        denominator=_ONE,
        source="items",
        description="申请材料数为 0 的事项占比。",
        numerator_label="申请材料数 = 0 的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="hall_entry_rate",
        name="进驻率",
        unit=PERCENT,
        direction=UP,
        group="C",
        level="item",
        numerator=_flag("in_hall_yes"),
        denominator=_ONE,
        source="items",
        description="是否进驻大厅为“是”的事项占比。",
        numerator_label="进驻大厅的事项数",
        denominator_label="全部事项数",
    ),
    # D. 好差评
    Indicator(
        id="eval_item_coverage",
        name="评价事项覆盖率",
        unit=PERCENT,
        direction=UP,
        group="D",
        level="item",
        numerator=_flag("evaluated"),
        denominator=_ONE,
        source="items_coverage",
        description="时段最后一个月适用的事项清单中，时段内任一月份有至少 1 条评价（同区县、同事项编码）的事项占全部事项的比例；"
        "跨月统计时每个事项只计一次，所以全年覆盖率不低于其中任何一个月。",
        numerator_label="时段内有评价的事项数",
        denominator_label="全部事项数",
    ),
    Indicator(
        id="active_eval_rate",
        name="主动评价率",
        unit=PERCENT,
        direction=UP,
        group="D",
        level="eval",
        numerator=_flag("active"),
        denominator=_ONE,
        source="evaluations",
        description="主动评价（办事人自己作出的评价）占全部评价的比例，其余为系统默认好评。",
        numerator_label="主动评价数",
        denominator_label="评价总数",
    ),
    Indicator(
        id="actual_eval_rate",
        name="实际评价率",
        unit=PERCENT,
        direction=UP,
        group="D",
        level="case",
        numerator=_flag("active"),
        denominator=_ONE,
        source="evaluations",
        description="主动评价数 ÷ 已办结件数（评价按评价时间、办结件按办结时间归属月份）。",
        numerator_label="主动评价数",
        denominator_label="已办结件数",
        denominator_source="cases_completed",
    ),
    Indicator(
        id="good_rate",
        name="好评率",
        unit=PERCENT,
        direction=UP,
        group="D",
        level="eval",
        numerator=_flag("is_good"),
        denominator=_ONE,
        source="evaluations",
        description="（非常满意 + 满意 + 基本满意）÷ 全部评价。",
        numerator_label="非常满意、满意、基本满意评价数",
        denominator_label="评价总数",
    ),
    Indicator(
        id="bad_rate",
        name="差评率",
        unit=PERCENT,
        direction=DOWN,
        group="D",
        level="eval",
        numerator=_flag("is_bad"),
        denominator=_ONE,
        source="evaluations",
        description="差评（不满意、非常不满意）÷ 全部评价。",
        numerator_label="差评数",
        denominator_label="评价总数",
    ),
    Indicator(
        id="satisfaction_score",
        name="满意度得分",
        unit=POINTS,
        direction=UP,
        group="D",
        level="eval",
        numerator=pl.col("rating").cast(pl.Int64) * 20,
        denominator=_ONE,
        source="evaluations",
        description="评价等级平均分 × 20（非常满意 5、满意 4、基本满意 3、不满意 2、非常不满意 1），满分 100。",
        numerator_label="Σ评价等级 × 20",
        denominator_label="评价总数",
    ),
    Indicator(
        id="bad_rectified_rate",
        name="差评整改率",
        unit=PERCENT,
        direction=UP,
        group="D",
        level="eval",
        numerator=_flag("bad_rectified"),
        denominator=_flag("bad_due"),
        source="evaluations",
        description="整改状态为“已整改”或“核实不属实”的差评 ÷ 应整改的差评。应整改：已整改（或核实不属实），"
        "或整改期限（评价时间后 {rectify_days} 个工作日）在数据截止日当天或之前；仍在整改期内的差评不计入分子、分母，单独列出数量。",
        numerator_label="已整改或核实不属实的差评数",
        denominator_label="应整改的差评数",
        aside=BAD_PENDING,
    ),
    Indicator(
        id="bad_rectified_on_time_rate",
        name="差评按时整改率",
        unit=PERCENT,
        direction=UP,
        group="D",
        level="eval",
        numerator=_flag("bad_rectified_on_time"),
        denominator=_flag("bad_due"),
        source="evaluations",
        description="评价时间后 {rectify_days} 个工作日内（可在设置中调整）完成整改（已整改或核实不属实，且有整改完成时间）的差评 ÷ 应整改的差评"
        "（同差评整改率；整改期内的差评不计入分子、分母，单独列出数量）。",
        numerator_label="按时整改的差评数",
        denominator_label="应整改的差评数",
        aside=BAD_PENDING,
    ),
    # E. 12345 热线
    Indicator(
        id="hotline_completion_rate",
        name="热线办结率",
        unit=PERCENT,
        direction=UP,
        group="E",
        level="hotline",
        numerator=_flag("is_closed"),
        denominator=_ONE,
        source="hotline",
        description="当期受理的工单中已办结（有办结时间）的比例。",
        numerator_label="已办结工单数",
        denominator_label="受理工单数",
    ),
    Indicator(
        id="hotline_on_time_rate",
        name="热线按时办结率",
        unit=PERCENT,
        direction=UP,
        group="E",
        level="hotline",
        numerator=_flag("closed_on_time"),
        denominator=_flag("is_closed"),
        source="hotline",
        description="已办结工单中在办理时限当时或之前办结的比例；无办理时限的已办结工单计入分母、不计入分子。",
        numerator_label="按时办结工单数",
        denominator_label="已办结工单数",
    ),
    Indicator(
        id="hotline_satisfaction_rate",
        name="热线满意率",
        unit=PERCENT,
        direction=UP,
        group="E",
        level="hotline",
        numerator=_flag("satisfied"),
        denominator=_flag("answered"),
        source="hotline",
        description="（满意 + 基本满意）÷ 有回访结果的工单（未回访或空白不计）。",
        numerator_label="满意和基本满意工单数",
        denominator_label="有回访结果的工单数",
    ),
)

BY_ID: dict[str, Indicator] = {i.id: i for i in INDICATORS}


@functools.cache
def indicator_frame() -> pl.DataFrame:
    """indicator, name, unit, arrow, group, order (registry order): the lookup table joined onto results."""
    return pl.DataFrame(
        {
            "indicator": [i.id for i in INDICATORS],
            "name": [i.name for i in INDICATORS],
            "unit": [i.unit.name for i in INDICATORS],
            "arrow": [i.arrow for i in INDICATORS],
            "group": [i.group for i in INDICATORS],
            "order": list(range(len(INDICATORS))),
        },
        schema={"indicator": pl.String, "name": pl.String, "unit": pl.String, "arrow": pl.String,
                "group": pl.String, "order": pl.Int64},
    )


def get(indicator_id: str) -> Indicator:
    return BY_ID[indicator_id]


def by_group() -> dict[str, list[Indicator]]:
    out: dict[str, list[Indicator]] = {g: [] for g in GROUPS}
    for ind in INDICATORS:
        out[ind.group].append(ind)
    return out


def column_problems(
    indicators: tuple[Indicator, ...] = INDICATORS, schemas: dict[str, pl.Schema] | None = None
) -> list[str]:
    """Every expression that reads a column its source frame lacks (all of them, not the first).

    ``schemas``: source name → columns; by default the prepared sources of an empty dataset.
    """
    if schemas is None:
        schemas = {name: frame.collect_schema() for name, frame in prepare_sources_lazy(Dataset.empty(), until=None).items()}
    problems = []
    for ind in indicators:
        parts = [("numerator", ind.numerator, ind.source), ("denominator", ind.denominator, ind.den_source)]
        if ind.aside is not None:
            parts.append(("aside", ind.aside.expr, ind.source))
        for part, expr, source in parts:
            if source not in schemas:
                problems.append(f"{ind.id}.{part}: unknown source {source!r}")
                continue
            for column in expr.meta.root_names():
                if column not in schemas[source]:
                    problems.append(f"{ind.id}.{part}: column {column!r} is not in source {source!r}")
    return problems
