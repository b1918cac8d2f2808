"""The overview (总览): the index and key indicators with 环比 and 同比, the index trend, the ranking
brief and the biggest movers.

Every value is a ratio of sums from ``metrics.compute.aggregate``; every label comes from the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from datasets.domain.periods import Period, month_range, shift_month
from metrics.compute import CITY, aggregate, wide_values
from metrics.formatting import INDEX, INDEX_NAME, aside_text, direction, fmt_delta, fmt_value, scope, shown_column
from metrics.registry import BY_ID, GROUPS, INDICATORS
from metrics.scoring import ScoringSettings, score_table
from metrics.units import NULL_TEXT

# Shown on the overview and preselected in the sidebar: one or two per group.
KEY_INDICATORS: tuple[str, ...] = (
    "online_case_rate",
    "full_online_rate",
    "on_time_rate",
    "avg_handling_days",
    "red_card_rate",
    "good_rate",
)


def pooled(comps: pl.DataFrame, period: Period, districts: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per indicator for the selected districts taken together (all when none)."""
    return aggregate(comps, period, by="city", districts=scope(districts))


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
    aside: str | None = None  # the count shown beside the value (formatting.aside_text), e.g. 整改期内差评

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
                help=f"{ind.formula}" + (f"；{ind.aside.label}不计入分子、分母" if ind.aside else ""),
                aside=aside_text(ind_id, part.get("aside")),
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
        wide_values(aggregate(comps, span, by="month", districts=scope(districts)), keys),
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
        shown_column(pl.col(INDEX)).alias(INDEX_NAME),
        pl.when(pl.col("ranked")).then(pl.lit("")).otherwise(pl.lit("未排名：") + pl.col("unranked_reason"))
        .alias("说明"),
    )


def unranked_notes(rank: pl.DataFrame) -> list[str]:
    """One line per district of ranking() that is not ranked: "区县：原因"."""
    return [f"{r['district']}：{r['unranked_reason']}" for r in rank.filter(~pl.col("ranked")).iter_rows(named=True)]


def movers(current: pl.DataFrame, previous: pl.DataFrame, n: int = 5, *, rounded: bool = True) -> pl.DataFrame:
    """Districts whose index changed most against the previous period (largest absolute change first).

    ``current`` and ``previous``: ranking() of the period and of the previous period. The change is
    worked out from the unrounded indices; ``rounded`` (the page's table) rounds each number once as
    it is shown, else the values stay unrounded for a caller that formats them (the bulletin).
    """
    before = previous.select("district", pl.col(INDEX).alias("prev_index"))
    out = current.select("district", "rank", "rank_change", INDEX).join(before, on="district", how="left")
    out = out.with_columns((pl.col(INDEX) - pl.col("prev_index")).alias("change")).filter(
        pl.col("change").is_not_null()
    )
    out = out.sort([pl.col("change").abs(), "district"], descending=[True, False])
    show = shown_column if rounded else (lambda e: e)
    return out.head(n).select(
        pl.col("district").alias("区县"),
        show(pl.col(INDEX)).alias("本期指数"),
        show(pl.col("prev_index")).alias("上期指数"),
        show(pl.col("change")).alias("指数变化"),
        pl.col("rank").alias("排名"),
        pl.col("rank_change").alias("排名变化"),
    )


# Short headers (the page's caption explains them) so that a phone shows the 强项 and 弱项 too.
STRENGTH_COLUMNS = ("区县", "排名", "强项分组", "弱项分组", "最弱指标")


def _pick(scores: dict[str, float], highest: bool) -> str:
    """The best (or worst) of named scores as "名称 得分"; scores equal as shown (one decimal) are a tie,
    written "并列：甲、乙 得分" so that no single group is claimed where several share the score."""
    shown = {name: round(score, 1) for name, score in scores.items()}
    extreme = max(shown.values()) if highest else min(shown.values())
    names = [name for name, score in shown.items() if score == extreme]
    if len(names) == 1:
        return f"{names[0]} {extreme:.1f}"
    listed = "、".join(names[:3]) + (f" 等 {len(names)} 项" if len(names) > 3 else "")
    return f"并列：{listed} {extreme:.1f}"


def strengths(rank: pl.DataFrame) -> pl.DataFrame:
    """Why each district ranks where it does: its strongest and weakest group (by group score) and its
    weakest indicator (by score), each with its score, from ranking() output in its order.

    Groups and indicators without a score are left out; with fewer than two groups scored there is
    no strongest or weakest ("—"); when every group scores the same the strongest and the weakest read
    "各分组持平".
    """
    rows = []
    for r in rank.iter_rows(named=True):
        groups = {GROUPS[g]: r[f"group_{g}"] for g in GROUPS if r.get(f"group_{g}") is not None}
        indicators = {i.name: r[f"score_{i.id}"] for i in INDICATORS if r.get(f"score_{i.id}") is not None}
        if len(groups) < 2:
            strong = weak = NULL_TEXT
        elif len({round(v, 1) for v in groups.values()}) == 1:
            strong = weak = f"各分组持平 {round(next(iter(groups.values())), 1):.1f}"
        else:
            strong, weak = _pick(groups, True), _pick(groups, False)
        rows.append((r["district"], r["rank"], strong, weak, _pick(indicators, False) if indicators else NULL_TEXT))
    schema = {name: pl.String for name in STRENGTH_COLUMNS} | {"排名": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")
