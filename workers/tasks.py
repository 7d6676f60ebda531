"""Thin, idempotent Celery tasks: each reads the job by id, runs one pipeline step, enqueues the next."""

from service.settings import get_settings
from workers import pipeline
from workers.celery_app import app


@app.task(name="gft.validate_job")
def validate_job(job_id: str) -> None:
    if pipeline.validate(job_id, get_settings()):
        train_job.apply_async(args=[job_id])


@app.task(name="gft.train_job")
def train_job(job_id: str) -> None:
    if pipeline.train(job_id, get_settings()):
        evaluate_job.apply_async(args=[job_id])


@app.task(name="gft.evaluate_job")
def evaluate_job(job_id: str) -> None:
    pipeline.evaluate(job_id, get_settings())
