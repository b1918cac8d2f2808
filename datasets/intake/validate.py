"""Validation of uploaded files with Great Expectations.

One suite per kind lives in ``expectations/<kind>.json``. The suites are plain GX suites: each
expectation carries in its ``meta`` the rule id, its Chinese name, the severity (``error`` rejects the
file, ``warning`` is recorded) and a Chinese message template. Allowed values and "now" are suite
parameters (``{"$PARAMETER": "allowed__channel"}``) filled from ``datasets/domain/schema.py`` at run time, so
the schema stays the single place where a field's values are declared.

Checks that need more than one cell use *helper columns* derived here before validation, named
``<field>__<helper>`` and documented in each suite's ``meta.helper_columns``. Checks over a whole file
that need the store (volume drop against the previous month, missing catalog) are declared in the
suite's ``meta.file_rules`` (severity, message, threshold) and computed in Python.

``build_suite(kind)`` generates a suite from the schema; ``write_suites()`` writes the files. The
files may be edited (messages, severities, extra expectations); tests check they still cover the
schema.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from datasets.common.text import normalize
from datasets.domain import schema, vocabulary
from datasets.domain.schema import KINDS, Field, Kind
from datasets.intake.parsed import ERROR, WARNING, ParsedFile, Problem

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"

SEVERITIES = {"error": ERROR, "warning": WARNING}

# Problems listed per rule; counts stay exact beyond it (a file with 200 000 bad dates is one
# message repeated, the report names the first ones).
MAX_PROBLEMS_PER_RULE = 2000

# Datetime fields that may lie in the future (a deadline), exempt from ``future_date``.
FUTURE_EXEMPT = frozenset({"due_at"})

# Pairs (later, earlier) per kind for ``completed_before_accepted``.
ORDER_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "cases": (("completed_at", "accepted_at"),),
    "hotline": (("closed_at", "received_at"),),
}

OPEN_CASE_DAYS = 365
VOLUME_DROP_RATIO = 0.5


# --- suites -------------------------------------------------------------------------------------


def _exp(type_: str, kwargs: dict, *, rule: str, rule_name: str, severity: str, message: str,
         field_name: str | None, **extra: Any) -> dict:
    meta: dict[str, Any] = {"rule": rule, "rule_name": rule_name, "severity": severity, "message": message}
    if field_name:
        meta["field"] = field_name
    meta.update(extra)
    return {"type": type_, "kwargs": kwargs, "meta": meta}


_UNPARSED_RULES = {
    schema.DATETIME: ("date_unparseable", "日期无法识别",
                      "“{header}”的值“{value}”无法识别为日期，请写作 2024-05-03 14:22:05、2024/5/3 14:22、"
                      "2024年5月3日 或 20240503"),
    schema.NUMBER: ("number_unparseable", "数字无法识别",
                    "“{header}”的值“{value}”无法识别为数字，请填写数字（可带单位，如 5天、3个）"),
    schema.LIMIT: ("number_unparseable", "数字无法识别",
                   "“{header}”的值“{value}”无法识别为时限，请写作 20、20个工作日、5天 或 即办"),
    schema.RATING: ("rating_out_of_scale", "评价等级超出范围",
                    "“{header}”的值“{value}”不是有效的评价等级，应为 非常满意、满意、基本满意、不满意、"
                    "非常不满意 或 5–1"),
    schema.DEPTH: ("value_not_allowed", "取值不在允许范围",
                   "“{header}”的值“{value}”不是有效的网上办理深度，应为 1–4、一级–四级、Ⅰ–Ⅳ 或“全程网办（Ⅳ级）”等写法"),
    schema.BOOL: ("value_not_allowed", "取值不在允许范围", "“{header}”的值“{value}”应为 是 或 否"),
    schema.ACTIVE: ("value_not_allowed", "取值不在允许范围",
                    "“{header}”的值“{value}”应为 是/否 或 主动评价/默认好评"),
}

HELPER_DOCS = {
    "raw": "<字段>__raw：单元格原文（去掉首尾空白，空单元格为 null），用于必填检查",
    "unparsed": "<字段>__unparsed：原文非空但无法解析时为原文，否则为 null",
    "unknown": "district__unknown：原文非空但与已配置区县（名称、代码、别名）都不匹配时为原文",
    "filled": "district__filled：区县原文；为空时取上传人指定的区县",
    "same_unit": "promised_limit__same_unit：承诺时限，仅当其单位与法定时限单位相同（缺省为工作日）时有值",
    "not_in_catalog": "item_code__not_in_catalog：该区县适用的事项清单中没有此事项编码时为编码（区县无清单时为 null）",
    "open_days": "accepted_at__open_days：未办结办件自受理至所属月份结束的天数；已办结或已终止为 null",
    "bad_without_rectify": "rating__bad_without_rectify：差评（等级 ≤ 2）且整改状态为空时为评价等级",
}


def build_suite(kind_name: str) -> dict:
    """The suite for a kind, generated from ``datasets/domain/schema.py`` (what ``expectations/`` holds)."""
    k = schema.kind(kind_name)
    exps: list[dict] = [
        _exp("expect_table_row_count_to_be_between", {"min_value": 1}, rule="no_rows", rule_name="没有数据行",
             severity="error", message="文件中没有数据行（只有表头或为空），请确认导出了数据", field_name=None)
    ]
    for f in k.fields:
        if f.required and f.name != "district":
            exps.append(_exp("expect_column_to_exist", {"column": f.name}, rule="column_missing",
                             rule_name="缺少必填列", severity="error", field_name=f.name,
                             message="缺少必填列“{header}”{aliases_note}，请按导入模板补充该列"))
    for f in k.fields:
        if f.required and f.name != "district":
            exps.append(_exp("expect_column_values_to_not_be_null", {"column": f"{f.name}__raw"},
                             rule="required_empty", rule_name="必填项为空", severity="error", field_name=f.name,
                             message="“{header}”为必填项，此行为空"))
    exps.append(_exp("expect_column_values_to_not_be_null", {"column": "district__filled"}, rule="district_missing",
                     rule_name="缺少区县", severity="error", field_name="district",
                     message="此行“{header}”为空，且上传时未指定区县"))
    exps.append(_exp("expect_column_values_to_be_null", {"column": "district__unknown"}, rule="district_unknown",
                     rule_name="区县未配置", severity="error", field_name="district",
                     message="区县“{value}”未在系统中配置，请核对名称或请管理员在“区县配置”页添加（可设别名）"))
    id_field = k.field(k.id_field)
    exps.append(_exp("expect_compound_columns_to_be_unique",
                     {"column_list": ["district", k.id_field], "ignore_row_if": "any_value_is_missing"},
                     rule="duplicate_id", rule_name="编号重复", severity="error", field_name=k.id_field,
                     message=f"{id_field.header}“{{value}}”在同一区县内重复出现（第 {{rows}} 行），每条记录只能出现一次"))
    for f in k.fields:
        if f.parser in _UNPARSED_RULES:
            rule, name, message = _UNPARSED_RULES[f.parser]
            exps.append(_exp("expect_column_values_to_be_null", {"column": f"{f.name}__unparsed"}, rule=rule,
                             rule_name=name, severity="error", field_name=f.name, message=message))
    for f in k.fields:
        if f.allowed and f.parser == schema.TEXT:
            exps.append(_exp("expect_column_values_to_be_in_set",
                             {"column": f.name, "value_set": {"$PARAMETER": f"allowed__{f.name}"}},
                             rule="value_not_allowed", rule_name="取值不在允许范围", severity="error",
                             field_name=f.name, message="“{header}”的值“{value}”不在允许的取值中（{allowed}）"))
        elif f.parser == schema.RATING:
            exps.append(_exp("expect_column_values_to_be_between", {"column": f.name, "min_value": 1, "max_value": 5},
                             rule="rating_out_of_scale", rule_name="评价等级超出范围", severity="error",
                             field_name=f.name, message="“{header}”的值“{value}”超出评价等级范围（1–5）"))
        elif f.parser == schema.DEPTH:
            exps.append(_exp("expect_column_values_to_be_between", {"column": f.name, "min_value": 1, "max_value": 4},
                             rule="value_not_allowed", rule_name="取值不在允许范围", severity="error",
                             field_name=f.name, message="“{header}”的值“{value}”超出网上办理深度范围（Ⅰ–Ⅳ）"))
        elif f.parser in (schema.NUMBER, schema.LIMIT):
            exps.append(_exp("expect_column_values_to_be_between", {"column": f.name, "min_value": 0},
                             rule="number_negative", rule_name="数值为负", severity="error", field_name=f.name,
                             message="“{header}”的值“{value}”不能为负数"))
    for later, earlier in ORDER_PAIRS.get(kind_name, ()):
        exps.append(_exp("expect_column_pair_values_a_to_be_greater_than_b",
                         {"column_A": later, "column_B": earlier, "or_equal": True,
                          "ignore_row_if": "either_value_is_missing"},
                         rule="completed_before_accepted", rule_name="办结早于受理", severity="error",
                         field_name=later, other_field=earlier,
                         message="“{header}”的值“{value}”早于“{other_header}”的值“{other_value}”"))
    if "promised_limit" in k.names and "legal_limit" in k.names:
        exps.append(_exp("expect_column_pair_values_a_to_be_greater_than_b",
                         {"column_A": "legal_limit", "column_B": "promised_limit__same_unit", "or_equal": True,
                          "ignore_row_if": "either_value_is_missing"},
                         rule="promised_above_legal", rule_name="承诺时限超过法定时限", severity="error",
                         field_name="promised_limit", other_field="legal_limit",
                         message="“{header}”的值“{value}”超过“{other_header}”的值“{other_value}”，承诺时限不应长于法定时限"))
    for f in k.fields:
        if f.parser == schema.DATETIME and f.name not in FUTURE_EXEMPT:
            exps.append(_exp("expect_column_values_to_be_between", {"column": f.name, "max_value": {"$PARAMETER": "now"}},
                             rule="future_date", rule_name="日期晚于当前时间", severity="error", field_name=f.name,
                             message="“{header}”的值“{value}”晚于当前时间（{now}），请核对日期"))
    # Warnings: the file is kept, the problems are recorded with the batch.
    if kind_name in ("cases", "evaluations"):
        exps.append(_exp("expect_column_values_to_be_null", {"column": "item_code__not_in_catalog"},
                         rule="item_not_in_catalog", rule_name="事项不在事项清单", severity="warning",
                         field_name="item_code", message="事项编码“{value}”不在{district}适用的事项清单中"))
    if kind_name == "cases":
        exps.append(_exp("expect_column_values_to_be_between", {"column": "accepted_at__open_days", "max_value": OPEN_CASE_DAYS},
                         rule="case_open_over_year", rule_name="办件超过一年未办结", severity="warning",
                         field_name="accepted_at",
                         message=f"受理于“{{value}}”的办件至所属月份结束仍未办结，已超过 {OPEN_CASE_DAYS} 天，请核对办理状态"))
    if kind_name == "evaluations":
        exps.append(_exp("expect_column_values_to_be_null", {"column": "rating__bad_without_rectify"},
                         rule="bad_without_rectify", rule_name="差评未填整改状态", severity="warning",
                         field_name="rectify_status", value_field="rating",
                         message="评价等级“{value}”为差评，但“{header}”为空；差评须填写整改状态（已整改、整改中、未整改、核实不属实）"))

    file_rules: list[dict] = [
        {"rule": "district_missing", "rule_name": "缺少区县", "severity": "error",
         "message": "文件中没有“所属区县”列（也可写作：{aliases}），且上传时未指定区县"},
        {"rule": "district_unknown", "rule_name": "区县未配置", "severity": "error",
         "message": "上传时指定的区县“{value}”未在系统中配置"},
        {"rule": "district_name_mismatch", "rule_name": "文件名与所选区县不符", "severity": "warning",
         "message": "文件名或工作表名中出现“{named}”，与上传时选择的区县“{value}”不一致，请确认没有选错区县或文件"},
    ]
    if kind_name in ("cases", "evaluations"):
        file_rules.append({"rule": "catalog_missing", "rule_name": "未导入事项清单", "severity": "warning",
                           "message": "{district}尚未导入 {period} 及以前适用的事项清单，无法核对事项编码"})
    if kind_name != "items":
        file_rules.append({"rule": "month_volume_drop", "rule_name": "数据量骤降", "severity": "warning",
                           "threshold": VOLUME_DROP_RATIO,
                           "message": "{district} {period} 共 {rows} 行，不足上月（{prev_period}，{prev_rows} 行）的 "
                           "{ratio}，请确认导出是否完整"})
    used_helpers = sorted({_split_helper(c)[1] for e in exps for c in _columns_of(e) if "__" in c})
    return {
        "name": kind_name,
        "expectations": exps,
        "suite_parameters": {},
        "meta": {
            "kind": kind_name,
            "label": k.label,
            "parameters": {
                "now": "校验时的当前时间",
                "allowed__<字段>": "该字段允许的取值，来自 datasets/domain/schema.py 的 allowed",
            },
            "helper_columns": [HELPER_DOCS[h] for h in used_helpers],
            "file_rules": file_rules,
            "notes": "每条期望的 meta 中：rule 为规则编号，rule_name 为规则名称，severity 为 error（拒收文件）或 "
            "warning（入库并记录），message 为提示模板（{header} 列名、{value} 原值、{other_header}/{other_value} "
            "对照列、{allowed} 允许取值、{rows} 重复行号、{district} 区县、{now} 当前时间）。"
            "由 datasets.intake.validate.build_suite 按数据模型生成，可直接编辑。",
        },
        "notes": f"{k.label}上传校验规则",
    }


def suite_path(kind_name: str, directory: Path | None = None) -> Path:
    return (directory or SUITES_DIR) / f"{kind_name}.json"


def write_suites(directory: Path | str | None = None) -> list[Path]:
    """(Re)generate the suite files from the schema."""
    out = Path(directory) if directory else SUITES_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in KINDS:
        path = suite_path(name, out)
        path.write_text(json.dumps(build_suite(name), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def load_suite(kind_name: str, directory: Path | None = None) -> dict:
    """The suite of a kind as stored in ``expectations/`` (a JSON dict), checked for usable meta."""
    path = suite_path(kind_name, directory)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"缺少校验规则文件：{path}") from None
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"校验规则文件格式错误：{path}：{exc}") from None
    for i, exp in enumerate(suite.get("expectations", [])):
        meta = exp.get("meta") or {}
        missing = [key for key in ("rule", "rule_name", "severity", "message") if not meta.get(key)]
        if missing or meta.get("severity") not in SEVERITIES:
            raise RuntimeError(f"校验规则文件 {path.name} 第 {i + 1} 条期望的 meta 不完整或严重程度无效：{missing}")
        for column in _columns_of(exp):
            if "__" in column and _split_helper(column)[1] not in HELPERS:
                raise RuntimeError(f"校验规则文件 {path.name} 引用了未知的辅助列：{column}")
    return suite


def _columns_of(exp: Mapping) -> list[str]:
    kw = exp.get("kwargs", {})
    cols = [kw[key] for key in ("column", "column_A", "column_B") if key in kw]
    cols += list(kw.get("column_list", []))
    return cols


def _split_helper(column: str) -> tuple[str, str]:
    base, _, helper = column.partition("__")
    return base, helper


# --- store context ------------------------------------------------------------------------------


@dataclass
class StoreContext:
    """What validation needs from the store, loaded once per upload."""

    districts: dict[str, str] = field(default_factory=dict)  # normalised name/code/alias -> name
    catalogs: dict[str, list[tuple[str, frozenset[str]]]] = field(default_factory=dict)  # district -> periods
    previous_rows: Callable[[str, str, str], tuple[str, int] | None] = lambda kind, district, period: None

    def catalog_for(self, district: str, period: str) -> frozenset[str] | None:
        """Item codes of the newest catalog of a district whose period is on or before ``period``."""
        best = None
        for cat_period, codes in self.catalogs.get(district, []):
            if cat_period <= period and (best is None or cat_period > best[0]):
                best = (cat_period, codes)
        return best[1] if best else None


def store_context(engine: Engine, kind_name: str) -> StoreContext:
    from datasets.storage import store

    ctx = StoreContext(districts=store.district_lookup(engine))
    if kind_name in ("cases", "evaluations"):
        catalog = store.active_catalog_codes(engine)
        for (district, period), part in catalog.group_by(["district", "period"]) if catalog.height else []:
            ctx.catalogs.setdefault(str(district), []).append(
                (str(period), frozenset(part["item_code"].drop_nulls().to_list()))
            )

    def previous_rows(kind: str, district: str, period: str) -> tuple[str, int] | None:
        prev = _previous_month(period)
        rows = store.active_rows(engine, kind, district, prev)
        return None if rows is None else (prev, rows)

    ctx.previous_rows = previous_rows
    return ctx


def _previous_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


# --- result -------------------------------------------------------------------------------------


@dataclass
class Validation:
    kind: str
    frame: pl.DataFrame  # canonical columns (district resolved to the configured name) + ``_row``
    problems: list[Problem]
    counts: dict[str, int]  # rule -> number of problems (exact, also beyond MAX_PROBLEMS_PER_RULE)
    rule_names: dict[str, str]
    severities: dict[str, str]  # rule -> ERROR / WARNING
    periods: dict[str, str]  # district -> YYYY-MM the rows are filed under

    @property
    def error_count(self) -> int:
        return sum(n for rule, n in self.counts.items() if self.severities.get(rule) == ERROR)

    @property
    def warning_count(self) -> int:
        return sum(n for rule, n in self.counts.items() if self.severities.get(rule) == WARNING)

    @property
    def accepted(self) -> bool:
        return self.error_count == 0

    def summary(self) -> dict:
        """JSON-serialisable summary stored with the batch."""
        return {
            "rows": self.frame.height,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "rules": {
                rule: {"name": self.rule_names.get(rule, rule), "severity": self.severities.get(rule), "count": n}
                for rule, n in sorted(self.counts.items())
            },
            "periods": dict(sorted(self.periods.items())),
        }


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.rule_names: dict[str, str] = {}
        self.severities: dict[str, str] = {}

    def add(self, problem: Problem) -> None:
        self.counts[problem.rule] += 1
        self.rule_names.setdefault(problem.rule, problem.rule_name)
        # A rule's severity is the worst seen.
        if self.severities.get(problem.rule) != ERROR:
            self.severities[problem.rule] = problem.severity
        self.problems.append(problem)


class _Fmt(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _format(template: str, **values: Any) -> str:
    return template.format_map(_Fmt({k: "" if v is None else v for k, v in values.items()}))


# --- helper columns -----------------------------------------------------------------------------


def _raw_text(raw: pl.DataFrame, name: str) -> pl.Series:
    s = raw[name].cast(pl.String).str.strip_chars()
    return s.replace("", None).alias(f"{name}__raw")


@dataclass
class _Inputs:
    frame: pl.DataFrame  # parsed columns, district resolved (coalesced with raw for unknown ones)
    raw: pl.DataFrame  # ``<field>__raw`` text columns
    ctx: StoreContext
    periods: dict[str, str]
    uploader_district: str | None


HelperFn = Callable[[_Inputs, str], pl.Series | None]


def _h_raw(inp: _Inputs, base: str) -> pl.Series | None:
    return inp.raw[f"{base}__raw"] if f"{base}__raw" in inp.raw.columns else None


def _h_unparsed(inp: _Inputs, base: str) -> pl.Series | None:
    if base not in inp.frame.columns or f"{base}__raw" not in inp.raw.columns:
        return None
    raw = inp.raw[f"{base}__raw"]
    return pl.select(pl.when(raw.is_not_null() & inp.frame[base].is_null()).then(raw)).to_series()


def _h_unknown(inp: _Inputs, base: str) -> pl.Series | None:
    if base != "district" or "district__raw" not in inp.raw.columns:
        return None
    raw = inp.raw["district__raw"]
    unknown = [v for v in raw.drop_nulls().unique().to_list() if normalize(v) not in inp.ctx.districts]
    return pl.select(pl.when(raw.is_in(unknown)).then(raw)).to_series()


def _h_filled(inp: _Inputs, base: str) -> pl.Series | None:
    if base != "district":
        return None
    raw = inp.raw["district__raw"] if "district__raw" in inp.raw.columns else pl.Series([None] * inp.frame.height,
                                                                                       dtype=pl.String)
    return raw.fill_null(inp.uploader_district) if inp.uploader_district else raw


def _h_same_unit(inp: _Inputs, base: str) -> pl.Series | None:
    if base != "promised_limit" or not {"promised_limit", "legal_limit"} <= set(inp.frame.columns):
        return None
    f = inp.frame

    def unit(name: str) -> pl.Expr:
        return pl.col(name).fill_null("工作日") if name in f.columns else pl.lit("工作日")

    return f.select(
        pl.when(unit("promised_limit_unit") == unit("legal_limit_unit")).then(pl.col("promised_limit"))
    ).to_series()


def _h_not_in_catalog(inp: _Inputs, base: str) -> pl.Series | None:
    if base != "item_code" or "item_code" not in inp.frame.columns:
        return None
    pairs = []
    for district, period in inp.periods.items():
        catalog = inp.ctx.catalog_for(district, period)
        if catalog is not None:
            pairs += [(district, code, True) for code in catalog]
            pairs.append((district, None, False))  # marks the district as having a catalog
    known = pl.DataFrame(pairs, schema={"district": pl.String, "item_code": pl.String, "_in": pl.Boolean},
                         orient="row")
    has_catalog = known.filter(~pl.col("_in")).select("district")
    codes = inp.frame.select("district", "item_code")
    marked = codes.join(known.filter(pl.col("_in")), on=["district", "item_code"], how="left", maintain_order="left")
    marked = marked.with_columns(pl.col("district").is_in(has_catalog["district"].implode()).alias("_has"))
    return marked.select(
        pl.when(pl.col("_has") & pl.col("_in").is_null() & pl.col("item_code").is_not_null()).then(pl.col("item_code"))
    ).to_series()


def _h_open_days(inp: _Inputs, base: str) -> pl.Series | None:
    f = inp.frame
    if base != "accepted_at" or "accepted_at" not in f.columns:
        return None
    ends = {d: _month_end(p) for d, p in inp.periods.items()}
    end = f["district"].replace_strict(ends, default=None, return_dtype=pl.Datetime("us"))
    # Open exactly as the indicators count it (datasets.domain.vocabulary.open_case); a file without one of the
    # two columns is read as if that column were empty.
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in ("status", "completed_at") if c not in f.columns]
    days = (end - f["accepted_at"]).dt.total_days()
    return f.with_columns(missing).select(pl.when(vocabulary.open_case()).then(days)).to_series()


def _h_bad_without_rectify(inp: _Inputs, base: str) -> pl.Series | None:
    f = inp.frame
    if base != "rating" or "rating" not in f.columns:
        return None
    rectify = inp.raw["rectify_status__raw"] if "rectify_status__raw" in inp.raw.columns else None
    missing = rectify.is_null() if rectify is not None else pl.Series([True] * f.height)
    bad = f.select(vocabulary.bad_evaluation().fill_null(False)).to_series()
    shown = inp.raw["rating__raw"] if "rating__raw" in inp.raw.columns else f["rating"].cast(pl.String)
    return pl.select(pl.when(bad & missing).then(shown)).to_series()


HELPERS: dict[str, HelperFn] = {
    "raw": _h_raw,
    "unparsed": _h_unparsed,
    "unknown": _h_unknown,
    "filled": _h_filled,
    "same_unit": _h_same_unit,
    "not_in_catalog": _h_not_in_catalog,
    "open_days": _h_open_days,
    "bad_without_rectify": _h_bad_without_rectify,
}


def _month_end(period: str) -> dt.datetime:
    year, month = int(period[:4]), int(period[5:7])
    return dt.datetime(year + 1, 1, 1) if month == 12 else dt.datetime(year, month + 1, 1)


# --- Great Expectations -------------------------------------------------------------------------

_GX_LOCK = threading.Lock()


_POSITION = "_position"  # an expectation's place in the suite, carried in its meta between the passes
_COMPLETE = {"result_format": "COMPLETE", "return_unexpected_index_query": False}


def run_expectations(
    data: pl.DataFrame, expectations: list[dict], parameters: dict[str, Any], suite_name: str = "upload"
) -> list[tuple[dict, dict]]:
    """Validate ``data`` with GX (ephemeral context, pandas) and return ``(meta, result)`` per failure,
    in suite order.

    ``result`` is GX's COMPLETE result: ``unexpected_index_list`` holds row positions in ``data``.
    Most files pass: a first pass asks GX only whether each expectation holds (BOOLEAN_ONLY, about
    half the work of the complete result); the complete result, with the failing rows, is computed
    for the expectations that do not hold.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # A new meta per expectation; the rest is copied by _gx_results for each pass.
    tagged = [{**e, "meta": {**(e.get("meta") or {}), _POSITION: n}} for n, e in enumerate(expectations)]
    # GX compares datetime64[ns] columns vectorised (other resolutions go row by row in Python).
    pdf = data.with_columns(pl.col(pl.Datetime).cast(pl.Datetime("ns"))).to_pandas()
    with _GX_LOCK:  # GX keeps the current context in module state
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = (
            context.data_sources.add_pandas("upload")
            .add_dataframe_asset("rows")
            .add_batch_definition_whole_dataframe("all")
            .get_batch(batch_parameters={"dataframe": pdf})
        )
        held = _gx_results(batch, tagged, {"result_format": "BOOLEAN_ONLY"}, parameters, suite_name)
        failing = sorted(r.expectation_config.meta[_POSITION] for r in held if not r.success)
        results = _gx_results(batch, [tagged[n] for n in failing], _COMPLETE, parameters, suite_name) if failing else []
    failures = []
    for r in sorted(results, key=lambda r: r.expectation_config.meta[_POSITION]):
        if not r.success:
            meta = {k: v for k, v in (r.expectation_config.meta or {}).items() if k != _POSITION}
            failures.append((meta, dict(r.result or {})))
    return failures


