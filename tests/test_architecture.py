"""The import graph follows the data flow read → validate → store → compute → show.

Layers, bottom to top: ``datasets`` (read, validate, store), ``metrics`` (compute), ``pages`` and
``dashboard`` (show). A module imports only its own layer or lower ones, counting imports inside
functions and under ``TYPE_CHECKING``; no two modules import each other, directly or round a longer
cycle; SQL (SQLAlchemy beyond the ``Engine`` type and its errors) only in the store-side modules.

Inside ``datasets/`` the same rule holds between its sub-packages, one job each (``DATASETS_ORDER``,
bottom to top; docs/architecture.md says what each holds): a module imports its own sub-package or
lower ones only, so data flows one way, from the domain model through the store to derived data, with
intake, the demo and operations on top.

The checker is tested on a small fake tree first, so that a broken checker cannot pass vacuously.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"datasets": 0, "metrics": 1, "pages": 2, "dashboard": 3}
# The sub-packages of datasets/, bottom to top; "__main__" (``python -m datasets``) sits on top of them.
DATASETS_ORDER = ("common", "domain", "storage", "access", "derived", "intake", "sample", "operations", "__main__")
# The modules that may talk SQL to the store (docs/architecture.md lists what each keeps).
STORE_SIDE = frozenset({
    "datasets.storage.store", "datasets.storage.tables", "datasets.storage.quality", "datasets.storage.arrow_child",
    "datasets.access.accounts", "datasets.access.sessions", "datasets.access.documents",
    "datasets.derived.snapshots", "datasets.derived.batch_files", "datasets.derived.cache_store",
    "datasets.intake.ingest",
})
# Every module may name these: the engine type for hints and the driver's errors for messages.
HARMLESS_SQLALCHEMY = ("sqlalchemy.engine", "sqlalchemy.exc")
SQL_CALLS = frozenset({"execute", "exec_driver_sql", "scalar", "scalars"})


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the layered code (tests, benchmarks and scripts excluded).

    Sub-packages count (``datasets.storage.store``); a package's ``__init__.py`` counts, under the
    package's name, only when it imports something: an empty marker or a docstring has no edges.
    """
    found = {path.stem: path for path in root.glob("*.py") if path.stem in LAYERS}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            parts = path.relative_to(root).with_suffix("").parts
            if path.stem == "__init__":
                if not _imports_anything(path):
                    continue
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports_anything(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(tree))


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """The project module ``name`` refers to (``datasets.storage.store.now`` -> ``datasets.storage.store``), if any."""
    known = set(modules)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imported_names(tree: ast.AST, module: str, *, is_package: bool = False) -> set[str]:
    """Every dotted name an ``import`` anywhere in the module brings in (functions included).

    ``is_package``: the module is a package's ``__init__``, the anchor of its own relative imports.
    """
    package = module if is_package else (module.rsplit(".", 1)[0] if "." in module else "")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_names(tree, module, is_package=path.stem == "__init__")
        targets = {_resolve(name, modules) for name in names}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def layer_of(module: str) -> int:
    return LAYERS[module.split(".", 1)[0]]


def datasets_job(module: str) -> str:
    """The sub-package of datasets/ a module belongs to (``datasets.storage.store`` -> ``storage``)."""
    return module.split(".")[1]


def datasets_rank(module: str) -> int | None:
    """The position of a datasets/ module's sub-package in ``DATASETS_ORDER``, None when unassigned."""
    job = datasets_job(module)
    return DATASETS_ORDER.index(job) if job in DATASETS_ORDER else None


def unassigned_datasets_modules(modules: Iterable[str]) -> list[str]:
    """Modules of datasets/ outside every sub-package of ``DATASETS_ORDER`` (``__main__`` is placed)."""
    return sorted(m for m in modules if m.startswith("datasets.") and datasets_rank(m) is None)


