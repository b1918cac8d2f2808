"""Registry completeness: every spec indicator exists, once, with every declared attribute."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from metrics import registry
from metrics.scoring import default_settings

# The indicator ids of the specification (groups A–E), written out independently of the registry.
SPEC_IDS = {
    "A": ["online_available_rate", "depth_3plus_rate", "full_online_rate", "online_case_rate"],
    "B": ["commitment_compression", "statutory_speedup", "promise_speedup", "on_time_rate", "card_rate",
          "red_card_rate", "avg_handling_days", "completion_rate", "instant_item_rate"],
    "C": ["zero_visit_rate", "at_most_once_rate", "zero_material_rate", "hall_entry_rate"],
    "D": ["eval_item_coverage", "active_eval_rate", "actual_eval_rate", "good_rate", "bad_rate",
          "satisfaction_score", "bad_rectified_rate", "bad_rectified_on_time_rate"],
    "E": ["hotline_completion_rate", "hotline_on_time_rate", "hotline_satisfaction_rate"],
}
DOWN = {"card_rate", "red_card_rate", "avg_handling_days", "bad_rate"}


def test_every_spec_id_is_declared_once_in_its_group():
    ids = [i.id for i in registry.INDICATORS]
    assert len(ids) == len(set(ids))
    assert {g: [i.id for i in inds] for g, inds in registry.by_group().items()} == SPEC_IDS


@pytest.mark.parametrize("ind", registry.INDICATORS, ids=lambda i: i.id)
def test_every_attribute_is_present(ind):
    for f in dataclasses.fields(ind):
        value = getattr(ind, f.name)
        if f.name == "denominator_source":
            assert value is None or value in registry.SOURCES
            continue
        if f.name == "aside":  # optional; when present, complete
            assert value is None or (value.label and value.unit and value.description), f"{ind.id}.aside"
            continue
        if isinstance(value, pl.Expr):
            continue
        assert value is not None and value != "", f"{ind.id}.{f.name} is empty"
    assert isinstance(ind.numerator, pl.Expr) and isinstance(ind.denominator, pl.Expr)
    assert ind.source in registry.SOURCES
    assert ind.group in registry.GROUPS
    assert ind.level in registry.LEVELS
    assert ind.unit in (registry.PERCENT, registry.DAYS, registry.POINTS)
    assert ind.direction == (registry.DOWN if ind.id in DOWN else registry.UP)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in ind.name + ind.description)


def test_default_settings_cover_every_indicator_with_sane_targets():
    settings = default_settings()
    for ind in registry.INDICATORS:
        t = settings.indicators[ind.id]
        assert t.weight >= 0
        # for ↓ indicators the floor lies above the target
        assert (t.target > t.floor) == (ind.direction == registry.UP), ind.id


def test_every_expression_reads_columns_its_source_has():
    assert registry.column_problems() == []


def test_the_column_check_collects_every_problem():
    broken = (
        dataclasses.replace(registry.BY_ID["card_rate"], numerator=pl.col("no_such_flag").cast(pl.Int64)),
        dataclasses.replace(registry.BY_ID["good_rate"], denominator=pl.col("elapsed_wd"),
                            source="items"),
    )
    problems = registry.column_problems(broken)
    assert problems == [
        "card_rate.numerator: column 'no_such_flag' is not in source 'cases_accepted'",
        "good_rate.numerator: column 'is_good' is not in source 'items'",
        "good_rate.denominator: column 'elapsed_wd' is not in source 'items'",
    ]


def test_descriptions_show_the_settings_in_force():
    from datasets.domain.vocabulary import Rules

    rules = Rules(yellow_grace_days=2, red_grace_days=3, rectify_days=10)
    text = {i.id: i.describe(rules) for i in registry.INDICATORS}
    assert "超过承诺时限 2 个工作日以上" in text["card_rate"] and "超过法定时限 3 个工作日以上" in text["card_rate"]
    assert "评价时间后 10 个工作日内" in text["bad_rectified_on_time_rate"]
    for ind in registry.INDICATORS:  # no placeholder left, and no setting's default written in as text
        assert "{" not in text[ind.id], ind.id
        assert "15 个工作日" not in text[ind.id], ind.id


def test_an_incomplete_declaration_is_refused():
    with pytest.raises(ValueError, match="incomplete"):
        dataclasses.replace(registry.BY_ID["card_rate"], description="")
    with pytest.raises(ValueError, match="incomplete"):
        dataclasses.replace(registry.BY_ID["card_rate"], group="Z")


@pytest.mark.parametrize(("indicator_id", "formula"), [
    ("commitment_compression", "(Σ法定时限 − Σ承诺时限) ÷ Σ法定时限（法定时限 > 0 的事项）"),
    ("statutory_speedup", "(Σ法定时限 − Σ用时) ÷ Σ法定时限（法定时限 > 0 的已办结件）"),
    ("promise_speedup", "(Σ承诺时限 − Σ用时) ÷ Σ承诺时限（承诺时限 > 0 的已办结件）"),
    ("avg_handling_days", "Σ用时（工作日） ÷ 已办结件数"),  # nothing to bracket: the label as written
    ("on_time_rate", "用时 ≤ 承诺时限的已办结件数 ÷ 已办结件数"),
    ("satisfaction_score", "Σ评价等级 × 20 ÷ 评价总数"),  # × before ÷: no brackets needed
])
def test_formulas_bracket_a_difference(indicator_id, formula):
    assert registry.BY_ID[indicator_id].formula == formula


def test_no_formula_divides_an_unbracketed_difference():
    for ind in registry.INDICATORS:
        before_division = ind.formula.split(" ÷ ")[0]
        assert " − " not in before_division or before_division.startswith("("), ind.formula
