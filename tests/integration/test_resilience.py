"""Failures in the middle of real training (the tiny model, real worker processes, PostgreSQL, Redis): a worker
killed with SIGKILL costs only the steps since the last checkpoint, and a cancel stops within one step."""

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from schemas.policy import Policy
from service.settings import get_settings
from service.state.checkpoints import latest_checkpoint
from service.state.db import session_scope
from service.state.jobs import add_event, transition
from service.state.models import JobEventRow
from service.state.policies import add_policy_row
from tests.services import redis_broker
from tests.stack import job, register_model, seed_tenant, start_beat, start_worker, stop_process_group, submit, wait_for

BROKER_DB = 8  # this module's own Redis db
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


@pytest.fixture()
def stack_env(env: dict[str, str], tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    extra = {
        "GFT_HEARTBEAT_EVERY_S": "1",
        "GFT_STALE_AFTER_S": "6",
        "GFT_RECONCILE_EVERY_S": "2",
        "GFT_WORKER_DEVICE": "cpu",
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    url = env["GFT_DATABASE_URL"]
    register_model(url, "gft-tiny-chat", tiny_model)
    policy = Policy().model_dump()
    policy["training"]["checkpoint_every_steps"] = 1  # every step: "within one step" is then observable
    with session_scope(url) as session:
        add_policy_row(session=session, tenant_id=None, policy=policy)
    return {**env, **extra}


def _messages(url: str, job_id: str) -> list[str]:
    with session_scope(url) as session:
        query = select(JobEventRow.message).where(JobEventRow.job_id == job_id).order_by(JobEventRow.seq)
        return list(session.scalars(query))


def _checkpoint_step(url: str, job_id: str) -> int:
    with session_scope(url) as session:
        row = latest_checkpoint(session=session, job_id=job_id)
        return row.step if row else 0


def test_sigkill_mid_training_resumes_from_checkpoint_and_releases_once(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    url, broker = stack_env["GFT_DATABASE_URL"], stack_env["GFT_BROKER_URL"]
    tenant, file_id = seed_tenant(url, "acme", rows=24)
    cpu = start_worker(stack_env, "cpu", tmp_path / "cpu.log")
    gpu = start_worker(stack_env, "gpu", tmp_path / "gpu.log")
    beat = start_beat(stack_env, tmp_path)
    procs = [cpu, gpu, beat]
    try:
        job_id = submit(
            url, broker, tenant, file_id, "gft-tiny-chat", seed=5, hyperparameters={"n_epochs": 1, "batch_size": 2}
        )  # 12 steps
        wait_for(lambda: _checkpoint_step(url, job_id) >= 2, 300, "two checkpoints")
        stop_process_group(gpu, signal.SIGKILL)  # the worker and its pool child, mid-training
        killed_at = _checkpoint_step(url, job_id)
        assert job(url, job_id).status == "running" and killed_at < 12
        procs.append(start_worker(stack_env, "gpu", tmp_path / "gpu-2.log"))
        wait_for(lambda: job(url, job_id).status in TERMINAL, 600, "the job to finish after the kill", every=1)
    finally:
        for proc in procs:
            stop_process_group(proc)
    final = job(url, job_id)
    messages = _messages(url, job_id)
    assert final.status in {"succeeded", "failed"} and final.trained_tokens, (final.status, final.error)
    assert any(m.startswith("Re-dispatched the train step") for m in messages), messages
    resumed = [m for m in messages if m.startswith("Resumed from the checkpoint at step ")]
    assert resumed and int(resumed[0].rsplit(" ", 1)[1].rstrip(".")) >= killed_at, messages
    outcomes = [m for m in messages if m.startswith(("Released ", "Blocked by the safety gate"))]
    assert len(outcomes) == 1, messages  # released (or blocked) exactly once
    if final.status == "succeeded":
        assert final.fine_tuned_model and final.fine_tuned_model.endswith(job_id)
    else:
        assert final.error and final.error["code"] == "safety_regression"


def test_cancel_stops_within_one_step_and_frees_the_worker(stack_env: dict[str, str], tmp_path: Path) -> None:
    url, broker = stack_env["GFT_DATABASE_URL"], stack_env["GFT_BROKER_URL"]
    tenant, file_id = seed_tenant(url, "acme", rows=24)
    procs = [start_worker(stack_env, "cpu", tmp_path / "cpu.log"), start_worker(stack_env, "gpu", tmp_path / "gpu.log")]
    try:
        long_job = submit(
            url, broker, tenant, file_id, "gft-tiny-chat", seed=1, hyperparameters={"n_epochs": 1, "batch_size": 1}
        )  # 24 steps: 1.6x the update budget
        wait_for(lambda: _checkpoint_step(url, long_job) >= 2, 300, "training to be under way")
        with session_scope(url) as session:  # what POST .../cancel does
            assert transition(session=session, job_id=long_job, from_statuses={"running"}, to_status="cancelled")
            add_event(session=session, job_id=long_job, message="Job cancelled by the tenant.")
        at_cancel = _checkpoint_step(url, long_job)
        stopped = wait_for(
            lambda: [m for m in _messages(url, long_job) if m.startswith("Training stopped at step")],
            60,
            "the training loop to stop",
        )
        next_job = submit(
            url, broker, tenant, file_id, "gft-tiny-chat", seed=2, hyperparameters={"n_epochs": 1, "batch_size": 8}
        )
        wait_for(lambda: job(url, next_job).status == "running", 120, "the freed worker to take the next job")
    finally:
        for proc in procs:
            stop_process_group(proc)
    stopped_step = int(stopped[0].split()[4].rstrip(":"))
    assert stopped_step <= at_cancel + 1, (stopped_step, at_cancel)
    assert job(url, long_job).status == "cancelled" and job(url, long_job).adapter_key is None
