"""Orchestration around the pipeline's steps: claim a step, heartbeat while it runs, admit jobs to training
fairly across tenants, and reconcile what the database expects with what the broker still holds.

Nothing here imports torch: the reconciler runs on the cpu queue.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery import Celery

from schemas.job_status import Step
from service.dispatch import queued_job_ids, send_step
from service.settings import Settings
from service.state.db import session_scope, statement_scope
from service.state.jobs import (
    add_event,
    admit_waiting_jobs,
    bump_attempt,
    claim_step,
    lock_job,
    mark_dispatched,
    mark_waiting,
    next_step,
    record_heartbeat,
    silent_jobs,
    tenants_with_waiting_jobs,
)

log = logging.getLogger(__name__)


@dataclass
class RunningStep:
    """A task's claim on its step, and the one way a step learns it must stop: the heartbeat. `beat` records that
    the attempt is alive (one UPDATE of the job's row) and is refused once the attempt was replaced or the job left
    the live statuses (cancelled, paused, failed); from then on `superseded` is set and `should_stop` is true.

    A thread beats every `heartbeat_every_s` while the step runs. A loop that must stop promptly (training: before
    every optimizer step) asks `should_stop`, which beats at once, so a cancel, pause or re-dispatch stops it within
    one step; the thread then has nothing to add and skips its beat."""

    job_id: str
    tenant_id: str
    attempt: int
    url: str
    superseded: threading.Event = field(default_factory=threading.Event)
    last_beat: float = field(default_factory=time.monotonic)  # the claim counts as the first beat

    def beat(self) -> bool:
        """Record that the attempt is alive; False once it is not. A database blip counts as alive: the next beat
        asks again."""
        try:
            with statement_scope(self.url) as session:  # one UPDATE, its own transaction
                alive = record_heartbeat(session=session, job_id=self.job_id, attempt=self.attempt)
        except Exception:
            log.warning("heartbeat of %s failed", self.job_id, exc_info=True)
            return not self.superseded.is_set()
        self.last_beat = time.monotonic()
        if not alive:
            self.superseded.set()
        return alive

    def should_stop(self) -> bool:
        """True once this attempt may no longer run; beats now to find out."""
        return self.superseded.is_set() or not self.beat()


@contextmanager
def running_step(settings: Settings, job_id: str, attempt: int, step: Step) -> Iterator[RunningStep | None]:
    """Claim the step for this message (None: stale message, drop it) and heartbeat until the block ends."""
    with statement_scope(settings.sqlalchemy_url) as session:  # one UPDATE, its own transaction
        tenant_id = claim_step(session=session, job_id=job_id, attempt=attempt, step=step)
    if tenant_id is None:
        log.info("dropped %s message for %s (attempt %s): stale", step, job_id, attempt)
        yield None
        return
    claim = RunningStep(job_id, tenant_id, attempt, settings.sqlalchemy_url)
    done = threading.Event()
    thread = threading.Thread(
        target=_keep_beating, args=(claim, done, settings.heartbeat_every_s), name=f"heartbeat-{job_id}", daemon=True
    )
    thread.start()
    try:
        yield claim
    finally:
        done.set()
        thread.join(timeout=5)


def _keep_beating(claim: RunningStep, done: threading.Event, every_s: float) -> None:
    """The heartbeat thread, until `done`: a beat every `every_s`, skipped while the step beats on its own (a failed
    beat is tried again `every_s` later)."""
    tried = time.monotonic()
    while not done.wait(max(0.0, max(claim.last_beat, tried) + every_s - time.monotonic())):
        if time.monotonic() >= max(claim.last_beat, tried) + every_s:
            tried = time.monotonic()
            claim.beat()


def hand_over(
    app: Celery, settings: Settings, job_id: str, attempt: int, step: Step, tenant_id: str | None = None
) -> None:
    """The current step is recorded; send the next one (recorded first, so a crash in between is caught by the
    reconciler as a silent dispatch). With tenant_id (training handing over to evaluation), the training slot
    this job held goes to the tenant's next waiting job in the same transaction."""
    with session_scope(settings.sqlalchemy_url) as session:
        recorded = mark_dispatched(session=session, job_id=job_id, step=step, attempt=attempt)
        admitted = (
            []
            if tenant_id is None
            else [
                (job.id, job.dispatch_attempt)
                for job in admit_waiting_jobs(
                    session=session, tenant_id=tenant_id, limit=settings.max_active_jobs_per_tenant
                )
            ]
        )
    if recorded:
        send_step(app, step=step, job_id=job_id, attempt=attempt)
    for admitted_id, admitted_attempt in admitted:
        send_step(app, step=Step.TRAIN, job_id=admitted_id, attempt=admitted_attempt)


def admit(app: Celery, settings: Settings, tenant_id: str, screened_job_id: str | None = None) -> int:
    """Send training messages for the tenant's waiting jobs, as many as its fair share allows (the service's
    max_active_jobs_per_tenant, lowered by the tenant's max_concurrent_jobs quota). `screened_job_id`, a job
    that just passed screening, is first marked waiting in the same transaction."""
    with session_scope(settings.sqlalchemy_url) as session:
        if screened_job_id is not None:
            mark_waiting(session=session, job_id=screened_job_id, from_step=Step.SCREEN)
        admitted = [
            (job.id, job.dispatch_attempt)
            for job in admit_waiting_jobs(
                session=session, tenant_id=tenant_id, limit=settings.max_active_jobs_per_tenant
            )
        ]
    for job_id, attempt in admitted:
        send_step(app, step=Step.TRAIN, job_id=job_id, attempt=attempt)
    return len(admitted)


@dataclass(frozen=True)
class ReconcileReport:
    admitted: int
    redispatched: list[tuple[str, str, int]]  # (job id, step, new attempt)


def reconcile(app: Celery, settings: Settings, now: float | None = None) -> ReconcileReport:
    """Bring the broker back in line with the database. Idempotent: running it twice, or on two beat hosts at
    once, re-dispatches each silent job once (compare-and-set on its attempt), and a superseded message is
    dropped by the worker that receives it."""
    now = time.time() if now is None else now
    with session_scope(settings.sqlalchemy_url) as session:
        tenants = tenants_with_waiting_jobs(session=session)
    admitted = sum(admit(app, settings, tenant_id) for tenant_id in tenants)
    with session_scope(settings.sqlalchemy_url) as session:
        silent = silent_jobs(session=session, older_than=now - settings.stale_after_s)
    if not silent:
        return ReconcileReport(admitted, [])
    waiting = queued_job_ids(app)
    redispatched = []
    for candidate in silent:
        if candidate.id in waiting:  # its message waits its turn on a queue
            continue
        with session_scope(settings.sqlalchemy_url) as session:
            job = lock_job(session=session, job_id=candidate.id)
            if job is None:
                continue
            step = next_step(job)
            silent_for = now - max(job.created_at, job.dispatched_at or 0, job.heartbeat_at or 0)
            if (
                step is None
                or silent_for < settings.stale_after_s
                or not bump_attempt(session=session, job=job, dispatched=True)
            ):
                continue
            add_event(
                session=session,
                job_id=job.id,
                level="warn",
                message=f"Re-dispatched the {step} step (attempt {job.dispatch_attempt}): no sign of "
                f"life for {silent_for:.0f}s.",
            )
            attempt = job.dispatch_attempt
        send_step(app, step=step, job_id=candidate.id, attempt=attempt)
        redispatched.append((candidate.id, step, attempt))
    if redispatched:
        log.warning("reconciler re-dispatched %d silent jobs: %s", len(redispatched), redispatched)
    return ReconcileReport(admitted, redispatched)
