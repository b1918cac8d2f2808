"""Accounts: hashing, lockout, expiry, SSO mapping, district scope and the audit log."""

from __future__ import annotations

import datetime as dt

import pytest

from datasets.access import accounts
from datasets.storage import store


@pytest.fixture
def engine(sqlite_engine):
    store.add_district(sqlite_engine, "甲区")
    store.add_district(sqlite_engine, "乙区")
    return sqlite_engine


def test_passwords_are_hashed_with_argon2(engine):
    accounts.add_user(engine, "zhang", "correct horse", [accounts.STAFF], ["甲区"])
    with engine.connect() as conn:
        stored = conn.execute(accounts.users.select()).first().password_hash
    assert stored.startswith("$argon2") and "correct horse" not in stored
    assert accounts.authenticate(engine, "zhang", "correct horse").user.districts == ("甲区",)
    assert accounts.authenticate(engine, "zhang", "wrong").user is None


@pytest.mark.parametrize(("profile", "parameters"), [("standard", "m=65536,t=3,p=4"), ("test", "m=8,t=1,p=1")])
def test_the_hash_profile_sets_the_argon2_cost_and_any_stored_hash_still_verifies(engine, monkeypatch, profile,
                                                                                     parameters):
    monkeypatch.setenv("PASSWORD_HASH_PROFILE", profile)
    accounts.add_user(engine, "zhang", "correct horse", [accounts.STAFF], ["甲区"])
    with engine.connect() as conn:
        stored = conn.execute(accounts.users.select()).first().password_hash
    assert stored.startswith(f"$argon2id$v=19${parameters}$")
    # A server with the other profile still signs the account in (the hash names its own parameters).
    monkeypatch.setenv("PASSWORD_HASH_PROFILE", "test" if profile == "standard" else "standard")
    assert accounts.authenticate(engine, "zhang", "correct horse").user is not None
    assert accounts.authenticate(engine, "zhang", "wrong").user is None


def test_weak_password_unknown_role_and_district_are_refused(engine):
    with pytest.raises(ValueError, match="至少 8 位"):
        accounts.add_user(engine, "a", "short", [accounts.LEADER])
    with pytest.raises(ValueError, match="未知的角色"):
        accounts.add_user(engine, "a", "long enough", ["超级用户"])
    with pytest.raises(ValueError, match="区县未配置"):
        accounts.add_user(engine, "a", "long enough", [accounts.STAFF], ["丙县"])


def test_lockout_after_repeated_failures_and_unlock_after_the_period(engine):
    accounts.add_user(engine, "li", "secret-123", [accounts.LEADER])
    t0 = dt.datetime(2026, 1, 5, 9)
    for _ in range(accounts.MAX_FAILED_ATTEMPTS):
        assert accounts.authenticate(engine, "li", "bad", now=t0).user is None
    locked = accounts.authenticate(engine, "li", "secret-123", now=t0 + dt.timedelta(minutes=1))
    assert locked.user is None and "锁定" in locked.message
    later = t0 + dt.timedelta(minutes=accounts.LOCKOUT_MINUTES + 1)
    assert accounts.authenticate(engine, "li", "secret-123", now=later).user is not None


def test_disabled_accounts_cannot_log_in(engine):
    accounts.add_user(engine, "wang", "secret-123", [accounts.EVALUATOR])
    accounts.set_active(engine, "wang", False)
    result = accounts.authenticate(engine, "wang", "secret-123")
    assert result.user is None and "停用" in result.message


def test_session_expires_after_inactivity():
    t = dt.datetime(2026, 1, 5, 9)
    assert not accounts.session_expired(t, t + dt.timedelta(minutes=accounts.SESSION_IDLE_MINUTES))
    assert accounts.session_expired(t, t + dt.timedelta(minutes=accounts.SESSION_IDLE_MINUTES, seconds=1))


def test_change_own_password_needs_the_old_one(engine):
    accounts.add_user(engine, "zhao", "secret-123", [accounts.LEADER])
    with pytest.raises(ValueError, match="原密码不正确"):
        accounts.change_own_password(engine, "zhao", "nope", "new-secret-1")
    accounts.change_own_password(engine, "zhao", "secret-123", "new-secret-1")
    assert accounts.authenticate(engine, "zhao", "new-secret-1").user is not None


