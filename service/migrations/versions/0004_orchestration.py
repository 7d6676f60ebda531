"""orchestration: the step a job is at, when it started, heartbeats and the dispatch attempt

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("step", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("step_started_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dispatched_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dispatch_attempt", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in ("dispatch_attempt", "dispatched_at", "heartbeat_at", "step_started_at", "step"):
            batch.drop_column(column)
