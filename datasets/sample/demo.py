"""The demo city (澄州市): a believable, fictional city written into the store.

Ten districts, 24 months of 办件, 好差评 and 12345 tickets plus revised 事项清单, with the quirks of
real exports: overlapping monthly exports (a case open at the end of a month is exported again,
completed, the next month), limits left empty on part of the cases (catalog fallback), a 监察结果
column in some districts only, late uploads and a few missing district-months.

Everything is drawn from one ``numpy.random.Generator`` in a fixed order, so a seed always gives the
same records. Rows are generated vectorised per month for all districts at once. Generating and
writing are apart: ``_City.exports`` yields the export files, ``write_bulk`` (large stores, quickly)
or ``write_imports`` (one import per file, as uploaded) stores them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy.engine import Engine

from datasets.domain.schema import (
    CASE_STATUSES,
    CASE_TYPES,
    CASES,
    CHANNELS,
    EVAL_CHANNELS,
    EVALUATIONS,
    HOTLINE,
    HOTLINE_CATEGORIES,
    HOTLINE_SATISFACTION,
    ITEM_CATEGORIES,
    ITEMS,
    LIMIT_UNITS,
    RECTIFY_STATUSES,
    SUPERVISION,
)
from datasets.domain.vocabulary import (
    COMPLETED_STATUS,
    ENDED_UNCOMPLETED_STATUSES,
    IN_PROGRESS_STATUS,
    NOT_ACCEPTED_STATUS,
    RECTIFIED_STATUSES,
)
from datasets.domain.workdays import WorkCalendar
from datasets.intake.ingest import ImportResult, Parts, district_parts, import_frame, store_parts, write_batch_files
from datasets.storage import store

CITY = "澄州市"
N_MONTHS = 24
CASES_PER_SCALE = 1_000_000  # distinct 办件 over all districts and months at scale 1
HOTLINE_SHARE = 0.15  # 12345 tickets per 办件
USER = "示例数据"

_DAY_US = 86_400_000_000
_SEC_US = 1_000_000
_HOUR = 3600
_UNIX_EPOCH = dt.date(1970, 1, 1)

# Index constants into the schema's value lists (kept in sync by lookups, not literals).
_CH = {name: i for i, name in enumerate(CHANNELS)}
_ST = {name: i for i, name in enumerate(CASE_STATUSES)}
_SUP = {name: i for i, name in enumerate(SUPERVISION)}
_EC = {name: i for i, name in enumerate(EVAL_CHANNELS)}
_RS = {name: i for i, name in enumerate(RECTIFY_STATUSES)}
_CAT = {name: i for i, name in enumerate(ITEM_CATEGORIES)}
_KIND_NAMES = CASE_TYPES  # 即办件, 承诺件, 上报件, 并联审批件: the code relies on this order
WORKDAY_UNIT, NATURAL_UNIT = LIMIT_UNITS


# --- the districts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What makes a district different. Pairs are (first month, last month) values."""

    name: str
    code: str
    weight: float  # share of the city's case volume
    online: tuple[float, float]  # propensity to apply online for items that allow it
    speed: tuple[float, float]  # mean elapsed time as a share of the promised limit
    over: tuple[float, float]  # share of commitment cases over the promised limit
    red: float  # share of commitment cases over the legal limit
    bad: tuple[float, float]  # share of 差评 among 主动评价
    active: tuple[float, float]  # share of 主动评价 among evaluations
    coverage: float  # share of completed cases that receive an evaluation
    instant: float  # propensity of catalog items to be 即办件
    compression: float  # promised ÷ legal limit in the first catalog
    depth: tuple[float, float, float, float]  # online depth Ⅰ–Ⅳ shares in the first catalog
    catalog: int  # catalog size
    in_hall: float  # share of items served in the hall
    supervision: bool  # the export carries a 监察结果 column
    null_limits: float  # share of cases exported without their limits
    sparse: bool  # the export leaves the limit unit and 是否网办 empty
    hotline_on_time: tuple[float, float]
    rectify_on_time: float  # 差评 rectified within 15 working days

    @property
    def prefix(self) -> str:
        """Department names start with 区 or 县."""
        return "县" if self.name.endswith("县") else "区"

    @property
    def aliases(self) -> tuple[str, ...]:
        short = self.name.removesuffix("新区").removesuffix("区").removesuffix("县")
        return (f"{CITY}{self.name}", short)


PROFILES: tuple[Profile, ...] = (
    Profile("云湖区", "439902", 0.17, (0.40, 0.68), (0.45, 0.32), (0.040, 0.015), 0.003, (0.012, 0.006),
            (0.35, 0.60), 0.92, 0.42, 0.45, (0.05, 0.15, 0.35, 0.45), 2600, 0.95, True, 0.15, False,
            (0.92, 0.97), 0.90),
    Profile("青山区", "439903", 0.13, (0.28, 0.48), (0.55, 0.42), (0.060, 0.030), 0.006, (0.020, 0.012),
            (0.25, 0.45), 0.88, 0.35, 0.55, (0.10, 0.25, 0.40, 0.25), 2200, 0.90, False, 0.25, False,
            (0.88, 0.94), 0.85),
    Profile("星港区", "439911", 0.12, (0.50, 0.78), (0.38, 0.28), (0.025, 0.010), 0.002, (0.010, 0.005),
            (0.45, 0.70), 0.95, 0.50, 0.40, (0.03, 0.10, 0.30, 0.57), 2400, 0.97, True, 0.10, False,
            (0.94, 0.98), 0.93),
    Profile("白鹭洲区", "439904", 0.11, (0.33, 0.55), (0.50, 0.38), (0.050, 0.025), 0.004, (0.015, 0.009),
            (0.30, 0.50), 0.90, 0.38, 0.50, (0.08, 0.20, 0.38, 0.34), 2100, 0.92, False, 0.20, True,
            (0.90, 0.95), 0.88),
    Profile("金沙区", "439905", 0.10, (0.25, 0.42), (0.60, 0.45), (0.070, 0.035), 0.008, (0.025, 0.015),
            (0.20, 0.40), 0.85, 0.30, 0.60, (0.12, 0.28, 0.38, 0.22), 1900, 0.88, False, 0.30, False,
            (0.85, 0.92), 0.80),
    Profile("临江县", "439921", 0.09, (0.18, 0.40), (0.58, 0.40), (0.080, 0.030), 0.010, (0.030, 0.015),
            (0.15, 0.40), 0.80, 0.28, 0.62, (0.15, 0.30, 0.35, 0.20), 1500, 0.85, True, 0.30, True,
            (0.82, 0.92), 0.75),
    Profile("桐溪县", "439922", 0.08, (0.15, 0.32), (0.62, 0.50), (0.090, 0.050), 0.012, (0.035, 0.020),
            (0.12, 0.30), 0.78, 0.25, 0.65, (0.20, 0.30, 0.33, 0.17), 1300, 0.82, False, 0.35, False,
            (0.80, 0.88), 0.70),
    Profile("松岭县", "439923", 0.06, (0.12, 0.25), (0.55, 0.48), (0.060, 0.040), 0.007, (0.020, 0.014),
            (0.10, 0.22), 0.75, 0.30, 0.60, (0.22, 0.33, 0.30, 0.15), 1100, 0.80, True, 0.20, False,
            (0.86, 0.90), 0.78),
    Profile("澜湾新区", "439912", 0.08, (0.45, 0.72), (0.42, 0.30), (0.030, 0.012), 0.003, (0.012, 0.007),
            (0.40, 0.65), 0.93, 0.48, 0.42, (0.04, 0.12, 0.32, 0.52), 1700, 0.96, False, 0.10, False,
            (0.93, 0.97), 0.92),
    Profile("梅川县", "439924", 0.06, (0.12, 0.32), (0.65, 0.45), (0.100, 0.040), 0.015, (0.040, 0.018),
            (0.10, 0.35), 0.75, 0.22, 0.68, (0.25, 0.32, 0.28, 0.15), 1200, 0.80, True, 0.40, True,
            (0.78, 0.90), 0.68),
)

# --- departments and items ----------------------------------------------------------------------

