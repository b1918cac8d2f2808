"""Server-side render time of every dashboard page with streamlit.testing.v1.AppTest.

    python benchmarks/bench_pages.py --db sqlite:///data/bench.db [--repeat 3]

Create the store first, e.g. ``python -m datasets demo --db sqlite:///data/bench.db --scale 1``.
Measured per page, in a fresh session each time:

* cold start — the very first run in the process: the component table, read from the per-district
  caches next to the store or, after an import, computed from the snapshots of the districts it
  touched (what the first visitor waits for);
* first render — opening the page in a new session once the shared caches are warm;
* filter change — choosing another month in the sidebar (a period not viewed before).

Each figure is the median of ``--repeat`` sessions; the slowest one is shown too (a page's first
visit in the process also builds what only it needs, e.g. the rows of the district drilled into on
区县对比, read for that district's snapshot alone).

Every session of the process shares one registry of installed Streamlit components, as the sessions of
a server do: a server scans the installed packages for them once, when it starts
(``Runtime.__init__``), while each new AppTest scans them again on its first run (0.45–0.47 s of
package metadata at scale 10 on 2026-12-08), which no visitor of a running server waits for.

Every session is signed in as the account ``bench-admin`` (all roles, all districts), which the
script adds to the store if it is missing, so every page can be opened.

Targets: first render ≤ 2 s and filter change ≤ 0.5 s (scale 1); ≤ 5 s and ≤ 1 s (``--scale10``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The pages timed, by title; their files come from the page catalog (pages/_catalog.py).
TIMED = ("总览", "区县对比", "时段对比", "排名下载", "数据上传", "数据质量", "指标说明", "设置", "账号管理", "审计日志",
         "修改密码")
TARGETS = {False: (2.0, 0.5), True: (5.0, 1.0)}
BENCH_USER = "bench-admin"


def _bench_user(url: str):
    """The benchmark's account (every role, every district), added once with a random password."""
    import secrets

    from datasets.access import accounts
    from datasets.storage import store

    engine = store.make_engine(url)
    store.init_db(engine)  # a store made before accounts existed gets their tables
    try:
        user = accounts.get_user(engine, BENCH_USER)
        if user is None:
            districts = store.list_districts(engine)["name"].to_list()
            user = accounts.add_user(engine, BENCH_USER, secrets.token_urlsafe(16), accounts.ROLES, districts, "性能测试")
        return user
    finally:
        engine.dispose()


def _navigation_mode() -> None:
    """Run AppTest as a server on which st.navigation is in force (see navigation_mode in tests/conftest.py)."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init  # type: ignore[method-assign]


_MAP_SECONDS: list[float] = []  # time spent in the district map block, per call (see _time_map)


def _time_map() -> None:
    """Time the district map block inside each page run (``pages._map.map_block``, replaced in its
    module like _drop_map): the map's own share of a render, which a busy machine's noise hides in the
    difference of two runs."""
    from pages import _map

    real = _map.map_block

    def timed(*args, **kwargs) -> None:
        started = time.perf_counter()
        try:
            real(*args, **kwargs)
        finally:
            _MAP_SECONDS.append(time.perf_counter() - started)

    _map.map_block = timed


def _map_share() -> float | None:
    """The map block's time in the run just timed (None when the page has no map)."""
    if not _MAP_SECONDS:
        return None
    spent = sum(_MAP_SECONDS)
    _MAP_SECONDS.clear()
    return spent


def _drop_map() -> None:
    """The pages without their district map: the page scripts run in this process and call
    ``pages._map.map_block`` through the module, so replacing it there leaves the rest as it is."""
    from pages import _map

    _map.map_block = lambda *args, **kwargs: None


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _check(at, where: str) -> None:
    if at.exception:
        raise SystemExit(f"{where}：页面出错：{at.exception[0].message}")


def _page_file(title: str) -> str:
    from pages import _catalog as catalog

    return f"pages/{catalog.BY_TITLE[title].file}.py"


@functools.cache
def _components():
    """The installed Streamlit components, found once per process as a server does at its start."""
    from streamlit.components.v2.component_manager import BidiComponentManager

    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


