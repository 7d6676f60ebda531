"""ORM tables. Every tenant-owned row carries tenant_id; every list is ordered by the monotonic seq."""

import time
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now_s() -> int:
    return int(time.time())


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class TenantRow(Base):
    __tablename__ = "tenants"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Quotas; NULL means no limit.
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_file_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_trained_tokens_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Webhook endpoint (optional): terminal job events are POSTed there, signed with the secret (Standard
    # Webhooks, `whsec_<base64>`). Jobs that finished before webhook_since get no delivery.
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    webhook_since: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ApiKeyRow(Base):
    """A tenant's API key: only its SHA-256 digest and a short display prefix are stored.

    A key whose revoked_at lies in the future still works until then (the grace period of a rotation)."""

    __tablename__ = "api_keys"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class PolicyRow(Base):
    """One version of a policy: global when tenant_id is NULL, else that tenant's override.

    The newest row of a scope is in force; a row with policy NULL clears that scope (falls back to the next)."""

    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_tenant_version", "tenant_id", "version"),)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)


class AuditRow(Base):
    """One admin action. Details never hold secrets (keys appear by id and prefix only)."""

    __tablename__ = "admin_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    target_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class BaseModelRow(Base):
    __tablename__ = "base_models"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)


class FileRow(Base):
    __tablename__ = "files"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    filename: Mapped[str] = mapped_column(String(256))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    status_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    deleted: Mapped[bool] = mapped_column(default=False)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_tenant_seq", "tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    model: Mapped[str] = mapped_column(String(256))
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    method: Mapped[dict[str, Any]] = mapped_column(JSON)
    suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))  # 0 = built-in
    safety: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The screen step's summary (schemas.screening.ScreeningSummary); NULL until the training file was screened.
    screening: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    adapter_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_s, onupdate=now_s)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Orchestration (workers.orchestration). step: the pipeline step the job is at; dispatched_at: when its
    # message was last sent (NULL: waiting for a fair-share slot); dispatch_attempt: bumped on every
    # re-dispatch, cancel and pause, so a message from an older attempt is dropped when it arrives.
    step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    step_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    dispatched_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    dispatch_attempt: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class JobEventRow(Base):
    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_seq", "job_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    level: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16), default="message")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CheckpointRow(Base):
    """A training checkpoint in the artifact store: what a restarted worker resumes from."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_job_step", "job_id", "step", unique=True),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    step: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    storage_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)


class IdempotencyKeyRow(Base):
    """An Idempotency-Key a tenant sent with a job creation; unique per tenant, so concurrent duplicates lose."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_tenant_key", "tenant_id", "key", unique=True),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)


class WebhookDeliveryRow(Base):
    """One webhook event for one job, sent until the endpoint answers 2xx or the attempts run out.

    Unique per (job, type): the sender that creates deliveries may run in several processes at once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_job_type", "job_id", "type", unique=True),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_s)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