# (department without its 区/县 prefix, relative case volume, the items it implements)
DEPARTMENTS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("市场监管局", 2.5, (
        "食品经营许可", "食品生产许可", "个体工商户登记", "企业设立登记", "企业变更登记", "企业注销登记",
        "药品零售企业许可", "第二类医疗器械经营备案", "特种设备使用登记", "营业执照补领", "农民专业合作社登记",
        "小餐饮登记", "食品小作坊登记", "股权出质登记", "企业名称自主申报", "企业年度报告公示抽查",
    )),
    ("人社局", 3.0, (
        "社会保障卡申领", "失业保险金申领", "就业创业证申领", "灵活就业人员参保登记", "养老保险关系转移接续",
        "职工退休申请", "技能提升补贴申领", "创业担保贷款申请", "一次性创业补贴", "工伤认定", "劳动能力鉴定申请",
        "人力资源服务许可", "劳务派遣经营许可", "社会保险缴费证明", "参保信息查询", "城乡居民养老保险参保登记",
        "高校毕业生就业见习补贴", "劳动人事争议仲裁裁决",
    )),
    ("住建局", 1.5, (
        "建筑工程施工许可", "商品房预售许可", "房屋建筑工程竣工验收备案", "建筑业企业资质核准", "住房公积金提取",
        "公共租赁住房资格审核", "物业服务企业备案", "城镇污水排入排水管网许可", "房屋租赁登记备案",
        "燃气经营许可", "商品房买卖合同网签备案", "住宅专项维修资金使用核准", "建设工程消防验收",
        "城市基础设施配套费征收",
    )),
    ("卫健委", 1.0, (
        "医疗机构执业登记", "医师执业注册", "护士执业注册", "母婴保健技术服务执业许可", "出生医学证明办理",
        "独生子女父母奖励", "公共场所卫生许可", "放射诊疗许可", "生育登记服务", "计划生育家庭特别扶助",
        "饮用水供水单位卫生许可", "职业健康检查机构备案",
    )),
    ("民政局", 1.2, (
        "结婚登记", "离婚登记", "补领婚姻登记证", "最低生活保障审批", "特困人员救助供养", "临时救助",
        "高龄津贴发放", "残疾人两项补贴", "社会团体成立登记", "民办非企业单位登记", "养老机构备案",
        "殡葬补贴", "孤儿基本生活费", "地名命名更名审批",
    )),
    ("自然资源局", 1.3, (
        "不动产登记", "建设用地规划许可", "建设工程规划许可", "乡村建设规划许可", "建设项目用地预审",
        "临时用地审批", "采矿权登记", "测绘资质审批", "不动产登记资料查询", "林木采伐许可",
        "土地复垦方案审查", "土地权属争议裁决",
    )),
    ("交通运输局", 0.8, (
        "道路运输经营许可", "道路运输从业资格证核发", "出租汽车驾驶员从业资格", "网络预约出租汽车运输证核发",
        "超限运输车辆行驶公路许可", "公路占用挖掘许可", "机动车维修经营备案", "驾驶员培训经营备案",
        "道路货物运输经营许可", "港口经营许可", "涉路施工许可",
    )),
    ("教育局", 0.8, (
        "民办学校办学许可", "教师资格认定", "校外培训机构审批", "义务教育入学登记", "学生资助申请",
        "中小学转学", "学历证明补办", "幼儿园设立审批", "教师资格证补发", "优秀教师表彰",
    )),
    ("公安分局", 2.5, (
        "居民身份证申领", "户口迁移", "出生登记", "居住证申领", "临时身份证明", "无犯罪记录证明",
        "机动车登记", "驾驶证换证", "养犬登记", "旅馆业特种行业许可", "户籍证明", "见义勇为人员表彰奖励",
    )),
    ("医保局", 2.5, (
        "医保参保登记", "异地就医备案", "门诊慢特病待遇认定", "医疗费用手工报销", "医保关系转移接续",
        "生育保险待遇申领", "定点医药机构申请", "医保缴费证明", "长期护理保险待遇申请",
    )),
    ("城管局", 0.5, (
        "城市道路挖掘许可", "户外广告设施设置许可", "临时占用城市道路许可", "建筑垃圾处置核准",
        "砍伐城市树木审批", "夜间施工许可", "店招标牌设置备案", "城市绿化工程竣工验收备案",
    )),
    ("生态环境局", 0.3, (
        "建设项目环境影响评价审批", "排污许可", "危险废物经营许可", "辐射安全许可", "环境影响登记表备案",
        "污染防治设施拆除审批", "突发环境事件应急预案备案",
    )),
    ("农业农村局", 0.5, (
        "农药经营许可", "兽药经营许可", "动物防疫条件合格证核发", "农作物种子生产经营许可", "农村宅基地审批",
        "渔业捕捞许可", "拖拉机登记", "耕地地力保护补贴", "生猪定点屠宰许可",
    )),
    ("文旅局", 0.3, (
        "娱乐场所经营许可", "营业性演出许可", "网吧经营许可", "旅行社设立许可", "出版物零售许可",
        "文物保护单位修缮审批", "印刷经营许可",
    )),
    ("退役军人事务局", 0.4, (
        "退役军人优待证申领", "伤残抚恤", "自主就业退役士兵一次性经济补助", "优抚对象抚恤补助",
        "烈士褒扬金发放", "退役军人创业补贴",
    )),
    ("应急管理局", 0.2, (
        "危险化学品经营许可", "烟花爆竹经营许可", "安全生产标准化评审", "生产安全事故应急预案备案",
        "非药品类易制毒化学品备案", "安全生产行政检查",
    )),
)

# (suffix of the 办理项, weight when a catalog is drawn, category it forces or "")
VARIANTS: tuple[tuple[str, float, str], ...] = (
    ("", 6.0, ""),
    ("（新办）", 1.0, ""),
    ("（变更）", 1.0, ""),
    ("（延续）", 0.8, ""),
    ("（注销）", 0.8, ""),
    ("（补办）", 0.6, ""),
    ("（个人）", 0.5, ""),
    ("（单位）", 0.5, ""),
    ("（证明开具）", 0.3, "公共服务"),
    ("（信息查询）", 0.3, "公共服务"),
    ("（首次申请）", 0.3, ""),
    ("（跨区通办）", 0.3, ""),
    ("（告知承诺制）", 0.4, ""),
    ("（容缺受理）", 0.3, ""),
    ("（简易程序）", 0.3, ""),
    ("（一般程序）", 0.3, ""),
    ("（换证）", 0.4, ""),
    ("（迁入）", 0.2, ""),
    ("（迁出）", 0.2, ""),
    ("（延期办理）", 0.2, ""),
)

# First matching keyword decides an item's category.
_CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("行政裁决", ("裁决",)),
    ("行政征收", ("征收",)),
    ("行政检查", ("检查", "抽查")),
    ("行政奖励", ("表彰",)),
    ("行政给付", ("补贴", "津贴", "救助", "抚恤", "补助", "奖励", "待遇", "保障", "供养", "生活费", "褒扬金",
                  "扶助", "报销")),
    ("行政许可", ("许可", "审批", "核准", "资质", "注册", "执业", "审查", "核发", "预审")),
    ("行政确认", ("登记", "认定", "鉴定", "验收", "确认", "合格证")),
    ("公共服务", ("查询", "证明", "申领", "提取", "转移", "入学", "转学", "补办", "补发", "服务", "备案",
                  "申请", "发放", "办理", "网签")),
)
# How likely each category is to be 即办件 relative to the district's propensity.
_INSTANT_FACTOR = {"公共服务": 1.8, "行政确认": 1.3, "行政给付": 0.9, "行政许可": 0.45}
# Legal limits in working days by category (即办件 often keep their statutory limit).
_LEGAL_CHOICES = {
    "行政许可": (10, 15, 20, 20, 30, 45, 60),
    "行政确认": (5, 10, 15, 20, 30),
    "行政给付": (10, 15, 20, 30),
    "公共服务": (1, 3, 5, 7, 10, 15),
}
_LEGAL_DEFAULT = (10, 15, 20, 30)

HOTLINE_DEPARTMENT_WEIGHT = {"城管局": 4.0, "住建局": 3.0, "市场监管局": 2.5, "人社局": 2.0, "生态环境局": 1.5,
                             "交通运输局": 1.5, "教育局": 1.5, "卫健委": 1.2, "医保局": 1.0, "民政局": 1.0}
