"""Composite index (政务服务效能指数), group scores and competition ranking.

Score ``s_i = clamp((v_i − f_i) / (t_i − f_i), 0, 1) × 100``; group scores and the index are
``Σ w_i s_i ÷ Σ w_i`` over the scores that exist. Weights, targets and floors come from
``metrics/scoring.toml`` (version-controlled defaults) overlaid with the changes an administrator
saved in the database (who, when, old, new).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import polars as pl
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Engine

from datasets.domain.periods import Period, month_index
from datasets.domain.schema import KINDS
from datasets.domain.vocabulary import Rules
from datasets.storage import store
from metrics.compute import aggregate, wide_values
from metrics.registry import GROUPS, INDICATORS

DEFAULTS_FILE = Path(__file__).resolve().parent / "scoring.toml"


class IndicatorTarget(BaseModel):
    weight: float = Field(ge=0)
    target: float
    floor: float

    @model_validator(mode="after")
    def _target_differs(self) -> IndicatorTarget:
        if self.target == self.floor:
            raise ValueError("目标值与底线值不能相同")
        return self


class ScoringSettings(BaseModel):
    indicators: dict[str, IndicatorTarget]
    rules: Rules = Rules()

    @model_validator(mode="after")
    def _complete(self) -> ScoringSettings:
        missing = [i.id for i in INDICATORS if i.id not in self.indicators]
        if missing:
            raise ValueError(f"缺少指标的权重设置：{'、'.join(missing)}")
        unknown = [k for k in self.indicators if k not in {i.id for i in INDICATORS}]
        if unknown:
            raise ValueError(f"未知的指标：{'、'.join(unknown)}")
        return self

    def to_rules(self) -> Rules:
        return self.rules

    def flat(self) -> dict[str, float]:
        """``indicators.<id>.<field>`` and ``rules.<field>`` → value (the keys of the change log)."""
        out: dict[str, float] = {}
        for ind_id, t in self.indicators.items():
            for name, value in t.model_dump().items():
                out[f"indicators.{ind_id}.{name}"] = value
        for name, value in self.rules.model_dump().items():
            out[f"rules.{name}"] = value
        return out

    @classmethod
    def from_flat(cls, flat: dict[str, float]) -> ScoringSettings:
        nested: dict = {"indicators": {}, "rules": {}}
        for key, value in flat.items():
            parts = key.split(".")
            if parts[0] == "indicators":
                nested["indicators"].setdefault(parts[1], {})[parts[2]] = value
            elif parts[0] == "rules":
                nested["rules"][parts[1]] = value
        return cls.model_validate(nested)


def default_settings(path: Path = DEFAULTS_FILE) -> ScoringSettings:
    with path.open("rb") as fh:
        return ScoringSettings.model_validate(tomllib.load(fh))


def load_settings(engine: Engine | None = None, path: Path = DEFAULTS_FILE) -> ScoringSettings:
    """Defaults from the file, overlaid with the newest saved change of each key."""
    settings = default_settings(path)
    if engine is None:
        return settings
    rows = store.settings_values(engine)
    if not rows:
        return settings
    flat = settings.flat()
    for key, new_value in rows:
        if key in flat and new_value is not None:
            flat[key] = json.loads(new_value)
    return ScoringSettings.from_flat(flat)


def save_settings(engine: Engine, new: ScoringSettings, user_name: str) -> list[tuple[str, float, float]]:
    """Record every changed value (who, when, old, new); returns the changes."""
    old = load_settings(engine).flat()
    changes = [(k, old.get(k), v) for k, v in new.flat().items() if old.get(k) != v]
    if not changes:
        return []
    store.record_settings(engine, user_name, changes)
    return changes


def settings_history(engine: Engine) -> pl.DataFrame:
    return store.settings_history(engine)


# --- scores -------------------------------------------------------------------------------------


def score_expr(value: pl.Expr, target: float, floor: float) -> pl.Expr:
    return ((value - floor) / (target - floor)).clip(0.0, 1.0) * 100.0


def _weighted_mean(pairs: list[tuple[pl.Expr, float]]) -> pl.Expr:
    """Σ w s ÷ Σ w over the non-null scores; null when none exists (or all weights are 0)."""
    num = pl.sum_horizontal([(s * w).fill_null(0.0) for s, w in pairs])
    den = pl.sum_horizontal([pl.when(s.is_not_null()).then(pl.lit(w)).otherwise(0.0) for s, w in pairs])
    return pl.when(den > 0).then(num / den)


def score_table(wide: pl.DataFrame, settings: ScoringSettings, keys: list[str]) -> pl.DataFrame:
    """Add ``score_<id>``, ``group_<A..E>`` and ``index`` columns to a wide value table."""
    scores = [
        score_expr(pl.col(i.id), settings.indicators[i.id].target, settings.indicators[i.id].floor).alias(
            f"score_{i.id}"
        )
        for i in INDICATORS
    ]
    out = wide.with_columns(scores)
    weight = {i.id: settings.indicators[i.id].weight for i in INDICATORS}
    groups = [
        _weighted_mean([(pl.col(f"score_{i.id}"), weight[i.id]) for i in INDICATORS if i.group == g]).alias(
            f"group_{g}"
        )
        for g in GROUPS
    ]
    index = _weighted_mean([(pl.col(f"score_{i.id}"), weight[i.id]) for i in INDICATORS]).alias("index")
    return out.with_columns(*groups, index)


def competition_rank(index: pl.Expr) -> pl.Expr:
    """1, 1, 3 ranking by index (higher first); rounding keeps float noise from splitting ties."""
    return index.round(6).rank(method="min", descending=True).cast(pl.Int64)


def ranking(
    comps: pl.DataFrame,
    period: Period,
    settings: ScoringSettings,
    inventory: pl.DataFrame,
    districts: list[str] | None = None,
) -> pl.DataFrame:
    """Every district of the scope for a period: the ranked ones first, then the 未排名 ones.

    ``inventory``: the active batches (store.active_batches: district, kind, period), which say what
    each district reported; a district is ranked only when it has the data the index needs
    (data_gaps). ``districts``: the scope (default: every district in the components or the
    inventory). Columns: district, ranked, unranked_reason, rank, prev_rank, rank_change (positive =
    moved up; only for districts ranked in both periods), index, group_A..E, then per indicator:
    <id> (value), <id>__num, <id>__den, <id>__aside (only where the registry declares a count beside
    the value: 整改期内差评), score_<id>.
    """
    scope = districts if districts is not None else sorted(
        set(comps["district"].unique().to_list()) | set(inventory["district"].unique().to_list()))
    current = _ranked(comps, period, settings, inventory, scope)
    previous = _ranked(comps, period.previous(), settings, inventory, scope).select(
        "district", pl.col("rank").alias("prev_rank")
    )
    out = current.join(previous, on="district", how="left").with_columns(
        (pl.col("prev_rank") - pl.col("rank")).alias("rank_change")
    )
    lead = ["district", "ranked", "unranked_reason", "rank", "prev_rank", "rank_change", "index",
            *[f"group_{g}" for g in GROUPS]]
    per_ind = [c for i in INDICATORS for c in (i.id, f"{i.id}__num", f"{i.id}__den",
                                                *([f"{i.id}__aside"] if i.aside else []), f"score_{i.id}")]
    return out.select(*lead, *per_ind).sort(["ranked", "rank", "district"], descending=[True, False, False],
                                            nulls_last=True)


def data_gaps(
    inventory: pl.DataFrame, period: Period, rules: Rules, districts: list[str]
) -> dict[str, list[str]]:
    """Why each district may not be ranked for the period (empty list: it may), in Chinese.

    Needs, as the rules say: a 办件明细 and a 好差评 export for every month of the period, and a 事项清单
    in force in the period's last month that is no older than ``catalog_max_age_months``. A catalog
    stays in force after the store's last month, as in the indicators (compute.stock_month).
    """
    have = set(inventory.select("district", "kind", "period").iter_rows())
    catalogs: dict[str, str] = {}
    for district, kind, month in have:
        if kind == "items" and month <= period.last and month > catalogs.get(district, ""):
            catalogs[district] = month
    needed = [k for k, on in (("cases", rules.rank_needs_cases), ("evaluations", rules.rank_needs_evaluations)) if on]
    gaps: dict[str, list[str]] = {}
    for district in districts:
        reasons = [f"缺少 {month} {KINDS[kind].label}" for kind in needed for month in period.months
                   if (district, kind, month) not in have]
        catalog = catalogs.get(district)
        if catalog is None:
            reasons.append("无事项清单")
        elif month_index(period.last) - month_index(catalog) > rules.catalog_max_age_months:
            reasons.append(f"事项清单为 {catalog} 版，已超过 {rules.catalog_max_age_months} 个月")
        gaps[district] = reasons
    return gaps


def _ranked(
    comps: pl.DataFrame, period: Period, settings: ScoringSettings, inventory: pl.DataFrame, scope: list[str]
) -> pl.DataFrame:
    """Scores of the scope's districts for one period, ranked among those with complete data."""
    scored = _scored(comps, period, settings, scope)
    gaps = data_gaps(inventory, period, settings.rules, scope)
    reasons = pl.DataFrame(
        {"district": list(gaps), "_gaps": ["；".join(r) or None for r in gaps.values()]},
        schema={"district": pl.String, "_gaps": pl.String},
    )
    scored = scored.join(reasons, on="district", how="left").with_columns(
        pl.coalesce(
            "_gaps", pl.when(pl.col("index").is_null()).then(pl.lit("无可计算的指标"))
        ).alias("unranked_reason")
    ).with_columns(pl.col("unranked_reason").is_null().alias("ranked"))
    return scored.with_columns(competition_rank(pl.when(pl.col("ranked")).then(pl.col("index"))).alias("rank"))


def _scored(comps: pl.DataFrame, period: Period, settings: ScoringSettings, scope: list[str]) -> pl.DataFrame:
    long = aggregate(comps, period, by="district", districts=scope)
    wide = wide_values(long)
    parts = long.pivot(on="indicator", index="district", values=["numerator", "denominator", "aside"])
    rename = {}
    for col in parts.columns:
        if col.startswith("numerator_"):
            rename[col] = col.removeprefix("numerator_") + "__num"
        elif col.startswith("denominator_"):
            rename[col] = col.removeprefix("denominator_") + "__den"
        elif col.startswith("aside_"):  # the count beside the value (registry.Aside)
            rename[col] = col.removeprefix("aside_") + "__aside"
    parts = parts.rename(rename)
    for i in INDICATORS:
        for suffix in ("__num", "__den", *(("__aside",) if i.aside else ())):
            if f"{i.id}{suffix}" not in parts.columns:
                parts = parts.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"{i.id}{suffix}"))
    return score_table(wide, settings, ["district"]).join(parts, on="district", how="left")
