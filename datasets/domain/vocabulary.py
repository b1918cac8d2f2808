"""The counting vocabulary: every rule that decides whether a record counts, declared once.

Each rule is a named Polars expression over the stored columns (or a small function returning
one). The indicator source frames (metrics/prepare.py), the alert lists (metrics/alerts.py), the
upload checks (datasets/intake/validate.py), the demo generator and the benchmarks' reference
implementations use these names, so a status means the same thing everywhere.

The thresholds that are settings (card grace days, rectification period, ranking completeness)
live in ``Rules``, one pydantic model that serves the computation, the 设置 page, the 指标说明 page
and the cache keys.
"""

from __future__ import annotations

import json

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from datasets.domain.schema import ONLINE_CHANNELS

# --- case statuses (办理状态) -------------------------------------------------------------------

COMPLETED_STATUS = "已办结"
NOT_ACCEPTED_STATUS = "不予受理"
IN_PROGRESS_STATUS = "在办"
# Ended without being completed: not open (their time stops at the end time), not completed.
ENDED_UNCOMPLETED_STATUSES = ("退件", "撤件")

WORKING_DAYS, NATURAL_DAYS = "工作日", "自然日"
INSTANT_CASE_TYPE = "即办件"


def has_end_time() -> pl.Expr:
    """The case has an end time (办结时间/结束时间)."""
    return pl.col("completed_at").is_not_null()


def accepted_case() -> pl.Expr:
    """Accepted: every case except 不予受理."""
    return (pl.col("status") != NOT_ACCEPTED_STATUS).fill_null(True)


def open_case() -> pl.Expr:
    """Open: accepted and without an end time, whatever its status text says."""
    return accepted_case() & ~has_end_time()


def completed_case() -> pl.Expr:
    """Completed: 已办结 with an end time (the indicators over completed cases count only these)."""
    return ((pl.col("status") == COMPLETED_STATUS) & has_end_time()).fill_null(False)


def ended_uncompleted_case() -> pl.Expr:
    """退件/撤件 with an end time: no longer open, never completed."""
    return accepted_case() & has_end_time() & ~completed_case()


def case_end(as_of: pl.Expr) -> pl.Expr:
    """Where a case's elapsed time stops: its end time, or for an open case the as-of date of its
    export (数据截止日: never after the export month's last day)."""
    return pl.coalesce(pl.col("completed_at"), as_of)


def online_case() -> pl.Expr:
    """Online channels: 网上申请 (PC) and 移动端."""
    return pl.col("channel").is_in(list(ONLINE_CHANNELS)).fill_null(False)


# --- time limits --------------------------------------------------------------------------------


def limit_with_fallback(limit: str) -> tuple[pl.Expr, pl.Expr]:
    """A case's ``legal`` or ``promised`` limit and its unit: the case's own, else its catalog's.

    The catalog columns (``cat_legal``, ``cat_legal_unit``, …) come from the catalog in force in the
    case's accepted month (prepare._with_catalog). The unit follows the limit it belongs to; no unit
    means 工作日.
    """
    own, own_unit = f"{limit}_limit", f"{limit}_limit_unit"
    cat, cat_unit = f"cat_{limit}", f"cat_{limit}_unit"
    value = pl.coalesce(own, cat)
    unit = pl.when(pl.col(own).is_not_null()).then(pl.col(own_unit)).otherwise(pl.col(cat_unit))
    return value, unit.fill_null(WORKING_DAYS)


def elapsed_for(unit: pl.Expr) -> pl.Expr:
    """The elapsed time to compare with a limit of this unit (calendar days for 自然日)."""
    return pl.when(unit == NATURAL_DAYS).then(pl.col("elapsed_cd")).otherwise(pl.col("elapsed_wd"))


# --- cards (红黄牌) ------------------------------------------------------------------------------

SUPERVISION_RED = "红牌"
SUPERVISION_CARDS = ("黄牌", "红牌")  # revoked cards (…（已撤销）) and 正常/预警 are no card


def red_card(rules: Rules) -> pl.Expr:
    """Red card: the export's own 监察结果 when present, else elapsed over the legal limit by more than the grace."""
    computed = pl.col("legal").is_not_null() & ((pl.col("el_legal") - pl.col("legal")) > rules.red_grace_days)
    sup = pl.col("supervision")
    return pl.when(sup.is_not_null()).then(sup == SUPERVISION_RED).otherwise(computed)


def any_card(rules: Rules) -> pl.Expr:
    """Yellow or red card (a case counts once)."""
    computed_yellow = pl.col("promised").is_not_null() & (
        (pl.col("el_promised") - pl.col("promised")) > rules.yellow_grace_days
    )
    computed_red = pl.col("legal").is_not_null() & ((pl.col("el_legal") - pl.col("legal")) > rules.red_grace_days)
    sup = pl.col("supervision")
    return pl.when(sup.is_not_null()).then(sup.is_in(list(SUPERVISION_CARDS))).otherwise(computed_red | computed_yellow)


