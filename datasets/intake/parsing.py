"""Vectorised parsers from cell text to the data model's types (see the parsers in datasets/domain/schema.py).

Every parser takes an expression of cell text (String, possibly with surrounding spaces, full-width
characters or units) and returns an expression of the field's type that is null where the cell is
empty or cannot be parsed. A value that is written but cannot be parsed must come out null, never as
a guess: validation reports "written but unparseable" by comparing the cell text with the parsed value.
No parser loops over rows in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from datasets.common.text import normalize
from datasets.domain.schema import ACTIVE, BOOL, DATETIME, DEPTH, LIMIT, NUMBER, RATING, RATINGS, TEXT, Field

# Cells holding one of these (after trimming) are treated as empty, like a blank cell.
PLACEHOLDERS = ("-", "--", "---", "—", "——", "－", "/", "\\", "null", "NULL", "Null", "None", "nan", "NaN")

# Whitespace and invisible characters trimmed from cells (Excel exports carry NBSP, ideographic space, BOM...).
BLANKS = (
    " \t\r\n\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)
_INVISIBLE = "[" + BLANKS + "]+"


def once(expr: pl.Expr, body: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """``body(v)`` where every use of ``v`` is ``expr`` computed a single time.

    Polars does not share a subexpression used several times within one expression (each use of
    ``expr`` in ``pl.when(expr == 1).then(expr)`` is computed again); a struct field is computed once.
    """
    name = expr.meta.output_name(raise_if_undetermined=False) or "value"
    inner = pl.struct(expr.alias("v")).struct.with_fields(body(pl.field("v")).alias("out"))
    return inner.struct.field("out").alias(name)


def clean(expr: pl.Expr) -> pl.Expr:
    """The cell text as written, or null when the cell is blank or a placeholder such as "-" or "/"."""
    return once(
        expr,
        lambda v: pl.when(v.str.strip_chars(BLANKS).is_in(("", *PLACEHOLDERS))).then(None).otherwise(v),
    )


def norm(expr: pl.Expr) -> pl.Expr:
    """Matching key of a value, as datasets.common.text.normalize: NFKC, no whitespace at all, lower case."""
    return expr.str.normalize("NFKC").str.replace_all(_INVISIBLE, "").str.to_lowercase()


def parse_text(expr: pl.Expr) -> pl.Expr:
    """Free text: NFKC (full-width → half-width), trimmed; Excel's `="00123"` CSV trick unwrapped."""

    def unwrap(v: pl.Expr) -> pl.Expr:
        wrapped = v.str.starts_with('="') & v.str.ends_with('"') & (v.str.len_bytes() >= 3)
        return pl.when(wrapped).then(v.str.slice(2, v.str.len_chars() - 3).str.strip_chars(BLANKS)).otherwise(v)

    value = once(expr.str.normalize("NFKC").str.strip_chars(BLANKS), unwrap)
    return once(value, lambda v: pl.when(v == "").then(None).otherwise(v))


def parse_allowed(expr: pl.Expr, allowed: tuple[str, ...] | list[str]) -> pl.Expr:
    """A value from a closed list, spelled as in the data model when it matches one after normalisation.

    `pc端` → `PC端`, `黄牌(已撤销)` → `黄牌（已撤销）`; a value that matches none stays as written
    (trimmed, NFKC) so that validation can reject it: nothing is silently changed to another value.
    """
    mapping = {normalize(a): a for a in allowed}
    return once(expr, lambda v: pl.coalesce(norm(v).replace_strict(mapping, default=None), parse_text(v)))


_YMD = (
    r"^(?<y>\d{4})[-/.年](?<mo>\d{1,2})[-/.月](?<d>\d{1,2})日?"
    r"(?:[t ]*(?<ap>上午|下午|am|pm)?[ ]*(?<h>\d{1,2})[:时点](?<mi>\d{1,2})"
    r"(?:[:分](?<s>\d{1,2})(?:\.(?<f>\d{1,9}))?秒?)?分?(?:[ ]*(?<ap2>am|pm))?)?$"
)
_COMPACT = r"^(?<y>\d{4})(?<mo>\d{2})(?<d>\d{2})(?:[t ]*(?<h>\d{2}):?(?<mi>\d{2})(?::?(?<s>\d{2}))?)?$"
_SERIAL = r"^\d{5}(?:\.\d+)?$"  # Excel serial day number: 10000–99999 is 1927–2173
_EXCEL_EPOCH = pl.datetime(1899, 12, 30, time_unit="us")


