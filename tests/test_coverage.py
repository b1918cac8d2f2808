"""Complete months, the default period, quarters and years to date, and withdrawing an import (issue 24).

The store: 甲区 and 乙区 report 办件明细 and 好差评 for 2026-10 and 2026-11 (catalogs from 2026-10);
on 2026-12-07 甲区 imports an early December file. ``today`` is always passed in.
"""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets.access import accounts
from datasets.access.accounts import STAFF, PermissionDenied
from datasets.domain.periods import Period, parse_period, to_date
from datasets.domain.vocabulary import Rules
from datasets.intake import ingest, upload
from datasets.intake.ingest import import_frame
from datasets.storage import coverage, quality, store
from datasets.storage.coverage import Coverage, coverage_of
from metrics import bulletin, overview
from metrics.__main__ import main, report_table
from metrics.exports import rank_csv_bytes, rank_xlsx_bytes
from metrics.scoring import load_settings, ranking
from metrics.service import compute_components
from tests.factories import at, frame

TODAY = dt.date(2026, 12, 7)
DISTRICTS = ("甲区", "乙区")


def _cases(district: str, month: str, n: int = 2, *, online: int = 1) -> pl.DataFrame:
    y, m = int(month[:4]), int(month[5:7])
    rows = [{"case_id": f"{district}-{month}-{k}", "district": district, "accepted_at": at(y, m, 3 + k),
             "completed_at": at(y, m, 4 + k), "channel": "网上申请" if k < online else "窗口",
             "legal_limit": 10.0, "promised_limit": 5.0} for k in range(n)]
    return frame("cases", rows).drop("batch_id", "period")


def _evaluations(district: str, month: str) -> pl.DataFrame:
    y, m = int(month[:4]), int(month[5:7])
    rows = [{"eval_id": f"E-{district}-{month}", "district": district, "case_id": f"{district}-{month}-0",
             "rating": 5, "evaluated_at": at(y, m, 6)}]
    return frame("evaluations", rows).drop("batch_id", "period")


def _items(district: str) -> pl.DataFrame:
    rows = [{"item_code": "I1", "district": district, "online_depth": 3, "online_available": True,
             "promised_limit": 5.0, "legal_limit": 10.0}]
    return frame("items", rows).drop("batch_id", "period")


def _month(engine, month: str, districts=DISTRICTS, kinds=("cases", "evaluations"),
           created: dt.datetime | None = None) -> list[int]:
    """Import a month's exports of ``districts``; returns the batch ids."""
    y, m = int(month[:4]), int(month[5:7])
    created = created or (dt.datetime(y + 1, 1, 5) if m == 12 else dt.datetime(y, m + 1, 5))
    ids = []
    for d in districts:
        for kind in kinds:
            data = _cases(d, month) if kind == "cases" else _evaluations(d, month)
            result = import_frame(engine, kind, data, file_name=f"{d}{month}{kind}.xlsx",
                                  sha256=f"{d}{month}{kind}".encode().hex()[:64].ljust(64, "0"), created_at=created)
            ids += [r.batch_id for r in result.results]
    return ids


def _city(engine) -> None:
    for d in DISTRICTS:
        store.add_district(engine, d)
        import_frame(engine, "items", _items(d), file_name=f"{d}清单.xlsx", sha256=f"{d}items".encode().hex().ljust(64, "0"),
                     period="2026-10", created_at=dt.datetime(2026, 11, 2))
    _month(engine, "2026-10")
    _month(engine, "2026-11")


def _early_december(engine) -> list[int]:
    return _month(engine, "2026-12", districts=("甲区",), created=dt.datetime(2026, 12, 7, 9, 30))


@pytest.fixture
def city(sqlite_engine):
    _city(sqlite_engine)
    return sqlite_engine


# --- complete months -------------------------------------------------------------------------------------