def _open(page: str, timeout: float, user):
    from streamlit.testing.v1 import AppTest

    from datasets.storage import store
    from pages import _session as session

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=timeout)
    if hasattr(at, "_bidi_component_manager"):  # the server's registry (module docstring)
        at._bidi_component_manager = _components()
    state: dict = {}
    engine = store.make_engine(os.environ["DATABASE_URL"])
    session.sign_in(state, engine, user)  # what the login page puts into the session (a session record)
    engine.dispose()
    for key, value in state.items():
        at.session_state[key] = value
    if page != _page_file("总览"):
        at.run()  # st.navigation registers the pages; switching needs one run first
        at.switch_page(page)
    return at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="看板页面服务端渲染耗时（AppTest）")
    parser.add_argument("--db", required=True, help="数据库 URL，例如 sqlite:///data/bench.db（先用 python -m datasets demo 生成）")
    parser.add_argument("--repeat", type=int, default=3, help="每页重复次数，取中位数")
    parser.add_argument("--timeout", type=float, default=600, help="单次运行超时（秒）")
    parser.add_argument("--scale10", action="store_true", help="按规模 10 的目标判定（首次 ≤5 秒，切换 ≤1 秒）")
    parser.add_argument("--pages", default="", help="只测这些页面（标题，逗号分隔），默认全部")
    parser.add_argument("--without-map", action="store_true",
                        help="不画区县地图（对照：与不加此项的结果相减，即地图给页面增加的耗时）")
    args = parser.parse_args(argv)
    os.environ["DATABASE_URL"] = args.db
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    _navigation_mode()
    timed = tuple(t.strip() for t in args.pages.split(",") if t.strip()) or TIMED
    unknown = [t for t in timed if t not in TIMED]
    if unknown:
        parser.error(f"没有这些页面：{'、'.join(unknown)}；可选：{'、'.join(TIMED)}")
    if args.without_map:
        _drop_map()
    else:
        _time_map()

    from datasets.storage import store

    engine = store.make_engine(args.db)
    counts = store.record_counts(engine)
    engine.dispose()
    user = _bench_user(args.db)
    first_target, change_target = TARGETS[args.scale10]
    print(f"数据库：{args.db}" + ("（不画区县地图）" if args.without_map else ""))
    print("记录数：" + "，".join(f"{k} {v:,}" for k, v in counts.items()))

    at = _open(_page_file("总览"), args.timeout, user)
    cold = _timed(at.run)
    _check(at, "冷启动")
    months = at.sidebar.selectbox(key="f_month").options
    print(f"冷启动（新进程的首个页面，含读取或计算指标组件表）：{cold:.2f} 秒")
    print()
    header = f"{'页面':<8}{'首次渲染(秒)':>14}{'最慢一次':>10}{'切换筛选(秒)':>14}{'最慢一次':>10}  达标"
    print(header)
    print("-" * (len(header) + 8))
    worst_first = worst_change = 0.0
    map_lines = []
    for n, (name, page) in enumerate((title, _page_file(title)) for title in timed):
        firsts, changes, map_firsts, map_changes = [], [], [], []
        for r in range(args.repeat):
            at = _open(page, args.timeout, user)
            _map_share()  # what the switch to the page spent, not timed
            firsts.append(_timed(at.run))
            map_firsts.append(_map_share())
            _check(at, name)
            # Another month each time, so the ranking of that period is not cached yet.
            month = months[(1 + n * args.repeat + r) % len(months)]
            # Pages without the period filter (upload, settings, accounts) time a plain rerun instead.
            for picker in (s for s in at.sidebar.selectbox if s.key == "f_month"):
                picker.set_value(month)
            changes.append(_timed(at.run))
            map_changes.append(_map_share())
            _check(at, name)
        first, change = statistics.median(firsts), statistics.median(changes)
        worst_first, worst_change = max(worst_first, first), max(worst_change, change)
        ok = "是" if first <= first_target and change <= change_target else "否"
        print(f"{name:<8}{first:>14.3f}{max(firsts):>10.3f}{change:>14.3f}{max(changes):>10.3f}  {ok}")
        if None not in map_firsts + map_changes:
            map_lines.append(f"{name}：首次渲染 {statistics.median(map_firsts):.3f} 秒（最慢 {max(map_firsts):.3f}），"
                             f"切换筛选 {statistics.median(map_changes):.3f} 秒（最慢 {max(map_changes):.3f}）")
    if map_lines:
        print()
        print("其中区县地图（pages/_map.py map_block 本身的耗时，中位数；目标 ≤ 0.3 秒）：")
        for line in map_lines:
            print("  " + line)
    print()
    print(f"目标：首次渲染 ≤ {first_target} 秒，切换筛选 ≤ {change_target} 秒；"
          f"最慢：首次渲染 {worst_first:.3f} 秒，切换筛选 {worst_change:.3f} 秒")
    return 0


if __name__ == "__main__":
    sys.exit(main())
