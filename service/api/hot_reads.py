"""Hot read routes (GET one job, list jobs): all their blocking work in one trip to a small thread pool.

A sync route that takes SessionDep and CurrentTenant makes five trips to FastAPI's thread pool per request (open
the session, check the caller, run the route, check its return value, close the session), and each trip costs
more CPU than the route's query. An async route that hands `read_as_caller` its read makes one. Unlike routes
with those dependencies, such a route checks its query parameters before the caller's key.

The trips go through a limiter of `GFT_API_READ_THREADS` (4) per process rather than the default 40: these
reads hold the GIL for most of their time, and threads contending for it cost CPU and, above all, tail latency
(bench.api: fewer threads, shorter p99 and less CPU per request at the same throughput; the figures are in
docs/benchmarks.md). 4 still overlap a remote database's round trips. The reads run on a read_scope session: no
transaction around them, so no BEGIN and COMMIT round trips. Long blocking routes (uploads, downloads) keep the
default pool, so reads never wait behind them and they never wait behind reads.
"""

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Response
from sqlalchemy.orm import Session

from service.api.deps import current_tenant
from service.settings import Settings
from service.state.db import read_scope
from service.state.models import TenantRow

T = TypeVar("T")
_limiter: RunVar[CapacityLimiter] = RunVar("gft_hot_read_limiter")


def _read_limiter(threads: int) -> CapacityLimiter:
    """One limiter per event loop (as anyio keeps its default one), made on first use."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(threads)
        _limiter.set(limiter)
        return limiter


def _run(
    settings: Settings, response: Response, authorization: str | None, read: Callable[[Session, TenantRow], T]
) -> T:
    with read_scope(settings.sqlalchemy_url) as session:
        return read(session, current_tenant(session, settings, response, authorization))


async def read_as_caller(
    settings: Settings, response: Response, authorization: str | None, read: Callable[[Session, TenantRow], T]
) -> T:
    """`read(session, tenant)` for the calling tenant, with the same caller check (key, rate limit) as
    CurrentTenant gives a sync route; `read` must not write."""
    limiter = _read_limiter(settings.api_read_threads)
    return await to_thread.run_sync(_run, settings, response, authorization, read, limiter=limiter)
