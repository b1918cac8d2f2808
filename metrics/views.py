"""View models: the numbers each dashboard page lays out.

Pages call these functions and only arrange the results. Every value is a ratio of sums from
``metrics.compute.aggregate``; every label comes from the registry, so nothing here repeats an
indicator's name or formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from pydantic import ValidationError

from datasets.periods import Period, month_range, shift_month
from datasets.vocabulary import Rules, readings
from metrics.compute import CITY, aggregate, wide_values
from metrics.registry import BY_ID, DAYS, GROUPS, INDICATORS, PERCENT, POINTS, UP
from metrics.scoring import ScoringSettings, score_table

INDEX = "index"
INDEX_NAME = "效能指数"
NULL_TEXT = "—"

# Shown on the overview and preselected in the sidebar: one or two per group.
KEY_INDICATORS: tuple[str, ...] = (
    "online_case_rate",
    "full_online_rate",
    "on_time_rate",
    "avg_handling_days",
    "red_card_rate",
    "good_rate",
)

# Rule → (Chinese title, description): declared once on the rules model.
RULE_LABELS: dict[str, tuple[str, str]] = Rules.titles()

FIELD_LABELS = {"weight": "权重", "target": "目标值", "floor": "底线值"}

PERIOD_A, PERIOD_B = "本期", "对比期"


# --- periods ---------------------------------------------------------------------------------------

MONTH, QUARTER, YEAR, CUSTOM = "月", "季", "年", "自定义"
PERIOD_TYPES: tuple[str, ...] = (MONTH, QUARTER, YEAR, CUSTOM)


def period_type(period: Period) -> str:
    """月, 季, 年 or 自定义, from the shape of the period."""
    key = period.key
    if period.length == 1:
        return MONTH
    if "-Q" in key:
        return QUARTER
    if "-" not in key:
        return YEAR
    return CUSTOM


def period_choices(months: Sequence[str]) -> dict[str, list[str]]:
    """Period keys with data, newest first: months, quarters (YYYY-Qn) and years (YYYY)."""
    ms = sorted(set(months), reverse=True)
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}" for m in ms}, reverse=True)
    years = sorted({m[:4] for m in ms}, reverse=True)
    return {MONTH: ms, QUARTER: quarters, YEAR: years}


def period_has_data(period: Period, months: Sequence[str]) -> bool:
    return any(period.first <= m <= period.last for m in months)


# --- formatting -----------------------------------------------------------------------------------


def fmt_value(indicator_id: str, value: float | None) -> str:
    """An indicator value as users read it: 85.30%, 3.21 工作日, 92.1 分; null as —."""
    if value is None:
        return NULL_TEXT
    if indicator_id == INDEX:
        return f"{value:.1f}"
    unit = BY_ID[indicator_id].unit
    if unit == PERCENT:
        return f"{value * 100:.2f}%"
    if unit == DAYS:
        return f"{value:.2f} {DAYS}"
    return f"{value:.1f} {POINTS}"


def fmt_delta(indicator_id: str, delta: float | None) -> str | None:
    """A change with its sign (ASCII minus, so that widgets colour it): +1.20 个百分点; no sign when it
    rounds to zero."""
    if delta is None:
        return None
    if indicator_id == INDEX:
        text = f"{delta:+.1f}"
    elif BY_ID[indicator_id].unit == PERCENT:
        text = f"{delta * 100:+.2f} 个百分点"
    elif BY_ID[indicator_id].unit == DAYS:
        text = f"{delta:+.2f} {DAYS}"
    else:
        text = f"{delta:+.1f} {POINTS}"
    if not any(ch in "123456789" for ch in text.split(" ")[0]):
        return text.lstrip("+-")
    return text


def fmt_setting(indicator_id: str, value: float) -> str:
    """A target or floor in the indicator's unit."""
    return fmt_value(indicator_id, value)


def direction(indicator_id: str) -> int:
    return UP if indicator_id == INDEX else BY_ID[indicator_id].direction


def is_good(indicator_id: str, delta: float | None) -> bool | None:
    """Whether a change is an improvement (↓ indicators improve when they fall); None when unknown or flat
    at the precision shown (0.00 个百分点, 0.0 分)."""
    if delta is None:
        return None
    shown = (fmt_delta(indicator_id, delta) or "").split(" ")[0]
    if not any(ch in "123456789" for ch in shown):
        return None
    return (delta > 0) == (direction(indicator_id) == UP)


