"""Hardening against files built to exhaust memory (issue 12, item 1).

The reader runs in a child process under an address-space ceiling (RLIMIT_AS), so a regression that
makes it allocate the far cell's grid fails this test instead of taking the test runner down.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.apptest_support import ROOT, STAFF_NAME, TIMEOUT

CEILING_MB = 1024  # the reader's whole process; a normal 20 000-row read peaks near 110 MB

_READ_CHILD = """
import json, resource, sys
limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from datasets.intake.parsed import ReadError
from datasets.intake.readers import read_file
from tests.bad_files import corpus
data = getattr(corpus, sys.argv[2])()
try:
    parsed = read_file(data, sys.argv[3])
    outcome, message = f"read {parsed.frame.height}", ""
except ReadError as exc:
    outcome, message = exc.rule, exc.message
# VmHWM: this process's own peak (ru_maxrss would include the forking parent's, kept across exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) >> 10
print(json.dumps({"outcome": outcome, "message": message, "peak_mb": peak, "size": len(data)}))
"""


def _run_child(code: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize(
    ("builder", "file_name", "expected", "says"),
    [
        ("far_cell_xlsx", "远处单元格.xlsx", "sheet_too_large", "1,048,576 行 × 16,384 列"),
        ("blank_rows_xlsx", "百万空行.xlsx", "sheet_too_large", "1,000,009 行 × 12 列"),
        # Formatted cells without values are skipped by the reader: valid, and read within the ceiling.
        ("formatted_blank_rows_xlsx", "格式化空行.xlsx", "read 3", ""),
    ],
)
def test_far_cell_and_blank_rows_under_a_memory_ceiling(builder, file_name, expected, says):
    done = _run_child(_READ_CHILD, CEILING_MB, builder, file_name)
    # Before the fix: exit 134 (Rust abort on the failed allocation) or a MemoryError.
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == expected, result
    assert says in result["message"]
    assert result["peak_mb"] < 400, result


def test_far_cell_file_is_small():
    from tests.bad_files.corpus import far_cell_xlsx

    assert len(far_cell_xlsx()) < 3000


_PAGE_CHILD = """
import json, resource, sys
limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import pytest
from streamlit.runtime.pages_manager import PagesManager
from datasets.access import accounts
from datasets.storage import store
from tests.apptest_support import app, open_page, ok, texts
from tests.bad_files.corpus import far_cell_xlsx

# As conftest.navigation_mode: a running server's multipage mode.
original = PagesManager.__init__
def init(self, *args, **kwargs):
    original(self, *args, **kwargs)
    PagesManager.uses_pages_directory = False
PagesManager.__init__ = init

url, name = sys.argv[2], sys.argv[3]
engine = store.make_engine(url)
user = accounts.get_user(engine, name)
engine.dispose()
mp = pytest.MonkeyPatch()
at = open_page(app(url, mp, user), "pages/upload.py")
at.file_uploader[0].set_value([("远处单元格.xlsx", far_cell_xlsx(), "application/octet-stream")])
ok(at.run())
errors = texts(at.error)
ok(at.switch_page("pages/overview.py").run())
print(json.dumps({"errors": errors, "title": at.title[0].value if at.title else ""}, ensure_ascii=False))
"""


@pytest.mark.usefixtures("navigation_mode")
def test_upload_page_refuses_the_far_cell_file_and_the_app_stays_up(demo_copy):
    """A 工作人员 selects the far-cell file: a Chinese refusal, then another page still loads."""
    done = _run_child(_PAGE_CHILD, 3072, demo_copy.url, STAFF_NAME, timeout=TIMEOUT * 3)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "工作表过大" in result["errors"] or "数据区域为" in result["errors"], result
    assert "1,048,576 行" in result["errors"]
    assert result["title"].startswith("总览"), result


@pytest.mark.usefixtures("navigation_mode")
def test_database_going_away_mid_run_is_a_message_and_the_next_run_recovers(demo, monkeypatch):
    """A connection lost while a page runs (the server restarting): a Chinese message instead of a
    traceback; once the database answers again the same session shows the page, no server restart."""
    import sqlalchemy as sa

    from pages import _session as session
    from tests.apptest_support import ALL_NAME, app, ok, texts

    at = ok(app(demo.url, monkeypatch, demo.users[ALL_NAME]).run())
    assert at.title[0].value.startswith("总览")
    real = session.current_user

    def lost(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(session, "current_user", lost)
    ok(at.run())
    assert "数据库暂时不可用" in texts(at.error)
    monkeypatch.setattr(session, "current_user", real)
    ok(at.run())
    assert at.title[0].value.startswith("总览") and "数据库暂时不可用" not in texts(at.error)
