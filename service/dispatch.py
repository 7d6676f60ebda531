"""Enqueue worker tasks by name: the control plane never imports the workers' code (or torch)."""

from functools import lru_cache

from celery import Celery

VALIDATE_TASK = "gft.validate_job"
CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"


@lru_cache(maxsize=4)
def _producer(broker_url: str) -> Celery:
    return Celery("guardrail-ft-api", broker=broker_url, set_as_current=False)


def enqueue_validation(*, broker_url: str, job_id: str) -> None:
    _producer(broker_url).send_task(VALIDATE_TASK, args=[job_id], queue=CPU_QUEUE)
