"""Benchmark: the full district × month indicator table, three ways, side by side.

    python benchmarks/bench_metrics.py --db sqlite:////tmp/bench10.db [--repeat N] [--cold]

All three start from the same data: the store's current records (newest import per id) as the
per-district Parquet snapshots the dashboard keeps (datasets/derived/snapshots.py), built before timing.

(a) project: metrics.service.compute_components with its component cache emptied, then
    aggregate(by="month"): exactly what the dashboard does after an import or a rule change: read
    each district's snapshot and count it, one district in memory at a time;
(b) duckdb:  the same snapshot files read by DuckDB (read_parquet), one SQL query;
(c) pandas:  the same snapshot files read with pandas.read_parquet, idiomatic pandas.

Each approach runs in its own subprocess, so its peak RSS is its own. The results are then
cross-checked against (a): numerator and denominator per district × month × indicator must agree
within 1e-6, and no key may be missing on either side. Exit code 1 on any mismatch.
Targets (from the issue): (a) no slower than (b), at least 5× faster than (c), peak RSS ≤ 4 GB.

``--cold`` first deletes the snapshots and times building them from the SQL tables
(store.load_records per district), which is what the first start on a restored database costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPROACHES = {"s": "snapshots (cold)", "a": "(a) project", "b": "(b) DuckDB SQL", "c": "(c) pandas"}
MEMORY_TARGET_MB = 4096
PANDAS_FACTOR = 5.0


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def run_worker(approach: str, url: str, repeat: int, out: Path) -> dict:
    """Compute ``repeat`` times in this process from the snapshot files; keep the best time.

    The working-day calendar is built before timing: it is cached per process (the dashboard builds
    it once), and every approach uses it.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import alt_impl
    from datasets.derived import snapshots
    from datasets.domain.schema import KINDS
    from datasets.domain.workdays import load_calendar
    from datasets.storage import store
    from metrics.prepare import Rules
    from metrics.scoring import default_settings
    from metrics.service import compute_components

    rules = Rules()
    cal = load_calendar()
    engine = store.make_engine(url)
    folder = snapshots.snapshot_dir(engine)
    assert folder is not None
    keys = snapshots.active_keys(engine)
    if approach == "s":
        t0, c0 = time.perf_counter(), time.process_time()
        built = snapshots.ensure(engine, keys)
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = sum(f.stat().st_size for f in folder.rglob("*.parquet")) / 2**20
        return {"approach": approach, "total": took, "cpu": cpu, "built": built, "files_mb": size,
                "peak_rss_mb": _peak_rss_mb(), "children_peak_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN)}
    files = {kind: [str(f) for f in snapshots.record_files(engine, kind, keys)] for kind in KINDS}
    info = {"files_mb": sum(Path(f).stat().st_size for fs in files.values() for f in fs) / 2**20}
    settings = default_settings()
    runs = []
    result = None
    for _ in range(repeat):
        result = None  # free the previous round
        if approach == "a":
            # Only the component cache goes: the records' snapshots are the starting point of all three.
            shutil.rmtree(folder / "components", ignore_errors=True)
        t0, c0 = time.perf_counter(), time.process_time()
        if approach == "a":
            comps = compute_components(engine, settings, detail=False)
            result = alt_impl.monthly_table(comps)
        elif approach == "b":
            result = alt_impl.duckdb_table_from_files(files, rules, cal)
        else:
            result = alt_impl.pandas_result_to_polars(alt_impl.pandas_table(alt_impl.pandas_from_files(files), rules,
                                                                            cal))
        runs.append({"total": time.perf_counter() - t0, "cpu": time.process_time() - c0})
    assert result is not None
    result.write_parquet(out)
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    return {"approach": approach, **best, "runs": runs, "peak_rss_mb": _peak_rss_mb(), "rows": result.height, **info}


def _spawn(approach: str, url: str, repeat: int, workdir: Path) -> dict:
    out = workdir / f"{approach}.parquet"
    report = workdir / f"{approach}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", approach, "--db", url,
           "--repeat", str(repeat), "--out", str(out), "--report", str(report)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{APPROACHES[approach]} failed (exit {proc.returncode})")
    info = json.loads(report.read_text())
    info["wall"] = time.perf_counter() - started
    info["result"] = out
    return info


def _print_table(results: dict[str, dict]) -> None:
    header = f"{'approach':<18}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    for key, r in results.items():
        if key == "s":
            continue
        print(f"{APPROACHES[key]:<18}{r['total']:>9.2f}{r['cpu']:>9.2f}{r['peak_rss_mb']:>13.0f}")


def _print_mismatches(summary) -> None:
    """One line per indicator: keys compared, keys missing on either side, value mismatches."""
    print(f"  {'indicator':<28}{'keys':>7}{'only (a)':>10}{'only alt':>10}{'num ≠':>8}{'den ≠':>8}")
    for row in summary.iter_rows(named=True):
        flag = "" if not (row["only_in_reference"] or row["only_in_other"] or row["numerator_mismatches"]
                          or row["denominator_mismatches"]) else "  <-- MISMATCH"
        print(f"  {row['indicator']:<28}{row['rows']:>7}{row['only_in_reference']:>10}{row['only_in_other']:>10}"
              f"{row['numerator_mismatches']:>8}{row['denominator_mismatches']:>8}{flag}")


def _ratio(x: float, y: float) -> float:
    return x / y if y else float("inf")


def _print_targets(results: dict[str, dict]) -> bool:
    """The issue's targets, on wall time from the same snapshot files (CPU seconds shown too: they
    depend less on what else the machine is doing)."""
    a = results["a"]
    ok = a["peak_rss_mb"] <= MEMORY_TARGET_MB
    print(f"(a) peak RSS {a['peak_rss_mb']:.0f} MB ≤ {MEMORY_TARGET_MB} MB: {'met' if ok else 'NOT MET'}")
    met_all = ok
    if "b" in results:
        b = results["b"]
        met = a["total"] <= b["total"]
        print(f"(a)/(b): wall {_ratio(a['total'], b['total']):.2f}, CPU {_ratio(a['cpu'], b['cpu']):.2f}: "
              f"(a) no slower than (b): {'met' if met else 'NOT MET'}")
        met_all &= met
    if "c" in results:
        c = results["c"]
        met = _ratio(c["total"], a["total"]) >= PANDAS_FACTOR
        print(f"(c)/(a): wall {_ratio(c['total'], a['total']):.2f}, CPU {_ratio(c['cpu'], a['cpu']):.2f}: "
              f"(a) ≥ {PANDAS_FACTOR:.0f}× faster than (c): {'met' if met else 'NOT MET'}")
        met_all &= met
    return met_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="store URL, e.g. sqlite:////tmp/bench10.db")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per approach (best time is kept)")
    parser.add_argument("--only", default="abc", help="approaches to run, e.g. 'ab' (a is always run)")
    parser.add_argument("--keep", help="directory to keep the three result tables in (parquet)")
    parser.add_argument("--cold", action="store_true",
                        help="delete the snapshots first and time building them from the SQL tables")
    parser.add_argument("--worker", choices=list(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if args.worker:
        info = run_worker(args.worker, args.db, args.repeat, Path(args.out))
        Path(args.report).write_text(json.dumps(info))
        return 0

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import polars as pl

    from benchmarks.alt_impl import compare, mismatch_total

    approaches = ["a", *[k for k in "bc" if k in args.only]]
    if args.cold:
        from datasets.derived import snapshots
        from datasets.storage import store

        snapshots.clear(store.make_engine(args.db))
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict] = {}
        # Snapshots first (built if missing, timed): the other three start from them.
        print(f"running {APPROACHES['s']} …", flush=True)
        results["s"] = _spawn("s", args.db, 1, workdir)
        for key in approaches:
            print(f"running {APPROACHES[key]} …", flush=True)
            results[key] = _spawn(key, args.db, args.repeat, workdir)
        s = results["s"]
        print()
        print(f"store: {args.db}")
        print(f"snapshots: {s['built']} built in {s['total']:.1f} s (CPU {s['cpu']:.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB,"
              f" reader child {s['children_peak_rss_mb']:.0f} MB); current records {results['a']['files_mb']:.0f} MB "
              "of Parquet")
        print(f"indicator table: {results['a']['rows']:,} rows (district × month × indicator); best of {args.repeat} "
              "round(s) per approach, all from the same snapshot files")
        print()
        _print_table(results)
        print()

        a = results["a"]
        targets_met = _print_targets(results)
        print()

        reference = pl.read_parquet(a["result"])
        failures = 0
        for key in approaches[1:]:
            summary = compare(reference, pl.read_parquet(results[key]["result"]))
            bad = mismatch_total(summary)
            failures += bad
            print(f"cross-check {APPROACHES[key]} against (a): "
                  + ("all numerators and denominators agree" if bad == 0 else f"{bad} MISMATCHES"))
            _print_mismatches(summary)
        if failures:
            print(f"\n!!! {failures} MISMATCHES between the implementations: see the tables above !!!")
            return 1
        print(f"\ntargets {'all met' if targets_met else 'NOT all met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
