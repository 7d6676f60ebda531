"""Job creation and presentation: checks a tenant's request against its files, models and policy."""

import hashlib
import json
import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.admin import AdminJob
from schemas.job_status import TERMINAL_STATUSES, JobStatus
from schemas.jobs import (
    HyperparameterOutOfRange,
    Hyperparameters,
    Job,
    JobCreate,
    JobEvent,
    Method,
    check_hyperparameters,
)
from schemas.policy import Policy
from service.errors import Conflict, InvalidInput, KeyReused, NotFound
from service.ids import new_id
from service.policies import effective_policy
from service.quotas import check_job_quotas
from service.state import lifecycle
from service.state.base_models import get_base_model
from service.state.files import get_file
from service.state.jobs import add_event, add_idempotency_key, add_job, get_idempotency_key, get_job
from service.state.models import JobEventRow, JobRow
from service.state.tenants import get_tenant


def _check_caps(hp: Hyperparameters, policy: Policy, rows: int | None) -> None:
    """The policy's per-field caps and the update budget on the training file's rows (counted at upload; 0 for
    a file stored before rows were counted: then the large-file limit, and the worker checks the real count)."""
    try:
        check_hyperparameters(hp, policy.training, rows or None)
    except HyperparameterOutOfRange as exc:
        raise InvalidInput(exc.message, param=exc.param, code="hyperparameter_out_of_range") from None


def create_job(
    *, session: Session, tenant_id: str, request: JobCreate, policy: Policy, policy_version: int = 0
) -> JobRow:
    if get_base_model(session=session, model_id=request.model) is None:
        raise InvalidInput(
            f"Model '{request.model}' is not available for fine-tuning; list them with GET /v1/models.",
            param="model",
            code="model_not_available",
        )
    training_rows = None
    for param, file_id in (("training_file", request.training_file), ("validation_file", request.validation_file)):
        if file_id is None:
            continue
        if (stored := get_file(session=session, tenant_id=tenant_id, file_id=file_id)) is None:
            raise InvalidInput(f"File '{file_id}' does not exist.", param=param, code="file_not_found")
        if param == "training_file":
            training_rows = stored.rows
    try:
        hp = request.effective_hyperparameters()
    except ValueError as exc:
        raise InvalidInput(str(exc), param="hyperparameters", code="invalid_hyperparameters") from None
    _check_caps(hp, policy, training_rows)
    method = request.method or Method()
    method.supervised.hyperparameters = hp
    row = JobRow(
        id=new_id("ftjob"),
        tenant_id=tenant_id,
        model=request.model,
        training_file=request.training_file,
        validation_file=request.validation_file,
        hyperparameters=hp.model_dump(),
        method=method.model_dump(),
        suffix=request.suffix,
        seed=request.seed if request.seed is not None else secrets.randbelow(2**31),
        metadata_=request.metadata,
        status=JobStatus.VALIDATING_FILES,
        policy=policy.model_dump(),
        policy_version=policy_version,
        result_files=[],
    )
    add_job(session=session, row=row)
    add_event(session=session, job_id=row.id, message=f"Created fine-tuning job: {row.id}")
    return row


