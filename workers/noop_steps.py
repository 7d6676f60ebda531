"""The no-op trainer (GFT_TRAINER=noop): train and evaluate steps that do no model work, so orchestration
(queues, heartbeats, the reconciler, fair share) can be tested and benchmarked on its own. Settings refuse it
in production: a job it releases was neither trained nor evaluated, and says so in its events and safety."""

import time

from schemas.job_status import JobStatus
from schemas.jobs import SafetyReport
from service.settings import Settings
from service.state import lifecycle
from service.state.db import session_scope
from service.state.jobs import add_event, fine_tuned_model_name, get_job, record_adapter
from workers.metrics import record_state_exit

NOOP_ADAPTER_KEY = "noop"


def train(job_id: str, settings: Settings) -> bool:
    """queued -> running -> (noop_train_seconds) -> adapter recorded. True when evaluation should follow."""
    with session_scope(settings.sqlalchemy_url) as session:
        job = get_job(session=session, job_id=job_id)
        if job is None or job.status not in {JobStatus.QUEUED, JobStatus.RUNNING}:
            return False
        if job.status == JobStatus.QUEUED:
            if lifecycle.start(session=session, job_id=job_id):
                record_state_exit(JobStatus.QUEUED, time.time() - job.updated_at)
            add_event(session=session, job_id=job_id, message="Fine-tuning job started (no-op trainer).")
        if job.adapter_key is not None:
            return True
        if not settings.noop_train_seconds:
            return record_adapter(session=session, job_id=job_id, adapter_key=NOOP_ADAPTER_KEY, trained_tokens=0)
    time.sleep(settings.noop_train_seconds)
    with session_scope(settings.sqlalchemy_url) as session:
        if not record_adapter(session=session, job_id=job_id, adapter_key=NOOP_ADAPTER_KEY, trained_tokens=0):
            return False  # cancelled or paused meanwhile
    return True


def evaluate(job_id: str, settings: Settings) -> None:
    """running -> succeeded, once: the compare-and-set on the status is the only way to release."""
    with session_scope(settings.sqlalchemy_url) as session:
        job = get_job(session=session, job_id=job_id)
        if job is None or job.status != JobStatus.RUNNING or not job.adapter_key:
            return
        name = fine_tuned_model_name(job)
        safety = SafetyReport(
            decision="released", reasons=["no-op trainer (a test setting): not trained, not evaluated"]
        )
        if lifecycle.release(session=session, job_id=job_id, fine_tuned_model=name, safety=safety):
            add_event(session=session, job_id=job_id, message=f"Released {name} (no-op trainer).")
