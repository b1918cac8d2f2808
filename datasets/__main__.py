"""``python -m datasets``: demo data, imports, districts and import templates."""

from __future__ import annotations

import sys

from datasets.domain.schema import KINDS
from datasets.operations.cli import (
    EXIT_USAGE,
    ChineseArgumentParser,
    db_url,
    integer,
    month_arg,
    number,
    run,
    warn_cache,
)


def build_parser() -> ChineseArgumentParser:
    parser = ChineseArgumentParser(prog="python -m datasets", description="政务服务效能评估看板：数据管理")
    sub = parser.add_subparsers(dest="command", required=True, metavar="子命令", parser_class=ChineseArgumentParser)

    demo = sub.add_parser("demo", help="生成示例城市数据")
    demo.add_argument("--db", metavar="URL", help="数据库 URL（默认 DATABASE_URL 或内置 SQLite）")
    demo.add_argument("--seed", type=integer, metavar="种子", default=7, help="随机种子（相同种子生成相同数据）")
    demo.add_argument("--scale", type=number, metavar="规模", default=1.0, help="规模：1 约 100 万条办件，10 约 1000 万条")

    imp = sub.add_parser("import", help="导入导出文件（校验通过才入库）")
    imp.add_argument("paths", nargs="+", metavar="文件", help="要导入的文件（.xlsx/.xls/.csv）")
    imp.add_argument("--kind", choices=list(KINDS), help="数据类型（默认按表头自动识别）")
    imp.add_argument("--district", metavar="区县", help="文件未含区县列时使用的区县")
    imp.add_argument("--period", type=month_arg, metavar="YYYY-MM", help="数据所属月份 YYYY-MM（事项清单必填）")
    imp.add_argument("--db", metavar="URL", help="数据库 URL")
    imp.add_argument("--report", metavar="问题清单.xlsx", help="问题清单输出路径（.xlsx）")
    imp.add_argument("--user", metavar="账号名", help="以该账号身份导入（按账号负责的区县检查权限）")

    dist = sub.add_parser("districts", help="区县配置")
    dsub = dist.add_subparsers(dest="action", required=True, metavar="子命令", parser_class=ChineseArgumentParser)
    add = dsub.add_parser("add", help="新增或更新区县")
    add.add_argument("name", metavar="区县名称", help="区县名称")
    add.add_argument("--code", metavar="区划代码", help="区划代码")
    add.add_argument("--alias", action="append", metavar="别名", default=[], help="别名（可多次指定）")
    add.add_argument("--db", metavar="URL", help="数据库 URL")
    lst = dsub.add_parser("list", help="列出区县")
    lst.add_argument("--db", metavar="URL", help="数据库 URL")

    users = sub.add_parser("users", help="账号管理")
    usub = users.add_subparsers(dest="action", required=True, metavar="子命令", parser_class=ChineseArgumentParser)
    uadd = usub.add_parser("add", help="新建账号")
    uadd.add_argument("username", metavar="账号名", help="账号名（使用单点登录时填写邮箱）")
    uadd.add_argument("--role", action="append", required=True, metavar="角色", help="角色：领导、工作人员、评估人员、管理员（可多次指定）")
    uadd.add_argument("--district", action="append", metavar="区县", default=[], help="工作人员负责的区县（可多次指定）")
    uadd.add_argument("--name", metavar="姓名", help="姓名")
    uadd.add_argument("--password", metavar="密码", help="密码（会出现在进程列表和命令历史中，建议改用 --password-stdin 或在终端输入）")
    uadd.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（一行），供脚本使用")
    uadd.add_argument("--db", metavar="URL", help="数据库 URL")
    upw = usub.add_parser("passwd", help="重设密码")
    upw.add_argument("username", metavar="账号名", help="账号名")
    upw.add_argument("--password", metavar="密码", help="新密码（会出现在进程列表和命令历史中，建议改用 --password-stdin 或在终端输入）")
    upw.add_argument("--password-stdin", action="store_true", help="从标准输入读取新密码（一行），供脚本使用")
    upw.add_argument("--db", metavar="URL", help="数据库 URL")
    udis = usub.add_parser("disable", help="停用账号")
    udis.add_argument("username", metavar="账号名", help="账号名")
    udis.add_argument("--db", metavar="URL", help="数据库 URL")
    ulist = usub.add_parser("list", help="列出账号")
    ulist.add_argument("--db", metavar="URL", help="数据库 URL")

    tpl = sub.add_parser("templates", help="生成导入模板（.xlsx）")
    tpl.add_argument("--out", default="templates", metavar="目录", help="输出目录")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line; a fault of the system is a Chinese line and exit code 3 (datasets.operations.cli.run)."""
    return run(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from datasets.storage import store

    if args.command == "templates":
        from datasets.intake.templates import write_templates

        for path in write_templates(args.out):
            print(f"已生成模板：{path}")
        return 0
    engine = store.make_engine(db_url(getattr(args, "db", None)))
    store.init_db(engine)
    if args.command == "demo":
        if args.scale <= 0:
            print("参数错误：--scale 必须大于 0", file=sys.stderr)
            return EXIT_USAGE
        from datasets.domain.workdays import load_calendar
        from datasets.sample.demo import generate_demo

        summary = generate_demo(engine, calendar=load_calendar(), seed=args.seed, scale=args.scale)
        print(summary)
        warn_cache(engine)
        return 0
    if args.command == "districts":
        if args.action == "add":
            store.add_district(engine, args.name, args.code, args.alias)
            print(f"已保存区县：{args.name}")
        else:
            table = store.list_districts(engine)
            if table.height == 0:
                print("尚未配置区县")
            for name, code, aliases in table.iter_rows():
                print(f"{name}\t{code or ''}\t{'、'.join(aliases)}")
        return 0
    if args.command == "users":
        return _users(engine, args)
    if args.command == "import":
        from datasets.intake.upload import cli_import

        return cli_import(engine, args)
    return EXIT_USAGE


def _read_password(given: str | None, from_stdin: bool = False) -> str:
    if from_stdin:
        if given:
            raise ValueError("--password 与 --password-stdin 只能指定一个")
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValueError("标准输入中没有读到密码（--password-stdin）")
        return line
    if given:
        return given
    import getpass

    first = getpass.getpass("密码：")
    if getpass.getpass("再次输入密码：") != first:
        raise ValueError("两次输入的密码不一致")
    return first


def _users(engine, args) -> int:
    from datasets.access import accounts

    try:
        if args.action == "add":
            accounts.add_user(engine, args.username, _read_password(args.password, args.password_stdin), args.role, args.district,
                              args.name, actor="命令行")
            print(f"已新建账号：{args.username}（{'、'.join(args.role)}）")
        elif args.action == "passwd":
            accounts.set_password(engine, args.username, _read_password(args.password, args.password_stdin), actor="命令行")
            print(f"已重设账号 {args.username} 的密码")
        elif args.action == "disable":
            accounts.set_active(engine, args.username, False, actor="命令行")
            print(f"已停用账号：{args.username}")
        else:
            table = accounts.list_users(engine)
            if table.height == 0:
                print("尚无账号")
            for row in table.iter_rows():
                print("\t".join(str(v or "") for v in row))
    except ValueError as exc:
        print(f"参数错误：{exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
