"""Tenant quotas: unfinished jobs, upload size and tokens trained per UTC day."""

from sqlalchemy.orm import Session

from schemas.admin import TenantQuotas, TenantUsage
from service.errors import QuotaExceeded
from service.state.jobs import count_unfinished_jobs, trained_tokens_since
from service.state.models import TenantRow, now_s

DAY_S = 86_400


def quotas_of(tenant: TenantRow) -> TenantQuotas:
    return TenantQuotas(
        max_concurrent_jobs=tenant.max_concurrent_jobs,
        max_file_bytes=tenant.max_file_bytes,
        max_trained_tokens_per_day=tenant.max_trained_tokens_per_day,
    )


def set_quotas(tenant: TenantRow, quotas: TenantQuotas) -> None:
    tenant.max_concurrent_jobs = quotas.max_concurrent_jobs
    tenant.max_file_bytes = quotas.max_file_bytes
    tenant.max_trained_tokens_per_day = quotas.max_trained_tokens_per_day


def upload_limit(tenant: TenantRow, service_limit: int) -> int:
    """The largest file this tenant may upload: its quota, never above the service's own limit."""
    return min(service_limit, tenant.max_file_bytes or service_limit)


def usage_of(*, session: Session, tenant: TenantRow, now: int | None = None) -> TenantUsage:
    now = now_s() if now is None else now
    used = trained_tokens_since(session=session, tenant_id=tenant.id, since=now - now % DAY_S)
    quota = tenant.max_trained_tokens_per_day
    return TenantUsage(
        unfinished_jobs=count_unfinished_jobs(session=session, tenant_id=tenant.id),
        trained_tokens_today=used,
        trained_tokens_remaining_today=None if quota is None else max(0, quota - used),
    )


def check_job_quotas(*, session: Session, tenant: TenantRow, now: int | None = None) -> None:
    """Raises QuotaExceeded when the tenant may not start another job now; neither clears within a quick retry.

    Tokens are recorded when a job's training ends, so the daily quota counts finished training only: a job
    started under the quota may take the day's total above it, and the next job is then refused."""
    now = now_s() if now is None else now
    if tenant.max_concurrent_jobs is not None:
        live = count_unfinished_jobs(session=session, tenant_id=tenant.id)
        if live >= tenant.max_concurrent_jobs:
            raise QuotaExceeded(
                f"This organization already has {live} unfinished fine-tuning jobs, its limit is "
                f"{tenant.max_concurrent_jobs}: wait for one to finish or cancel one.",
                code="max_concurrent_jobs_reached",
            )
    if tenant.max_trained_tokens_per_day is not None:
        day_start = now - now % DAY_S
        used = trained_tokens_since(session=session, tenant_id=tenant.id, since=day_start)
        if used >= tenant.max_trained_tokens_per_day:
            raise QuotaExceeded(
                f"This organization has trained {used} tokens today (UTC), its daily limit is "
                f"{tenant.max_trained_tokens_per_day}; the quota resets at 00:00 UTC.",
                code="daily_token_quota_exceeded",
                retry_after=day_start + DAY_S - now,
            )
