"""application and batch requests: taken once per idempotency key (issue 9)

Adds ``application_requests``: per officer and key, the request's fingerprint and the loan
it started, so a resent application answers with that loan instead of starting another;
and ``batch_requests``: per user and key, a step over many loans (a handover) and its first
answer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString)
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "application_requests",
        sa.Column(
            "officer_username", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("loan_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "officer_username", "request_key", name=op.f("pk_application_requests")
        ),
    )


    op.create_table(
        "batch_requests",
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", "request_key", name=op.f("pk_batch_requests")),
    )


def downgrade() -> None:
    op.drop_table("batch_requests")
    op.drop_table("application_requests")
