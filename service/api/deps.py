"""Typed dependencies: settings, a DB session per request, the calling tenant, the admin check."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.orm import Session

from service.api.errors import ApiError
from service.auth import keys_equal
from service.settings import Settings, get_settings
from service.state.db import session_scope
from service.state.models import TenantRow
from service.state.tenants import tenant_for_key
from service.storage import LocalArtifactStore

SettingsDep = Annotated[Settings, Depends(get_settings)]


def _session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.sqlalchemy_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(401, "Missing API key: send 'Authorization: Bearer <key>'.", code="invalid_api_key",
                       retryable=False)
    return authorization[7:].strip()


def _current_tenant(session: SessionDep, authorization: Annotated[str | None, Header()] = None) -> TenantRow:
    tenant = tenant_for_key(session=session, key=_bearer(authorization))
    if tenant is None:
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key", retryable=False)
    return tenant


CurrentTenant = Annotated[TenantRow, Depends(_current_tenant)]


def _require_admin(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    if not keys_equal(_bearer(authorization), settings.admin_key):
        raise ApiError(403, "This route needs an admin key.", code="admin_only", retryable=False)


AdminDep = Depends(_require_admin)


def _store(settings: SettingsDep) -> LocalArtifactStore:
    return LocalArtifactStore(settings.artifacts_dir)


StoreDep = Annotated[LocalArtifactStore, Depends(_store)]
