"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, events, checkpoints."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from schemas.common import ListPage
from schemas.jobs import TERMINAL_STATUSES, CheckpointMetrics, Job, JobCheckpoint, JobCreate, JobEvent
from service.api.deps import CurrentTenant, SessionDep, SettingsDep
from service.api.errors import ApiError
from service.dispatch import enqueue_validation
from service.jobs import get_job_or_404, parse_event_id, submit_job, to_event_object, to_job_object
from service.state.checkpoints import list_checkpoints
from service.state.jobs import HELD_STATUS, add_event, get_job, list_events, list_jobs, transition

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])


@router.post("", response_model=Job)
def create(request: JobCreate, tenant: CurrentTenant, session: SessionDep, settings: SettingsDep, response: Response,
           idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None) -> Job:
    """Create a job; it is committed before it is enqueued, so a lost message never loses the job. A repeated
    Idempotency-Key with the same body returns the first job (marked `idempotent-replayed: true`)."""
    row, created = submit_job(session=session, tenant_id=tenant.id, request=request, idempotency_key=idempotency_key)
    if created:
        enqueue_validation(broker_url=settings.broker_url, job_id=row.id)
    else:
        response.headers["idempotent-replayed"] = "true"
    return to_job_object(row)


@router.get("", response_model=ListPage[Job])
def list_(tenant: CurrentTenant, session: SessionDep, after: str | None = None,
          limit: Annotated[int, Query(ge=1, le=100)] = 20) -> ListPage[Job]:
    rows, has_more = list_jobs(session=session, tenant_id=tenant.id, after=after, limit=limit)
    return ListPage[Job](data=[to_job_object(r) for r in rows], has_more=has_more)


@router.get("/{job_id}", response_model=Job)
def retrieve(job_id: str, tenant: CurrentTenant, session: SessionDep) -> Job:
    return to_job_object(get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id))


@router.post("/{job_id}/cancel", response_model=Job)
def cancel(job_id: str, tenant: CurrentTenant, session: SessionDep) -> Job:
    """Cancel a job that has not finished; the worker stops at its next step."""
    row = get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id)
    if row.status in TERMINAL_STATUSES:
        raise ApiError(409, f"Job {job_id} has already {row.status}; it cannot be cancelled.",
                       code="job_already_finished", retryable=False)
    live = {"validating_files", "queued", "running", "paused", HELD_STATUS}
    if transition(session=session, job_id=job_id, from_statuses=live, to_status="cancelled"):
        add_event(session=session, job_id=job_id, message="Job cancelled by the tenant.")
    session.refresh(row)
    return to_job_object(row)


@router.get("/{job_id}/events", response_model=ListPage[JobEvent])
def events(job_id: str, tenant: CurrentTenant, session: SessionDep, after: str | None = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> ListPage[JobEvent]:
    get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id)
    rows, has_more = list_events(session=session, job_id=job_id, after_seq=parse_event_id(after), limit=limit)
    return ListPage[JobEvent](data=[to_event_object(r) for r in rows], has_more=has_more)


@router.get("/{job_id}/checkpoints", response_model=ListPage[JobCheckpoint])
def checkpoints(job_id: str, tenant: CurrentTenant, session: SessionDep, after: str | None = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 10) -> ListPage[JobCheckpoint]:
    get_job_or_404(get_job(session=session, job_id=job_id, tenant_id=tenant.id), job_id)
    rows, has_more = list_checkpoints(session=session, job_id=job_id, after=after, limit=limit)
    data = [JobCheckpoint(id=r.id, created_at=r.created_at, fine_tuning_job_id=job_id, step_number=r.step,
                          metrics=CheckpointMetrics.model_validate(r.metrics)) for r in rows]
    return ListPage[JobCheckpoint](data=data, has_more=has_more)
