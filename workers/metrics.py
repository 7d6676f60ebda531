"""The workers' Prometheus metrics: training throughput and step time, GPU memory, evaluation time, what the
release gate decided, time jobs spent waiting.

Tasks run in Celery's pool processes, so each pool process serves its own registry over HTTP: with
GFT_WORKER_METRICS_PORT=P, pool process i (0-based, `%I` in Celery's terms) listens on port P + i; 0 turns it
off. A GPU worker runs with concurrency 1, so it serves exactly port P. Counters start at zero when a process
starts; Prometheus' rate() and increase() handle that.

Labels carry only values this code chooses from small fixed sets; never job ids, tenant ids or messages.
"""

import logging
import sys
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.job_status import JobStatus
from service.dispatch import STEP_TASKS

log = logging.getLogger(__name__)

GATE_OUTCOMES = frozenset({"released", "blocked", "held"})
# What the gate's rules are called in the `reason` label (workers.evaluation.gate's Decision.codes) plus "passed".
GATE_REASONS = frozenset(
    {
        "passed",
        "asr_above_cap",
        "asr_increase_above_allowed",
        "category_asr_above_cap",
        "category_asr_increase_above_allowed",
        "over_refusal_increase_above_allowed",
        "utility_collapsed",
        "gate_underpowered",
        "evaluation_overlap",
    }
)
# The pipeline's tasks and the queue each is routed to (service.dispatch), for the per-queue progress series.
TASK_QUEUES: dict[str, str] = dict(STEP_TASKS.values())
_LONG = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)

disable_created_metrics()  # no `_created` series: they double what each counter costs
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

TOKENS_PER_SECOND = Gauge(
    "gft_training_tokens_per_second",
    "Tokens per second of the training job this process runs, over its last logging window (0 when it trains nothing).",
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "gft_training_step_seconds",
    "Wall time of one optimizer step.",
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
TRAINING_SECONDS = Histogram(
    "gft_training_seconds", "Wall time of a training run (one train task).", registry=REGISTRY, buckets=_LONG
)
EVALUATION_SECONDS = Histogram(
    "gft_evaluation_seconds", "Wall time of a safety evaluation (base and candidate).", registry=REGISTRY, buckets=_LONG
)
STATE_SECONDS = Histogram(
    "gft_job_state_seconds",
    "Time a job spent in a state, observed when the pipeline moves it on (validating_files, queued).",
    ["state"],
    registry=REGISTRY,
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0),
)
GATE_DECISIONS = Counter(
    "gft_gate_decisions",
    "Release gate decisions, by outcome and by the first rule that blocked (reason=passed when none did).",
    ["outcome", "reason"],
    registry=REGISTRY,
)
RELEASED_ASR = Histogram(
    "gft_released_adapter_asr",
    "Attack success rate of each released adapter on the held-out harmful prompts.",
    registry=REGISTRY,
    buckets=(0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0),
)
SCREENING_FLAGS = Counter(
    "gft_screening_flags", "Training-data screening flags, by category.", ["category"], registry=REGISTRY
)
TASKS_STARTED = Counter(
    "gft_worker_tasks_started",
    "Tasks this process has started, by queue and task name.",
    ["queue", "task"],
    registry=REGISTRY,
)
TASKS_IN_PROGRESS = Gauge(
    "gft_worker_tasks_in_progress",
    "Tasks this process is running, by queue and task name.",
    ["queue", "task"],
    registry=REGISTRY,
)
for _task, _queue in TASK_QUEUES.items():
    TASKS_STARTED.labels(_queue, _task)
    TASKS_IN_PROGRESS.labels(_queue, _task)
# Series that exist from the start, at zero, so dashboards and alerts see them before the first event.
for _state in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED):
    STATE_SECONDS.labels(_state)
GATE_DECISIONS.labels("released", "passed")
for _reason in ("asr_above_cap", "asr_increase_above_allowed"):
    GATE_DECISIONS.labels("blocked", _reason)


