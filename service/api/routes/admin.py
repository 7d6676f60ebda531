"""/admin/v1 (admin key only): tenants, their keys and quotas, policies, base models, review, the audit log.

Every mutation writes one audit row in its own transaction; details name keys by id and prefix, never secret.
"""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query

from schemas.admin import (
    AdminJob,
    ApiKey,
    ApiKeyWithSecret,
    AuditEntry,
    KeyRotate,
    OverrideDecision,
    PolicyVersion,
    RejectDecision,
    ReleaseDecision,
    TenantCreated,
    TenantDetail,
    TenantQuotas,
    WebhookEndpoint,
    WebhookSet,
)
from schemas.common import ListPage
from schemas.jobs import JobStatus
from schemas.policy import Policy
from schemas.tenants import BaseModelRegister, ModelObject, TenantCreate
from service.api.deps import AdminDep, SessionDep, StoreDep
from service.api.errors import ApiError
from service.errors import NotFound
from service.jobs import get_job_or_404, to_admin_job_object
from service.policies import effective_policy
from service.quotas import quotas_of, set_quotas, usage_of
from service.review import override_blocked_job, reject_held_job, release_held_job
from service.state.audit import list_audit, record_admin_action
from service.state.base_models import register_base_model
from service.state.jobs import get_job, list_all_jobs
from service.state.models import ApiKeyRow, TenantRow, now_s
from service.state.policies import add_policy_row
from service.state.tenants import (
    create_api_key,
    create_tenant,
    get_api_key,
    get_tenant,
    key_is_live,
    list_api_keys,
    list_tenants,
)
from service.webhooks import new_secret

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[AdminDep])


def _tenant_or_404(session: SessionDep, tenant_id: str) -> TenantRow:
    row = get_tenant(session=session, tenant_id=tenant_id)
    if row is None:
        raise NotFound("organization", tenant_id, param="tenant_id")
    return row


def _live_key_or_error(session: SessionDep, tenant_id: str, key_id: str) -> ApiKeyRow:
    _tenant_or_404(session, tenant_id)
    row = get_api_key(session=session, tenant_id=tenant_id, key_id=key_id)
    if row is None:
        raise NotFound("API key", key_id, param="key_id")
    if not key_is_live(row, now_s()):
        raise ApiError(409, f"API key {key_id} is already revoked.", code="key_revoked", retryable=False)
    return row


def _tenant_detail(row: TenantRow) -> TenantDetail:
    return TenantDetail(id=row.id, name=row.name, created_at=row.created_at, quotas=quotas_of(row))


def _key_object(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id, tenant_id=row.tenant_id, prefix=row.prefix, created_at=row.created_at, revoked_at=row.revoked_at
    )


# Tenants, quotas and keys


@router.post("/tenants", response_model=TenantCreated)
def create(request: TenantCreate, session: SessionDep) -> TenantCreated:
    """Create a tenant and its first key; the key is returned only in this response."""
    row, key, secret = create_tenant(session=session, name=request.name)
    record_admin_action(
        session=session,
        action="tenant.create",
        tenant_id=row.id,
        target_id=row.id,
        details={"name": row.name, "key_id": key.id, "key_prefix": key.prefix},
    )
    return TenantCreated(**_tenant_detail(row).model_dump(), api_key=secret, key_id=key.id)


@router.get("/tenants", response_model=ListPage[TenantDetail])
def list_(session: SessionDep) -> ListPage[TenantDetail]:
    return ListPage[TenantDetail](data=[_tenant_detail(t) for t in list_tenants(session=session)])


@router.get("/tenants/{tenant_id}", response_model=TenantDetail)
def retrieve_tenant(tenant_id: str, session: SessionDep) -> TenantDetail:
    """The tenant with its quotas and today's usage (unfinished jobs, tokens trained, tokens remaining)."""
    row = _tenant_or_404(session, tenant_id)
    detail = _tenant_detail(row)
    detail.usage = usage_of(session=session, tenant=row)
    return detail


@router.put("/tenants/{tenant_id}/quotas", response_model=TenantDetail)
def put_quotas(tenant_id: str, request: TenantQuotas, session: SessionDep) -> TenantDetail:
    """Replace the tenant's quotas; a null or omitted field means no limit."""
    row = _tenant_or_404(session, tenant_id)
    before = quotas_of(row).model_dump()
    set_quotas(row, request)
    session.flush()
    record_admin_action(
        session=session,
        action="tenant.quotas.update",
        tenant_id=tenant_id,
        target_id=tenant_id,
        details={"before": before, "after": request.model_dump()},
    )
    return _tenant_detail(row)


@router.get("/tenants/{tenant_id}/keys", response_model=ListPage[ApiKey])
def list_keys(tenant_id: str, session: SessionDep) -> ListPage[ApiKey]:
    """The tenant's keys by display prefix, revoked ones included."""
    _tenant_or_404(session, tenant_id)
    return ListPage[ApiKey](data=[_key_object(k) for k in list_api_keys(session=session, tenant_id=tenant_id)])


