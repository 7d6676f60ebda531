"""The screen step: a job's training file against the job's screening policy, after validation and before any
GPU time. The job stays `queued` (its step is "screen"); then it waits for a fair-share slot, or fails with
`error.code = "training_data_blocked"` (param `training_file`), a message naming the categories, counts and first
lines, and an error event. Flagged rows under the thresholds (or any, in the policy's "flag" mode), and rows that
pair a candidate backdoor trigger with compliance (unless `trigger_mining` is "block"), let it go on with a warning
event. The summary is kept on the job (`screening`, shown as `safety.screening`), trigger candidates included.

The train step never screens: it reads the stored result (`screened`). A job that has none (paused during its screen
step, then resumed: resume puts it in line for training) is sent back to its screen step, so no path reaches
training unscreened.

The dry run of the same screen (`POST /v1/files/{id}/screen`) runs here too, on the cpu queue: the API process
imports no workers code. Its report is written to the artifact store under a key of the file and the policy, where
the API waits for it. The logic is `workers.screening.logic`, so a dry run and a job always agree. No torch.

What this writes on the job goes through the models of `schemas/`: `ScreeningSummary` (the `screening` column),
`JobError` and `SafetyReport` (a blocked job's `error` and `safety`).
"""

import logging
from typing import Any

from schemas.job_status import LIVE_STATUSES, JobStatus
from schemas.jobs import JobError, SafetyReport
from schemas.policy import Policy, ScreeningPolicy
from schemas.screening import HARM_CATEGORIES, ScreeningSummary
from service.settings import Settings
from service.state import lifecycle
from service.state.db import read_scope, session_scope
from service.state.files import get_file
from service.state.jobs import add_event, get_job, lock_job
from service.state.models import now_s
from service.storage import artifact_store
from workers.metrics import record_screening_flags
from workers.screening.logic import (
    BLOCK_CODE,
    Outcome,
    Tally,
    block_message,
    findings,
    flag_reason,
    report,
    screen_file,
    summary,
)

log = logging.getLogger(__name__)
KNOWN_CATEGORIES = frozenset(HARM_CATEGORIES)


def dry_run(
    settings: Settings, file_id: str, storage_key: str, policy: dict[str, Any], policy_version: int, report_key: str
) -> None:
    """Screen a stored file under a tenant's screening policy and store the `file.screening` report at
    `report_key` (written whole or not at all: the API waits for the key to appear)."""
    screening_policy = ScreeningPolicy.model_validate(policy)
    store = artifact_store(settings)
    with store.open(storage_key) as handle:
        tally, outcome = screen_file(handle, screening_policy)
    body = (
        report(
            file_id=file_id,
            created_at=now_s(),
            policy=screening_policy,
            policy_version=policy_version,
            tally=tally,
            outcome=outcome,
        )
        .model_dump_json()
        .encode()
    )
    store.put_stream(report_key, [body])


def screen(job_id: str, settings: Settings) -> bool:
    """The screen step. True when the job may go on to training. A job screened before keeps its first result (a
    redelivered message never screens twice nor counts its flags twice)."""
    try:
        return _screen(job_id, settings)
    except Exception as exc:
        log.exception("screening %s failed", job_id)
        _fail(
            settings,
            job_id,
            JobError(code="internal_error", message=f"The screen step failed: {type(exc).__name__}: {exc}"),
        )
        return False


def screened(job_id: str, settings: Settings) -> bool | None:
    """The train step's check, read from the job's stored result (never a second screening): True when it may
    train, False when screening blocked it or the job is no longer live, None when a queued job was never
    screened. A running job has passed it (training starts only after it), or ran before screening existed."""
    with read_scope(settings.sqlalchemy_url) as session:  # one SELECT, no transaction around it
        job = get_job(session=session, job_id=job_id)
        if job is None or job.status not in LIVE_STATUSES:
            return False
        if job.screening is None:
            return None if job.status == JobStatus.QUEUED else True
        return _allows(job.screening)