def upward_within_datasets(graph: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs inside datasets/ where a sub-package imports a higher one."""
    inside = {m: {t for t in targets if t.startswith("datasets.")}
              for m, targets in graph.items() if m.startswith("datasets.")}
    return sorted(
        (a, b) for a, targets in inside.items() for b in targets
        if datasets_job(a) != datasets_job(b) and (datasets_rank(b) or 0) > (datasets_rank(a) or 0)
    )


def upward_imports(graph: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a lower layer imports a higher one."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def sql_users(root: Path) -> dict[str, list[str]]:
    """Module -> what in it talks SQL: a SQLAlchemy import beyond the harmless ones, or an execute call."""
    found: dict[str, list[str]] = {}
    for module, path in project_modules(root).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        reasons = []
        for name in sorted(imported_names(tree, module, is_package=path.stem == "__init__")):
            if (name == "sqlalchemy" or name.startswith("sqlalchemy.")) and not name.startswith(HARMLESS_SQLALCHEMY):
                reasons.append(f"imports {name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                if node.func.attr in {"scalar", "scalars"} and not isinstance(node.func.value, ast.Call):
                    continue  # conn.execute(...).scalar() is the SQL form; a polars Series has .scalar too
                reasons.append(f"calls .{node.func.attr}() on line {node.lineno}")
        if reasons:
            found[module] = reasons
    return found


# --- the checker itself, on a fake tree -------------------------------------------------------------


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_finds_upward_imports_cycles_and_stray_sql(tmp_path):
    _write(tmp_path, {
        "datasets/__init__.py": "",
        "datasets/low.py": "def f():\n    from metrics import high  # inside a function still counts\n",
        "datasets/a.py": "from datasets import b\n",
        "datasets/b.py": "import datasets.c\n",
        "datasets/c.py": "from datasets.a import thing\n",
        "datasets/storage/store.py": "import sqlalchemy as sa\n",
        "datasets/typed.py": "from sqlalchemy.engine import Engine\nfrom sqlalchemy.exc import OperationalError\n",
        "metrics/__init__.py": "",
        "metrics/high.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pages import _shown\n",
        "metrics/query.py": "def q(conn):\n    return conn.execute('SELECT 1').scalar()\n",
        "pages/__init__.py": "",
        "pages/_shown.py": "from . import other\nfrom sqlalchemy import text\n",
        "pages/other.py": "import dashboard\n",
        "dashboard.py": "from pages import _shown\n",
    })
    graph = import_graph(tmp_path)
    assert graph["pages._shown"] == {"pages.other"}  # the relative import resolved
    assert upward_imports(graph) == [("datasets.low", "metrics.high"), ("metrics.high", "pages._shown"),
                                     ("pages.other", "dashboard")]
    assert cycles(graph) == [["dashboard", "pages._shown", "pages.other"], ["datasets.a", "datasets.b", "datasets.c"]]
    stray = {m for m in sql_users(tmp_path) if m not in STORE_SIDE}
    assert stray == {"metrics.query", "pages._shown"}
    assert "datasets.typed" not in sql_users(tmp_path)


def test_the_checker_orders_the_sub_packages_of_datasets(tmp_path):
    _write(tmp_path, {
        "datasets/__init__.py": "",
        "datasets/__main__.py": "from datasets.operations import cli\n",
        "datasets/common/__init__.py": '"""Marker with a docstring only."""\n',
        "datasets/common/e.py": "from . import f\n",
        "datasets/common/f.py": "def g():\n    import datasets.derived.g as g  # upward, inside a function\n",
        "datasets/domain/c.py": "from datasets.storage import b\n",
        "datasets/storage/b.py": "from ..domain import c\nfrom datasets.common.e import thing\n",
        "datasets/derived/__init__.py": "from datasets.intake import d\n",
        "datasets/derived/g.py": "from datasets.derived import h\n",
        "datasets/derived/h.py": "",
        "datasets/intake/d.py": "from datasets.storage.b import thing\nimport datasets.derived.g\n",
        "datasets/operations/cli.py": "from datasets.sample import demo\n",
        "datasets/sample/demo.py": "from datasets.intake import d\n",
        "datasets/stray.py": "",
    })
    modules = project_modules(tmp_path)
    assert "datasets.common" not in modules and "datasets.derived" in modules  # a marker has no edges
    graph = import_graph(tmp_path)
    assert graph["datasets.storage.b"] == {"datasets.domain.c", "datasets.common.e"}  # relative, two levels
    assert graph["datasets.common.e"] == {"datasets.common.f"}
    assert graph["datasets.derived"] == {"datasets.intake.d"}  # a package's own imports count
    assert upward_within_datasets(graph) == [
        ("datasets.common.f", "datasets.derived.g"),
        ("datasets.derived", "datasets.intake.d"),
        ("datasets.domain.c", "datasets.storage.b"),
    ]
    assert unassigned_datasets_modules(modules) == ["datasets.stray"]


def test_the_checker_sees_every_module_of_the_project():
    modules = project_modules(ROOT)
    assert {"dashboard", "datasets.storage.store", "metrics.registry", "pages.overview", "pages._session"} <= set(modules)
    graph = import_graph(ROOT)
    assert "datasets.storage.store" in graph["metrics.scoring"] and "pages._shared" in graph["dashboard"]


def test_package_markers_import_nothing():
    for package in ("datasets", "metrics", "pages"):
        marker = ROOT / package / "__init__.py"
        if marker.exists():
            assert imported_names(ast.parse(marker.read_text(encoding="utf-8")), package) == set(), package


# --- the project ------------------------------------------------------------------------------------


def test_every_datasets_module_belongs_to_a_sub_package():
    """A new module goes into the sub-package of its job; a new job gets a place in DATASETS_ORDER."""
    assert unassigned_datasets_modules(project_modules(ROOT)) == []


@pytest.mark.parametrize("job", [job for job in DATASETS_ORDER if job != "__main__"])
def test_each_datasets_sub_package_says_what_belongs_there(job):
    marker = ROOT / "datasets" / job / "__init__.py"
    assert marker.exists(), job
    assert ast.get_docstring(ast.parse(marker.read_text(encoding="utf-8"))), job


def test_datasets_sub_packages_import_only_downwards():
    assert upward_within_datasets(import_graph(ROOT)) == []


def test_no_module_shadows_the_standard_library():
    """The working-day module was once named calendar: a script run from its folder got it for the stdlib's."""
    clashes = sorted(m for m in project_modules(ROOT) if m.rsplit(".", 1)[-1] in sys.stdlib_module_names)
    assert clashes == []


def test_imports_follow_the_data_flow():
    assert upward_imports(import_graph(ROOT)) == []


def test_no_import_cycles():
    assert cycles(import_graph(ROOT)) == []


@functools.cache
def _project_sql_users() -> dict[str, list[str]]:
    return sql_users(ROOT)  # parsed once for all the parametrized cases below


@pytest.mark.parametrize("module", sorted(m for m in project_modules(ROOT) if m not in STORE_SIDE))
def test_sql_only_in_store_side_modules(module):
    assert _project_sql_users().get(module, []) == []