HOTLINE_DUE_DAYS = {"咨询": 1, "求助": 3, "投诉": 5, "建议": 5, "举报": 10}
HOTLINE_CATEGORY_SHARE = {"咨询": 0.45, "求助": 0.20, "投诉": 0.22, "建议": 0.08, "举报": 0.05}


def _category(name: str) -> str:
    for category, words in _CATEGORY_KEYWORDS:
        if any(w in name for w in words):
            return category
    return "其他行政权力"


@dataclass(frozen=True)
class _Combos:
    """Every (department item × 办理项 variant) a catalog can draw from, in a fixed order."""

    names: pl.Series
    dept: np.ndarray  # department index
    base: np.ndarray  # index of the base item (city-wide popularity)
    variant: np.ndarray
    category: np.ndarray  # index into ITEM_CATEGORIES
    pick_weight: np.ndarray  # weight when a catalog is drawn


def _combos() -> _Combos:
    names: list[str] = []
    dept, base, variant, category, weight = [], [], [], [], []
    b = 0
    for di, (_, _, items) in enumerate(DEPARTMENTS):
        for item in items:
            item_category = _category(item)
            for vi, (suffix, vweight, forced) in enumerate(VARIANTS):
                names.append(item + suffix)
                dept.append(di)
                base.append(b)
                variant.append(vi)
                category.append(_CAT[forced or item_category])
                weight.append(vweight)
            b += 1
    return _Combos(
        names=pl.Series(names, dtype=pl.String),
        dept=np.array(dept, dtype=np.int32),
        base=np.array(base, dtype=np.int32),
        variant=np.array(variant, dtype=np.int32),
        category=np.array(category, dtype=np.int32),
        pick_weight=np.array(weight, dtype=np.float64),
    )


# --- small vectorised helpers -------------------------------------------------------------------


def _pick(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """Categorical draws: ``probs`` is (k,) for one distribution or (n, k) for one per row."""
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    u = rng.random(n)
    if cum.ndim == 1:
        out = np.searchsorted(cum, u, side="right")
    else:
        out = (u[:, None] >= cum).sum(axis=1)
    return np.minimum(out, probs.shape[-1] - 1)


def _work_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight within office hours 9:00–12:00 and 13:30–17:30."""
    u = rng.integers(0, 7 * _HOUR, n)
    return np.where(u < 3 * _HOUR, 9 * _HOUR + u, 13 * _HOUR + 1800 + (u - 3 * _HOUR))


def _lerp(pair: np.ndarray, t: float) -> np.ndarray:
    """Per-district value at progress t (0 first month, 1 last) from a (districts, 2) array."""
    return pair[:, 0] + (pair[:, 1] - pair[:, 0]) * t


def _ids(prefix: str, codes: pl.Series, month: str, district: np.ndarray, width: int) -> pl.Series:
    """IDs like BJ439902202405000123: numbered from 1 per district in the given (sorted) order."""
    starts = np.searchsorted(district, district, side="left")
    seq = np.arange(len(district)) - starts + 1
    frame = pl.DataFrame({"code": codes.gather(district), "seq": seq})
    return frame.select(
        pl.format(f"{prefix}{{}}{month.replace('-', '')}{{}}", "code", pl.col("seq").cast(pl.String).str.zfill(width))
    ).to_series()


def _sha(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in ("demo", *parts)).encode()).hexdigest()


@dataclass
class _Month:
    label: str  # YYYY-MM
    first: int  # day index (days since the calendar start) of the 1st
    last: int  # day index of the last day
    t: float  # progress 0 … 1 over the 24 months

    def end_us(self, cal_offset: int) -> int:
        """23:59:59 of the month's last day, in µs since the Unix epoch."""
        return (self.last + 1 + cal_offset) * _DAY_US - _SEC_US


@dataclass
class _Catalog:
    """One district's current catalog as arrays (the frame is what gets imported)."""

    combo: np.ndarray
    code: pl.Series
    instant: np.ndarray
    case_kind: np.ndarray  # index into _KIND_NAMES
    natural: np.ndarray
    legal: np.ndarray
    promised: np.ndarray
    depth: np.ndarray
    visits: np.ndarray
    materials: np.ndarray
    in_hall: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Export:
    """One export file of the demo city as a district office would upload it."""

    kind: str
    frame: pl.DataFrame
    month: str  # YYYY-MM the export belongs to (the batches' period)
    file_name: str
    sha256: str  # stands in for the file's hash: fixed by seed, scale, end month, kind, month and tag
    created_at: dt.datetime  # upload time
    late: bool | None  # None: late if uploaded after the deadline (ingest.is_late)
    user: str


@dataclass
class _Stats:
    cases: int = 0
    case_rows: int = 0
    items: int = 0
    evaluations: int = 0
    hotline: int = 0
    hotline_rows: int = 0
    batches: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)
    late: list[tuple[str, str, str]] = field(default_factory=list)


# --- the generator ------------------------------------------------------------------------------


