"""The monthly bulletin (月度通报) and the district report cards (区县报告单) as plain data.

Everything here is built from the registry, the ranking, the alert lists (metrics/alerts.py) and the
data-quality grid (datasets/storage/quality.py) for one period; the renderer (metrics/bulletin_docx.py) only
lays it out. Every number is formatted by the page formatters in metrics/formatting.py, so the document
shows exactly what the pages show and what ``python -m metrics report``/``rank`` give after rounding.
No Streamlit here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from datasets.domain.periods import Period
from datasets.intake.boundaries import Shapes
from datasets.storage import coverage, quality, store
from metrics import alerts, charts, detail_store, maps, overview
from metrics.compute import CITY, aggregate
from metrics.formatting import INDEX, INDEX_NAME, NULL_TEXT, fmt_delta, fmt_value, unit_of
from metrics.registry import BY_ID, DAYS, DOWN, GROUPS, INDICATORS
from metrics.scoring import ScoringSettings, ranking

SECTION_TITLES = ("一、总体情况", "二、区县排名", "三、进步与退步", "四、存在问题", "五、下一步工作要求")
DEFAULT_REQUIREMENTS = (
    "各区县要对照本通报指出的问题逐项整改，对红牌办件、超期在办件和未按时整改的差评逐件核查原因、明确责任人和完成时限。\n"
    "排名靠后和指数下降的区县要分析原因，制定提升措施，下月通报时说明整改进展。\n"
    "各区县要按时、完整报送办件明细、好差评和 12345 热线数据，逾期或缺报的将在通报中点名。"
)
DEFAULT_ISSUER = "政务服务和大数据管理局"
TOP_N = 3
NO_DATA_REASON = "本期无数据"
PASS, FAIL = "✔", "✘"


# --- plain building blocks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    text: str
    level: int = 0  # 0 body text, 2 a level-2 heading (（一）…)


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    # Columns whose text may wrap (reasons, names of items); every other cell — numbers, district
    # names — stays on one line and its column is as wide as its widest cell.
    wrap: tuple[str, ...] = ()

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema={h: pl.String for h in self.headers}, orient="row")


@dataclass(frozen=True)
class Figure:
    caption: str
    spec: dict  # a Vega-Lite spec from metrics/charts.py
    width_px: int = 620


@dataclass(frozen=True)
class Inset:
    """A small figure with its caption beside it on one line (a report card's locator map: the card
    has to stay on one page)."""

    caption: str
    spec: dict
    height_cm: float = 1.0


Block = Paragraph | Table | Figure | Inset


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Bulletin:
    title: str
    city: str
    period: Period
    issuer: str
    issue_date: str
    sections: list[Section]
    doc_number: str = ""  # 发文字号: 澄政数〔2026〕12号 (empty without a 机关代字)
    cc: str = ""  # the 版记's 抄送 line: 抄送：…。
    print_date: str = ""  # 印发日期: 2026年12月7日印发

    def text(self) -> str:
        """The whole text (headings, paragraphs, table rows) for previews and searches."""
        lines = [self.title]
        for section in self.sections:
            lines.append(section.title)
            lines.extend(_block_text(b) for b in section.blocks)
        return "\n".join(lines)


@dataclass
class DistrictReport:
    district: str
    title: str
    blocks: list[Block]


def _block_text(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Table):
        return "\n".join(["\t".join(block.headers), *["\t".join(r) for r in block.rows]])
    return f"［图］{block.caption}"


# --- the ranking, through one adapter --------------------------------------------------------------


def ranked_table(
    comps: pl.DataFrame, period: Period, settings: ScoringSettings, inventory: pl.DataFrame,
    districts: Sequence[str] = (),
) -> pl.DataFrame:
    """metrics.scoring.ranking of every district in ``districts``: ranked ones first, then 未排名 with
    the reason (the one place the bulletin reads the ranking, so it equals ``metrics rank``)."""
    return ranking(comps, period, settings, inventory, list(districts) or None)


# --- number sentences ------------------------------------------------------------------------------


def change_words(key: str, delta: float | None, label: str) -> str:
    """环比上升 0.08 个百分点 / 环比持平 / 环比无可比数据 — magnitude formatted by formatting.fmt_delta."""
    text = fmt_delta(key, delta)
    if text is None or delta is None:
        return f"{label}无可比数据"
    unit = unit_of(key)
    if unit.is_flat(delta):
        return f"{label}持平"
    up, down = ("增加", "减少") if unit == DAYS else ("上升", "下降")
    return f"{label}{up if delta > 0 else down} {text[1:]}"


def value_sentence(name: str, key: str, value: float | None, mom: float | None, yoy: float | None) -> str:
    """实际网办率 47.28%，环比上升 0.08 个百分点，同比下降 1.20 个百分点"""
    if value is None:
        return f"{name}{NULL_TEXT}（无数据）"
    return f"{name} {fmt_value(key, value)}，{change_words(key, mom, '环比')}，{change_words(key, yoy, '同比')}"


def rank_change_text(row: dict) -> str:
    if not row.get("ranked"):
        return NULL_TEXT
    if row.get("prev_rank") is None:
        return "上期未排名"
    change = row.get("rank_change") or 0
    if change > 0:
        return f"上升{change}位"
    if change < 0:
        return f"下降{-change}位"
    return "持平"


def headline_indicators() -> dict[str, list[str]]:
    """Per group: the overview's key indicators of the group, else the group's first indicator."""
    out: dict[str, list[str]] = {}
    for g in GROUPS:
        key = [i for i in overview.KEY_INDICATORS if BY_ID[i].group == g]
        out[g] = key or [next(i.id for i in INDICATORS if i.group == g)]
    return out


def meets_target(indicator_id: str, value: float | None, settings: ScoringSettings) -> str:
    if value is None:
        return NULL_TEXT
    target = settings.indicators[indicator_id].target
    ok = value <= target if BY_ID[indicator_id].direction == DOWN else value >= target
    return PASS if ok else FAIL


# --- inputs gathered once ------------------------------------------------------------------------


@dataclass
class Inputs:
    """What a bulletin and the report cards are built from (the caller reads the store)."""

    comps: pl.DataFrame
    settings: ScoringSettings
    period: Period
    districts: list[str]  # every configured district, in order
    inventory: pl.DataFrame  # the active batches (district, kind, period): ranking completeness
    detail: alerts.Detail  # alert rows (detail_store.load_alert_detail)
    grid: pl.DataFrame  # quality.completeness for the period's months
    months: list[str] = field(default_factory=list)  # months with any data (for the trend)
    city: str = "本市"
    issuer: str = DEFAULT_ISSUER
    requirements: str = DEFAULT_REQUIREMENTS
    today: dt.date = field(default_factory=dt.date.today)
    note: str | None = None  # the period's partial months (datasets/storage/coverage.py): 数据截至 …，已报送 N/M 个区县
    doc_prefix: str = ""  # 机关代字 of the 发文字号 (设置)
    cc: str = ""  # 抄送机关 (设置)
    sequence: int = 1  # the 发文字号's sequence number: proposed, or chosen on the page
    shapes: Shapes | None = None  # the districts' map shapes (metrics.maps.shapes_for); None: no maps

    def __post_init__(self) -> None:
        self._rank: dict[Period, pl.DataFrame] = {}

    def rank(self, period: Period | None = None) -> pl.DataFrame:
        period = period or self.period
        if period not in self._rank:
            self._rank[period] = ranked_table(self.comps, period, self.settings, self.inventory, self.districts)
        return self._rank[period]


def load_inputs(engine, comps: pl.DataFrame, settings: ScoringSettings, period: Period,
                detail: alerts.Detail | None = None, today: dt.date | None = None,
                cover: coverage.Coverage | None = None) -> Inputs:
    """Read the alert rows, the quality grid, the administrator's texts and, for a partial month, how
    far its data goes (``cover``, else computed for ``today``) for ``period``."""
    from datasets.access import documents

    today = today or dt.date.today()
    if cover is None:
        cover = coverage.coverage(engine, settings.rules, today)

    districts = quality.all_districts(engine)
    districts += sorted(set(comps["district"].unique().to_list()) - set(districts))
    if detail is None:
        detail = detail_store.load_alert_detail(engine, settings.to_rules())
    return Inputs(
        comps=comps,
        settings=settings,
        period=period,
        districts=districts,
        inventory=store.active_batches(engine).select("district", "kind", "period"),
        detail=detail,
        grid=quality.completeness(engine, period.months),
        months=sorted(comps["month"].unique().to_list()) if comps.height else [],
        city=documents.get_text(engine, documents.CITY_NAME) or default_city(engine),
        issuer=documents.get_text(engine, documents.ISSUER) or DEFAULT_ISSUER,
        requirements=documents.get_text(engine, documents.REQUIREMENTS) or DEFAULT_REQUIREMENTS,
        today=today,
        note=cover.banner(period),
        doc_prefix=documents.get_text(engine, documents.DOC_PREFIX) or "",
        cc=documents.get_text(engine, documents.CC) or "",
        sequence=documents.next_sequence(engine, today.year),
        shapes=maps.shapes_for(engine, districts, demo=is_demo_store(engine)),
    )


def default_city(engine) -> str:
    """The demo city's name on the demo store, else 本市 (administrators set the name on 设置)."""
    from datasets.sample.demo import CITY as DEMO_CITY

    return DEMO_CITY if is_demo_store(engine) else "本市"