def parse_datetime(expr: pl.Expr) -> pl.Expr:
    """Datetime(us) from `2024-05-03 14:22:05`, `2024/5/3 14:22`, `2024年5月3日`, `20240503`,
    `2024/5/3 下午 2:22:05`, an Excel date cell as calamine renders it, or an Excel serial number
    such as `45415.6`.

    Seconds are optional; an impossible date (2024-02-30) is null.
    """
    s = expr.str.normalize("NFKC").str.strip_chars().str.replace_all(r"\s+", " ").str.to_lowercase()
    f = pl.field

    def both(name: str) -> pl.Expr:
        return pl.coalesce(f("long").struct.field(name), f("compact").struct.field(name))

    def two(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.String).fill_null("0").str.zfill(2)

    parts = pl.struct(s.alias("s")).struct.with_fields(
        f("s").str.extract_groups(_YMD).alias("long"),
        f("s").str.extract_groups(_COMPACT).alias("compact"),
        pl.when(f("s").str.contains(_SERIAL)).then(f("s")).cast(pl.Float64, strict=False).alias("serial"),
    )
    parts = parts.struct.with_fields(
        *[both(name).alias(name) for name in ("y", "mo", "d", "mi", "s")],
        both("h").cast(pl.Int32, strict=False).alias("h"),
        pl.coalesce(f("long").struct.field("ap"), f("long").struct.field("ap2")).alias("ap"),
        f("long").struct.field("f").str.pad_end(6, "0").str.slice(0, 6).cast(pl.Int64).fill_null(0).alias("us"),
    )
    # 12-hour clock: 下午 2:22 is 14:22, 上午 12:05 is 00:05 (下午 14:22 is read as written)
    hour = (
        pl.when(f("ap").is_in(["下午", "pm"]) & (f("h") < 12))
        .then(f("h") + 12)
        .when(f("ap").is_in(["上午", "am"]) & (f("h") == 12))
        .then(0)
        .otherwise(f("h"))
    )
    text = pl.format("{}-{}-{} {}:{}:{}", f("y"), two(f("mo")), two(f("d")), two(hour), two(f("mi")), two(f("s")))
    from_text = text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us") + pl.duration(
        microseconds=f("us")
    )
    seconds = (f("serial") * 86400).round(0).cast(pl.Int64)
    from_serial = _EXCEL_EPOCH + pl.duration(seconds=seconds, time_unit="us")
    out = pl.coalesce(from_text, pl.when(f("serial").is_not_null()).then(from_serial))
    name = expr.meta.output_name(raise_if_undetermined=False) or "value"
    return parts.struct.with_fields(out.cast(pl.Datetime("us")).alias("out")).struct.field("out").alias(name)


_NUMBER = r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:个(?:工作日|自然日|小时)?|人次|次|件|份|项|天|日|工作日|自然日|小时)?$"


