"""The ranking's Excel and CSV as evaluators open them: whole numbers, percentages, signs, widths that
fit, an autofilter, Chinese everywhere."""

from __future__ import annotations

import io
import re

import openpyxl
import polars as pl
import pytest

from datasets.domain.periods import Period
from datasets.intake.ingest import import_frame
from datasets.storage import store
from datasets.storage.quality import all_districts
from metrics.exports import rank_csv_bytes, rank_xlsx_bytes, text_width, whole_numbers
from metrics.registry import INDICATORS
from metrics.scoring import load_settings, ranking
from metrics.service import compute_components
from metrics.units import PERCENT
from tests.factories import at, frame
from tests.test_store_and_cli import _load_two_exports


@pytest.fixture
def ranked(sqlite_engine):
    """scoring.ranking of 2024-10 as the pages compute it, with its period and settings."""
    _load_two_exports(sqlite_engine)
    # 甲区 also reports its catalog and evaluations for both months, so it is ranked in both (a rank
    # change of 0 to format); 乙区 has no October cases and stays 未排名.
    import_frame(sqlite_engine, "items", frame("items", [{"item_code": "I1"}]).drop("batch_id", "period"),
                 file_name="事项.xlsx", sha256="c" * 64, period="2024-01")
    for month, sha in (("09", "d"), ("10", "e")):
        rows = [{"eval_id": f"E{month}", "evaluated_at": at(2024, int(month), 20), "rating": 5}]
        import_frame(sqlite_engine, "evaluations", frame("evaluations", rows).drop("batch_id", "period"),
                     file_name=f"评价{month}.xlsx", sha256=sha * 64)
    settings = load_settings(sqlite_engine)
    period = Period("2024-10", "2024-10")
    comps = compute_components(sqlite_engine, settings)
    rank = ranking(comps, period, settings, store.active_batches(sqlite_engine), all_districts(sqlite_engine))
    return rank, period, settings


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([1.0, 2461.0, None], pl.Int64), ([1.0, 2.5], pl.Float64), ([None, None], pl.Float64), ([0.0], pl.Int64)],
)
def test_whole_numbers_become_integers(values, dtype):
    assert whole_numbers(pl.DataFrame({"x": values}, schema={"x": pl.Float64})).schema["x"] == dtype


@pytest.mark.parametrize(("text", "width"), [("ab", 2), ("区县", 4), ("按时办结率·分子", 15), ("2,461", 5)])
def test_text_width_counts_chinese_twice(text, width):
    assert text_width(text) == width


def test_csv_numerators_and_denominators_have_no_decimal_point(ranked):
    raw = rank_csv_bytes(ranked[0]).decode("utf-8-sig")
    table = pl.read_csv(io.StringIO(raw), infer_schema=False)
    parts = [c for c in table.columns if c.endswith(("·分子", "·分母"))]
    assert parts
    for column in parts:
        for value in table[column].drop_nulls().to_list():
            assert not value.endswith(".0"), (column, value)
    # 受理 4 cases in 2024-10 for 甲区 (C3, C4 and two more in the fixture): counted, written as integers.
    assert all(re.fullmatch(r"-?\d+", v) for v in table["按时办结率·分母"].drop_nulls().to_list())


def test_csv_reads_like_the_workbook(ranked):
    """The same rank change text (持平 for 0), the same marker for a district without a rank (—), values
    rounded as the workbook shows them (0.00% → four decimals of the fraction), no 16-digit floats."""
    raw = rank_csv_bytes(ranked[0]).decode("utf-8-sig")
    table = pl.read_csv(io.StringIO(raw), infer_schema=False)
    book = openpyxl.load_workbook(io.BytesIO(rank_xlsx_bytes(*ranked)))
    sheet = book["排名"]
    header = [c.value for c in sheet[1]]
    assert table.columns == header
    rows = {r["区县"]: r for r in table.iter_rows(named=True)}
    assert (rows["甲区"]["排名"], rows["甲区"]["排名变化"]) == ("1", "持平")
    assert (rows["乙区"]["排名"], rows["乙区"]["排名变化"]) == ("—", "—")
    unranked = [c.value for c in sheet[3]]
    assert unranked[0] == "乙区" and unranked[header.index("排名")] == "—"  # the workbook's marker
    for ind in INDICATORS:
        for value in table[ind.name].to_list():
            if value != "—":
                decimals = len(value.partition(".")[2])
                assert decimals <= (4 if ind.unit == PERCENT else 2), (ind.name, value)
    numbers = [v for column in table.columns for v in table[column].to_list() if v and v[0].isdigit()]
    assert numbers and not [v for v in numbers if len(v.partition(".")[2]) > 4]


