"""The counting vocabulary: every rule that decides whether a record counts, declared once.

Each rule is a named Polars expression over the stored columns (or a small function returning
one). The indicator source frames (metrics/prepare.py), the alert lists (metrics/drill.py), the
upload checks (datasets/validate.py), the demo generator and the benchmarks' reference
implementations use these names, so a status means the same thing everywhere.

The thresholds that are settings (card grace days, rectification period, ranking completeness)
live in ``Rules``, one pydantic model that serves the computation, the 设置 page, the 指标说明 page
and the cache keys.
"""

from __future__ import annotations

import json

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from datasets.schema import ONLINE_CHANNELS

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


def case_end(period_end: pl.Expr) -> pl.Expr:
    """Where a case's elapsed time stops: its end time, or for an open case the end of its export's month."""
    return pl.coalesce(pl.col("completed_at"), period_end)


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
    """Open and already past its promised limit (elapsed counted to the end of the export's month)."""
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