class TrainingObserver:
    """Feeds one training run's callbacks into the metrics: `on_step` is called once per step (the trainer asks
    whether to stop before each one), `on_event` with each logged step's figures."""

    def __init__(self) -> None:
        self._started = self._last_step = 0.0

    def __enter__(self) -> "TrainingObserver":
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        TRAINING_SECONDS.observe(time.perf_counter() - self._started)
        TOKENS_PER_SECOND.set(0)

    def on_step(self) -> None:
        now = time.perf_counter()
        if self._last_step:
            STEP_SECONDS.observe(now - self._last_step)
        self._last_step = now

    def on_event(self, data: dict[str, Any] | None) -> None:
        if data and isinstance(data.get("tokens_per_s"), int | float):
            TOKENS_PER_SECOND.set(data["tokens_per_s"])


def record_state_exit(state: str, seconds: float) -> None:
    STATE_SECONDS.labels(state).observe(max(0.0, seconds))


def record_gate_decision(outcome: str, codes: Iterable[str], candidate_asr: float) -> None:
    """One gate decision; the ASR goes into the released-adapter histogram when the adapter was released."""
    if outcome not in GATE_OUTCOMES:
        raise ValueError(f"unknown gate outcome {outcome!r}")
    reason = next(iter(codes), "passed")
    GATE_DECISIONS.labels(outcome, reason if reason in GATE_REASONS else "other").inc()
    if outcome == "released":
        RELEASED_ASR.observe(candidate_asr)


def record_screening_flags(categories: Iterable[str], known: frozenset[str]) -> None:
    """One increment per flagged example and category; categories outside `known` (the screener's fixed
    taxonomy) count as "other", so the label stays bounded."""
    for category in categories:
        SCREENING_FLAGS.labels(category if category in known else "other").inc()


class GpuMemoryCollector(Collector):
    """CUDA memory of this process, read at scrape time; nothing until this process has initialised CUDA (it
    never imports torch or initialises CUDA itself)."""

    _FAMILIES = (
        ("gft_gpu_memory_allocated_bytes", "GPU memory held by tensors.", "memory_allocated"),
        ("gft_gpu_memory_reserved_bytes", "GPU memory reserved by the caching allocator.", "memory_reserved"),
        (
            "gft_gpu_memory_peak_bytes",
            "Peak GPU memory held by tensors since the process started.",
            "max_memory_allocated",
        ),
    )

    def describe(self) -> Iterable[Metric]:
        for name, doc, _ in self._FAMILIES:
            yield GaugeMetricFamily(name, doc, labels=["device"])

    def collect(self) -> Iterable[Metric]:
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_initialized():
            return
        for name, doc, reader in self._FAMILIES:
            family = GaugeMetricFamily(name, doc, labels=["device"])
            for index in range(torch.cuda.device_count()):
                family.add_metric([f"cuda:{index}"], getattr(torch.cuda, reader)(index))
            yield family


REGISTRY.register(GpuMemoryCollector())


def serve(port: int, addr: str = "0.0.0.0") -> WSGIServer | None:
    """Serve this process' registry from a daemon thread; None (logged) when the port is taken."""
    try:
        server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    except OSError as exc:
        log.warning("worker metrics: cannot listen on port %d (%s)", port, exc)
        return None
    log.info("worker metrics on port %d", port)
    return server


def pool_process_port(first_port: int) -> int:
    """The port of this pool process: first_port + its pool index (0 outside a pool)."""
    from billiard.process import current_process

    return first_port + int(getattr(current_process(), "index", 0) or 0)


def task_started(task: Any) -> None:
    name = getattr(task, "name", "")
    if name in TASK_QUEUES:
        TASKS_STARTED.labels(TASK_QUEUES[name], name).inc()
        TASKS_IN_PROGRESS.labels(TASK_QUEUES[name], name).inc()


def task_finished(task: Any) -> None:
    name = getattr(task, "name", "")
    if name in TASK_QUEUES:
        TASKS_IN_PROGRESS.labels(TASK_QUEUES[name], name).dec()
