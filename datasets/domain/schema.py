"""The canonical data model: one declaration per field of the four kinds of hall data.

Ingest (header matching, parsing), validation, import templates, the store's tables and the docs
all read these declarations, so a field is described exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

# Parsers the reader applies to a column before validation (see datasets/intake/readers.py).
TEXT = "text"
DATETIME = "datetime"
NUMBER = "number"  # plain number, may carry a unit such as "5天" or "3个"
LIMIT = "limit"  # a time limit: "20个工作日", "即办" (= 0), "5天"
DEPTH = "depth"  # online depth Ⅰ–Ⅳ in any of its written forms
RATING = "rating"  # 1–5 or the five Chinese levels
BOOL = "bool"  # 是/否
ACTIVE = "active"  # 是/否 or 主动评价/默认好评


@dataclass(frozen=True)
class Field:
    name: str
    dtype: pl.DataType
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    allowed: tuple[str, ...] = ()
    parser: str = TEXT
    description: str = ""
    example: str = ""

    @property
    def headers(self) -> tuple[str, ...]:
        return (self.header, *self.aliases)


@dataclass(frozen=True)
class Kind:
    name: str  # cases | items | evaluations | hotline
    label: str  # Chinese name shown to users
    id_field: str  # unique per district
    date_field: str  # the field whose month is a row's period
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {f.name: f.dtype for f in self.fields}


CHANNELS = ("网上申请", "移动端", "窗口", "自助终端", "邮寄", "其他")
ONLINE_CHANNELS = ("网上申请", "移动端")
CASE_TYPES = ("即办件", "承诺件", "上报件", "并联审批件")
CASE_STATUSES = ("已办结", "在办", "不予受理", "退件", "撤件")
LIMIT_UNITS = ("工作日", "自然日")
SUPERVISION = ("正常", "预警", "黄牌", "红牌", "黄牌（已撤销）", "红牌（已撤销）")
ITEM_CATEGORIES = (
    "行政许可",
    "行政确认",
    "行政给付",
    "行政裁决",
    "行政奖励",
    "行政征收",
    "行政检查",
    "其他行政权力",
    "公共服务",
)
EVAL_CHANNELS = ("PC端", "移动端", "评价器", "二维码", "短信", "热线")
RATINGS = {"非常满意": 5, "满意": 4, "基本满意": 3, "不满意": 2, "非常不满意": 1}
RECTIFY_STATUSES = ("已整改", "整改中", "未整改", "核实不属实")
HOTLINE_CATEGORIES = ("咨询", "求助", "投诉", "建议", "举报")
HOTLINE_SATISFACTION = ("满意", "基本满意", "不满意", "未回访")
DEPTH_LABELS = {
    1: "Ⅰ 信息公开（办事指南）",
    2: "Ⅱ 在线预约/表格下载/在线咨询",
    3: "Ⅲ 在线预审/网上申报（到现场不超过一次）",
    4: "Ⅳ 全程网办（零跑动）",
}

_DISTRICT_NOTE = "文件只含一个区县时可省略，省略时按上传人所属区县入库"

DISTRICT = Field(
    "district",
    pl.String,
    "所属区县",
    ("区划名称", "行政区划", "县市区", "承办区县"),
    parser=TEXT,
    description="办理所在区县；" + _DISTRICT_NOTE,
    example="示例区",
)


def _limit_fields(prefix: str, label: str, aliases: tuple[str, ...]) -> tuple[Field, Field]:
    return (
        Field(
            f"{prefix}_limit",
            pl.Float64,
            f"{label}时限",
            aliases,
            parser=LIMIT,
            description=f"{label}办结时限，数字或“20个工作日”“即办”等写法；即办件为 0",
            example="20",
        ),
        Field(
            f"{prefix}_limit_unit",
            pl.String,
            f"{label}时限单位",
            tuple(a + "单位" for a in aliases[:1]),
            allowed=LIMIT_UNITS,
            description="工作日（默认）或自然日",
            example="工作日",
        ),
    )


CASES = Kind(
    "cases",
    "办件明细",
    "case_id",
    "accepted_at",
    (
        Field("case_id", pl.String, "办件编号", ("申办流水号", "业务流水号", "办件流水号", "受理编号"),
              required=True, description="办件唯一编号，同一区县内不得重复", example="BJ202405000001"),
        Field("item_code", pl.String, "事项编码", ("实施编码", "事项实施编码", "基本编码"),
              required=True, description="办件所属事项的实施编码", example="11370100MB0000001X"),
        Field("item_name", pl.String, "事项名称", ("项目名称",), example="食品经营许可"),
        DISTRICT,
        Field("department", pl.String, "实施部门", ("受理部门", "办理部门", "实施主体", "单位"),
              required=True, description="受理或办理该件的部门", example="区市场监管局"),
        Field("channel", pl.String, "申请渠道", ("申请方式", "办理渠道", "申请类型"), required=True,
              allowed=CHANNELS, description="网上申请、移动端为网上办件", example="网上申请"),
        Field("case_type", pl.String, "办件类型", ("办理类型",), allowed=CASE_TYPES, example="承诺件"),
        Field("applied_at", pl.Datetime("us"), "申请时间", ("申报时间",), parser=DATETIME,
              example="2024-05-03 09:12:00"),
        Field("accepted_at", pl.Datetime("us"), "受理时间", (), required=True, parser=DATETIME,
              description="受理日期时间；按其所在月份统计受理量", example="2024-05-03 14:22:05"),
        Field("completed_at", pl.Datetime("us"), "办结时间", ("结束时间",), parser=DATETIME,
              description="在办件为空", example="2024-05-10 16:00:00"),
        Field("status", pl.String, "办理状态", ("办件状态", "办结结果"), required=True,
              allowed=CASE_STATUSES, example="已办结"),
        *_limit_fields("legal", "法定", ("法定办结时限", "审批时限")),
        *_limit_fields("promised", "承诺", ("承诺办结时限",)),
        Field("suspended_days", pl.Float64, "特别程序时长", ("特别程序用时", "挂起天数"), parser=NUMBER,
              description="听证、检验检测、专家评审、公示等特别程序用时（工作日），不计入办理用时",
              example="0"),
        Field("visits", pl.Int64, "跑动次数", ("到现场次数",), parser=NUMBER, example="1"),
        Field("supervision", pl.String, "监察结果", ("监管结果", "红黄牌"), allowed=SUPERVISION,
              description="电子监察结果；有此列时以其为准，已撤销的红黄牌不计", example="正常"),
    ),
)

ITEMS = Kind(
    "items",
    "事项清单",
    "item_code",
    "",
    (
        Field("item_code", pl.String, "事项编码", ("实施编码", "基本编码"), required=True,
              description="事项实施编码，同一区县内不得重复", example="11370100MB0000001X"),
        Field("item_name", pl.String, "事项名称", (), required=True, example="食品经营许可"),
        DISTRICT,
        Field("department", pl.String, "实施部门", ("实施主体",), required=True, example="区市场监管局"),
        Field("item_category", pl.String, "事项类型", ("权力类型",), allowed=ITEM_CATEGORIES,
              example="行政许可"),
        Field("case_type", pl.String, "办件类型", (), allowed=("即办件", "承诺件"), example="承诺件"),
        *_limit_fields("legal", "法定", ("法定办结时限",)),
        *_limit_fields("promised", "承诺", ("承诺办结时限",)),
        Field("online_depth", pl.Int8, "网上办理深度", ("网办深度",), required=True, parser=DEPTH,
              description="1–4、一级–四级、Ⅰ–Ⅳ 或“全程网办（Ⅳ级）”等写法；"
              + "；".join(DEPTH_LABELS.values()),
              example="Ⅳ"),
        Field("online_available", pl.Boolean, "是否网办", ("是否可网办",), parser=BOOL,
              description="是/否；为空时按网上办理深度 ≥ Ⅱ 推定", example="是"),
        Field("visits_required", pl.Int64, "到办事现场次数", ("跑动次数", "最多跑动次数"), parser=NUMBER,
              example="0"),
        Field("materials_count", pl.Int64, "申请材料数", ("材料数量",), parser=NUMBER, example="3"),
        Field("in_hall", pl.Boolean, "是否进驻大厅", ("是否进驻",), parser=BOOL, description="是/否",
              example="是"),
    ),
)

EVALUATIONS = Kind(
    "evaluations",
    "好差评",
    "eval_id",
    "evaluated_at",
    (
        Field("eval_id", pl.String, "评价编号", ("评价流水号",), required=True,
              description="评价唯一编号，同一区县内不得重复", example="PJ202405000001"),
        Field("case_id", pl.String, "办件编号", ("申办流水号",), example="BJ202405000001"),
        Field("item_code", pl.String, "事项编码", ("实施编码",), required=True, example="11370100MB0000001X"),
        DISTRICT,
        Field("department", pl.String, "实施部门", ("被评价部门",), example="区市场监管局"),
        Field("eval_channel", pl.String, "评价渠道", (), allowed=EVAL_CHANNELS, example="移动端"),
        Field("rating", pl.Int8, "评价等级", ("满意度", "评价结果"), required=True, parser=RATING,
              allowed=tuple(RATINGS), description="非常满意、满意、基本满意、不满意、非常不满意，或 5–1",
              example="非常满意"),
        Field("evaluated_at", pl.Datetime("us"), "评价时间", (), required=True, parser=DATETIME,
              example="2024-05-11 10:00:00"),
        Field("active", pl.Boolean, "是否主动评价", ("评价方式",), required=True, parser=ACTIVE,
              description="是/否，或 主动评价/默认好评", example="是"),
        Field("rectify_status", pl.String, "整改状态", ("差评处理状态",), allowed=RECTIFY_STATUSES,
              description="差评必填：已整改、整改中、未整改、核实不属实", example=""),
        Field("rectified_at", pl.Datetime("us"), "整改完成时间", ("整改时间",), parser=DATETIME, example=""),
    ),
)

HOTLINE = Kind(
    "hotline",
    "12345热线工单",
    "ticket_id",
    "received_at",
    (
        Field("ticket_id", pl.String, "工单编号", (), required=True, description="工单唯一编号",
              example="GD202405000001"),
        DISTRICT,
        Field("department", pl.String, "承办单位", ("承办部门",), example="区住建局"),
        Field("category", pl.String, "诉求类型", ("工单类型",), allowed=HOTLINE_CATEGORIES, example="咨询"),
        Field("received_at", pl.Datetime("us"), "受理时间", ("来电时间",), required=True, parser=DATETIME,
              example="2024-05-03 09:00:00"),
        Field("due_at", pl.Datetime("us"), "办理时限", ("要求办结时间",), parser=DATETIME,
              example="2024-05-08 18:00:00"),
        Field("closed_at", pl.Datetime("us"), "办结时间", (), parser=DATETIME, description="在办工单为空",
              example="2024-05-06 11:30:00"),
        Field("satisfaction", pl.String, "满意度", ("回访结果",), allowed=HOTLINE_SATISFACTION, example="满意"),
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in (CASES, ITEMS, EVALUATIONS, HOTLINE)}

# The columns that date a record: a kind has data in the months of these (a catalog: in its period).
MONTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "cases": ("accepted_at", "completed_at"),
    "items": (),
    "evaluations": ("evaluated_at",),
    "hotline": ("received_at",),
}


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"未知的数据类型：{name}（可选：{'、'.join(KINDS)}）") from None


def canonical_columns(kind_name: str, present: Iterable[str]) -> list[pl.Expr]:
    """Every field of a kind in order and type, an optional column the file lacks as nulls: what a
    stored batch holds, whichever optional columns its file had."""
    have = set(present)
    return [(pl.col(f.name) if f.name in have else pl.lit(None, dtype=f.dtype)).cast(f.dtype).alias(f.name)
            for f in kind(kind_name).fields]


def empty_frame(kind_name: str) -> pl.DataFrame:
    """An empty frame with the canonical columns of a kind, for code paths with no data yet."""
    return pl.DataFrame(schema=kind(kind_name).polars_schema)
