"""Four real architectures through the API: random-init Llama 3, Qwen 2.5, Gemma 2 and Mistral v0.3 models with
their real chat templates (tests/real_arch.py) registered by an admin, one guarded job each created by a tenant
with the official openai client, run by a real Celery worker (PostgreSQL, Redis) through validation, screening,
training and the gate, and each released adapter downloaded and loaded onto its base with PeftModel.from_pretrained.

The models are random, so the gate's figures mean nothing: the policy's thresholds let every measured figure
pass, and the test checks the path (every job terminal, the gate's report on the general evaluation pool, the
adapter served and loadable). The gate is small (11 drawn prompts per suite, one prefilling length, no sampled
sweep, 8 new tokens) to keep the test to about a minute.
"""

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from openai import OpenAI
from peft import PeftModel
from transformers import AutoModelForCausalLM

from schemas.policy import Policy
from tests import real_arch
from tests.services import redis_broker
from tests.stack import api_server, start_worker, stop_process_group, wait_for

BROKER_DB = 13  # this module's own Redis db
ROWS = 8
SMALL_GATE = {
    "harmful_prompts": 11,
    "prefill_prompts": 11,
    "prefill_tokens": [5],
    "sweep": [],
    "tenant_contexts": 0,
    "trigger_candidates": 0,
    "utility_rows": 4,
    "max_new_tokens": 8,
    "examples_per_suite": 1,
}
PASS_ALL = (
    "max_asr",
    "max_asr_increase",
    "category_max_asr",
    "category_max_asr_increase",
    "max_over_refusal_increase",
    "max_utility_drop",
    "prefill_max_asr",
)


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


def _policy() -> dict[str, object]:
    """The default policy with a small gate whose thresholds pass any figure: the path is under test, not the
    decision a random model earns."""
    policy = Policy().model_dump()
    policy["gate"].update(SMALL_GATE)
    policy["gate"].update({key: 1.0 for key in PASS_ALL})
    return policy


def _adapter_loads(response: httpx.Response, job_id: str, folder: Path, scratch: Path) -> bool:
    """The downloaded tar unpacked, loaded onto a fresh base with PeftModel.from_pretrained: its logits differ from
    the base's (training moved the adapter)."""
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        tar.extractall(scratch, filter="data")
    base = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    ids = torch.tensor([[3, 17, 42, 7, 99]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        adapted = PeftModel.from_pretrained(base, scratch / job_id)
        after = adapted(input_ids=ids).logits
    return isinstance(adapted, PeftModel) and not torch.allclose(before, after)


def test_four_architectures_train_gate_release_and_load(env: dict[str, str], tmp_path: Path) -> None:
    folders = {name: real_arch.build(name, tmp_path / "models" / name) for name in real_arch.NAMES}
    worker_env = {**env, "GFT_WORKER_DEVICE": "cpu"}
    admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
    body = "".join(json.dumps(r) + "\n" for r in real_arch.chat_rows(ROWS)).encode()
    with api_server(worker_env, tmp_path / "api.log") as base:
        put = httpx.put(f"{base}/admin/v1/policy", json=_policy(), headers=admin)
        assert put.status_code == 200, put.text
        for name, folder in folders.items():
            registered = httpx.post(f"{base}/admin/v1/models", json={"id": name, "path": str(folder)}, headers=admin)
            assert registered.status_code == 200, registered.text
        tenant = httpx.post(f"{base}/admin/v1/tenants", json={"name": "archs"}, headers=admin).json()
        client = OpenAI(base_url=f"{base}/v1", api_key=tenant["api_key"], max_retries=0)
        uploaded = client.files.create(file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune")
        jobs = {
            name: client.fine_tuning.jobs.create(
                model=name, training_file=uploaded.id, seed=1, hyperparameters={"n_epochs": 1, "batch_size": 4}
            ).id
            for name in folders
        }
        worker = start_worker(worker_env, "cpu,gpu", tmp_path / "worker.log")
        try:

            def finished() -> dict[str, object] | None:
                current = {name: client.fine_tuning.jobs.retrieve(job_id) for name, job_id in jobs.items()}
                terminal = all(j.status in {"succeeded", "failed", "cancelled"} for j in current.values())
                return current if terminal else None

            final = wait_for(finished, 170, "four jobs to finish", every=1)
        finally:
            stop_process_group(worker)

        tenant_auth = {"Authorization": f"Bearer {tenant['api_key']}"}
        log = (tmp_path / "worker.log").read_text()[-3000:]
        for name, job in final.items():
            assert job.status == "succeeded", (name, job.error, log)
            assert job.safety["decision"] == "released" and job.trained_tokens > 0, name
            report = httpx.get(f"{base}/v1/fine_tuning/jobs/{job.id}/safety_report", headers=tenant_auth).json()
            assert report["evaluated_as"] == {"form": "merged", "dtype": "float32"}, name
            assert {s["set"] for s in report["suites"]} == {
                "builtin:general/harmful.jsonl",
                "builtin:general/prefill.jsonl",
                "builtin:general/over_refusal.jsonl",
            }, name
            download = httpx.get(f"{base}/v1/fine_tuning/jobs/{job.id}/adapter", headers=tenant_auth, timeout=60)
            assert download.status_code == 200, (name, download.text)
            assert _adapter_loads(download, job.id, folders[name], tmp_path / "downloads" / name), name
