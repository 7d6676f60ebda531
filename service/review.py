"""Admin review of held jobs: release publishes the adapter, reject fails the job with the admin's reason."""

from typing import Any

from sqlalchemy.orm import Session

from service.api.errors import ApiError, not_found
from service.state.jobs import HELD_STATUS, add_event, fine_tuned_model_name, get_job, transition
from service.state.models import JobRow


def _held_job(session: Session, job_id: str) -> JobRow:
    row = get_job(session=session, job_id=job_id)
    if row is None:
        raise not_found("fine-tuning job", job_id, param="job_id")
    if row.status != HELD_STATUS:
        raise ApiError(409, f"Job {job_id} is {row.status}, not held for review; only held jobs can be released "
                       "or rejected.", code="job_not_held", retryable=False)
    return row


def _decided(row: JobRow, decision: str, note: str) -> dict[str, Any]:
    safety = dict(row.safety or {})
    safety["decision"] = decision
    safety["reasons"] = [*safety.get("reasons", []), note]
    return safety


def _lost_race(job_id: str) -> ApiError:
    return ApiError(409, f"Job {job_id} changed state while it was being reviewed; it is no longer held.",
                    code="job_not_held", retryable=False)


def release_held_job(*, session: Session, job_id: str, reason: str | None) -> JobRow:
    row = _held_job(session, job_id)
    if not row.adapter_key:
        raise ApiError(409, f"Job {job_id} has no trained adapter to release.", code="no_adapter", retryable=False)
    name = fine_tuned_model_name(row)
    note = "Released by an admin after review" + (f": {reason}" if reason else ".")
    if not transition(session=session, job_id=job_id, from_statuses={HELD_STATUS}, to_status="succeeded",
                      fine_tuned_model=name, safety=_decided(row, "released", note)):
        raise _lost_race(job_id)
    add_event(session=session, job_id=job_id, message=f"Released {name}: {note}")
    session.refresh(row)
    return row


def reject_held_job(*, session: Session, job_id: str, reason: str) -> JobRow:
    row = _held_job(session, job_id)
    message = f"Rejected in safety review: {reason}"
    error = {"code": "safety_review_rejected", "message": message, "param": None}
    if not transition(session=session, job_id=job_id, from_statuses={HELD_STATUS}, to_status="failed", error=error,
                      safety=_decided(row, "blocked", message)):
        raise _lost_race(job_id)
    add_event(session=session, job_id=job_id, level="error", message=message)
    session.refresh(row)
    return row
