"""/v1/files: upload, list, retrieve, content, delete, and the screening dry run."""

import hashlib
import json
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from schemas.common import ListPage
from schemas.files import FileDeleted, FileObject
from schemas.screening import FileScreening
from service.api.deps import CurrentTenant, SessionDep, SettingsDep, StoreDep
from service.api.errors import ApiError
from service.datasets import TokenLimits
from service.dispatch import enqueue_file_screening
from service.errors import NotFound
from service.files import to_file_object, upload_file
from service.policies import effective_policy
from service.quotas import upload_limit
from service.state.files import get_file, list_files
from service.storage import iter_file

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", response_model=FileObject)
def create_file(
    tenant: CurrentTenant,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    purpose: Annotated[str, Form()],
) -> FileObject:
    """Upload a chat JSONL training file; invalid files are refused with the first bad line. Token limits: a row
    may hold the policy's `max_seq_len` tokens, a file the tenant's daily token quota (both estimated)."""
    policy = effective_policy(session=session, tenant_id=tenant.id).policy
    limits = TokenLimits(per_row=policy.training.max_seq_len, total=tenant.max_trained_tokens_per_day)
    row = upload_file(
        session=session,
        store=store,
        tenant_id=tenant.id,
        filename=file.filename or "upload.jsonl",
        purpose=purpose,
        stream=file.file,
        max_bytes=upload_limit(tenant, settings.max_upload_bytes),
        limits=limits,
    )
    return to_file_object(row)


@router.get("", response_model=ListPage[FileObject])
def list_tenant_files(
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
) -> ListPage[FileObject]:
    """The tenant's files, newest first."""
    rows, has_more = list_files(session=session, tenant_id=tenant.id, after=after, limit=limit)
    return ListPage[FileObject](data=[to_file_object(r) for r in rows], has_more=has_more)


@router.get("/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, tenant: CurrentTenant, session: SessionDep) -> FileObject:
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise NotFound("file", file_id, param="file_id")
    return to_file_object(row)


@router.get("/{file_id}/content")
def file_content(file_id: str, tenant: CurrentTenant, session: SessionDep, store: StoreDep) -> StreamingResponse:
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise NotFound("file", file_id, param="file_id")
    handle = store.open(row.storage_key)
    return StreamingResponse(iter_file(handle), media_type="application/octet-stream")


SCREEN_POLL_S = 0.1


@router.post("/{file_id}/screen", response_model=FileScreening)
def screen_training_file(
    file_id: str, tenant: CurrentTenant, session: SessionDep, store: StoreDep, settings: SettingsDep
) -> FileScreening:
    """Dry run of the screen step a job on this file would meet under the tenant's policy now: every harmful row
    (line, categories, reason; flagged when the answer complies), counts per category, and whether a job would be
    blocked. Nothing is charged. A cpu worker screens (the API runs no judges); files never change, so the report
    is kept per file and policy and a repeat is answered from it. 503 (retry) when no worker answered in time."""
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise NotFound("file", file_id, param="file_id")
    effective = effective_policy(session=session, tenant_id=tenant.id)
    policy = effective.policy.screening.model_dump(mode="json")
    digest = hashlib.sha256(f"{effective.version}:{json.dumps(policy, sort_keys=True)}".encode()).hexdigest()[:24]
    report_key = f"screenings/{file_id}/{digest}.json"
    storage_key = row.storage_key
    session.rollback()  # nothing to write: hand the connection back before waiting
    if not store.exists(report_key):
        enqueue_file_screening(
            broker_url=settings.broker_url,
            file_id=file_id,
            storage_key=storage_key,
            policy=policy,
            policy_version=effective.version,
            report_key=report_key,
        )
        deadline = time.monotonic() + settings.screening_wait_s
        while not store.exists(report_key):
            if time.monotonic() > deadline:
                raise ApiError(
                    503,
                    f"Screening of {file_id} is still running on the workers; retry in a few seconds.",
                    code="screening_in_progress",
                    headers={"retry-after": "5"},
                )
            time.sleep(SCREEN_POLL_S)
    with store.open(report_key) as handle:
        return FileScreening.model_validate_json(handle.read())


@router.delete("/{file_id}", response_model=FileDeleted)
def delete_file(file_id: str, tenant: CurrentTenant, session: SessionDep) -> FileDeleted:
    """Hide the file from the tenant; the blob stays until no job references it (jobs keep their data)."""
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise NotFound("file", file_id, param="file_id")
    row.deleted = True
    session.flush()
    return FileDeleted(id=file_id, deleted=True)
