"""Recorded histories replay against the current workflow code (rule H-2: history is evidence).

A failure here means a change would break loans already running: version it with
``workflow.patched`` instead of re-recording.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from settings import Settings
from worker import INTERCEPTORS
from workflows.loan import LoanWorkflow
from workflows.servicing import LoanServicingWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


# Recorded before payload encryption: only replay and audit read their plaintext.
PLAINTEXT = ("origination_happy_path", "servicing_run_", "lean_run_")


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    """Replayed as a worker runs it: its interceptors, and its own converter for histories
    recorded encrypted."""
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    settings = Settings(environment="test")
    replayer = Replayer(
        workflows=[LoanWorkflow, LoanServicingWorkflow],
        interceptors=list(INTERCEPTORS),
        data_converter=settings.history_data_converter()
        if path.stem.startswith(PLAINTEXT)
        else settings.data_converter(),
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


def test_the_recorded_histories() -> None:
    """origination_happy_path: a loan parked at disbursement by the code before servicing
    (it must keep waiting); servicing_run_01: origination that continues as new into
    servicing; 02-05: post-loan runs (first check, a due date collected, one missed with
    the ladder and notices, the arrears paid at the counter), before the "lean" patch;
    lean_run_*: the same loan's story under it; keyed_run_*: the same story with steps keyed
    for exactly-once and calendar years resolved by an activity (issue 9)."""
    stems = [p.stem for p in HISTORIES]
    shapes = ("lean_run_", "keyed_run_")
    assert [s for s in stems if not s.startswith(shapes)] == [
        "origination_happy_path",
        *(f"servicing_run_{n:02d}" for n in range(1, 6)),
    ]
    for shape in shapes:
        assert len([s for s in stems if s.startswith(shape)]) >= 2
