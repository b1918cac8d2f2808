"""The README states every counting rule the product applies, as the 指标说明 page shows it."""

from __future__ import annotations

from pathlib import Path

from datasets.vocabulary import readings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_reading_is_in_the_readme():
    missing = [topic for topic, text in readings() if f"- **{topic}**：{text}" not in README]
    assert missing == []
