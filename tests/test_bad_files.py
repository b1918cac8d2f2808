"""The bad-file corpus: every file is refused with a clear Chinese message and the store is unchanged.

Also the tricky files that look bad but are valid exports (GBK CSV without declaration, CSV named
.xlsx) and a 100 000-row file whose only problem is in its last row.
"""

from __future__ import annotations

import re

import polars as pl
import pytest

from datasets import ingest, store
from datasets.parsed import ERROR
from datasets.upload import UploadRejected, check_file, import_file, store_checked
from tests.bad_files.corpus import (
    CORPUS,
    DISTRICT_A,
    DISTRICT_B,
    BadFile,
    case_row,
    csv_bytes,
    fast_xlsx_bytes,
    rows,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def engine(sqlite_engine):
    """A store with two districts, a catalog and one month of cases already imported."""
    store.add_district(sqlite_engine, DISTRICT_A, code="110101", aliases=["甲"])
    store.add_district(sqlite_engine, DISTRICT_B)
    items = pl.DataFrame({"item_code": ["I1", "I2"], "item_name": ["事项1", "事项2"], "district": [DISTRICT_A] * 2,
                          "department": ["局"] * 2, "online_depth": [4, 3]})
    ingest.import_frame(sqlite_engine, "items", items, file_name="catalog.xlsx", sha256="c" * 64, period="2024-01")
    cases = pl.DataFrame({"case_id": ["OLD1", "OLD2"], "item_code": ["I1", "I1"], "district": [DISTRICT_A] * 2,
                          "department": ["局"] * 2, "channel": ["窗口"] * 2, "status": ["在办"] * 2,
                          "accepted_at": pl.Series(["2024-05-02 09:00:00"] * 2).str.to_datetime()})
    ingest.import_frame(sqlite_engine, "cases", cases, file_name="old.xlsx", sha256="o" * 64)
    return sqlite_engine


def snapshot(engine) -> tuple[dict[str, int], list[tuple]]:
    return store.record_counts(engine), store.batch_history(engine).rows()


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 30
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_bad_file_is_refused_and_nothing_is_stored(engine, case: BadFile):
    before = snapshot(engine)
    check, result = import_file(engine, case.build(), case.file_name, kind=case.kind, district=case.district,
                                period=case.period, max_bytes=case.max_bytes)
    assert result is None
    assert not check.accepted
    errors = [p for p in check.problems if p.severity == ERROR]
    assert errors
    for p in check.problems:
        assert p.message and CJK.search(p.message), p
    matching = [p for p in errors if p.rule == case.rule]
    assert matching, [(p.rule, p.message) for p in check.problems]
    assert any(case.message in p.message for p in matching), [p.message for p in matching]
    if case.row is not None:
        assert case.row in [p.row for p in matching], [(p.row, p.message) for p in matching]
    if case.column is not None:
        assert case.column in [p.column for p in matching]
    assert check.error_count >= len(matching)
    assert snapshot(engine) == before
    with pytest.raises(UploadRejected, match="未通过校验"):
        store_checked(engine, check)
    assert snapshot(engine) == before


def test_gbk_csv_without_declaration_with_title_and_total_rows_imports(engine):
    table = rows("cases", 3, 所属区县="甲")
    text = csv_bytes(table, encoding="gbk", title="甲区2024年5月办件明细表").decode("gbk")
    text += "合计,,,,,,,,,,,\n\n"
    data = text.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    before = store.record_counts(engine)
    check, result = import_file(engine, data, "办件.csv")
    assert check.accepted, [p.message for p in check.errors]
    assert result is not None and result.rows == 3
    assert store.record_counts(engine)["cases"] == before["cases"] + 3
    stored = store.load_records(engine, "cases").filter(pl.col("case_id").str.starts_with("BJ"))
    assert sorted(stored["department"].to_list()) == ["区市场监管局"] * 3
    assert stored["district"].unique().to_list() == [DISTRICT_A]  # alias normalised


def test_csv_named_xlsx_is_read_by_content_with_a_warning(engine):
    check, result = import_file(engine, csv_bytes(rows("hotline", 2)), "热线.xlsx")
    assert check.accepted and result is not None and result.rows == 2
    assert "extension_mismatch" in [p.rule for p in check.warnings]


def test_one_bad_row_at_the_end_of_100000_rows_is_named_by_its_excel_row(engine):
    n = 100_000
    table = rows("cases", n)
    table[-1]["受理时间"] = "2024-05-32 10:00:00"
    data = fast_xlsx_bytes(table, title="甲区2024年5月办件明细表")
    before = snapshot(engine)
    check = check_file(engine, data, "大文件.xlsx")
    assert not check.accepted
    assert [(p.rule, p.row, p.column, p.value) for p in check.errors] == [
        ("date_unparseable", n + 2, "受理时间", "2024-05-32 10:00:00")
    ]
    assert snapshot(engine) == before


def test_many_bad_rows_are_counted_exactly(engine):
    table = [case_row(i, 申请渠道="电话") for i in range(1, 3001)]
    check = check_file(engine, csv_bytes(table), "渠道.csv")
    assert check.counts["value_not_allowed"] == 3000
    assert check.error_count == 3000
    assert check.summary["rules"]["value_not_allowed"]["count"] == 3000
