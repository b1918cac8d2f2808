"""Benchmark: the full district × month indicator table, three ways, side by side.

    python benchmarks/bench_metrics.py --db sqlite:////tmp/bench10.db [--repeat N]

(a) project: metrics.prepare.load_dataset + metrics.compute.components + aggregate(by="month"),
    exactly what the dashboard does;
(b) duckdb:  the same records (same loader), registered in DuckDB as Arrow, one SQL query;
(c) pandas:  the same records converted with to_pandas, idiomatic pandas.

Each approach runs in its own subprocess, so its peak RSS is its own. The results are then
cross-checked against (a): numerator and denominator per district × month × indicator must agree
within 1e-6, and no key may be missing on either side. Exit code 1 on any mismatch.
Targets (from the issue): (a) no slower than (b), at least 5× faster than (c), peak RSS ≤ 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPROACHES = {"a": "(a) project", "b": "(b) DuckDB SQL", "c": "(c) pandas"}
MEMORY_TARGET_MB = 4096
PANDAS_FACTOR = 5.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_worker(approach: str, url: str, repeat: int, out: Path) -> dict:
    """Load and compute ``repeat`` times in this process; keep the best time of each phase.

    The working-day calendar is built before timing: it is cached per process (the dashboard builds
    it once), and every approach uses it.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import alt_impl
    from datasets import store
    from metrics.calendar import load_calendar
    from metrics.prepare import Rules, load_dataset

    rules = Rules()
    cal = load_calendar()
    engine = store.make_engine(url)
    runs = []
    result = None
    info: dict = {}
    for _ in range(repeat):
        result = data = frames = con = None  # free the previous round before loading again
        t0 = time.perf_counter()
        data = load_dataset(engine)
        t1, c1 = time.perf_counter(), time.process_time()
        info["records"] = {k: getattr(data, k).height for k in ("cases", "items", "evaluations", "hotline")}
        info["records_mb"] = sum(getattr(data, k).estimated_size() for k in info["records"]) / 2**20
        info["peak_rss_after_load_mb"] = _peak_rss_mb()
        if approach == "a":
            t2, c2 = t1, c1
            result = alt_impl.project_table(data, rules)
        elif approach == "b":
            con = alt_impl.duckdb_connect(data, cal)
            t2, c2 = time.perf_counter(), time.process_time()
            result = alt_impl.duckdb_table(data, rules, cal, con=con)
        else:
            frames = alt_impl.to_pandas(data)
            data = None
            t2, c2 = time.perf_counter(), time.process_time()
            result = alt_impl.pandas_result_to_polars(alt_impl.pandas_table(frames, rules, cal))
        t3, c3 = time.perf_counter(), time.process_time()
        runs.append({"load": t1 - t0, "convert": t2 - t1, "compute": t3 - t2, "total": t3 - t0,
                     "convert_cpu": c2 - c1, "compute_cpu": c3 - c2})
    assert result is not None
    result.write_parquet(out)
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    return {"approach": approach, **best, "runs": runs, "peak_rss_mb": _peak_rss_mb(), "rows": result.height,
            **info}


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
    header = (f"{'approach':<16}{'load s':>9}{'convert s':>11}{'compute s':>11}{'total s':>10}"
              f"{'conv+comp CPU s':>17}{'peak RSS MB':>13}{'after load':>12}")
    print(header)
    print("-" * len(header))
    for key, r in results.items():
        print(f"{APPROACHES[key]:<16}{r['load']:>9.2f}{r['convert']:>11.2f}{r['compute']:>11.2f}{r['total']:>10.2f}"
              f"{r['convert_cpu'] + r['compute_cpu']:>17.2f}{r['peak_rss_mb']:>13.0f}{r['peak_rss_after_load_mb']:>12.0f}")


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


def _computation(r: dict) -> tuple[float, float]:
    """Wall and CPU seconds of an approach's own work: converting the loaded frames, then computing."""
    return r["convert"] + r["compute"], r["convert_cpu"] + r["compute_cpu"]


def _print_targets(results: dict[str, dict]) -> bool:
    """The issue's targets. Speed is judged on the computation (what differs between the approaches):
    the load is the same code in all three, and its run-to-run spread on a shared machine can exceed
    the differences being measured. CPU seconds are shown too, as they depend less on other load."""
    a = results["a"]
    wall_a, cpu_a = _computation(a)
    loads = [r["load"] for r in results.values()]
    shared = min(loads)
    print(f"load (store.load_records, identical in all approaches): {shared:.1f}–{max(loads):.1f} s; "
          f"loaded records {a['records_mb']:.0f} MB (estimated size), peak RSS after loading "
          f"{a['peak_rss_after_load_mb']:.0f} MB")
    ok = a["peak_rss_mb"] <= MEMORY_TARGET_MB
    print(f"(a) peak RSS {a['peak_rss_mb']:.0f} MB ≤ {MEMORY_TARGET_MB} MB: {'met' if ok else 'NOT MET'}")
    met_all = ok
    if "b" in results:
        wall_b, cpu_b = _computation(results["b"])
        met = wall_a <= wall_b
        print(f"(a)/(b) computation: wall {_ratio(wall_a, wall_b):.2f}, CPU {_ratio(cpu_a, cpu_b):.2f}; "
              f"total with the shared load {_ratio(shared + wall_a, shared + wall_b):.2f}: "
              f"(a) no slower than (b): {'met' if met else 'NOT MET'}")
        met_all &= met
    if "c" in results:
        wall_c, cpu_c = _computation(results["c"])
        met = _ratio(wall_c, wall_a) >= PANDAS_FACTOR
        print(f"(c)/(a) computation: wall {_ratio(wall_c, wall_a):.2f}, CPU {_ratio(cpu_c, cpu_a):.2f}; "
              f"total with the shared load {_ratio(shared + wall_c, shared + wall_a):.2f}: "
              f"(a) ≥ {PANDAS_FACTOR:.0f}× faster than (c): {'met' if met else 'NOT MET'}")
        met_all &= met
    return met_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="store URL, e.g. sqlite:////tmp/bench10.db")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per approach (best time is kept)")
    parser.add_argument("--only", default="abc", help="approaches to run, e.g. 'ab' (a is always run)")
    parser.add_argument("--keep", help="directory to keep the three result tables in (parquet)")
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
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict] = {}
        for key in approaches:
            print(f"running {APPROACHES[key]} …", flush=True)
            results[key] = _spawn(key, args.db, args.repeat, workdir)
        records = results["a"]["records"]
        print()
        print(f"store: {args.db}")
        print("records: " + ", ".join(f"{k} {v:,}" for k, v in records.items())
              + f"; indicator table: {results['a']['rows']:,} rows (district × month × indicator)")
        print(f"best of {args.repeat} round(s) per approach; the load is the same loader (store.load_records) "
              "in every approach")
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