def on_time_case() -> pl.Expr:
    """Completed within the promised limit (a case without a promised limit is never on time)."""
    return pl.col("promised").is_not_null() & (pl.col("el_promised") <= pl.col("promised"))


def overdue_open_case() -> pl.Expr:
    """Open and already past its promised limit at its export's as-of date (its deadline before it)."""
    return open_case() & pl.col("promised").is_not_null() & (pl.col("el_promised") > pl.col("promised"))


# --- catalog (事项) -------------------------------------------------------------------------------


def depth_at_least(level: int) -> pl.Expr:
    """网上办理深度 at least Ⅰ–Ⅳ (1–4); an item without a depth counts as below every level."""
    return (pl.col("online_depth") >= level).fill_null(False)


def full_online_item() -> pl.Expr:
    return (pl.col("online_depth") == 4).fill_null(False)


def instant_item() -> pl.Expr:
    return (pl.col("case_type") == INSTANT_CASE_TYPE).fill_null(False)


# --- evaluations (好差评) -------------------------------------------------------------------------

BAD_RATING_MAX = 2  # 不满意 (2) and 非常不满意 (1) are 差评
RECTIFIED_STATUSES = ("已整改", "核实不属实")


def bad_evaluation() -> pl.Expr:
    return pl.col("rating") <= BAD_RATING_MAX


def good_evaluation() -> pl.Expr:
    return pl.col("rating") > BAD_RATING_MAX


def active_evaluation() -> pl.Expr:
    """Given by the applicant (主动评价); the rest are system defaults."""
    return pl.col("active").fill_null(False)


def rectified_evaluation() -> pl.Expr:
    return bad_evaluation() & pl.col("rectify_status").is_in(list(RECTIFIED_STATUSES))


# --- 12345 hotline ----------------------------------------------------------------------------------

HOTLINE_SATISFIED = ("满意", "基本满意")
HOTLINE_ANSWERED = (*HOTLINE_SATISFIED, "不满意")  # 未回访 and blanks are no answer


def hotline_closed() -> pl.Expr:
    return pl.col("closed_at").is_not_null()


def hotline_closed_on_time() -> pl.Expr:
    return hotline_closed() & pl.col("due_at").is_not_null() & (pl.col("closed_at") <= pl.col("due_at"))


def hotline_answered() -> pl.Expr:
    return pl.col("satisfaction").is_in(list(HOTLINE_ANSWERED)).fill_null(False)


def hotline_satisfied() -> pl.Expr:
    return pl.col("satisfaction").is_in(list(HOTLINE_SATISFIED)).fill_null(False)


# --- settings ---------------------------------------------------------------------------------------