def test_all_districts_with_cases_and_evaluations_make_a_complete_month(city):
    cover = coverage.coverage(city, Rules(), TODAY)
    assert list(cover.months) == ["2026-10", "2026-11"]
    assert all(s.complete for s in cover.months.values())
    assert cover.latest_complete == cover.default_month == "2026-11"
    assert cover.months["2026-11"].as_of == dt.date(2026, 11, 30)  # imported 12-05, capped at the month's end
    assert cover.banner(Period("2026-11", "2026-11")) is None
    assert cover.month_label("2026-11") == "2026年11月"


def test_an_early_upload_is_a_partial_month_that_is_not_the_default(city):
    _early_december(city)
    cover = coverage.coverage(city, Rules(), TODAY)
    december = cover.months["2026-12"]
    assert (december.complete, december.reported, december.missing) == (False, ("甲区",), ("乙区",))
    assert december.as_of == dt.date(2026, 12, 7)
    assert december.note == "数据截至 2026年12月7日，已报送 1/2 个区县；未报送：乙区"
    assert cover.default_month == "2026-11"
    assert cover.month_label("2026-12") == "2026年12月（未报齐）"
    assert cover.period_label("2026-Q4") == "2026年第4季度（未报齐）"
    assert cover.period_label("2026-10") == "2026年10月"
    # A period of several months names the partial month.
    assert cover.banner(Period("2026-11", "2026-12")) == f"2026年12月：{december.note}"


def test_one_missing_kind_leaves_the_month_partial(city):
    _month(city, "2026-12", districts=("甲区",), created=dt.datetime(2027, 1, 4))
    _month(city, "2026-12", districts=("乙区",), kinds=("cases",), created=dt.datetime(2027, 1, 4))
    cover = coverage.coverage(city, Rules(), dt.date(2027, 1, 8))
    assert cover.months["2026-12"].missing == ("乙区",)
    assert cover.months["2026-12"].note == "数据截至 2026年12月31日，已报送 1/2 个区县；未报送：乙区（缺好差评）"
    assert cover.default_month == "2026-11"
    # The ranking's rule decides: without 好差评 among its needs, December is complete.
    relaxed = coverage.coverage(city, Rules(rank_needs_evaluations=False), dt.date(2027, 1, 8))
    assert relaxed.default_month == "2026-12"


def test_the_current_month_is_not_complete_until_it_has_ended(city):
    _month(city, "2026-12", created=dt.datetime(2026, 12, 7, 9))
    assert coverage.coverage(city, Rules(), TODAY).months["2026-12"].complete is False
    assert coverage.coverage(city, Rules(), TODAY).default_month == "2026-11"
    assert coverage.coverage(city, Rules(), dt.date(2026, 12, 31)).default_month == "2026-11"
    later = coverage.coverage(city, Rules(), dt.date(2027, 1, 1))
    assert later.default_month == "2026-12" and later.months["2026-12"].complete


def test_no_complete_month_in_the_last_twelve_gives_the_latest_month_with_data_labelled_partial(sqlite_engine):
    for d in DISTRICTS:
        store.add_district(sqlite_engine, d)
    _month(sqlite_engine, "2026-10", districts=("甲区",))
    _month(sqlite_engine, "2026-11", districts=("甲区",))  # 乙区 never reports
    cover = coverage.coverage(sqlite_engine, Rules(), TODAY)
    assert cover.latest_complete is None and cover.default_month == "2026-11"
    assert cover.banner(Period("2026-11", "2026-11")) == "数据截至 2026年11月30日，已报送 1/2 个区县；未报送：乙区"


@pytest.mark.parametrize(("complete_month", "default"), [("2025-12", "2025-12"), ("2025-11", "2026-11")])
def test_a_complete_month_counts_only_within_the_last_twelve(complete_month, default):
    months = ["2025-11", "2025-12", "2026-11"]
    grid = pl.DataFrame(
        [(d, m, k, quality.PRESENT if (m == complete_month or d == "甲区") else quality.MISSING)
         for d in DISTRICTS for m in months for k in ("cases", "evaluations")],
        schema=["district", "month", "kind", "status"], orient="row")
    as_of = {m: coverage.month_end(m) for m in months}
    assert coverage_of(grid, as_of, list(DISTRICTS), Rules(), TODAY).default_month == default


