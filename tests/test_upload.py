"""Upload flows: check → store, replace, rollback, no-op re-import, overlapping exports, concurrency,
the ``import`` command line and the import templates."""

from __future__ import annotations

import io
import json
import multiprocessing
import threading
from argparse import Namespace

import openpyxl
import polars as pl
import pytest

from datasets.__main__ import main
from datasets.domain.schema import KINDS
from datasets.intake import templates
from datasets.intake.parsed import ERROR
from datasets.intake.readers import read_file
from datasets.intake.upload import check_file, cli_import, import_file, store_checked
from datasets.storage import store
from tests.bad_files.corpus import DISTRICT_A, DISTRICT_B, case_row, csv_bytes, rows, xlsx_bytes


@pytest.fixture
def engine(sqlite_engine):
    store.add_district(sqlite_engine, DISTRICT_A, code="110101", aliases=["甲"])
    store.add_district(sqlite_engine, DISTRICT_B)
    return sqlite_engine


def configure(engine) -> None:
    store.add_district(engine, DISTRICT_A, code="110101", aliases=["甲"])
    store.add_district(engine, DISTRICT_B)


def slot_batches(engine, kind="cases", district=DISTRICT_A, period="2024-05") -> pl.DataFrame:
    return store.batch_history(engine, kind, district).filter(pl.col("period") == period).sort("version")


# --- check and store ------------------------------------------------------------------------------


def test_check_stores_nothing_and_store_checked_stores_once(engine):
    before = store.record_counts(engine)
    check = check_file(engine, xlsx_bytes(rows("cases", 4), title="甲区2024年5月办件明细表"), "五月.xlsx")
    assert check.accepted and check.kind == "cases" and check.rows == 4
    assert check.periods == {DISTRICT_A: "2024-05"}
    assert store.record_counts(engine) == before
    result = store_checked(engine, check)
    assert (result.rows, result.rows_replaced, result.unchanged) == (4, 0, False)
    (batch,) = slot_batches(engine).iter_rows(named=True)
    assert (batch["version"], batch["state"], batch["rows"], batch["file_name"]) == (1, "active", 4, "五月.xlsx")
    assert batch["sha256"] == check.sha256 and len(check.sha256) == 64
    summary = json.loads(batch["summary"])
    assert summary["rows"] == 4 and summary["errors"] == 0
    assert batch["warnings"] == check.warning_count == summary["warnings"]


@pytest.mark.parametrize(
    ("accepted", "shown"),
    [(["2024-05-03 10:00:00"] * 3, f"{DISTRICT_A} 2024-05）"),
     (["2024-01-05 10:00:00", "2024-05-03 10:00:00", "2024-12-30 10:00:00"], f"{DISTRICT_A} 2024-01 至 2024-12）")],
)
def test_a_file_spanning_several_months_is_labelled_with_its_range(engine, accepted, shown):
    table = rows("cases", 3)
    for row, at in zip(table, accepted, strict=True):
        row["受理时间"] = at
        row["办结时间"] = at[:8] + str(int(at[8:10]) + 1).zfill(2) + at[10:]
    check = check_file(engine, csv_bytes(table), "全年.csv")
    assert check.accepted, [p.message for p in check.errors]
    assert shown in check.headline()


def test_warnings_are_recorded_with_the_batch(engine):
    _, result = import_file(engine, csv_bytes(rows("items", 2)), "清单.csv", period="2024-01")
    assert result is not None
    table = rows("cases", 3)
    table[2]["事项编码"] = "I99"
    check, result = import_file(engine, csv_bytes(table), "五月.csv", user_name="张三")
    assert result is not None and check.warning_count == 1
    (p,) = check.warnings
    assert (p.rule, p.row, p.value) == ("item_not_in_catalog", 4, "I99")
    batch = slot_batches(engine).row(0, named=True)
    assert batch["warnings"] == 1 and batch["user_name"] == "张三"
    assert json.loads(batch["summary"])["rules"]["item_not_in_catalog"]["count"] == 1


