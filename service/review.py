"""Admin decisions on gated jobs: release publishes a held adapter, reject fails a held job with the admin's
reason, override publishes an adapter the gate blocked (the block's reasons stay on the job, next to the admin's).
Each is one compare-and-set on the job's status, so concurrent decisions on one job cannot both succeed."""

from sqlalchemy.orm import Session

from schemas.job_status import JobStatus
from schemas.jobs import JobError, SafetyDecision, SafetyReport
from service.errors import Conflict, NotFound
from service.job_documents import stored_error, stored_safety
from service.state import lifecycle
from service.state.jobs import add_event, fine_tuned_model_name, get_job
from service.state.models import JobRow
from service.storage import ArtifactStore

GATE_BLOCK_CODE = "safety_regression"  # the only failure an override can lift: the adapter exists and was judged


def _held_job(session: Session, job_id: str) -> JobRow:
    row = get_job(session=session, job_id=job_id)
    if row is None:
        raise NotFound("fine-tuning job", job_id, param="job_id")
    if row.status != JobStatus.HELD:
        raise Conflict(
            f"Job {job_id} is {row.status}, not held for review; only held jobs can be released or rejected.",
            code="job_not_held",
        )
    return row


def _decided(row: JobRow, decision: SafetyDecision, note: str) -> SafetyReport:
    """The stored summary with the admin's decision, and the admin's note after the gate's reasons."""
    safety = stored_safety(row) or SafetyReport()
    return safety.model_copy(update={"decision": decision, "reasons": [*safety.reasons, note]})


def _lost_race(job_id: str) -> Conflict:
    return Conflict(
        f"Job {job_id} changed state while it was being reviewed; it is no longer held.", code="job_not_held"
    )


def release_held_job(*, session: Session, job_id: str, reason: str | None) -> JobRow:
    row = _held_job(session, job_id)
    if not row.adapter_key:
        raise Conflict(f"Job {job_id} has no trained adapter to release.", code="no_adapter")
    name = fine_tuned_model_name(row)
    note = "Released by an admin after review" + (f": {reason}" if reason else ".")
    if not lifecycle.release_held(
        session=session, job_id=job_id, fine_tuned_model=name, safety=_decided(row, "released", note)
    ):
        raise _lost_race(job_id)
    add_event(session=session, job_id=job_id, message=f"Released {name}: {note}")
    session.refresh(row)
    return row


def reject_held_job(*, session: Session, job_id: str, reason: str) -> JobRow:
    row = _held_job(session, job_id)
    message = f"Rejected in safety review: {reason}"
    error = JobError(code="safety_review_rejected", message=message)
    if not lifecycle.reject(session=session, job_id=job_id, error=error, safety=_decided(row, "blocked", message)):
        raise _lost_race(job_id)
    add_event(session=session, job_id=job_id, level="error", message=message)
    session.refresh(row)
    return row


def _blocked_job(session: Session, job_id: str) -> JobRow:
    row = get_job(session=session, job_id=job_id)
    if row is None:
        raise NotFound("fine-tuning job", job_id, param="job_id")
    code = error.code if (error := stored_error(row)) else None
    if row.status != JobStatus.FAILED or code != GATE_BLOCK_CODE:
        state = row.status + (f" with error.code {code}" if row.status == JobStatus.FAILED and code else "")
        raise Conflict(
            f"Job {job_id} is {state}; only a job the safety gate blocked (failed with error.code "
            f"{GATE_BLOCK_CODE}) can be overridden.",
            code="job_not_overridable",
        )
    return row


def override_blocked_job(
    *, session: Session, store: ArtifactStore, job_id: str, reason: str
) -> tuple[JobRow, list[str]]:
    """Publish the adapter of a job the gate blocked. The job succeeds under its fine-tuned model name with
    safety.decision "overridden"; the gate's reasons are kept and the admin's reason is added after them.
    Returns the job and the gate's reasons it overrode (for the audit log)."""
    row = _blocked_job(session, job_id)
    gate_reasons = list(safety.reasons) if (safety := stored_safety(row)) else []
    if not row.adapter_key or not store.exists(row.adapter_key):
        raise Conflict(f"Job {job_id} has no stored adapter to publish.", code="no_adapter")
    name = fine_tuned_model_name(row)
    note = f"Overridden by an admin: {reason}"
    if not lifecycle.override(
        session=session, job_id=job_id, fine_tuned_model=name, safety=_decided(row, "overridden", note)
    ):
        raise Conflict(
            f"Job {job_id} changed state while it was being overridden; it is no longer blocked.",
            code="job_not_overridable",
        )
    add_event(
        session=session,
        job_id=job_id,
        level="warn",
        message=f"Released {name} although the safety gate blocked it. {note}",
    )
    session.refresh(row)
    return row, gate_reasons
