"""Jobs and their events: the source of truth both the API and the workers read and write."""

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from schemas.jobs import TERMINAL_STATUSES
from service.state.db import fetch_page
from service.state.models import IdempotencyKeyRow, JobEventRow, JobRow, now_s

HELD_STATUS = "held"  # trained and evaluated; waits for an admin to release or reject it


def add_job(*, session: Session, row: JobRow) -> JobRow:
    session.add(row)
    session.flush()
    return row


def get_job(*, session: Session, job_id: str, tenant_id: str | None = None) -> JobRow | None:
    """Tenant-scoped when tenant_id is given (the API); unscoped for workers, which only get ids."""
    query = select(JobRow).where(JobRow.id == job_id)
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    return session.scalar(query)


def lock_job(*, session: Session, job_id: str) -> JobRow | None:
    """The job row, locked until the transaction ends (PostgreSQL), so two workers never both advance it."""
    return session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())


def list_jobs(*, session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[list[JobRow], bool]:
    anchor = get_job(session=session, job_id=after, tenant_id=tenant_id) if after else None
    query = select(JobRow).where(JobRow.tenant_id == tenant_id)
    return fetch_page(session, query, JobRow.seq, anchor.seq if anchor else None, limit)


def list_all_jobs(*, session: Session, after: str | None, limit: int, status: str | None = None,
                  tenant_id: str | None = None) -> tuple[list[JobRow], bool]:
    """Across tenants (the admin API), newest first, optionally filtered by status and tenant."""
    query = select(JobRow)
    if status is not None:
        query = query.where(JobRow.status == status)
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    anchor = get_job(session=session, job_id=after) if after else None
    return fetch_page(session, query, JobRow.seq, anchor.seq if anchor else None, limit)


def count_unfinished_jobs(*, session: Session, tenant_id: str) -> int:
    query = select(func.count()).select_from(JobRow).where(JobRow.tenant_id == tenant_id,
                                                           JobRow.status.not_in(TERMINAL_STATUSES))
    return session.scalar(query) or 0


def trained_tokens_since(*, session: Session, tenant_id: str, since: int) -> int:
    """Tokens trained so far by the tenant's jobs created at or after `since` (recorded when training ends)."""
    query = select(func.coalesce(func.sum(JobRow.trained_tokens), 0)).where(JobRow.tenant_id == tenant_id,
                                                                           JobRow.created_at >= since)
    return int(session.scalar(query) or 0)


def fine_tuned_model_name(job: JobRow) -> str:
    """The model id a released job publishes."""
    return f"ft:{job.model}:{job.tenant_id}:{job.suffix or ''}:{job.id}"


def get_idempotency_key(*, session: Session, tenant_id: str, key: str) -> IdempotencyKeyRow | None:
    return session.scalar(select(IdempotencyKeyRow).where(IdempotencyKeyRow.tenant_id == tenant_id,
                                                          IdempotencyKeyRow.key == key))


def add_idempotency_key(*, session: Session, tenant_id: str, key: str, request_hash: str,
                        job_id: str) -> IdempotencyKeyRow:
    """Raises IntegrityError (at this flush or at commit) when a concurrent request stored the same key first."""
    row = IdempotencyKeyRow(tenant_id=tenant_id, key=key, request_hash=request_hash, job_id=job_id)
    session.add(row)
    session.flush()
    return row


def transition(*, session: Session, job_id: str, from_statuses: set[str], to_status: str,
               **fields: Any) -> bool:
    """Compare-and-set the status; False when the job was no longer in one of from_statuses."""
    values: dict[str, Any] = {"status": to_status, "updated_at": now_s(), **fields}
    if to_status in TERMINAL_STATUSES:
        values.setdefault("finished_at", now_s())
    result = session.execute(
        update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(from_statuses)).values(**values)
    )
    return bool(result.rowcount)


def add_event(*, session: Session, job_id: str, message: str, level: str = "info", type_: str = "message",
              data: dict[str, Any] | None = None) -> JobEventRow:
    row = JobEventRow(job_id=job_id, message=message, level=level, type=type_, data=data)
    session.add(row)
    session.flush()
    return row


def list_events(*, session: Session, job_id: str, after_seq: int | None, limit: int) -> tuple[list[JobEventRow], bool]:
    """Newest first, as OpenAI lists them; `after` pages towards older events."""
    query = select(JobEventRow).where(JobEventRow.job_id == job_id)
    return fetch_page(session, query, JobEventRow.seq, after_seq, limit)
