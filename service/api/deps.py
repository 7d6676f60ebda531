"""Typed dependencies: settings, a DB session per request, the calling tenant (rate limited), the admin check,
the artifact store."""

import logging
from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends, Header, Response
from sqlalchemy.orm import Session

from service.api.errors import ApiError
from service.rate_limit import WindowCount, count_request
from service.settings import Settings, get_settings
from service.state.api_keys import keys_equal
from service.state.db import session_scope
from service.state.models import TenantRow
from service.state.tenants import authenticate
from service.storage import ArtifactStore, artifact_store

log = logging.getLogger(__name__)


async def _settings() -> Settings:
    """Async because it never blocks: FastAPI runs sync dependencies on the thread pool, a hop per request."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def _session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.sqlalchemy_url) as session:
        yield session


# scope="function": the session commits when the route returns, before the response is sent. FastAPI's default
# ("request") commits after the response, so a client's next call could read the old state, and a failed commit
# would follow a 200 that promised the write.
SessionDep = Annotated[Session, Depends(_session, scope="function")]


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(
            401, "Missing API key: send 'Authorization: Bearer <key>'.", code="invalid_api_key", retryable=False
        )
    return authorization[7:].strip()


def _rate_limit_headers(window: WindowCount) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(window.limit),
        "x-ratelimit-remaining-requests": str(window.remaining),
        "x-ratelimit-reset-requests": f"{window.reset_s}s",
    }


def current_tenant(
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> TenantRow:
    """The calling tenant, after counting the request against its key's per-minute limit (when one is set).
    Counters live in Redis so all replicas share them; if Redis cannot be reached the request goes through.
    One function, so one trip to the thread pool for the key look-up and the count together; routes that do
    all their work in one trip call it directly (service.api.routes.jobs)."""
    found = authenticate(session=session, key=_bearer(authorization))
    if found is None:
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key", retryable=False)
    tenant, key = found
    if settings.rate_limit_per_minute:
        try:
            window = count_request(
                url=settings.rate_limit_redis_url, key_id=key.id, limit=settings.rate_limit_per_minute
            )
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable, request let through: %s", type(exc).__name__)
            return tenant
        headers = _rate_limit_headers(window)
        if not window.allowed:
            raise ApiError(
                429,
                f"Rate limit reached: {window.limit} requests per minute for this API key. Retry in {window.reset_s}s.",
                code="rate_limit_exceeded",
                headers={**headers, "retry-after": str(window.reset_s)},
            )
        response.headers.update(headers)
    return tenant


CurrentTenant = Annotated[TenantRow, Depends(current_tenant)]


async def _require_admin(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    if not keys_equal(_bearer(authorization), settings.admin_key):
        raise ApiError(403, "This route needs an admin key.", code="admin_only", retryable=False)


AdminDep = Depends(_require_admin)


async def _store(settings: SettingsDep) -> ArtifactStore:
    """The configured artifact store (local folder or S3), built once per process by artifact_store."""
    return artifact_store(settings)


StoreDep = Annotated[ArtifactStore, Depends(_store)]
