"""``python -m metrics bulletin``: the monthly bulletin or the district report cards as a file."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from datasets.operations.cli import EXIT_USAGE, ChineseArgumentParser, db_url, measured_period, warn_cache


def add_parser(sub) -> ChineseArgumentParser:
    cmd = sub.add_parser("bulletin", help="月度通报（Word/PDF）或区县报告单")
    cmd.add_argument("--db", metavar="URL", help="数据库 URL")
    cmd.add_argument("--period", metavar="时段", help="时段：YYYY-MM、YYYY-Qn 或 YYYY（默认最近一个数据报齐的月份）")
    cmd.add_argument("--district", metavar="区县名", help="生成该区县的报告单（“全部”：每个区县一页）；不指定时生成通报")
    cmd.add_argument("--format", choices=["docx", "pdf"], default="docx", help="输出格式（pdf 需要 LibreOffice）")
    cmd.add_argument("--out", metavar="文件", help="输出文件（默认当前目录下的“效能评估通报_时段.docx”）")
    return cmd


def run(args, today: dt.date | None = None) -> int:
    """``today``: which months have ended (the default period is the latest complete month)."""
    from datasets.domain.periods import parse_period
    from datasets.domain.workdays import CalendarError
    from datasets.storage.coverage import coverage
    from metrics import bulletin, bulletin_docx
    from metrics.service import open_store

    try:
        period = parse_period(args.period) if args.period else None
    except ValueError as exc:
        print(f"参数错误：--period {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "pdf" and bulletin_docx.soffice() is None:
        print("参数错误：--format pdf 需要服务器上安装 LibreOffice（apt-get install libreoffice-writer-nogui），"
              "或改用 --format docx", file=sys.stderr)
        return EXIT_USAGE
    try:
        engine, settings, comps = open_store(db_url(args.db))
    except CalendarError as exc:
        print(f"计算失败：{exc}", file=sys.stderr)
        return 1
    today = today or dt.date.today()
    cover = coverage(engine, settings.rules, today)
    period = period or cover.default_period
    if period is None:
        print("数据库中还没有数据：请先导入数据或运行 python -m datasets demo", file=sys.stderr)
        return 1
    period = measured_period(cover, period)
    inputs = bulletin.load_inputs(engine, comps, settings, period, today=today, cover=cover)
    if args.district and args.district != bulletin_docx.ALL_DISTRICTS and args.district not in inputs.districts:
        print(f"参数错误：--district 没有名为“{args.district}”的区县；可选：{'、'.join(inputs.districts)}、"
              f"{bulletin_docx.ALL_DISTRICTS}", file=sys.stderr)
        return EXIT_USAGE
    try:
        content, name = bulletin_docx.generate(inputs, args.district, args.format, bulletin_docx.template_for(engine))
    except (bulletin_docx.TemplateError, RuntimeError) as exc:
        print(f"生成失败：{exc}", file=sys.stderr)
        return 1
    out = Path(args.out or name)
    out.write_bytes(content)
    print(f"已生成：{out}（{len(content)} 字节）")
    warn_cache(engine)
    return 0