def is_demo_store(engine) -> bool:
    """Whether the store holds the generated (fictional) demo city: its batches carry the demo's user."""
    from datasets.sample.demo import USER
    from datasets.storage import store

    history = store.batch_history(engine)
    return bool(history.height) and USER in set(history["user_name"].to_list())


def date_text(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# --- the bulletin ----------------------------------------------------------------------------------


def build_bulletin(inp: Inputs, with_charts: bool = True) -> Bulletin:
    p = inp.period
    sections = [
        Section(SECTION_TITLES[0], _overall(inp, with_charts)),
        Section(SECTION_TITLES[1], _ranking_section(inp, with_charts)),
        Section(SECTION_TITLES[2], _movers_section(inp)),
        Section(SECTION_TITLES[3], _problems_section(inp)),
        Section(SECTION_TITLES[4], [Paragraph(t.strip()) for t in inp.requirements.splitlines() if t.strip()]),
    ]
    return Bulletin(
        title=f"{inp.city}政务服务效能评估通报（{p.label}）",
        city=inp.city,
        period=p,
        issuer=f"{inp.city}{inp.issuer}" if not inp.issuer.startswith(inp.city) else inp.issuer,
        issue_date=date_text(inp.today),
        sections=sections,
        doc_number=doc_number(inp.doc_prefix, inp.today.year, inp.sequence),
        cc=f"抄送：{inp.cc.rstrip('。')}。" if inp.cc.strip() else "",
        print_date=f"{date_text(inp.today)}印发",
    )


def doc_number(prefix: str, year: int, sequence: int) -> str:
    """发文字号 after GB/T 9704: 机关代字, the year in 六角括号, the sequence without leading zeros:
    澄政数〔2026〕12号; empty when no 机关代字 is set."""
    prefix = prefix.strip()
    return f"{prefix}〔{year}〕{sequence}号" if prefix else ""


def _has_data(inp: Inputs, period: Period) -> bool:
    return inp.comps.filter(pl.col("month").is_between(pl.lit(period.first), pl.lit(period.last)),
                            pl.col("denominator") > 0).height > 0


def _overall(inp: Inputs, with_charts: bool) -> list[Block]:
    p = inp.period
    # A partial month says how far its data goes and who has not reported, before any number.
    lead: list[Block] = [Paragraph(f"注：本期数据未报齐，{inp.note}。")] if inp.note else []
    if not _has_data(inp, p):
        return [*lead, Paragraph(f"{p.label}全市尚无已报送的数据，本期不计算效能指数和各项指标。")]
    headlines = headline_indicators()
    ids = [i for g in GROUPS for i in headlines[g]]
    cards = {c.key: c for c in overview.overview_cards(inp.comps, p, inp.settings, None, ids)}
    now, prev, year = (overview.pooled_scores(inp.comps, q, inp.settings) for q in (p, p.previous(), p.year_ago()))
    ranked = inp.rank().filter(pl.col("ranked"))
    index = cards[INDEX]
    blocks: list[Block] = [
        *lead,
        Paragraph(
            f"{p.label}，全市政务服务{value_sentence(INDEX_NAME, INDEX, index.value, index.mom, index.yoy)}。"
            f"参加排名的区县 {ranked.height} 个（共 {len(inp.districts)} 个）。"
        )
    ]
    for g, group_name in GROUPS.items():
        score = now[f"group_{g}"]
        prev_score, year_score = prev[f"group_{g}"], year[f"group_{g}"]
        head = f"（{'一二三四五'[list(GROUPS).index(g)]}）{group_name}"
        mom = None if score is None or prev_score is None else score - prev_score
        yoy = None if score is None or year_score is None else score - year_score
        parts = [value_sentence(f"{group_name}组得分", INDEX, score, mom, yoy)]
        for ind_id in headlines[g]:
            c = cards[ind_id]
            parts.append(value_sentence(BY_ID[ind_id].name, ind_id, c.value, c.mom, c.yoy))
        blocks.append(Paragraph(head, level=2))
        blocks.append(Paragraph("；".join(parts) + "。"))
    if with_charts:
        months = overview.trend_months(p, inp.months)
        trend = overview.index_trend(inp.comps, inp.settings, months)
        if trend.height:
            blocks.append(Figure(f"图1　全市效能指数走势（{months[0]}至{months[-1]}）",
                                 _sized(charts.index_trend_chart(trend, inp.districts), 560, 220)))
    return blocks


def _sized(chart, width: int, height: int | None = None) -> dict:
    props = {"width": width} if height is None else {"width": width, "height": height}
    return chart.properties(**props).to_dict(validate=False)


RANK_NOTE = "说明"


def ranking_rows(inp: Inputs) -> Table:
    """名次, 名次变化, 区县, 效能指数, the five group scores, 说明: an unranked district shows its index
    and the scores it has like the others, and why it is not ranked in 说明."""
    rank = inp.rank()
    headers = ["名次", "名次变化", "区县", INDEX_NAME, *[f"{name}" for name in GROUPS.values()], RANK_NOTE]
    rows = []
    for r in rank.iter_rows(named=True):
        scores = [fmt_value(INDEX, r[INDEX]), *[fmt_value(INDEX, r.get(f"group_{g}")) for g in GROUPS]]
        if r["ranked"]:
            rows.append([str(r["rank"]), rank_change_text(r), r["district"], *scores, ""])
        else:
            rows.append(["未排名", NULL_TEXT, r["district"], *scores, r.get("unranked_reason") or NULL_TEXT])
    return Table(headers, rows, f"表1　各区县政务服务效能指数排名（{inp.period.label}）", wrap=(RANK_NOTE,))


def _names(rows: list[dict]) -> str:
    return "、".join(f"{r['district']}（{fmt_value(INDEX, r[INDEX])}）" for r in rows)


def _ranking_section(inp: Inputs, with_charts: bool) -> list[Block]:
    rank = inp.rank()
    ranked = rank.filter(pl.col("ranked")).to_dicts()
    unranked = rank.filter(~pl.col("ranked")).to_dicts()
    blocks: list[Block] = []
    if not ranked:
        blocks.append(Paragraph(f"{inp.period.label}没有可排名的区县。"))
    else:
        n = min(TOP_N, len(ranked))
        # Ties share a rank (1, 1, 3): every district at rank ≤ 3 is among the first three, and every
        # district tied with the third from the bottom among the last three.
        top = [r for r in ranked if r["rank"] <= ranked[n - 1]["rank"]]
        floor = ranked[-n]["rank"]
        bottom = [r for r in reversed(ranked) if r["rank"] >= floor and r not in top] if len(ranked) > n else []
        text = f"{inp.period.label}效能指数排名前三位的是：{_names(top)}"
        text += f"；排名后三位的是：{_names(bottom)}。" if bottom else "。"
        blocks.append(Paragraph(text))
    if unranked:
        blocks.append(Paragraph("未参加排名的区县：" + "；".join(
            f"{r['district']}（{r.get('unranked_reason') or NULL_TEXT}）" for r in unranked) + "。"))
    blocks.append(ranking_rows(inp))
    if with_charts and ranked:
        chart = charts.ranking_chart(rank.filter(pl.col("ranked")), inp.districts)
        blocks.append(Figure(f"图2　各区县效能指数（{inp.period.label}）", _sized(chart, 430)))
    if with_charts:
        blocks += map_figure(inp, number=3 if ranked else 2)
    return blocks


MAP_TITLE = "各区县政务服务效能指数分布图"


def map_figure(inp: Inputs, number: int) -> list[Block]:
    """图N 各区县政务服务效能指数分布图 and its note (hatched = unranked, why; 示意图; districts without a
    boundary); nothing when no district has a shape."""
    if inp.shapes is None or not inp.shapes.geometries:
        return []
    values = maps.map_values(inp.rank(), INDEX, inp.districts)
    schematic = "，示意图" if maps.schematic_note(inp.shapes) else ""
    blocks: list[Block] = [Figure(f"图{number}　{MAP_TITLE}（{inp.period.label}{schematic}）",
                                  maps.to_spec(maps.print_map(inp.shapes, values)))]
    if note := maps.print_note(inp.shapes, values):
        blocks.append(Paragraph(note))
    return blocks


def locator_figure(inp: Inputs, district: str) -> list[Block]:
    """The district's place on the map, for its report card (nothing without its shape)."""
    if inp.shapes is None or district not in inp.shapes.geometries:
        return []
    schematic = "，示意图" if maps.schematic_note(inp.shapes) else ""
    return [Inset(f"{district}在全市的位置（深色{schematic}）", maps.to_spec(maps.locator_map(inp.shapes, district)))]


def _movers_section(inp: Inputs) -> list[Block]:
    p = inp.period
    now = inp.rank().filter(pl.col("ranked"))
    before = inp.rank(p.previous()).filter(pl.col("ranked"))
    moves = overview.movers(now, before, n=max(now.height, 1), rounded=False).to_dicts()
    if not moves:
        return [Paragraph(f"{p.previous().label}没有可比的效能指数，本期不作进退步比较。")]
    ups = [m for m in moves if m["指数变化"] is not None and m["指数变化"] > 0][:TOP_N]
    downs = [m for m in moves if m["指数变化"] is not None and m["指数变化"] < 0][:TOP_N]

    def one(m: dict) -> str:
        change = fmt_delta(INDEX, m["指数变化"]) or NULL_TEXT
        rank = m.get("排名变化")
        moved = "名次持平" if not rank else (f"名次上升{rank}位" if rank > 0 else f"名次下降{-rank}位")
        if m.get("排名变化") is None:
            moved = "上期未排名"
        return (f"{m['区县']}（效能指数由 {fmt_value(INDEX, m['上期指数'])} 变为 {fmt_value(INDEX, m['本期指数'])}，"
                f"变化 {change}，{moved}）")

    blocks: list[Block] = [Paragraph(f"与{p.previous().label}相比：")]
    blocks.append(Paragraph("进步较大的区县：" + ("；".join(one(m) for m in ups) if ups else "无") + "。"))
    blocks.append(Paragraph("退步较大的区县：" + ("；".join(one(m) for m in downs) if downs else "无") + "。"))
    return blocks


# --- problems --------------------------------------------------------------------------------------

_DISTRICT = "所属区县"


def alert_frames(inp: Inputs, districts: Sequence[str] | None = None) -> dict[str, pl.DataFrame]:
    return {a: alerts.alert_list(inp.detail, a, inp.period, districts) for a in alerts.ALERTS}


def _counts_by_district(frame: pl.DataFrame) -> dict[str, int]:
    if frame.height == 0:
        return {}
    return dict(frame.group_by(_DISTRICT).len().iter_rows())


def _worst(alert_id: str, frame: pl.DataFrame) -> str:
    """The item (or department) behind most rows of an alert list, or the longest overdue case."""
    if frame.height == 0:
        return ""
    if alert_id == alerts.OVERDUE_OPEN:
        row = frame.sort(["超出承诺时限", "办件编号"], descending=[True, False], nulls_last=True).row(0, named=True)
        return (f"超期最长的是{row['实施部门']}办理的“{row['事项名称']}”（办件编号 {row['办件编号']}，"
                f"超出承诺时限 {row['超出承诺时限']:.0f} 天）")
    key = "事项名称" if alert_id == alerts.RED_CARDS else "实施部门"
    counts = frame.group_by(key).len().sort(["len", key], descending=[True, False], nulls_last=True).rows()
    what = "事项" if key == "事项名称" else "部门"
    unit = alerts.ALERTS[alert_id].unit
    most = counts[0][1]
    tied = [name for name, n in counts if n == most]
    if len(counts) == 1:  # one item only: nothing to be "most" among
        return f"涉及的{what}是“{tied[0]}”（{most} {unit}）"
    if len(tied) == 1:
        return f"最多的{what}是“{tied[0]}”（{most} {unit}）"
    if len(tied) == len(counts):  # no "most" where every one has the same number
        return f"涉及 {len(counts)} 个{what}，各 {most} {unit}"
    return f"“{'”“'.join(tied[:TOP_N])}”{'等 ' + str(len(tied)) + ' 个' + what if len(tied) > TOP_N else ''}并列最多（各 {most} {unit}）"


def uploads_problems(grid: pl.DataFrame, districts: Sequence[str] | None = None) -> pl.DataFrame:
    """区县, 数据类型, 月份, 状态 of the monthly kinds reported late (逾期报送) or not at all (缺失)."""
    frame = grid.filter(pl.col("kind").is_in(quality.MONTHLY_KINDS),
                        pl.col("status").is_in([quality.LATE, quality.MISSING]))
    if districts is not None:
        frame = frame.filter(pl.col("district").is_in(list(districts)))
    return frame.sort("district", "month", "kind").select(
        pl.col("district").alias("区县"), pl.col("kind_label").alias("数据类型"), pl.col("month").alias("月份"),
        pl.col("status").alias("状态"))


def pending_counts(inp: Inputs, districts: Sequence[str] | None = None) -> dict[str, int]:
    """district → its 差评 of the period still within their rectification period (整改期内: not yet due,
    in neither part of the two rectification rates), from the count beside 差评整改率."""
    ind = next(i for i in INDICATORS if i.aside is not None)
    long = aggregate(inp.comps, inp.period, by="district", districts=list(districts) if districts else None)
    rows = long.filter(pl.col("indicator") == ind.id, pl.col("aside") > 0)
    return {r["district"]: int(r["aside"]) for r in rows.iter_rows(named=True)}


def _pending_sentence(inp: Inputs) -> str | None:
    """The 整改期内 差评, said beside the 差评 not rectified in time so that nothing is hidden."""
    ind = next(i for i in INDICATORS if i.aside is not None)
    counts = pending_counts(inp)
    if not counts:
        return None
    by = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    listing = "、".join(f"{d} {n} {ind.aside.unit}" for d, n in by)  # type: ignore[union-attr]
    return (f"另有{ind.aside.label} {sum(counts.values())} {ind.aside.unit}（{listing}），"  # type: ignore[union-attr]
            f"其整改期限（评价后 {inp.settings.rules.rectify_days} 个工作日）晚于数据截止日，尚未到期，"
            "不计入差评整改率和差评按时整改率，也不列为未按时整改。")


def most_district_text(alert_id: str, by: list[tuple[str, int]], frame: pl.DataFrame) -> str:
    """After the per-district counts (``by``: most first): the district with most rows and its worst
    item when it stands alone among several; districts tied for the most named together; one district
    only is not "most" of anything — its item is named plainly."""
    alert = alerts.ALERTS[alert_id]
    worst_district, worst_n = by[0]
    tied = [d for d, c in by if c == worst_n]
    if len(by) == 1:
        return f"{_worst(alert_id, frame)}。"
    if len(tied) == 1:
        return f"{worst_district}最多（{worst_n} {alert.unit}），{_worst(alert_id, frame.filter(pl.col(_DISTRICT) == worst_district))}。"
    text = f"{'、'.join(tied)}并列最多（各 {worst_n} {alert.unit}）。" if len(tied) < len(by) else ""
    return text + f"全市{_worst(alert_id, frame)}。"


def _problems_section(inp: Inputs) -> list[Block]:
    frames = alert_frames(inp)
    blocks: list[Block] = []
    rows = []
    counts = {a: _counts_by_district(f) for a, f in frames.items()}
    for d in inp.districts:
        values = [counts[a].get(d, 0) for a in alerts.ALERTS]
        if any(values):
            rows.append([d, *[str(v) for v in values]])
    for n, (alert_id, alert) in enumerate(alerts.ALERTS.items()):
        frame = frames[alert_id]
        head = f"（{'一二三'[n]}）{alert.title}"
        blocks.append(Paragraph(head, level=2))
        if frame.height == 0:
            blocks.append(Paragraph(f"{inp.period.label}全市无{alert.title}。"))
            continue
        by = sorted(counts[alert_id].items(), key=lambda kv: (-kv[1], kv[0]))
        listing = "、".join(f"{d} {c} {alert.unit}" for d, c in by)
        text = f"{inp.period.label}全市共有{alert.title} {frame.height} {alert.unit}，其中{listing}。"
        blocks.append(Paragraph(text + most_district_text(alert_id, by, frame)))
    if pending := _pending_sentence(inp):
        blocks.append(Paragraph(pending))
    if rows:
        blocks.append(Table(["区县", *[a.title + f"（{a.unit}）" for a in alerts.ALERTS.values()]], rows,
                            f"表2　各区县预警情况（{inp.period.label}）"))
    blocks.append(Paragraph("（四）数据报送", level=2))
    late = uploads_problems(inp.grid)
    if late.height == 0:
        blocks.append(Paragraph(f"{inp.period.label}各区县办件明细、好差评和 12345 热线数据均按时报送。"))
    else:
        parts = []
        for (district,), part in late.group_by("区县", maintain_order=True):
            items = "、".join(f"{r['月份']}{r['数据类型']}{r['状态']}" for r in part.iter_rows(named=True))
            parts.append(f"{district}（{items}）")
        n_late = late.filter(pl.col("状态") == quality.LATE).height
        n_missing = late.height - n_late
        blocks.append(Paragraph(f"{inp.period.label}逾期报送 {n_late} 项、缺失 {n_missing} 项：" + "；".join(parts) + "。"))
    return blocks


# --- district report cards --------------------------------------------------------------------------


def build_reports(inp: Inputs, districts: Sequence[str] | None = None) -> list[DistrictReport]:
    """One report card per district (all configured districts when ``districts`` is None)."""
    wanted = list(districts) if districts else list(inp.districts)
    unknown = [d for d in wanted if d not in inp.districts]
    if unknown:
        raise ValueError(f"没有名为“{'、'.join(unknown)}”的区县")
    p = inp.period
    rank = {r["district"]: r for r in inp.rank().iter_rows(named=True)}
    ranked_n = sum(1 for r in rank.values() if r["ranked"])
    by_district = aggregate(inp.comps, p, by="district", districts=wanted)
    city = {r["indicator"]: r["value"] for r in aggregate(inp.comps, p, by="city").iter_rows(named=True)}
    frames = alert_frames(inp, wanted)
    late = uploads_problems(inp.grid, wanted)
    pending = pending_counts(inp, wanted)
    aside = next(i.aside for i in INDICATORS if i.aside is not None)
    out = []
    for d in wanted:
        r = rank.get(d, {})
        values = {x["indicator"]: x["value"] for x in by_district.filter(pl.col("district") == d).iter_rows(named=True)}
        if r.get("ranked"):
            head = (f"{d}{p.label}政务服务效能指数 {fmt_value(INDEX, r[INDEX])}，在 {ranked_n} 个参加排名的区县中"
                    f"列第 {r['rank']} 名（{rank_change_text(r)}）。")
        else:
            head = f"{d}{p.label}未参加排名（{r.get('unranked_reason') or NO_DATA_REASON}）。"
        rows = []
        for ind in INDICATORS:
            v = values.get(ind.id)
            rows.append([f"{ind.name}{ind.arrow}", fmt_value(ind.id, v), fmt_value(ind.id, city.get(ind.id)),
                         fmt_value(ind.id, inp.settings.indicators[ind.id].target), meets_target(ind.id, v, inp.settings)])
        met = sum(1 for row in rows if row[-1] == PASS)
        missed = sum(1 for row in rows if row[-1] == FAIL)
        summary = f"{len(INDICATORS)} 项指标中达到目标值的 {met} 项、未达到的 {missed} 项（表中标{FAIL}）。"
        alert_texts = []
        for alert_id, alert in alerts.ALERTS.items():
            n = frames[alert_id].filter(pl.col(_DISTRICT) == d).height if frames[alert_id].height else 0
            alert_texts.append(f"{alert.title} {n} {alert.unit}")
        if pending.get(d):
            alert_texts.append(f"另有{aside.label} {pending[d]} {aside.unit}（未到整改期限，不计入差评整改率）")
        own_late = late.filter(pl.col("区县") == d)
        upload_text = ("数据均按时报送" if own_late.height == 0 else
                       "数据报送：" + "、".join(f"{x['月份']}{x['数据类型']}{x['状态']}" for x in own_late.iter_rows(named=True)))
        blocks: list[Block] = [
            Paragraph(head + summary),
            Table(["指标", "本区县", CITY, "目标值", "达标"], rows),
            Paragraph("预警：" + "，".join(alert_texts) + f"；{upload_text}。"),
            *locator_figure(inp, d),
        ]
        out.append(DistrictReport(d, f"{d}政务服务效能评估报告单（{p.label}）", blocks))
    return out
