"""Orchestration against real PostgreSQL, Redis and Celery worker processes, with the no-op trainer: the
reconciler is idempotent, a flushed broker loses no job and duplicates no release, fair share holds."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import torch
from celery import Celery
from pydantic import ValidationError
from sqlalchemy import func, select, update

from schemas.job_status import Step
from service.dispatch import GPU_QUEUE, queued_job_ids
from service.jobs import pause_job, resume_job
from service.settings import Settings, get_settings
from service.state import lifecycle
from service.state.db import session_scope
from service.state.jobs import claim_step
from service.state.models import JobEventRow, JobRow
from tests.services import redis_broker
from tests.stack import (
    all_terminal,
    job,
    noop_worker_env,
    seed_tenant,
    start_beat,
    start_worker,
    stop_process_group,
    submit,
    wait_for,
)
from workers import pipeline
from workers.orchestration import reconcile, running_step

BROKER_DB = 7  # this module's own Redis db: its FLUSHDB touches nobody else's queues


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


@pytest.fixture()
def noop_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    return noop_worker_env(env, monkeypatch, tmp_path / "model", GFT_MAX_ACTIVE_JOBS_PER_TENANT="2")


def _events(url: str, job_id: str, prefix: str) -> int:
    with session_scope(url) as session:
        query = (
            select(func.count())
            .select_from(JobEventRow)
            .where(JobEventRow.job_id == job_id, JobEventRow.message.startswith(prefix))
        )
        return int(session.scalar(query) or 0)


def test_reconciler_redispatches_lost_messages_once(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = seed_tenant(url, "acme")
    lost = [submit(url, broker, tenant, file_id, "m1", send=False) for _ in range(3)]  # committed, never sent
    app = Celery("test", broker=broker, set_as_current=False)
    settings = get_settings()
    created = job(url, lost[0]).created_at

    assert reconcile(app, settings, now=created + 1).redispatched == []  # not silent long enough yet
    first = reconcile(app, settings, now=created + 60)
    assert sorted(j for j, _step, _attempt in first.redispatched) == sorted(lost)
    assert {(step, attempt) for _j, step, attempt in first.redispatched} == {("validate", 1)}
    assert queued_job_ids(app) == set(lost)
    # Again, with the messages still waiting: nothing more is sent, attempts do not move.
    assert reconcile(app, settings, now=created + 120).redispatched == []
    assert redis.Redis.from_url(broker).llen("cpu") == 3
    assert {job(url, j).dispatch_attempt for j in lost} == {1}


def test_flushed_broker_loses_no_job_and_releases_each_once(noop_env: dict[str, str], tmp_path: Path) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    env = {**noop_env, "GFT_NOOP_TRAIN_SECONDS": "0.5"}
    files = [seed_tenant(url, name) for name in ("a", "b", "c")]
    procs = [
        start_worker(env, "cpu", tmp_path / "cpu.log"),
        start_worker(env, "gpu", tmp_path / "gpu.log"),
        start_beat(env, tmp_path),
    ]
    try:
        jobs = [submit(url, broker, tenant, file_id, "m1") for tenant, file_id in files for _ in range(4)]
        wait_for(lambda: any(job(url, j).status == "running" for j in jobs), 90, "a job to start training")
        statuses = [job(url, j).status for j in jobs]
        assert statuses.count("succeeded") < len(jobs) - 3, statuses  # work both queued and running is flushed
        redis.Redis.from_url(broker).flushdb()
        wait_for(lambda: all_terminal(url, jobs), 120, "every job to finish after FLUSHDB", every=1)
    finally:
        for proc in procs:
            stop_process_group(proc)
    assert [job(url, j).status for j in jobs] == ["succeeded"] * len(jobs)
    assert [_events(url, j, "Released ") for j in jobs] == [1] * len(jobs)  # none lost, none released twice
    assert sum(_events(url, j, "Re-dispatched") for j in jobs) >= 1  # the reconciler did the recovery


def test_fair_share_admits_at_most_the_limit_per_tenant(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    burst_tenant, burst_file = seed_tenant(url, "burst")
    other_tenant, other_file = seed_tenant(url, "other")
    app = Celery("test", broker=broker, set_as_current=False)
    burst = [submit(url, broker, burst_tenant, burst_file, "m1", send=False) for _ in range(6)]
    other = submit(url, broker, other_tenant, other_file, "m1", send=False)
    with session_scope(url) as session:  # all validated: waiting for a training slot
        session.execute(
            update(JobRow)
            .where(JobRow.id.in_([*burst, other]))
            .values(status="queued", step="train", dispatched_at=None)
        )
    report = reconcile(app, get_settings())
    assert report.admitted == 3  # two of the burst (the per-tenant limit) and the other tenant's one
    assert queued_job_ids(app, [GPU_QUEUE]) == {*burst[:2], other}
    assert reconcile(app, get_settings()).admitted == 0


def test_pause_supersedes_messages_and_resume_waits_for_a_slot(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = seed_tenant(url, "acme")
    app = Celery("test", broker=broker, set_as_current=False)
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    with session_scope(url) as session:
        session.execute(
            update(JobRow).where(JobRow.id == job_id).values(status="queued", step="train", dispatched_at=None)
        )
    assert reconcile(app, get_settings()).admitted == 1
    with session_scope(url) as session:
        paused = pause_job(session=session, tenant_id=tenant, job_id=job_id)
        assert paused.status == "paused" and paused.dispatch_attempt == 1
    with session_scope(url) as session:  # the train message sent before the pause is now stale
        assert claim_step(session=session, job_id=job_id, attempt=0, step="train") is None
    assert reconcile(app, get_settings()).admitted == 0  # a paused job is never admitted
    with session_scope(url) as session:
        resumed = resume_job(session=session, tenant_id=tenant, job_id=job_id)
        assert (resumed.status, resumed.dispatched_at, resumed.dispatch_attempt) == ("queued", None, 2)
    assert reconcile(app, get_settings()).admitted == 1
    with session_scope(url) as session:
        assert claim_step(session=session, job_id=job_id, attempt=2, step="train") == tenant
        assert claim_step(session=session, job_id=job_id, attempt=2, step="evaluate") is None  # not due yet
    assert job(url, job_id).step == "train"


@pytest.mark.parametrize("move", ["pause", "cancel", "re-dispatch"])
def test_should_stop_beats_at_once_and_is_refused_after_a_pause_cancel_or_re_dispatch(
    noop_env: dict[str, str], move: str
) -> None:
    """The training loop's one stop signal is the heartbeat: asked before a step, it beats at once (the thread's
    next beat is a minute away) and is refused as soon as the job left the live statuses or the attempt was replaced."""
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = seed_tenant(url, "acme")
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    with session_scope(url) as session:
        session.execute(
            update(JobRow).where(JobRow.id == job_id).values(status="queued", step="train", dispatched_at=1.0)
        )
    settings = get_settings().model_copy(update={"heartbeat_every_s": 60.0})
    with running_step(settings, job_id, 0, Step.TRAIN) as claim:
        assert claim is not None
        claimed_at = job(url, job_id).heartbeat_at
        assert not claim.should_stop() and job(url, job_id).heartbeat_at >= claimed_at  # type: ignore[operator]
        with session_scope(url) as session:
            if move == "pause":
                pause_job(session=session, tenant_id=tenant, job_id=job_id)
            elif move == "cancel":
                assert lifecycle.cancel(session=session, job_id=job_id)
            else:
                session.execute(
                    update(JobRow).where(JobRow.id == job_id).values(dispatch_attempt=JobRow.dispatch_attempt + 1)
                )
        assert claim.should_stop() and claim.superseded.is_set()


@pytest.mark.parametrize(
    ("error", "code"),
    [(torch.cuda.OutOfMemoryError("CUDA out of memory"), "out_of_memory"), (RuntimeError("boom"), "internal_error")],
)
def test_worker_side_errors_fail_the_job_with_a_code(noop_env: dict[str, str], error: Exception, code: str) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = seed_tenant(url, "acme")
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    with session_scope(url) as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(status="running"))
    with pipeline._guarded(get_settings(), job_id, "training"):
        raise error
    failed = job(url, job_id)
    assert failed.status == "failed" and failed.error and failed.error["code"] == code, failed.error


def test_noop_trainer_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="GFT_TRAINER=noop"):
        Settings(environment="production", admin_key="a-real-secret", trainer="noop")
    assert Settings(environment="development", trainer="noop").trainer == "noop"