def _gx_results(batch, expectations: list[dict], result_format: dict, parameters: dict[str, Any], suite_name: str) -> list:
    """GX's result per expectation; an expectation GX could not load or run is an error of the rules."""
    from great_expectations.core import ExpectationSuite

    suite = ExpectationSuite(name=suite_name, expectations=copy.deepcopy(expectations))
    if len(suite.expectations) != len(expectations):
        raise RuntimeError("校验规则文件中有无效的期望配置（Great Expectations 无法加载）")
    results = batch.validate(suite, result_format=result_format, expectation_parameters=parameters).results
    for r in results:
        info = r.exception_info or {}
        if info.get("raised_exception"):
            raise RuntimeError(f"校验规则执行出错（{r.expectation_config.type}）：{info.get('exception_message')}")
    return results


# --- validation ---------------------------------------------------------------------------------


def validate(
    parsed: ParsedFile,
    ctx: StoreContext,
    *,
    district: str | None = None,
    period: str | None = None,
    now: dt.datetime | None = None,
    suites_dir: Path | None = None,
) -> Validation:
    """Check a read file against its kind's suite; nothing is stored.

    ``district`` is the uploader's district, used where the file has no district column or an empty
    cell. ``period`` (YYYY-MM) overrides the derived month (required for catalogs, given by the caller).
    """
    k = schema.kind(parsed.kind)
    suite = load_suite(k.name, suites_dir)
    now = (now or dt.datetime.now()).replace(microsecond=0)
    out = _Collector()
    for p in parsed.problems:
        out.add(p)
    file_rules = {r["rule"]: r for r in suite.get("meta", {}).get("file_rules", [])}

    frame = parsed.frame
    if parsed.raw.height != frame.height:
        raise ValueError("ParsedFile.raw and ParsedFile.frame must hold the same rows")
    raw = pl.DataFrame([_raw_text(parsed.raw, f.name) for f in k.fields if f.name in parsed.raw.columns])

    # The uploader's district must itself be configured.
    uploader = None
    if district:
        uploader = ctx.districts.get(normalize(district))
        if uploader is None:
            _file_problem(out, file_rules, "district_unknown", value=district)
        else:
            named = _other_district_named(ctx, uploader, [Path(parsed.file_name).stem, parsed.sheet or ""])
            if named:
                _file_problem(out, file_rules, "district_name_mismatch", value=uploader, named=named)
    has_district = "district__raw" in raw.columns and "district" in parsed.headers
    if not has_district and not district:
        _file_problem(out, file_rules, "district_missing", aliases="、".join(schema.DISTRICT.aliases))

    # Resolve districts: configured name, else the raw text (so that duplicates still group).
    if "district__raw" in raw.columns and has_district:
        written = raw["district__raw"]
        names = {v: ctx.districts.get(normalize(v), v) for v in written.drop_nulls().unique().to_list()}
        resolved = written.replace_strict(names, default=None, return_dtype=pl.String)
        if uploader or district:
            resolved = resolved.fill_null(uploader or district)
    else:
        resolved = pl.Series([uploader or district] * frame.height, dtype=pl.String)
    frame = frame.with_columns(resolved.alias("district"))

    periods = _periods(frame, k, period)
    inputs = _Inputs(frame, raw, ctx, periods, uploader or district)

    # Build the validation frame: canonical columns the suite names, plus its helper columns.
    columns: dict[str, pl.Series] = {}
    expectations = []
    for exp in suite.get("expectations", []):
        needed = _columns_of(exp)
        ok = True
        for column in needed:
            if column in columns:
                continue
            if "__" in column:
                base, helper = _split_helper(column)
                if helper == "filled" and not has_district and not district:
                    ok = False  # reported once for the file above
                    break
                series = HELPERS[helper](inputs, base)
                if series is None:
                    ok = False
                    break
                columns[column] = series.alias(column)
            elif column in frame.columns:
                columns[column] = frame[column]
            elif exp["type"] != "expect_column_to_exist":
                ok = False
                break
        if ok:
            expectations.append(exp)
    data = pl.DataFrame(list(columns.values())) if columns else pl.DataFrame({"_pos": range(frame.height)})
    parameters: dict[str, Any] = {"now": now}
    for f in k.fields:
        if f.allowed:
            parameters[f"allowed__{f.name}"] = list(f.allowed)
    failures = run_expectations(data, expectations, parameters, suite_name=k.name) if expectations else []

    cells = _Cells(frame, raw)
    for meta, result in failures:
        _map_failure(out, meta, result, k, parsed, cells, now)

    if frame.height and not (out.counts.get("district_missing") or out.counts.get("district_unknown")):
        _store_checks(out, file_rules, k, frame, ctx, periods)

    # File-level problems first, then by Excel row (stable: suite order within a row).
    problems = sorted(out.problems, key=lambda p: (p.row is not None, p.row or 0))
    return Validation(
        kind=k.name,
        frame=frame,
        problems=problems,
        counts=dict(out.counts),
        rule_names=out.rule_names,
        severities=out.severities,
        periods=periods,
    )


