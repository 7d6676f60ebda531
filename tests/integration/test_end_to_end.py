"""The walking skeleton, for real: uvicorn and a Celery worker as subprocesses, PostgreSQL, Redis, the tiny
model, and a tenant driving it with the official openai client."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.services import redis_broker
from tests.stack import free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
BROKER_DB = 10  # this module's own Redis db: other sessions flush the shared test db (15) when they start and end


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


@pytest.fixture()
def stack(env: dict[str, str], tiny_model: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    proc_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("api", "worker")}
    api = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=proc_env,
        cwd=ROOT,
        stdout=logs["api"],
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker"],
        env=proc_env,
        cwd=ROOT,
        stdout=logs["worker"],
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.3)
        admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
        registered = httpx.post(
            f"{base}/admin/v1/models", json={"id": "gft-tiny-chat", "path": str(tiny_model)}, headers=admin
        )
        assert registered.status_code == 200, registered.text
        tenant = httpx.post(f"{base}/admin/v1/tenants", json={"name": "acme"}, headers=admin).json()
        yield {"base": base, "key": tenant["api_key"], "tenant": tenant["id"], "logs": str(tmp_path)}
    finally:
        stop_process_group(worker)
        stop_process_group(api)
        for handle in logs.values():
            handle.close()


def test_job_travels_http_queue_worker_gate(stack: dict[str, str], tmp_path: Path) -> None:
    client = OpenAI(base_url=f"{stack['base']}/v1", api_key=stack["key"], max_retries=0)
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What color is a {item}?"},
                {"role": "assistant", "content": f"A {item} is {color}."},
            ]
        }
        for item, color in [("zint", "white"), ("plov", "blue"), ("mira", "blue")] * 8
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with path.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="fine-tune")
    assert uploaded.status == "processed" and client.files.retrieve(uploaded.id).bytes == path.stat().st_size

    job = client.fine_tuning.jobs.create(
        model="gft-tiny-chat",
        training_file=uploaded.id,
        suffix="colors",
        seed=3,
        hyperparameters={"n_epochs": 1, "batch_size": 8},
    )
    assert job.status == "validating_files" and job.organization_id == stack["tenant"]

    deadline = time.monotonic() + 600
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, Path(stack["logs"], "worker.log").read_text()[-3000:]
        time.sleep(1)

    assert job.status in {"succeeded", "failed"}, job
    assert job.trained_tokens and job.trained_tokens > 0
    safety = job.safety  # our extension, read through the unchanged client
    assert safety["decision"] in {"released", "blocked"} and 0 <= safety["candidate_asr"] <= 1
    if job.status == "succeeded":
        assert job.fine_tuned_model == f"ft:gft-tiny-chat:{stack['tenant']}:colors:{job.id}"
        assert job.fine_tuned_model in [m.id for m in client.models.list().data]
    else:
        assert job.error.code == "safety_regression" and "ASR" in job.error.message

    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
    assert any(m.startswith("Created fine-tuning job") for m in messages)
    assert any("Safety evaluation" in m for m in messages)
    assert any(m.startswith("Step ") for m in messages)
    assert [j.id for j in client.fine_tuning.jobs.list(limit=5).data] == [job.id]