def request_hash(request: JobCreate) -> str:
    """Digest of the request as parsed, so key order and explicit nulls do not make two bodies differ."""
    canonical = json.dumps(request.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _replay(session: Session, tenant_id: str, key: str, digest: str) -> JobRow | None:
    stored = get_idempotency_key(session=session, tenant_id=tenant_id, key=key)
    if stored is None:
        return None
    if stored.request_hash != digest:
        raise KeyReused(
            f"Idempotency-Key '{key}' was already used for a different request body; send a new key for a new job.",
            param="idempotency-key",
            code="idempotency_key_reused",
        )
    return get_job(session=session, job_id=stored.job_id, tenant_id=tenant_id)


def submit_job(
    *, session: Session, tenant_id: str, request: JobCreate, idempotency_key: str | None = None
) -> tuple[JobRow, bool]:
    """Checks quotas, applies the effective policy, creates and commits the job. Returns (job, created):
    a repeated Idempotency-Key with the same body returns the first job and created=False.

    The tenant row is locked while this runs (PostgreSQL), so quota checks and key look-ups are serialised
    per tenant; the unique (tenant, key) index still settles any duplicate that slips past the look-up."""
    digest = request_hash(request) if idempotency_key else ""
    tenant = get_tenant(session=session, tenant_id=tenant_id, lock=True)
    if tenant is None:
        raise NotFound("organization", tenant_id)
    if idempotency_key and (replayed := _replay(session, tenant_id, idempotency_key, digest)):
        return replayed, False
    check_job_quotas(session=session, tenant=tenant)
    policy = effective_policy(session=session, tenant_id=tenant_id)
    try:
        row = create_job(
            session=session,
            tenant_id=tenant_id,
            request=request,
            policy=policy.policy.for_model(request.model),
            policy_version=policy.version,
        )
        if idempotency_key:
            add_idempotency_key(
                session=session, tenant_id=tenant_id, key=idempotency_key, request_hash=digest, job_id=row.id
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        if idempotency_key and (replayed := _replay(session, tenant_id, idempotency_key, digest)):
            return replayed, False
        raise
    return row, True


def get_job_or_404(row: JobRow | None, job_id: str) -> JobRow:
    if row is None:
        raise NotFound("fine-tuning job", job_id, param="fine_tuning_job_id")
    return row


def _safety(row: JobRow) -> dict[str, Any] | None:
    """The gate's summary with the screen step's summary inside (the two are stored apart: the gate writes
    `safety` whole)."""
    if not row.safety and not row.screening:
        return None
    return {**(row.safety or {}), "screening": row.screening}


def to_job_object(row: JobRow) -> Job:
    """The API's job object. Built from one dict in one validation call: pydantic-core validates the nested
    objects itself instead of four constructors in Python, which is faster (docs/benchmarks.md, bench.api)."""
    return Job.model_validate(
        {
            "id": row.id,
            "created_at": row.created_at,
            "model": row.model,
            "organization_id": row.tenant_id,
            "status": row.status,
            "training_file": row.training_file,
            "validation_file": row.validation_file,
            "hyperparameters": row.hyperparameters,
            "result_files": row.result_files or [],
            "seed": row.seed,
            "fine_tuned_model": row.fine_tuned_model,
            "finished_at": row.finished_at,
            "trained_tokens": row.trained_tokens,
            "error": row.error or None,
            "metadata": row.metadata_,
            "method": row.method,
            "user_provided_suffix": row.suffix,
            "safety": _safety(row),
        }
    )


def to_admin_job_object(row: JobRow) -> AdminJob:
    return AdminJob(**to_job_object(row).model_dump(), policy_version=row.policy_version)


def event_id(seq: int) -> str:
    return f"ftevent-{seq}"


def parse_event_id(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.removeprefix("ftevent-"))
    except ValueError:
        raise InvalidInput(f"Invalid cursor '{value}'.", param="after", code="invalid_cursor") from None


def to_event_object(row: JobEventRow) -> JobEvent:
    return JobEvent(
        id=event_id(row.seq),
        created_at=row.created_at,
        level=row.level,  # type: ignore[arg-type]
        message=row.message,
        type=row.type,
        data=row.data,
    )  # type: ignore[arg-type]


def cancel_job(*, session: Session, tenant_id: str, job_id: str) -> JobRow:
    """Any unfinished job -> cancelled; its worker step stops at its next check. A finished job is a 409 (one
    that finishes while this runs is returned as it finished). The route's session commits."""
    row = get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant_id), job_id)
    if row.status in TERMINAL_STATUSES:
        raise Conflict(f"Job {job_id} has already {row.status}; it cannot be cancelled.", code="job_already_finished")
    if lifecycle.cancel(session=session, job_id=job_id):
        add_event(session=session, job_id=job_id, message="Job cancelled by the tenant.")
    session.refresh(row)
    return row


def pause_job(*, session: Session, tenant_id: str, job_id: str) -> JobRow:
    """queued|running -> paused. Supersedes every message out for the job (the attempt is bumped), and the
    training loop stops at its next step; checkpoints are kept, so resume continues from the latest one."""
    row = get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant_id), job_id)
    if row.status == JobStatus.PAUSED:
        return row
    if row.status not in lifecycle.PAUSE.sources or not lifecycle.pause(session=session, job_id=job_id):
        raise Conflict(
            f"Job {job_id} is {row.status}; only queued or running jobs can be paused.", code="job_not_pausable"
        )
    add_event(
        session=session, job_id=job_id, message="Job paused by the tenant; resume continues from the latest checkpoint."
    )
    session.commit()
    session.refresh(row)
    return row


def resume_job(*, session: Session, tenant_id: str, job_id: str) -> JobRow:
    """paused -> queued, waiting for a fair-share slot. The caller sends `service.dispatch.enqueue_reconcile`
    after this returns so it is admitted at once (else the next reconciler run admits it)."""
    row = get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant_id), job_id)
    if row.status not in lifecycle.RESUME.sources:
        if row.status in lifecycle.PAUSE.sources:
            return row
        raise Conflict(f"Job {job_id} is {row.status}; only paused jobs can be resumed.", code="job_not_paused")
    if lifecycle.resume(session=session, job_id=job_id):
        add_event(session=session, job_id=job_id, message="Job resumed by the tenant.")
    session.commit()
    session.refresh(row)
    return row
