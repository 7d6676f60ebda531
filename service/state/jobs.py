"""Jobs and their events: the source of truth both the API and the workers read and write."""

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session, defer

from schemas.job_status import LIVE_STATUSES, SCREEN_PHASE, TERMINAL_STATUSES, JobStatus, Step
from service.state.db import fetch_page
from service.state.models import IdempotencyKeyRow, JobEventRow, JobRow, TenantRow, now_s


def add_job(*, session: Session, row: JobRow) -> JobRow:
    session.add(row)
    session.flush()
    return row


# Built once: SQLAlchemy then reuses each statement's cache key instead of working it out on every call.
_JOB = select(JobRow).where(JobRow.id == bindparam("job_id"))
_TENANT_JOB = _JOB.where(JobRow.tenant_id == bindparam("tenant_id"))


def get_job(*, session: Session, job_id: str, tenant_id: str | None = None) -> JobRow | None:
    """Tenant-scoped when tenant_id is given (the API); unscoped for workers, which only get ids."""
    if tenant_id is None:
        return session.scalar(_JOB, {"job_id": job_id})
    return session.scalar(_TENANT_JOB, {"job_id": job_id, "tenant_id": tenant_id})


def lock_job(*, session: Session, job_id: str) -> JobRow | None:
    """The job row, locked until the transaction ends (PostgreSQL), so two workers never both advance it."""
    return session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())


def list_jobs(*, session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[list[JobRow], bool]:
    anchor = get_job(session=session, job_id=after, tenant_id=tenant_id) if after else None
    # A page of jobs never shows the policy each ran under; parsing that JSON was a large share of a page's cost.
    query = select(JobRow).where(JobRow.tenant_id == tenant_id).options(defer(JobRow.policy))
    return fetch_page(session, query, JobRow.seq, anchor.seq if anchor else None, limit)


def list_all_jobs(
    *, session: Session, after: str | None, limit: int, status: JobStatus | None = None, tenant_id: str | None = None
) -> tuple[list[JobRow], bool]:
    """Across tenants (the admin API), newest first, optionally filtered by status and tenant."""
    query = select(JobRow)
    if status is not None:
        query = query.where(JobRow.status == status)
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    anchor = get_job(session=session, job_id=after) if after else None
    return fetch_page(session, query, JobRow.seq, anchor.seq if anchor else None, limit)


def count_unfinished_jobs(*, session: Session, tenant_id: str) -> int:
    query = (
        select(func.count())
        .select_from(JobRow)
        .where(JobRow.tenant_id == tenant_id, JobRow.status.not_in(TERMINAL_STATUSES))
    )
    return session.scalar(query) or 0


def trained_tokens_since(*, session: Session, tenant_id: str, since: int) -> int:
    """Tokens trained so far by the tenant's jobs created at or after `since` (recorded when training ends)."""
    query = select(func.coalesce(func.sum(JobRow.trained_tokens), 0)).where(
        JobRow.tenant_id == tenant_id, JobRow.created_at >= since
    )
    return int(session.scalar(query) or 0)


def fine_tuned_model_name(job: JobRow) -> str:
    """The model id a released job publishes."""
    return f"ft:{job.model}:{job.tenant_id}:{job.suffix or ''}:{job.id}"


def get_idempotency_key(*, session: Session, tenant_id: str, key: str) -> IdempotencyKeyRow | None:
    return session.scalar(
        select(IdempotencyKeyRow).where(IdempotencyKeyRow.tenant_id == tenant_id, IdempotencyKeyRow.key == key)
    )


def add_idempotency_key(
    *, session: Session, tenant_id: str, key: str, request_hash: str, job_id: str
) -> IdempotencyKeyRow:
    """Raises IntegrityError (at this flush or at commit) when a concurrent request stored the same key first."""
    row = IdempotencyKeyRow(tenant_id=tenant_id, key=key, request_hash=request_hash, job_id=job_id)
    session.add(row)
    session.flush()
    return row


def transition(*, session: Session, job_id: str, from_statuses: Iterable[str], to_status: str, **fields: Any) -> bool:
    """Compare-and-set the status; False when the job was no longer in one of from_statuses. The raw primitive,
    which checks nothing: the service and the workers change a job's status only through the named moves of
    service.state.lifecycle, which hold the table of allowed transitions (tests use it to set a job up)."""
    values: dict[str, Any] = {"status": to_status, "updated_at": now_s(), **fields}
    if to_status in TERMINAL_STATUSES:
        values.setdefault("finished_at", now_s())
    result = session.execute(
        update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(list(from_statuses))).values(**values)
    )
    return bool(result.rowcount)


