"""One neutralising writer (datasets/common/safe_export.py) for every CSV and .xlsx the project writes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl
import pytest

from datasets.common import safe_export
from datasets.intake.ingest import import_frame
from datasets.storage import store
from metrics.__main__ import main
from tests.factories import at, frame

ROOT = Path(__file__).resolve().parent.parent

HOSTILE = ['=HYPERLINK("http://evil.example","点我")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1", "\r=1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|x", "'+cmd|x"),
        ("-", "'-"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("区市场监管局", "区市场监管局"),
        ("a=1", "a=1"),
        ("", ""),
        (5, 5),
        (-5.0, -5.0),
        (None, None),
    ],
)
def test_neutralize(value, expected):
    assert safe_export.neutralize(value) == expected


def test_frame_csv_bytes_and_stdout_text():
    table = pl.DataFrame({"部门": ["=1+1", "正常"], "n": [-1, 2]})
    assert safe_export.neutralize_frame(table).rows() == [("'=1+1", -1), ("正常", 2)]
    data = safe_export.csv_bytes(table)
    assert data.startswith("\ufeff".encode())
    assert data.decode("utf-8-sig") == "部门,n\n'=1+1,-1\n正常,2\n"
    assert safe_export.csv_text(table) == "部门,n\n'=1+1,-1\n正常,2\n"


def _store_with_hostile_departments(engine) -> None:
    store.add_district(engine, "甲区")
    rows = [{"case_id": f"C{i}", "department": name, "accepted_at": at(2024, 10, 9), "completed_at": at(2024, 10, 10)}
            for i, name in enumerate(HOSTILE)]
    import_frame(engine, "cases", frame("cases", rows).drop("batch_id", "period"), file_name="x.xlsx",
                 sha256="h" * 64)


def test_metrics_report_csv_neutralises_department_names(sqlite_engine, capsys, tmp_path):
    _store_with_hostile_departments(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    assert main(["report", "--db", url, "--by", "department"]) == 0
    out = capsys.readouterr().out
    departments = set(pl.read_csv(io.StringIO(out), infer_schema=False)["department"].to_list())
    assert departments == {"'" + name for name in HOSTILE}
    # To a file: the same cells, with a byte-order mark for Excel.
    target = tmp_path / "report.csv"
    assert main(["report", "--db", url, "--by", "department", "--out", str(target)]) == 0
    data = target.read_bytes()
    assert data.startswith("\ufeff".encode()) and data.decode("utf-8-sig") == out
    for line in data.decode("utf-8-sig").splitlines()[1:]:
        cells = next(iter(__import__("csv").reader([line])))
        assert not re.match(r"^[=+\-@\t\r]", cells[1]), line


def test_audit_csv_goes_through_the_same_writer(sqlite_engine):
    from datasets.access import accounts
    from datasets.operations import admin as actions

    accounts.audit(sqlite_engine, "=cmd", "login_failed", "@SUM(1)")
    data = actions.audit_csv(accounts.audit_entries(sqlite_engine))
    text = data.decode("utf-8-sig")
    assert data.startswith("\ufeff".encode()) and "'=cmd" in text and "'@SUM(1)" in text


def test_no_other_module_writes_csv_or_workbooks():
    """Every CSV/.xlsx writer in the project goes through datasets/common/safe_export.py."""
    writers = re.compile(r"(?<!safe_export)\.write_csv\(|\.write_excel\(|xlsxwriter\.Workbook\(|\.to_csv\(|openpyxl\.Workbook\(")
    offenders = []
    for folder in ("datasets", "metrics", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "safe_export.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if writers.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    offenders += [f"dashboard.py: {line.strip()}" for line in (ROOT / "dashboard.py").read_text().splitlines()
                  if writers.search(line)]
    assert offenders == []


def test_the_writer_is_at_the_bottom_layer():
    source = (ROOT / "datasets" / "common" / "safe_export.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import) (metrics|pages)\b", source, re.M)
    # Writers in datasets/ use it, not metrics.exports.
    for name in ("operations/admin.py", "intake/report.py", "intake/templates.py"):
        assert "metrics.exports" not in (ROOT / "datasets" / name).read_text(encoding="utf-8")


def test_csv_timestamps_read_as_people_write_them():
    import datetime as dt

    from datasets.common.safe_export import csv_text

    frame = pl.DataFrame({"时间": [dt.datetime(2026, 12, 7, 13, 48, 51, 250)], "账号": ["admin"]})
    assert csv_text(frame).splitlines() == ["时间,账号", "2026-12-07 13:48:51,admin"]
    assert csv_text(pl.DataFrame({"排名": [None, 2]}), null_value="—").splitlines() == ["排名", "—", "2"]
