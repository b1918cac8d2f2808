"""Import templates (.xlsx), one per kind, generated from ``datasets/domain/schema.py``."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from datasets.common import safe_export
from datasets.domain import schema
from datasets.domain.schema import KINDS, Field, Kind

_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"

_GENERAL_NOTES = (
    "第一行为表头，第二行起每行一条记录；示例行请删除或替换为实际数据。",
    "表头可使用“也可写作”中的任一名称；列的顺序不限，不在本表中的列会被忽略。",
    "日期可写作 2024-05-03 14:22:05、2024/5/3 14:22、2024年5月3日、20240503，或使用 Excel 日期格式。",
    "时限、次数等数字可带单位，如“20个工作日”“5天”“即办”（即办为 0）。",
    "文件只含一个区县时可省略“所属区县”列，上传时选择区县即可；含多个区县时每行须填写。",
    "支持 .xlsx、.xls、.csv（UTF-8 或 GBK 编码）文件。",
)


def file_name(kind_name: str) -> str:
    return f"{schema.kind(kind_name).label}导入模板.xlsx"


def _required_text(k: Kind, f: Field) -> str:
    if f.name == "district":
        return "视情况（多区县文件必填）"
    if k.name == "evaluations" and f.name == "rectify_status":
        return "差评必填"
    return "是" if f.required else "否"


def _allowed_values(f: Field) -> list[str]:
    if f.allowed:
        return list(f.allowed)
    if f.parser == schema.BOOL:
        return ["是", "否"]
    if f.parser == schema.ACTIVE:
        return ["是", "否", "主动评价", "默认好评"]
    return []


def _allowed_text(f: Field) -> str:
    if f.parser == schema.RATING:
        return "、".join(f"{name}（{score}）" for name, score in schema.RATINGS.items())
    if f.parser == schema.DEPTH:
        return "；".join(schema.DEPTH_LABELS.values())
    return "、".join(_allowed_values(f))


def _write_example(sheet, row: int, col: int, f: Field, formats: dict) -> None:
    value = f.example
    if not value:
        return
    if f.parser == schema.DATETIME:
        sheet.write_datetime(row, col, dt.datetime.fromisoformat(value), formats["datetime"])
        return
    if f.parser in (schema.NUMBER, schema.LIMIT):
        try:
            sheet.write_number(row, col, float(value))
            return
        except ValueError:
            pass
    sheet.write_string(row, col, value, formats["text"])


def template_bytes(kind_name: str) -> bytes:
    """The import template of a kind: headers and one example row, plus a 填写说明 sheet."""
    k = schema.kind(kind_name)
    buffer = io.BytesIO()
    workbook = safe_export.workbook(buffer)
    formats = {
        "required": workbook.add_format({"bold": True, "bg_color": "#F8CBAD", "border": 1}),
        "optional": workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1}),
        "datetime": workbook.add_format({"num_format": _DATETIME_FORMAT}),
        "text": workbook.add_format({"num_format": "@"}),
        "wrap": workbook.add_format({"text_wrap": True, "valign": "top"}),
        "title": workbook.add_format({"bold": True, "font_size": 13}),
    }
    data = workbook.add_worksheet(k.label)
    for col, f in enumerate(k.fields):
        data.write_string(0, col, f.header, formats["required" if f.required else "optional"])
        note = f"{'必填' if f.required else '选填'}。{f.description}".rstrip("。") + "。"
        if f.aliases:
            note += f"也可写作：{'、'.join(f.aliases)}。"
        data.write_comment(0, col, note, {"x_scale": 2, "y_scale": 1.5})
        _write_example(data, 1, col, f, formats)
        width = 20 if f.parser == schema.DATETIME else max(12, len(f.header) * 2 + 4)
        data.set_column(col, col, width, formats["text"] if f.parser == schema.TEXT else None)
        values = _allowed_values(f)
        if values and sum(len(v) + 1 for v in values) < 250:
            data.data_validation(1, col, 100_000, col, {
                "validate": "list", "source": values, "error_type": "warning",
                "error_title": "取值不在列表中", "error_message": f"允许的取值：{'、'.join(values)}",
            })
    data.freeze_panes(1, 0)

    guide = workbook.add_worksheet("填写说明")
    guide.write_string(0, 0, f"{k.label}导入模板填写说明", formats["title"])
    headers = ("列名", "是否必填", "也可写作（别名）", "允许的取值", "说明", "示例")
    for col, name in enumerate(headers):
        guide.write_string(2, col, name, formats["optional"])
    for row, f in enumerate(k.fields, start=3):
        cells = (f.header, _required_text(k, f), "、".join(f.aliases), _allowed_text(f), f.description, f.example)
        for col, text in enumerate(cells):
            if text:
                guide.write_string(row, col, text, formats["wrap"])
    row = 3 + len(k.fields) + 1
    guide.write_string(row, 0, "通用说明", formats["title"])
    for i, note in enumerate(_GENERAL_NOTES, start=1):
        guide.write_string(row + i, 0, f"{i}. {note}")
    for col, width in enumerate((16, 12, 30, 40, 60, 22)):
        guide.set_column(col, col, width)
    workbook.close()
    return buffer.getvalue()


def write_templates(out_dir: str | Path) -> list[Path]:
    """Write one template per kind into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in KINDS:
        path = out / file_name(name)
        path.write_bytes(template_bytes(name))
        paths.append(path)
    return paths