def record_adapter(*, session: Session, job_id: str, adapter_key: str, trained_tokens: int) -> bool:
    """Store the trained adapter on a job still running (its status stays: evaluation is due next); False when
    the job was paused or cancelled meanwhile."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status == JobStatus.RUNNING)
        .values(adapter_key=adapter_key, trained_tokens=trained_tokens, updated_at=now_s())
    )
    return bool(result.rowcount)


def add_event(
    *,
    session: Session,
    job_id: str,
    message: str,
    level: str = "info",
    type_: str = "message",
    data: dict[str, Any] | None = None,
) -> JobEventRow:
    row = JobEventRow(job_id=job_id, message=message, level=level, type=type_, data=data)
    session.add(row)
    session.flush()
    return row


def list_events(*, session: Session, job_id: str, after_seq: int | None, limit: int) -> tuple[list[JobEventRow], bool]:
    """Newest first, as OpenAI lists them; `after` pages towards older events."""
    query = select(JobEventRow).where(JobEventRow.job_id == job_id)
    return fetch_page(session, query, JobEventRow.seq, after_seq, limit)


# Orchestration: which step a job is at (schemas.job_status.Step), whether its current dispatch is alive, and
# who may run it.


def next_step(job: JobRow) -> Step | None:
    """The step a live job needs next, derived from what the database records (never from the broker)."""
    if job.status == JobStatus.VALIDATING_FILES:
        return Step.VALIDATE
    if job.status == JobStatus.QUEUED:
        return Step.SCREEN if job.step in SCREEN_PHASE else Step.TRAIN
    if job.status == JobStatus.RUNNING:
        return Step.EVALUATE if job.adapter_key else Step.TRAIN
    return None


_IN_SCREEN_PHASE = func.coalesce(JobRow.step, "").in_(SCREEN_PHASE)
_QUEUED, _RUNNING = JobRow.status == JobStatus.QUEUED, JobRow.status == JobStatus.RUNNING
# The statuses in which each step is due: the SQL form of next_step, so a claim is one statement.
_STEP_DUE = {
    Step.VALIDATE: JobRow.status == JobStatus.VALIDATING_FILES,
    Step.SCREEN: _QUEUED & _IN_SCREEN_PHASE,
    Step.TRAIN: (_QUEUED & ~_IN_SCREEN_PHASE) | (_RUNNING & JobRow.adapter_key.is_(None)),
    Step.EVALUATE: _RUNNING & JobRow.adapter_key.is_not(None),
}
# Screened and waiting for a fair-share slot: no message is out for it.
_WAITING = _QUEUED & JobRow.dispatched_at.is_(None) & ~_IN_SCREEN_PHASE


def claim_step(*, session: Session, job_id: str, attempt: int, step: Step) -> str | None:
    """Record that `step` started, unless the message is stale: the job finished, was paused, has passed that
    step, or was re-dispatched since (a newer attempt). Returns the job's tenant id; None means: drop the
    message. One UPDATE ... RETURNING, which also holds the row's lock until the transaction ends."""
    now = time.time()
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.dispatch_attempt == attempt, _STEP_DUE[step])
        .values(step=step, step_started_at=now, heartbeat_at=now)
        .returning(JobRow.tenant_id)
    )
    return result.scalar_one_or_none()


