"""Webhooks: terminal job events POSTed to the tenant's endpoint, signed the Standard Webhooks way.

Durable without hooks at every place a job finishes: `deliver_pending` first records a delivery row for each
finished job of a tenant with a webhook that has none yet (the unique (job, type) index settles races between
senders), then sends the deliveries that are due. A failed send is retried with exponential backoff until
MAX_ATTEMPTS; the row records every outcome. Call `deliver_pending(settings)` periodically (the reconcile beat).

Signature (https://www.standardwebhooks.com, what `openai.OpenAI().webhooks.unwrap` verifies):
headers `webhook-id`, `webhook-timestamp` (unix s) and `webhook-signature: v1,<base64 HMAC-SHA256>` of
`{id}.{timestamp}.{body}` keyed with the base64-decoded part of the `whsec_...` secret.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import and_, case, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.job_status import JobStatus
from service.ids import new_id
from service.settings import Settings
from service.state.db import session_scope
from service.state.models import JobRow, TenantRow, WebhookDeliveryRow, now_s

log = logging.getLogger(__name__)

EVENT_TYPES = {
    JobStatus.SUCCEEDED: "fine_tuning.job.succeeded",
    JobStatus.FAILED: "fine_tuning.job.failed",
    JobStatus.CANCELLED: "fine_tuning.job.cancelled",
}
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 5.0  # attempt n waits BACKOFF_BASE_S * 2**(n-1) (5 s, 10 s, ... about 10 min before the last)
BACKOFF_CAP_S = 3600.0
TIMEOUT_S = 10.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def backoff_s(attempts: int) -> float:
    """Seconds to wait after the given number of failed attempts (1-based)."""
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempts - 1))


def record_due_deliveries(*, session: Session, limit: int = 500) -> int:
    """A delivery row for each finished job whose tenant has a webhook and which has none for its current status
    yet (an admin override turns a blocked, failed job into a succeeded one: that is a second event)."""
    has_delivery = exists().where(
        WebhookDeliveryRow.job_id == JobRow.id, WebhookDeliveryRow.type == case(EVENT_TYPES, value=JobRow.status)
    )
    query = (
        select(JobRow)
        .join(TenantRow, TenantRow.id == JobRow.tenant_id)
        .where(
            TenantRow.webhook_url.is_not(None),
            JobRow.status.in_(EVENT_TYPES),
            and_(JobRow.finished_at.is_not(None), JobRow.finished_at >= TenantRow.webhook_since),
            ~has_delivery,
        )
        .order_by(JobRow.seq)
        .limit(limit)
    )
    added = 0
    for job in session.scalars(query).all():
        type_ = EVENT_TYPES[job.status]
        delivery_id = new_id("evt")
        payload = {
            "id": delivery_id,
            "object": "event",
            "created_at": job.finished_at or now_s(),
            "type": type_,
            "data": {"id": job.id},
        }
        try:
            with session.begin_nested():
                session.add(
                    WebhookDeliveryRow(
                        id=delivery_id,
                        tenant_id=job.tenant_id,
                        job_id=job.id,
                        type=type_,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_attempt_at=time.time(),
                    )
                )
            added += 1
        except IntegrityError:  # another sender recorded it first
            continue
    return added


@dataclass(frozen=True)
class _Due:
    id: str
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int


def _claim_due(session: Session, now: float, limit: int) -> list[_Due]:
    """Due deliveries, pushed past the visibility window so a concurrent sender skips them while we send."""
    query = (
        select(WebhookDeliveryRow, TenantRow)
        .join(TenantRow, TenantRow.id == WebhookDeliveryRow.tenant_id)
        .where(WebhookDeliveryRow.status == "pending", WebhookDeliveryRow.next_attempt_at <= now)
        .order_by(WebhookDeliveryRow.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDeliveryRow)
    )
    due = []
    for row, tenant in session.execute(query).all():
        if not tenant.webhook_url or not tenant.webhook_secret:
            row.status, row.last_error = "failed", "the tenant's webhook was removed"
            continue
        row.next_attempt_at = now + TIMEOUT_S * 3
        due.append(_Due(row.id, tenant.webhook_url, tenant.webhook_secret, row.payload, row.attempts))
    return due


def _send(client: httpx.Client, due: _Due) -> str | None:
    """None on a 2xx answer, else what went wrong."""
    body = json.dumps(due.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": due.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret=due.secret, msg_id=due.id, timestamp=timestamp, body=body),
    }
    try:
        response = client.post(due.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if response.is_success else f"HTTP {response.status_code}"


def _record_outcome(session: Session, due: _Due, error: str | None, now: float) -> None:
    row = session.scalar(select(WebhookDeliveryRow).where(WebhookDeliveryRow.id == due.id))
    if row is None:
        return
    row.attempts = due.attempts + 1
    if error is None:
        row.status, row.delivered_at, row.last_error = "delivered", now_s(), None
        return
    row.last_error = error
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
        log.warning("webhook %s for job %s failed for good: %s", row.id, row.job_id, error)
    else:
        row.next_attempt_at = now + backoff_s(row.attempts)


def deliver_pending(settings: Settings, *, limit: int = 100, client: httpx.Client | None = None) -> int:
    """Record deliveries for newly finished jobs and send the due ones; returns how many were delivered."""
    with session_scope(settings.sqlalchemy_url) as session:
        record_due_deliveries(session=session)
    with session_scope(settings.sqlalchemy_url) as session:
        due = _claim_due(session, time.time(), limit)
    if not due:
        return 0
    owned = client is None
    client = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
    delivered = 0
    try:
        for item in due:
            error = _send(client, item)
            delivered += error is None
            with session_scope(settings.sqlalchemy_url) as session:
                _record_outcome(session, item, error, time.time())
    finally:
        if owned:
            client.close()
    return delivered