# --- periods to date ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "latest", "label", "months"), [
    ("2026", "2026-11", "2026年（1—11月）", ("2026-01", "2026-11")),
    ("2026-Q4", "2026-11", "2026年第4季度（10—11月）", ("2026-10", "2026-11")),
    ("2026-Q4", "2026-10", "2026年第4季度（10月）", ("2026-10", "2026-10")),
    ("2026-Q3", "2026-11", "2026年第3季度", ("2026-07", "2026-09")),  # ended: whole
    ("2026-11", "2026-10", "2026年11月", ("2026-11", "2026-11")),  # a month is never cut
    ("2027", "2026-11", "2027年", ("2027-01", "2027-12")),  # nothing complete in it: as chosen
])
def test_quarters_and_years_in_progress_are_measured_to_date(key, latest, label, months):
    period = to_date(parse_period(key), latest)
    assert period.label == label and (period.first, period.last) == months
    assert parse_period(period.key) == period  # the key round-trips (cache keys, the CLI)


def test_a_year_to_date_compares_with_the_same_months_a_year_earlier():
    ytd = parse_period("2026~2026-11")
    assert ytd.label == "2026年（1—11月）" and ytd.whole == parse_period("2026")
    assert ytd.previous().label == "2025年（1—11月）" and ytd.year_ago() == ytd.previous()
    assert parse_period("2026-Q4~2026-11").previous().label == "2026年第3季度（7—8月）"
    with pytest.raises(ValueError, match="不在2026年第4季度内"):
        parse_period("2026-Q4~2026-09")


def test_the_year_to_date_sums_its_months_and_the_quarter_is_ranked_on_them(city):
    _early_december(city)
    settings = load_settings(city)
    comps = compute_components(city, settings)
    cover = coverage.coverage(city, settings.rules, TODAY)
    year = cover.measured(parse_period("2026"))
    assert year == Period("2026-01", "2026-11", "2026")
    whole = report_table(comps, year, "city").filter(pl.col("indicator") == "online_case_rate").row(0, named=True)
    monthly = pl.concat([report_table(comps, Period(m, m), "city") for m in year.months]).filter(
        pl.col("indicator") == "online_case_rate")
    # 2 districts × 2 months × 2 cases, one online each: 4 of 8, December's 2 cases not among them.
    assert (whole["numerator"], whole["denominator"]) == (4.0, 8.0)
    assert (monthly["numerator"].sum(), monthly["denominator"].sum()) == (4.0, 8.0)
    inventory = store.active_batches(city)
    quarter = ranking(comps, cover.measured(parse_period("2026-Q4")), settings, inventory, list(DISTRICTS))
    assert quarter["ranked"].to_list() == [True, True]
    whole_quarter = ranking(comps, parse_period("2026-Q4"), settings, inventory, list(DISTRICTS))
    assert whole_quarter.filter(district="乙区")["unranked_reason"][0] == "缺少 2026-12 办件明细；缺少 2026-12 好差评"


# --- the default period after a partial December upload -------------------------------------------------


def _views(engine, capsysbinary, tmp_path, monkeypatch) -> dict[str, object]:
    settings = load_settings(engine)
    comps = compute_components(engine, settings)
    cover = coverage.coverage(engine, settings.rules, TODAY)
    period = cover.default_period
    assert period is not None
    cards = overview.overview_cards(comps, period, settings, None, ["online_case_rate"])
    inputs = bulletin.load_inputs(engine, comps, settings, period, today=TODAY, cover=cover)
    url = engine.url.render_as_string(hide_password=False)
    capsysbinary.readouterr()
    assert main(["report", "--db", url], today=TODAY) == 0
    report = capsysbinary.readouterr().out
    assert main(["rank", "--db", url], today=TODAY) == 0
    rank = capsysbinary.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(["bulletin", "--db", url], today=TODAY) == 0  # named after its period
    return {"period": period, "cards": [(c.key, c.value, c.mom) for c in cards], "report": report, "rank": rank,
            "bulletin": bulletin.build_bulletin(inputs, with_charts=False).text(),
            "bulletin_cli": capsysbinary.readouterr().out.decode().split("（")[0]}