@router.post("/tenants/{tenant_id}/keys", response_model=ApiKeyWithSecret)
def create_key(tenant_id: str, session: SessionDep) -> ApiKeyWithSecret:
    """A new key for the tenant; the secret is returned only in this response."""
    _tenant_or_404(session, tenant_id)
    row, secret = create_api_key(session=session, tenant_id=tenant_id)
    record_admin_action(
        session=session, action="api_key.create", tenant_id=tenant_id, target_id=row.id, details={"prefix": row.prefix}
    )
    return ApiKeyWithSecret(**_key_object(row).model_dump(), api_key=secret)


@router.post("/tenants/{tenant_id}/keys/{key_id}/rotate", response_model=ApiKeyWithSecret)
def rotate_key(tenant_id: str, key_id: str, session: SessionDep, request: KeyRotate | None = None) -> ApiKeyWithSecret:
    """A new key replaces this one, which keeps working for `grace_seconds` (0: revoked at once)."""
    old = _live_key_or_error(session, tenant_id, key_id)
    grace = (request or KeyRotate()).grace_seconds
    until = now_s() + grace
    old.revoked_at = until if old.revoked_at is None else min(old.revoked_at, until)
    new, secret = create_api_key(session=session, tenant_id=tenant_id)
    record_admin_action(
        session=session,
        action="api_key.rotate",
        tenant_id=tenant_id,
        target_id=key_id,
        details={
            "new_key_id": new.id,
            "new_prefix": new.prefix,
            "grace_seconds": grace,
            "old_revoked_at": old.revoked_at,
        },
    )
    return ApiKeyWithSecret(**_key_object(new).model_dump(), api_key=secret)


@router.post("/tenants/{tenant_id}/keys/{key_id}/revoke", response_model=ApiKey)
def revoke_key(tenant_id: str, key_id: str, session: SessionDep) -> ApiKey:
    """Revoke a key now (also ends a rotation's grace period)."""
    row = _live_key_or_error(session, tenant_id, key_id)
    row.revoked_at = now_s()
    session.flush()
    record_admin_action(
        session=session, action="api_key.revoke", tenant_id=tenant_id, target_id=key_id, details={"prefix": row.prefix}
    )
    return _key_object(row)


@router.put("/tenants/{tenant_id}/webhook", response_model=WebhookEndpoint)
def put_webhook(tenant_id: str, request: WebhookSet, session: SessionDep) -> WebhookEndpoint:
    """Send the tenant's terminal job events (succeeded, failed, cancelled) to `url`, signed with the secret."""
    row = _tenant_or_404(session, tenant_id)
    row.webhook_url, row.webhook_secret = request.url, request.secret or new_secret()
    row.webhook_since = now_s()
    session.flush()
    record_admin_action(
        session=session,
        action="tenant.webhook.update",
        tenant_id=tenant_id,
        target_id=tenant_id,
        details={"url": request.url, "secret_given": request.secret is not None},
    )
    return WebhookEndpoint(tenant_id=tenant_id, url=row.webhook_url, secret=row.webhook_secret, since=row.webhook_since)


@router.delete("/tenants/{tenant_id}/webhook", response_model=WebhookEndpoint)
def delete_webhook(tenant_id: str, session: SessionDep) -> WebhookEndpoint:
    """Stop sending webhooks to the tenant; pending deliveries are dropped."""
    row = _tenant_or_404(session, tenant_id)
    row.webhook_url = row.webhook_secret = row.webhook_since = None
    session.flush()
    record_admin_action(session=session, action="tenant.webhook.delete", tenant_id=tenant_id, target_id=tenant_id)
    return WebhookEndpoint(tenant_id=tenant_id)


# Policies


def _put_policy(session: SessionDep, tenant_id: str | None, policy: Policy | None) -> PolicyVersion:
    row = add_policy_row(session=session, tenant_id=tenant_id, policy=policy.model_dump() if policy else None)
    action = ("policy" if tenant_id is None else "tenant.policy") + (".update" if policy else ".clear")
    record_admin_action(
        session=session,
        action=action,
        tenant_id=tenant_id,
        target_id=f"policy-v{row.version}",
        details={"version": row.version, "policy": row.policy},
    )
    return effective_policy(session=session, tenant_id=tenant_id)


@router.get("/policy", response_model=PolicyVersion)
def get_global_policy(session: SessionDep) -> PolicyVersion:
    """The global policy in force (the built-in default, version 0, until one is set)."""
    return effective_policy(session=session, tenant_id=None)


@router.put("/policy", response_model=PolicyVersion)
def put_global_policy(request: Policy, session: SessionDep) -> PolicyVersion:
    """Set the global policy (a whole Policy document); it becomes a new version. Running jobs keep theirs."""
    return _put_policy(session, None, request)


@router.delete("/policy", response_model=PolicyVersion)
def clear_global_policy(session: SessionDep) -> PolicyVersion:
    """Go back to the built-in default (recorded as a new version)."""
    return _put_policy(session, None, None)


@router.get("/tenants/{tenant_id}/policy", response_model=PolicyVersion)
def get_tenant_policy(tenant_id: str, session: SessionDep) -> PolicyVersion:
    """The policy the tenant's new jobs run under: its override, else the global policy, else the default."""
    _tenant_or_404(session, tenant_id)
    return effective_policy(session=session, tenant_id=tenant_id)


