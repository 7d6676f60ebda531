"""Enqueue worker tasks by name: the control plane never imports the workers' code (or torch).

Messages carry ids only: (job_id, attempt). The database is the source of truth; a message whose attempt is
older than the job's `dispatch_attempt` is dropped by the worker, so re-sending is always safe.

Messages go through the anonymous exchange (straight onto the queue's Redis list), so a broker that lost its
keys (a restart without persistence, FLUSHDB) routes the very next message again without any re-declaration.
"""

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from celery import Celery

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
QUEUES = (CPU_QUEUE, GPU_QUEUE)

VALIDATE_TASK = "gft.validate_job"
# The pipeline's steps in order (workers.tasks): screen checks the training data before any GPU time.
STEP_TASKS: dict[str, tuple[str, str]] = {
    "validate": (VALIDATE_TASK, CPU_QUEUE),
    "screen": ("gft.screen_job", CPU_QUEUE),
    "train": ("gft.train_job", GPU_QUEUE),
    "evaluate": ("gft.evaluate_job", GPU_QUEUE),
}
RECONCILE_TASK = "gft.reconcile"
SCREEN_FILE_TASK = "gft.screen_file"

_JOB_ID = re.compile(rb"ftjob-[0-9a-f]{24}")


@lru_cache(maxsize=4)
def _producer(broker_url: str) -> Celery:
    return Celery("guardrail-ft-api", broker=broker_url, set_as_current=False)


def send_step(app: Celery, *, step: str, job_id: str, attempt: int) -> None:
    name, queue = STEP_TASKS[step]
    app.send_task(name, args=[job_id, attempt], queue=queue)


def enqueue_validation(*, broker_url: str, job_id: str) -> None:
    """The first message of a new job (attempt 0); the job row is committed before this is called."""
    send_step(_producer(broker_url), step="validate", job_id=job_id, attempt=0)


def enqueue_file_screening(*, broker_url: str, file_id: str, storage_key: str, policy: dict[str, Any],
                           policy_version: int, report_key: str) -> None:
    """A dry run of training-data screening (`POST /v1/files/{id}/screen`) on the cpu queue; the worker writes
    the report to the artifact store at report_key."""
    _producer(broker_url).send_task(SCREEN_FILE_TASK, args=[file_id, storage_key, policy, policy_version, report_key],
                                    queue=CPU_QUEUE)


def enqueue_reconcile(*, broker_url: str) -> None:
    """Run the reconciler now (after a resume, say) instead of at its next beat; it is idempotent."""
    _producer(broker_url).send_task(RECONCILE_TASK, queue=CPU_QUEUE)


def queued_job_ids(app: Celery, queues: Iterable[str] = QUEUES) -> set[str]:
    """Job ids with a message waiting on the broker's queues (Redis lists; messages a worker has taken but not
    acknowledged are not included: a heartbeat tells whether those are alive)."""
    found: set[str] = set()
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        for queue in queues:
            for raw in client.lrange(queue, 0, -1):
                found.update(m.decode() for m in _JOB_ID.findall(raw))
    return found