def test_a_partial_december_upload_changes_no_default_view(city, capsysbinary, tmp_path, monkeypatch):
    before = _views(city, capsysbinary, tmp_path, monkeypatch)
    assert before["period"] == Period("2026-11", "2026-11")
    assert b"2026-11,2026-11" in before["report"]
    assert before["bulletin_cli"] == "已生成：效能评估通报_2026-11.docx"
    _early_december(city)
    after = _views(city, capsysbinary, tmp_path, monkeypatch)
    assert after == before
    assert "数据截至" not in after["bulletin"]


def test_december_chosen_on_purpose_is_labelled(city, capsys, tmp_path):
    _early_december(city)
    settings = load_settings(city)
    comps = compute_components(city, settings)
    december = Period("2026-12", "2026-12")
    inputs = bulletin.load_inputs(city, comps, settings, december, today=TODAY)
    note = "数据截至 2026年12月7日，已报送 1/2 个区县；未报送：乙区"
    assert inputs.note == note
    text = bulletin.build_bulletin(inputs, with_charts=False).text()
    assert f"注：本期数据未报齐，{note}。" in text
    url = city.url.render_as_string(hide_password=False)
    assert main(["report", "--db", url, "--from", "2026-12"], today=TODAY) == 0
    assert f"注意：2026年12月数据未报齐，{note}" in capsys.readouterr().err
    # Downloads: the first line of the CSV, the first row of the first sheet.
    rank = ranking(comps, december, settings, store.active_batches(city), list(DISTRICTS))
    lines = rank_csv_bytes(rank, note).decode("utf-8-sig").splitlines()
    assert lines[0] == note and lines[1].startswith("区县,排名")
    book = openpyxl.load_workbook(io.BytesIO(rank_xlsx_bytes(rank, december, settings, note=note)))
    first = book.worksheets[0]
    assert first.title == "排名" and first["A1"].value == f"2026年12月数据未报齐。{note}" and first["A2"].value == "区县"
    plain = openpyxl.load_workbook(io.BytesIO(rank_xlsx_bytes(rank, december, settings)))
    assert plain.worksheets[0]["A1"].value == "区县"


def test_the_cli_measures_the_year_to_date(city, capsys):
    _early_december(city)
    url = city.url.render_as_string(hide_password=False)
    assert main(["report", "--db", url, "--from", "2026-01", "--to", "2026-12", "--by", "city"], today=TODAY) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split(",")[2:4] == ["2026-01", "2026-11"]


# --- withdrawing an import --------------------------------------------------------------------------------


def _numbers(engine) -> pl.DataFrame:
    settings = load_settings(engine)
    comps = compute_components(engine, settings)
    return report_table(comps, Period("2026-10", "2026-12"), "district", list(DISTRICTS))


def test_withdraw_and_restore_an_import_without_an_older_version(any_engine):
    engine = any_engine
    _city(engine)
    staff = accounts.add_user(engine, "jia", "pw-jia-123456", (STAFF,), ("甲区",), "甲区员")
    other = accounts.add_user(engine, "yi", "pw-yi-1234567", (STAFF,), ("乙区",), "乙区员")
    before = _numbers(engine)
    # The December file also brings a November case again, changed: withdrawn, November is as before.
    november_again = _cases("甲区", "2026-11", n=1, online=0)
    december = pl.concat([_cases("甲区", "2026-12"), november_again])
    batch = import_frame(engine, "cases", december, file_name="甲区12月.xlsx", sha256="d" * 64,
                         created_at=dt.datetime(2026, 12, 7)).results[0].batch_id
    imported = _numbers(engine)
    assert not imported.equals(before)

    with pytest.raises(PermissionDenied, match="只能撤销 乙区 的数据，不能撤销 甲区 的数据"):
        ingest.withdraw(engine, batch, other, page="数据上传")
    assert store.batch_history(engine).filter(pl.col("id") == batch)["state"][0] == store.ACTIVE

    done = ingest.withdraw(engine, batch, staff, page="数据上传")
    assert (done["district"], done["period"], done["version"]) == ("甲区", "2026-12", 1)
    assert _numbers(engine).equals(before)
    history = store.batch_history(engine)
    assert quality.batch_table(history.filter(pl.col("id") == batch))["状态"].to_list() == ["已撤销"]
    assert ingest.withdraw_candidates(history, ("甲区",)).filter(pl.col("id") == batch).height == 0
    with pytest.raises(ValueError, match="不是在用版本"):
        ingest.withdraw(engine, batch, staff)

    # The withdrawal is rolled back like any version.
    assert batch in quality.rollback_candidates(history, ("甲区",))["id"].to_list()
    upload.rollback(engine, batch, staff, page="数据上传")
    assert _numbers(engine).equals(imported)

    log = accounts.audit_entries(engine, 10)
    rows = log.filter(pl.col("操作").is_in(["撤销导入", "回滚"]))[["操作", "账号", "内容", "页面"]].rows()
    assert rows == [
        ("回滚", "jia", "甲区 2026-12 办件明细 回滚到第 1 版", "数据上传"),
        ("撤销导入", "jia", f"甲区 2026-12 办件明细 撤销第 1 版（批次 {batch}，3 行）", "数据上传"),
    ]


