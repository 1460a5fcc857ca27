"""Temporal workflows of loanflow; one module per workflow."""

TASK_QUEUE = "loanflow-loans"
