"""Hostile bulletin templates (issue 23): refused with a Chinese message naming the problem, or rendered
inertly; never running code, never costing the server more than the limits in metrics/template_guard.py.

The corpus is generated here from the shipped default template. Payloads that would run a command try
to create a marker file; each test asserts that the file does not exist afterwards.
"""

from __future__ import annotations

import io
import os
import re
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from docx import Document
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError as JinjaError

from datasets.access import documents
from datasets.common.limited_child import LimitExceeded, Limits, run_module
from datasets.storage import store
from metrics import bulletin_docx
from metrics import template_guard as guard
from metrics.__main__ import main
from tests.apptest_support import Demo

MIB = 1024 * 1024


# --- building hostile templates ---------------------------------------------------------------------


def docx_bytes(doc) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def with_text(text: str, where: str = "body") -> bytes:
    """The default template with ``text`` added in the body, the header, the footer or a document property."""
    doc = Document(io.BytesIO(bulletin_docx.default_template()))
    if where == "body":
        doc.add_paragraph(text)
    elif where == "header":
        doc.sections[0].header.add_paragraph(text)
    elif where == "footer":
        doc.sections[0].footer.add_paragraph(text)
    else:
        setattr(doc.core_properties, where, text)
    return docx_bytes(doc)


def members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(parts: dict[str, bytes], extra: list[zipfile.ZipInfo | str] | None = None,
          data: list[bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in parts.items():
            z.writestr(name, content)
        for info, content in zip(extra or [], data or [], strict=True):
            z.writestr(info, content)
    return out.getvalue()


def splice(name: str, deflated: bytes, declared: int, crc: int) -> bytes:
    """The default template plus one deflated member written by hand, so that its directory entries can
    declare any size and CRC."""
    honest = rezip(members(bulletin_docx.default_template()))
    with zipfile.ZipFile(io.BytesIO(honest)) as z:
        cd_offset = z.start_dir
    raw = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated), declared, len(raw), 0)
    body = honest[:cd_offset] + local + raw + deflated
    central = honest[cd_offset:]
    eocd_at = central.rfind(b"PK\x05\x06")
    entries, eocd = central[:eocd_at], central[eocd_at:]
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(deflated), declared,
                        len(raw), 0, 0, 0, 0, 0, cd_offset) + raw
    count = struct.unpack("<H", eocd[10:12])[0] + 1
    cd = entries + entry
    return body + cd + eocd[:8] + struct.pack("<HHLL", count, count, len(cd), len(body)) + eocd[20:]


