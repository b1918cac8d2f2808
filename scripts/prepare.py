"""Before the server starts (scripts/start.sh): fill an empty embedded store with the demo city and
count the indicators once, printing each step, so that the first visit opens the 总览 at once.

With DATABASE_URL configured nothing is generated; the indicators are still counted (and cached
next to the data, see datasets/derived/snapshots.py) when the database holds records.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def build_parser() -> argparse.ArgumentParser:  # imported late, like everything here
    from datasets.operations.cli import ChineseArgumentParser

    return ChineseArgumentParser(
        prog="python scripts/prepare.py",
        description="启动看板前的准备（scripts/start.sh 调用）：内置数据库为空时生成示例数据，并预先计算一次指标。"
                    "没有参数；数据库按配置（DATABASE_URL 或内置 SQLite 文件）。",
    )


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)  # only --help: nothing is touched before it is answered
    _step("[3/4] 准备数据：读取配置并连接数据库")
    from datasets.common.config import load_settings
    from datasets.storage import store

    app = load_settings()
    engine = store.make_engine(app.url)
    store.init_db(engine)
    if app.embedded and app.load_demo_if_empty and store.active_batches(engine).height == 0:
        from datasets.domain.workdays import load_calendar
        from datasets.sample.demo import generate_demo
        _step(f"[3/4] 首次启动：生成示例数据（虚构的“澄州市”，规模 {app.demo_scale}，本机约 5–10 秒）")
        print(generate_demo(engine, calendar=load_calendar(), seed=app.demo_seed, scale=app.demo_scale), flush=True)
    if store.active_batches(engine).height == 0:
        print("数据库中还没有数据：打开看板后按“开始使用”页的步骤上传数据。", flush=True)
        return 0
    from metrics.scoring import load_settings as load_scoring
    from metrics.service import compute_components

    _step("[3/4] 计算各区县指标（结果缓存在数据旁，之后启动只需读取）")
    started = time.perf_counter()
    try:
        compute_components(engine, load_scoring(engine))
    except Exception as exc:  # the dashboard explains a failed count itself; start anyway
        print(f"指标计算失败（看板中会显示原因）：{exc}", flush=True)
    else:
        print(f"指标计算完成，用时 {time.perf_counter() - started:.1f} 秒", flush=True)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
