"""The one place where files for spreadsheets are written: CSV and .xlsx with formula-like text made inert.

Department, item, district and file names come from uploaded exports and accounts; a cell starting
with = + - @ (or a tab or carriage return) would run as a formula when the file is opened or edited
in Excel or WPS (CSV/formula injection: ``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)``). Every
such text cell gets a leading apostrophe, which spreadsheets show as plain text.

Every CSV and .xlsx the project writes goes through this module (rank exports, the ``metrics report``
CLI, the audit log download, validation reports, page downloads, import templates). It is at the
bottom layer: it imports nothing from ``metrics`` or ``pages``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = "^[=+\\-@\t\r]"
BOM = "\ufeff"

# xlsxwriter: never turn text into formulas, numbers or links by itself.
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}


def neutralize(value: object) -> object:
    """Text that a spreadsheet would treat as a formula, prefixed with an apostrophe; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralize_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column of ``frame`` with formula-like cells neutralised (other columns unchanged)."""
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_PATTERN)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in frame.columns
        if frame.schema[c] == pl.String
    )


# Timestamps as people write them (and as the pages show them): 2026-12-07 13:48:51.
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def csv_text(frame: pl.DataFrame, null_value: str = "") -> str:
    """CSV text of ``frame`` with formula-like cells neutralised, without a byte-order mark (for pipes);
    timestamps as ``DATETIME_FORMAT``, empty cells as ``null_value``."""
    return neutralize_frame(frame).write_csv(datetime_format=DATETIME_FORMAT, null_value=null_value)


def csv_bytes(frame: pl.DataFrame, null_value: str = "") -> bytes:
    """CSV as UTF-8 with a byte-order mark (Excel then reads the Chinese headers correctly), neutralised."""
    return (BOM + csv_text(frame, null_value)).encode("utf-8")


def write_csv(frame: pl.DataFrame, out: str | Path | None) -> None:
    """``csv_bytes`` into the file ``out``; with ``out=None`` the text without a BOM to standard output
    (a script reading the pipe would otherwise find the mark in its first column name)."""
    if out is None:
        sys.stdout.write(csv_text(frame))
        return
    Path(out).write_bytes(csv_bytes(frame))


def write_json(frame: pl.DataFrame, out: str | Path | None) -> None:
    """JSON rows of ``frame`` into ``out`` (standard output when None).

    Not neutralised: JSON is read by programs, never run by a spreadsheet, and an added apostrophe
    would change the data they receive.
    """
    text = frame.write_json()
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


def workbook(target: str | Path | BinaryIO, **options: Any):
    """An ``xlsxwriter.Workbook`` that keeps text as text (XLSX_OPTIONS); write text cells with ``write_text``."""
    import xlsxwriter

    return xlsxwriter.Workbook(str(target) if isinstance(target, Path) else target, {**XLSX_OPTIONS, **options})


def write_text(sheet: Any, row: int, col: int, value: object, fmt: Any = None) -> None:
    """Write ``value`` as a neutralised text cell."""
    sheet.write_string(row, col, str(neutralize(str(value))), fmt)
