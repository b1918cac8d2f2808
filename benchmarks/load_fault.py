"""Load and fault test against PostgreSQL (run by hand; loopback only; bounded in time).

    python benchmarks/load_fault.py [--minutes 5] [--scale 0.02] [--port 55442] [--skip-fault]

What it does:

1. Starts its OWN PostgreSQL server (Debian's postgresql package, run as the ``postgres`` user) on
   127.0.0.1:--port with a fresh data directory under /tmp, so that it can restart it mid-run without
   touching anyone else's database. Generates the demo city (--scale) and 20 accounts: 5 per role.
2. Phase "load" (--minutes, default the issue's 5): 20 simulated users browse and filter, while 2
   工作人员 import files of their districts and a 管理员 saves settings, all against that server.
   A user is a dashboard session (``streamlit.testing.v1.AppTest`` runs dashboard.py exactly as the
   server runs it for one browser tab): it opens its role's pages in turn and changes the sidebar
   filters (period, districts). The 20 sessions are spread over 4 processes (one per role, 5 sessions
   each, taking turns), so at most 4 pages render at once next to the importers and the settings
   writer: the machine this was written on has 2 cores shared with others. Imports go through
   ``upload.check_file`` + ``upload.store_checked`` (what the 数据上传 page calls), settings through
   ``save_scoring`` (what the 设置 page calls).
3. Phase "fault" (same length): the same, and the PostgreSQL server is restarted once in the middle
   (``pg_ctl restart -m fast``). During the outage pages must show "数据库暂时不可用" (counted, not
   errors), importers retry, and afterwards everything recovers without restarting anything else.
   Before it, ``python -m datasets import`` is run once while the server is stopped: it must exit with
   3 (system unavailable) and a Chinese message, no traceback, and store nothing (``--cli-only``: this
   check alone, in a minute).

After each phase it reports page-time percentiles (p50/p95) per role, page errors (tracebacks or
exceptions: must be 0), outage messages, imports stored / refused / failed during the outage, and
checks that the store and the audit log are complete: every stored batch holds exactly its rows,
every import the importers saw succeed is there with its audit row, no batch exists without an audit
row (nothing half-stored), every settings save has its change rows and its audit row.

Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PW = "load-test-pass"
ROLE_PAGES = {
    "领导": ["pages/overview.py", "pages/compare.py", "pages/periods.py", "pages/indicators.py"],
    "评估人员": ["pages/ranking.py", "pages/compare.py", "pages/overview.py"],
    "工作人员": ["pages/upload.py", "pages/quality.py", "pages/overview.py"],
    "管理员": ["pages/audit.py", "pages/users.py", "pages/settings.py", "pages/quality.py"],
}
USERS_PER_ROLE = 5
UNAVAILABLE = "数据库暂时不可用"


# --- the private PostgreSQL server ------------------------------------------------------------------


class Postgres:
    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
        self.data = Path(f"/tmp/load-fault-pg-{port}")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/load"

    def _pg_ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200"
        subprocess.run(["su", "postgres", "-c",
                        f"{self.bin}/pg_ctl -D {self.data} -l {self.data}/server.log -o '{opts}' -w {' '.join(args)}"],
                       check=True, stdout=subprocess.DEVNULL)

    def start_fresh(self) -> None:
        if self.data.exists():
            subprocess.run(["su", "postgres", "-c", f"{self.bin}/pg_ctl -D {self.data} -m immediate stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(self.data)
        self.data.mkdir(parents=True)
        shutil.chown(self.data, "postgres", "postgres")
        subprocess.run(["su", "postgres", "-c", f"{self.bin}/initdb -D {self.data} -A trust -U postgres "
                        "--encoding=UTF8 --locale=C.UTF-8"], check=True, stdout=subprocess.DEVNULL)
        self._pg_ctl("start")
        subprocess.run(["su", "postgres", "-c", f"psql -h 127.0.0.1 -p {self.port} -c 'CREATE DATABASE load'"],
                       check=True, stdout=subprocess.DEVNULL)

    def restart(self) -> float:
        t = time.monotonic()
        self._pg_ctl("restart", "-m", "fast")
        return time.monotonic() - t

    def stop(self) -> None:
        subprocess.run(["su", "postgres", "-c", f"{self.bin}/pg_ctl -D {self.data} -m fast stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare(url: str, scale: float) -> dict:
    from datasets.access import accounts
    from datasets.domain.workdays import load_calendar
    from datasets.sample.demo import generate_demo
    from datasets.storage import store

    engine = store.make_engine(url)
    store.init_db(engine)
    generate_demo(engine, calendar=load_calendar(), seed=7, scale=scale)
    districts = store.list_districts(engine)["name"].to_list()
    names: dict[str, list[str]] = {}
    for role in ROLE_PAGES:
        names[role] = []
        for i in range(USERS_PER_ROLE):
            name = f"{ {'领导': 'leader', '评估人员': 'evaluator', '工作人员': 'staff', '管理员': 'admin'}[role]}{i}"
            scope = [districts[i % len(districts)]] if role == "工作人员" else []
            accounts.add_user(engine, name, PW, [role], scope, name)
            names[role].append(name)
    engine.dispose()
    return {"districts": districts, "names": names}


# --- simulated users (one process per role) --------------------------------------------------------


def _role_worker(url: str, role: str, names: list[str], seconds: float, out: str) -> None:
    """Sessions of one role taking turns: open a page, change a filter, repeat until time is up."""
    os.environ["DATABASE_URL"] = url
    os.chdir(ROOT)
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    from datasets.access import accounts
    from datasets.storage import store
    from pages import _session as session

    original = PagesManager.__init__

    def init(self, *args, **kwargs) -> None:  # a running server's navigation mode (tests/conftest.py)
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init  # type: ignore[method-assign]
    engine = store.make_engine(url)
    users = {n: accounts.get_user(engine, n) for n in names}
    engine.dispose()
    rng = random.Random(hash(role) & 0xFFFF)
    samples: list[dict] = []
    sessions: dict[str, AppTest] = {}
    deadline = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < deadline:
        name = names[turn % len(names)]
        turn += 1
        page = ROLE_PAGES[role][rng.randrange(len(ROLE_PAGES[role]))]
        t = time.monotonic()
        outcome, detail = "ok", ""
        try:
            at = sessions.get(name)
            if at is None:
                at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
                state: dict = {}
                signer = store.make_engine(url)
                session.sign_in(state, signer, users[name])  # a session record, as the login page makes it
                signer.dispose()
                for k, v in state.items():
                    at.session_state[k] = v
                at.run()
                sessions[name] = at
            at.switch_page(page).run()
            # filtering: another month or district, when the sidebar offers them
            if not at.exception and rng.random() < 0.6:
                months = [s for s in at.sidebar.selectbox if s.key == "f_month"]
                dists = [m for m in at.sidebar.multiselect if m.key == "f_districts"]
                if months and months[0].options:
                    months[0].set_value(rng.choice(months[0].options[:6])).run()
                elif dists and dists[0].options:
                    dists[0].set_value(rng.sample(dists[0].options, k=min(2, len(dists[0].options)))).run()
            errors = " ".join(str(e.value) for e in at.error)
            if at.exception:
                outcome, detail = "error", at.exception[0].message[:300]
            elif UNAVAILABLE in errors:
                outcome = "unavailable"
        except Exception as exc:  # the harness itself failing counts as an error too
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"[:300]
            sessions.pop(name, None)
        samples.append({"role": role, "page": page, "seconds": time.monotonic() - t, "outcome": outcome,
                        "detail": detail, "at": time.time()})
    Path(out).write_text(json.dumps(samples, ensure_ascii=False), encoding="utf-8")


# --- writers: two importers and the settings administrator ----------------------------------------


def _importer(url: str, name: str, district: str, month: str, seconds: float, log: list[dict]) -> None:
    from datasets.access import accounts
    from datasets.intake import upload
    from datasets.storage import store
    from tests.apptest_support import cases_csv

    engine = store.make_engine(url)
    user = accounts.get_user(engine, name)
    base = cases_csv(url, district, month, rows=60)
    lines = base.decode("utf-8").splitlines()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        # a corrected export: a different number of rows each time, so every file is new
        data = ("\n".join(lines[: 2 + (n % 50) + 5]) + "\n").encode("utf-8")
        entry = {"who": name, "n": n, "at": time.time()}
        try:
            check = upload.check_file(engine, data, f"{district}_{month}_{n}.csv", user=user)
            if not check.accepted:
                entry.update(outcome="refused", reason=check.headline())
            else:
                result = upload.store_checked(engine, check)
                entry.update(outcome="unchanged" if result.unchanged else "stored",
                             batches=[r.batch_id for r in result.results if not r.unchanged],
                             rows=[r.rows for r in result.results if not r.unchanged])
        except Exception as exc:  # during the outage: the import must be all or nothing
            entry.update(outcome="failed", reason=f"{type(exc).__name__}: {str(exc)[:200]}")
            time.sleep(2)
        log.append(entry)
        time.sleep(3)
    engine.dispose()


def _settings_writer(url: str, name: str, seconds: float, log: list[dict]) -> None:
    from datasets.access import accounts
    from datasets.storage import store
    from metrics.admin import save_scoring
    from metrics.registry import INDICATORS
    from metrics.scoring import load_settings

    engine = store.make_engine(url)
    admin = accounts.get_user(engine, name)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        entry = {"who": name, "n": n, "at": time.time()}
        try:
            current = load_settings(engine)
            ind = INDICATORS[n % len(INDICATORS)].id
            changed = current.model_copy(deep=True)
            # a value different from the one in force, so that every save is a change
            changed.indicators[ind].weight = 1.5 if current.indicators[ind].weight != 1.5 else 1.0
            changes = save_scoring(engine, admin, changed)
            entry.update(outcome="saved" if changes else "unchanged", changes=len(changes))
        except Exception as exc:
            entry.update(outcome="failed", reason=f"{type(exc).__name__}: {str(exc)[:200]}")
            time.sleep(2)
        log.append(entry)
        time.sleep(10)
    engine.dispose()


# --- one phase -------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_phase(pg: Postgres, setup: dict, seconds: float, fault: bool, tmp: Path) -> dict:
    from datasets.storage import store

    engine = store.make_engine(pg.url)
    before = _counts(engine)
    ctx = multiprocessing.get_context("spawn")
    outs = {role: tmp / f"{role}.json" for role in ROLE_PAGES}
    procs = [ctx.Process(target=_role_worker, args=(pg.url, role, setup["names"][role], seconds, str(outs[role])))
             for role in ROLE_PAGES]
    for p in procs:
        p.start()
    imports: list[dict] = []
    saves: list[dict] = []
    month = setup["month"]
    writers = [
        threading.Thread(target=_importer, args=(pg.url, setup["names"]["工作人员"][i], setup["districts"][i], month,
                                                 seconds, imports))
        for i in range(2)
    ] + [threading.Thread(target=_settings_writer, args=(pg.url, setup["names"]["管理员"][0], seconds, saves))]
    for w in writers:
        w.start()
    restart = None
    if fault:
        time.sleep(seconds / 2)
        t0 = time.time()
        restart = {"at": t0, "seconds": pg.restart()}
    for w in writers:
        w.join()
    for p in procs:
        p.join(timeout=seconds + 600)
    samples = [s for role in ROLE_PAGES if outs[role].exists()
               for s in json.loads(outs[role].read_text(encoding="utf-8"))]
    report = {
        "fault": fault,
        "seconds": seconds,
        "restart": restart,
        "pages": len(samples),
        "errors": [s for s in samples if s["outcome"] == "error"],
        "unavailable": sum(s["outcome"] == "unavailable" for s in samples),
        "roles": {},
        "imports": {k: sum(e["outcome"] == k for e in imports) for k in ("stored", "unchanged", "refused", "failed")},
        "saves": {k: sum(e["outcome"] == k for e in saves) for k in ("saved", "unchanged", "failed")},
        "workers_exited": [p.exitcode for p in procs],
    }
    for role in ROLE_PAGES:
        times = [s["seconds"] for s in samples if s["role"] == role and s["outcome"] == "ok"]
        report["roles"][role] = {"pages": len(times), "p50": _percentile(times, 0.5), "p95": _percentile(times, 0.95)}
    ok_times = [s["seconds"] for s in samples if s["outcome"] == "ok"]
    report["p50"], report["p95"] = _percentile(ok_times, 0.5), _percentile(ok_times, 0.95)
    if fault:
        after_restart = [s for s in samples if restart and s["at"] > restart["at"] + restart["seconds"] + 30]
        report["recovered"] = bool(after_restart) and all(s["outcome"] == "ok" for s in after_restart)
    report["checks"] = _integrity(engine, before, imports, saves)
    engine.dispose()
    return report


def _counts(engine) -> dict:
    import sqlalchemy as sa

    from datasets.access import accounts
    from datasets.storage import store

    with engine.connect() as conn:
        def n(table, where=None) -> int:
            q = sa.select(sa.func.count()).select_from(table)
            return int(conn.execute(q if where is None else q.where(where)).scalar())

        return {
            "batches": n(store.batches),
            "import_audit": n(accounts.audit_log, accounts.audit_log.c.action == "import"),
            "settings_audit": n(accounts.audit_log, accounts.audit_log.c.action == "settings"),
            "settings_rows": n(store.settings_changes),
        }


def _integrity(engine, before: dict, imports: list[dict], saves: list[dict]) -> dict:
    import sqlalchemy as sa

    from datasets.storage import store

    after = _counts(engine)
    stored = [e for e in imports if e["outcome"] == "stored"]
    stored_batches = [b for e in stored for b in e["batches"]]
    with engine.connect() as conn:
        rows = {r.id: r.rows for r in conn.execute(sa.select(store.batches.c.id, store.batches.c.rows))}
        held = {r.batch_id: r.n for r in conn.execute(
            sa.select(store.record_tables["cases"].c.batch_id, sa.func.count().label("n"))
            .group_by(store.record_tables["cases"].c.batch_id))}
        new_uploads = conn.execute(sa.select(sa.func.count(sa.distinct(store.batches.c.upload_id)))
                                   .where(store.batches.c.user_name.like("staff%"))).scalar()
        active_per_slot = conn.execute(sa.text(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM batches WHERE state = 'active' "
            "GROUP BY kind, district, period) s")).scalar()
    cases_batches = set(held)
    checks = {
        # every import the importers saw succeed is stored, with exactly its rows
        "stored_imports_present": all(b in rows and held.get(b) == rows[b] for b in stored_batches),
        # no batch without all its rows (nothing half-stored), among the batches holding cases
        "no_partial_batch": all(held.get(b) == rows[b] for b in rows if b in cases_batches or b in stored_batches),
        # the batches made during the phase are exactly the ones reported stored
        "no_unreported_batch": after["batches"] - before["batches"] == len(stored_batches),
        # one import audit row per stored file, no more, no fewer
        "import_audit_complete": after["import_audit"] - before["import_audit"] == len(stored)
        and new_uploads >= len(stored),
        "settings_audit_complete": after["settings_audit"] - before["settings_audit"]
        == sum(e["outcome"] == "saved" for e in saves),
        "settings_rows_complete": after["settings_rows"] - before["settings_rows"]
        == sum(e.get("changes", 0) for e in saves if e["outcome"] == "saved"),
        "one_active_version_per_slot": active_per_slot == 1,
    }
    return checks


def cli_outage(pg: Postgres, setup: dict, tmp: Path) -> dict:
    """``python -m datasets import`` while the server is down (stopped, as in the middle of a restart):
    exit code 3 (system unavailable, not 1 "file rejected"), a Chinese line, no traceback, nothing stored."""
    from datasets.storage import store
    from tests.apptest_support import cases_csv

    district = setup["districts"][0]
    path = tmp / "cli_outage.csv"
    path.write_bytes(cases_csv(pg.url, district, setup["month"], rows=30))
    engine = store.make_engine(pg.url)
    before = _counts(engine)
    engine.dispose()
    pg.stop()
    try:
        done = subprocess.run([sys.executable, "-m", "datasets", "import", str(path), "--db", pg.url,
                               "--district", district], cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        pg._pg_ctl("start")
    engine = store.make_engine(pg.url)
    after = _counts(engine)
    engine.dispose()
    return {"exit_code": done.returncode, "message": done.stderr.strip()[:300],
            "chinese": UNAVAILABLE in done.stderr, "traceback": "Traceback" in done.stderr,
            "unchanged": after == before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="load and fault test against a private PostgreSQL server")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of each phase (default 5)")
    parser.add_argument("--scale", type=float, default=0.02, help="demo city size (1 ≈ 1 M 办件)")
    parser.add_argument("--port", type=int, default=55442)
    parser.add_argument("--skip-fault", action="store_true", help="run the load phase only")
    parser.add_argument("--json", help="write the full report here")
    parser.add_argument("--cli-only", action="store_true", help="only the CLI import while the server is down")
    args = parser.parse_args(argv)
    if not Path("/usr/lib/postgresql").exists() or os.geteuid() != 0:
        print("needs Debian's postgresql package and root (to run the server as the postgres user)")
        return 2
    pg = Postgres(args.port)
    tmp = Path(f"/tmp/load-fault-{args.port}")
    tmp.mkdir(exist_ok=True)
    print(f"starting PostgreSQL on 127.0.0.1:{args.port} ({pg.data}) and generating the demo city …", flush=True)
    pg.start_fresh()
    try:
        t = time.monotonic()
        setup = prepare(pg.url, args.scale)
        from datasets.storage import store
        from metrics.compute import latest_month
        from metrics.scoring import load_settings
        from metrics.service import compute_components

        engine = store.make_engine(pg.url)
        setup["month"] = latest_month(compute_components(engine, load_settings(engine)))
        engine.dispose()
        print(f"ready in {time.monotonic() - t:.0f} s; phases of {args.minutes} min", flush=True)
        reports = []
        cli = None if args.skip_fault else cli_outage(pg, setup, tmp)
        if cli is not None:
            print(f"\n== CLI import while PostgreSQL is down: exit code {cli['exit_code']} (want 3), "
                  f"Chinese message {cli['chinese']}, traceback {cli['traceback']}, store unchanged {cli['unchanged']}"
                  f"\n   {cli['message']}", flush=True)
        cli_ok = cli is None or (cli["exit_code"] == 3 and cli["chinese"] and not cli["traceback"] and cli["unchanged"])
        if args.cli_only:
            print("RESULT:", "PASS" if cli_ok else "FAIL")
            return 0 if cli_ok else 1
        for fault in ([False] if args.skip_fault else [False, True]):
            report = run_phase(pg, setup, args.minutes * 60, fault, tmp)
            reports.append(report)
            _print(report)
        if args.json:
            Path(args.json).write_text(json.dumps(reports, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        ok = cli_ok and all(not r["errors"] and all(r["checks"].values()) and r.get("recovered", True) for r in reports)
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        pg.stop()


def _print(r: dict) -> None:
    name = "fault (PostgreSQL restarted mid-run)" if r["fault"] else "load"
    print(f"\n== phase {name}: {r['seconds'] / 60:.1f} min, {r['pages']} page runs")
    print(f"   page time p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s (successful runs)")
    for role, v in r["roles"].items():
        print(f"   {role}: {v['pages']} pages, p50 {v['p50']:.2f} s, p95 {v['p95']:.2f} s")
    print(f"   errors: {len(r['errors'])}; '{UNAVAILABLE}' shown: {r['unavailable']}")
    for e in r["errors"][:5]:
        print(f"     {e['role']} {e['page']}: {e['detail']}")
    if r["restart"]:
        print(f"   restart took {r['restart']['seconds']:.1f} s; recovered afterwards: {r.get('recovered')}")
    print(f"   imports: {r['imports']}; settings saves: {r['saves']}; role workers exit codes {r['workers_exited']}")
    print(f"   store/audit checks: {r['checks']}")


if __name__ == "__main__":
    sys.exit(main())
