"""The Celery app. Configured lazily from Settings when first used, never at import time.

Reliability settings follow Celery's guidance for long, expensive, idempotent tasks: late acks, redelivery
when a worker is lost, one message prefetched at a time.
"""

from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init

from service.dispatch import CPU_QUEUE, RECONCILE_TASK, TASK_QUEUES
from service.settings import get_settings
from workers import metrics

app = Celery("guardrail-ft", include=["workers.tasks"])


def celery_config(broker_url: str, reconcile_every_s: float = 30.0) -> dict[str, Any]:
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": CPU_QUEUE,
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
        "broker_transport_options": {"visibility_timeout": 6 * 3600},
        # The reconciler (workers.orchestration.reconcile), run by `guardrail-ft beat`; a run that outlives its
        # period is simply followed by the next one: it is idempotent.
        "beat_schedule": {
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": reconcile_every_s,
                "options": {"queue": TASK_QUEUES[RECONCILE_TASK], "expires": reconcile_every_s},
            }
        },
    }


@app.on_configure.connect
def _configure(sender: Celery, **_kwargs: Any) -> None:
    settings = get_settings()
    sender.conf.update(celery_config(settings.broker_url, settings.reconcile_every_s))


@worker_process_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    """Each pool process serves its own /metrics (see workers.metrics) when GFT_WORKER_METRICS_PORT is set."""
    first_port = get_settings().worker_metrics_port
    if first_port:
        metrics.serve(metrics.pool_process_port(first_port))


@task_prerun.connect
def _task_started(task: Task, **_kwargs: Any) -> None:
    metrics.task_started(task)


@task_postrun.connect
def _task_finished(task: Task, **_kwargs: Any) -> None:
    metrics.task_finished(task)
