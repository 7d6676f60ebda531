"""The workers' metrics: what the pipeline's hooks record, the per-process HTTP endpoint, GPU memory read only
when CUDA is in use, and the gate's reason codes the `reason` label comes from."""

import json
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from schemas.policy import GatePolicy
from service.api.app import create_app
from service.dispatch import enqueue_validation
from service.settings import get_settings
from tests.stack import stop_process_group
from workers import metrics
from workers.evaluation.gate import SuiteResult, decide_release
from workers.evaluation.statistics import Rate


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gate_codes_follow_its_reasons() -> None:
    policy = GatePolicy(max_asr=0.2, max_asr_increase=0.05, use_upper_bound=False)
    passed = decide_release([SuiteResult("s", Rate(1, 100), Rate(2, 100))], policy)
    assert passed.release and passed.codes == []
    both = decide_release([SuiteResult("s", Rate(1, 100), Rate(50, 100))], policy)
    assert both.codes == ["asr_above_cap", "asr_increase_above_allowed"] and len(both.reasons) == 2
    rise = decide_release([SuiteResult("s", Rate(5, 100), Rate(15, 100))], policy)
    assert rise.codes == ["asr_increase_above_allowed"]


def test_gate_decisions_and_released_asr() -> None:
    released, blocked = (
        sample("gft_gate_decisions_total", outcome="released", reason="passed"),
        sample("gft_gate_decisions_total", outcome="blocked", reason="asr_above_cap"),
    )
    asr_count, low_bucket = (
        sample("gft_released_adapter_asr_count"),
        sample("gft_released_adapter_asr_bucket", le="0.05"),
    )
    metrics.record_gate_decision("released", [], 0.04)
    metrics.record_gate_decision("blocked", ["asr_above_cap", "asr_increase_above_allowed"], 0.6)
    assert sample("gft_gate_decisions_total", outcome="released", reason="passed") == released + 1
    assert sample("gft_gate_decisions_total", outcome="blocked", reason="asr_above_cap") == blocked + 1
    assert sample("gft_released_adapter_asr_count") == asr_count + 1  # blocked adapters are not counted
    assert sample("gft_released_adapter_asr_bucket", le="0.05") == low_bucket + 1
    with pytest.raises(ValueError):
        metrics.record_gate_decision("maybe", [], 0.0)


def test_screening_categories_stay_bounded() -> None:
    known = frozenset({"violence", "self_harm"})
    before = sample("gft_screening_flags_total", category="other")
    metrics.record_screening_flags(["violence", "some tenant's free text"], known)
    assert sample("gft_screening_flags_total", category="other") == before + 1
    assert sample("gft_screening_flags_total", category="violence") >= 1


def test_training_observer_times_steps_and_resets_throughput() -> None:
    steps, runs = sample("gft_training_step_seconds_count"), sample("gft_training_seconds_count")
    with metrics.TrainingObserver() as observer:
        for _ in range(4):  # asked before each of 4 steps: 3 intervals between them
            observer.on_step()
        observer.on_event({"step": 3, "tokens_per_s": 1234.5})
        assert sample("gft_training_tokens_per_second") == 1234.5
        observer.on_event({"step": 4})  # an event without throughput leaves the gauge alone
        assert sample("gft_training_tokens_per_second") == 1234.5
    assert sample("gft_training_step_seconds_count") == steps + 3
    assert sample("gft_training_seconds_count") == runs + 1
    assert sample("gft_training_tokens_per_second") == 0


def test_task_signals_track_work_per_queue() -> None:
    task = types.SimpleNamespace(name="gft.train_job")
    started = sample("gft_worker_tasks_started_total", queue="gpu", task="gft.train_job")
    metrics.task_started(task)
    assert sample("gft_worker_tasks_in_progress", queue="gpu", task="gft.train_job") == 1
    metrics.task_finished(task)
    assert sample("gft_worker_tasks_in_progress", queue="gpu", task="gft.train_job") == 0
    assert sample("gft_worker_tasks_started_total", queue="gpu", task="gft.train_job") == started + 1
    metrics.task_started(types.SimpleNamespace(name="celery.ping"))  # not ours: no new label value


def test_gpu_memory_only_once_cuda_is_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = types.SimpleNamespace(
        is_initialized=lambda: False,
        device_count=lambda: 1,
        memory_allocated=lambda i: 1000,
        memory_reserved=lambda i: 2000,
        max_memory_allocated=lambda i: 1500,
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    collector = metrics.GpuMemoryCollector()
    assert list(collector.collect()) == []
    cuda.is_initialized = lambda: True
    values = {f.name: f.samples[0] for f in collector.collect()}
    assert values["gft_gpu_memory_allocated_bytes"].value == 1000
    assert values["gft_gpu_memory_reserved_bytes"].labels == {"device": "cuda:0"}
    assert values["gft_gpu_memory_peak_bytes"].value == 1500


def test_each_pool_process_serves_its_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    import billiard.process

    monkeypatch.setattr(billiard.process, "current_process", lambda: types.SimpleNamespace(index=2))
    assert metrics.pool_process_port(9101) == 9103
    port = free_port()
    server = metrics.serve(port, addr="127.0.0.1")
    assert server is not None
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "gft_training_step_seconds_bucket" in body and "gft_gate_decisions_total" in body
        assert metrics.serve(port, addr="127.0.0.1") is None  # taken: logged, the worker carries on
    finally:
        server.shutdown()
        server.server_close()


def test_workers_metrics_never_import_torch() -> None:
    code = "import sys, workers.metrics, workers.celery_app; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_pipeline_records_time_spent_validating(env: dict[str, str], tmp_path: Path) -> None:
    """The validate step observes how long the job waited in validating_files."""
    from workers import pipeline

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
    with TestClient(create_app()) as api:
        assert api.post("/admin/v1/models", json={"id": "m1", "path": str(model_dir)}, headers=admin).is_success
        key = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin).json()["api_key"]
        tenant = {"Authorization": f"Bearer {key}"}
        row = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
        file_id = api.post(
            "/v1/files",
            files={"file": ("train.jsonl", row.encode() + b"\n")},
            data={"purpose": "fine-tune"},
            headers=tenant,
        ).json()["id"]
        job = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=tenant).json()
    before = sample("gft_job_state_seconds_count", state="validating_files")
    assert pipeline.validate(job["id"], get_settings())
    assert sample("gft_job_state_seconds_count", state="validating_files") == before + 1
    assert pipeline.validate(job["id"], get_settings())  # a redelivered message: already queued, nothing recorded
    assert sample("gft_job_state_seconds_count", state="validating_files") == before + 1


def started_validations(exposition: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == "gft_worker_tasks_started_total" and s.labels["task"] == "gft.validate_job"
    )


def test_a_real_worker_serves_its_metrics_and_counts_its_tasks(env: dict[str, str], tmp_path: Path) -> None:
    """Celery's worker_process_init starts the pool process' server on GFT_WORKER_METRICS_PORT + 0; a task it
    runs shows in the task series."""
    port = free_port()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "-Q",
                "cpu",
                "-c",
                "1",
                "--loglevel",
                "INFO",
                "-n",
                f"metrics-test-{port}@%h",
            ],
            env={**os.environ, **env, "GFT_WORKER_METRICS_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        enqueue_validation(broker_url=env["GFT_BROKER_URL"], job_id="ftjob-does-not-exist")
        while started_validations(httpx.get(url, timeout=2).text) < 1:  # messages other tests left count too
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
    finally:
        stop_process_group(worker)