def _periods(frame: pl.DataFrame, k: Kind, period: str | None) -> dict[str, str]:
    districts = [d for d in frame["district"].unique().to_list() if d is not None]
    if period:
        return dict.fromkeys(districts, period)
    if not k.date_field or k.date_field not in frame.columns:
        return {}
    counts = (
        frame.select("district", pl.col(k.date_field).dt.strftime("%Y-%m").alias("m"))
        .drop_nulls()
        .group_by("district", "m")
        .len()
        .sort(["district", "len", "m"], descending=[False, True, True])
        .unique("district", keep="first", maintain_order=True)
    )
    return dict(counts.select("district", "m").iter_rows())


def _other_district_named(ctx: StoreContext, chosen: str, texts: Sequence[str]) -> str | None:
    """A configured district other than ``chosen`` named (by name or alias) in a file or sheet name."""
    haystack = " ".join(normalize(t) for t in texts if t)
    usable = [(key, name) for key, name in ctx.districts.items() if len(key) >= 2 and not key.isdigit()]
    if any(name == chosen and key in haystack for key, name in usable):
        return None
    return next((name for key, name in sorted(usable, key=lambda kv: -len(kv[0])) if key in haystack), None)


def _file_problem(out: _Collector, file_rules: Mapping[str, dict], rule: str, **values: Any) -> None:
    spec = file_rules.get(rule)
    if spec is None:  # rule removed from the suite: not checked
        return
    out.add(Problem(SEVERITIES[spec["severity"]], rule, spec["rule_name"], _format(spec["message"], **values),
                    value=values.get("value")))