def test_sso_identity_maps_to_an_account_by_email_then_subject(engine):
    accounts.add_user(engine, "qian@example.gov.cn", "secret-123", [accounts.EVALUATOR])
    user = accounts.user_for_identity(engine, {"sub": "oidc|42", "email": "Qian@example.gov.cn", "name": "钱"})
    assert user is not None and user.roles == (accounts.EVALUATOR,)
    # the subject is bound: a changed e-mail still maps to the same account
    again = accounts.user_for_identity(engine, {"sub": "oidc|42", "email": "new@example.gov.cn"})
    assert again is not None and again.username == "qian@example.gov.cn"
    assert accounts.user_for_identity(engine, {"sub": "oidc|7", "email": "stranger@example.com"}) is None


def test_import_scope(engine):
    staff = accounts.add_user(engine, "sun", "secret-123", [accounts.STAFF], ["甲区"])
    accounts.check_import_scope(staff, ["甲区"])
    with pytest.raises(accounts.PermissionDenied, match="乙区"):
        accounts.check_import_scope(staff, ["甲区", "乙区"])
    leader = accounts.add_user(engine, "zhou", "secret-123", [accounts.LEADER])
    with pytest.raises(accounts.PermissionDenied, match="没有上传数据的权限"):
        accounts.check_import_scope(leader, ["甲区"])


def test_audit_log_records_logins_and_failures(engine):
    accounts.add_user(engine, "wu", "secret-123", [accounts.LEADER])
    accounts.authenticate(engine, "wu", "bad")
    accounts.authenticate(engine, "wu", "secret-123")
    log = accounts.audit_entries(engine)
    assert log["操作"].to_list()[:3] == ["登录", "登录失败", "账号管理"]
    assert set(log["账号"].to_list()) == {"wu", "system"}


def test_demo_accounts_are_flagged(engine):
    created = accounts.ensure_demo_accounts(engine)
    assert {u for u, _, _ in created} == {"leader", "staff", "evaluator", "admin"}
    assert sorted(accounts.accounts_with_demo_password(engine)) == ["admin", "evaluator", "leader", "staff"]
    assert accounts.get_user(engine, "staff").districts == ("甲区",)
    accounts.set_password(engine, "admin", "a-real-password")
    assert "admin" not in accounts.accounts_with_demo_password(engine)


def test_demo_accounts_made_by_two_first_runs_at_once(engine, monkeypatch):
    """Two first runs of the 登录 page (two tabs, a reload) both found the accounts missing; the one that
    inserted second failed with 账号已存在 and showed an exception box. Now it takes the other's accounts."""
    accounts.ensure_demo_accounts(engine)  # the other run, done while this one was hashing
    real_get_user, asked = accounts.get_user, set()

    def stale_get_user(eng, username):  # this run's first look, from before the other run's insert
        if username not in asked:
            asked.add(username)
            return None
        return real_get_user(eng, username)

    monkeypatch.setattr(accounts, "get_user", stale_get_user)
    rows = accounts.ensure_demo_accounts(engine)
    assert [u for u, _, _ in rows] == ["leader", "staff", "evaluator", "admin"]
    assert asked == {"leader", "staff", "evaluator", "admin"}


def test_users_cli(tmp_path, capsys):
    from datasets.__main__ import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["users", "add", "boss", "--role", "管理员", "--password", "strong-pass-1", "--db", url]) == 0
    assert main(["users", "add", "x", "--role", "超人", "--password", "strong-pass-1", "--db", url]) == 2
    assert "未知的角色" in capsys.readouterr().err
    assert main(["users", "passwd", "boss", "--password", "stronger-pass-2", "--db", url]) == 0
    assert main(["users", "disable", "boss", "--db", url]) == 0
    engine = store.make_engine(url)
    assert accounts.authenticate(engine, "boss", "stronger-pass-2").message.startswith("账号已停用")
