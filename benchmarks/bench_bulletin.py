"""Time to generate a month's bulletin (月度通报) and the district report cards.

    python benchmarks/bench_bulletin.py --db sqlite:////tmp/b1.db [--period 2026-10] [--repeat 3] [--pdf]

Create the store first (``python -m datasets demo --db sqlite:////tmp/b1.db``, scale 1). Measured:

* components — ``compute_components`` (per-district caches; the first run builds the snapshots, later
  runs read them): what the CLI pays on every call and the page once per data version;
* inputs — alert rows, the data-quality grid and the administrator's texts (``load_inputs``);
* bulletin — the content (three rankings, sentences, tables, chart specs);
* docx — rendering into the template, charts to PNG included;
* reports — every district's report card (.docx);
* pdf — LibreOffice conversion of the bulletin (``--pdf``, when installed).

"page" = inputs + bulletin + docx (the page has the components cached); "CLI" = components + page.
Target: ≤ 10 s for a month at scale 1. Each step: best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 10.0


def best(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="月度通报生成耗时")
    parser.add_argument("--db", required=True)
    parser.add_argument("--period", help="YYYY-MM、YYYY-Qn 或 YYYY（默认最近有数据的月份）")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pdf", action="store_true", help="同时计时 LibreOffice 转 PDF")
    args = parser.parse_args(argv)

    from datasets.domain.periods import Period, parse_period
    from datasets.storage import store
    from metrics import bulletin, bulletin_docx
    from metrics.compute import latest_month
    from metrics.scoring import load_settings
    from metrics.service import compute_components

    engine = store.make_engine(args.db)
    settings = load_settings(engine)
    t_first, comps = best(lambda: compute_components(engine, settings), 1)
    t_comps, comps = best(lambda: compute_components(engine, settings), args.repeat)
    month = latest_month(comps)
    period = parse_period(args.period) if args.period else Period(month, month)
    template = bulletin_docx.template_for(engine)
    t_inputs, inp = best(lambda: bulletin.load_inputs(engine, comps, settings, period), args.repeat)
    t_build, doc = best(lambda: bulletin.build_bulletin(inp), args.repeat)
    t_docx, content = best(lambda: bulletin_docx.bulletin_docx(doc, template), args.repeat)
    t_reports, _ = best(lambda: bulletin_docx.reports_docx(bulletin.build_reports(inp), doc, template), args.repeat)
    rows = [
        ("components (first call in the process)", t_first),
        ("components (cached)", t_comps),
        ("inputs", t_inputs),
        ("bulletin content", t_build),
        ("docx (charts included)", t_docx),
        ("report cards docx (all districts)", t_reports),
    ]
    if args.pdf and bulletin_docx.soffice():
        t_pdf, _ = best(lambda: bulletin_docx.to_pdf(content), args.repeat)
        rows.append(("pdf (LibreOffice)", t_pdf))
    page = t_inputs + t_build + t_docx
    rows.append(("page: bulletin .docx (inputs+content+docx)", page))
    import subprocess
    import tempfile

    def cli_run(fmt: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "metrics", "bulletin", "--db", args.db, "--period", period.key,
                            "--format", fmt, "--out", str(Path(tmp) / f"b.{fmt}")], cwd=ROOT, check=True,
                           capture_output=True)

    # The whole command in a fresh process: imports, reading the per-district caches from disk, writing.
    cli, _ = best(lambda: cli_run("docx"), args.repeat)
    rows.append(("CLI: python -m metrics bulletin (docx)", cli))
    if args.pdf and bulletin_docx.soffice():
        cli_pdf, _ = best(lambda: cli_run("pdf"), args.repeat)
        rows.append(("CLI: python -m metrics bulletin --format pdf", cli_pdf))
    print(f"store {args.db}, period {period.label}, {comps.height:,} component rows, best of {args.repeat}")
    for label, seconds in rows:
        print(f"  {label:<40} {seconds:6.2f} s")
    ok = max(cli, page) <= TARGET_S
    print(f"target ≤ {TARGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
