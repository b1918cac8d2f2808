"""``python -m metrics``: indicator report and district ranking for evaluators' scripts.

The columns and exit codes are a stable contract (datasets/operations/cli.py: 0 ok, 1 no data or refused, 2 bad
arguments, 3 system unavailable, 4 internal error).
"""

from __future__ import annotations

import datetime as dt
import sys

import polars as pl

from datasets.domain.periods import Period, parse_period
from datasets.operations.cli import (
    EXIT_USAGE,
    ChineseArgumentParser,
    db_url,
    measured_period,
    month_arg,
    run,
    warn_cache,
)

REPORT_COLUMNS = [
    "district",
    "department",
    "period_from",
    "period_to",
    "indicator",
    "name",
    "value",
    "numerator",
    "denominator",
]


def build_parser() -> ChineseArgumentParser:
    parser = ChineseArgumentParser(prog="python -m metrics", description="政务服务效能评估看板：指标计算与排名")
    sub = parser.add_subparsers(dest="command", required=True, metavar="子命令", parser_class=ChineseArgumentParser)
    rep = sub.add_parser("report", help="指标明细（每个区县/部门 × 指标一行）")
    rep.add_argument("--db", metavar="URL", help="数据库 URL（默认 DATABASE_URL 或内置 SQLite）")
    rep.add_argument("--from", dest="first", type=month_arg, metavar="YYYY-MM",
                     help="起始月份 YYYY-MM（默认最近一个数据报齐的月份）")
    rep.add_argument("--to", dest="last", type=month_arg, metavar="YYYY-MM", help="结束月份 YYYY-MM（默认同起始月份）")
    rep.add_argument("--by", choices=["district", "department", "city"], default="district", help="汇总方式")
    rep.add_argument("--format", choices=["csv", "json"], default="csv", help="输出格式")
    rep.add_argument("--out", metavar="文件", help="输出文件（默认标准输出）")
    rank = sub.add_parser("rank", help="区县效能指数排名")
    rank.add_argument("--db", metavar="URL", help="数据库 URL")
    rank.add_argument("--period", metavar="时段", help="时段：YYYY-MM、YYYY-Qn 或 YYYY（默认最近一个数据报齐的月份）")
    rank.add_argument("--format", choices=["csv", "xlsx"], default="csv", help="输出格式")
    rank.add_argument("--out", metavar="文件", help="输出文件（xlsx 必须指定）")
    from metrics.bulletin_cli import add_parser

    add_parser(sub)
    return parser


def _usage_error(message: str) -> int:
    print(f"参数错误：{message}", file=sys.stderr)
    return EXIT_USAGE


def report_table(comps: pl.DataFrame, period: Period, by: str, districts: list[str] | None = None) -> pl.DataFrame:
    """The full grid: every district (or department, or the city) in scope × every indicator."""
    from metrics.compute import aggregate
    from metrics.registry import indicator_frame

    long = aggregate(comps, period, by=by, districts=districts)
    if by != "department":
        long = long.with_columns(pl.lit("").alias("department"))
    names = indicator_frame().select("indicator", "name", pl.col("order").alias("_order"))
    return (
        long.join(names, on="indicator", how="inner")
        .with_columns(pl.lit(period.first).alias("period_from"), pl.lit(period.last).alias("period_to"))
        .sort(["district", "department", "_order"])
        .select(REPORT_COLUMNS)
    )


def main(argv: list[str] | None = None, today: dt.date | None = None) -> int:
    """The command line; a fault of the system is a Chinese line and exit code 3 (datasets.operations.cli.run).
    ``today`` decides which months have ended (the default period); tests pass a date."""
    return run(lambda args: _main(args, today), argv)


def _main(argv: list[str] | None = None, today: dt.date | None = None) -> int:
    args = build_parser().parse_args(argv)
    today = today or dt.date.today()
    if args.command == "bulletin":
        from metrics.bulletin_cli import run

        return run(args, today)
    from datasets.common import safe_export
    from datasets.domain.workdays import CalendarError
    from datasets.storage import store
    from datasets.storage.coverage import coverage
    from datasets.storage.quality import all_districts
    from metrics.compute import latest_month
    from metrics.scoring import ranking
    from metrics.service import open_store

    period: Period | None = None
    if args.command == "rank":
        try:
            period = parse_period(args.period) if args.period else None
        except ValueError as exc:
            return _usage_error(f"--period {exc}")
        if args.format == "xlsx" and not args.out:
            return _usage_error("--format xlsx 需要用 --out 指定输出文件")
    if args.command == "report" and args.first and args.last and args.last < args.first:
        return _usage_error(f"--to {args.last} 早于 --from {args.first}")
    try:
        engine, settings, comps = open_store(db_url(args.db))
    except CalendarError as exc:
        print(f"计算失败：{exc}", file=sys.stderr)
        return 1
    cover = coverage(engine, settings.rules, today)
    if args.command == "report":
        first = args.first or cover.default_month or latest_month(comps)
        if first is None:
            print("数据库中还没有数据：请先导入数据或运行 python -m datasets demo", file=sys.stderr)
            return 1
        period = measured_period(cover, Period(first, args.last or first))
        table = report_table(comps, period, args.by, all_districts(engine))
        if args.format == "csv":
            safe_export.write_csv(table, args.out)
        else:
            safe_export.write_json(table, args.out)
        warn_cache(engine)
        return 0
    from metrics.exports import rank_export_frame, write_rank_xlsx

    if period is None:
        if cover.default_period is None:
            print("数据库中还没有数据：请先导入数据或运行 python -m datasets demo", file=sys.stderr)
            return 1
        period = cover.default_period
    period = measured_period(cover, period)
    rank = ranking(comps, period, settings, store.active_batches(engine), all_districts(engine))
    if args.format == "csv":
        safe_export.write_csv(rank_export_frame(rank), args.out)
    else:
        write_rank_xlsx(rank, period, settings, args.out, engine=engine, note=cover.banner(period))
    warn_cache(engine)
    return 0



if __name__ == "__main__":
    sys.exit(main())