def test_xlsx_formats_widths_filter_and_chinese(ranked):
    book = openpyxl.load_workbook(io.BytesIO(rank_xlsx_bytes(*ranked)))
    sheet = book["排名"]
    header = [c.value for c in sheet[1]]
    assert sheet.auto_filter.ref is not None and sheet.auto_filter.ref.startswith("A1:")
    column_of = {name: i + 1 for i, name in enumerate(header)}
    for ind in INDICATORS:
        value_cell = sheet.cell(2, column_of[ind.name])
        if isinstance(value_cell.value, float | int):
            assert value_cell.number_format == ind.unit.excel_format, ind.name
        for part in ("分子", "分母"):
            cell = sheet.cell(2, column_of[f"{ind.name}·{part}"])
            if isinstance(cell.value, int | float) and float(cell.value).is_integer():
                assert cell.number_format == "#,##0", (ind.name, part)
                assert isinstance(cell.value, int)
    assert sheet.cell(2, column_of["区县"]).value == "甲区" and sheet.cell(2, column_of["排名变化"]).value == 0
    assert sheet.cell(2, column_of["排名变化"]).number_format == '+0;-0;"持平"'  # 0 reads 持平
    assert sheet.cell(3, column_of["未排名原因"]).value.startswith("未排名：缺少 2024-10 办件明细")
    # Every column is at least as wide as its widest value (Chinese characters count two).
    for name, c in column_of.items():
        letter = openpyxl.utils.get_column_letter(c)
        width = sheet.column_dimensions[letter].width
        for r in range(2, sheet.max_row + 1):
            value = sheet.cell(r, c).value
            shown = f"{value:.2%}" if isinstance(value, float) and sheet.cell(r, c).number_format == "0.00%" else value
            assert width >= text_width(f"{shown:,}" if isinstance(shown, int) else shown), (name, shown, width)
    # The explanation sheet has no identifiers: Chinese names of indicators and rules.
    info = book["指标说明"]
    texts = [c.value for row in info.iter_rows() for c in row if isinstance(c.value, str)]
    assert "编号" not in texts
    assert not [t for t in texts if re.search(r"[a-z]+_[a-z]+|clamp", t)], texts
    assert "黄牌宽限（工作日）" in texts and "差评整改时限（工作日）" in texts


@pytest.mark.parametrize(("change", "label"), [(2, "+2"), (-1, "-1"), (0, "持平"), (None, "—")])
def test_rank_change_label(change, label):
    from metrics.formatting import rank_change_label

    assert rank_change_label(change) == label


STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def test_timestamps_read_yyyy_mm_dd_hh_mm_ss(ranked, sqlite_engine):
    """The workbook's 数据导入时间 and 导出时间 and the audit CSV's 时间 (issue 27: they read
    2026-12-07T13:48:51.000000 and 2026-12-07 13:48:51.123456)."""
    import datetime as dt

    from datasets.access import accounts
    from datasets.operations import admin as actions

    rank, period, settings = ranked
    imported = dt.datetime(2026, 12, 7, 13, 48, 51, 123456)
    out = io.BytesIO()
    from metrics.exports import write_rank_xlsx

    write_rank_xlsx(rank, period, settings, out, imported_at=imported)
    info = openpyxl.load_workbook(io.BytesIO(out.getvalue()))["指标说明"]
    assert (info["A2"].value, info["B2"].value) == ("数据导入时间", "2026-12-07 13:48:51")
    assert info["A3"].value == "导出时间" and STAMP.fullmatch(info["B3"].value)
    # From the store (its batch history), as the 排名下载 page writes it.
    stored = openpyxl.load_workbook(io.BytesIO(rank_xlsx_bytes(rank, period, settings, engine=sqlite_engine)))
    assert STAMP.fullmatch(stored["指标说明"]["B2"].value), stored["指标说明"]["B2"].value
    accounts.audit(sqlite_engine, "leader", "login", "登录成功")
    table = pl.read_csv(io.BytesIO(actions.audit_csv(accounts.audit_entries(sqlite_engine))), infer_schema=False)
    assert table.height and all(STAMP.fullmatch(t) for t in table["时间"].to_list()), table["时间"].to_list()


def test_scores_read_alike_in_csv_workbook_and_page(ranked):
    """效能指数 and the group scores: one decimal in the CSV, the same numbers in the workbook (its
    format showing one decimal), as the pages show them; unranked districts — in both."""
    from metrics.formatting import score_columns, shown

    rank = ranked[0]
    raw = rank_csv_bytes(rank).decode("utf-8-sig")
    table = pl.read_csv(io.StringIO(raw), infer_schema=False)
    sheet = openpyxl.load_workbook(io.BytesIO(rank_xlsx_bytes(*ranked)))["排名"]
    header = [c.value for c in sheet[1]]
    scores = score_columns(table.columns)
    assert "效能指数" in scores and len(scores) > 1
    by_district = {r["district"]: r for r in rank.iter_rows(named=True)}
    for n, row in enumerate(table.iter_rows(named=True), start=2):
        index = by_district[row["区县"]]["index"]
        assert row["效能指数"] == "—" if index is None else float(row["效能指数"]) == shown("index", index)
        for column in scores:
            cell = sheet.cell(n, header.index(column) + 1)
            if row[column] == "—":
                assert cell.value == "—"
            else:
                assert len(row[column].partition(".")[2]) <= 1, (column, row[column])
                assert cell.value == pytest.approx(float(row[column])) and cell.number_format == "#,##0.0"


def test_a_page_table_csv_has_the_numbers_the_table_shows():
    """An alert list's CSV (总览 下载清单): no 16-digit floats, whole numbers without .0, timestamps
    without T or microseconds, formula-like text neutralised."""
    import datetime as dt

    from metrics.exports import table_csv_bytes

    frame = pl.DataFrame({
        "办件编号": ["=HYPERLINK()", "BJ2"],
        "用时": [10 / 3, 2.0],
        "承诺时限": [5.0, 20.0],
        "受理时间": [dt.datetime(2026, 12, 7, 13, 48, 51, 250000), None],
    })
    text = table_csv_bytes(frame, "数据截至 2026-12-05").decode("utf-8-sig")
    assert text.splitlines() == [
        "数据截至 2026-12-05",
        "办件编号,用时,承诺时限,受理时间",
        "'=HYPERLINK(),3.33,5,2026-12-07 13:48:51",
        "BJ2,2.0,20,",
    ]
