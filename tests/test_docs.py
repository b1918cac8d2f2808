"""The README documents what the code declares: every counting rule (as the 指标说明 page shows it), page
(with who may open it), command and option, deployment setting and indicator. One test per item, so a
failure names what is missing; ``scripts/docs_tables.py`` prints the rows the README must hold."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from datasets.domain.vocabulary import readings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_reading_is_in_the_readme():
    missing = [topic for topic, text in readings() if f"- **{topic}**：{text}" not in README]
    assert missing == []


# --- the README's reference tables against the declarations (one test per item, named by it) -----------

_spec = importlib.util.spec_from_file_location("docs_tables",
                                               Path(__file__).resolve().parents[1] / "scripts" / "docs_tables.py")
docs_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_tables)


def _section(title: str) -> str:
    """The README text under ``## title`` up to the next ``## `` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


@pytest.mark.parametrize(("title", "row_start"), list(docs_tables.page_rows()),
                         ids=[t for t, _r in docs_tables.page_rows()])
def test_every_page_is_in_the_readme_with_who_may_open_it(title, row_start):
    rows = [line for line in _section("页面").splitlines() if line.startswith(f"| {title} |")]
    assert len(rows) == 1, f"README 页面表缺少“{title}”（或重复）"
    assert rows[0].startswith(row_start), f"README 页面表中“{title}”的“可打开”一列应为：{row_start}"


@pytest.mark.parametrize(("command", "row", "args"), list(docs_tables.command_rows()),
                         ids=[c for c, _r, _a in docs_tables.command_rows()])
def test_every_command_and_option_is_in_the_readme(command, row, args):
    section = _section("命令行")
    rows = [line for line in section.splitlines() if line.startswith(f"| `{command}` |")]
    assert len(rows) == 1, f"README 命令行参考表缺少 {command}"
    for arg in args:
        assert f"`{arg}`" in rows[0], f"README 中 {command} 缺少参数 {arg}"


@pytest.mark.parametrize(("name", "env", "key"), list(docs_tables.setting_names()),
                         ids=[n for n, _e, _k in docs_tables.setting_names()])
def test_every_setting_is_in_the_readme(name, env, key):
    section = _section("配置放在哪里")
    assert f"`{env}`" in section and f"`{key}`" in section, f"README 配置表缺少 {env} / {key}"


@pytest.mark.parametrize(("indicator", "row"), list(docs_tables.indicator_rows()),
                         ids=[i for i, _r in docs_tables.indicator_rows()])
def test_every_indicator_is_in_the_readme(indicator, row):
    assert row in _section("指标一览").splitlines(), f"README 指标一览缺少 {indicator}"


def test_every_indicator_is_on_the_indicators_page():
    """The 指标说明 page shows ``indicator_reference``: one row per registry indicator, with its description."""
    from metrics.reference import indicator_reference
    from metrics.registry import INDICATORS
    from metrics.scoring import default_settings

    shown = indicator_reference(default_settings())
    assert shown["编号"].to_list() == [i.id for i in INDICATORS]
    assert shown["指标"].to_list() == [i.name for i in INDICATORS]
    assert all(text.strip() for text in shown["口径说明"].to_list())


def test_the_checks_fail_on_a_missing_item(monkeypatch):
    """Remove one row of each table: its check must fail (the tests above cannot pass vacuously)."""
    global README
    title, page_row = next(docs_tables.page_rows())
    command, command_row, args = next(docs_tables.command_rows())
    _name, env, _key = next(docs_tables.setting_names())
    indicator, indicator_row = next(docs_tables.indicator_rows())
    original = README
    try:
        README = "\n".join(line for line in original.splitlines() if not line.startswith(f"| {title} |"))
        with pytest.raises(AssertionError):
            test_every_page_is_in_the_readme_with_who_may_open_it(title, page_row)
        README = original.replace(f"`{args[-1]}` |", "|", 1) if args else original
        with pytest.raises(AssertionError):
            test_every_command_and_option_is_in_the_readme(command, command_row, args)
        README = re.sub(rf"`{env}`", "", original)
        with pytest.raises(AssertionError):
            test_every_setting_is_in_the_readme(_name, env, _key)
        README = original.replace(indicator_row, "")
        with pytest.raises(AssertionError):
            test_every_indicator_is_in_the_readme(indicator, indicator_row)
    finally:
        README = original
