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
