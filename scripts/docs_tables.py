"""Print the README's reference tables from the declarations: pages, command line, configuration, indicators.

    .venv/bin/python scripts/docs_tables.py

tests/test_docs.py checks every row below is in README.md (one test per page, command, setting and
indicator), so after adding one of them run this and paste the new row into the README.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datasets import __main__ as datasets_cli
from datasets.access.accounts import ROLES
from datasets.common.config import AppSettings
from metrics import __main__ as metrics_cli
from metrics.registry import GROUPS, INDICATORS
from pages import _catalog as catalog


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- pages ------------------------------------------------------------------------------------------


def who_may_open(page: catalog.PageSpec) -> str:
    """The README's 可打开 cell of a page: the roles, visitors, and who may download."""
    if not page.roles:
        return "未登录的访问者"
    who = "所有已登录账号" if set(page.roles) == set(ROLES) else "、".join(r for r in ROLES if r in page.roles)
    if page.public:
        who += "；允许未登录查看时也对访问者开放"
    if page.download_roles:
        who += "；下载：" + "、".join(r for r in ROLES if r in page.download_roles)
    return who


def page_rows() -> Iterator[tuple[str, str]]:
    """(title, the start of its README row): the content cell after it is free text."""
    for page in catalog.CATALOG:
        yield page.title, f"| {page.title} | {who_may_open(page)} |"


# --- command line -----------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield prog, parser
        return
    for name, sub in actions[0].choices.items():
        yield from _subcommands(sub, f"{prog} {name}")


def arguments(parser: argparse.ArgumentParser) -> list[str]:
    """Positionals (as ``<NAME>``) and options (their long form), help left out."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            out.append(max(action.option_strings, key=len))
        else:
            out.append(f"<{action.metavar or action.dest}>")
    return out


def command_rows() -> Iterator[tuple[str, str, list[str]]]:
    """(command, README row, its arguments) for every subcommand of both command-line programs."""
    for parser, prog in ((datasets_cli.build_parser(), "python -m datasets"),
                         (metrics_cli.build_parser(), "python -m metrics")):
        for command, sub in _subcommands(parser, prog):
            args = arguments(sub)
            listed = " ".join(f"`{a}`" for a in args) or "—"
            yield command, f"| `{command}` | {listed} | {_cell(sub.description or _help(parser, command))} |", args


def _help(parser: argparse.ArgumentParser, command: str) -> str:
    """The help text a subcommand was added with (argparse keeps it on the parent's choices)."""
    words = command.split()[3:]
    current = parser
    text = ""
    for word in words:
        action = next(a for a in current._actions if isinstance(a, argparse._SubParsersAction))
        text = next((c.help for c in action._choices_actions if c.dest == word), "") or ""
        current = action.choices[word]
    return text


# --- configuration ----------------------------------------------------------------------------------


def setting_names() -> Iterator[tuple[str, str, str]]:
    """(field, environment variable, secrets.toml key) of every deployment setting."""
    for name in AppSettings.model_fields:
        yield name, name.upper(), name


# --- indicators -------------------------------------------------------------------------------------


def indicator_rows() -> Iterator[tuple[str, str]]:
    for ind in INDICATORS:
        direction = "越高越好" if ind.direction > 0 else "越低越好"
        yield ind.id, f"| `{ind.id}` | {ind.name} | {ind.group} {GROUPS[ind.group]} | {ind.unit.name} | {direction} |"


def main() -> None:
    print("| 页面 | 可打开 | 内容 |\n|---|---|---|")
    for _title, row in page_rows():
        print(row + " … |")
    print("\n| 命令 | 参数 | 用途 |\n|---|---|---|")
    for _command, row, _args in command_rows():
        print(row)
    print("\n| 环境变量 | secrets.toml |\n|---|---|")
    for _name, env, key in setting_names():
        print(f"| `{env}` | `{key}` |")
    print("\n| 编号 | 指标 | 分组 | 单位 | 方向 |\n|---|---|---|---|---|")
    for _id, row in indicator_rows():
        print(row)


if __name__ == "__main__":
    main()
