"""Concurrency on the real PostgreSQL server: lockout counter, rollbacks, identical re-imports, audit rows.

Real threads and processes against TEST_POSTGRES_URL (the ``pg_engine`` fixture gives each test its own
database). Each race starts its workers at a barrier so that they overlap; the trials repeat it.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

import polars as pl
import pytest
import sqlalchemy as sa

from datasets.access import accounts
from datasets.access.accounts import MAX_FAILED_ATTEMPTS, STAFF
from datasets.intake import ingest, upload
from datasets.storage import store
from tests.bad_files.corpus import DISTRICT_A, csv_bytes, rows
from tests.factories import at, frame

pytestmark = pytest.mark.postgres

PASSWORD = "correct-horse-1"


def _together(n: int, work: Callable[[int], object], engine: sa.Engine | None = None) -> list[object]:
    """Run ``work(i)`` for i in 0..n-1 in n threads released together; results in order (or the exception).

    ``engine``: its pool is filled with n connections first, so no thread starts late by connecting.
    """
    if engine is not None:
        held = [engine.connect() for _ in range(n)]
        for conn in held:
            conn.close()
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- lockout -----------------------------------------------------------------------------------------


def test_parallel_wrong_passwords_lock_the_account(pg_engine):
    """29 wrong passwords at once: exactly MAX_FAILED_ATTEMPTS are checked, then the account is locked
    and the right password is refused too (before the fix all 29 were checked, the counter ended at 2
    and the right password then succeeded)."""
    accounts.add_user(pg_engine, "clerk", PASSWORD, [STAFF])
    engine = sa.create_engine(_url(pg_engine), pool_size=30)  # every thread its own connection
    results = _together(29, lambda i: accounts.authenticate(engine, "clerk", f"wrong-{i}"), engine)
    assert all(isinstance(r, accounts.LoginResult) and r.user is None for r in results), results
    after = accounts.authenticate(engine, "clerk", PASSWORD)
    assert after.user is None
    with pg_engine.connect() as conn:
        row = conn.execute(sa.select(accounts.users).where(accounts.users.c.username == "clerk")).one()
        checked = conn.execute(
            sa.select(sa.func.count()).select_from(accounts.audit_log).where(
                (accounts.audit_log.c.action == "login_failed") & (accounts.audit_log.c.detail == "密码错误"))
        ).scalar()
    assert row.locked_until is not None
    assert checked == MAX_FAILED_ATTEMPTS
    engine.dispose()


# --- rollbacks and imports of one district-month ----------------------------------------------------


def _cases(tag: str) -> pl.DataFrame:
    table = frame("cases", [{"case_id": f"{tag}{i}", "accepted_at": at(2024, 10, 9)} for i in range(3)])
    return table.drop("batch_id", "period")


def _three_versions(engine: sa.Engine) -> list[int]:
    store.add_district(engine, "甲区")
    ids = []
    for n in range(3):
        result = ingest.import_frame(engine, "cases", _cases(f"V{n}"), file_name=f"v{n}.xlsx", sha256=f"{n}" * 64)
        ids.append(result.results[0].batch_id)
    return ids


def _active(engine: sa.Engine) -> list[int]:
    active = store.active_batches(engine, "cases").filter(pl.col("district") == "甲区", pl.col("period") == "2024-10")
    return sorted(active["id"].to_list())


@pytest.mark.parametrize("trial", range(6))
def test_concurrent_rollbacks_leave_one_active_version(pg_engine, trial):
    v1, v2, _ = _three_versions(pg_engine)
    targets = [v1, v2]
    results = _together(2, lambda i: upload.rollback(pg_engine, targets[i], None, actor_name=f"t{i}"), pg_engine)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(_active(pg_engine)) == 1
    # both rollbacks are in the audit log
    log = accounts.audit_entries(pg_engine, 50, "rollback")
    assert sorted(log["账号"].to_list()) == ["t0", "t1"]


@pytest.mark.parametrize("trial", range(6))
def test_import_and_rollback_at_once_leave_one_active_version(pg_engine, trial):
    v1, _, _ = _three_versions(pg_engine)

    def work(i: int):
        if i == 0:
            return upload.rollback(pg_engine, v1, None, actor_name="rb")
        return ingest.import_frame(pg_engine, "cases", _cases("NEW"), file_name="new.xlsx", sha256="n" * 64)

    results = _together(2, work, pg_engine)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(_active(pg_engine)) == 1


# --- identical re-imports from several processes -----------------------------------------------------


def _import_in_child(url: str, check: upload.UploadCheck, barrier) -> str:
    """Wait for the others, then store the checked file: several clerks pressing 确认导入 at once."""
    engine = store.make_engine(url)
    try:
        with engine.connect():
            pass  # connected before the barrier
        barrier.wait()
        return "unchanged" if upload.store_checked(engine, check).unchanged else "stored"
    finally:
        engine.dispose()


CLERKS = 4  # processes: each its own interpreter and connection pool; the barrier makes them overlap


def test_identical_file_from_several_processes_is_stored_once(pg_engine):
    store.add_district(pg_engine, DISTRICT_A)
    # Checked once here (the check reads the store, it does not write it); the processes race to store it.
    check = upload.check_file(pg_engine, csv_bytes(rows("cases", 5)), "同一文件.csv")
    assert check.accepted
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(CLERKS)
        with ctx.Pool(CLERKS) as pool:
            outcomes = pool.starmap(_import_in_child, [(_url(pg_engine), check, barrier)] * CLERKS)
    assert sorted(outcomes) == ["stored"] + ["unchanged"] * (CLERKS - 1)
    history = store.batch_history(pg_engine, "cases")
    assert history.height == 1
    audit = accounts.audit_entries(pg_engine, 50, "import")
    assert audit.height == 1  # one import, one audit row


# --- audit rows commit with the change ---------------------------------------------------------------


def test_import_audit_row_is_in_the_same_transaction(pg_engine, monkeypatch):
    """If the audit row cannot be written, the import is not stored either (and the other way round)."""
    store.add_district(pg_engine, DISTRICT_A)
    accounts.add_user(pg_engine, "clerk", PASSWORD, [STAFF], [DISTRICT_A])
    clerk = accounts.get_user(pg_engine, "clerk")

    def broken(*args, **kwargs):
        raise RuntimeError("audit unavailable")

    monkeypatch.setattr(accounts, "_audit", broken)
    with pytest.raises(RuntimeError, match="audit unavailable"):
        upload.import_file(pg_engine, csv_bytes(rows("cases", 3)), "a.csv", user=clerk)
    assert store.batch_history(pg_engine).height == 0
    monkeypatch.undo()
    _check, result = upload.import_file(pg_engine, csv_bytes(rows("cases", 3)), "a.csv", user=clerk)
    assert result is not None and not result.unchanged
    assert accounts.audit_entries(pg_engine, 10, "import")["账号"].to_list() == ["clerk"]
    upload.import_file(pg_engine, csv_bytes(rows("cases", 4)), "b.csv", user=clerk)
    first, second = sorted(store.batch_history(pg_engine)["id"].to_list())

    monkeypatch.setattr(accounts, "_audit", broken)
    with pytest.raises(RuntimeError):
        upload.rollback(pg_engine, first, clerk)
    monkeypatch.undo()
    assert _active_ids(pg_engine) == [second]  # the rollback was not applied without its audit row
    upload.rollback(pg_engine, first, clerk)
    assert _active_ids(pg_engine) == [first]
    assert accounts.audit_entries(pg_engine, 10, "rollback")["账号"].to_list() == ["clerk"]


def _active_ids(engine: sa.Engine) -> list[int]:
    return sorted(store.active_batches(engine)["id"].to_list())
