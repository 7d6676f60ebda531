"""The API's Prometheus metrics, served at /metrics.

Two kinds of series:
- Per process, counted as requests pass: `gft_http_requests_total` and `gft_http_request_duration_seconds`,
  labelled by method, route *template* (never the raw path: ids would make the label unbounded) and status.
- Fleet-wide, read at scrape time from the source of truth (the database) and from the broker: jobs by state,
  jobs created per tenant, failed jobs per error code, the oldest job in each live state, queue depth. Every API
  replica reports the same values for these: aggregate them with `max`, not `sum`.

Labels carry only bounded values chosen by this code or by an admin (tenant ids); never keys, file names, job
ids, messages or anything else a tenant writes.
"""

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from functools import lru_cache
from typing import Any

import redis
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.job_status import UNFINISHED_STATUSES, JobStatus
from service.dispatch import CPU_QUEUE, GPU_QUEUE
from service.settings import Settings, get_settings
from service.state.db import session_scope
from service.state.models import JobRow, TenantRow

log = logging.getLogger(__name__)

JOB_STATES: tuple[JobStatus, ...] = tuple(JobStatus)
LIVE_STATES: tuple[JobStatus, ...] = tuple(s for s in JOB_STATES if s in UNFINISHED_STATUSES)
QUEUES: tuple[str, ...] = (CPU_QUEUE, GPU_QUEUE)
# kombu's Redis transport keeps a message with priority p > 0 in the list "<queue>\x06\x16<p>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

disable_created_metrics()  # no `_created` series: they double what each counter costs
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "gft_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "gft_http_request_duration_seconds",
    "Time from request to the end of the response body, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def route_label(scope: MutableMapping[str, Any]) -> str:
    """The path template of the route that handled the request (`/v1/files/{file_id}`), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request, streamed bodies included."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response

        async def send_and_note_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            labels = (method, route_label(scope), str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


def job_families(session: Session, now: float) -> list[Metric]:
    """Jobs by state, created per tenant, failed per error code, and the oldest job in each live state."""
    jobs = GaugeMetricFamily("gft_jobs", "Jobs in each state (all tenants).", labels=["state"])
    oldest = GaugeMetricFamily(
        "gft_job_state_oldest_seconds",
        "Age of the stalest job in each live state: seconds "
        "since it entered the state or was last updated (0 when none).",
        labels=["state"],
    )
    created = CounterMetricFamily("gft_jobs_created", "Jobs created, per tenant id.", labels=["tenant"])
    failed = CounterMetricFamily(
        "gft_jobs_failed",
        "Jobs that ended failed, per error code (safety_regression: blocked by the release gate).",
        labels=["code"],
    )
    by_state = {
        status: (count, since)
        for status, count, since in session.execute(
            select(JobRow.status, func.count(), func.min(JobRow.updated_at)).group_by(JobRow.status)
        )
    }
    for state in JOB_STATES:
        jobs.add_metric([state], by_state.get(state, (0, None))[0])
    for state in LIVE_STATES:
        since = by_state.get(state, (0, None))[1]
        oldest.add_metric([state], max(0.0, now - since) if since is not None else 0.0)
    per_tenant = select(TenantRow.id, func.count(JobRow.seq)).outerjoin(JobRow, JobRow.tenant_id == TenantRow.id)
    for tenant_id, count in session.execute(per_tenant.group_by(TenantRow.id)):
        created.add_metric([tenant_id], count)
    code = JobRow.error["code"].as_string()
    for error_code, count in session.execute(
        select(code, func.count()).where(JobRow.status == JobStatus.FAILED).group_by(code)
    ):
        failed.add_metric([error_code or "unknown"], count)
    return [jobs, oldest, created, failed]


def queue_depth_family(client: redis.Redis) -> Metric:
    """Messages waiting in each Celery queue (all priorities); messages a worker holds are not counted."""
    depth = GaugeMetricFamily("gft_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"])
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    lengths = pipe.execute()
    for i, queue in enumerate(QUEUES):
        depth.add_metric([queue], sum(lengths[i * len(_PRIORITY_SUFFIXES) : (i + 1) * len(_PRIORITY_SUFFIXES)]))
    return depth


@lru_cache(maxsize=4)
def _broker(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class FleetCollector(Collector):
    """Reads the job table and the broker at each scrape. A source that does not answer is reported as
    `gft_source_up{source=...} 0` and its series are left out, so one scrape never fails as a whole."""

    def __init__(self, settings: Callable[[], Settings] = get_settings) -> None:
        self._settings = settings

    def describe(self) -> Iterable[Metric]:
        # Names and types only, so registering never touches the database.
        yield GaugeMetricFamily("gft_jobs", "", labels=["state"])
        yield GaugeMetricFamily("gft_job_state_oldest_seconds", "", labels=["state"])
        yield CounterMetricFamily("gft_jobs_created", "", labels=["tenant"])
        yield CounterMetricFamily("gft_jobs_failed", "", labels=["code"])
        yield GaugeMetricFamily("gft_queue_depth", "", labels=["queue"])
        yield GaugeMetricFamily("gft_source_up", "", labels=["source"])

    def collect(self) -> Iterable[Metric]:
        settings = self._settings()
        up = GaugeMetricFamily(
            "gft_source_up", "1 when the last scrape could read the source (database, broker).", labels=["source"]
        )
        try:
            with session_scope(settings.sqlalchemy_url) as session:
                yield from job_families(session, time.time())
            up.add_metric(["database"], 1)
        except Exception:
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric(["database"], 0)
        try:
            yield queue_depth_family(_broker(settings.broker_url))
            up.add_metric(["broker"], 1)
        except Exception:
            log.warning("metrics: the broker did not answer", exc_info=True)
            up.add_metric(["broker"], 0)
        yield up


REGISTRY.register(FleetCollector())


def exposition() -> tuple[bytes, str]:
    """The body and content type of a /metrics response: the classic text format (0.0.4), which every
    Prometheus reads; all our names are legacy-valid, so nothing needs escaping."""
    return generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4
