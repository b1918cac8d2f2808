"""Sign-in and account hardening (issue 12, item 7; item 5 for refused imports).

Uniform failure answers, one argon2 verification on every path, rate-limited audit of anonymous
failures, demo passwords recognised by value, --password-stdin, scope re-read at store time,
rollback refusal wording, refused imports audited.
"""

from __future__ import annotations

import io

import polars as pl
import pytest
import sqlalchemy as sa

from datasets.access import accounts
from datasets.access.accounts import LOGIN_FAILED, STAFF, UNKNOWN_ACCOUNT
from datasets.intake import upload
from datasets.storage import store
from tests.bad_files.corpus import DISTRICT_A, DISTRICT_B, csv_bytes, rows

PW = "secret-pass-1"


@pytest.fixture
def engine(sqlite_engine, monkeypatch):
    monkeypatch.setattr(accounts, "failed_login_audit", accounts._RateLimit(20, 60.0))
    store.add_district(sqlite_engine, DISTRICT_A)
    store.add_district(sqlite_engine, DISTRICT_B)
    accounts.add_user(sqlite_engine, "li", PW, [STAFF], [DISTRICT_A])
    return sqlite_engine


def _verifications(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = accounts._verify

    def counting(password_hash, password):
        calls.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "_verify", counting)
    return calls


@pytest.mark.parametrize(
    ("username", "password", "locked"),
    [
        ("nobody", "whatever-1", False),  # unknown account
        ("li", "wrong-pass-1", False),  # wrong password
        ("li", PW, True),  # locked account, even with the right password
    ],
)
def test_every_failure_has_the_same_answer_after_the_same_work(engine, monkeypatch, username, password, locked):
    if locked:
        for _ in range(accounts.MAX_FAILED_ATTEMPTS):
            accounts.authenticate(engine, "li", "bad-pass-0")
    calls = _verifications(monkeypatch)
    result = accounts.authenticate(engine, username, password)
    assert (result.user, result.message) == (None, LOGIN_FAILED)
    assert len(calls) == 1  # one argon2 verification whatever the path: no timing difference to measure


def test_anonymous_failures_are_audited_under_one_name_and_rate_limited(engine):
    for i in range(30):
        accounts.authenticate(engine, f"<script>{i}</script>", "x-password")
    log = accounts.audit_entries(engine, 1000, "login_failed")
    assert log["账号"].unique().to_list() == [UNKNOWN_ACCOUNT]
    assert log.height == 20
    # a wrong password on a real account is always audited
    accounts.authenticate(engine, "li", "bad-pass-1")
    assert accounts.audit_entries(engine, 1000, "login_failed").filter(pl.col("账号") == "li").height == 1


def test_rate_limit_window():
    limit = accounts._RateLimit(2, 60.0)
    assert [limit.allow(0.0), limit.allow(1.0), limit.allow(2.0)] == [True, True, False]
    assert limit.allow(60.5) and not limit.allow(60.6)


def test_disabled_account_is_named_only_with_its_password(engine):
    accounts.set_active(engine, "li", False)
    assert accounts.authenticate(engine, "li", "wrong-pass-2").message == LOGIN_FAILED
    assert "停用" in accounts.authenticate(engine, "li", PW).message


def test_demo_passwords_are_recognised_by_value(engine):
    from datasets.__main__ import main

    url = engine.url.render_as_string(hide_password=False)
    accounts.ensure_demo_accounts(engine)
    # Setting the published demo password again is refused (it used to clear the demo flag).
    assert main(["users", "passwd", "admin", "--password", "demo-admin", "--db", url]) == 2
    assert "admin" in accounts.accounts_with_demo_password(engine)
    # An account whose flag an older version cleared is still found by its password.
    with engine.begin() as conn:
        conn.execute(accounts.users.update().values(is_demo_password=False))
    assert sorted(accounts.accounts_with_demo_password(engine)) == ["admin", "evaluator", "leader", "staff"]
    accounts.set_password(engine, "admin", "a-real-password")
    assert "admin" not in accounts.accounts_with_demo_password(engine)
    with pytest.raises(ValueError, match="示例密码"):
        accounts.add_user(engine, "new", "demo-staff", [STAFF])


def test_password_from_stdin(engine, monkeypatch, capsys):
    from datasets.__main__ import main

    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-pass-9\n"))
    assert main(["users", "passwd", "li", "--password-stdin", "--db", url]) == 0
    assert accounts.authenticate(engine, "li", "piped-pass-9").user is not None
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["users", "add", "zhao", "--role", STAFF, "--password-stdin", "--db", url]) == 2
    assert "标准输入" in capsys.readouterr().err


def test_store_checked_uses_the_scope_as_stored_now(engine):
    clerk = accounts.get_user(engine, "li")
    check = upload.check_file(engine, csv_bytes(rows("cases", 3)), "甲区.csv", user=clerk)
    assert check.accepted
    accounts.update_user(engine, "li", roles=[STAFF], districts=[DISTRICT_B], actor="admin")
    with pytest.raises(accounts.PermissionDenied, match=DISTRICT_A):
        upload.store_checked(engine, check)
    assert store.batch_history(engine).height == 0
    refused = accounts.audit_entries(engine, 10, "import_rejected")
    assert refused["账号"].to_list() == ["li"] and DISTRICT_A in refused["内容"][0]


def test_refused_imports_are_audited_with_the_reason(engine):
    clerk = accounts.get_user(engine, "li")
    table = rows("cases", 2)
    table[1]["所属区县"] = DISTRICT_B
    _check, result = upload.import_file(engine, csv_bytes(table), "两区.csv", user=clerk)
    assert result is None
    # a file with errors given to import_file (the CLI's path) is an import refused too
    bad = rows("cases", 2)
    bad[0]["受理时间"] = "2024-13-40"
    upload.import_file(engine, csv_bytes(bad), "坏日期.csv")
    log = accounts.audit_entries(engine, 10, "import_rejected")
    assert log["操作"].to_list() == ["导入被拒", "导入被拒"]
    scope_row, bad_row = log.row(1, named=True), log.row(0, named=True)
    assert scope_row["账号"] == "li" and "乙区" in scope_row["内容"] and "两区.csv" in scope_row["内容"]
    assert "坏日期.csv" in bad_row["内容"] and "错误 1 处" in bad_row["内容"]


def test_rollback_refusal_has_its_own_wording(engine):
    other = accounts.add_user(engine, "wu", PW, [STAFF], [DISTRICT_B])
    upload.import_file(engine, csv_bytes(rows("cases", 2)), "a.csv")
    (batch_id,) = store.batch_history(engine)["id"].to_list()
    with pytest.raises(accounts.PermissionDenied) as refused:
        upload.rollback(engine, batch_id, other)
    assert "不能回滚 甲区 的数据" in str(refused.value) and "文件" not in str(refused.value)


def test_import_and_audit_commit_together_on_sqlite(engine, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit unavailable")

    clerk = accounts.get_user(engine, "li")
    monkeypatch.setattr(accounts, "_audit", broken)
    with pytest.raises(RuntimeError):
        upload.import_file(engine, csv_bytes(rows("cases", 3)), "a.csv", user=clerk)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.batches)).scalar() == 0
