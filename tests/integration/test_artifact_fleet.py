"""A fleet whose nodes share no disk, artifacts in S3 (moto's S3-compatible server, a separate process): the API,
a cpu worker and two gpu workers (real Celery processes, the tiny model, PostgreSQL, Redis), each with its own
empty data folder and GFT_ARTIFACT_STORE=s3. A tenant uploads through the API; gpu worker A trains until two
checkpoints are stored and is killed with SIGKILL; gpu worker B, whose disk holds nothing, resumes from the latest
checkpoint in S3 and the gate releases; the API serves the adapter, the safety report and the file from S3. No
node's local artifact folder ever holds a file."""

import hashlib
import io
import json
import signal
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from openai import OpenAI

from schemas.policy import Policy
from tests.services import redis_broker
from tests.stack import (
    S3_TEST_ENV,
    api_server,
    chat_rows,
    s3_server,
    start_beat,
    start_worker,
    stop_process_group,
    wait_for,
)

BROKER_DB = 11  # this module's own Redis db
BUCKET, PREFIX = "gft-fleet", "gft"
NODES = ("api", "cpu", "gpu-a", "gpu-b")


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


@pytest.fixture()
def bucket(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """The S3 endpoint and a client for the test's own look into the bucket."""
    with s3_server(tmp_path / "moto.log") as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=S3_TEST_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client


def _permissive_policy() -> dict[str, object]:
    """A checkpoint every step (the kill lands between two), and a gate that releases whatever it measures: this
    test is about where artifacts live, not about the gate's decision."""
    policy = Policy().model_dump()
    policy["training"]["checkpoint_every_steps"] = 1
    policy["gate"].update(
        {
            key: 1.0
            for key in (
                "max_asr",
                "max_asr_increase",
                "category_max_asr",
                "category_max_asr_increase",
                "max_over_refusal_increase",
                "max_utility_drop",
                "prefill_max_asr",
            )
        }
    )
    return policy


def _files(folder: Path) -> list[str]:
    return sorted(p.as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_job_crosses_nodes_that_share_no_disk(
    env: dict[str, str], bucket: tuple[str, object], tiny_model: Path, tmp_path: Path
) -> None:
    endpoint, s3 = bucket
    fleet = {
        **env,
        **S3_TEST_ENV,
        "GFT_ARTIFACT_STORE": "s3",
        "GFT_S3_BUCKET": BUCKET,
        "GFT_S3_PREFIX": PREFIX,
        "GFT_S3_ENDPOINT_URL": endpoint,
        "GFT_HEARTBEAT_EVERY_S": "1",
        "GFT_STALE_AFTER_S": "6",
        "GFT_RECONCILE_EVERY_S": "2",
        "GFT_WORKER_DEVICE": "cpu",
    }
    nodes = {name: tmp_path / name for name in NODES}
    for folder in nodes.values():
        folder.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()

    def on(node: str) -> dict[str, str]:
        return {**fleet, "GFT_DATA_DIR": str(nodes[node])}

    admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
    body = "".join(json.dumps(r) + "\n" for r in chat_rows(24)).encode()
    with api_server(on("api"), logs / "api.log") as base:
        assert httpx.put(f"{base}/admin/v1/policy", json=_permissive_policy(), headers=admin).status_code == 200
        registered = httpx.post(
            f"{base}/admin/v1/models", json={"id": "gft-tiny-chat", "path": str(tiny_model)}, headers=admin
        )
        assert registered.status_code == 200, registered.text
        tenant = httpx.post(f"{base}/admin/v1/tenants", json={"name": "fleet"}, headers=admin).json()
        client = OpenAI(base_url=f"{base}/v1", api_key=tenant["api_key"], max_retries=0)
        uploaded = client.files.create(file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune")

        procs = [
            start_worker(on("cpu"), "cpu", logs / "cpu.log"),
            start_beat(on("cpu"), nodes["cpu"]),
            start_worker(on("gpu-a"), "gpu", logs / "gpu-a.log"),
        ]
        try:
            job = client.fine_tuning.jobs.create(
                model="gft-tiny-chat",
                training_file=uploaded.id,
                seed=5,
                hyperparameters={"n_epochs": 1, "batch_size": 2},
            )  # 12 steps

            def steps() -> list[int]:
                return [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id).data]

            def finished() -> object:
                current = client.fine_tuning.jobs.retrieve(job.id)
                return current if current.status in {"succeeded", "failed", "cancelled"} else None

            wait_for(lambda: len(steps()) >= 2, 300, "two checkpoints from worker A")
            stop_process_group(procs.pop(), signal.SIGKILL)  # worker A and its pool child, mid-training
            killed_at = max(steps())
            assert client.fine_tuning.jobs.retrieve(job.id).status == "running" and killed_at < 12
            procs.append(start_worker(on("gpu-b"), "gpu", logs / "gpu-b.log"))
            final = wait_for(finished, 600, "worker B to finish the job", every=1)
        finally:
            for proc in procs:
                stop_process_group(proc)

        assert final.status == "succeeded", (final.error, (logs / "gpu-b.log").read_text()[-3000:])
        messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=200).data]
        resumed = [m for m in messages if m.startswith("Resumed from the checkpoint at step ")]
        assert resumed and int(resumed[0].rsplit(" ", 1)[1].rstrip(".")) >= killed_at, messages
        assert len([m for m in messages if m.startswith("Released ")]) == 1

        # The API node, whose disk holds no artifact, serves the released adapter from S3...
        response = httpx.get(
            f"{base}/v1/fine_tuning/jobs/{job.id}/adapter",
            headers={"Authorization": f"Bearer {tenant['api_key']}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
        with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
            served = {
                m.name.removeprefix(f"{job.id}/"): hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                for m in tar.getmembers()
                if m.isfile()
            }
        manifest = json.loads(
            s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/adapters/{job.id}/.manifest.json")["Body"].read()
        )
        assert served == manifest["files"] and "adapter_model.safetensors" in served
        # ... and the safety report and the training file.
        report = httpx.get(
            f"{base}/v1/fine_tuning/jobs/{job.id}/safety_report",
            headers={"Authorization": f"Bearer {tenant['api_key']}"},
        )
        assert report.status_code == 200 and report.json()["outcome"] == "released"
        assert client.files.content(uploaded.id).read() == body

    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    for expected in (
        f"{PREFIX}/files/{tenant['id']}/{uploaded.id}.jsonl",
        f"{PREFIX}/adapters/{job.id}/",
        f"{PREFIX}/checkpoints/{job.id}/step-{killed_at:06d}/",
        f"{PREFIX}/reports/{job.id}/",
    ):
        assert any(k.startswith(expected) for k in keys), (expected, keys)
    for node, folder in nodes.items():  # nothing stored locally; temporary copies and staging cleaned up
        scratch = _files(folder / "cache" / "s3")
        if node == "gpu-a":  # killed, maybe mid-upload: a staging file no reader ever sees may stay on its disk
            scratch = [f for f in scratch if "/.staging-" not in f]
        assert _files(folder / "artifacts") == [] and scratch == [], node
