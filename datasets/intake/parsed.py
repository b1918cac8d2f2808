"""What a reader hands to validation and import: one file, its rows, and its problems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

ERROR, WARNING = "错误", "警告"


@dataclass(frozen=True)
class Problem:
    """One problem in an uploaded file, located as the user sees it in Excel."""

    severity: str  # ERROR rejects the file, WARNING is recorded
    rule: str  # stable rule id, e.g. "date_unparseable"
    rule_name: str  # Chinese name of the rule
    message: str  # plain Chinese explanation, what to fix
    row: int | None = None  # Excel row number (1-based, as shown in Excel); None: whole file
    column: str | None = None  # header as written in the file
    value: str | None = None  # the offending cell as written


class ReadError(ValueError):
    """The file cannot be read at all (empty, corrupt, encrypted, too large, wrong kind...)."""

    def __init__(self, message: str, rule: str = "file_unreadable") -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule


@dataclass
class ParsedFile:
    """A file read into canonical columns.

    ``frame`` holds the canonical fields found in the file, parsed to the schema's dtypes (null where
    a cell was empty or could not be parsed), plus ``_row``: the Excel row number of each data row.
    ``raw`` holds the same rows and columns as the original cell text, so that problems can quote the
    value. ``headers`` maps a canonical field name to the header as written in the file.
    """

    kind: str
    file_name: str
    sha256: str
    frame: pl.DataFrame
    raw: pl.DataFrame
    headers: dict[str, str]
    sheet: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # found while reading (e.g. formulas)
    exported: dt.date | None = None  # the export date a title line above the header states (导出时间)
