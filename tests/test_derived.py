"""The derived data's keys are content (metrics/derived.py): each ingredient, changed, makes the next
read count again without any file deleted by hand; and districts are counted independently (an import,
a rollback, a withdrawal or a new month counts its own district and no other)."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys

import chinese_calendar
import polars as pl
import pytest

from datasets.derived import snapshots
from datasets.domain import workdays
from datasets.intake.ingest import import_frame
from datasets.storage import store
from metrics import derived
from metrics.__main__ import main as metrics_main
from metrics.scoring import default_settings
from metrics.service import compute_components
from tests.conftest import SMALL_DEMO
from tests.factories import at, frame

END = SMALL_DEMO["end_month"]


@pytest.fixture
def demo_engine(small_sqlite):
    return small_sqlite


@pytest.fixture
def holiday_file(tmp_path, monkeypatch):
    """A copy of the holiday file, in force for this test (datasets.domain.workdays.HOLIDAY_FILE)."""
    path = tmp_path / "holidays.csv"
    path.write_text(workdays.HOLIDAY_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(workdays, "HOLIDAY_FILE", path)
    return path


def _weekdays(month: str, n: int) -> list[dt.date]:
    """The first ``n`` working days of ``month`` by the calendar in force now."""
    cal = workdays.load_calendar()
    day = dt.date.fromisoformat(f"{month}-01")
    found = []
    while len(found) < n:
        if cal.is_workday(day):
            found.append(day)
        day += dt.timedelta(days=1)
    return found


def _register_rest_days(path, days: list[dt.date]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(f"{d.isoformat()},休\n" for d in days)


def _counted() -> int:
    return derived.COUNTS["components"]


def _districts(engine) -> list[str]:
    return store.list_districts(engine)["name"].to_list()


def test_unchanged_content_is_read_not_counted(demo_engine):
    settings = default_settings()
    first = compute_components(demo_engine, settings)
    before = _counted()
    assert compute_components(demo_engine, settings).equals(first)
    assert _counted() == before


def test_a_holiday_registered_in_the_file_recounts(demo_engine, holiday_file):
    settings = default_settings()
    first = compute_components(demo_engine, settings)
    before = _counted()
    _register_rest_days(holiday_file, _weekdays(END, 5))
    again = compute_components(demo_engine, settings)
    assert _counted() - before == len(_districts(demo_engine))  # every district, nothing deleted by hand
    elapsed = pl.col("indicator") == "avg_handling_days"
    assert again.filter(elapsed)["numerator"].sum() < first.filter(elapsed)["numerator"].sum()
    # Only one file per district and artefact is kept: the older key's file was dropped.
    names = snapshots.cache_of(demo_engine).names("components")
    assert len(names) == len(_districts(demo_engine))


def test_new_holiday_library_data_recounts(demo_engine, monkeypatch):
    settings = default_settings()
    first = compute_components(demo_engine, settings)
    before = _counted()
    # A release of the library with five more holidays in the last month (a new version: the calendar
    # is built again for it, as in a new process after an upgrade).
    days = _weekdays(END, 5)
    monkeypatch.setattr(chinese_calendar, "__version__", "99.0.0")
    monkeypatch.setattr(chinese_calendar, "holidays", {**chinese_calendar.holidays, **{d: "test" for d in days}})
    real = chinese_calendar.is_workday
    monkeypatch.setattr(chinese_calendar, "is_workday", lambda day: day not in days and real(day))
    again = compute_components(demo_engine, settings)
    assert _counted() - before == len(_districts(demo_engine))
    assert not again.equals(first)


def test_a_changed_rule_recounts(demo_engine):
    settings = default_settings()
    first = compute_components(demo_engine, settings)
    before = _counted()
    changed = settings.model_copy(update={"rules": settings.rules.model_copy(update={"rectify_days": 3})})
    again = compute_components(demo_engine, changed)
    assert _counted() - before == len(_districts(demo_engine))
    assert not again.equals(first)
    # A rule the components do not read (ranking only) keeps the key.
    ranking_only = changed.model_copy(update={"rules": changed.rules.model_copy(update={"rank_needs_cases": False})})
    before = _counted()
    compute_components(demo_engine, ranking_only)
    assert _counted() == before


def test_changed_counting_code_recounts(demo_engine, tmp_path, monkeypatch):
    """The source of the counting modules is in the key: an upgrade that changes one recounts (here a
    module of the list changed and loaded again, as a restarted server loads its new code)."""
    assert {"datasets.domain.vocabulary", "metrics.registry", "metrics.prepare", "metrics.compute",
            "metrics.alerts", "metrics.drill"} <= set(derived.COUNTING_MODULES)
    probe = tmp_path / "counting_probe.py"
    probe.write_text("LIMIT = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(derived, "COUNTING_MODULES", (*derived.COUNTING_MODULES, "counting_probe"))
    settings = default_settings()
    compute_components(demo_engine, settings)
    before = _counted()
    compute_components(demo_engine, settings)
    assert _counted() == before
    probe.write_text("LIMIT = 2  # a counting rule changed in an upgrade\n", encoding="utf-8")
    compute_components(demo_engine, settings)
    assert _counted() == before  # the file alone: this process still runs the code it loaded
    importlib.reload(sys.modules["counting_probe"])
    compute_components(demo_engine, settings)
    assert _counted() - before == len(_districts(demo_engine))
    sys.modules.pop("counting_probe", None)


def test_an_import_of_new_batches_recounts_its_district(demo_engine):
    settings = default_settings()
    compute_components(demo_engine, settings)
    district = _districts(demo_engine)[0]
    before = _counted()
    new = frame("cases", [{"case_id": "NEW-1", "district": district, "accepted_at": at(2024, 12, 2),
                           "completed_at": at(2024, 12, 20), "legal_limit": 5.0, "promised_limit": 3.0}])
    import_frame(demo_engine, "cases", new.drop("batch_id", "period"), file_name="补报.xlsx", sha256="e" * 64,
                 period=END)
    compute_components(demo_engine, settings)
    assert _counted() - before == 1


def _component_files(engine) -> dict[str, float]:
    return snapshots.cache_of(engine).mtimes("components")


def test_each_change_recounts_only_its_district(demo_engine):
    """Import, rollback, withdrawal and the first import of a new month each count one district; the
    others' component files stay as they were (and the table equals the whole store's)."""
    from tests.test_snapshots import _assert_same, _whole_store

    settings = default_settings()
    compute_components(demo_engine, settings)
    district = _districts(demo_engine)[1]
    tag = snapshots.district_tag(district)

    def step(change) -> None:
        files = _component_files(demo_engine)
        before = _counted()
        change()
        got = compute_components(demo_engine, settings)
        assert _counted() - before == 1, change.__name__
        after = _component_files(demo_engine)
        assert {n for n in after if files.get(n) != after[n]} == {n for n in after if tag in n}, change.__name__
        _assert_same(got, _whole_store(demo_engine))

    def new_month() -> None:  # the store's first data of the month after END
        month = f"{int(END[:4]) + 1}-01" if END.endswith("-12") else f"{END[:5]}{int(END[5:]) + 1:02d}"
        rows = frame("cases", [{"case_id": "NM-1", "district": district, "accepted_at": at(int(month[:4]), int(month[5:]), 5),
                                "completed_at": at(int(month[:4]), int(month[5:]), 9), "legal_limit": 5.0,
                                "promised_limit": 3.0}])
        import_frame(demo_engine, "cases", rows.drop("batch_id", "period"), file_name="新月.xlsx", sha256="f" * 64,
                     period=month)

    def correction() -> None:  # a corrected export of END: supersedes that month's batch
        rows = frame("cases", [{"case_id": "CORR-1", "district": district, "accepted_at": at(2024, 12, 2),
                                "completed_at": at(2024, 12, 6), "legal_limit": 5.0, "promised_limit": 3.0}])
        import_frame(demo_engine, "cases", rows.drop("batch_id", "period"), file_name="更正.xlsx", sha256="c" * 64,
                     period=END)

    def _slot_versions() -> pl.DataFrame:
        history = store.batch_history(demo_engine, "cases")
        return history.filter((pl.col("district") == district) & (pl.col("period") == END)).sort("id")

    def rollback() -> None:
        versions = _slot_versions()
        store.rollback_to(demo_engine, versions["id"][0], "test")

    def withdrawal() -> None:
        active = _slot_versions().filter(pl.col("state") == store.ACTIVE)
        store.withdraw_batch(demo_engine, active["id"][0], "test")

    for change in (new_month, correction, rollback, withdrawal):
        step(change)


def test_the_report_follows_the_holiday_file(tmp_path, holiday_file, capsys):
    """The issue's reproduction: ``python -m metrics report --by city`` for 2026-11 on a demo store,
    then five weekdays of 2026-11 registered as 休 in the holiday file: the next report changes, with
    no cache folder deleted."""
    from datasets.sample.demo import generate_demo

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = store.make_engine(url)
    store.init_db(engine)
    generate_demo(engine, calendar=workdays.load_calendar(), **{**SMALL_DEMO, "end_month": "2026-11"})
    engine.dispose()

    def elapsed_numerator() -> float:
        out = tmp_path / "report.json"
        assert metrics_main(["report", "--db", url, "--by", "city", "--from", "2026-11", "--format", "json",
                             "--out", str(out)], today=dt.date(2026, 12, 7)) == 0
        rows = json.loads(out.read_text(encoding="utf-8"))
        (row,) = [r for r in rows if r["indicator"] == "avg_handling_days"]
        return float(row["numerator"])

    first = elapsed_numerator()
    _register_rest_days(holiday_file, _weekdays("2026-11", 5))
    second = elapsed_numerator()
    assert 0 < second < first
    assert (tmp_path / "demo.db.snapshots").is_dir()  # the cache was there all along
