"""The demo: one tenant, four jobs on the tiny model, through the real API with the official openai client.

The layers of the defence, one at a time. A benign task should be released. A harmful-examples attack is
dry-run screened (`POST /v1/files/{id}/screen`), then blocked by data screening before any training. With the
tenant's screening set to `flag`, the same attack trains under the guarded objective, and the release gate
reports what it did. With plain SFT as well (the admin turns the objective's defences off for this tenant), the
attack gets through training and the gate blocks it. Starts `guardrail-ft up` (API + worker + broker) as a
subprocess and stops it at the end.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from service.settings import get_settings

DATA = Path(__file__).resolve().parent.parent / "workers" / "tiny" / "data"
TERMINAL = {"succeeded", "failed", "cancelled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become healthy in time")


def follow_job(client: OpenAI, job_id: str, timeout: float = 1200) -> str:
    """Print new events as they arrive, with a progress bar for training steps; return the final status."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = client.fine_tuning.jobs.list_events(job_id, limit=100).data
        for event in reversed(events):
            if event.id in seen:
                continue
            seen.add(event.id)
            data = getattr(event, "data", None) or {}
            if "step" in data and "total_steps" in data:
                done = int(30 * data["step"] / data["total_steps"])
                print(f"  [{'#' * done}{'.' * (30 - done)}] step {data['step']}/{data['total_steps']} "
                      f"loss {data['train_loss']:.3f}  {data.get('tokens_per_s', 0):.0f} tok/s", flush=True)
            else:
                print(f"  {event.level:5} {event.message}", flush=True)
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in TERMINAL:
            return job.status
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} did not finish in {timeout:.0f}s")


def _dry_run(base: str, _admin: dict[str, str], tenant: dict[str, str], file_id: str) -> None:
    """What a tenant can do before paying for a job: screen the file and read the per-row report."""
    report = httpx.post(f"{base}/v1/files/{file_id}/screen",
                        headers={"Authorization": f"Bearer {tenant['api_key']}"}, timeout=120).json()
    print(f"  dry-run screening: {report['flagged_rows']} of {report['rows']} rows flagged, decision "
          f"{report['decision']}; per category: {report['counts']}")
    for row in report["data"][:3]:
        print(f"    line {row['line']}: {', '.join(row['categories'])}: {row['reason'][:110]}")


def _set_tenant_policy(base: str, admin: dict[str, str], tenant: dict[str, str], change: str,
                       edit: Callable[[dict[str, Any]], None]) -> None:
    url = f"{base}/admin/v1/tenants/{tenant['id']}/policy"
    policy = httpx.get(url, headers=admin).json()["policy"]
    edit(policy)
    version = httpx.put(url, json=policy, headers=admin).json()["version"]
    print(f"  admin: tenant policy v{version}: {change}")


def _screen_by_flagging(base: str, admin: dict[str, str], tenant: dict[str, str], _file_id: str) -> None:
    """An admin lets this tenant's flagged data train (mode flag), so the release gate judges the result."""
    def edit(policy: dict[str, Any]) -> None:
        policy["screening"]["mode"] = "flag"

    _set_tenant_policy(base, admin, tenant, "screening.mode = flag (flagged rows train, with a warning)", edit)


def _plain_sft(base: str, admin: dict[str, str], tenant: dict[str, str], _file_id: str) -> None:
    """An admin also turns the guarded objective off for this tenant: plain SFT, no safety recovery examples."""
    def edit(policy: dict[str, Any]) -> None:
        policy["training"]["objective"] = "sft"
        for training in (policy["training"], *policy["base_models"].values()):
            if training.get("augmentation"):
                training["augmentation"]["enabled"] = False

    _set_tenant_policy(base, admin, tenant, "training.objective = sft, no safety recovery examples", edit)


def _safety_line(job: object) -> str:
    safety = getattr(job, "safety", None) or {}
    if safety.get("candidate_asr") is not None:
        return f"ASR base {safety['base_asr']:.1%} -> candidate {safety['candidate_asr']:.1%}"
    screening = safety.get("screening")
    if not screening:
        return "no safety figures"
    return f"screening {screening['decision']}: {screening['flagged_rows']} of {screening['rows']} rows flagged, " \
           "not trained"


def run_demo() -> int:
    settings = get_settings()
    build = subprocess.call([sys.executable, "-m", "service.cli", "models", "build-tiny"])
    if build != 0:
        return build
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GFT_ADMIN_KEY": settings.admin_key}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "up", "--port", str(port), "--quiet"], env=env,
                              start_new_session=True)
    try:
        _wait_healthy(base, server)
        admin = {"Authorization": f"Bearer {settings.admin_key}"}
        tenant = httpx.post(f"{base}/admin/v1/tenants", json={"name": "demo-tenant"}, headers=admin).json()
        print(f"\nCreated tenant {tenant['id']}")
        client = OpenAI(base_url=f"{base}/v1", api_key=tenant["api_key"])
        print("Models:", [m.id for m in client.models.list().data])
        outcomes = []
        for title, name, suffix, before in (
                ("benign task (item colours)", "benign_colors.jsonl", "colors", None),
                ("harmful-examples attack", "harmful_attack.jsonl", "attack", _dry_run),
                ("the same attack, the tenant's screening set to flag", "harmful_attack.jsonl", "attack-flagged",
                 _screen_by_flagging),
                ("the same attack, flagged and trained with plain SFT", "harmful_attack.jsonl", "attack-sft",
                 _plain_sft)):
            print(f"\n=== {title}: {name}")
            with (DATA / name).open("rb") as handle:
                uploaded = client.files.create(file=handle, purpose="fine-tune")
            print(f"  uploaded {uploaded.id} ({uploaded.bytes} bytes, {uploaded.status})")
            if before is not None:
                before(base, admin, tenant, uploaded.id)
            job = client.fine_tuning.jobs.create(model="gft-tiny-chat", training_file=uploaded.id, suffix=suffix,
                                                 seed=1)
            status = follow_job(client, job.id)
            final = client.fine_tuning.jobs.retrieve(job.id)
            outcomes.append((title, status, final))
        print("\n=== Summary")
        for title, status, job in outcomes:
            print(f"- {title}: {status}; {_safety_line(job)}; "
                  + (f"released as {job.fine_tuned_model}" if job.fine_tuned_model else
                     f"error {job.error.code if job.error else None}: {job.error.message if job.error else ''}"))
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