def test_district_column_missing_uses_the_uploaders_district(engine):
    table = [{k: v for k, v in r.items() if k != "所属区县"} for r in rows("hotline", 3)]
    check, result = import_file(engine, csv_bytes(table), "热线.csv", district="乙区")
    assert result is not None
    assert store.load_records(engine, "hotline")["district"].unique().to_list() == [DISTRICT_B]
    check, result = import_file(engine, csv_bytes(table), "热线.csv")
    assert result is None and [p.rule for p in check.errors] == ["district_missing"]


def test_catalog_needs_a_period_and_is_filed_under_it(engine):
    check, result = import_file(engine, csv_bytes(rows("items", 3)), "清单.csv")
    assert result is None and check.needs_period
    assert "适用月份" in check.errors[0].message
    check, result = import_file(engine, csv_bytes(rows("items", 3)), "清单.csv", period="2024-03")
    assert result is not None and [r.period for r in result.results] == ["2024-03"]


def test_several_districts_in_one_file_get_one_batch_each(engine):
    table = rows("evaluations", 4)
    table[2]["所属区县"] = table[3]["所属区县"] = DISTRICT_B
    _, result = import_file(engine, csv_bytes(table), "全市好差评.csv")
    assert sorted((r.district, r.rows) for r in result.results) == sorted([(DISTRICT_A, 2), (DISTRICT_B, 2)])
    assert len({b for b in store.batch_history(engine)["upload_id"]}) == 1


def test_month_volume_drop_against_the_stored_previous_month(engine):
    april = rows("hotline", 10, 受理时间="2024-04-10 09:00:00", 办结时间="2024-04-11 09:00:00")
    assert import_file(engine, csv_bytes(april), "四月.csv")[1] is not None
    check, result = import_file(engine, csv_bytes(rows("hotline", 4)), "五月.csv")
    assert result is not None
    (p,) = [w for w in check.warnings if w.rule == "month_volume_drop"]
    assert "2024-04" in p.message and "10" in p.message and "4" in p.message


# --- versions ---------------------------------------------------------------------------------


def test_replace_then_rollback(engine):
    first = rows("cases", 3)
    _, r1 = import_file(engine, xlsx_bytes(first), "五月.xlsx")
    assert sorted(store.load_records(engine, "cases")["case_id"]) == ["BJ000001", "BJ000002", "BJ000003"]
    corrected = rows("cases", 5)
    corrected[0]["办理状态"] = "在办"
    corrected[0]["办结时间"] = ""
    _, r2 = import_file(engine, xlsx_bytes(corrected), "五月（更正）.xlsx")
    assert (r2.rows, r2.rows_replaced) == (5, 3)
    assert [(r.version, r.rows_replaced) for r in r2.results] == [(2, 3)]
    history = slot_batches(engine)
    assert history.select("version", "state", "rows").rows() == [(1, "superseded", 3), (2, "active", 5)]
    current = store.load_records(engine, "cases")
    assert current.height == 5 and current["batch_id"].unique().to_list() == [r2.results[0].batch_id]
    assert current.filter(pl.col("case_id") == "BJ000001")["status"].item() == "在办"

    store.rollback_to(engine, r1.results[0].batch_id, user_name="管理员")
    current = store.load_records(engine, "cases")
    assert sorted(current["case_id"]) == ["BJ000001", "BJ000002", "BJ000003"]
    assert current.filter(pl.col("case_id") == "BJ000001")["status"].item() == "已办结"
    assert slot_batches(engine).select("version", "state").rows() == [(1, "active"), (2, "rolled_back")]


def test_identical_file_again_is_a_no_op_that_says_so(engine):
    data = xlsx_bytes(rows("cases", 3))
    import_file(engine, data, "五月.xlsx")
    before = (store.record_counts(engine), store.batch_history(engine).rows(), store.data_version(engine))
    check, result = import_file(engine, data, "五月-副本.xlsx")
    assert check.already_imported and result.unchanged
    assert "与已导入文件相同" in check.headline()
    assert (store.record_counts(engine), store.batch_history(engine).rows(), store.data_version(engine)) == before


