"""Helpers for tests that run the real stack as subprocesses: Celery workers, beat and the API, against real
PostgreSQL and Redis; plus seeding tenants, files and jobs through the service's own functions."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from schemas.job_status import TERMINAL_STATUSES
from schemas.jobs import JobCreate
from service.cli import beat_command, worker_command
from service.dispatch import enqueue_validation
from service.files import upload_file
from service.jobs import submit_job
from service.settings import get_settings
from service.state.base_models import register_base_model
from service.state.db import session_scope
from service.state.jobs import get_job
from service.state.models import JobRow
from service.state.tenants import create_tenant
from service.storage import artifact_store

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A subprocess in its own session (so killpg reaches Celery's pool children), one thread for torch."""
    proc_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "GFT_TORCH_THREADS": "1"}
    with log.open("ab") as handle:
        return subprocess.Popen(
            command, env=proc_env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_worker(env: dict[str, str], queues: str, log: Path) -> subprocess.Popen[bytes]:
    return spawn(worker_command(queues, 1, "INFO"), env, log)


def start_beat(env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    return spawn(beat_command(tmp / "celerybeat-schedule"), env, tmp / "beat.log")


def stop_process_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """`sig` to the whole group (Celery's pool children too), then SIGKILL whatever is left."""
    for signum, wait in ((sig, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, signum)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(every)
    return value


def wait_until_up(check: Callable[[], Any], proc: subprocess.Popen[bytes], log: Path, seconds: float) -> Any:
    """Poll `check` (an HTTP error counts as not yet) until it is truthy; fail at once, with the log, if `proc`
    died, and after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if result := check():
                return result
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"gave up after {seconds}s:\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


@contextmanager
def api_server(env: dict[str, str], log: Path, ready_path: str = "/healthz") -> Iterator[str]:
    """Yield the base URL of `guardrail-ft serve` (migrations applied) running with `env`; stop it after."""
    port = free_port()
    proc = spawn([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--quiet"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(lambda: httpx.get(f"{base}{ready_path}", timeout=2).status_code == 200, proc, log, 90)
        yield base
    finally:
        stop_process_group(proc)


S3_TEST_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def s3_server(log: Path) -> Iterator[str]:
    """Yield the endpoint URL of moto's S3-compatible HTTP server, a separate process; stop it after. Clients
    need S3_TEST_ENV's (any) credentials."""
    port = free_port()
    proc = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], {}, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(lambda: httpx.get(url, timeout=1).status_code < 500, proc, log, 60)
        yield url
    finally:
        stop_process_group(proc)


def chat_rows(n: int) -> list[dict[str, Any]]:
    pairs = [("zint", "white"), ("plov", "blue"), ("mira", "green")]
    return [
        {
            "messages": [
                {"role": "user", "content": f"What color is a {item}?"},
                {"role": "assistant", "content": f"A {item} is {color}."},
            ]
        }
        for item, color in (pairs[i % len(pairs)] for i in range(n))
    ]


def seed_tenant(url: str, name: str, rows: int = 6) -> tuple[str, str]:
    """A tenant with one uploaded (real upload path) training file: (tenant id, file id)."""
    settings = get_settings()
    body = "".join(json.dumps(r) + "\n" for r in chat_rows(rows)).encode()
    with session_scope(url) as session:
        tenant, _key, _plain = create_tenant(session=session, name=name)
        tenant_id = tenant.id
    with session_scope(url) as session:
        row = upload_file(
            session=session,
            store=artifact_store(settings),
            tenant_id=tenant_id,
            filename="train.jsonl",
            purpose="fine-tune",
            stream=io.BytesIO(body),
            max_bytes=1 << 20,
        )
        return tenant_id, row.id


def register_model(url: str, model_id: str, path: Path) -> None:
    with session_scope(url) as session:
        register_base_model(session=session, model_id=model_id, path=str(path))


def noop_worker_env(env: dict[str, str], monkeypatch: Any, model_dir: Path, **extra: str) -> dict[str, str]:
    """Settings for workers that run the orchestration without model work (the no-op trainer), quick heartbeats
    and reconciles, and a registered model "m1" (an empty folder: nothing loads it)."""
    values = {
        "GFT_TRAINER": "noop",
        "GFT_HEARTBEAT_EVERY_S": "0.5",
        "GFT_STALE_AFTER_S": "3",
        "GFT_RECONCILE_EVERY_S": "1",
        **extra,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    model_dir.mkdir()
    register_model(env["GFT_DATABASE_URL"], "m1", model_dir)
    return {**env, **values}


def submit(
    url: str, broker_url: str, tenant_id: str, file_id: str, model: str, send: bool = True, **fields: Any
) -> str:
    """Create a job the way POST /v1/fine_tuning/jobs does: commit, then enqueue validation."""
    request = JobCreate(model=model, training_file=file_id, **fields)
    with session_scope(url) as session:
        job, _created = submit_job(session=session, tenant_id=tenant_id, request=request)
        job_id = job.id
    if send:
        enqueue_validation(broker_url=broker_url, job_id=job_id)
    return job_id


def job(url: str, job_id: str) -> JobRow:
    with session_scope(url) as session:
        row = get_job(session=session, job_id=job_id)
        assert row is not None
        return row


def all_terminal(url: str, job_ids: list[str]) -> bool:
    return all(job(url, j).status in TERMINAL_STATUSES for j in job_ids)
