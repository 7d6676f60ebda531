"""Admin API types (/admin/v1): tenants' keys and quotas, policy versions, review decisions, the audit log."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.jobs import Job
from schemas.policy import Policy
from schemas.tenants import Tenant


class TenantQuotas(BaseModel):
    """Per-tenant limits; null (or omitted) means no limit beyond the service's own."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_jobs: int | None = Field(
        default=None, ge=1, le=100_000, description="unfinished jobs (not succeeded, failed or cancelled)"
    )
    max_file_bytes: int | None = Field(default=None, ge=1, le=2**50, description="largest accepted upload")
    max_trained_tokens_per_day: int | None = Field(
        default=None, ge=1, le=2**50, description="tokens trained by jobs created in the current UTC day"
    )


class TenantUsage(BaseModel):
    unfinished_jobs: int
    trained_tokens_today: int
    trained_tokens_remaining_today: int | None = Field(description="null when the tenant has no daily quota")


class TenantDetail(Tenant):
    quotas: TenantQuotas
    usage: TenantUsage | None = None


class TenantCreated(TenantDetail):
    """The tenant and its first key; `api_key` is shown only in this response."""

    api_key: str
    key_id: str


class ApiKey(BaseModel):
    """A key as listed: its display prefix, never the secret. `revoked_at` in the future is a grace period."""

    id: str
    object: Literal["api_key"] = "api_key"
    tenant_id: str
    prefix: str
    created_at: int
    revoked_at: int | None = None


class ApiKeyWithSecret(ApiKey):
    api_key: str


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=0, ge=0, le=7 * 86_400, description="how long the old key keeps working after the rotation"
    )


class PolicyVersion(BaseModel):
    """The policy in force for a scope. `scope` says where it came from: a tenant's override, the global
    policy, or the built-in default (version 0)."""

    object: Literal["policy"] = "policy"
    version: int
    scope: Literal["tenant", "global", "default"]
    tenant_id: str | None = None
    created_at: int | None = None
    policy: Policy


class ReleaseDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class RejectDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class OverrideDecision(BaseModel):
    """Why an admin publishes an adapter the safety gate blocked; kept on the job and in the audit log."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="required, not blank; the tenant sees it on the job's safety summary and events"
    )


class AdminJob(Job):
    """The tenant's job object plus what only admins see."""

    policy_version: int


class AuditEntry(BaseModel):
    id: str
    object: Literal["admin.audit_entry"] = "admin.audit_entry"
    created_at: int
    actor: str
    action: str
    tenant_id: str | None = None
    target_id: str | None = None
    details: dict[str, Any] | None = None


class WebhookSet(BaseModel):
    """A tenant's webhook endpoint. Without `secret` one is generated (returned once, in this response)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/]{16,}={0,2}$",
        max_length=128,
        description="a Standard Webhooks secret: `whsec_` and base64 of at least 12 bytes",
    )


class WebhookEndpoint(BaseModel):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    tenant_id: str
    url: str | None = None
    secret: str | None = Field(default=None, description="shown only in the response that set it")
    since: int | None = Field(default=None, description="jobs finishing from then on are delivered")