def test_overlapping_exports_count_a_case_once(engine):
    """A case 在办 in the September export and 已办结 in the October export counts once, completed; the
    October file's September rows go into the October batch and never replace the September batch."""
    september = [case_row(i, 受理时间=f"2024-09-{10 + i} 09:00:00", 办结时间=f"2024-09-{11 + i} 09:00:00")
                 for i in range(1, 5)]
    september[3].update({"办件编号": "S-OPEN", "办理状态": "在办", "办结时间": ""})
    october = [case_row(i, 受理时间=f"2024-10-{10 + i} 09:00:00", 办结时间=f"2024-10-{11 + i} 09:00:00")
               for i in range(11, 16)]
    october.append(case_row(99, 办件编号="S-OPEN", 受理时间="2024-09-14 09:00:00", 办结时间="2024-10-08 10:00:00"))
    import_file(engine, csv_bytes(september), "九月.csv")
    _, r_oct = import_file(engine, csv_bytes(october), "十月.csv")
    assert [r.period for r in r_oct.results] == ["2024-10"] and r_oct.rows_replaced == 0
    sep_batch = slot_batches(engine, period="2024-09")
    assert sep_batch.select("state", "rows").rows() == [("active", 4)]
    current = store.load_records(engine, "cases")
    assert current.height == 4 + 6 - 1
    (row,) = current.filter(pl.col("case_id") == "S-OPEN").iter_rows(named=True)
    assert row["status"] == "已办结" and row["period"] == "2024-10"
    # re-importing the September file again changes nothing
    assert import_file(engine, csv_bytes(september), "九月.csv")[1].unchanged


def test_reads_after_imports_see_every_commit(engine):
    """Regression: reading the store between imports must not hide later imports (SQLite WAL)."""
    for month in range(1, 3):
        table = rows("hotline", 2, 受理时间=f"2024-0{month}-05 09:00:00", 办结时间=f"2024-0{month}-06 09:00:00")
        for r in table:
            r["工单编号"] += f"-{month}"
        import_file(engine, csv_bytes(table), f"{month}月.csv")
        assert store.load_records(engine, "hotline").height == 2 * month


# --- concurrency --------------------------------------------------------------------------------


def _variants(n_files: int, n_rows: int) -> list[bytes]:
    out = []
    for v in range(n_files):
        table = rows("cases", n_rows + v)
        for r in table:
            r["事项名称"] = f"版本{v}"
        out.append(csv_bytes(table))
    return out


def _assert_one_consistent_version(engine, files: int, n_rows: int) -> None:
    active = store.active_batches(engine, "cases")
    assert active.height == 1
    batch = active.row(0, named=True)
    current = store.load_records(engine, "cases")
    assert current.height == batch["rows"]
    assert current["case_id"].n_unique() == current.height  # no duplicates
    assert current["batch_id"].unique().to_list() == [batch["id"]]
    names = current["item_name"].unique().to_list()
    assert len(names) == 1  # never a mix of two files
    version = int(names[0].removeprefix("版本"))
    assert batch["rows"] == n_rows + version
    history = slot_batches(engine)
    assert sorted(history["version"].to_list()) == list(range(1, files + 1))
    assert history.filter(pl.col("state") == "active").height == 1


def test_concurrent_imports_of_the_same_slot_from_threads(any_engine):
    configure(any_engine)
    files = _variants(3, 200)
    checks = [check_file(any_engine, data, f"v{i}.csv") for i, data in enumerate(files)]
    barrier = threading.Barrier(len(checks))
    errors: list[BaseException] = []

    def run(check):
        try:
            barrier.wait()
            store_checked(any_engine, check)
        except BaseException as exc:  # collected and reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in checks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    _assert_one_consistent_version(any_engine, 3, 200)