def _header(parsed: ParsedFile, k: Kind, name: str | None) -> str | None:
    if not name:
        return None
    if name in parsed.headers:
        return parsed.headers[name]
    try:
        return k.field(name).header
    except KeyError:
        return name


def _aliases_note(f: Field) -> str:
    return f"（也可写作：{'、'.join(f.aliases)}）" if f.aliases else ""


class _Cells:
    """Cell access by row position, converting a column to a Python list once."""

    def __init__(self, frame: pl.DataFrame, raw: pl.DataFrame) -> None:
        self.frame, self.raw = frame, raw
        self._lists: dict[str, list] = {}

    def _list(self, df: pl.DataFrame, column: str) -> list | None:
        key = f"{id(df)}:{column}"
        if key not in self._lists:
            self._lists[key] = df[column].to_list() if column in df.columns else None
        return self._lists[key]

    def parsed(self, name: str, pos: int) -> Any:
        values = self._list(self.frame, name)
        return None if values is None else values[pos]

    def shown(self, name: str | None, pos: int) -> str | None:
        """A cell as written (raw text), else the parsed value."""
        if not name:
            return None
        values = self._list(self.raw, f"{name}__raw")
        if values is not None and values[pos] is not None:
            return str(values[pos])
        value = self.parsed(name, pos)
        return None if value is None else str(value)


