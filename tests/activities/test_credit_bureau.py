"""The fixture credit bureau and its activity (rules I-4, E-5, E-6)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.credit_bureau import CreditBureauActivities, CreditReportRequest
from adapters.credit_bureau import FixtureCreditBureau
from domain.calendar import china_date
from domain.ids import parse_resident_id

FIXTURES = Path(__file__).resolve().parents[2] / "adapters" / "credit_bureau_fixtures.json"
CLEAN_ID = "410102198503120030"
ON = date(2026, 3, 2)


@pytest.fixture
def bureau() -> FixtureCreditBureau:
    return FixtureCreditBureau(FIXTURES)


def test_fixture_ids_are_valid_and_documented() -> None:
    raw = json.loads(FIXTURES.read_text(encoding="utf-8"))
    ids = [k for k in raw if not k.startswith("_")]
    assert len(ids) >= 3
    for id_number in [*ids, CLEAN_ID]:
        parse_resident_id(id_number)  # GB 11643 check character
        assert id_number in raw["_comment"]
    assert CLEAN_ID not in raw


def test_unknown_id_gets_a_clean_deterministic_report(bureau: FixtureCreditBureau) -> None:
    report = bureau.fetch(CLEAN_ID, ON)
    expected_id = "CR-" + hashlib.sha256(f"{CLEAN_ID}{ON.isoformat()}".encode()).hexdigest()[:12]
    assert report.report_id == expected_id
    assert report.fetched_on == ON
    assert report.overdue_loans == 0
    assert not (report.fraud_or_debt_evasion or report.criminal_record)
    assert bureau.fetch(CLEAN_ID, ON) == report
    assert bureau.fetch(CLEAN_ID, date(2026, 3, 3)).report_id != report.report_id


def test_fixture_overrides(bureau: FixtureCreditBureau) -> None:
    overdue = bureau.fetch("430521197806231520", ON)
    assert overdue.overdue_loans == 2 and not overdue.overdue_from_declared_disaster
    disaster = bureau.fetch("51072219900117246x", ON)  # case-insensitive check character
    assert disaster.overdue_loans == 1 and disaster.overdue_from_declared_disaster
    assert bureau.fetch("360731197211053310", ON).fraud_or_debt_evasion
    assert bureau.fetch("522426198808084178", ON).criminal_record


def test_bad_fixture_file_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({CLEAN_ID: {"overdue_loans": -1}}), encoding="utf-8")
    with pytest.raises(ValueError):
        FixtureCreditBureau(path)


def test_fetch_credit_report_activity(bureau: FixtureCreditBureau) -> None:
    activities = CreditBureauActivities(bureau)
    inp = CreditReportRequest(loan_id="L1", id_number="360731197211053310")
    before = china_date(datetime.now(UTC))
    report = ActivityEnvironment().run(activities.fetch_credit_report, inp)
    assert report.fraud_or_debt_evasion
    assert report.fetched_on in {before, china_date(datetime.now(UTC))}  # China's day
