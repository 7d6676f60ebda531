"""The job lifecycle: the table of allowed status changes, and the named moves that make them.

Every change of a job's status the service or the workers make is one of these moves. Each is one
compare-and-set on the status (service.state.jobs.transition): of two processes racing on one job (a tenant's
cancel and a worker's step, two admins' decisions) one wins, and a move tried from a status outside its sources
changes nothing and returns False. A new job starts as validating_files; that is a new row, not a move.

    move          from                                          to          why
    queue         validating_files                              queued      files and base model checked
    start         queued                                        running     its train step began
    pause         queued, running                               paused      the tenant paused it
    resume        paused                                        queued      the tenant resumed it
    cancel        validating_files, queued, running, paused,    cancelled   the tenant cancelled it
                  held
    fail          validating_files, queued, running             failed      a step failed, or screening blocked
    block         running                                       failed      the release gate blocked the adapter
    hold          running                                       held        the gate passed it; an admin reviews
    release       running                                       succeeded   the gate passed it
    release_held  held                                          succeeded   an admin released it after review
    reject        held                                          failed      an admin rejected it in review
    override      failed                                        succeeded   an admin published what the gate blocked

succeeded and cancelled are final; failed is final for the tenant, but an admin may override a gate block.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from schemas.job_status import LIVE_STATUSES, UNFINISHED_STATUSES, JobStatus, Step
from schemas.jobs import JobError, SafetyReport
from schemas.screening import ScreeningSummary
from service.state.jobs import transition
from service.state.models import JobRow


@dataclass(frozen=True)
class Move:
    """One named change of status: from any of `sources` to `target`."""

    name: str
    sources: frozenset[JobStatus]
    target: JobStatus


def _move(name: str, sources: Iterable[JobStatus], target: JobStatus) -> Move:
    return Move(name, frozenset(sources), target)


QUEUE = _move("queue", {JobStatus.VALIDATING_FILES}, JobStatus.QUEUED)
START = _move("start", {JobStatus.QUEUED}, JobStatus.RUNNING)
PAUSE = _move("pause", {JobStatus.QUEUED, JobStatus.RUNNING}, JobStatus.PAUSED)
RESUME = _move("resume", {JobStatus.PAUSED}, JobStatus.QUEUED)
CANCEL = _move("cancel", UNFINISHED_STATUSES, JobStatus.CANCELLED)
FAIL = _move("fail", LIVE_STATUSES, JobStatus.FAILED)
BLOCK = _move("block", {JobStatus.RUNNING}, JobStatus.FAILED)
HOLD = _move("hold", {JobStatus.RUNNING}, JobStatus.HELD)
RELEASE = _move("release", {JobStatus.RUNNING}, JobStatus.SUCCEEDED)
RELEASE_HELD = _move("release_held", {JobStatus.HELD}, JobStatus.SUCCEEDED)
REJECT = _move("reject", {JobStatus.HELD}, JobStatus.FAILED)
OVERRIDE = _move("override", {JobStatus.FAILED}, JobStatus.SUCCEEDED)
MOVES: tuple[Move, ...] = (
    QUEUE,
    START,
    PAUSE,
    RESUME,
    CANCEL,
    FAIL,
    BLOCK,
    HOLD,
    RELEASE,
    RELEASE_HELD,
    REJECT,
    OVERRIDE,
)

# The table of allowed transitions, from the moves: each status and the statuses a move may take it to.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    status: frozenset(m.target for m in MOVES if status in m.sources) for status in JobStatus
}


def allowed(source: JobStatus, target: JobStatus) -> bool:
    """Whether some move takes a job from `source` to `target`."""
    return target in TRANSITIONS[source]


def apply(*, session: Session, job_id: str, move: Move, **fields: Any) -> bool:
    """Make `move` (with the columns it records) if the job is in one of its sources. The named functions below
    are what callers use; this is their one path to the database."""
    return transition(session=session, job_id=job_id, from_statuses=move.sources, to_status=move.target, **fields)


def _superseding() -> dict[str, Any]:
    """Columns that supersede every message out for the job: a stale step drops itself, a running one stops."""
    return {"dispatch_attempt": JobRow.dispatch_attempt + 1, "dispatched_at": None, "heartbeat_at": None}


def _given(**fields: dict[str, Any] | None) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def queue(*, session: Session, job_id: str) -> bool:
    return apply(session=session, job_id=job_id, move=QUEUE)


def start(*, session: Session, job_id: str) -> bool:
    return apply(session=session, job_id=job_id, move=START)


def pause(*, session: Session, job_id: str) -> bool:
    """Training stops at its next step; checkpoints are kept, so resume continues from the latest one."""
    return apply(session=session, job_id=job_id, move=PAUSE, **_superseding())


def resume(*, session: Session, job_id: str) -> bool:
    """The job waits for a fair-share training slot (step train, no message out). A job paused before its screen
    step finished is sent back to that step by its train step."""
    return apply(session=session, job_id=job_id, move=RESUME, step=Step.TRAIN, **_superseding())


def cancel(*, session: Session, job_id: str) -> bool:
    return apply(session=session, job_id=job_id, move=CANCEL)


def fail(
    *,
    session: Session,
    job_id: str,
    error: JobError,
    screening: ScreeningSummary | None = None,
    safety: SafetyReport | None = None,
) -> bool:
    """A step failed (or screening blocked the data: then its summary and the block are kept too)."""
    return apply(
        session=session,
        job_id=job_id,
        move=FAIL,
        error=error.model_dump(),
        **_given(
            screening=screening.model_dump() if screening is not None else None,
            safety=safety.stored() if safety is not None else None,
        ),
    )


def block(*, session: Session, job_id: str, error: JobError, safety: SafetyReport) -> bool:
    return apply(session=session, job_id=job_id, move=BLOCK, error=error.model_dump(), safety=safety.stored())


def hold(*, session: Session, job_id: str, safety: SafetyReport) -> bool:
    return apply(session=session, job_id=job_id, move=HOLD, safety=safety.stored())


def release(*, session: Session, job_id: str, fine_tuned_model: str, safety: SafetyReport) -> bool:
    return apply(
        session=session,
        job_id=job_id,
        move=RELEASE,
        fine_tuned_model=fine_tuned_model,
        safety=safety.stored(),
        result_files=[],
    )


def release_held(*, session: Session, job_id: str, fine_tuned_model: str, safety: SafetyReport) -> bool:
    return apply(
        session=session, job_id=job_id, move=RELEASE_HELD, fine_tuned_model=fine_tuned_model, safety=safety.stored()
    )


def reject(*, session: Session, job_id: str, error: JobError, safety: SafetyReport) -> bool:
    return apply(session=session, job_id=job_id, move=REJECT, error=error.model_dump(), safety=safety.stored())


def override(*, session: Session, job_id: str, fine_tuned_model: str, safety: SafetyReport) -> bool:
    """The gate's error is cleared; the block's reasons stay in `safety`, next to the admin's."""
    return apply(
        session=session,
        job_id=job_id,
        move=OVERRIDE,
        fine_tuned_model=fine_tuned_model,
        error=None,
        result_files=[],
        safety=safety.stored(),
    )