@router.put("/tenants/{tenant_id}/policy", response_model=PolicyVersion)
def put_tenant_policy(tenant_id: str, request: Policy, session: SessionDep) -> PolicyVersion:
    """Override the policy for one tenant (a whole Policy document, not merged with the global one)."""
    _tenant_or_404(session, tenant_id)
    return _put_policy(session, tenant_id, request)


@router.delete("/tenants/{tenant_id}/policy", response_model=PolicyVersion)
def clear_tenant_policy(tenant_id: str, session: SessionDep) -> PolicyVersion:
    """Drop the tenant's override; the global policy applies again."""
    _tenant_or_404(session, tenant_id)
    return _put_policy(session, tenant_id, None)


# Base models


def _is_model_folder(path: str) -> bool:
    """A folder holding config.json; a path the file system refuses (too long, a NUL byte) is simply not one."""
    try:
        return (Path(path) / "config.json").is_file()
    except (OSError, ValueError):
        return False


@router.post("/models", response_model=ModelObject)
def register_model(request: BaseModelRegister, session: SessionDep) -> ModelObject:
    """Register a base model by local path (a folder with config.json, weights and a tokenizer)."""
    if not _is_model_folder(request.path):
        raise ApiError(
            400,
            f"No config.json under '{request.path}': the path must be a local model folder.",
            param="path",
            code="invalid_model_path",
            retryable=False,
        )
    row = register_base_model(session=session, model_id=request.id, path=request.path)
    record_admin_action(session=session, action="base_model.register", target_id=row.id, details={"path": row.path})
    return ModelObject(id=row.id, created=row.created_at, owned_by="system")


# Jobs and review


@router.get("/jobs", response_model=ListPage[AdminJob])
def list_jobs(
    session: SessionDep,
    status: JobStatus | None = None,
    tenant_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPage[AdminJob]:
    """Jobs of every tenant, newest first; `status=held` lists the jobs waiting for review."""
    rows, has_more = list_all_jobs(session=session, after=after, limit=limit, status=status, tenant_id=tenant_id)
    return ListPage[AdminJob](data=[to_admin_job_object(r) for r in rows], has_more=has_more)


@router.get("/jobs/{job_id}", response_model=AdminJob)
def retrieve_job(job_id: str, session: SessionDep) -> AdminJob:
    return to_admin_job_object(get_job_or_404(get_job(session=session, job_id=job_id), job_id))


@router.post("/jobs/{job_id}/release", response_model=AdminJob)
def release_job(job_id: str, session: SessionDep, request: ReleaseDecision | None = None) -> AdminJob:
    """Release a held job's adapter as its fine-tuned model; 409 unless the job is held."""
    reason = request.reason if request else None
    row = release_held_job(session=session, job_id=job_id, reason=reason)
    record_admin_action(
        session=session,
        action="job.release",
        tenant_id=row.tenant_id,
        target_id=job_id,
        details={"reason": reason, "fine_tuned_model": row.fine_tuned_model},
    )
    return to_admin_job_object(row)


@router.post("/jobs/{job_id}/reject", response_model=AdminJob)
def reject_job(job_id: str, request: RejectDecision, session: SessionDep) -> AdminJob:
    """Fail a held job with the reason given (the tenant sees it); 409 unless the job is held."""
    row = reject_held_job(session=session, job_id=job_id, reason=request.reason)
    record_admin_action(
        session=session,
        action="job.reject",
        tenant_id=row.tenant_id,
        target_id=job_id,
        details={"reason": request.reason},
    )
    return to_admin_job_object(row)


@router.post("/jobs/{job_id}/override", response_model=AdminJob)
def override_job(job_id: str, request: OverrideDecision, session: SessionDep, store: StoreDep) -> AdminJob:
    """Publish the adapter of a job the safety gate blocked, for the reason given; 409 unless the job failed
    with error.code safety_regression and its adapter is stored."""
    row, gate_reasons = override_blocked_job(session=session, store=store, job_id=job_id, reason=request.reason)
    record_admin_action(
        session=session,
        action="job.override",
        tenant_id=row.tenant_id,
        target_id=job_id,
        details={"reason": request.reason, "fine_tuned_model": row.fine_tuned_model, "gate_reasons": gate_reasons},
    )
    return to_admin_job_object(row)


# Audit log


@router.get("/audit", response_model=ListPage[AuditEntry])
def audit(
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    tenant_id: str | None = None,
    action: str | None = None,
) -> ListPage[AuditEntry]:
    """Admin actions, newest first; page with `after=<last id>`."""
    rows, has_more = list_audit(session=session, after=after, limit=limit, tenant_id=tenant_id, action=action)
    data = [
        AuditEntry(
            id=r.id,
            created_at=r.created_at,
            actor=r.actor,
            action=r.action,
            tenant_id=r.tenant_id,
            target_id=r.target_id,
            details=r.details,
        )
        for r in rows
    ]
    return ListPage[AuditEntry](data=data, has_more=has_more)