def deflated_zeros(mib: int) -> bytes:
    """``mib`` MiB of zero bytes, raw deflate (about 1000:1). Fully flushed blocks of zeros compress to the
    same bytes every time, so the stream is built from one block, in milliseconds."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = first.compress(bytes(MIB)) + first.flush(zlib.Z_FULL_FLUSH)
    again = first.compress(bytes(MIB)) + first.flush(zlib.Z_FULL_FLUSH)
    return block + again * (mib - 1) + first.flush()


def zip_bomb() -> bytes:
    """A member of 3 GiB of zeros in a 3 MB file, declared honestly (the probe's 84 KB file took 3.2 GB)."""
    return splice("word/media/zeros.bin", deflated_zeros(3072), 3072 * MIB, 0)


def lying_zip_bomb() -> bytes:
    """A member whose directory entries declare 1 KiB (with the CRC of 1 KiB of zeros) but that unpacks
    to 400 MiB: zipfile's own ``read()`` would inflate all of it."""
    return splice("word/media/zeros.bin", deflated_zeros(400), 1024, zlib.crc32(bytes(1024)))


MARK = "MARKER"  # replaced by the marker file's path


def marker_payloads(marker: Path) -> list[str]:
    cmd = f"touch {marker}"
    return [p.replace(MARK, cmd) for p in SSTI]


SSTI = [
    "{{ cycler.__init__.__globals__.os.popen('MARKER').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('MARKER').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('MARKER').read() }}",
    "{{ lipsum.__globals__['os'].popen('MARKER').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('MARKER').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ title.__class__.__mro__[1].__subclasses__() }}",
    "{{ title|attr('__class__') }}",
    "{{ body.tpl.docx }}",
    "{{ ('x'*400000000)|length }}",
    "{{ 9**9**9 }}",
    "{{ '%999999999s' % title }}",
    "{{ title ~ title }}",
    "{{ title.upper() }}",
    "{{ title[0] }}",
    "{% for i in range(10**9) %}{{ title }}{% endfor %}",
    "{% for c in title %}{{ c }}{% endfor %}",
    "{% set ns = namespace(x=1) %}{{ ns.x }}",
    "{% if title %}{{ title }}{% endif %}",
    "{% include 'bulletin.docx' %}",
    "{% import 'x' as y %}",
    "{% from 'x' import y %}",
    "{% extends 'x' %}",
    "{% macro m() %}{{ title }}{% endmacro %}{{ m() }}",
    "{% filter upper %}x{% endfilter %}",
    "{% with a = title %}{{ a }}{% endwith %}",
]


# --- the corpus, checked in this process (so a payload that ran would run here) -----------------------


@pytest.mark.parametrize("payload", SSTI)
def test_ssti_payloads_are_refused_before_anything_is_compiled(payload: str, tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = payload.replace(MARK, f"touch {marker}")
    with pytest.raises(guard.TemplateError, match=r"只能使用占位符|无法识别的占位符") as exc:
        guard.inspect_template(with_text(payload))
    assert "{{p body }}（正文）" in str(exc.value)  # names what may be used
    assert not marker.exists()


@pytest.mark.parametrize("where", ["header", "footer", "title", "comments", "subject"])
def test_every_part_docxtpl_renders_is_checked(where: str, tmp_path: Path):
    """Headers, footers and the document properties are rendered too (docxtpl), so they are checked too."""
    marker = tmp_path / "pwned"
    payload = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
    with pytest.raises(guard.TemplateError, match="只能使用占位符"):
        guard.inspect_template(with_text(payload, where))
    assert not marker.exists()


def test_the_refusal_quotes_the_offending_placeholder():
    with pytest.raises(guard.TemplateError) as exc:
        guard.inspect_template(with_text("落款：{{ cycler.__init__.__globals__.os.popen('id').read() }}"))
    assert "“{{ cycler.__init__.__globals__.os.popen('id').read() }}”不允许" in str(exc.value)
    with pytest.raises(guard.TemplateError, match=r"无法识别的占位符 \{\{ config \}\}、\{\{ request \}\}"):
        guard.inspect_template(with_text("{{ request }}{{ config }}"))


@pytest.mark.parametrize(("template", "message"), [
    ("{{ title }} {{ title }} {{ issuer }}", None),  # repeated optional placeholders are fine
    ("{{p body }}", "正文占位符 {{p body }} 只能有一个"),
    ("{{ title }}" * 101, "占位符过多（超过 100 个）"),
    ("{{ title }", "占位符写法有误"),
    ("{{ title }}{% endfor %}", "占位符写法有误"),
    ("{# a comment with {{ cycler }} #}", None),  # comments are dropped by the parser
])
def test_placeholder_counts_and_syntax(template: str, message: str | None):
    content = with_text(template)
    if message is None:
        assert set(guard.inspect_template(content)) <= guard.ALLOWED
    else:
        with pytest.raises(guard.TemplateError, match=re.escape(message)):
            guard.inspect_template(content)


TOKENS = ["{{", "}}", "{%", "%}", "{#", "#}", " ", "title", "body", "city", "cycler", "__globals__", "os",
          "popen", ".", "|", "(", ")", "[", "]", "'x'", "*", "**", "%", "9", "for", "in", "range", "endfor",
          "set", "=", "include", "import", "macro", "raw", "endraw", "~", "-", "文字"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
@example("{{ title }}文字{{city}}{% raw %}{{ cycler }}{% endraw %}{# os #}")
def test_any_accepted_source_only_fills_placeholders(source: str):
    """Whatever the parser admits renders without error to the text with each placeholder's value in
    place: never more than the source plus one value per placeholder."""
    env = guard.BulletinEnvironment()
    try:
        template = env.from_string(source)
    except (guard.TemplateError, JinjaError):
        return
    values = {k: f"<{k}>" for k in guard.ALLOWED}
    out = template.render(values)
    assert set(env.placeholders) <= guard.ALLOWED
    escaped = {k: f"&lt;{k}&gt;" for k in guard.ALLOWED}
    assert len(out) <= len(source) + sum(len(escaped[k]) for k in env.placeholders)
    for name in env.placeholders:
        assert escaped[name] in out


# --- the sandbox alone: inert even for a template that was never checked ------------------------------


@pytest.mark.parametrize("payload", SSTI)
def test_the_sandbox_alone_keeps_every_payload_inert(payload: str, tmp_path: Path):
    """Layer 3 without the parser's check (a stored row that skipped it): no code runs, nothing big is built."""
    marker = tmp_path / "pwned"
    env = guard.SandboxEnvironment()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        try:
            out = env.from_string(payload.replace(MARK, f"touch {marker}")).render(title="标题", body="正文")
        except JinjaError:
            out = None
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not marker.exists()
    assert seconds < 1 and peak < 20 * MIB
    assert out is None or ("__" not in out and "subclasses" not in out and len(out) < 1000), out


def test_sandbox_operators_refuse_large_results():
    from jinja2.exceptions import SecurityError

    env = guard.SandboxEnvironment()
    for source in ("{{ 'x' * n }}", "{{ n * 'x' }}", "{{ [1] * n }}", "{{ 2 ** n }}", "{{ '%5s' % 'x' }}"):
        with pytest.raises(SecurityError):
            env.from_string(source).render(n=400_000_000)
    assert env.from_string("{{ 'ab' * n }}|{{ 2 ** 10 }}").render(n=3) == "ababab|1024"
    with pytest.raises(SecurityError) as exc:
        env.from_string("{{ title.__class__ }}").render(title="x")
    assert str(guard.render_error(exc.value)) == "通报模板试图访问不允许的内容，已拒绝（模板中只能使用占位符）"


# --- the package: size, names, zip bombs, XML ----------------------------------------------------------


def test_a_zip_bomb_is_refused_in_milliseconds_without_unpacking():
    bomb = zip_bomb()
    assert len(bomb) < 5 * MIB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(guard.TemplateError, match=r"解压后太大：3072\.\d MB，上限为 20\.0 MB"):
            bulletin_docx.check_template(bomb)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 0.5 and peak < 20 * MIB, (seconds, peak)


def test_a_zip_bomb_that_lies_about_its_size_is_read_within_the_budget():
    bomb = lying_zip_bomb()
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        assert z.getinfo("word/media/zeros.bin").file_size == 1024  # the lie
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(guard.TemplateError, match=r"“word/media/zeros\.bin”解压后比声明的大小大"):
            bulletin_docx.check_template(bomb)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 0.5 and peak < 20 * MIB, (seconds, peak)


@pytest.mark.parametrize("name", ["../x", "word/../../x", "/etc/x", "C:/x", "word\\..\\x", "./word/x"])
def test_members_with_paths_outside_the_package_are_refused(name: str):
    content = rezip(members(bulletin_docx.default_template()), [zipfile.ZipInfo(name)], [b"x"])
    with pytest.raises(guard.TemplateError, match="路径不合法的文件"):
        bulletin_docx.check_template(content)


def test_too_big_a_file_is_refused_by_its_size(tmp_path: Path):
    big = rezip(members(bulletin_docx.default_template()), ["word/media/noise.bin"], [os.urandom(6 * MIB)])
    assert len(big) > 6 * MIB
    started = time.perf_counter()
    with pytest.raises(guard.TemplateError, match=r"通报模板太大：6\.\d MB，上限为 5\.0 MB"):
        bulletin_docx.check_template(big)
    assert time.perf_counter() - started < 0.5


def test_too_many_members_duplicates_and_encryption_are_refused():
    parts = members(bulletin_docx.default_template())
    many = rezip(parts, [f"word/x{i}.bin" for i in range(1000)], [b""] * 1000)
    with pytest.raises(guard.TemplateError, match=r"包含的文件过多（1\d{3} 个，上限 1000 个）"):
        bulletin_docx.check_template(many)
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = rezip(parts, ["word/document.xml"], [parts["word/document.xml"]])
    with pytest.raises(guard.TemplateError, match="重名的文件"):
        bulletin_docx.check_template(twice)
    # The last member written marked encrypted, in its local header and its directory entry.
    content = bytearray(rezip(parts, ["word/secret.bin"], [b"x" * 20]))
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as z:
        local = z.getinfo("word/secret.bin").header_offset
    central = content.rfind(b"PK\x01\x02")
    content[local + 6] |= 0x1
    content[central + 8] |= 0x1
    with pytest.raises(guard.TemplateError, match=r"“word/secret\.bin”有密码保护"):
        bulletin_docx.check_template(bytes(content))


@pytest.mark.parametrize(("content", "message"), [
    (b"not a docx", "不是有效的 Word 文档"),
    (b"", "不是有效的 Word 文档"),
    (b"PK\x03\x04" + bytes(100), "不是有效的 Word 文档"),
])
def test_non_zip_files_are_refused(content: bytes, message: str):
    with pytest.raises(guard.TemplateError, match=message):
        bulletin_docx.check_template(content)


def _with_member(name: str, content: bytes) -> bytes:
    parts = members(bulletin_docx.default_template())
    parts[name] = content
    return rezip(parts)


@pytest.mark.parametrize(("name", "xml", "message"), [
    ("word/document.xml", b"<w:document><w:body><w:p>", r"word/document\.xml 不是有效的 XML（第 1 行有错误）"),
    ("word/document.xml", b"", r"word/document\.xml 不是有效的 XML"),
    ("word/styles.xml", b"<?xml version='1.0'?>\n<a>\n</b>", r"word/styles\.xml 不是有效的 XML（第 3 行有错误）"),
    ("word/document.xml", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
                          b"<d>&b;</d>", r"word/document\.xml 含有文档类型声明（DTD），不允许"),
])
def test_broken_xml_is_refused_in_chinese(name: str, xml: bytes, message: str):
    with pytest.raises(guard.TemplateError, match=message):
        guard.inspect_template(_with_member(name, xml))


def test_another_office_file_renamed_to_docx_is_refused():
    from openpyxl import Workbook

    out = io.BytesIO()
    Workbook().save(out)
    with pytest.raises(guard.TemplateError, match="不是 Word 文档"):
        guard.inspect_template(out.getvalue())


# --- through the child process: the public check, its limits, and rendering --------------------------


def test_check_template_runs_the_check_in_a_child_and_caches_the_verdict(monkeypatch, tmp_path: Path):
    marker = tmp_path / "pwned"
    hostile = with_text(f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}")
    with pytest.raises(guard.TemplateError, match="只能使用占位符"):
        bulletin_docx.check_template(hostile)
    assert not marker.exists()
    with pytest.raises(guard.TemplateError, match=r"word/document\.xml 不是有效的 XML"):
        bulletin_docx.check_template(_with_member("word/document.xml", b"<w:document>"))
    good = with_text("附：{{ city }}{{ period }}")
    bulletin_docx.check_template(good)
    calls = []
    monkeypatch.setattr(guard, "run_module", lambda *a: calls.append(a))
    bulletin_docx.check_template(good)  # cached: no second child
    assert calls == []


def test_a_template_that_runs_docxtpl_over_its_time_limit_is_refused(monkeypatch):
    """docxtpl's own regular expressions take quadratic time on a long ``{% colspan`` (ReDoS); the
    check's child is killed at its limit and the template refused."""
    doc = Document(io.BytesIO(bulletin_docx.default_template()))
    doc.add_table(rows=1, cols=1).cell(0, 0).text = "{% colspan a" + " " * 120_000 + "%a"
    content = docx_bytes(doc)
    started = time.perf_counter()
    with pytest.raises(guard.TemplateError, match="超出时间限制"):
        guard.check_template(content, Limits(seconds=3, memory_bytes=512 * MIB))
    assert time.perf_counter() - started < 10


def test_a_template_that_needs_too_much_memory_is_refused():
    """20 MiB of tiny XML elements unpack within the size limit but need gigabytes as a tree."""
    parts = members(bulletin_docx.default_template())
    xml = parts["word/document.xml"]
    head, tail = xml.split(b"</w:body>")
    filler = b"<w:p/>" * (18 * MIB // 6)
    content = rezip({**parts, "word/document.xml": head + filler + b"</w:body>" + tail})
    assert len(content) < 5 * MIB
    with pytest.raises(guard.TemplateError, match="超出内存限制"):
        guard.check_template(content, Limits(seconds=60, memory_bytes=256 * MIB))


def test_the_child_runner_reports_time_memory_and_crashes():
    with pytest.raises(LimitExceeded) as exc:
        run_module("tests.child_probe", b"sleep", Limits(seconds=1, memory_bytes=512 * MIB))
    assert exc.value.kind == "time"
    with pytest.raises(LimitExceeded) as exc:
        run_module("tests.child_probe", b"allocate", Limits(seconds=20, memory_bytes=256 * MIB))
    assert exc.value.kind == "memory"
    with pytest.raises(LimitExceeded) as exc:
        run_module("tests.child_probe", b"crash", Limits(seconds=20, memory_bytes=256 * MIB))
    assert exc.value.kind == "crash"
    assert run_module("tests.child_probe", b"echo", Limits(seconds=20, memory_bytes=256 * MIB)) == b"echo"


def test_the_default_template_and_an_allowed_one_still_render(demo: Demo):
    from metrics import bulletin
    from tests.test_bulletin import docx_text, inputs_for

    doc = bulletin.build_bulletin(inputs_for(demo, demo.period), with_charts=False)
    good = with_text("附：{{ city }}（{{ period }}）")
    bulletin_docx.check_template(good)
    paragraphs, _ = docx_text(bulletin_docx.bulletin_docx(doc, good))
    assert paragraphs[-1] == f"附：{doc.city}（{demo.period.label}）"
    assert doc.title in paragraphs and bulletin.SECTION_TITLES[0] in paragraphs
    paragraphs, _ = docx_text(bulletin_docx.bulletin_docx(doc))
    assert doc.title in paragraphs and doc.issue_date in paragraphs


def test_a_stored_hostile_template_is_refused_by_the_cli_and_writes_nothing(demo_copy: Demo, tmp_path: Path,
                                                                            capsys):
    marker = tmp_path / "pwned"
    engine = store.make_engine(demo_copy.url)
    # Stored directly, as an older version without the check would have stored it.
    documents.put(engine, documents.TEMPLATE,
                  with_text(f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"), "admin1",
                  "红头.docx")
    engine.dispose()
    out = tmp_path / "b.docx"
    code = main(["bulletin", "--db", demo_copy.url, "--period", demo_copy.period.key, "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert "生成失败：通报模板中只能使用占位符" in err and "Traceback" not in err
    assert not out.exists() and not marker.exists()


# --- the pages -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("navigation_mode")
@pytest.mark.parametrize(("upload", "message"), [
    ("ssti", "模板未保存：通报模板中只能使用占位符"),
    ("xml", "模板未保存：通报模板中的 word/document.xml 不是有效的 XML"),
    ("bomb", "模板未保存：通报模板解压后太大"),
])
def test_settings_page_refuses_hostile_uploads_in_chinese(demo_copy: Demo, monkeypatch, tmp_path: Path,
                                                         upload: str, message: str):
    from tests.apptest_support import app, ok, open_page, texts

    marker = tmp_path / "pwned"
    content = {"ssti": lambda: with_text(f"{{{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}}}"),
               "xml": lambda: _with_member("word/document.xml", b"<w:document><w:body>"),
               "bomb": zip_bomb}[upload]()
    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users["admin1"]), "pages/settings.py")
    at.file_uploader(key="bulletin_template_upload").set_value([("红头.docx", content, "application/octet-stream")])
    ok(at.run())
    ok(at.button(key="bulletin_template_save").click().run())
    assert message in texts(at.error).replace("\\", "")  # shown through shared.plain (Markdown escapes)
    engine = store.make_engine(demo_copy.url)
    assert documents.get(engine, documents.TEMPLATE) is None
    engine.dispose()
    assert not marker.exists()


@pytest.mark.usefixtures("navigation_mode")
def test_bulletin_page_with_a_stored_hostile_template_says_so_and_offers_no_download(demo_copy: Demo, monkeypatch,
                                                                                    tmp_path: Path):
    from tests.apptest_support import app, ok, open_page, texts

    marker = tmp_path / "pwned"
    engine = store.make_engine(demo_copy.url)
    documents.put(engine, documents.TEMPLATE,
                  with_text(f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"), "admin1",
                  "红头.docx")
    engine.dispose()
    at = open_page(app(demo_copy.url, monkeypatch, demo_copy.users["evaluator1"], period=demo_copy.period.key),
                   "pages/bulletin.py")
    ok(at)
    shown = texts(at.error).replace("\\", "")  # Markdown escapes (shared.plain)
    assert "通报模板不可用，暂不能下载：通报模板中只能使用占位符" in shown and "恢复默认模板" in shown
    assert at.get("download_button") == []
    assert not marker.exists()
