"""District scope is enforced in the import and rollback functions themselves, and in the CLI."""

from __future__ import annotations

import pytest

from datasets.__main__ import main
from datasets.access import accounts
from datasets.access.accounts import PermissionDenied
from datasets.intake.upload import check_file, import_file, rollback, store_checked
from datasets.storage import store
from tests.bad_files.corpus import DISTRICT_A, DISTRICT_B, csv_bytes, rows


@pytest.fixture
def engine(sqlite_engine):
    store.add_district(sqlite_engine, DISTRICT_A)
    store.add_district(sqlite_engine, DISTRICT_B)
    accounts.add_user(sqlite_engine, "jia_staff", "secret-123", [accounts.STAFF], [DISTRICT_A])
    accounts.add_user(sqlite_engine, "boss", "secret-123", [accounts.LEADER])
    return sqlite_engine


def _mixed_file() -> bytes:
    table = rows("cases", 4)
    table[3]["所属区县"] = DISTRICT_B
    return csv_bytes(table)


def test_staff_of_one_district_cannot_import_rows_of_another(engine):
    staff = accounts.get_user(engine, "jia_staff")
    before = (store.record_counts(engine), store.batch_history(engine).height)
    check, result = import_file(engine, _mixed_file(), "混合.csv", user=staff)
    assert result is None
    (problem,) = [p for p in check.errors if p.rule == "district_out_of_scope"]
    assert DISTRICT_B in problem.message and "未入库" in problem.message
    assert (store.record_counts(engine), store.batch_history(engine).height) == before
    # the own district alone is fine, and stored under the account's name (audited)
    check, result = import_file(engine, csv_bytes(rows("cases", 3)), "甲区.csv", user=staff)
    assert result is not None and result.rows == 3
    assert store.batch_history(engine)["user_name"].to_list() == ["jia_staff"]
    assert "导入" in accounts.audit_entries(engine)["操作"].to_list()


def test_a_check_cannot_be_stored_under_another_accounts_scope(engine):
    check = check_file(engine, _mixed_file(), "混合.csv")  # checked without an account: accepted
    assert check.accepted
    check.user = accounts.get_user(engine, "jia_staff")
    with pytest.raises(PermissionDenied):
        store_checked(engine, check)
    assert store.batch_history(engine).height == 0


def test_roles_without_upload_permission_are_refused(engine):
    check, result = import_file(engine, csv_bytes(rows("cases", 2)), "甲区.csv", user=accounts.get_user(engine, "boss"))
    assert result is None and any(p.rule == "district_out_of_scope" and "没有上传数据的权限" in p.message
                                  for p in check.errors)


def test_rollback_respects_scope_and_is_audited(engine):
    import_file(engine, csv_bytes(rows("cases", 3)), "v1.csv")
    table = rows("cases", 3)
    table[0]["申请渠道"] = "移动端"
    import_file(engine, csv_bytes(table), "v2.csv")
    first = store.batch_history(engine).sort("id")["id"][0]
    accounts.add_user(engine, "yi_staff", "secret-123", [accounts.STAFF], [DISTRICT_B])
    with pytest.raises(PermissionDenied):
        rollback(engine, first, accounts.get_user(engine, "yi_staff"))
    done = rollback(engine, first, accounts.get_user(engine, "jia_staff"))
    assert done["version"] == 1
    assert accounts.audit_entries(engine, action="rollback")["账号"].to_list() == ["jia_staff"]


def test_cli_user_applies_the_same_rule(engine, tmp_path, capsys):
    path = tmp_path / "混合.csv"
    path.write_bytes(_mixed_file())
    url = engine.url.render_as_string(hide_password=False)
    assert main(["import", str(path), "--db", url, "--user", "jia_staff"]) == 1
    assert "只能上传或回滚 甲区 的数据，文件中含有 乙区 的数据行" in capsys.readouterr().out
    assert store.batch_history(engine).height == 0
    assert main(["import", str(path), "--db", url, "--user", "nobody"]) == 2
    assert "--user" in capsys.readouterr().err
    assert main(["import", str(path), "--db", url]) == 0  # the shell operator is trusted