def scope_label(districts: Sequence[str] | None, all_districts: Sequence[str]) -> str:
    """全市, the district's name, or 所选 n 个区县."""
    if not districts or set(districts) >= set(all_districts):
        return CITY
    if len(districts) == 1:
        return districts[0]
    return f"所选 {len(districts)} 个区县"


def _scope(districts: Sequence[str] | None) -> list[str] | None:
    return list(districts) if districts else None


# --- overview -------------------------------------------------------------------------------------


def pooled(comps: pl.DataFrame, period: Period, districts: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per indicator for the selected districts taken together (all when none)."""
    return aggregate(comps, period, by="city", districts=_scope(districts))


def pooled_scores(
    comps: pl.DataFrame, period: Period, settings: ScoringSettings, districts: Sequence[str] | None = None
) -> dict[str, float | None]:
    """Values, scores, group scores and the index of the pooled selection (one flat dict)."""
    return _pooled_scores(comps, [period], settings, districts)[0]


def _pooled_scores(
    comps: pl.DataFrame, periods: Sequence[Period], settings: ScoringSettings, districts: Sequence[str] | None
) -> list[dict[str, float | None]]:
    """pooled_scores for several periods with one scoring pass."""
    schema = {"district": pl.String, **{i.id: pl.Float64 for i in INDICATORS}}
    wides = []
    for n, period in enumerate(periods):
        wide = wide_values(pooled(comps, period, districts))
        if wide.height == 0:
            wide = pl.DataFrame({"district": [CITY]}, schema={"district": pl.String}).with_columns(
                pl.lit(None, dtype=pl.Float64).alias(i.id) for i in INDICATORS
            )
        wides.append(wide.select(pl.lit(str(n)).alias("district"), *[pl.col(i.id) for i in INDICATORS]).cast(schema))
    scored = score_table(pl.concat(wides), settings, ["district"])
    return [scored.row(n, named=True) for n in range(len(periods))]


@dataclass(frozen=True)
class Card:
    """One metric card: a value with its change against the previous period and a year earlier."""

    key: str  # INDEX or an indicator id
    label: str
    value: float | None
    text: str
    previous: float | None
    year_ago: float | None
    numerator: float | None = None
    denominator: float | None = None
    help: str = ""

    @property
    def mom(self) -> float | None:
        return None if self.value is None or self.previous is None else self.value - self.previous

    @property
    def yoy(self) -> float | None:
        return None if self.value is None or self.year_ago is None else self.value - self.year_ago

    @property
    def mom_text(self) -> str | None:
        return fmt_delta(self.key, self.mom)

    @property
    def yoy_text(self) -> str | None:
        return fmt_delta(self.key, self.yoy)

    @property
    def direction(self) -> int:
        return direction(self.key)


def overview_cards(
    comps: pl.DataFrame,
    period: Period,
    settings: ScoringSettings,
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
) -> list[Card]:
    """The index card, then one card per indicator, each with 环比 and 同比 values."""
    now, prev, year = _pooled_scores(comps, [period, period.previous(), period.year_ago()], settings, districts)
    parts = {r["indicator"]: r for r in pooled(comps, period, districts).iter_rows(named=True)}
    cards = [
        Card(
            INDEX,
            INDEX_NAME,
            now[INDEX],
            fmt_value(INDEX, now[INDEX]),
            prev[INDEX],
            year[INDEX],
            help="各指标得分按权重的加权平均（0–100），详见“指标说明”",
        )
    ]
    for ind_id in indicator_ids:
        ind = BY_ID[ind_id]
        part = parts.get(ind_id, {})
        cards.append(
            Card(
                ind_id,
                f"{ind.name} {ind.arrow}",
                now[ind_id],
                fmt_value(ind_id, now[ind_id]),
                prev[ind_id],
                year[ind_id],
                part.get("numerator"),
                part.get("denominator"),
                help=f"{ind.formula}",
            )
        )
    return cards


def trend_months(period: Period, months_with_data: Sequence[str], length: int = 12) -> list[str]:
    """The months of a trend ending with the period: at least ``length`` months, within the data."""
    first = min(shift_month(period.last, -(length - 1)), period.first)
    if months_with_data:
        first = max(first, months_with_data[0])
    return month_range(first, period.last)


def index_trend(
    comps: pl.DataFrame, settings: ScoringSettings, months: Sequence[str], districts: Sequence[str] | None = None
) -> pl.DataFrame:
    """district, month, index per month for each district and for the city (全市)."""
    keys = ["district", "month"]
    if not months:
        return pl.DataFrame(schema={"district": pl.String, "month": pl.String, "index": pl.Float64})
    span = Period(months[0], months[-1])
    wides = [
        wide_values(aggregate(comps, span, by="month", districts=_scope(districts)), keys),
        wide_values(aggregate(comps, span, by="city_month"), keys),
    ]
    return score_table(pl.concat(wides), settings, keys).select(*keys, INDEX).sort(keys)


def ranking_brief(rank: pl.DataFrame) -> pl.DataFrame:
    """区县, 排名, 上期排名, 排名变化, 效能指数, 说明 from ranking() (说明: why a district is not ranked)."""
    return rank.select(
        pl.col("district").alias("区县"),
        pl.col("rank").alias("排名"),
        pl.col("prev_rank").alias("上期排名"),
        pl.col("rank_change").alias("排名变化"),
        pl.col(INDEX).round(2).alias(INDEX_NAME),
        pl.when(pl.col("ranked")).then(pl.lit("")).otherwise(pl.lit("未排名：") + pl.col("unranked_reason"))
        .alias("说明"),
    )


def unranked_notes(rank: pl.DataFrame) -> list[str]:
    """One line per district of ranking() that is not ranked: "区县：原因"."""
    return [f"{r['district']}：{r['unranked_reason']}" for r in rank.filter(~pl.col("ranked")).iter_rows(named=True)]


def movers(current: pl.DataFrame, previous: pl.DataFrame, n: int = 5) -> pl.DataFrame:
    """Districts whose index changed most against the previous period (largest absolute change first).

    ``current`` and ``previous``: ranking() of the period and of the previous period.
    """
    before = previous.select("district", pl.col(INDEX).alias("prev_index"))
    out = current.select("district", "rank", "rank_change", INDEX).join(before, on="district", how="left")
    out = out.with_columns((pl.col(INDEX) - pl.col("prev_index")).alias("change")).filter(
        pl.col("change").is_not_null()
    )
    out = out.sort([pl.col("change").abs(), "district"], descending=[True, False])
    return out.head(n).select(
        pl.col("district").alias("区县"),
        pl.col(INDEX).round(1).alias("本期指数"),
        pl.col("prev_index").round(1).alias("上期指数"),
        pl.col("change").round(1).alias("指数变化"),
        pl.col("rank").alias("排名"),
        pl.col("rank_change").alias("排名变化"),
    )


# --- district comparison --------------------------------------------------------------------------


def district_values(
    comps: pl.DataFrame,
    period: Period,
    settings: ScoringSettings,
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
) -> pl.DataFrame:
    """Long: district, indicator, name, value, numerator, denominator, value_text, target, city.

    ``city`` is the 全市 value of the indicator, for the reference line.
    """
    by_district = aggregate(comps, period, by="district", districts=_scope(districts))
    city = aggregate(comps, period, by="city").select("indicator", pl.col("value").alias("city"))
    meta = indicator_meta(settings).select("indicator", "name", "target", "order")
    out = (
        by_district.filter(pl.col("indicator").is_in(list(indicator_ids)))
        .join(city, on="indicator", how="left")
        .join(meta, on="indicator", how="left")
    )
    return out.with_columns(_value_text("value")).sort(["order", "district"]).drop("order")


def indicator_meta(settings: ScoringSettings) -> pl.DataFrame:
    """indicator, name, unit, arrow, group, target, floor, weight, order (registry order)."""
    return pl.DataFrame(
        {
            "indicator": [i.id for i in INDICATORS],
            "name": [i.name for i in INDICATORS],
            "unit": [i.unit for i in INDICATORS],
            "arrow": [i.arrow for i in INDICATORS],
            "group": [i.group for i in INDICATORS],
            "target": [settings.indicators[i.id].target for i in INDICATORS],
            "floor": [settings.indicators[i.id].floor for i in INDICATORS],
            "weight": [settings.indicators[i.id].weight for i in INDICATORS],
            "order": list(range(len(INDICATORS))),
        }
    )


def _value_text(column: str, alias: str = "value_text") -> pl.Expr:
    """fmt_value as an expression over ``indicator`` and a value column (small tables only)."""
    return (
        pl.struct("indicator", column)
        .map_elements(lambda r: fmt_value(r["indicator"], r[column]), return_dtype=pl.String)
        .fill_null(NULL_TEXT)
        .alias(alias)
    )


def compare_table(values: pl.DataFrame) -> pl.DataFrame:
    """district_values() as a Chinese table: 区县, 指标, 实际值, 分子, 分母, 目标值, 全市值 (text values)."""
    rows = [
        {
            "区县": r["district"],
            "指标": f"{r['name']} {BY_ID[r['indicator']].arrow}",
            "实际值": r["value_text"],
            "分子": r["numerator"],
            "分母": r["denominator"],
            "目标值": fmt_value(r["indicator"], r["target"]),
            f"{CITY}值": fmt_value(r["indicator"], r["city"]),
        }
        for r in values.iter_rows(named=True)
    ]
    return pl.DataFrame(rows, schema={"区县": pl.String, "指标": pl.String, "实际值": pl.String, "分子": pl.Float64,
                                      "分母": pl.Float64, "目标值": pl.String, f"{CITY}值": pl.String})


def score_long(
    rank: pl.DataFrame, indicator_ids: Sequence[str] | None = None, districts: Sequence[str] | None = None
) -> pl.DataFrame:
    """district, indicator, name, group, score, value, numerator, denominator, value_text from ranking()."""
    ids = list(indicator_ids) if indicator_ids else [i.id for i in INDICATORS]
    if districts:
        rank = rank.filter(pl.col("district").is_in(list(districts)))
    frames = [
        rank.select(
            "district",
            pl.lit(i).alias("indicator"),
            pl.lit(BY_ID[i].name).alias("name"),
            pl.lit(BY_ID[i].group).alias("group"),
            pl.col(f"score_{i}").alias("score"),
            pl.col(i).alias("value"),
            pl.col(f"{i}__num").alias("numerator"),
            pl.col(f"{i}__den").alias("denominator"),
        )
        for i in ids
    ]
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).with_columns(_value_text("value"))


# --- period comparison ----------------------------------------------------------------------------


def period_comparison(
    comps: pl.DataFrame,
    a: Period,
    b: Period,
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
    include_city: bool = True,
) -> pl.DataFrame:
    """Long: district, indicator, name, period, period_label, value, numerator, denominator, value_text.

    ``period`` is 本期 (a) or 对比期 (b); the city (全市) is added when ``include_city``.
    """
    frames = []
    for tag, p in ((PERIOD_A, a), (PERIOD_B, b)):
        parts = [aggregate(comps, p, by="district", districts=_scope(districts))]
        if include_city:
            parts.append(aggregate(comps, p, by="city"))
        frames.append(
            pl.concat(parts).with_columns(pl.lit(tag).alias("period"), pl.lit(p.label).alias("period_label"))
        )
    names = pl.DataFrame({"indicator": [i.id for i in INDICATORS], "name": [i.name for i in INDICATORS],
                          "order": list(range(len(INDICATORS)))})
    return (
        pl.concat(frames)
        .filter(pl.col("indicator").is_in(list(indicator_ids)))
        .join(names, on="indicator")
        .with_columns(_value_text("value"))
        .sort(["order", "district", "period"])
        .drop("order")
    )


def period_change_table(comparison: pl.DataFrame) -> pl.DataFrame:
    """One row per district × indicator: both periods' values (text), the change, numerators, denominators."""
    if comparison.height == 0:
        return pl.DataFrame(schema={"区县": pl.String, "指标": pl.String})
    a = comparison.filter(pl.col("period") == PERIOD_A)
    b = comparison.filter(pl.col("period") == PERIOD_B)
    label_a = a["period_label"][0] if a.height else PERIOD_A
    label_b = b["period_label"][0] if b.height else PERIOD_B
    keys = ["district", "indicator", "name"]
    joined = a.select(*keys, "value", "numerator", "denominator", "value_text").join(
        b.select(*keys, "value", "numerator", "denominator", "value_text"), on=keys, how="full",
        coalesce=True, suffix="_b",
    )
    order = {i.id: n for n, i in enumerate(INDICATORS)}
    # Within each indicator, the biggest changes first (no change, then no data, last); the city last.
    joined = joined.with_columns(
        pl.col("indicator").replace_strict(order, return_dtype=pl.Int64).alias("_order"),
        (pl.col("district") == CITY).alias("_city"),
        (pl.col("value") - pl.col("value_b")).abs().fill_null(-1.0).alias("_size"),
    ).sort(["_order", "_city", "_size", "district"], descending=[False, False, True, False])
    rows = []
    for r in joined.iter_rows(named=True):
        delta = None if r["value"] is None or r["value_b"] is None else r["value"] - r["value_b"]
        good = is_good(r["indicator"], delta)
        arrow = "" if delta is None or good is None else ("▲ " if delta > 0 else "▼ ")
        rows.append(
            {
                "区县": r["district"],
                "指标": f"{r['name']} {BY_ID[r['indicator']].arrow}",
                f"{PERIOD_A}（{label_a}）": r["value_text"] or NULL_TEXT,
                f"{PERIOD_B}（{label_b}）": r["value_text_b"] or NULL_TEXT,
                "变化": arrow + (fmt_delta(r["indicator"], delta) or NULL_TEXT),
                "评价": (NULL_TEXT if delta is None else "持平") if good is None else ("改善" if good else "退步"),
                f"{PERIOD_A}分子": r["numerator"],
                f"{PERIOD_A}分母": r["denominator"],
                f"{PERIOD_B}分子": r["numerator_b"],
                f"{PERIOD_B}分母": r["denominator_b"],
            }
        )
    return pl.DataFrame(rows)


def monthly_values(
    comps: pl.DataFrame,
    months: Sequence[str],
    districts: Sequence[str] | None,
    indicator_ids: Sequence[str],
    include_city: bool = True,
) -> pl.DataFrame:
    """Long: district, month, indicator, name, value, numerator, denominator, value_text (trends)."""
    schema = {"district": pl.String, "month": pl.String, "indicator": pl.String, "name": pl.String,
              "numerator": pl.Float64, "denominator": pl.Float64, "value": pl.Float64, "value_text": pl.String}
    if not months:
        return pl.DataFrame(schema=schema)
    span = Period(months[0], months[-1])
    parts = [aggregate(comps, span, by="month", districts=_scope(districts))]
    if include_city:
        parts.append(aggregate(comps, span, by="city_month"))
    names = pl.DataFrame({"indicator": [i.id for i in INDICATORS], "name": [i.name for i in INDICATORS]})
    return (
        pl.concat(parts)
        .filter(pl.col("indicator").is_in(list(indicator_ids)))
        .join(names, on="indicator")
        .with_columns(_value_text("value"))
        .select(list(schema))
        .sort(["indicator", "district", "month"])
    )


# --- indicator reference and settings -------------------------------------------------------------


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
                "单位": ind.unit,
                "公式": ind.formula,
                "分子": ind.numerator_label,
                "分母": ind.denominator_label,
                "口径说明": ind.describe(settings.rules),
                "数据来源": ind.data_source,
                "权重": t.weight,
                "目标值": fmt_setting(ind.id, t.target),
                "底线值": fmt_setting(ind.id, t.floor),
            }
        )
    return pl.DataFrame(rows)