def _allows(stored: dict[str, Any]) -> bool:
    """Whether a job's stored `screening` lets it train."""
    return ScreeningSummary.model_validate(stored).decision != "block"


def _screen(job_id: str, settings: Settings) -> bool:
    with session_scope(settings.sqlalchemy_url) as session:
        job = get_job(session=session, job_id=job_id)
        if job is None or job.status not in LIVE_STATUSES:
            return False
        if job.screening is not None:
            return _allows(job.screening)
        policy = Policy.model_validate(job.policy).screening
        training = get_file(session=session, tenant_id=job.tenant_id, file_id=job.training_file)
        key = training.storage_key if training is not None else None
    if not policy.enabled:
        return _record_skipped(settings, job_id)
    if key is None:
        _fail(
            settings,
            job_id,
            JobError(
                code="file_not_found",
                param="training_file",
                message=f"File '{job.training_file}' was deleted before training.",
            ),
        )
        return False
    with artifact_store(settings).open(key) as handle:
        tally, outcome = screen_file(handle, policy)
    return _record(settings, job_id, job.training_file, tally, outcome)


def _record_skipped(settings: Settings, job_id: str) -> bool:
    with session_scope(settings.sqlalchemy_url) as session:
        row = lock_job(session=session, job_id=job_id)
        if row is None or row.status not in LIVE_STATUSES:
            return False
        if row.screening is None:
            row.screening = ScreeningSummary(decision="skipped").model_dump()
            add_event(
                session=session,
                job_id=job_id,
                level="warn",
                message="Training data was not screened: screening is off in this job's policy.",
            )
    return True


def _record(settings: Settings, job_id: str, file_id: str, tally: Tally, outcome: Outcome) -> bool:
    """Store the summary and the outcome once (under the row lock), then count the flags."""
    kept = summary(tally, outcome)
    with session_scope(settings.sqlalchemy_url) as session:
        row = lock_job(session=session, job_id=job_id)
        if row is None or row.status not in LIVE_STATUSES:
            return False
        if row.screening is not None:  # another attempt recorded first
            return _allows(row.screening)
        if outcome.decision == "block":
            message = block_message(tally, outcome, file_id)
            error = JobError(code=BLOCK_CODE, message=message, param="training_file")
            safety = SafetyReport(decision="blocked", reasons=[message])
            lifecycle.fail(session=session, job_id=job_id, error=error, screening=kept, safety=safety)
            add_event(
                session=session, job_id=job_id, level="error", message=message, type_="metrics", data=_event_data(kept)
            )
        else:
            row.screening = kept.model_dump()
            add_event(session=session, job_id=job_id, **_passed_event(tally, outcome))
    record_screening_flags((c for c, n in tally.counts.items() for _ in range(n)), KNOWN_CATEGORIES)
    return outcome.decision != "block"


def _event_data(kept: ScreeningSummary) -> dict[str, Any]:
    """What a screening event's data carries of the summary."""
    return {"screening": kept.model_dump(include={"decision", "rows", "flagged_rows", "counts", "lines"})}


def _passed_event(tally: Tally, outcome: Outcome) -> dict[str, Any]:
    if outcome.decision == "flag":
        why = flag_reason(tally, outcome)
        return {
            "level": "warn",
            "message": f"Data screening flagged training data: {findings(tally)}; {why}. "
            "Training goes on; the release gate still judges the result.",
            "type_": "metrics",
            "data": _event_data(summary(tally, outcome)),
        }
    kept = f"; {tally.refused_rows} refuse a harmful request (safety data)" if tally.refused_rows else ""
    return {
        "level": "info",
        "message": f"Data screening: none of the {tally.rows} rows asks for harmful content and gets it{kept}.",
    }


def _fail(settings: Settings, job_id: str, error: JobError) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        if lifecycle.fail(session=session, job_id=job_id, error=error):
            add_event(session=session, job_id=job_id, level="error", message=error.message)
