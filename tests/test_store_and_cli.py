"""The store's "newest import counts" rule end to end, and the metrics CLI contract."""

from __future__ import annotations

import datetime as dt
import io
import json

import polars as pl
import pytest
import sqlalchemy as sa

from datasets.domain.schema import KINDS
from datasets.intake.ingest import import_frame
from datasets.storage import store
from metrics.__main__ import REPORT_COLUMNS, main
from tests.factories import at, frame


def _cases(rows: list[dict]) -> pl.DataFrame:
    return frame("cases", rows).drop("batch_id", "period")


def _load_two_exports(engine) -> None:
    store.add_district(engine, "甲区")
    store.add_district(engine, "乙区")
    september = _cases([
        {"case_id": "C1", "accepted_at": at(2024, 9, 20), "status": "在办", "legal_limit": 10.0,
         "promised_limit": 5.0},
        {"case_id": "C2", "accepted_at": at(2024, 9, 23), "completed_at": at(2024, 9, 24), "channel": "网上申请",
         "legal_limit": 10.0, "promised_limit": 5.0},
        {"case_id": "C9", "district": "乙区", "accepted_at": at(2024, 9, 23), "completed_at": at(2024, 9, 25),
         "legal_limit": 10.0, "promised_limit": 5.0},
    ])
    october = _cases([
        # the September case again, now completed (Fri 09-20 → Tue 10-08: 23, 24, 25, 26, 27, 29 (make-up
        # Sunday), 30, 10-08 = 8 working days)
        {"case_id": "C1", "accepted_at": at(2024, 9, 20), "completed_at": at(2024, 10, 8), "legal_limit": 10.0,
         "promised_limit": 5.0},
        {"case_id": "C3", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 9), "channel": "移动端",
         "legal_limit": 10.0, "promised_limit": 5.0},
        {"case_id": "C4", "accepted_at": at(2024, 10, 10), "completed_at": at(2024, 10, 11), "legal_limit": 10.0,
         "promised_limit": 5.0},
    ])
    import_frame(engine, "cases", september, file_name="9月.xlsx", sha256="a" * 64)
    import_frame(engine, "cases", october, file_name="10月.xlsx", sha256="b" * 64)


def test_a_case_in_two_imports_counts_once_with_the_newest_row(any_engine):
    sqlite_engine = any_engine
    _load_two_exports(sqlite_engine)
    cases = store.load_records(sqlite_engine, "cases")
    assert cases.height == 5
    c1 = cases.filter(case_id="C1").row(0, named=True)
    assert c1["status"] == "已办结" and c1["period"] == "2024-10"
    # the October file's September row did not create or replace a September batch
    batches = store.batch_history(sqlite_engine, "cases", "甲区")
    assert sorted(batches["period"].to_list()) == ["2024-09", "2024-10"]
    assert set(batches["state"].to_list()) == {store.ACTIVE}
    # datetimes and numbers survive the round trip through the database unchanged
    c3 = cases.filter(case_id="C3").row(0, named=True)
    assert c3["accepted_at"] == at(2024, 10, 9) and c3["legal_limit"] == 10.0 and c3["channel"] == "移动端"
    assert cases.schema["accepted_at"] == pl.Datetime("us")


