"""Versioned policies: global rows (tenant_id NULL) and per-tenant overrides; the newest row of a scope rules."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.state.models import PolicyRow


def latest_policy_row(*, session: Session, tenant_id: str | None) -> PolicyRow | None:
    """The newest row of one scope: the global one when tenant_id is None."""
    scope = PolicyRow.tenant_id.is_(None) if tenant_id is None else PolicyRow.tenant_id == tenant_id
    return session.scalars(select(PolicyRow).where(scope).order_by(PolicyRow.version.desc()).limit(1)).first()


def add_policy_row(*, session: Session, tenant_id: str | None, policy: dict[str, Any] | None) -> PolicyRow:
    """A new version; policy None clears the scope, so the next one down applies."""
    row = PolicyRow(tenant_id=tenant_id, policy=policy)
    session.add(row)
    session.flush()
    return row
