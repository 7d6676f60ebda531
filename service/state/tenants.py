"""Tenants, their quotas and their API keys (stored as SHA-256 digests with a display prefix)."""

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from service.ids import new_id
from service.state.api_keys import generate_api_key, hash_api_key, key_prefix, keys_equal
from service.state.models import ApiKeyRow, TenantRow, now_s


def create_tenant(*, session: Session, name: str) -> tuple[TenantRow, ApiKeyRow, str]:
    """Returns the row, its first key and that key in plain, which is never stored and shown only this once."""
    row = TenantRow(id=new_id("org"), name=name)
    session.add(row)
    session.flush()
    key, secret = create_api_key(session=session, tenant_id=row.id)
    return row, key, secret


def create_api_key(*, session: Session, tenant_id: str) -> tuple[ApiKeyRow, str]:
    secret = generate_api_key()
    row = ApiKeyRow(id=new_id("key"), tenant_id=tenant_id, key_hash=hash_api_key(secret), prefix=key_prefix(secret))
    session.add(row)
    session.flush()
    return row, secret


def key_is_live(row: ApiKeyRow, now: int) -> bool:
    """A revoked_at in the future is a rotation's grace period: the key works until then."""
    return row.revoked_at is None or row.revoked_at > now


# Built once: SQLAlchemy then reuses the statement's cache key instead of working it out on every request.
_KEY_AND_TENANT = (
    select(ApiKeyRow, TenantRow)
    .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
    .where(ApiKeyRow.key_hash == bindparam("digest"))
)


def authenticate(*, session: Session, key: str) -> tuple[TenantRow, ApiKeyRow] | None:
    """The tenant and key row for a plain key, or None when unknown, revoked or the tenant is disabled. One
    query on the unique key_hash index; nothing is cached, so a revocation holds from the next request on."""
    digest = hash_api_key(key)
    found = session.execute(_KEY_AND_TENANT, {"digest": digest}).first()
    if found is None:
        return None
    key_row, tenant = found
    if not keys_equal(key_row.key_hash, digest) or not key_is_live(key_row, now_s()) or tenant.revoked_at is not None:
        return None
    return tenant, key_row


def get_tenant(*, session: Session, tenant_id: str, lock: bool = False) -> TenantRow | None:
    """With lock, the row stays locked until the transaction ends (PostgreSQL): job creation per tenant is
    serialised, so concurrent requests cannot both pass a quota check."""
    query = select(TenantRow).where(TenantRow.id == tenant_id)
    if lock:  # re-read under the lock: the row may already be in the session from authentication
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def list_tenants(*, session: Session) -> list[TenantRow]:
    return list(session.scalars(select(TenantRow).order_by(TenantRow.seq)))


def list_api_keys(*, session: Session, tenant_id: str) -> list[ApiKeyRow]:
    return list(session.scalars(select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id).order_by(ApiKeyRow.seq)))


def get_api_key(*, session: Session, tenant_id: str, key_id: str) -> ApiKeyRow | None:
    return session.scalar(select(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.tenant_id == tenant_id))