def _map_failure(out: _Collector, meta: dict, result: dict, k: Kind, parsed: ParsedFile, cells: _Cells,
                 now: dt.datetime) -> None:
    severity = SEVERITIES[meta["severity"]]
    rule, rule_name, template = meta["rule"], meta["rule_name"], meta["message"]
    name = meta.get("field")
    header = _header(parsed, k, name)
    other = meta.get("other_field")
    value_field = meta.get("value_field", name)
    positions = result.get("unexpected_index_list")
    base: dict[str, Any] = {"header": header, "other_header": _header(parsed, k, other), "now": now}
    if name:
        try:
            f = k.field(name)
            base["aliases_note"] = _aliases_note(f)
            base["aliases"] = "、".join(f.aliases)
            base["allowed"] = "、".join(f.allowed)
        except KeyError:
            pass
    if positions is None:  # a table- or column-level expectation (row count, column missing)
        out.add(Problem(severity, rule, rule_name, _format(template, **base), None, header, None))
        return
    positions = [int(p) for p in positions]
    total = max(int(result.get("unexpected_count") or 0), len(positions))
    dup_rows: dict[tuple, list[int]] = defaultdict(list)
    if rule == "duplicate_id":
        for p in positions:
            dup_rows[(cells.parsed("district", p), cells.parsed(name, p))].append(cells.parsed("_row", p))
    if rule in GROUPED_RULES:
        _grouped_failure(out, severity, rule, rule_name, template, base, name, value_field, positions, cells)
        return
    listed = positions[:MAX_PROBLEMS_PER_RULE]
    for p in listed:
        values = dict(base)
        values["value"] = cells.shown(value_field, p)
        values["other_value"] = cells.shown(other, p)
        values["district"] = cells.parsed("district", p)
        if rule == "duplicate_id":
            values["rows"] = "、".join(str(r) for r in dup_rows[(cells.parsed("district", p), cells.parsed(name, p))])
        out.add(Problem(severity, rule, rule_name, _format(template, **values), cells.parsed("_row", p), header,
                        cells.shown(name, p)))
    if total > len(listed):
        out.counts[rule] += total - len(listed)


