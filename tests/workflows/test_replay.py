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
from workflows.loan import LoanWorkflow
from workflows.servicing import LoanServicingWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(
        workflows=[LoanWorkflow, LoanServicingWorkflow],
        data_converter=Settings(environment="test").history_data_converter(),
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


def test_the_recorded_histories() -> None:
    """origination_happy_path: a loan parked at disbursement by the code before servicing
    (it must keep waiting); servicing_run_01: origination that continues as new into
    servicing; 02-05: post-loan runs (first check, a due date collected, one missed with
    the ladder and notices, the arrears paid at the counter), before the "lean" patch;
    lean_run_*: the same loan's story under it."""
    stems = [p.stem for p in HISTORIES]
    assert [s for s in stems if not s.startswith("lean_run_")] == [
        "origination_happy_path",
        *(f"servicing_run_{n:02d}" for n in range(1, 6)),
    ]
    assert len([s for s in stems if s.startswith("lean_run_")]) >= 2