def record_heartbeat(*, session: Session, job_id: str, attempt: int) -> bool:
    """False when the attempt was superseded or the job left the live statuses: the step should stop."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.dispatch_attempt == attempt, JobRow.status.in_(LIVE_STATUSES))
        .values(heartbeat_at=time.time())
    )
    return bool(result.rowcount)


def mark_dispatched(*, session: Session, job_id: str, step: Step, attempt: int) -> bool:
    """Record that the next step's message is about to be sent (call before sending, in the step's transaction)."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.dispatch_attempt == attempt)
        .values(step=step, dispatched_at=time.time())
    )
    return bool(result.rowcount)


def mark_waiting(*, session: Session, job_id: str, from_step: Step, step: Step = Step.TRAIN) -> None:
    """The job, just moved on from `from_step`, waits for a fair-share slot: no message is out for it
    (dispatched_at NULL). A no-op when an admission got there first (it sets step itself)."""
    session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, _QUEUED, JobRow.step == from_step)
        .values(step=step, dispatched_at=None)
    )


def bump_attempt(*, session: Session, job: JobRow, dispatched: bool) -> bool:
    """Supersede every message sent for the job so far (compare-and-set on the attempt the caller read)."""
    values: dict[str, Any] = {
        "dispatch_attempt": job.dispatch_attempt + 1,
        "heartbeat_at": None,
        "dispatched_at": time.time() if dispatched else None,
    }
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job.id, JobRow.status == job.status, JobRow.dispatch_attempt == job.dispatch_attempt)
        .values(**values)
    )
    return bool(result.rowcount)  # the session's `job` is synchronised by the update itself


def silent_jobs(*, session: Session, older_than: float) -> list[JobRow]:
    """Live jobs with a message out whose last sign of life (created, dispatched, heartbeat) is older than
    `older_than`: their step is stale, or their message was lost."""
    query = select(JobRow).where(
        JobRow.status.in_(LIVE_STATUSES),
        ~_WAITING,
        JobRow.created_at < older_than,
        func.coalesce(JobRow.dispatched_at, 0) < older_than,
        func.coalesce(JobRow.heartbeat_at, 0) < older_than,
    )
    return list(session.scalars(query.order_by(JobRow.seq)))


def tenants_with_waiting_jobs(*, session: Session) -> list[str]:
    query = select(JobRow.tenant_id).where(_WAITING).distinct()
    return list(session.scalars(query))


def admit_waiting_jobs(*, session: Session, tenant_id: str, limit: int) -> list[JobRow]:
    """Fair share: give the tenant's oldest waiting jobs a slot, up to `limit` admitted (dispatched to training or
    training; a job that finished training and awaits or runs its evaluation no longer holds a slot) at once,
    lowered by the tenant's own max_concurrent_jobs. The tenant row is locked (PostgreSQL) so concurrent
    admissions never exceed the limit. Two statements: the lock, then one UPDATE that counts the active jobs,
    picks the oldest waiting ones that fit and marks them dispatched (RETURNING them)."""
    cap = session.scalar(select(TenantRow.max_concurrent_jobs).where(TenantRow.id == tenant_id).with_for_update())
    if cap:
        limit = min(limit, cap)
    admitted = (_RUNNING & JobRow.adapter_key.is_(None)) | (
        _QUEUED & JobRow.dispatched_at.is_not(None) & ~_IN_SCREEN_PHASE
    )
    active = select(func.count()).select_from(JobRow).where(JobRow.tenant_id == tenant_id, admitted).scalar_subquery()
    oldest = (
        select(JobRow.id)
        .where(JobRow.tenant_id == tenant_id, _WAITING)
        .order_by(JobRow.seq)
        .limit(case((active < limit, limit - active), else_=0))
    )
    admit = (
        update(JobRow)
        .where(JobRow.tenant_id == tenant_id, _WAITING, JobRow.id.in_(oldest))
        .values(step=Step.TRAIN, dispatched_at=time.time())
        .returning(JobRow)
    )
    jobs = session.scalars(admit, execution_options={"synchronize_session": False}).all()
    return sorted(jobs, key=lambda job: job.seq)