# Rules about the file as a whole that fail row by row (every row of an unconfigured district): one
# problem per distinct value, with the number of rows and the first row numbers, not one per row.
GROUPED_RULES = frozenset({"district_unknown", "district_missing"})
_ROWS_SHOWN = 10


def _grouped_failure(out: _Collector, severity: str, rule: str, rule_name: str, template: str, base: dict[str, Any],
                     name: str | None, value_field: str | None, positions: list[int], cells: _Cells) -> None:
    groups: dict[str | None, list[int]] = defaultdict(list)
    for p in positions:
        groups[cells.shown(value_field, p)].append(p)
    for value, members in groups.items():
        values = dict(base, value=value, district=cells.parsed("district", members[0]))
        rows = [cells.parsed("_row", p) for p in members]
        message = _format(template, **values)
        if len(rows) > 1:
            more = "等" if len(rows) > _ROWS_SHOWN else ""
            message = f"{message}（共 {len(rows):,} 行：第 {'、'.join(str(r) for r in rows[:_ROWS_SHOWN])} 行{more}）"
        out.add(Problem(severity, rule, rule_name, message, rows[0], _header_of(base), value))
        out.counts[rule] += len(rows) - 1


def _header_of(base: Mapping[str, Any]) -> str | None:
    return base.get("header")


