"""The admin audit log: one row per admin mutation, written in that mutation's transaction."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.ids import new_id
from service.state.db import fetch_page
from service.state.models import AuditRow

ADMIN_ACTOR = "admin"


def record_admin_action(
    *,
    session: Session,
    action: str,
    tenant_id: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
    actor: str = ADMIN_ACTOR,
) -> AuditRow:
    """Never pass secrets in details: keys go in by id and display prefix."""
    row = AuditRow(
        id=new_id("audit"), actor=actor, action=action, tenant_id=tenant_id, target_id=target_id, details=details
    )
    session.add(row)
    session.flush()
    return row


def list_audit(
    *, session: Session, after: str | None, limit: int, tenant_id: str | None = None, action: str | None = None
) -> tuple[list[AuditRow], bool]:
    """Newest first; `after` is the id of the last entry of the previous page."""
    query = select(AuditRow)
    if tenant_id is not None:
        query = query.where(AuditRow.tenant_id == tenant_id)
    if action is not None:
        query = query.where(AuditRow.action == action)
    anchor = session.scalar(select(AuditRow.seq).where(AuditRow.id == after)) if after else None
    return fetch_page(session, query, AuditRow.seq, anchor, limit)
