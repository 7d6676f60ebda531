"""Thin, idempotent Celery tasks: each claims its step for (job id, attempt), runs it with a heartbeat, and
hands the job to the next step. The steps, in order, are listed in `workers.pipeline`:

    validate (cpu) -> screen (cpu): training data against the screening policy -> wait for a fair-share slot
    -> train (gpu) -> evaluate + gate + release or block (gpu)

A training slot frees when training hands over to evaluation (or stops): the hand-over admits the tenant's
next waiting job in the same transaction. The train step reads the screen step's stored result and never screens:
a job with none (paused during its screen step, then resumed) goes back to its screen step and gives up its slot,
so no path reaches training unscreened.

A message for a job that moved on, or from an attempt the reconciler replaced, does nothing.
"""

from typing import Any

from schemas.job_status import Step
from service.dispatch import EVALUATE_TASK, RECONCILE_TASK, SCREEN_FILE_TASK, SCREEN_TASK, TRAIN_TASK, VALIDATE_TASK
from service.settings import get_settings
from service.webhooks import deliver_pending
from workers import noop_steps, orchestration, pipeline, screening
from workers.celery_app import app


@app.task(name=VALIDATE_TASK)
def validate_job(job_id: str, attempt: int = 0) -> None:
    settings = get_settings()
    with orchestration.running_step(settings, job_id, attempt, Step.VALIDATE) as claim:
        if claim is None or not pipeline.validate(job_id, settings):
            return
        orchestration.hand_over(app, settings, job_id, attempt, Step.SCREEN)


@app.task(name=SCREEN_TASK)
def screen_job(job_id: str, attempt: int = 0) -> None:
    settings = get_settings()
    with orchestration.running_step(settings, job_id, attempt, Step.SCREEN) as claim:
        if claim is None or not pipeline.screen(job_id, settings):
            return  # stale, or blocked: a job in its screen step holds no training slot
    orchestration.admit(app, settings, claim.tenant_id, screened_job_id=job_id)


@app.task(name=TRAIN_TASK)
def train_job(job_id: str, attempt: int = 0) -> None:
    settings = get_settings()
    with orchestration.running_step(settings, job_id, attempt, Step.TRAIN) as claim:
        if claim is None:
            return
        screened = pipeline.screened(job_id, settings)
        if screened is None:  # never screened: back to its screen step, its slot to the tenant's next job
            orchestration.hand_over(app, settings, job_id, attempt, Step.SCREEN, claim.tenant_id)
            return
        if screened:
            if settings.trainer == "noop":
                trained = noop_steps.train(job_id, settings)
            else:
                trained = pipeline.train(job_id, settings, should_stop=claim.should_stop)
            if trained:
                orchestration.hand_over(app, settings, job_id, attempt, Step.EVALUATE, claim.tenant_id)
                return
    orchestration.admit(app, settings, claim.tenant_id)  # stopped, failed or blocked: its slot is free


@app.task(name=EVALUATE_TASK)
def evaluate_job(job_id: str, attempt: int = 0) -> None:
    settings = get_settings()
    with orchestration.running_step(settings, job_id, attempt, Step.EVALUATE) as claim:
        if claim is None:
            return
        if settings.trainer == "noop":
            noop_steps.evaluate(job_id, settings)
        else:
            pipeline.evaluate(job_id, settings)


@app.task(name=SCREEN_FILE_TASK, ignore_result=True)
def screen_file(file_id: str, storage_key: str, policy: dict[str, Any], policy_version: int, report_key: str) -> None:
    """The dry run of `POST /v1/files/{id}/screen`: the report goes to the artifact store, where the API waits."""
    screening.dry_run(get_settings(), file_id, storage_key, policy, policy_version, report_key)


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> None:
    """Celery beat runs this every GFT_RECONCILE_EVERY_S seconds on the cpu queue: re-dispatch what was lost,
    then send the tenants' webhooks for jobs that finished (deliveries are rows, so none is lost either)."""
    settings = get_settings()
    orchestration.reconcile(app, settings)
    deliver_pending(settings)
