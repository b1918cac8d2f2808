"""The bulletin's Word template is data, not code: what a template may contain and how it is rendered.

An administrator uploads the template on 设置; the administrator is a business role, not the server's
operator, so the template is hostile input. Three layers:

1. The package (in the server process, milliseconds, no large allocation): at most
   ``MAX_TEMPLATE_BYTES``; a zip whose members have plain relative names and whose declared unpacked
   sizes add up to at most ``MAX_UNPACKED_BYTES``, each read back within that budget (a zip bomb is
   refused from its directory, and a member lying about its size fails its own read).
2. The content (in a child process with ``CHECK_LIMITS``, see datasets/common/limited_child.py): every XML
   part parses (no DTD), and docxtpl renders the template once with stand-in values through
   ``BulletinEnvironment``, whose parser admits only the placeholders below: ``{{ name }}`` with a
   known name, nothing else (no attribute access, filters, calls, operators, loops, includes or
   macros). docxtpl's own regular expressions run on the template there too, so their time and memory
   are bounded by the child's limits. The verdict is cached by the template's digest.
3. The real rendering uses the same environment: a Jinja2 ``ImmutableSandboxedEnvironment`` with no
   globals, filters or tests, whose ``*``, ``**`` and ``%`` refuse large results, so even a template
   that reached it unchecked (a stored row) could neither reach Python internals nor allocate much.

Run as ``python -m metrics.template_guard`` (the child): the template on stdin, a JSON verdict on stdout.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import sys
import threading
import zipfile
from collections.abc import Iterator

from jinja2 import DictLoader, StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from datasets.common.limited_child import LimitExceeded, Limits, run_module

REQUIRED = {"title": "标题", "body": "正文"}
OPTIONAL = {"issuer": "发文单位", "issue_date": "成文日期", "city": "城市名称", "period": "统计时段",
            "doc_number": "发文字号", "cc": "抄送", "printer": "印发机关", "print_date": "印发日期"}
ALLOWED = frozenset(REQUIRED) | frozenset(OPTIONAL)
PLACEHOLDER_HELP = "；".join(f"{{{{ {k} }}}}（{v}）" for k, v in {**REQUIRED, **OPTIONAL}.items()).replace(
    "{{ body }}", "{{p body }}")

MIB = 1024 * 1024
MAX_TEMPLATE_BYTES = 5 * MIB  # the .docx as uploaded
MAX_UNPACKED_BYTES = 20 * MIB  # all its members unpacked (a letterhead template is well under 1 MiB)
MAX_MEMBERS = 1000
MAX_PLACEHOLDERS = 100  # all parts together; each one is filled with a short text
CHECK_LIMITS = Limits(seconds=30, memory_bytes=512 * MIB)
# The sandbox's own bounds, for a template that reached rendering without the parser's check.
MAX_RESULT_CHARS = 100_000
MAX_EXPONENT = 64


class TemplateError(ValueError):
    """A template that cannot be used; the message names the problem in Chinese."""


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MB"  # 1 MB = 1,048,576 bytes here, as Windows shows file sizes


# --- 1. the package ---------------------------------------------------------------------------------


def _bad_member_name(name: str) -> bool:
    """Anything but a plain relative path inside the package (``../x``, ``./x``, ``/x``, ``C:x``, ``a\\b``)."""
    if not name or "\\" in name or "\x00" in name:
        return True
    parts = name.split("/")
    if parts[-1] == "" and len(parts) > 1:  # a folder entry, "word/"
        parts = parts[:-1]
    return any(part in ("", ".", "..") or ":" in part for part in parts)


def check_package(content: bytes) -> None:
    """Size, member names and unpacked size of a .docx, without unpacking more than the budget."""
    if len(content) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"通报模板太大：{_mib(len(content))}，上限为 {_mib(MAX_TEMPLATE_BYTES)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise TemplateError("通报模板不是有效的 Word 文档（.docx）") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise TemplateError(f"通报模板包含的文件过多（{len(members)} 个，上限 {MAX_MEMBERS} 个），不是正常的 Word 文档")
        names = [m.filename for m in members]
        bad = next((n for n in names if _bad_member_name(n)), None)
        if bad is not None:
            raise TemplateError(f"通报模板中有路径不合法的文件“{bad[:80]}”，不是正常的 Word 文档")
        if len(set(names)) != len(names):
            raise TemplateError("通报模板中有重名的文件，不是正常的 Word 文档")
        declared = sum(m.file_size for m in members)
        if declared > MAX_UNPACKED_BYTES:
            raise TemplateError(f"通报模板解压后太大：{_mib(declared)}，上限为 {_mib(MAX_UNPACKED_BYTES)}")
        budget = MAX_UNPACKED_BYTES
        for member in members:
            budget -= _read_within(archive, member, budget)


def _read_within(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: int) -> int:
    """Unpack one member in chunks (nothing kept), checking its CRC; the bytes it really holds.

    zipfile stops a member at its declared size, but only after inflating a whole read's worth (a
    ``read()`` of a member that lies about its size inflates all of it): so the member is read here in
    small chunks as if it were larger than the budget, and one holding more than it declares is refused.
    """
    seen = 0
    honest = copy.copy(member)
    honest.file_size = budget + 1
    try:
        with archive.open(honest) as stream:
            while chunk := stream.read(64 * 1024):
                seen += len(chunk)
                if seen > member.file_size or seen > budget:
                    raise TemplateError(f"通报模板中的文件“{member.filename[:80]}”解压后比声明的大小大，"
                                        "可能是压缩炸弹，不是正常的 Word 文档")
    except TemplateError:
        raise
    except RuntimeError:  # zipfile: an encrypted member
        raise TemplateError(f"通报模板中的文件“{member.filename[:80]}”有密码保护，无法读取") from None
    except NotImplementedError:
        raise TemplateError(f"通报模板中的文件“{member.filename[:80]}”使用了不支持的压缩方式") from None
    except Exception as exc:  # BadZipFile (CRC), zlib.error, lzma errors, EOFError, ...
        raise TemplateError(f"通报模板已损坏（文件“{member.filename[:80]}”无法解压：{type(exc).__name__}）") from None
    if seen != member.file_size:
        raise TemplateError(f"通报模板已损坏（文件“{member.filename[:80]}”的大小与声明的不符）")
    return seen


# --- 2./3. the environment ----------------------------------------------------------------------------


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with nothing in reach: no globals (range, cycler, joiner, namespace,
    lipsum, dict), no filters, tests or templates to include, and operators that refuse large results."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        # An empty loader: {% include %}/{% import %} find nothing (TemplateNotFound, not a TypeError).
        super().__init__(undefined=StrictUndefined, autoescape=True, loader=DictLoader({}))
        self.globals.clear()
        self.filters.clear()
        self.tests.clear()

    def call_binop(self, context, operator: str, left, right):
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed in a template")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent over {MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int) \
                        and len(seq) * times > MAX_RESULT_CHARS:
                    raise SecurityError(f"a repeated sequence over {MAX_RESULT_CHARS} items")
        return super().call_binop(context, operator, left, right)


class BulletinEnvironment(SandboxEnvironment):
    """The sandbox whose parser admits only known placeholders: every source docxtpl compiles (body,
    headers, footers, footnotes, document properties) is checked before Jinja2 compiles or folds it."""

    def __init__(self) -> None:
        super().__init__()
        self.placeholders: list[str] = []  # every placeholder, in order, over all parts rendered

    def _parse(self, source, name, filename):
        try:
            tree = super()._parse(source, name, filename)
        except RecursionError:
            raise TemplateError("通报模板中的占位符嵌套过深") from None
        found, disallowed = _placeholders(tree)
        if disallowed:
            raise TemplateError(_disallowed_message(self, source, disallowed))
        unknown = sorted({n for n in found if n not in ALLOWED})
        if unknown:
            shown = "、".join(f"{{{{ {k} }}}}" for k in unknown)
            raise TemplateError(f"通报模板中有无法识别的占位符 {shown}。可用的占位符：{PLACEHOLDER_HELP}")
        self.placeholders.extend(found)
        if len(self.placeholders) > MAX_PLACEHOLDERS:
            raise TemplateError(f"通报模板中的占位符过多（超过 {MAX_PLACEHOLDERS} 个）")
        if self.placeholders.count("body") > 1:
            raise TemplateError("通报模板中的正文占位符 {{p body }} 只能有一个")
        return tree


def _placeholders(tree: nodes.Template) -> tuple[list[str], list[nodes.Node]]:
    """The names of ``{{ name }}`` outputs, and every node that is anything else."""
    found: list[str] = []
    disallowed: list[nodes.Node] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):  # {% for %}, {% set %}, {% macro %}, {% include %}, ...
            disallowed.append(node)
            continue
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                continue
            if isinstance(child, nodes.Name) and child.ctx == "load":
                found.append(child.name)
            else:
                disallowed.append(child)
    return found, disallowed


def _tags(env: SandboxEnvironment, source: str) -> Iterator[tuple[str, list[str]]]:
    """Each ``{{ … }}``/``{% … %}`` of ``source`` as written, with its significant tokens (Jinja2's lexer)."""
    text: list[str] = []
    tokens: list[str] = []
    inside = False
    for _, kind, value in env.lex(source):
        if kind in ("variable_begin", "block_begin"):
            inside, text, tokens = True, [], []
        if inside:
            text.append(value)
            if kind not in ("variable_begin", "block_begin", "variable_end", "block_end", "whitespace"):
                tokens.append(value)
        if kind in ("variable_end", "block_end"):
            inside = False
            yield "".join(text), tokens


def _disallowed_message(env: SandboxEnvironment, source: str, disallowed: list[nodes.Node]) -> str:
    """Quote the first tag that is not a plain known placeholder (the parse tree decided; this only shows it)."""
    quote = ""
    try:
        quote = next((text for text, tokens in _tags(env, source) if len(tokens) != 1 or tokens[0] not in ALLOWED), "")
    except Exception:  # the message is best effort; the refusal stands
        quote = ""
    kind = "控制语句（{% %}）" if isinstance(disallowed[0], nodes.Stmt) else "表达式"
    shown = f"“{quote[:80]}{'…' if len(quote) > 80 else ''}”" if quote else kind
    return (f"通报模板中只能使用占位符，不能使用表达式、过滤器、函数或控制语句：{shown}不允许。"
            f"可用的占位符：{PLACEHOLDER_HELP}")


def render_error(exc: Exception) -> TemplateError:
    """A Jinja2 error while rendering, in Chinese."""
    from jinja2 import TemplateSyntaxError, UndefinedError

    if isinstance(exc, TemplateError):
        return exc
    if isinstance(exc, TemplateSyntaxError):
        return TemplateError("通报模板中的占位符写法有误：{{ 与 }}、{% 与 %} 须成对，括号中只能写占位符名称")
    if isinstance(exc, SecurityError):
        return TemplateError("通报模板试图访问不允许的内容，已拒绝（模板中只能使用占位符）")
    if isinstance(exc, UndefinedError):
        return TemplateError("通报模板中的占位符无法填写（只能使用规定的占位符）")
    return TemplateError(f"通报模板无法使用（{type(exc).__name__}）")


# --- 2. the content, in the child -------------------------------------------------------------------


def _xml_members(archive: zipfile.ZipFile) -> Iterator[tuple[str, bytes]]:
    for member in archive.infolist():
        data = archive.read(member)
        head = data[:4].lstrip(b"\xef\xbb\xbf \t\r\n")
        if member.filename.endswith((".xml", ".rels")) or head[:1] == b"<" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield member.filename, data


def check_xml(content: bytes) -> None:
    """Every XML part parses, without a DTD (no entity expansion, no network)."""
    from lxml import etree

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name, data in _xml_members(archive):
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
            try:
                tree = etree.parse(io.BytesIO(data), parser)
            except etree.XMLSyntaxError as exc:
                if _out_of_memory(exc):
                    raise MemoryError from None
                line = f"第 {exc.lineno} 行" if exc.lineno else "开头"
                raise TemplateError(f"通报模板中的 {name[:80]} 不是有效的 XML（{line}有错误），文档已损坏") from None
            if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
                raise TemplateError(f"通报模板中的 {name[:80]} 含有文档类型声明（DTD），不允许")


def _out_of_memory(exc: Exception) -> bool:
    """libxml2 reports a failed allocation as a syntax error."""
    from lxml import etree

    log = getattr(exc, "error_log", None) or []
    return isinstance(exc, etree.LxmlError) and any(e.type == etree.ErrorTypes.ERR_NO_MEMORY for e in log)


STAND_IN = {"title": "标" * 60, "issuer": "单" * 40, "issue_date": "2026年12月31日", "city": "市" * 10,
            "doc_number": "代" * 20 + "〔2026〕9999号", "cc": "抄" * 200, "printer": "印" * 40,
            "print_date": "2026年12月31日印发",
            "period": "2026年第4季度"}


def inspect_template(content: bytes) -> list[str]:
    """Check a template completely (in this process): the placeholders it uses, or TemplateError."""
    from docxtpl import DocxTemplate

    check_package(content)
    check_xml(content)
    try:
        tpl = DocxTemplate(io.BytesIO(content))
        env = BulletinEnvironment()
        tpl.render({**STAND_IN, "body": tpl.new_subdoc()}, env)
        tpl.save(io.BytesIO())
    except MemoryError:
        raise
    except TemplateError:
        raise
    except ValueError as exc:
        if "is not a Word file" in str(exc):
            raise TemplateError("通报模板不是 Word 文档（.docx），可能是其他 Office 文件改了扩展名") from None
        raise render_error(exc) from None
    except Exception as exc:  # a hostile file may fail anywhere in docx/docxtpl
        if _out_of_memory(exc):
            raise MemoryError from None
        from docx.opc.exceptions import PackageNotFoundError
        from jinja2 import TemplateError as JinjaError

        if isinstance(exc, PackageNotFoundError | KeyError):
            raise TemplateError("通报模板不是有效的 Word 文档（.docx），缺少正文部分") from None
        if isinstance(exc, JinjaError):
            raise render_error(exc) from None
        raise TemplateError(f"通报模板无法读取（{type(exc).__name__}），请在 Word/WPS 中重新保存后再上传") from None
    missing = [k for k in REQUIRED if k not in env.placeholders]
    if missing:
        shown = "、".join(("{{p body }}" if k == "body" else f"{{{{ {k} }}}}") + f"（{REQUIRED[k]}）" for k in missing)
        raise TemplateError(f"通报模板缺少占位符 {shown}。可用的占位符：{PLACEHOLDER_HELP}")
    return env.placeholders


_verified: dict[str, bool] = {}
_verified_lock = threading.Lock()


def check_template(content: bytes, limits: Limits | None = None) -> None:
    """Raise TemplateError (Chinese) unless ``content`` is a usable template. The package is checked
    here; the content in a child process under ``limits`` (default ``CHECK_LIMITS``), once per template."""
    if len(content) > MAX_TEMPLATE_BYTES:
        check_package(content)  # refuses it, naming the size
    digest = hashlib.sha256(content).hexdigest()
    with _verified_lock:
        if digest in _verified:
            return
    check_package(content)
    try:
        out = run_module("metrics.template_guard", content, limits or CHECK_LIMITS)
        verdict = json.loads(out)
    except LimitExceeded as exc:
        what = {"time": "时间", "memory": "内存"}.get(exc.kind)
        if what is None:
            raise TemplateError("通报模板无法检查：检查进程异常退出，模板可能已损坏") from None
        raise TemplateError(f"通报模板无法读取：超出{what}限制（模板过于复杂或已损坏）") from None
    except (OSError, ValueError):
        raise TemplateError("通报模板暂时无法检查（服务器无法启动检查进程），请稍后重试") from None
    if "error" in verdict:
        raise TemplateError(verdict["error"])
    with _verified_lock:
        if len(_verified) > 64:
            _verified.clear()
        _verified[digest] = True


def _main() -> None:
    content = sys.stdin.buffer.read()
    try:
        verdict: dict = {"placeholders": inspect_template(content)}
    except TemplateError as exc:
        verdict = {"error": str(exc)}
    sys.stdout.write(json.dumps(verdict, ensure_ascii=False))


if __name__ == "__main__":
    _main()
