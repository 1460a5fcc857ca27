"""The inbox (待办) through HTTP: tasks follow the loan from person to person.

Each member of staff sees the open tasks of their role and branch, except where
rule A-1 excludes them or rule A-2 puts the amount above their limit. A task is
closed when the workflow accepts the step it stands for.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from store.models import Task
from tests.api.conftest import LoanApi, approval_body, review_body
from tests.samples import report_data


async def _tasks(api: LoanApi, username: str, loan_id: str) -> list[dict[str, Any]]:
    """The tasks ``username`` sees for one loan."""
    response = await api.get(username, "/tasks")
    assert response.status_code == 200, response.text
    return [t for t in response.json() if t["loan_id"] == loan_id]


async def _kinds(api: LoanApi, username: str, loan_id: str) -> list[str]:
    return [t["kind"] for t in await _tasks(api, username, loan_id)]


def _task_row(app: FastAPI, task_id: int) -> Task:
    with app.state.sessions() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return task


async def test_tasks_follow_the_loan_through_origination(loan_api: LoanApi, app: FastAPI) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")

    # rule I-1: two investigations, for any loan officer of the branch
    assert await _kinds(loan_api, "officer1", loan_id) == ["investigate", "investigate"]
    assert await _kinds(loan_api, "officer2", loan_id) == ["investigate", "investigate"]
    for other in ("reviewer1", "approver1", "head1", "officer3"):
        assert await _kinds(loan_api, other, loan_id) == [], other
    seen = (await _tasks(loan_api, "officer1", loan_id))[0]
    assert seen["stage"] == "investigation" and seen["applicant_name"] == "张大山"
    assert seen["due_date"] is not None and seen["overdue"] is False

    await loan_api.step("officer1", loan_id, "investigations", report_data())
    # officer1 has reported: the remaining investigation is not theirs to take (I-1)
    assert await _kinds(loan_api, "officer1", loan_id) == []
    assert await _kinds(loan_api, "officer2", loan_id) == ["investigate"]

    await loan_api.step("officer2", loan_id, "investigations", report_data())
    assert await _kinds(loan_api, "reviewer1", loan_id) == ["review"]
    for officer in ("officer1", "officer2"):
        assert await _kinds(loan_api, officer, loan_id) == [], officer

    await loan_api.step("reviewer1", loan_id, "review", review_body())
    assert await _kinds(loan_api, "reviewer1", loan_id) == []
    # rule A-2: the 30 000 approval is above approver2's limit of 20 000
    assert await _kinds(loan_api, "approver1", loan_id) == ["approve"]
    assert await _kinds(loan_api, "approver2", loan_id) == []
    # rule A-1: the investigators and the reviewer are excluded from the approval
    for person in ("officer1", "officer2", "reviewer1"):
        assert "approve" not in await _kinds(loan_api, person, loan_id), person
    (approval,) = await _tasks(loan_api, "approver1", loan_id)
    row = _task_row(app, approval["id"])
    assert set(row.excluded_usernames) >= {"officer1", "officer2", "reviewer1"}
    over_limit = await loan_api.post("approver2", f"/tasks/{approval['id']}/claim")
    assert over_limit.status_code == 403, over_limit.text

    await loan_api.step("approver1", loan_id, "decision", approval_body())
    assert await _kinds(loan_api, "approver1", loan_id) == []
    assert await _kinds(loan_api, "officer1", loan_id) == ["sign_contract"]


async def test_a_task_claimed_by_someone_else_cannot_be_claimed(
    loan_api: LoanApi, app: FastAPI
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    first, second = await _tasks(loan_api, "officer1", loan_id)

    mine = await loan_api.post("officer1", f"/tasks/{first['id']}/claim")
    assert mine.status_code == 200, mine.text
    assert mine.json()["claimed_by"] == "officer1"
    assert (await loan_api.post("officer1", f"/tasks/{first['id']}/claim")).status_code == 200

    taken = await loan_api.post("officer2", f"/tasks/{first['id']}/claim")
    assert taken.status_code == 409, taken.text
    assert "officer1" in taken.json()["detail"]["message"]
    assert _task_row(app, first["id"]).claimed_by == "officer1"
    # officer2 now sees only the investigation nobody has claimed
    assert [t["id"] for t in await _tasks(loan_api, "officer2", loan_id)] == [second["id"]]

    # Releasing gives it back to everyone.
    released = await loan_api.post("officer1", f"/tasks/{first['id']}/release")
    assert released.status_code == 200, released.text
    assert released.json()["claimed_by"] is None
    theirs = await loan_api.post("officer2", f"/tasks/{first['id']}/claim")
    assert theirs.status_code == 200, theirs.text


async def test_a_step_whose_only_tasks_are_claimed_by_someone_else_is_a_409(
    loan_api: LoanApi,
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    for task in await _tasks(loan_api, "officer1", loan_id):
        claimed = await loan_api.post("officer1", f"/tasks/{task['id']}/claim")
        assert claimed.status_code == 200, claimed.text

    response = await loan_api.post("officer2", f"/loans/{loan_id}/investigations", report_data())

    assert response.status_code == 409, response.text
    assert "officer1" in response.json()["detail"]["message"]
    workflow = (await loan_api.get("officer2", f"/loans/{loan_id}")).json()["workflow"]
    assert workflow["investigators_reported"] == []


async def test_a_claimed_task_closes_when_its_step_is_accepted(
    loan_api: LoanApi, app: FastAPI
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    first, second = await _tasks(loan_api, "officer1", loan_id)
    # officer1 claims the second slot: the report closes that very task
    claimed = await loan_api.post("officer1", f"/tasks/{second['id']}/claim")
    assert claimed.status_code == 200, claimed.text

    await loan_api.step("officer1", loan_id, "investigations", report_data())

    done = _task_row(app, second["id"])
    assert done.status == "done" and done.closed_at is not None
    assert _task_row(app, first["id"]).status == "open"
    assert await _tasks(loan_api, "officer1", loan_id) == []
    assert [t["id"] for t in await _tasks(loan_api, "officer2", loan_id)] == [first["id"]]
    again = await loan_api.post("officer1", f"/tasks/{second['id']}/claim")
    assert again.status_code == 409, again.text
    assert "done" in again.json()["detail"]["message"]

    # The review task, claimed and completed the same way.
    await loan_api.step("officer2", loan_id, "investigations", report_data())
    assert _task_row(app, first["id"]).status == "done"
    (review,) = await _tasks(loan_api, "reviewer1", loan_id)
    assert (await loan_api.post("reviewer1", f"/tasks/{review['id']}/claim")).status_code == 200
    await loan_api.step("reviewer1", loan_id, "review", review_body())
    assert _task_row(app, review["id"]).status == "done"
    assert await _tasks(loan_api, "reviewer1", loan_id) == []
