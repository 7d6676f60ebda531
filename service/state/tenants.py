"""Tenants and their keys."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth import generate_api_key, hash_api_key
from service.ids import new_id
from service.state.models import TenantRow


def create_tenant(*, session: Session, name: str) -> tuple[TenantRow, str]:
    """Returns the row and the plain key, which is never stored and shown only this once."""
    key = generate_api_key()
    row = TenantRow(id=new_id("org"), name=name, api_key_hash=hash_api_key(key))
    session.add(row)
    session.flush()
    return row, key


def tenant_for_key(*, session: Session, key: str) -> TenantRow | None:
    row = session.scalar(select(TenantRow).where(TenantRow.api_key_hash == hash_api_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def list_tenants(*, session: Session) -> list[TenantRow]:
    return list(session.scalars(select(TenantRow).order_by(TenantRow.seq)))