def test_a_corrected_earlier_export_does_not_override_a_later_month(sqlite_engine):
    _load_two_exports(sqlite_engine)
    corrected_september = _cases([
        {"case_id": "C1", "accepted_at": at(2024, 9, 20), "status": "在办", "legal_limit": 10.0,
         "promised_limit": 5.0},
        {"case_id": "C2", "accepted_at": at(2024, 9, 23), "completed_at": at(2024, 9, 24), "channel": "移动端",
         "legal_limit": 10.0, "promised_limit": 5.0},
    ])
    import_frame(sqlite_engine, "cases", corrected_september, file_name="9月更正.xlsx", sha256="c" * 64,
                 period="2024-09")
    cases = store.load_records(sqlite_engine, "cases")
    assert cases.filter(case_id="C1")["status"].to_list() == ["已办结"]  # October's export is later
    assert cases.filter(case_id="C2")["channel"].to_list() == ["移动端"]  # the correction replaced September's


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_columns_values_and_grouping(sqlite_engine, capsys):
    _load_two_exports(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    code, out, _ = _run(capsys, "report", "--db", url, "--from", "2024-09", "--to", "2024-10")
    assert code == 0
    table = pl.read_csv(io.StringIO(out), schema_overrides={"department": pl.String})
    assert table.columns == REPORT_COLUMNS
    jia = {r["indicator"]: r for r in table.filter(district="甲区").iter_rows(named=True)}
    # accepted Sept–Oct in 甲区: C1, C2, C3, C4; online: C2, C3
    assert (jia["online_case_rate"]["numerator"], jia["online_case_rate"]["denominator"]) == (2, 4)
    assert jia["online_case_rate"]["value"] == pytest.approx(0.5)
    assert jia["online_case_rate"]["name"] == "实际网办率"
    assert (jia["completion_rate"]["numerator"], jia["completion_rate"]["denominator"]) == (4, 4)
    # handling days of C2 (1), C1 (8), C3 (0), C4 (1) → 10 / 4
    assert jia["avg_handling_days"]["value"] == pytest.approx(2.5)
    assert set(table["period_from"]) == {"2024-09"} and set(table["period_to"]) == {"2024-10"}
    assert (table["department"].fill_null("") == "").all()  # empty unless --by department
    # no evaluations: null value, shown empty, never 0
    assert "good_rate" not in jia or jia["good_rate"]["value"] is None

    code, out, _ = _run(capsys, "report", "--db", url, "--from", "2024-09", "--to", "2024-10", "--by", "city",
                        "--format", "json")
    city = {r["indicator"]: r for r in json.loads(out)}
    assert {r["district"] for r in city.values()} == {"全市"}
    assert (city["online_case_rate"]["numerator"], city["online_case_rate"]["denominator"]) == (2, 5)

    code, out, _ = _run(capsys, "report", "--db", url, "--by", "department")
    dept = pl.read_csv(io.StringIO(out))
    assert set(dept["period_from"]) == {"2024-10"}  # default: the latest month with data
    assert set(dept["department"]) == {"区市场监管局"}


def test_bad_from_is_a_chinese_error_with_exit_2(sqlite_engine, capsys):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    with pytest.raises(SystemExit) as exc:
        main(["report", "--db", url, "--from", "2024-13"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--from" in err and "不是有效的月份" in err
    code, _, err = _run(capsys, "rank", "--db", url, "--period", "2024-Q5")
    assert code == 2 and "--period" in err
    code, _, err = _run(capsys, "rank", "--db", url, "--period", "2024", "--format", "xlsx")
    assert code == 2 and "--out" in err


def test_rank_csv_and_xlsx(sqlite_engine, capsys, tmp_path):
    _load_two_exports(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    code, out, _ = _run(capsys, "rank", "--db", url, "--period", "2024-Q3")
    assert code == 0
    table = pl.read_csv(io.StringIO(out))
    assert table.columns[:4] == ["district", "rank", "rank_change", "index"]
    assert "online_case_rate" in table.columns and "group_A" in table.columns
    # Cases only: no district has the evaluations and catalog the index needs, so none is ranked, and
    # every row says why (the reason is the last column, after the contract's columns).
    assert table.columns[-1] == "unranked_reason" and table["rank"].null_count() == table.height == 2
    assert table.filter(pl.col("district") == "甲区")["unranked_reason"][0] == (
        "缺少 2024-07 办件明细；缺少 2024-08 办件明细；缺少 2024-07 好差评；缺少 2024-08 好差评；缺少 2024-09 好差评；无事项清单")
    out_path = tmp_path / "rank.xlsx"
    code, _, _ = _run(capsys, "rank", "--db", url, "--period", "2024-10", "--format", "xlsx", "--out", str(out_path))
    assert code == 0
    import openpyxl

    book = openpyxl.load_workbook(out_path)
    assert book.sheetnames == ["排名", "指标说明"]
    # Cases only, so no month is complete: the first row says so (issue 24), the header follows.
    assert book["排名"]["A1"].value == (
        "2024年10月数据未报齐。数据截至 2024年10月31日，已报送 0/2 个区县；未报送：甲区（缺好差评）、乙区")
    assert book["排名"]["A2"].value == "区县" and book["排名"].freeze_panes == "B3"


def test_upload_deadline_is_the_tenth_of_the_following_month():
    import datetime as dt

    from datasets.intake.ingest import is_late

    assert not is_late("2024-09", dt.datetime(2024, 10, 10, 23, 59))
    assert is_late("2024-09", dt.datetime(2024, 10, 11, 0, 1))
    assert not is_late("2024-12", dt.datetime(2025, 1, 9))
    assert is_late("2024-12", dt.datetime(2025, 2, 1))


def test_stored_datetime_text_with_or_without_fractions_is_read_back():
    # SQLite keeps datetimes as text; rows written by other tools may carry fractions of a second.
    raw = pl.DataFrame({"accepted_at": ["2024-10-09 08:30:15", None, "2024-10-09 08:30:15.250000"]})
    got = raw.select(store.cast_column(raw, "accepted_at", pl.Datetime("us")))["accepted_at"].to_list()
    assert got == [at(2024, 10, 9, 8, 30) + dt.timedelta(seconds=15), None,
                   at(2024, 10, 9, 8, 30) + dt.timedelta(seconds=15.25)]
    whole = pl.DataFrame({"accepted_at": ["2024-10-09 08:30:15", None]})
    assert whole.select(store.cast_column(whole, "accepted_at", pl.Datetime("us")))["accepted_at"].to_list() == [
        at(2024, 10, 9, 8, 30) + dt.timedelta(seconds=15), None]


def test_a_column_empty_in_the_first_thousands_of_rows_is_read_with_its_type(sqlite_engine):
    # The SQLite reader guesses column types from the first rows: 2,000 open cases (no 办结时间)
    # before a completed one once made it read 办结时间 as integers and fail.
    store.add_district(sqlite_engine, "甲区")
    rows = [{"case_id": f"O{n}", "accepted_at": at(2024, 10, 9), "status": "在办", "completed_at": None}
            for n in range(2000)]
    rows.append({"case_id": "DONE", "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 10)})
    import_frame(sqlite_engine, "cases", _cases(rows), file_name="open.xlsx", sha256="o" * 64)
    cases = store.load_records(sqlite_engine, "cases")
    assert cases.height == 2001
    assert cases.filter(case_id="DONE")["completed_at"].to_list() == [at(2024, 10, 10)]
    by_district = dict(store.load_records_by_district(sqlite_engine, "cases", ["甲区", "乙区"]))
    assert by_district["甲区"].equals(cases) and by_district["乙区"].height == 0


@pytest.mark.parametrize("rows", [None, 0], ids=["child", "in_process"])
def test_a_failed_read_says_so_in_chinese(sqlite_engine, rows):
    with pytest.raises(RuntimeError, match=r"读取数据库失败.*no such column"):
        list(store.sqlite_read_many(sqlite_engine, ["SELECT 1 AS a", "SELECT nope FROM cases"], rows))


def test_small_reads_in_this_process_equal_the_child_reads(small_sqlite):
    """Reads of up to store.IN_PROCESS_ROWS rows stay in this process: the same current records as the
    ADBC child gives (types from the sentinel row, datetimes parsed from text)."""
    for kind in ("cases", "items", "evaluations", "hotline"):
        active = store.active_batches(small_sqlite, kind)
        sql = store.record_query(kind, active["id"].to_list(), sqlite=True)
        child, = store.sqlite_read_many(small_sqlite, [sql])
        here, = store.sqlite_read_many(small_sqlite, [sql], rows=0)
        assert here.height == child.height == int(active["rows"].sum()) + 1, kind
        assert store.newest_rows(kind, here, active).equals(store.newest_rows(kind, child, active)), kind


# --- as-of dates (数据截止日) --------------------------------------------------------------------


@pytest.mark.parametrize(("period", "imported", "exported", "expected"), [
    ("2024-10", dt.datetime(2024, 11, 3, 9), None, dt.date(2024, 10, 31)),  # imported after the month
    ("2026-12", dt.datetime(2026, 12, 7, 9, 30), None, dt.date(2026, 12, 7)),  # imported within it
    ("2026-12", dt.datetime(2026, 12, 7, 9, 30), dt.date(2026, 12, 5), dt.date(2026, 12, 5)),  # exported earlier
    ("2024-02", dt.datetime(2024, 3, 1), dt.date(2024, 3, 1), dt.date(2024, 2, 29)),  # leap February
    ("2024-12", dt.datetime(2025, 1, 2), None, dt.date(2024, 12, 31)),  # December
])
def test_as_of_date_is_the_earliest_of_month_end_import_and_export(period, imported, exported, expected):
    assert store.as_of_date(period, imported, exported) == expected


def test_an_import_records_its_as_of_date_and_its_records_carry_it(sqlite_engine):
    store.add_district(sqlite_engine, "甲区")
    early = _cases([{"case_id": "C1", "accepted_at": at(2026, 12, 2), "status": "在办", "promised_limit": 5.0}])
    import_frame(sqlite_engine, "cases", early, file_name="12月.xlsx", sha256="e" * 64,
                 created_at=dt.datetime(2026, 12, 7, 9, 30))
    assert store.active_batches(sqlite_engine)["as_of"].to_list() == [dt.date(2026, 12, 7)]
    assert store.load_records(sqlite_engine, "cases")["as_of"].to_list() == [dt.date(2026, 12, 7)]
    # A later import of the same month wins, and so does its as-of date (the file says it was exported 12-20).
    later = _cases([{"case_id": "C1", "accepted_at": at(2026, 12, 2), "status": "在办", "promised_limit": 5.0}])
    import_frame(sqlite_engine, "cases", later, file_name="12月补.xlsx", sha256="f" * 64,
                 created_at=dt.datetime(2026, 12, 21, 9), exported=dt.date(2026, 12, 20))
    assert store.load_records(sqlite_engine, "cases")["as_of"].to_list() == [dt.date(2026, 12, 20)]


def test_the_export_time_title_line_sets_the_as_of_date(sqlite_engine):
    from datasets.intake import upload

    store.add_district(sqlite_engine, "甲区")
    import_frame(sqlite_engine, "items", frame("items", [{"item_code": "I1"}]).drop("batch_id", "period"),
                 file_name="清单.xlsx", sha256="i" * 64, period="2024-01")
    text = ("甲区办件明细\n导出时间：2024-10-25 09:30\n"
            "办件编号,所属区县,实施部门,事项编码,事项名称,申请渠道,受理时间,办理状态,承诺时限\n"
            "C1,甲区,区市场监管局,I1,事项,窗口,2024-10-22 10:00,在办,5\n")
    check, result = upload.import_file(sqlite_engine, text.encode("utf-8"), "10月.csv", kind="cases")
    assert result is not None and result.rows == 1, [p.message for p in check.problems]
    assert check.parsed.exported == dt.date(2024, 10, 25)
    assert store.active_batches(sqlite_engine, "cases")["as_of"].to_list() == [dt.date(2024, 10, 25)]


def test_a_store_made_before_as_of_dates_gets_them(any_engine):
    """An existing database without the column: init_db adds it and fills it from period and import time."""
    store.add_district(any_engine, "甲区")
    import_frame(any_engine, "cases", _cases([{"case_id": "C1", "accepted_at": at(2024, 10, 9)}]),
                 file_name="10月.xlsx", sha256="a" * 64, created_at=dt.datetime(2024, 11, 3, 9))
    import_frame(any_engine, "cases", _cases([{"case_id": "C2", "accepted_at": at(2026, 12, 2), "status": "在办"}]),
                 file_name="12月.xlsx", sha256="b" * 64, created_at=dt.datetime(2026, 12, 7, 9, 30))
    with any_engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE batches DROP COLUMN as_of")
    store.init_db(any_engine)
    store.init_db(any_engine)  # a second start changes nothing
    got = store.active_batches(any_engine).sort("period")
    assert got["as_of"].to_list() == [dt.date(2024, 10, 31), dt.date(2026, 12, 7)]
    assert sorted(store.load_records(any_engine, "cases")["as_of"].to_list()) == got["as_of"].to_list()


def test_a_store_made_with_the_record_key_indexes_loses_them(any_engine):
    """Records are read by batch only: the (district, id) indexes older stores have are dropped at start,
    and imports and reads work as before."""
    from datasets.storage.tables import UNUSED_INDEXES, record_tables

    store.add_district(any_engine, "甲区")
    with any_engine.begin() as conn:
        for kind, table in record_tables.items():
            conn.exec_driver_sql(f"CREATE INDEX ix_{kind}_key ON {table.name} (district, {KINDS[kind].id_field})")

    def indexes() -> set[str]:
        inspector = sa.inspect(any_engine)
        return {ix["name"] for table in record_tables.values() for ix in inspector.get_indexes(table.name)}

    assert set(UNUSED_INDEXES) <= indexes()
    store.init_db(any_engine)
    store.init_db(any_engine)  # a second start changes nothing
    assert indexes() == {f"ix_{kind}_batch" for kind in KINDS}
    import_frame(any_engine, "cases", _cases([{"case_id": "C1", "accepted_at": at(2024, 10, 9)}]),
                 file_name="10月.xlsx", sha256="a" * 64)
    assert store.load_records(any_engine, "cases")["case_id"].to_list() == ["C1"]


@pytest.mark.parametrize(("rows", "expected"), [
    ([["某区办件明细"], ["导出时间：2026-12-07 09:30"]], dt.date(2026, 12, 7)),
    ([["导出时间", None, " 2026/12/5 "]], dt.date(2026, 12, 5)),  # the value in the next filled cell
    ([["导出日期: 2026年12月3日"]], dt.date(2026, 12, 3)),
    ([["导出时间 2026-12-04 18:00"]], dt.date(2026, 12, 4)),  # no colon
    ([["导出时间：2026-12-07"], ["导出时间：2026-12-02"]], dt.date(2026, 12, 2)),  # several: the earliest
    ([["导出时间：不详"]], None),  # unreadable: states nothing
    ([["统计时间：2026-12-01"]], None),  # not the export time
    ([], None),
])
def test_export_date_of_the_title_rows(rows, expected):
    from datasets.intake.readers import export_date

    assert export_date(rows) == expected
