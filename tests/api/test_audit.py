"""The audit trail exported and verified (H-2): CSV for people, a replay for the evidence."""

from __future__ import annotations

import csv
import io

from tests.api.conftest import LoanApi


async def test_the_trail_exports_as_csv_and_replays_on_the_current_code(
    loan_api: LoanApi,
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.to_repaying(loan_id)

    exported = await loan_api.get("auditor1", f"/loans/{loan_id}/audit.csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    steps = [(r["step"], r["actor"]) for r in rows if r["kind"] == "human_step"]
    assert steps[:2] == [("submit_investigation", "officer1"), ("submit_investigation", "officer2")]
    assert {r["policy_version"] for r in rows} == {"2026.1"}
    assert list(rows[0]) == [
        "run_id",
        "event_id",
        "time",
        "kind",
        "step",
        "actor",
        "role",
        "decision",
        "comment",
        "policy_version",
        "accepted",
        "details",
    ]

    verified = await loan_api.post("auditor1", f"/loans/{loan_id}/audit/verify")
    assert verified.status_code == 200, verified.text
    runs = verified.json()
    assert [r["workflow_type"] for r in runs][:2] == ["LoanWorkflow", "LoanServicingWorkflow"]
    assert all(r["reproduces"] and r["problem"] is None for r in runs)
    assert all(f"/workflows/loan-{loan_id}/" in r["history_url"] for r in runs)

    # Verification is for those who oversee: an officer may not, and nobody changes anything.
    officer = await loan_api.post("officer1", f"/loans/{loan_id}/audit/verify")
    assert officer.status_code == 403