class Rules(BaseModel):
    """Counting and ranking rules that are settings rather than spec constants.

    ``title`` is the Chinese label on the 设置 and 指标说明 pages; ``description`` explains it there.
    Indicator descriptions refer to these by name (``{rectify_days}``), so the text always shows the
    value in force.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    yellow_grace_days: int = Field(1, ge=0, le=60, title="黄牌宽限（工作日）",
                                   description="用时超过承诺时限多少个工作日以上亮黄牌")
    red_grace_days: int = Field(1, ge=0, le=60, title="红牌宽限（工作日）",
                                description="用时超过法定时限多少个工作日以上亮红牌")
    rectify_days: int = Field(15, ge=1, le=120, title="差评整改时限（工作日）",
                              description="差评在评价后多少个工作日内整改完成算按时")
    rank_needs_cases: bool = Field(True, title="参与排名须报送每月办件明细",
                                   description="时段内任一月份缺少办件明细的区县不参与排名，列为“未排名”")
    rank_needs_evaluations: bool = Field(True, title="参与排名须报送每月好差评",
                                         description="时段内任一月份缺少好差评数据的区县不参与排名，列为“未排名”")
    catalog_max_age_months: int = Field(12, ge=0, le=120, title="事项清单最长有效月数",
                                        description="时段最后一个月适用的事项清单早于该月多少个月以上时，该区县不参与排名")

    def key(self) -> str:
        """The rules that change the indicator components, as text for cache keys."""
        return json.dumps(self.model_dump(include=set(COMPONENT_RULES)), sort_keys=True)

    @classmethod
    def titles(cls) -> dict[str, tuple[str, str]]:
        """field → (Chinese title, Chinese description), in declaration order."""
        return {name: (f.title or name, f.description or "") for name, f in cls.model_fields.items()}


# The rules the components depend on (the ranking rules are applied after them, so changing those
# does not recount anything).
COMPONENT_RULES = ("yellow_grace_days", "red_grace_days", "rectify_days")


def readings(rules: Rules | None = None) -> list[tuple[str, str]]:
    """Every counting rule the product applies where the specification leaves a choice, as (topic, rule)
    in Chinese, with the settings in force. The 指标说明 page and the Excel download show them."""
    r = rules or Rules()
    catalog = f"不超过 {r.catalog_max_age_months} 个月"
    needs = "、".join(k for k, on in (("办件明细", r.rank_needs_cases), ("好差评", r.rank_needs_evaluations)) if on)
    return [
        ("比率", "所有比率都是“分子之和 ÷ 分母之和”：区县的季度、年度值等于各月分子、分母分别相加后再相除，全市值等于各区县相加后再相除，"
                 "从不对百分比求平均。分母为 0 时值为空，显示为“—”。"),
        ("统计表", "每张表和每个下载都有完整的网格：范围内每个区县（或部门）× 每项指标各一行；没有可统计的数据时分子、分母为 0，值为空。"),
        ("办件归属月份", "受理量类指标按受理时间所在月份统计，已办结件类指标按办结时间所在月份统计；评价按评价时间、热线工单按受理时间归月。"),
        ("办件状态", f"“{NOT_ACCEPTED_STATUS}”的办件不算受理，不计入任何办件指标。办件只有在没有办结时间（结束时间）时才算在办；"
                   f"“{'、'.join(ENDED_UNCOMPLETED_STATUSES)}”有结束时间，不算在办，也不算已办结，用时计至结束时间。"
                   f"只有“{COMPLETED_STATUS}”且有办结时间的办件算已办结。"),
        ("数据截止日", "每次导入的数据都有数据截止日：所属月份的最后一天；导入日期更早的取导入日期（12 月 7 日上传的 12 月数据"
                       "不知道 7 日以后的事）；文件标题行写明导出时间（如“导出时间：2026-12-07 09:30”）且更早的，取导出日期。"
                       "每条记录取其所采用那一批导入的数据截止日（同一编号以最新导入为准）。未到期限的不算违规：在办件用时只计到数据截止日，"
                       "截止日时已超过承诺时限才算超期在办；差评的整改期限在截止日当天或之前才算应整改。"),
        ("用时", "按工作日计：受理当日不计，办结（结束）当日计入；遵循国务院放假安排（含周末调休上班日）；扣除特别程序时长，不小于 0。"
                 "在办件用时计至其导出的数据截止日（不晚于所属导出月份的月末）。时限单位为自然日的办件，与时限比较时（提速率、按时办结、红黄牌）按自然日计；"
                 "平均办理用时一律按工作日计。"),
        ("时限", "办件未填法定时限或承诺时限时，取同区县同事项编码在受理月份适用的事项清单（该月及之前最新版本）中的时限，单位随时限来源；"
                 "未填单位的按工作日计。即办件承诺时限为 0。事项清单中没有承诺时限的事项，在承诺压缩比中视为承诺时限等于法定时限；"
                 "承诺压缩比把工作日和自然日时限按数字直接相加。"),
        ("红黄牌", f"黄牌：用时超过承诺时限 {r.yellow_grace_days} 个工作日以上；红牌：用时超过法定时限 {r.red_grace_days} 个工作日以上；"
                   "一件只计一次（红牌优先）。导出含“监察结果”列时以该列为准，已撤销的红黄牌和“预警”不计。"),
        ("事项类指标", "事项类指标是存量：一个月用该月适用的事项清单（该月及之前最新版本）；跨月时段只看时段最后一个月适用的清单，按事项计数，"
                     "不按“事项·月”累计。评价事项覆盖率在跨月时段中，统计该清单里在时段内任一月份有过评价的事项，每个事项只计一次。"
                     "清单自其所属月份起适用，直到被新版本替换；全库最后一个有数据的月份之后仍然适用（时段晚于该月时用该月适用的清单）。"),
        ("差评整改", f"差评为“不满意”“非常不满意”；整改状态为已整改或核实不属实的算已整改；评价后 {r.rectify_days} 个工作日内"
                     "（含当日之后第 N 个工作日）有整改完成时间的算按时整改。差评整改率、差评按时整改率只统计应整改的差评："
                     f"已整改（或核实不属实），或整改期限（评价时间后 {r.rectify_days} 个工作日）在数据截止日当天或之前。"
                     "期限未到且尚未整改的差评为“整改期内”，不计入这两项的分子、分母，其数量在两项指标旁单独列出。"),
        ("重复导入", "同一区县内同一办件编号（评价编号、工单编号）出现在多次导入中时，以导出月份最新的那一批为准；导出月份相同的，以最后导入的为准"
                     "（补交的早月份文件不会覆盖后面月份的状态）。同一区县同一月份的事项清单以最后导入的版本为准。"),
        ("逾期报送", "某月数据在次月 10 日之后导入的，标为逾期报送。"),
        ("排名", f"区县只有在数据齐全时才参与排名：时段内每个月都有{needs or '（无要求）'}，且时段最后一个月适用的事项清单"
                 f"{catalog}。其余区县列在排名之后，标为“未排名”并写明原因，不影响其他区县的名次；"
                 "名次变化只比较两个时段都参与排名的区县。并列同名次（1、1、3）。"),
        ("全市", "全市值是全部区县（含未排名区县）的分子、分母之和相除。"),
    ]