def _import_in_process(url: str, check, barrier) -> None:
    engine = store.make_engine(url)
    barrier.wait()
    store_checked(engine, check)
    engine.dispose()


def test_concurrent_imports_of_the_same_slot_from_processes(any_engine):
    configure(any_engine)
    files = _variants(2, 300)
    url = any_engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    checks = [check_file(any_engine, data, f"p{i}.csv") for i, data in enumerate(files)]
    procs = [ctx.Process(target=_import_in_process, args=(url, check, barrier)) for check in checks]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0, 0]
    _assert_one_consistent_version(any_engine, 2, 300)


# --- command line -------------------------------------------------------------------------------


def cli(engine, paths, **kw) -> int:
    args = Namespace(paths=[str(p) for p in paths], kind=kw.get("kind"), district=kw.get("district"),
                     period=kw.get("period"), report=kw.get("report"), user=kw.get("user"), db=None)
    return cli_import(engine, args)


def test_cli_imports_and_says_what_it_stored(engine, tmp_path, capsys):
    path = tmp_path / "五月.xlsx"
    path.write_bytes(xlsx_bytes(rows("cases", 3)))
    assert cli(engine, [path]) == 0
    out = capsys.readouterr().out
    assert "五月.xlsx：已导入办件明细 3 行，替换 0 行，警告 1 条" in out  # warning: no catalog yet
    assert cli(engine, [path]) == 0
    assert "五月.xlsx：与已导入文件相同，未重复导入" in capsys.readouterr().out
    corrected = tmp_path / "五月更正.xlsx"
    corrected.write_bytes(xlsx_bytes(rows("cases", 4)))
    assert cli(engine, [corrected]) == 0
    assert "替换 3 行" in capsys.readouterr().out


def test_cli_rejects_a_bad_file_with_problems_and_a_report(engine, tmp_path, capsys):
    table = rows("cases", 80, 申请渠道="电话")
    bad = tmp_path / "坏.csv"
    bad.write_bytes(csv_bytes(table))
    good = tmp_path / "好.csv"
    good.write_bytes(csv_bytes(rows("hotline", 2)))
    report = tmp_path / "out" / "问题.xlsx"
    before = store.record_counts(engine)
    assert cli(engine, [bad], report=str(report)) == 1
    out = capsys.readouterr().out
    assert "未通过校验" in out and "未导入" in out
    listed = [line for line in out.splitlines() if line.startswith("  第 ")]
    assert len(listed) == 50 and "第 2 行［申请渠道］错误" in listed[0]
    assert "错误 80 处" in out
    assert store.record_counts(engine) == before
    wb = openpyxl.load_workbook(report)
    assert wb.sheetnames == ["问题清单", "规则汇总"]
    summary = list(wb["规则汇总"].iter_rows(min_row=2, values_only=True))
    assert ("错误", "取值不在允许范围", 80) in summary
    # several files: the good one is stored, the bad one is not, exit 1, one report per file
    assert cli(engine, [bad, good], report=str(report)) == 1
    assert store.record_counts(engine)["hotline"] == 2 and store.record_counts(engine)["cases"] == 0
    assert (tmp_path / "out" / "问题_坏.xlsx").exists()