def test_withdrawing_a_corrected_version_brings_back_the_one_it_replaced(sqlite_engine):
    store.add_district(sqlite_engine, "甲区")
    first = import_frame(sqlite_engine, "cases", _cases("甲区", "2026-11"), file_name="a.xlsx",
                         sha256="a" * 64).results[0].batch_id
    second = import_frame(sqlite_engine, "cases", _cases("甲区", "2026-11", n=3), file_name="b.xlsx",
                          sha256="b" * 64).results[0].batch_id
    assert store.load_records(sqlite_engine, "cases").height == 3
    done = ingest.withdraw(sqlite_engine, second, None, actor_name="命令行")
    assert (done["version"], done["restored_version"]) == (2, 1)
    states = dict(store.batch_history(sqlite_engine).select("id", "state").iter_rows())
    assert states == {first: store.ACTIVE, second: store.WITHDRAWN}
    assert store.load_records(sqlite_engine, "cases").height == 2
    # Withdrawing the first too leaves the month empty; a withdrawn version is never brought back.
    ingest.withdraw(sqlite_engine, first, None, actor_name="命令行")
    assert store.load_records(sqlite_engine, "cases").height == 0
    third = import_frame(sqlite_engine, "cases", _cases("甲区", "2026-11", n=1), file_name="c.xlsx",
                         sha256="c" * 64).results[0].batch_id
    assert ingest.withdraw(sqlite_engine, third, None)["restored_version"] is None
    assert store.active_batches(sqlite_engine).height == 0


def test_coverage_without_data_has_no_default():
    cover = coverage_of(pl.DataFrame(schema={"district": pl.String, "month": pl.String, "kind": pl.String,
                                             "status": pl.String}), {}, ["甲区"], Rules(), TODAY)
    assert cover == Coverage(("甲区",), this_month="2026-12") and cover.default_period is None


def test_a_year_that_has_ended_is_measured_whole(city):
    cover = coverage.coverage(city, Rules(), dt.date(2027, 2, 1))
    assert cover.latest_complete == "2026-11"
    assert cover.measured(parse_period("2026")) == parse_period("2026")
    assert cover.measured(parse_period("2026-Q4")).label == "2026年第4季度"


@given(year=st.integers(2004, 2035), quarter=st.integers(0, 4), last=st.integers(1, 12))
def test_to_date_periods_round_trip_and_stay_inside_their_whole(year, quarter, last):
    whole = parse_period(f"{year}-Q{quarter}" if quarter else str(year))
    latest = f"{year:04d}-{last:02d}"
    period = to_date(whole, latest)
    assert parse_period(period.key) == period and period.whole == whole
    assert period.first == whole.first and period.last <= whole.last
    assert period.last == (latest if whole.first <= latest <= whole.last else whole.last)
    assert period.label.startswith(whole.label)
    assert period.previous().whole == whole.previous() and period.previous().length == period.length
