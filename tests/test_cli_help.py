"""Every ``--help`` and every argument error of both command-line programs is Chinese (issue 27).

"Chinese" precisely: after removing what the user types or reads as a name — the program (``python -m
datasets``), subcommand names, option strings, metavars, choices — and the product and format names of
``ALLOWED``, no run of two or more ASCII letters is left in the output.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasets import __main__ as datasets_cli
from metrics import __main__ as metrics_cli

ROOT = Path(__file__).resolve().parent.parent
# Product names, file types and date patterns the help may name as they are.
ALLOWED = ("DATABASE_URL", "LibreOffice", "SQLite", "URL", "YYYY-MM", "YYYY-Qn", "YYYY", ".xlsx", ".xls", ".csv",
           ".docx", "pdf", "PDF", "Word", "python")
ENGLISH = re.compile(r"[A-Za-z]{2,}")


def _commands() -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    """(argv prefix, parser) of both programs and every subcommand, groups included."""
    def walk(words: list[str], parser: argparse.ArgumentParser) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk([*words, name], sub)

    yield from walk(["datasets"], datasets_cli.build_parser())
    yield from walk(["metrics"], metrics_cli.build_parser())


def _names(parser: argparse.ArgumentParser) -> set[str]:
    """What may appear in the output as typed: option strings, metavars, choices, subcommand names."""
    names: set[str] = {parser.prog}
    for action in parser._actions:
        names.update(action.option_strings)
        if isinstance(action.metavar, str):
            names.add(action.metavar)
        names.update(str(c) for c in action.choices or ())
    return names


def english_left(text: str, names: set[str]) -> list[str]:
    """The ASCII words of ``text`` that are neither names of the parser nor in ALLOWED."""
    for literal in sorted({*names, *ALLOWED}, key=len, reverse=True):
        text = text.replace(literal, " ")
    return ENGLISH.findall(text)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)


COMMANDS = list(_commands())


@pytest.mark.parametrize(("words", "parser"), COMMANDS, ids=[" ".join(w) for w, _p in COMMANDS])
def test_help_is_chinese(words, parser):
    done = _run(*words, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("用法：python -m " + " ".join(words))
    assert "显示本帮助并退出" in done.stdout
    assert english_left(done.stdout, _names(parser) | {"-h", "--help"}) == [], done.stdout


# Argument errors: exit 2, a Chinese line on stderr naming the argument.
ERRORS = [
    (["datasets"], "缺少必需的参数：子命令"),
    (["datasets", "impotr", "x.csv"], "无效的取值 'impotr'"),
    (["datasets", "import", "x.csv", "--kind", "foo"], "参数 --kind：无效的取值 'foo'"),
    (["datasets", "import", "x.csv", "--what"], "无法识别的参数：--what"),
    (["datasets", "import"], "缺少必需的参数：文件"),
    (["datasets", "demo", "--seed", "x"], "参数 --seed：“x”不是整数"),
    (["datasets", "demo", "--scale", "big"], "参数 --scale：“big”不是数字"),
    (["datasets", "demo", "--db"], "参数 --db：需要一个取值"),
    (["datasets", "users", "add", "a"], "缺少必需的参数：--role"),
    (["metrics", "rank", "--format", "pdf"], "参数 --format：无效的取值 'pdf'"),
    (["metrics", "report", "--from", "2024-13"], "参数 --from：“2024-13”不是有效的月份"),
    (["metrics", "report", "--by", "town"], "参数 --by：无效的取值 'town'"),
    (["metrics", "report", "--f", "csv"], "选项 --f 有歧义，可能是：--from, --format"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS, ids=[" ".join(a) for a, _m in ERRORS])
def test_argument_errors_are_chinese(argv, message):
    done = _run(*argv)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.splitlines()[0].startswith("用法：")
    names: set[str] = {"-h", "--help", *argv}
    for _words, parser in COMMANDS:
        names |= _names(parser)
    assert english_left(done.stderr, names) == [], done.stderr


def test_the_check_finds_english():
    """The check cannot pass by finding nothing: argparse's own English is caught."""
    plain = argparse.ArgumentParser(prog="python -m datasets")
    plain.add_argument("--db", metavar="URL", help="数据库 URL")
    assert english_left(plain.format_help(), _names(plain)) == ["usage", "options", "show", "this", "help", "message",
                                                                 "and", "exit"]


def test_the_help_column_is_aligned_in_terminal_columns():
    """Chinese metavars are two columns wide each: the help texts still start in one column and no line
    is wider than the terminal."""
    from datasets.operations.cli import display_width

    done = subprocess.run([sys.executable, "-m", "datasets", "users", "add", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "COLUMNS": "70"})
    starts = set()
    for line in done.stdout.splitlines():
        assert display_width(line) <= 70, line
        if line.startswith("  -") and "  " in line.strip():
            head = line[:len(line) - len(line.lstrip())] + line.strip().split("  ")[0]
            rest = line[len(head):]
            starts.add(display_width(head) + len(rest) - len(rest.lstrip()))
    assert len(starts) == 1, done.stdout


SCRIPTS = ["scripts/prepare.py", "scripts/screenshots.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_answer_help_in_chinese_and_do_nothing_else(script, tmp_path):
    """scripts/prepare.py used to ignore --help and fill the store with the demo; both scripts' help is
    Chinese (the option strings and metavars are names the user types)."""
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = module.build_parser() if hasattr(module, "build_parser") else module._parser()
    env = {**os.environ, "SQLITE_PATH": str(tmp_path / "untouched.db")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith(f"用法：python {script}") and "显示本帮助并退出" in done.stdout
    assert english_left(done.stdout, _names(parser) | {"-h", "--help", "click", "url", "reload", "scripts",
                                                      "start.sh"}) == [], done.stdout
    assert not (tmp_path / "untouched.db").exists()