def _store_checks(out: _Collector, file_rules: Mapping[str, dict], k: Kind, frame: pl.DataFrame, ctx: StoreContext,
                  periods: Mapping[str, str]) -> None:
    """File-level warnings that compare with what is already stored."""
    sizes = dict(frame.group_by("district").len().iter_rows())
    for district, period in sorted(periods.items()):
        if "catalog_missing" in file_rules and ctx.catalog_for(district, period) is None:
            _file_problem(out, file_rules, "catalog_missing", district=district, period=period)
        spec = file_rules.get("month_volume_drop")
        if spec is not None:
            prev = ctx.previous_rows(k.name, district, period)
            threshold = float(spec.get("threshold", VOLUME_DROP_RATIO))
            rows = int(sizes.get(district, 0))
            if prev is not None and prev[1] > 0 and rows < threshold * prev[1]:
                _file_problem(out, file_rules, "month_volume_drop", district=district, period=period, rows=rows,
                              prev_period=prev[0], prev_rows=prev[1], ratio=f"{threshold:.0%}")


def rule_catalog(kinds: Iterable[str] = tuple(KINDS)) -> pl.DataFrame:
    """Every rule of the suites (for the data-quality page and the docs)."""
    rows = []
    seen = set()
    for name in kinds:
        suite = load_suite(name)
        entries = [e["meta"] for e in suite.get("expectations", [])] + suite.get("meta", {}).get("file_rules", [])
        for meta in entries:
            key = (name, meta["rule"])
            if key in seen:
                continue
            seen.add(key)
            rows.append((KINDS[name].label, meta["rule"], meta["rule_name"], SEVERITIES[meta["severity"]]))
    return pl.DataFrame(rows, schema=["数据类型", "规则", "规则名称", "严重程度"], orient="row")