def _as_dtype(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Cast a Float64 to the field type; a fractional value for an integer field is null (not truncated)."""
    if dtype.is_integer():
        return once(value, lambda v: pl.when(v == v.floor()).then(v).cast(dtype, strict=False))
    return value.cast(dtype, strict=False)


def parse_number(expr: pl.Expr, dtype: pl.DataType = pl.Float64) -> pl.Expr:
    """A number, optionally with a thousands separator and a counting unit: `3个`, `5天`, `1,200`, `2次`."""
    key = norm(expr).str.replace_all(",", "")
    value = key.str.extract(_NUMBER, 1).cast(pl.Float64, strict=False)
    return _as_dtype(value, dtype)


_LIMIT = r"^([+-]?\d+(?:\.\d+)?)个?\(?(工作日|自然日|天|日)?\)?$"
IMMEDIATE = ("即办", "即办件", "即时办结", "即时办理", "当场办结", "当场办理", "即来即办", "立即办理", "立即办结")


def parse_limit(expr: pl.Expr, dtype: pl.DataType = pl.Float64) -> pl.Expr:
    """A time limit in days: `20`, `20个工作日`, `10个自然日`, `5天`; `即办` (and its variants) is 0."""
    value = once(
        norm(expr).str.replace_all(",", ""),
        lambda key: pl.when(key.is_in(IMMEDIATE))
        .then(pl.lit(0.0))
        .otherwise(key.str.extract(_LIMIT, 1).cast(pl.Float64, strict=False)),
    )
    return _as_dtype(value, dtype)


def limit_unit(expr: pl.Expr) -> pl.Expr:
    """The unit written inside a time limit (`20个工作日` → 工作日, `10个自然日` → 自然日), else null."""
    unit = norm(expr).str.replace_all(",", "").str.extract(_LIMIT, 2)
    return unit.replace_strict({"工作日": "工作日", "自然日": "自然日"}, default=None, return_dtype=pl.String)


_LEVELS = {
    "1": 1, "一": 1, "i": 1,
    "2": 2, "二": 2, "ii": 2,
    "3": 3, "三": 3, "iii": 3,
    "4": 4, "四": 4, "iv": 4,
}  # fmt: skip
_LEVEL = r"([1-4一二三四]|iv|iii|ii|i)"
_DEPTH_WORDS = (  # the level's own name, used when no level number is written
    (4, "全程网办"),
    (3, "在线预审|网上预审|网上申报"),
    (2, "在线预约|表格下载|在线咨询"),
    (1, "信息公开|办事指南"),
)


def parse_depth(expr: pl.Expr) -> pl.Expr:
    """Online depth level as Int8 1–4 from `4`, `四级`, `Ⅳ`, `IV`, `第四级`, `全程网办（Ⅳ级）`,
    `Ⅳ 全程网办（零跑动）` or the level's name alone (`全程网办`)."""

    def body(key: pl.Expr) -> pl.Expr:  # key: NFKC turns Ⅰ–Ⅳ into latin I–IV, lower-cased by norm()
        token = pl.coalesce(
            key.str.extract(r"^第?" + _LEVEL + r"(?:\.0+)?(?:级|星)?$", 1),
            key.str.extract(r"(?:^|[^a-z])" + _LEVEL + r"级", 1),
            key.str.extract(r"^" + _LEVEL + r"(?:[^a-z0-9.]|$)", 1),
        )
        by_name = pl.lit(None, dtype=pl.Int8)
        for value, pattern in reversed(_DEPTH_WORDS):
            by_name = pl.when(key.str.contains(pattern)).then(pl.lit(value, dtype=pl.Int8)).otherwise(by_name)
        return pl.coalesce(token.replace_strict(_LEVELS, default=None, return_dtype=pl.Int8), by_name)

    return once(norm(expr), body)


def parse_rating(expr: pl.Expr) -> pl.Expr:
    """Rating as Int8 5–1 from 非常满意、满意、基本满意、不满意、非常不满意, or `1`–`5` (`5分`, `5.0`)."""
    words = {normalize(k): v for k, v in RATINGS.items()}
    return once(
        norm(expr),
        lambda key: pl.coalesce(
            key.replace_strict(words, default=None, return_dtype=pl.Int8),
            key.str.extract(r"^([1-5])(?:\.0+)?(?:分|星)?$", 1).cast(pl.Int8, strict=False),
        ),
    )


_TRUE = ("是", "y", "yes", "true", "1", "1.0", "√", "✓", "✔", "对", "有")
_FALSE = ("否", "n", "no", "false", "0", "0.0", "×", "✗", "✘", "错", "无")
_ACTIVE_TRUE = ("主动评价", "主动", "主动好评")
_ACTIVE_FALSE = ("默认好评", "默认评价", "默认", "系统默认好评", "超时默认好评", "自动好评", "非主动评价", "被动评价")


def _boolean(key: pl.Expr, true: tuple[str, ...], false: tuple[str, ...]) -> pl.Expr:
    mapping = {**dict.fromkeys(false, False), **dict.fromkeys(true, True)}
    return key.replace_strict(mapping, default=None, return_dtype=pl.Boolean)


def parse_bool(expr: pl.Expr) -> pl.Expr:
    """是/否, Y/N, yes/no, 1/0, true/false, √/× → Boolean."""
    return _boolean(norm(expr), _TRUE, _FALSE)


def parse_active(expr: pl.Expr) -> pl.Expr:
    """是否主动评价: the 是/否 forms, or 主动评价 (True) / 默认好评 (False)."""
    return _boolean(norm(expr), _TRUE + _ACTIVE_TRUE, _FALSE + _ACTIVE_FALSE)


def parse_field(expr: pl.Expr, field: Field) -> pl.Expr:
    """Cell text → the field's dtype with the field's parser (allowed values normalised for text)."""
    parser = field.parser
    if parser == TEXT:
        out = parse_allowed(expr, field.allowed) if field.allowed else parse_text(expr)
    elif parser == DATETIME:
        out = parse_datetime(expr)
    elif parser == NUMBER:
        out = parse_number(expr, field.dtype)
    elif parser == LIMIT:
        out = parse_limit(expr, field.dtype)
    elif parser == DEPTH:
        out = parse_depth(expr)
    elif parser == RATING:
        out = parse_rating(expr)
    elif parser == BOOL:
        out = parse_bool(expr)
    elif parser == ACTIVE:
        out = parse_active(expr)
    else:  # pragma: no cover - a new parser kind added to the schema without a parser here
        raise ValueError(f"unknown parser {parser!r} for field {field.name}")
    return out.cast(field.dtype)


def fast_path(field: Field) -> Callable[[pl.Expr], pl.Expr] | None:
    """A cheap parser for the common clean form of a field's cells, or None.

    It returns null for anything else, and for what it accepts it gives exactly what parse_field
    gives, so a reader may run it first and parse_field only on the cells it left null.
    """
    if field.parser == DATETIME:  # the form calamine renders Excel date cells in
        return lambda e: e.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us", exact=True)
    if field.parser == TEXT and not field.allowed:  # printable ASCII, already trimmed
        return lambda e: pl.when(e.str.contains(r"^[!-~](?:[ -~]*[!-~])?$") & ~e.str.starts_with('="')).then(e)
    return None