def test_cli_unreadable_file(engine, tmp_path, capsys):
    path = tmp_path / "加密.xlsx"
    path.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504 + "EncryptedPackage".encode("utf-16-le"))
    assert cli(engine, [path]) == 1
    assert "密码" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["不存在.csv"], "文件不存在"),
        (["{items}", "--kind", "items"], "--period"),
        (["{items}"], "--period"),
        (["{hotline}", "--district", "火星区"], "--district"),
        (["{hotline}", "--period", "2024-13"], "--period"),
        (["{hotline}", "--report", "问题.txt"], "--report"),
        (["{hotline}", "--kind", "tickets"], "--kind"),
    ],
)
def test_cli_bad_arguments_exit_2_naming_the_argument(tmp_path, capsys, argv, fragment):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = store.make_engine(db)
    store.init_db(engine)
    configure(engine)
    (tmp_path / "清单.csv").write_bytes(csv_bytes(rows("items", 2)))
    (tmp_path / "热线.csv").write_bytes(csv_bytes(rows("hotline", 2)))
    argv = [a.format(items=tmp_path / "清单.csv", hotline=tmp_path / "热线.csv") for a in argv]
    argv = [str(tmp_path / a) if a.endswith(".csv") and "/" not in a else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["import", *argv, "--db", db]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "参数" in err
    assert store.record_counts(engine)["batches"] == 0


# --- templates ----------------------------------------------------------------------------------


def _expected_example(kind: str) -> dict:
    """The example row parsed the way the data model parses it."""
    from datasets.intake.parsing import parse_field

    k = KINDS[kind]
    raw = pl.DataFrame({f.name: [f.example or None] for f in k.fields}, schema={f.name: pl.String for f in k.fields})
    return raw.select([parse_field(pl.col(f.name), f).alias(f.name) for f in k.fields]).row(0, named=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_template_reads_back_as_its_example_row(kind):
    parsed = read_file(templates.template_bytes(kind), templates.file_name(kind))
    assert parsed.kind == kind
    assert parsed.frame.height == 1 and parsed.frame["_row"].to_list() == [2]
    assert set(parsed.headers) == {f.name for f in KINDS[kind].fields}
    assert parsed.headers == {f.name: f.header for f in KINDS[kind].fields}
    got = parsed.frame.row(0, named=True)
    for name, value in _expected_example(kind).items():
        assert got[name] == value, name
    assert not [p for p in parsed.problems if p.severity == ERROR]


@pytest.mark.parametrize("kind", list(KINDS))
def test_template_example_passes_validation(engine, kind):
    store.add_district(engine, "示例区")
    check = check_file(engine, templates.template_bytes(kind), templates.file_name(kind),
                       period="2024-05" if kind == "items" else None)
    assert check.accepted, [p.message for p in check.errors]


@pytest.mark.parametrize("kind", list(KINDS))
def test_template_guide_explains_every_column(kind):
    wb = openpyxl.load_workbook(io.BytesIO(templates.template_bytes(kind)))
    k = KINDS[kind]
    assert wb.sheetnames == [k.label, "填写说明"]
    assert [c.value for c in wb[k.label][1]] == [f.header for f in k.fields]
    guide = {r[0]: r for r in wb["填写说明"].iter_rows(min_row=4, values_only=True) if r[0]}
    for f in k.fields:
        _, required, aliases, allowed, description, _ = guide[f.header]
        if f.name != "district":
            assert required == ("是" if f.required else "否") or (kind, f.name) == ("evaluations", "rectify_status")
        assert (aliases or "") == "、".join(f.aliases)
        for value in f.allowed:
            assert value in allowed
        if f.description:
            assert description == f.description


def test_write_templates_and_the_templates_command(tmp_path, capsys):
    paths = templates.write_templates(tmp_path / "a")
    assert sorted(p.name for p in paths) == sorted(templates.file_name(k) for k in KINDS)
    assert main(["templates", "--out", str(tmp_path / "b")]) == 0
    assert len(list((tmp_path / "b").glob("*.xlsx"))) == 4
    assert "已生成模板" in capsys.readouterr().out


def test_check_reports_an_invalid_period_and_an_unreadable_file(engine):
    check = check_file(engine, csv_bytes(rows("items", 2)), "清单.csv", period="2024-13")
    assert not check.accepted and [p.rule for p in check.errors] == ["period_invalid"]
    assert "YYYY-MM" in check.errors[0].message
    check = check_file(engine, b"", "empty.csv")
    assert not check.accepted and check.parsed is None and check.frame.height == 0
    assert check.headline().startswith("empty.csv：无法读取")
    assert check.report_bytes()[:2] == b"PK"
