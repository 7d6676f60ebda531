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

from schemas.job_status import Step

# Every task's name and queue is declared here once: workers.tasks registers under these names,
# workers.celery_app routes by TASK_QUEUES and workers.metrics labels by STEP_TASKS.
CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
QUEUES = (CPU_QUEUE, GPU_QUEUE)

VALIDATE_TASK = "gft.validate_job"
SCREEN_TASK = "gft.screen_job"
TRAIN_TASK = "gft.train_job"
EVALUATE_TASK = "gft.evaluate_job"
RECONCILE_TASK = "gft.reconcile"
SCREEN_FILE_TASK = "gft.screen_file"

# The pipeline's steps in order (workers.tasks), each with its task and queue: screen checks the training data
# before any GPU time.
STEP_TASKS: dict[Step, tuple[str, str]] = {
    Step.VALIDATE: (VALIDATE_TASK, CPU_QUEUE),
    Step.SCREEN: (SCREEN_TASK, CPU_QUEUE),
    Step.TRAIN: (TRAIN_TASK, GPU_QUEUE),
    Step.EVALUATE: (EVALUATE_TASK, GPU_QUEUE),
}
TASK_QUEUES: dict[str, str] = {**dict(STEP_TASKS.values()), RECONCILE_TASK: CPU_QUEUE, SCREEN_FILE_TASK: CPU_QUEUE}

_JOB_ID = re.compile(rb"ftjob-[0-9a-f]{24}")


@lru_cache(maxsize=4)
def _producer(broker_url: str) -> Celery:
    return Celery("guardrail-ft-api", broker=broker_url, set_as_current=False)


def send_step(app: Celery, *, step: Step, job_id: str, attempt: int) -> None:
    name, queue = STEP_TASKS[step]
    app.send_task(name, args=[job_id, attempt], queue=queue)


def enqueue_validation(*, broker_url: str, job_id: str) -> None:
    """The first message of a new job (attempt 0); the job row is committed before this is called."""
    send_step(_producer(broker_url), step=Step.VALIDATE, job_id=job_id, attempt=0)


def enqueue_file_screening(
    *, broker_url: str, file_id: str, storage_key: str, policy: dict[str, Any], policy_version: int, report_key: str
) -> None:
    """A dry run of training-data screening (`POST /v1/files/{id}/screen`) on the cpu queue; the worker writes
    the report to the artifact store at report_key."""
    _producer(broker_url).send_task(
        SCREEN_FILE_TASK,
        args=[file_id, storage_key, policy, policy_version, report_key],
        queue=TASK_QUEUES[SCREEN_FILE_TASK],
    )


def enqueue_reconcile(*, broker_url: str) -> None:
    """Run the reconciler now (after a resume, say) instead of at its next beat; it is idempotent."""
    _producer(broker_url).send_task(RECONCILE_TASK, queue=TASK_QUEUES[RECONCILE_TASK])


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