class _City:
    def __init__(self, calendar: WorkCalendar, seed: int, scale: float, end_month: str, now: dt.datetime,
                 n_months: int = N_MONTHS, districts: int | None = None) -> None:
        self.seed, self.scale, self.end_month = seed, scale, end_month
        self.n_months = n_months
        self.rng = np.random.default_rng(seed)
        self.cal = calendar
        self.cum = self.cal.cum.astype(np.int64)
        self.work = np.diff(self.cum, prepend=0).astype(bool)
        self.offset = (self.cal.start - _UNIX_EPOCH).days  # calendar day index → days since 1970
        self.now = now
        self.now_us = int((now - dt.datetime(1970, 1, 1)).total_seconds()) * _SEC_US
        self.combos = _combos()
        self.profiles = PROFILES[:districts]
        self.n = len(self.profiles)
        self.names = pl.Series([p.name for p in self.profiles], dtype=pl.String)
        self.codes = pl.Series([p.code for p in self.profiles], dtype=pl.String)
        self.months = self._months()
        self.cal.check_years({int(m.label[:4]) for m in self.months})
        self.stats = _Stats()
        self._params()

    # -- setup --

    def _months(self) -> list[_Month]:
        year, mon = int(self.end_month[:4]), int(self.end_month[5:])
        index = year * 12 + mon - 1 - (self.n_months - 1)
        out = []
        for i in range(self.n_months):
            y, m = divmod(index + i, 12)
            first = dt.date(y, m + 1, 1)
            nxt = dt.date(y + (m + 1) // 12, (m + 1) % 12 + 1, 1)
            out.append(_Month(f"{y:04d}-{m + 1:02d}", (first - self.cal.start).days,
                              (nxt - self.cal.start).days - 1, i / (self.n_months - 1)))
        return out

    def _params(self) -> None:
        """Profile values as arrays, each jittered a little by the seed."""
        rng, ps = self.rng, self.profiles

        def pair(attr: str, spread: float = 0.06) -> np.ndarray:
            arr = np.array([getattr(p, attr) for p in ps], dtype=np.float64)
            return arr * rng.lognormal(0.0, spread, size=(self.n, 1))

        def one(attr: str, spread: float = 0.06) -> np.ndarray:
            arr = np.array([getattr(p, attr) for p in ps], dtype=np.float64)
            return arr * rng.lognormal(0.0, spread, size=self.n)

        self.online = np.clip(pair("online"), 0.02, 0.9)
        self.speed = np.clip(pair("speed"), 0.15, 0.8)
        self.over = np.clip(pair("over", 0.1), 0.002, 0.2)
        self.red = np.clip(one("red", 0.1), 0.0005, 0.05)
        self.bad = np.clip(pair("bad", 0.1), 0.002, 0.1)
        self.active = np.clip(pair("active"), 0.05, 0.9)
        self.coverage = np.clip(one("coverage", 0.02), 0.5, 0.98)
        self.instant = np.clip(one("instant"), 0.1, 0.7)
        self.compression = np.clip(one("compression"), 0.25, 0.8)
        self.in_hall = np.clip(one("in_hall", 0.02), 0.5, 0.99)
        self.null_limits = np.clip(one("null_limits", 0.1), 0.0, 0.6)
        self.hot_on_time = np.clip(pair("hotline_on_time", 0.02), 0.5, 0.99)
        self.rect_on_time = np.clip(one("rectify_on_time", 0.03), 0.4, 0.98)
        self.terminated = np.clip(np.array([0.006, 0.012, 0.008]) * rng.lognormal(0, 0.2, (self.n, 3)), 0, 0.05)
        self.supervision = np.array([p.supervision for p in ps])
        self.sparse = np.array([p.sparse for p in ps])
        self.depth_probs = np.array([p.depth for p in ps]) * rng.lognormal(0, 0.08, (self.n, 4))
        self.sizes = np.clip(
            (np.array([p.catalog for p in ps]) * rng.lognormal(0, 0.05, self.n)).astype(int), 1100, 2800
        )
        self.growth = rng.uniform(0.04, 0.14, self.n)
        # City-wide popularity of each base item (social security cards are busy everywhere).
        n_base = int(self.combos.base.max()) + 1
        self.base_pop = rng.pareto(1.2, n_base) + 0.03
        self.base_legal = rng.random(n_base)  # picks the legal limit of a base item
        self.dept_weight = np.array([w for _, w, _ in DEPARTMENTS])

    def _day_weights(self) -> np.ndarray:
        """Relative case volume of each calendar day: working days, Mondays busier, slumps around
        long holidays (Spring Festival, National Day)."""
        lo, hi = self.months[0].first - 30, self.months[-1].last + 30
        work = self.work[lo:hi + 1]
        w = work.astype(np.float64)
        weekday = (np.arange(lo, hi + 1) + self.cal.start.weekday()) % 7
        w *= np.where(weekday == 0, 1.12, np.where(weekday == 4, 0.93, 1.0))
        off = ~work
        edges = np.diff(np.concatenate([[0], off.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # [start, end)
        for s, e in zip(starts, ends, strict=True):
            length = e - s
            if length >= 7:  # Spring Festival, National Day: slow weeks before and after
                w[max(0, s - 4):s] *= 0.8
                w[e:e + 8] *= 0.62
            elif length >= 4:
                w[e:e + 3] *= 0.85
        out = np.zeros(len(self.cum))
        out[lo:hi + 1] = w
        return out

    # -- catalogs --

    def _item_attrs(self, d: int, combo: np.ndarray, boost: float) -> dict[str, np.ndarray]:
        """Attributes of new catalog items of district d (``boost`` > 0 for items added later)."""
        rng, c = self.rng, self.combos
        n = len(combo)
        category = c.category[combo]
        cat_names = np.array(ITEM_CATEGORIES)[category]
        factor = np.array([_INSTANT_FACTOR.get(x, 0.7) for x in ITEM_CATEGORIES])[category]
        instant = rng.random(n) < np.clip(self.instant[d] * factor, 0.02, 0.95)
        natural = ~instant & (rng.random(n) < 0.03)
        # Legal limit: each base item has its statutory limit, the same in every district.
        legal = np.empty(n)
        pick = self.base_legal[c.base[combo]]
        for name in np.unique(cat_names):
            sel = cat_names == name
            choices = np.array(_LEGAL_CHOICES.get(str(name), _LEGAL_DEFAULT), dtype=np.float64)
            legal[sel] = choices[(pick[sel] * len(choices)).astype(int)]
        legal = np.where(natural, np.array([30.0, 60.0, 90.0])[rng.integers(0, 3, n)], legal)
        legal = np.where(instant & (rng.random(n) < 0.45), 0.0, legal)
        ratio = self.compression[d] * rng.uniform(0.75, 1.2, n) * (1 - boost)
        promised = np.clip(np.ceil(legal * ratio), 1, legal)
        promised = np.where(instant, 0.0, promised)
        kind = np.where(instant, 0, 1)
        permit = category == _CAT["行政许可"]
        kind = np.where(~instant & permit & (legal >= 20) & (rng.random(n) < 0.15), 3, kind)
        kind = np.where((kind == 1) & (rng.random(n) < 0.05), 2, kind)
        probs = self.depth_probs[d].copy()
        probs[2:] *= 1 + boost * 4
        depth = _pick(rng, probs, n) + 1
        public = category == _CAT["公共服务"]
        depth = np.where(public & (depth < 4) & (rng.random(n) < 0.3), depth + 1, depth)
        materials = rng.poisson(np.where(instant | public, 2.0, 4.5), n)
        materials = np.where(rng.random(n) < np.where(instant | public, 0.2, 0.04), 0, materials)
        popularity = (
            self.base_pop[c.base[combo]]
            * np.where(c.variant[combo] == 0, 1.0, 0.25)
            * self.dept_weight[c.dept[combo]]
            * rng.lognormal(0, 0.6, n)
            * np.where(instant, 1.6, 1.0)
        )
        return {
            "combo": combo,
            "instant": instant,
            "case_kind": kind.astype(np.int32),
            "natural": natural,
            "legal": legal,
            "promised": promised,
            "depth": depth.astype(np.int64),
            "visits": self._visits(depth, rng.random(n)),
            "materials": materials.astype(np.int64),
            "in_hall": rng.random(n) < self.in_hall[d],
            "weight": popularity,
        }

    @staticmethod
    def _visits(depth: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Visits required by depth: Ⅳ none, Ⅲ mostly one, Ⅰ–Ⅱ one or two."""
        return np.select(
            [depth >= 4, depth == 3, depth == 2],
            [0, np.where(u < 0.3, 0, 1), np.where(u < 0.25, 2, 1)],
            np.where(u < 0.4, 2, 1),
        ).astype(np.int64)

    def _catalog_from(self, d: int, attrs: dict[str, np.ndarray]) -> _Catalog:
        order = np.argsort(attrs["combo"], kind="stable")
        a = {k: v[order] for k, v in attrs.items()}
        combo = a["combo"]
        frame = pl.DataFrame({"dept": self.combos.dept[combo] + 1, "combo": combo})
        code = frame.select(
            pl.format("11{}MB{}{}", pl.lit(self.profiles[d].code), pl.col("dept").cast(pl.String).str.zfill(2),
                      pl.col("combo").cast(pl.String).str.zfill(5))
        ).to_series()
        return _Catalog(code=code, **a)

    def _first_catalog(self, d: int) -> _Catalog:
        c = self.combos
        p = c.pick_weight * np.sqrt(self.dept_weight[c.dept])
        combo = self.rng.choice(len(p), size=int(self.sizes[d]), replace=False, p=p / p.sum())
        return self._catalog_from(d, self._item_attrs(d, combo, 0.0))

    def _revise(self, d: int, cat: _Catalog, strength: float) -> _Catalog:
        """A revised catalog: deeper online service, compressed limits, a few items added/removed."""
        rng = self.rng
        n = len(cat.combo)
        a = {k: getattr(cat, k).copy() for k in _Catalog.__dataclass_fields__ if k != "code"}
        up = (a["depth"] < 4) & (rng.random(n) < strength)
        a["depth"] = a["depth"] + up
        a["visits"] = np.minimum(a["visits"], self._visits(a["depth"], rng.random(n)))
        squeeze = ~a["instant"] & (rng.random(n) < 0.5)
        a["promised"] = np.where(squeeze, np.maximum(1, np.floor(a["promised"] * rng.uniform(0.6, 0.9, n))),
                                 a["promised"])
        to_instant = ~a["instant"] & ~a["natural"] & (a["promised"] <= 3) & (rng.random(n) < 0.3)
        a["instant"] = a["instant"] | to_instant
        a["promised"] = np.where(to_instant, 0.0, a["promised"])
        a["case_kind"] = np.where(to_instant, 0, a["case_kind"]).astype(np.int32)
        a["materials"] = np.maximum(0, a["materials"] - (rng.random(n) < 0.3))
        a["in_hall"] = a["in_hall"] | (rng.random(n) < 0.5 * strength)
        keep = rng.random(n) >= rng.uniform(0.01, 0.03)
        a = {k: v[keep] for k, v in a.items()}
        unused = np.setdiff1d(np.arange(len(self.combos.dept)), a["combo"])
        room = max(0, 2950 - len(a["combo"]))
        n_new = min(room, len(unused), int(n * rng.uniform(0.02, 0.05)))
        if n_new:
            p = self.combos.pick_weight[unused]
            new = rng.choice(unused, size=n_new, replace=False, p=p / p.sum())
            extra = self._item_attrs(d, new, strength)
            a = {k: np.concatenate([v, extra[k]]) for k, v in a.items()}
        return self._catalog_from(d, a)

    def _catalog_frame(self, d: int, cat: _Catalog) -> pl.DataFrame:
        p = self.profiles[d]
        c = self.combos
        n = len(cat.combo)
        unit = np.where(cat.natural, NATURAL_UNIT, WORKDAY_UNIT)
        dept_names = pl.Series([p.prefix + name for name, _, _ in DEPARTMENTS], dtype=pl.String)
        return pl.DataFrame(
            {
                "item_code": cat.code,
                "item_name": c.names.gather(cat.combo),
                "district": [p.name] * n,
                "department": dept_names.gather(c.dept[cat.combo]),
                "item_category": pl.Series(ITEM_CATEGORIES).gather(c.category[cat.combo]),
                "case_type": pl.Series(_KIND_NAMES).gather(np.where(cat.instant, 0, 1)),
                "legal_limit": cat.legal,
                "legal_limit_unit": unit,
                "promised_limit": cat.promised,
                "promised_limit_unit": unit,
                "online_depth": pl.Series(cat.depth, dtype=pl.Int8),
                "online_available": pl.Series([None] * n, dtype=pl.Boolean) if p.sparse else cat.depth >= 2,
                "visits_required": cat.visits,
                "materials_count": cat.materials,
                "in_hall": cat.in_hall,
            },
            schema_overrides=ITEMS.polars_schema,
        ).select(ITEMS.names)

    # -- cases --

    def _active_items(self, cats: list[_Catalog]) -> dict[str, object]:
        """All districts' current catalogs stacked, with cumulative popularity offset by district."""
        cw = []
        for d, cat in enumerate(cats):
            w = np.cumsum(cat.weight) / cat.weight.sum()
            w[-1] = 1.0
            cw.append(d + w)
        stack = {k: np.concatenate([getattr(c, k) for c in cats]) for k in
                 ("combo", "case_kind", "natural", "legal", "promised", "depth", "visits")}
        stack["cw"] = np.concatenate(cw)
        stack["code"] = pl.concat([c.code for c in cats])
        stack["block_end"] = np.cumsum([len(c.combo) for c in cats]) - 1
        return stack

    def _new_cases(self, mi: int, month: _Month, expected: np.ndarray, items: dict) -> pl.DataFrame:
        """Cases accepted in a month with their true course (completion may lie in a later month)."""
        rng, cum = self.rng, self.cum
        counts = np.maximum(rng.poisson(expected[:, mi]), 1)
        d = np.repeat(np.arange(self.n), counts)
        n = len(d)
        # Acceptance day and time, sorted per district so that case numbers run in time order.
        dw = self.day_weights[month.first:month.last + 1]
        day = month.first + np.minimum(np.searchsorted(np.cumsum(dw) / dw.sum(), rng.random(n), side="right"),
                                       month.last - month.first)
        sec = _work_seconds(rng, n)
        order = np.lexsort((sec, day, d))
        day, sec = day[order], sec[order]
        # Item by district popularity.
        idx = np.searchsorted(items["cw"], d + rng.random(n), side="right")
        idx = np.minimum(idx, items["block_end"][d])
        kind = items["case_kind"][idx]
        natural = items["natural"][idx]
        legal, promised = items["legal"][idx], items["promised"][idx]
        depth = items["depth"][idx]
        instant = kind == 0
        # Channel: online only where the item is at least depth Ⅲ; the share grows over time.
        p_online = _lerp(self.online, month.t)[d]
        p = np.where(depth >= 4, np.minimum(0.97, p_online * 1.35), np.where(depth == 3, p_online * 0.75, 0.0))
        online = rng.random(n) < p
        mobile = rng.random(n) < 0.3 + 0.35 * month.t
        offline = _pick(rng, np.array([0.86, 0.08, 0.03, 0.03]), n) + _CH["窗口"]
        channel = np.where(online, np.where(mobile, _CH["移动端"], _CH["网上申请"]), offline)
        # Outcome and elapsed working (or natural) days.
        u = rng.random(n)
        term = np.cumsum(self.terminated[d], axis=1)
        status = np.select([u < term[:, 0], u < term[:, 1], u < term[:, 2]],
                           [_ST[NOT_ACCEPTED_STATUS], *(_ST[e] for e in ENDED_UNCOMPLETED_STATUSES)],
                           _ST[COMPLETED_STATUS])
        done = status == _ST[COMPLETED_STATUS]
        mu = _lerp(self.speed, month.t)[d]
        share = rng.beta(mu * 3.0, (1 - mu) * 3.0)
        on_time = np.minimum(np.floor(share * (promised + 1)), promised)
        over = promised + rng.geometric(0.35, n)
        red = legal + 1 + rng.geometric(0.3, n)
        u = rng.random(n)
        p_red = self.red[d] * (1.3 - 0.6 * month.t)
        p_over = _lerp(self.over, month.t)[d]
        elapsed = np.where(u < p_red, red, np.where(u < p_red + p_over, over, on_time))
        instant_elapsed = np.select([u < 0.97, u < 0.995], [0, 1], 2 + (u > 0.998))
        elapsed = np.where(instant, instant_elapsed, elapsed)
        elapsed = np.where(done, elapsed, np.where(status == _ST[NOT_ACCEPTED_STATUS], 0, rng.integers(0, 3, n)))
        suspended = np.where(done & ~instant & ~natural & (legal >= 15) & (rng.random(n) < 0.03),
                             rng.integers(3, 21, n), 0)
        # Completion day: working days after acceptance (natural days for 自然日 items, ending on
        # the last working day on or before the date reached).
        comp_wd = np.searchsorted(cum, cum[day] + elapsed + suspended, side="left")
        comp_nat = np.searchsorted(cum, cum[day + elapsed.astype(np.int64)], side="left")
        comp = np.where(natural, comp_nat, comp_wd)
        span = 17 * _HOUR + 1800 - sec
        same_day = sec + np.minimum(span - 1, rng.integers(300, 2 * _HOUR, n))
        comp_sec = np.where(comp == day, same_day, _work_seconds(rng, n))
        # Application: minutes before at a window; online or by post up to two working days before.
        back = np.where(online | (channel == _CH["邮寄"]), rng.integers(0, 3, n), 0)
        app_day = np.searchsorted(cum, cum[day] - back, side="left")
        app_sec = np.where(back > 0, _work_seconds(rng, n),
                           sec - np.where(online, rng.integers(60, _HOUR, n), rng.integers(60, 1800, n)))
        visits = np.select(
            [channel == _CH["邮寄"], online & (depth >= 4), online],
            [0, 0, (rng.random(n) < 0.6).astype(np.int64)],
            np.maximum(1, items["visits"][idx] + (rng.random(n) < 0.1)),
        )
        # Export quirks: limits left empty (catalog fallback), 办理项 codes, blank units.
        unlisted = rng.random(n) < 0.003
        no_limits = (rng.random(n) < self.null_limits[d]) & ~unlisted
        combo = items["combo"][idx]
        # Unit: 0 工作日, 1 自然日, 2 empty.
        unit = np.where(natural, 1, np.where(self.sparse[d], 2, 0))
        unit = np.where(no_limits, 2, unit)
        dept_idx = self.combos.dept[combo]
        dept_names = pl.Series([p.prefix + name for p in self.profiles for name, _, _ in DEPARTMENTS])
        kind_names = pl.Series(_KIND_NAMES)
        return pl.DataFrame(
            {
                "d": d.astype(np.int32),
                "case_id": _ids("BJ", self.codes, month.label, d, 6),
                "item_code": items["code"].gather(idx),
                "item_name": self.combos.names.gather(combo),
                "department": dept_names.gather(d * len(DEPARTMENTS) + dept_idx),
                "channel": pl.Series(CHANNELS).gather(channel),
                "case_type": kind_names.gather(kind),
                "applied_us": (app_day + self.offset) * _DAY_US + app_sec * _SEC_US,
                "accepted_us": (day + self.offset) * _DAY_US + sec * _SEC_US,
                "completed_us": (comp + self.offset) * _DAY_US + comp_sec * _SEC_US,
                "final": status.astype(np.int32),
                "acc_day": day,
                "comp_day": comp,
                "natural": natural,
                "suspended": suspended.astype(np.int64),
                "legal": legal,
                "promised": promised,
                "legal_out": np.where(no_limits, np.nan, legal),
                "promised_out": np.where(no_limits, np.nan, promised),
                "unit": pl.Series([*LIMIT_UNITS[:2], None], dtype=pl.String).gather(unit),
                "visits": visits.astype(np.int64),
                "revoke": rng.random(n),
                "unlisted": unlisted,
            }
        ).with_columns(
            pl.col("legal_out", "promised_out").fill_nan(None),
            # Some cases carry the 办理项 code (实施编码 + 3 digits) instead of the catalog's code.
            pl.when(pl.col("unlisted")).then(pl.col("item_code") + "001").otherwise(pl.col("item_code")),
        ).drop("unlisted")

    def _export_cases(self, truth: pl.DataFrame, month: _Month) -> tuple[pl.DataFrame, np.ndarray]:
        """The month's export of the given cases as seen at the end of the month, and which are open."""
        e = month.last
        acc = truth["acc_day"].to_numpy()
        comp = truth["comp_day"].to_numpy()
        natural = truth["natural"].to_numpy()
        susp = truth["suspended"].to_numpy()
        done = comp <= e
        end = np.where(done, comp, e)
        passed = self.cum[end] - self.cum[acc]
        susp_now = np.minimum(susp, passed)
        elapsed = np.where(natural, end - acc, passed - susp_now)
        legal, promised = truth["legal"].to_numpy(), truth["promised"].to_numpy()
        final = truth["final"].to_numpy()
        revoke = truth["revoke"].to_numpy()
        red = elapsed - legal > 1
        yellow = elapsed - promised > 1
        warn = (elapsed >= 1) & (elapsed >= np.ceil(0.8 * promised))
        sup = np.select(
            [final != _ST[COMPLETED_STATUS], red & done & (revoke < 0.1), red, yellow & done & (revoke < 0.06), yellow, warn],
            [_SUP["正常"], _SUP["红牌（已撤销）"], _SUP["红牌"], _SUP["黄牌（已撤销）"], _SUP["黄牌"], _SUP["预警"]],
            _SUP["正常"],
        )
        sup_on = self.supervision[truth["d"].to_numpy()]
        status = np.where(done, final, _ST[IN_PROGRESS_STATUS])
        truth = truth.with_columns(
            pl.Series("_done", done),
            pl.Series("_sup_on", sup_on),
            pl.Series("_sup", SUPERVISION).gather(sup),
        )
        frame = truth.select(
            pl.col("case_id"),
            pl.col("item_code"),
            pl.col("item_name"),
            self.names.gather(truth["d"].to_numpy()).alias("district"),
            pl.col("department"),
            pl.col("channel"),
            pl.col("case_type"),
            pl.col("applied_us").cast(pl.Datetime("us")).alias("applied_at"),
            pl.col("accepted_us").cast(pl.Datetime("us")).alias("accepted_at"),
            pl.when(pl.col("_done")).then(pl.col("completed_us")).cast(pl.Datetime("us")).alias("completed_at"),
            pl.Series(CASE_STATUSES).gather(status).alias("status"),
            pl.col("legal_out").alias("legal_limit"),
            pl.col("unit").alias("legal_limit_unit"),
            pl.col("promised_out").alias("promised_limit"),
            pl.col("unit").alias("promised_limit_unit"),
            pl.Series(np.where(susp_now > 0, susp_now, np.nan)).fill_nan(None).alias("suspended_days"),
            pl.col("visits"),
            pl.when(pl.col("_sup_on")).then(pl.col("_sup")).alias("supervision"),
        ).select(CASES.names)
        return frame, ~done

    # -- evaluations --

    def _evaluations(self, truth: pl.DataFrame, month: _Month) -> pl.DataFrame:
        """One evaluation for most completed cases, with the month it falls in (``m``)."""
        rng = self.rng
        done = truth.filter(pl.col("final") == _ST[COMPLETED_STATUS])
        n0 = done.height
        keep = rng.random(n0) < self.coverage[done["d"].to_numpy()]
        done = done.filter(pl.Series(keep))
        n = done.height
        d = done["d"].to_numpy()
        active = rng.random(n) < _lerp(self.active, month.t)[d]
        comp_us = done["completed_us"].to_numpy()
        ev_us = comp_us + np.where(active, rng.integers(300, 3 * 86_400, n), 5 * 86_400) * _SEC_US
        b = _lerp(self.bad, month.t)[d]
        probs = np.stack([0.35 * b, 0.65 * b, 0.03 + b, 0.10 + 1.5 * b, np.full(n, 1.0)], axis=1)
        probs[:, 4] = 1.0 - probs[:, :4].sum(axis=1)
        rating = np.where(active, _pick(rng, probs, n) + 1, 5)
        online = done["channel"].is_in(["网上申请", "移动端"]).to_numpy()
        ch_online = _pick(rng, np.array([0.3, 0.65, 0.0, 0.05, 0.0, 0.0]), n)
        ch_offline = _pick(rng, np.array([0.0, 0.0, 0.5, 0.25, 0.15, 0.10]), n)
        channel = np.where(active, np.where(online, ch_online, ch_offline),
                           np.where(online, _EC["PC端"], _EC["评价器"]))
        # 差评: rectification, mostly within 15 working days.
        bad = rating <= 2
        # Order of RECTIFY_STATUSES. Districts slow to rectify also leave more 差评 未整改 (3–17 %), so
        # that the rectification rates differ between districts even with a few 差评 a month.
        unfixed = 0.5 * (1.0 - self.rect_on_time[d])
        rstatus = _pick(rng, np.stack([0.78 - unfixed, np.full(n, 0.08), 0.04 + unfixed, np.full(n, 0.10)], axis=1), n)
        days = np.where(rng.random(n) < self.rect_on_time[d], rng.integers(1, 16, n), rng.integers(16, 31, n))
        ev_day = ev_us // _DAY_US - self.offset
        fix_day = np.searchsorted(self.cum, self.cum[ev_day] + days, side="left")
        fix_us = (fix_day + self.offset) * _DAY_US + _work_seconds(rng, n) * _SEC_US
        finished = np.isin(rstatus, [_RS[r] for r in RECTIFIED_STATUSES])
        too_late = finished & (fix_us > self.horizon_us)
        rstatus = np.where(too_late, _RS["整改中"], rstatus)
        has_fix = bad & finished & ~too_late
        m = np.searchsorted(self.month_firsts, ev_day, side="right") - 1
        m = np.where(ev_day > self.months[-1].last, self.n_months, m)  # after the last export
        return pl.DataFrame(
            {
                "d": d.astype(np.int32),
                "m": m.astype(np.int32),
                "case_id": done["case_id"],
                "item_code": done["item_code"],
                "department": done["department"],
                "eval_channel": pl.Series(EVAL_CHANNELS).gather(channel),
                "rating": pl.Series(rating, dtype=pl.Int8),
                "evaluated_at": pl.Series(ev_us).cast(pl.Datetime("us")),
                "active": active,
                "rectify_status": pl.Series(RECTIFY_STATUSES).gather(rstatus),
                "rectified_at": pl.Series(fix_us).cast(pl.Datetime("us")),
                "bad": bad,
                "has_fix": has_fix,
            }
        ).with_columns(
            pl.when(pl.col("bad")).then(pl.col("rectify_status")).alias("rectify_status"),
            pl.when(pl.col("has_fix")).then(pl.col("rectified_at")).alias("rectified_at"),
        ).filter((pl.col("m") >= 0) & (pl.col("m") < self.n_months))

    def _eval_export(self, evals: pl.DataFrame, month: _Month) -> pl.DataFrame:
        """The month's 好差评 export; ``evals`` sorted by district and time."""
        d = evals["d"].to_numpy()
        return evals.select(
            _ids("PJ", self.codes, month.label, d, 7).alias("eval_id"),
            pl.col("case_id"),
            pl.col("item_code"),
            self.names.gather(d).alias("district"),
            pl.col("department"),
            pl.col("eval_channel"),
            pl.col("rating"),
            pl.col("evaluated_at"),
            pl.col("active"),
            pl.col("rectify_status"),
            pl.col("rectified_at"),
        ).select(EVALUATIONS.names)

    # -- hotline --

    def _hotline(self, mi: int, month: _Month, expected: np.ndarray) -> pl.DataFrame:
        """Tickets received in a month with their true course (``closed_us`` null: never closed)."""
        rng, cum = self.rng, self.cum
        counts = np.maximum(rng.poisson(expected[:, mi]), 1)
        d = np.repeat(np.arange(self.n), counts)
        n = len(d)
        days = np.arange(month.first, month.last + 1)
        w = np.where(self.work[days], 1.0, 0.7)
        day = month.first + np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n), side="right"),
                                       len(days) - 1)
        sec = np.clip(rng.normal(14 * _HOUR, 3.5 * _HOUR, n), 0, 86_399).astype(np.int64)
        order = np.lexsort((sec, day, d))
        day, sec = day[order], sec[order]
        received = (day + self.offset) * _DAY_US + sec * _SEC_US
        cats = list(HOTLINE_CATEGORIES)
        category = _pick(rng, np.array([HOTLINE_CATEGORY_SHARE[c] for c in cats]), n)
        due_days = np.array([HOTLINE_DUE_DAYS[c] for c in cats])[category]
        due_day = np.searchsorted(cum, cum[day] + due_days, side="left")
        due = (due_day + self.offset) * _DAY_US + 18 * _HOUR * _SEC_US
        u = rng.random(n)
        on_time = u < _lerp(self.hot_on_time, month.t)[d]
        closed = np.where(
            on_time,
            received + ((due - received) * rng.uniform(0.05, 0.95, n)).astype(np.int64),
            due + rng.integers(_HOUR, 8 * 86_400, n) * _SEC_US,
        )
        sat = _pick(rng, np.where(on_time[:, None], [0.78, 0.14, 0.05, 0.03], [0.45, 0.2, 0.3, 0.05]), n)
        dept_names = [name for name, _, _ in DEPARTMENTS]
        dw = np.array([HOTLINE_DEPARTMENT_WEIGHT.get(name, 0.5) for name in dept_names])
        dept = _pick(rng, dw, n)
        all_depts = pl.Series([p.prefix + name for p in self.profiles for name in dept_names])
        return pl.DataFrame(
            {
                "d": d.astype(np.int32),
                "ticket_id": _ids("GD", self.codes, month.label, d, 6),
                "department": all_depts.gather(d * len(dept_names) + dept),
                "category": pl.Series(cats).gather(category),
                "received_at": pl.Series(received).cast(pl.Datetime("us")),
                "due_at": pl.Series(due).cast(pl.Datetime("us")),
                "closed_us": pl.Series(closed).set(pl.Series(u > 0.99), None),  # ~1 % never closed
                "sat": pl.Series(HOTLINE_SATISFACTION).gather(sat),
            }
        )

    def _hotline_export(self, truth: pl.DataFrame, month: _Month) -> tuple[pl.DataFrame, np.ndarray]:
        """The month's ticket export as seen at the month end, and the tickets to export again."""
        closed = pl.col("closed_us") <= month.end_us(self.offset)
        frame = truth.select(
            pl.col("ticket_id"),
            self.names.gather(truth["d"].to_numpy()).alias("district"),
            pl.col("department"),
            pl.col("category"),
            pl.col("received_at"),
            pl.col("due_at"),
            pl.when(closed).then(pl.col("closed_us")).cast(pl.Datetime("us")).alias("closed_at"),
            pl.when(closed).then(pl.col("sat")).alias("satisfaction"),
        ).select(HOTLINE.names)
        again = truth.select(pl.col("closed_us").is_not_null() & ~closed).to_series().to_numpy()
        return frame, again

    # -- writing --

    def _created_at(self, day: int, days: float) -> dt.datetime:
        """Upload time: ``days`` after the given calendar day index, 9:30, never in the future."""
        base = dt.datetime.combine(self.cal.start + dt.timedelta(days=day), dt.time(9, 30))
        return min(base + dt.timedelta(days=days), self.now)

    def _export(self, kind: str, frame: pl.DataFrame, month: _Month, *, name: str, created_at: dt.datetime,
                late: bool | None = None, tag: str = "", user: str = USER) -> Iterator[Export]:
        if frame.height == 0:
            return
        yield Export(kind, frame, month.label, name, _sha(self.seed, self.scale, self.end_month, kind, month.label, tag),
                     created_at, late, user)

    def exports(self) -> Iterator[Export]:
        """Every export of the 24 months in upload order; ``stats`` is complete once exhausted.

        All draws come from one generator in a fixed order, and nothing here writes: what a writer
        does with an export cannot change the next one.
        """
        rng, stats = self.rng, self.stats
        months = self.months
        self.month_firsts = np.array([m.first for m in months])
        self.horizon_us = min(months[-1].end_us(self.offset) + 5 * _DAY_US, self.now_us)
        self.day_weights = self._day_weights()

        # Volumes per district × month: working-day weight, growth, a little noise.
        month_w = np.array([self.day_weights[m.first:m.last + 1].sum() for m in months])
        t = np.array([m.t for m in months])
        weight = np.array([p.weight for p in self.profiles])
        raw = weight[:, None] * month_w[None, :] * (1 + self.growth[:, None] * t[None, :])
        raw *= rng.lognormal(0, 0.04, raw.shape)
        case_exp = raw / raw.sum() * CASES_PER_SCALE * self.scale
        days_in = np.array([m.last - m.first + 1 for m in months], dtype=np.float64)
        hot_raw = weight[:, None] * days_in[None, :] * (1 + 0.1 * t[None, :]) * rng.lognormal(0, 0.05, raw.shape)
        hot_exp = hot_raw / hot_raw.sum() * CASES_PER_SCALE * self.scale * HOTLINE_SHARE

        # Catalog revisions: everyone at month 0, a revision around month 7–12, half again at 15–20.
        first_rev = rng.integers(7, 13, self.n)
        second_rev = np.where(rng.random(self.n) < 0.6, rng.integers(15, 21, self.n), -1)
        strength = rng.uniform(0.2, 0.4, self.n)

        # Late uploads and missing district-months (distinct slots, never the first or last months).
        slots = rng.choice(self.n * (self.n_months - 5), size=6, replace=False)
        slot_pairs = [(int(s) % self.n, 2 + int(s) // self.n) for s in slots]
        late_cases = set(slot_pairs[:3])
        late_evals = {slot_pairs[3]}
        missing = set(slot_pairs[4:])
        stats.missing = sorted((self.profiles[d].name, months[m].label) for d, m in missing)

        cats: list[_Catalog] = [self._first_catalog(d) for d in range(self.n)]
        items = self._active_items(cats)
        pending = None  # cases still open at the end of the previous month (true course)
        open_tickets = None  # the same for 12345 tickets
        eval_buckets: list[list[pl.DataFrame]] = [[] for _ in months]
        for mi, month in enumerate(months):
            # Catalogs applying from this month.
            changed = [d for d in range(self.n) if mi == 0 or mi in (first_rev[d], second_rev[d])]
            if changed:
                if mi:
                    for d in changed:
                        cats[d] = self._revise(d, cats[d], strength[d])
                    items = self._active_items(cats)
                frame = pl.concat([self._catalog_frame(d, cats[d]) for d in changed])
                yield from self._export("items", frame, month, name=f"{CITY}事项清单（{month.label}起适用）.xlsx",
                             created_at=self._created_at(month.first, -3))
                stats.items += frame.height

            new = self._new_cases(mi, month, case_exp, items)
            new = new.with_columns(pl.lit(False).alias("seen"))
            eval_rows = self._evaluations(new, month)
            for m in np.unique(eval_rows["m"].to_numpy()):
                eval_buckets[int(m)].append(eval_rows.filter(pl.col("m") == m))
            truth = new if pending is None else pl.concat([pending, new])
            export, still_open = self._export_cases(truth, month)
            d_idx = truth["d"].to_numpy()
            exported = ~np.isin(d_idx, [d for d, m in missing if m == mi])
            stats.cases += int((exported & ~truth["seen"].to_numpy()).sum())  # distinct cases stored
            truth = truth.with_columns(pl.col("seen") | pl.Series(exported))
            pending = truth.filter(pl.Series(still_open))
            yield from self._slots("cases", export, d_idx, mi, month, late_cases, missing,
                              f"{CITY}{month.label}办件明细.xlsx")

            if eval_buckets[mi]:
                evals = pl.concat(eval_buckets[mi]).sort("d", "evaluated_at", maintain_order=True)
                eval_buckets[mi] = []
                yield from self._slots("evaluations", self._eval_export(evals, month), evals["d"].to_numpy(), mi,
                                  month, late_evals, missing, f"{CITY}{month.label}好差评明细.xlsx")

            new_tickets = self._hotline(mi, month, hot_exp)
            stats.hotline += new_tickets.height
            tickets = new_tickets if open_tickets is None else pl.concat([open_tickets, new_tickets])
            hot, again = self._hotline_export(tickets, month)
            open_tickets = tickets.filter(pl.Series(again))
            yield from self._export("hotline", hot, month, name=f"{CITY}{month.label}12345工单.xlsx",
                         created_at=self._created_at(month.last, 2))
            stats.hotline_rows += hot.height

    def _slots(self, kind: str, frame: pl.DataFrame, d_idx: np.ndarray, mi: int, month: _Month,
               late: set[tuple[int, int]], missing: set[tuple[int, int]], name: str) -> Iterator[Export]:
        """A month's export: on time for most districts, late for some, none for the missing."""
        late_d = sorted(d for d, m in late if m == mi)
        skip = {d for d, m in missing if m == mi}
        normal = ~np.isin(d_idx, [*late_d, *skip])
        yield from self._export(kind, frame.filter(pl.Series(normal)), month, name=name,
                     created_at=self._created_at(month.last, 3))
        self._count(kind, int(normal.sum()))
        for d in late_d:
            sel = d_idx == d
            days = float(self.rng.integers(30, 75))
            yield from self._export(kind, frame.filter(pl.Series(sel)), month, name=name, late=True, tag=f"late{d}",
                         created_at=self._created_at(month.last, days), user=f"{self.profiles[d].name}数据专员")
            self._count(kind, int(sel.sum()))
            self.stats.late.append((self.profiles[d].name, month.label, kind))

    def _count(self, kind: str, rows: int) -> None:
        if kind == "cases":
            self.stats.case_rows += rows
        else:
            self.stats.evaluations += rows


def _default_end_month(today: dt.date) -> str:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


# A bulk load commits about this many rows at a time: big transactions, bounded memory.
ROWS_PER_COMMIT = 2_000_000


def _store_args(export: Export) -> dict:
    return {"file_name": export.file_name, "sha256": export.sha256, "user_name": export.user,
            "period": export.month,  # an export's month, even where re-exported open rows outnumber new ones
            "created_at": export.created_at, "late": export.late}


def write_imports(engine: Engine, exports: Iterable[Export]) -> int:
    """Store each export as the upload page does (ingest.import_frame); returns the batches made."""
    return sum(len(import_frame(engine, e.kind, e.frame, **_store_args(e)).results) for e in exports)


def write_bulk(engine: Engine, exports: Iterable[Export], rows_per_commit: int = ROWS_PER_COMMIT,
               stage_min_rows: int = store.STAGE_MIN_ROWS) -> int:
    """Store the exports as write_imports does (same batches, versions, revisions, batch files), faster.

    Exports are taken in groups of about ``rows_per_commit`` rows, one transaction each, on a
    store.bulk_load connection (secondary indexes built once at the end); on SQLite a group's records
    go through store.staged_records (bulk ingest in a child process, then INSERT … SELECT, for a
    group of at least ``stage_min_rows`` rows). Each
    group's batch files are written by a second thread while the next group is generated and stored.
    Returns the batches made.
    """
    made = 0
    with (store.bulk_load(engine) as conn, ThreadPoolExecutor(max_workers=1) as files,
          tempfile.TemporaryDirectory(prefix="dashboard-bulk-") as scratch):
        writing: Future | None = None
        for group in _groups(exports, rows_per_commit):
            announced = [(n, e.kind, d, part) for n, e in enumerate(group) for d, part in district_parts(e.frame)]
            done: list[tuple[ImportResult, Parts]] = []
            with store.staged_records(conn, announced, Path(scratch), stage_min_rows) as for_file, conn.begin():
                for n, export in enumerate(group):
                    done.append(store_parts(conn, export.kind, export.frame, insert=for_file(n),
                                            **_store_args(export)))
            made += sum(len(result.results) for result, _ in done)
            if writing is not None:
                writing.result()  # one group's frames waiting at most: memory stays bounded
            writing = files.submit(_write_files, engine, done)
        if writing is not None:
            writing.result()
    return made


def _groups(exports: Iterable[Export], rows: int) -> Iterator[list[Export]]:
    group: list[Export] = []
    for export in exports:
        group.append(export)
        if sum(e.frame.height for e in group) >= rows:
            yield group
            group = []
    if group:
        yield group


def _write_files(engine: Engine, done: list[tuple[ImportResult, Parts]]) -> None:
    for result, parts in done:
        write_batch_files(engine, result, parts)


def generate_demo(engine: Engine, *, calendar: WorkCalendar, seed: int = 7, scale: float = 1.0,
                  end_month: str | None = None, bulk: bool = True, months: int = N_MONTHS,
                  districts: int | None = None) -> str:
    """Write the demo city into the store and return a one-line Chinese summary.

    ``scale`` 1 gives about a million 办件 over 10 districts × 24 months ending ``end_month``
    (YYYY-MM, default: the month before today); ``calendar`` gives the working days the cases run
    on. The same seed always writes the same records. ``bulk`` writes through write_bulk (the
    default), else one import per export (write_imports). ``months`` (at least 8) and ``districts``
    (the first n of the 10, at least 2) make a smaller city with fewer batches, for the store tests.
    """
    started = time.perf_counter()
    now = dt.datetime.now().replace(microsecond=0)
    latest = _default_end_month(now.date())
    end_month = end_month or latest
    try:
        year, mon = (int(x) for x in end_month.split("-"))
        dt.date(year, mon, 1)
    except ValueError:
        raise ValueError(f"结束月份“{end_month}”无效，应写作 YYYY-MM") from None
    end_month = f"{year:04d}-{mon:02d}"
    if end_month > latest:
        raise ValueError(f"结束月份 {end_month} 尚未结束，示例数据最晚只能生成到 {latest}")
    if scale <= 0:
        raise ValueError("规模（scale）必须大于 0")
    # Six late or missing district-months are drawn from months 3 … n-4: at least 8 months, 2 districts.
    if months < 8 or not 2 <= (districts or len(PROFILES)) <= len(PROFILES):
        raise ValueError(f"示例城市至少 8 个月，区县数在 2 至 {len(PROFILES)} 之间")
    store.init_db(engine)
    city = _City(calendar, seed, scale, end_month, now, months, districts)
    for p in city.profiles:
        store.add_district(engine, p.name, p.code, p.aliases)
    stats = city.stats
    stats.batches = (write_bulk if bulk else write_imports)(engine, city.exports())
    seconds = time.perf_counter() - started
    missing = "、".join(f"{d}{m}" for d, m in stats.missing)
    return (
        f"已生成示例城市“{CITY}”：{city.n} 个区县，{city.months[0].label} 至 {city.months[-1].label} 共 {city.n_months} 个月；"
        f"办件 {stats.cases:,} 件（导出 {stats.case_rows:,} 行，含跨月重复导出）、事项清单 {stats.items:,} 行、"
        f"好差评 {stats.evaluations:,} 条、12345 工单 {stats.hotline:,} 件（导出 {stats.hotline_rows:,} 行）；"
        f"共 {stats.batches:,} 个批次，迟报 {len(stats.late)} 批，缺报 {len(stats.missing)} 个区县月（{missing}）；"
        f"用时 {seconds:.1f} 秒"
    )
