"""Training checkpoints: recorded by workers as they are stored, read to resume and by the API."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.ids import new_id
from service.state.db import fetch_page
from service.state.models import CheckpointRow


def add_checkpoint(
    *, session: Session, job_id: str, step: int, metrics: dict[str, Any], storage_key: str
) -> CheckpointRow:
    """Idempotent per (job, step): a redelivered training task that reaches the same step rewrites it."""
    row = session.scalar(select(CheckpointRow).where(CheckpointRow.job_id == job_id, CheckpointRow.step == step))
    if row is None:
        row = CheckpointRow(id=new_id("ftckpt"), job_id=job_id, step=step, metrics=metrics, storage_key=storage_key)
        session.add(row)
    else:
        row.metrics, row.storage_key = metrics, storage_key
    session.flush()
    return row


def latest_checkpoint(*, session: Session, job_id: str) -> CheckpointRow | None:
    query = select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step.desc())
    return session.scalars(query.limit(1)).first()


def list_checkpoints(
    *, session: Session, job_id: str, after: str | None, limit: int
) -> tuple[list[CheckpointRow], bool]:
    """Newest first, like OpenAI's checkpoint list."""
    anchor = session.scalar(select(CheckpointRow).where(CheckpointRow.id == after)) if after else None
    query = select(CheckpointRow).where(CheckpointRow.job_id == job_id)
    return fetch_page(session, query, CheckpointRow.seq, anchor.seq if anchor else None, limit)
