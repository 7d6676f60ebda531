"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events, checkpoints, adapter, safety report."""

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Header, Query, Response
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from schemas.common import ListPage
from schemas.jobs import CheckpointMetrics, Job, JobCheckpoint, JobCreate, JobEvent
from service.adapters import released_adapter
from service.api.deps import CurrentTenant, SessionDep, SettingsDep, StoreDep
from service.api.errors import ApiError
from service.api.hot_reads import read_as_caller
from service.dispatch import enqueue_reconcile, enqueue_validation
from service.job_documents import stored_safety
from service.jobs import (
    cancel_job,
    get_job_or_404,
    parse_event_id,
    pause_job,
    resume_job,
    submit_job,
    to_event_object,
    to_job_object,
)
from service.state.checkpoints import list_checkpoints
from service.state.jobs import get_job, list_events, list_jobs
from service.state.models import TenantRow

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])
JobPage = ListPage[Job]


@router.post("", response_model=Job)
def create(
    request: JobCreate,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Job:
    """Create a job; it is committed before it is enqueued, so a lost message never loses the job. A repeated
    Idempotency-Key with the same body returns the first job (marked `idempotent-replayed: true`)."""
    row, created = submit_job(session=session, tenant_id=tenant.id, request=request, idempotency_key=idempotency_key)
    if created:
        enqueue_validation(broker_url=settings.broker_url, job_id=row.id)
    else:
        response.headers["idempotent-replayed"] = "true"
    return to_job_object(row)


@router.get("", response_model=JobPage)
async def list_(
    settings: SettingsDep,
    response: Response,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    authorization: Annotated[str | None, Header()] = None,
) -> JobPage:
    def page(session: Session, tenant: TenantRow) -> JobPage:
        rows, has_more = list_jobs(session=session, tenant_id=tenant.id, after=after, limit=limit)
        return JobPage(data=[to_job_object(r) for r in rows], has_more=has_more)

    return await read_as_caller(settings, response, authorization, page)


@router.get("/{job_id}", response_model=Job)
async def retrieve(
    job_id: str, settings: SettingsDep, response: Response, authorization: Annotated[str | None, Header()] = None
) -> Job:
    def job(session: Session, tenant: TenantRow) -> Job:
        return to_job_object(get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id))

    return await read_as_caller(settings, response, authorization, job)


@router.post("/{job_id}/cancel", response_model=Job)
def cancel(job_id: str, tenant: CurrentTenant, session: SessionDep) -> Job:
    """Cancel a job that has not finished; the worker stops at its next step."""
    return to_job_object(cancel_job(session=session, tenant_id=tenant.id, job_id=job_id))


@router.get("/{job_id}/events", response_model=ListPage[JobEvent])
def events(
    job_id: str,
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> ListPage[JobEvent]:
    get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id)
    rows, has_more = list_events(session=session, job_id=job_id, after_seq=parse_event_id(after), limit=limit)
    return ListPage[JobEvent](data=[to_event_object(r) for r in rows], has_more=has_more)


@router.get("/{job_id}/checkpoints", response_model=ListPage[JobCheckpoint])
def checkpoints(
    job_id: str,
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ListPage[JobCheckpoint]:
    get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id)
    rows, has_more = list_checkpoints(session=session, job_id=job_id, after=after, limit=limit)
    data = [
        JobCheckpoint(
            id=r.id,
            created_at=r.created_at,
            fine_tuning_job_id=job_id,
            step_number=r.step,
            metrics=CheckpointMetrics.model_validate(r.metrics),
        )
        for r in rows
    ]
    return ListPage[JobCheckpoint](data=data, has_more=has_more)


@router.post("/{job_id}/pause", response_model=Job)
def pause(job_id: str, tenant: CurrentTenant, session: SessionDep) -> Job:
    """Pause a queued or running job; training stops at its next step and keeps its checkpoints."""
    return to_job_object(pause_job(session=session, tenant_id=tenant.id, job_id=job_id))


@router.post("/{job_id}/resume", response_model=Job)
def resume(job_id: str, tenant: CurrentTenant, session: SessionDep, settings: SettingsDep) -> Job:
    """Resume a paused job from its latest checkpoint; it queues for a training slot."""
    row = resume_job(session=session, tenant_id=tenant.id, job_id=job_id)
    enqueue_reconcile(broker_url=settings.broker_url)
    return to_job_object(row)


@router.get(
    "/{job_id}/adapter",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/x-tar": {}},
            "description": "the released peft adapter folder as a tar; `x-content-sha256` is the SHA-256 of the body",
        }
    },
)
def adapter(
    job_id: str, tenant: CurrentTenant, session: SessionDep, store: StoreDep, background: BackgroundTasks
) -> FileResponse:
    """The released adapter (a tar of the peft folder); 404 unless the job passed the gate and was released."""
    archive = released_adapter(session=session, store=store, tenant_id=tenant.id, job_id=job_id)
    background.add_task(archive.path.unlink, missing_ok=True)
    return FileResponse(
        archive.path,
        media_type="application/x-tar",
        filename=archive.filename,
        headers={"x-content-sha256": archive.sha256},
    )


@router.get("/{job_id}/safety_report", response_model=None)
def safety_report(
    job_id: str,
    tenant: CurrentTenant,
    session: SessionDep,
    store: StoreDep,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Response:
    """The release gate's full report for this job: JSON, or a self-contained HTML page with plots."""
    row = get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id)
    key = safety.report_key if (safety := stored_safety(row)) else None
    if format == "html" and key:
        key = key.removesuffix(".json") + ".html"
    if not key or not store.exists(key):
        raise ApiError(
            404,
            f"Job {job_id} has no safety report yet (status: {row.status}); the gate writes it after training.",
            param="job_id",
            code="safety_report_not_found",
            retryable=False,
        )
    with store.open(key) as handle:
        body = handle.read()
    media = "text/html; charset=utf-8" if format == "html" else "application/json"
    return Response(content=body, media_type=media)