def readings_table(settings: ScoringSettings) -> pl.DataFrame:
    """Every counting rule the product chose (datasets.vocabulary.readings), with the settings in force."""
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


def _display_scale(indicator_id: str) -> float:
    """Percent indicators are edited as percentages (95 rather than 0.95)."""
    return 100.0 if BY_ID[indicator_id].unit == PERCENT else 1.0


def settings_frame(settings: ScoringSettings) -> pl.DataFrame:
    """Editable table: one row per indicator; percentages shown as numbers of percent."""
    rows = []
    for ind in INDICATORS:
        t = settings.indicators[ind.id]
        k = _display_scale(ind.id)
        rows.append(
            {
                "编号": ind.id,
                "分组": f"{ind.group} {ind.group_name}",
                "指标": ind.name,
                "方向": ind.arrow,
                "单位": ind.unit,
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
        k = _display_scale(ind_id)
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
        return fmt_setting(parts[1], float(value))  # type: ignore[arg-type]
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
    import json

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


def percent_columns(columns: Sequence[str]) -> list[str]:
    """Columns of a Chinese table that hold a percent indicator's value (named exactly as the indicator)."""
    names = {i.name for i in INDICATORS if i.unit == PERCENT}
    return [c for c in columns if c in names]


def districts_with_data(comps: pl.DataFrame, period: Period, districts: Sequence[str]) -> list[str]:
    """The districts (in the order given) with any component in the period: where a drill-down can start."""
    first, last = period.first, period.last
    present = set(
        comps.filter(pl.col("month").is_between(pl.lit(first), pl.lit(last)), pl.col("district").is_in(list(districts)))
        ["district"].unique().to_list()
    )
    return [d for d in districts if d in present]
