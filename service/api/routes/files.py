"""/v1/files: upload, list, retrieve, content, delete, and the screening dry run."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from schemas.common import ListPage
from schemas.files import FileDeleted, FileObject
from schemas.screening import FileScreening
from service.api.deps import CurrentTenant, SessionDep, SettingsDep, StoreDep
from service.api.errors import not_found
from service.datasets import TokenLimits
from service.files import to_file_object, upload_file
from service.policies import effective_policy
from service.quotas import upload_limit
from service.screening import report, screen_file
from service.state.files import get_file, list_files
from service.state.models import now_s
from service.storage import iter_file

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", response_model=FileObject)
def create_file(tenant: CurrentTenant, session: SessionDep, store: StoreDep, settings: SettingsDep,
                file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]) -> FileObject:
    """Upload a chat JSONL training file; invalid files are refused with the first bad line. Token limits: a row
    may hold the policy's `max_seq_len` tokens, a file the tenant's daily token quota (both estimated)."""
    policy = effective_policy(session=session, tenant_id=tenant.id).policy
    limits = TokenLimits(per_row=policy.training.max_seq_len, total=tenant.max_trained_tokens_per_day)
    row = upload_file(session=session, store=store, tenant_id=tenant.id, filename=file.filename or "upload.jsonl",
                      purpose=purpose, stream=file.file, max_bytes=upload_limit(tenant, settings.max_upload_bytes),
                      limits=limits)
    return to_file_object(row)


@router.get("", response_model=ListPage[FileObject])
def list_tenant_files(tenant: CurrentTenant, session: SessionDep, after: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000) -> ListPage[FileObject]:
    """The tenant's files, newest first."""
    rows, has_more = list_files(session=session, tenant_id=tenant.id, after=after, limit=limit)
    return ListPage[FileObject](data=[to_file_object(r) for r in rows], has_more=has_more)


@router.get("/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, tenant: CurrentTenant, session: SessionDep) -> FileObject:
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise not_found("file", file_id, param="file_id")
    return to_file_object(row)


@router.get("/{file_id}/content")
def file_content(file_id: str, tenant: CurrentTenant, session: SessionDep, store: StoreDep) -> StreamingResponse:
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise not_found("file", file_id, param="file_id")
    handle = store.open(row.storage_key)
    return StreamingResponse(iter_file(handle), media_type="application/octet-stream")


@router.post("/{file_id}/screen", response_model=FileScreening)
def screen_training_file(file_id: str, tenant: CurrentTenant, session: SessionDep, store: StoreDep) -> FileScreening:
    """Dry run of the screen step a job on this file would meet under the tenant's policy now: every harmful row
    (line, categories, reason; flagged when the answer complies), counts per category, and whether a job would be
    blocked. Nothing is stored or charged."""
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise not_found("file", file_id, param="file_id")
    effective = effective_policy(session=session, tenant_id=tenant.id)
    key, policy = row.storage_key, effective.policy.screening
    session.rollback()  # nothing to write: hand the connection back before reading the whole file
    with store.open(key) as handle:
        tally, outcome = screen_file(handle, policy)
    return report(file_id=file_id, created_at=now_s(), policy=policy, policy_version=effective.version,
                  tally=tally, outcome=outcome)


@router.delete("/{file_id}", response_model=FileDeleted)
def delete_file(file_id: str, tenant: CurrentTenant, session: SessionDep) -> FileDeleted:
    """Hide the file from the tenant; the blob stays until no job references it (jobs keep their data)."""
    row = get_file(session=session, tenant_id=tenant.id, file_id=file_id)
    if row is None:
        raise not_found("file", file_id, param="file_id")
    row.deleted = True
    session.flush()
    return FileDeleted(id=file_id, deleted=True)
