"""Growth with the size of the store: cold starts, a rule change, an import until it is visible, pages.

    python benchmarks/bench_scale.py --scales 1,3,10,30 [--dir /tmp/scale] [--skip-pages] [--steps a,b]

For each scale the demo store ``<dir>/scale<N>.db`` (SQLite) is used, generated first when missing
(``python -m datasets demo --scale N``, timed). Every measurement runs in a fresh child process, so
its peak RSS (``ru_maxrss``) is its own, and the 1-minute load average is recorded before and after
it (the machine is shared: a figure taken under load is an upper bound). ``--steps`` runs only some:

* cold, everything lost — the cache directory deleted: the batch files are recreated from the SQL
  tables, then the components counted as below; time to the first 总览 (AppTest, server side);
* cold, from batch files — the cache directory restored with its batch files only (a new cache, a
  restored backup): components and alert lists counted from the batch files, no SQL record reads;
  the snapshots and drill-down parts follow in the background (metrics.service.finish_cache), whose
  time after the first 总览 is reported as ``background_s`` (and counted in the step's peak);
* cold, shared cache warm — a new app server on a cache another server has built: nothing to build;
* rule change — 黄牌宽限 + 1 day: every district's components counted again from its snapshot (the
  drill-down parts then in the background, ``background_s``);
* import → visible — a 200 k-row 办件明细 of the largest district's last month (that month's rows,
  repeated with new case ids) imported with ``import_frame`` (SQL transaction + its batch file), then
  总览 rendered in a new session (recomputing that district); the import is rolled back afterwards,
  so the store is unchanged for the next run (the rolled-back batch stays in the SQL tables);
* import of a new month → visible — the same rows moved one month on, imported as the month after the
  store's last one (the first upload of a month: the other districts are not counted again), then
  withdrawn and deleted afterwards;
* pages — ``bench_pages.py --repeat 1`` on the same store (the slowest first render and filter change).

Every 总览 is timed from its session's first run on a started server: the scan of installed Streamlit
components that a server makes once at its start is made before the clock (bench_pages._components).

At the end, the growth factor per 10× data of each figure between consecutive scales:
(t₂ / t₁) ^ (1 / log₁₀(rows₂ / rows₁)), where rows are the cases stored.

Targets (issue 25): scale 10 cold start from batch files ≤ 15 s, new server on a shared cache ≤ 2 s,
import → visible ≤ 5 s (a new month's included), rule change ≤ 8 s, peak ≤ 4 GB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = {
    "cold_sql": "冷启动：缓存全部丢失（批次文件由 SQL 重建）",
    "cold_batches": "冷启动：仅有批次文件",
    "cold_shared": "冷启动：共享缓存已就绪（新服务器）",
    "rule_change": "规则修改后重算",
    "import_visible": "导入 20 万行 → 总览可见",
    "import_new_month": "导入新月份 20 万行 → 总览可见",
}
IMPORT_ROWS = 200_000
BENCH_FILE = "bench-import.xlsx"


def _overview(url: str):
    """A fresh 总览 session signed in as the benchmark account (see bench_pages.py)."""
    from benchmarks import bench_pages

    bench_pages._navigation_mode()
    user = bench_pages._bench_user(url)
    return bench_pages._open(bench_pages._page_file("总览"), 1800, user)


def _run_overview(url: str) -> float:
    at = _overview(url)
    started = time.perf_counter()
    at.run()
    took = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"总览出错：{at.exception[0].message}")
    return took


def _step(name: str, url: str) -> dict:
    """One measurement, in this (child) process."""
    os.environ["DATABASE_URL"] = url
    from datasets.derived import snapshots
    from datasets.storage import store
    from metrics.scoring import default_settings
    from metrics.service import compute_components

    engine = store.make_engine(url)
    out: dict = {}
    if name == "cold_sql":
        snapshots.clear(engine)
        out["seconds"] = _run_overview(url)
    elif name == "cold_batches":
        snapshots.clear(engine, keep_batches=True)
        out["seconds"] = _run_overview(url)
    elif name == "cold_shared":
        out["seconds"] = _run_overview(url)
    elif name == "rule_change":
        settings = default_settings()
        changed = settings.model_copy(update={"rules": settings.rules.model_copy(
            update={"yellow_grace_days": settings.rules.yellow_grace_days + 1})})
        started, cpu = time.perf_counter(), time.process_time()
        compute_components(engine, changed, finish="background")  # as the app does (pages/_shared.py)
        out["seconds"] = time.perf_counter() - started
        out["cpu_window_s"] = time.process_time() - cpu
        out["background_s"] = _settle()
        compute_components(engine, settings)  # the default rules' components back for the next steps
    if name.startswith("cold_"):
        out["background_s"] = _settle()
    elif name == "import_visible":
        out.update(_import_visible(engine, url))
    elif name == "import_new_month":
        out.update(_import_visible(engine, url, new_month=True))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    # CPU seconds of the whole step (background included): on a shared machine a steadier figure than
    # the wall clock, which grows with the load average.
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    return out


def _settle() -> float:
    """Seconds until the cache work a cold start left for the background (snapshots, drill-down parts:
    metrics.service.finish_cache) is done, counted from now (the overview already shown)."""
    from metrics.service import wait_background

    started = time.perf_counter()
    wait_background()
    return time.perf_counter() - started


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def _import_visible(engine, url: str, new_month: bool = False) -> dict:
    import polars as pl

    from datasets.derived import batch_files, snapshots
    from datasets.domain.schema import KINDS
    from datasets.intake.ingest import import_frame
    from datasets.storage import store

    _forget(engine, _leftovers(engine))  # a run killed before its clean-up
    _run_overview(url)  # a warm server: what the overview shows before the import
    _settle()  # and nothing it left for the background still running when the clock starts,
    os.sync()  # nor the kernel still writing out the files earlier steps wrote (GBs after a cold start)
    batches = store.active_batches(engine, "cases")
    last = batches.sort(["rows", "period"], descending=True).filter(pl.col("period") == batches["period"].max())
    top = last.row(0, named=True)
    # That batch's rows from its batch file (not the whole district from SQL: gigabytes at scale 30,
    # which the benchmark's own peak would count).
    rows = batch_files.current_records(engine, snapshots.cache_of(engine), "cases", top["district"],
                                       batches.filter(pl.col("id") == top["id"]))
    reps = -(-IMPORT_ROWS // rows.height)
    frame = pl.concat([rows.with_columns(pl.col("case_id") + f"-R{r}") for r in range(reps)]).head(IMPORT_ROWS)
    frame = frame.select(KINDS["cases"].names)
    period = top["period"]
    if new_month:  # the rows a month later: the store's first data of that month
        period = _next_month(max(p for p in store.active_batches(engine)["period"].to_list() if p))
        frame = frame.with_columns(pl.col(c).dt.offset_by("1mo") for c, t in frame.schema.items()
                                   if isinstance(t, (pl.Datetime, pl.Date)))
    from metrics import derived

    counted = derived.COUNTS["components"]
    started, cpu = time.perf_counter(), time.process_time()
    result = import_frame(engine, "cases", frame, file_name=BENCH_FILE, sha256=f"{time.time_ns():064x}",
                          period=period)
    committed = time.perf_counter() - started
    shown = _run_overview(url)
    total = time.perf_counter() - started
    cpu_window = time.process_time() - cpu
    districts_counted = derived.COUNTS["components"] - counted
    if new_month:
        for r in result.results:
            if r.batch_id is not None:
                store.withdraw_batch(engine, r.batch_id, "bench")
    else:
        store.rollback_to(engine, top["id"], "bench")
    _forget(engine, [r.batch_id for r in result.results if r.batch_id is not None])
    _run_overview(url)  # caches back to the store's own state
    _settle()
    return {"seconds": total, "import_s": committed, "overview_s": shown, "rows": result.rows,
            "district": top["district"], "period": period, "districts_counted": districts_counted, "cpu_window_s": cpu_window}


def _forget(engine, batch_ids) -> None:
    """Delete the benchmark's own rolled-back batches, their rows and files.

    The product never deletes an import (rollback keeps it); a benchmark that kept its 200 k rows
    would grow the store at every run and time a larger table each time.
    """
    from datasets.derived import batch_files, snapshots
    from datasets.storage import store
    from datasets.storage.tables import batches, record_tables

    ids = list(batch_ids)
    if not ids:
        return
    with engine.begin() as conn:
        gone = list(conn.execute(batches.select().where(batches.c.id.in_(ids) & (batches.c.state != store.ACTIVE))))
        for table in record_tables.values():
            conn.execute(table.delete().where(table.c.batch_id.in_([b.id for b in gone])))
        conn.execute(batches.delete().where(batches.c.id.in_([b.id for b in gone])))
    cache = snapshots.cache_of(engine)
    for b in gone if cache is not None else []:
        cache.delete(batch_files.file_name(b.kind, b.id, b.sha256, b.rows, b.district))


def _leftovers(engine) -> list[int]:
    """Rolled-back batches an interrupted or older benchmark run left behind."""
    import sqlalchemy as sa

    from datasets.storage import store
    from datasets.storage.tables import batches

    with engine.connect() as conn:
        return list(conn.execute(sa.select(batches.c.id).where(
            (batches.c.file_name == BENCH_FILE) & (batches.c.state != store.ACTIVE))).scalars())


def _child(name: str, url: str) -> dict:
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--step", name, "--db", url], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} 失败：\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return out


def _pages(url: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_pages.py"), "--db", url, "--repeat", "1"],
                          cwd=ROOT, capture_output=True, text=True)
    found = re.search(r"最慢：首次渲染 ([\d.]+) 秒，切换筛选 ([\d.]+) 秒", proc.stdout)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"bench_pages 失败：\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {"first_s": float(found[1]), "change_s": float(found[2])}


def _store(directory: Path, scale: str) -> tuple[str, float | None]:
    path = directory / f"scale{scale}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url, None
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "datasets", "demo", "--db", url, "--scale", scale], cwd=ROOT, check=True)
    return url, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="规模增长基准：冷启动、规则修改、导入到可见、页面")
    parser.add_argument("--scales", default="1,3", help="逗号分隔的规模，例如 1,3,10,30")
    parser.add_argument("--dir", default="/tmp/scale", help="示例库所在目录（缺少时生成 scale<N>.db）")
    parser.add_argument("--skip-pages", action="store_true", help="不运行 bench_pages.py")
    parser.add_argument("--steps", default=",".join(STEPS), help="逗号分隔的测量项（默认全部）：" + "、".join(STEPS))
    parser.add_argument("--step", choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.step:
        print(json.dumps(_step(args.step, args.db), ensure_ascii=False))
        return 0

    from datasets.storage import store

    steps = [n for n in args.steps.split(",") if n]
    shown = list(dict.fromkeys(steps))
    unknown = [n for n in steps if n not in STEPS]
    if unknown:
        parser.error(f"未知的测量项：{'、'.join(unknown)}")
    results: dict[str, dict] = {}
    for scale in args.scales.split(","):
        url, generated = _store(Path(args.dir), scale)
        engine = store.make_engine(url)
        counts = store.record_counts(engine)
        engine.dispose()
        row: dict = {"cases_stored": counts["cases"], "generated_s": generated}
        print(f"scale {scale}: {counts['cases']:,} case rows stored" +
              (f", generated in {generated:.0f} s" if generated else ""), flush=True)
        for name in steps:
            run = _child(name, url)
            later = f" (then {run['background_s']:.2f} s in the background)" if "background_s" in run else ""
            print(f"  {STEPS[name]}: {run['seconds']:.2f} s{later}, peak {run['peak_rss_mb']:.0f} MB, "
                  f"load {run['load'][0]} → {run['load'][1]}", flush=True)
            # A step named twice: every run is kept, the table shows the fastest.
            row.setdefault(f"{name}_runs", []).append(run)
            row[name] = min(row[f"{name}_runs"], key=lambda r: r["seconds"])
        if not args.skip_pages:
            row["pages"] = _pages(url)
            print(f"  pages: slowest first render {row['pages']['first_s']:.2f} s, "
                  f"filter change {row['pages']['change_s']:.2f} s", flush=True)
        results[scale] = row

    print()
    header = f"{'scale':>6} {'cases':>11}" + "".join(f" {n:>15}" for n in shown) + f" {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for scale, row in results.items():
        peak = max(r["peak_rss_mb"] for n in shown for r in row[f"{n}_runs"])
        print(f"{scale:>6} {row['cases_stored']:>11,}" + "".join(f" {row[n]['seconds']:>15.2f}" for n in shown)
              + f" {peak:>8.0f}")
    scales = list(results)
    for a, b in itertools.pairwise(scales):
        ra, rb = results[a], results[b]
        decades = math.log10(rb["cases_stored"] / ra["cases_stored"])
        factors = {n: (rb[n]["seconds"] / ra[n]["seconds"]) ** (1 / decades) for n in shown}
        print(f"growth per 10× data, scale {a} → {b}: " + ", ".join(f"{n} ×{f:.1f}" for n, f in factors.items()))
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
