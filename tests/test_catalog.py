"""The page catalog (pages/_catalog.py) is the one declaration of the pages: everything else agrees with it."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from datasets.access.accounts import ADMIN, EVALUATOR, ROLES, User
from pages import _catalog as catalog
from pages import _session as session

ROOT = Path(__file__).resolve().parents[1]
TITLES = {p.title for p in catalog.CATALOG}


def test_titles_and_files_are_unique_and_every_page_file_is_declared():
    assert len(TITLES) == len(catalog.CATALOG) == len(catalog.BY_FILE)
    files = {path.stem for path in (ROOT / "pages").glob("*.py") if not path.stem.startswith("_")}
    assert files == set(catalog.BY_FILE)


@pytest.mark.parametrize("page", [p for p in catalog.CATALOG if p.title != catalog.PAGE_LOGIN], ids=lambda p: p.file)
def test_each_page_file_gates_itself_with_its_own_title(page):
    """A page checks the user again itself, under the title the catalog gives its file."""
    text = (ROOT / page.path).read_text(encoding="utf-8")
    gates = re.findall(r"ui\.gate\(catalog\.(PAGE_\w+)\)", text)
    assert [getattr(catalog, name) for name in gates] == [page.title]


def test_every_navigation_ends_with_the_account_section():
    """Hidden pages are appended to the last section, which must list the login and the password page."""
    for nav in (catalog.FULL, catalog.EMPTY, catalog.BROKEN):
        sections = catalog.navigation(nav)
        assert list(sections)[-1] == catalog.ACCOUNT_SECTION
        assert {catalog.PAGE_LOGIN, catalog.PAGE_ACCOUNT} <= set(sections[catalog.ACCOUNT_SECTION])
    signed_out = catalog.signed_out_navigation()
    assert sorted(t for titles in signed_out.values() for t in titles) == sorted(TITLES)


# What the navigations list, written out by hand (the menu a user sees is this, filtered by role).
NAVIGATIONS = {
    catalog.FULL: {"看板": ["总览", "区县对比", "时段对比", "排名下载", "月度通报", "大屏展示"], "数据": ["数据上传", "数据质量"],
                   "说明与设置": ["指标说明", "设置"], "账号": ["登录", "修改密码", "账号管理", "区县配置", "审计日志"]},
    catalog.EMPTY: {"开始": ["开始使用"], "数据": ["数据上传"], "说明与设置": ["指标说明", "设置"],
                    "账号": ["登录", "修改密码", "账号管理", "区县配置", "审计日志"]},
    catalog.BROKEN: {"数据": ["数据上传", "数据质量"], "说明与设置": ["指标说明", "设置"],
                     "账号": ["登录", "修改密码", "账号管理", "区县配置", "审计日志"]},
}


@pytest.mark.parametrize("nav", list(NAVIGATIONS))
def test_navigations(nav):
    assert catalog.navigation(nav) == NAVIGATIONS[nav]


def test_home_order_and_downloads():
    assert catalog.HOME_ORDER == ("总览", "开始使用", "数据上传", "数据质量", "账号管理", "指标说明", "修改密码")
    downloads = {p.title: p.download_roles for p in catalog.CATALOG if p.download_roles}
    assert downloads == {"排名下载": {EVALUATOR, ADMIN}, "月度通报": {EVALUATOR, ADMIN}}
    # Whoever may download from a page may open it.
    assert all(p.download_roles <= p.roles for p in catalog.CATALOG)
    assert {p.title for p in catalog.CATALOG if p.filtered} == {"总览", "区县对比", "时段对比", "排名下载"}
    # The ranking shows every district and indicator: no district or indicator choice. The bulletin has
    # its own period picker (pages/bulletin.py) and no sidebar filters.
    assert {p.title for p in catalog.CATALOG if p.period_only} == {"排名下载"}


def _calls(path: Path, name: str) -> bool:
    """Whether the module calls ``shared.<name>()`` anywhere (its own code, not a comment or a string)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
               and isinstance(node.func.value, ast.Name) and node.func.value.id == "shared"
               for node in ast.walk(tree))


@pytest.mark.parametrize("page", catalog.CATALOG, ids=lambda p: p.file)
def test_a_page_reading_the_context_is_given_one(page):
    """dashboard.py builds the context for every page it runs (the sidebar filters' period, or the
    default period for a page without them); a page that found none after a reload used to run the
    dashboard a second time (issue 27). A page reading the context is a page of the full navigation."""
    if _calls(ROOT / page.path, "current"):
        assert catalog.FULL in page.navs, page.file


def _audit_page_defaults() -> list[tuple[str, str]]:
    """(function, default) of every ``page=`` parameter with a non-empty default in datasets/ and metrics/."""
    found = []
    for package in ("datasets", "metrics"):
        for path in sorted((ROOT / package).rglob("*.py")):  # datasets/ has sub-packages
            if path.stem in {"__init__", "__main__", "arrow_child"}:
                continue
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for name, func in inspect.getmembers(module, inspect.isfunction):
                if func.__module__ != module.__name__:
                    continue
                param = inspect.signature(func).parameters.get("page")
                if param is not None and isinstance(param.default, str) and param.default:
                    found.append((f"{module.__name__}.{name}", param.default))
    return found


def test_audit_page_defaults_name_catalog_pages():
    """Callers outside the UI (the CLI, benchmarks) audit under a page the dashboard has."""
    defaults = _audit_page_defaults()
    assert len(defaults) >= 8  # the admin actions, upload, documents, save_scoring: the scan finds them
    assert [(f, d) for f, d in defaults if d not in TITLES] == []


def test_roles_caption_lists_what_each_role_opens():
    text = catalog.roles_caption()
    for role in ROLES:
        opened = [t for t in catalog.role_pages(role) if t in text]
        assert opened == catalog.role_pages(role)
    assert "评估人员另可打开排名下载（可下载）、月度通报（可下载）；" in text
    assert "工作人员另可打开数据上传、数据质量；" in text


@pytest.mark.parametrize("role", ROLES)
def test_session_gates_read_the_catalog(role):
    user = User("u", "u", (role,), ("甲区",))
    opened = [p.title for p in catalog.CATALOG if session.page_access(user, p.title)]
    assert opened == catalog.role_pages(role)
    assert session.home_page(user) == "总览"  # every role may open the overview
    assert session.home_page(user, among=[catalog.PAGE_START, catalog.PAGE_UPLOAD, catalog.PAGE_ACCOUNT]) == "开始使用"
