"""The demo: one tenant, four jobs on the tiny model, through the real API with the official openai client.

The layers of the defence, one at a time. A benign task should be released. A harmful-examples attack is
dry-run screened (`POST /v1/files/{id}/screen`), then blocked by data screening before any training. With the
tenant's screening set to `flag`, the same attack trains under the guarded objective, and the release gate
reports what it did. With plain SFT as well (the admin turns the objective's defences off for this tenant), the
attack gets through training and the gate blocks it. Starts `guardrail-ft up` (API + worker + broker) as a
subprocess and stops it at the end, then writes `<data dir>/demo/summary.json` (var/demo/summary.json by default:
`{"jobs": [{"name", "objective", "status", "released", "asr_base", "asr", "error_code"}]}`) and prints the commands
a newcomer runs next.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob

from schemas.job_status import TERMINAL_STATUSES
from service.settings import get_settings

DATA = Path(__file__).resolve().parent.parent / "workers" / "tiny" / "data"


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
                print(
                    f"  [{'#' * done}{'.' * (30 - done)}] step {data['step']}/{data['total_steps']} "
                    f"loss {data['train_loss']:.3f}  {data.get('tokens_per_s', 0):.0f} tok/s",
                    flush=True,
                )
            else:
                print(f"  {event.level:5} {event.message}", flush=True)
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in TERMINAL_STATUSES:
            return job.status
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} did not finish in {timeout:.0f}s")


def _dry_run(base: str, _admin: dict[str, str], tenant: dict[str, str], file_id: str) -> None:
    """What a tenant can do before paying for a job: screen the file and read the per-row report."""
    report = httpx.post(
        f"{base}/v1/files/{file_id}/screen", headers={"Authorization": f"Bearer {tenant['api_key']}"}, timeout=120
    ).json()
    print(
        f"  dry-run screening: {report['flagged_rows']} of {report['rows']} rows flagged, decision "
        f"{report['decision']}; per category: {report['counts']}"
    )
    for row in report["data"][:3]:
        print(f"    line {row['line']}: {', '.join(row['categories'])}: {row['reason'][:110]}")


def _tenant_objective(base: str, admin: dict[str, str], tenant: dict[str, str]) -> str:
    """The training objective the tenant's policy in force gives its next job (per-model entries keep it)."""
    policy = httpx.get(f"{base}/admin/v1/tenants/{tenant['id']}/policy", headers=admin).json()["policy"]
    return str(policy["training"]["objective"])


def _set_tenant_policy(
    base: str, admin: dict[str, str], tenant: dict[str, str], change: str, edit: Callable[[dict[str, Any]], None]
) -> None:
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
    return (
        f"screening {screening['decision']}: {screening['flagged_rows']} of {screening['rows']} rows flagged, "
        "not trained"
    )


@dataclass(frozen=True)
class Outcome:
    """One demo job as the tenant's client saw it at the end, with the objective its tenant's policy gave it."""

    title: str
    name: str
    objective: str
    job: FineTuningJob


def _safety(job: FineTuningJob) -> dict[str, Any]:
    """Our `safety` extension, which the openai client keeps as a plain dict (empty when absent)."""
    return getattr(job, "safety", None) or {}


def job_summary(outcome: Outcome) -> dict[str, Any]:
    """One line of var/demo/summary.json: what a newcomer (or a script) needs to see that each layer did its job.
    `asr_base` and `asr` are the gate's direct ASR of base and candidate, null for a job screening stopped."""
    job, safety = outcome.job, _safety(outcome.job)
    return {
        "name": outcome.name,
        "objective": outcome.objective,
        "status": job.status,
        "released": job.fine_tuned_model is not None,
        "asr_base": safety.get("base_asr"),
        "asr": safety.get("candidate_asr"),
        "error_code": job.error.code if job.error else None,
    }


def write_summary(path: Path, outcomes: Sequence[Outcome]) -> Path:
    """`{"jobs": [...]}`, one entry per job in the order the demo ran them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"jobs": [job_summary(o) for o in outcomes]}, indent=2) + "\n", encoding="utf-8")
    return path


def _report_job(outcomes: Sequence[Outcome]) -> str | None:
    """The job whose safety report is most worth opening: the one the gate blocked with the highest ASR, else the
    highest any judged job reached."""
    judged = [
        (o.job, _safety(o.job)["candidate_asr"]) for o in outcomes if _safety(o.job).get("candidate_asr") is not None
    ]
    blocked = [(j, asr) for j, asr in judged if j.error is not None and j.error.code == "safety_regression"]
    chosen = blocked or judged
    return max(chosen, key=lambda pair: pair[1])[0].id if chosen else None


def next_steps(*, api_url: str, tenant_key: str, cli: str, summary_path: Path, report_job_id: str | None) -> str:
    """The commands a newcomer runs next: the service again, then curl as the demo's tenant and as the admin. Plain
    curl, so they work whatever the CLI grows; `--help` lists every command."""
    auth = '-H "Authorization: Bearer $GFT_API_KEY"'
    admin = '-H "Authorization: Bearer $GFT_ADMIN_KEY"'
    lines = [
        "=== Next steps",
        f"The jobs above, as JSON: {summary_path}",
        f"Every command: {cli} --help",
        "",
        "Start the service again (API and a worker; the demo's tenant, files and jobs are kept):",
        f"  {cli} up",
        "Then, in another shell, as the demo's tenant (its key was shown once, here):",
        f"  export GFT_API_URL={api_url} GFT_API_KEY={tenant_key}",
        f"  curl -s $GFT_API_URL/v1/fine_tuning/jobs {auth}",
    ]
    if report_job_id:
        lines += [
            f"  curl -s $GFT_API_URL/v1/fine_tuning/jobs/{report_job_id}/events {auth}",
            f'  curl -s "$GFT_API_URL/v1/fine_tuning/jobs/{report_job_id}/safety_report?format=html" {auth} '
            "-o safety_report.html",
        ]
    lines += [
        f"  curl -s $GFT_API_URL/v1/files {auth} -F purpose=fine-tune -F file=@{_relative(DATA / 'benign_math.jsonl')}",
        f"  curl -s $GFT_API_URL/v1/fine_tuning/jobs {auth} -H 'content-type: application/json' "
        '-d \'{"model": "gft-tiny-chat", "training_file": "<the file id>"}\'',
        "As the admin (GFT_ADMIN_KEY: the key the service runs with; gft-admin-dev unless you set one):",
        f"  curl -s $GFT_API_URL/admin/v1/policy {admin}",
        f"  curl -s -X POST $GFT_API_URL/admin/v1/tenants {admin} -H 'content-type: application/json' "
        '-d \'{"name": "my-team"}\'',
        "Read next: docs/policy.md (every policy field), docs/threat-model.md (what the gate promises), "
        "docs/operations.md (the runbook).",
    ]
    return "\n".join(lines)


def report(outcomes: Sequence[Outcome], *, summary_path: Path, api_url: str, tenant_key: str, cli: str) -> None:
    """Print what happened to each job, write the summary, and say what to do next."""
    print("\n=== Summary")
    for o in outcomes:
        job = o.job
        print(
            f"- {o.title}: {job.status}; {_safety_line(job)}; "
            + (
                f"released as {job.fine_tuned_model}"
                if job.fine_tuned_model
                else f"error {job.error.code if job.error else None}: {job.error.message if job.error else ''}"
            )
        )
    write_summary(summary_path, outcomes)
    print()
    print(
        next_steps(
            api_url=api_url,
            tenant_key=tenant_key,
            cli=cli,
            summary_path=summary_path,
            report_job_id=_report_job(outcomes),
        )
    )


def _relative(path: Path) -> str:
    """A path as typed from the current directory when it lies below it (`.venv/bin/guardrail-ft`)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _cli() -> str:
    """How to call `guardrail-ft` from here: the script beside this interpreter (.venv/bin), else its bare name."""
    script = Path(sys.executable).parent / "guardrail-ft"
    return _relative(script) if script.exists() else "guardrail-ft"


def run_demo() -> int:
    settings = get_settings()
    build = subprocess.call([sys.executable, "-m", "service.cli", "models", "build-tiny"])
    if build != 0:
        return build
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GFT_ADMIN_KEY": settings.admin_key}
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "up", "--port", str(port), "--quiet"], env=env, start_new_session=True
    )
    try:
        _wait_healthy(base, server)
        admin = {"Authorization": f"Bearer {settings.admin_key}"}
        tenant = httpx.post(f"{base}/admin/v1/tenants", json={"name": "demo-tenant"}, headers=admin).json()
        print(f"\nCreated tenant {tenant['id']}")
        client = OpenAI(base_url=f"{base}/v1", api_key=tenant["api_key"])
        print("Models:", [m.id for m in client.models.list().data])
        outcomes: list[Outcome] = []
        for title, name, suffix, before in (
            ("benign task (item colours)", "benign_colors.jsonl", "colors", None),
            ("harmful-examples attack", "harmful_attack.jsonl", "attack", _dry_run),
            (
                "the same attack, the tenant's screening set to flag",
                "harmful_attack.jsonl",
                "attack-flagged",
                _screen_by_flagging,
            ),
            ("the same attack, flagged and trained with plain SFT", "harmful_attack.jsonl", "attack-sft", _plain_sft),
        ):
            print(f"\n=== {title}: {name}")
            with (DATA / name).open("rb") as handle:
                uploaded = client.files.create(file=handle, purpose="fine-tune")
            print(f"  uploaded {uploaded.id} ({uploaded.bytes} bytes, {uploaded.status})")
            if before is not None:
                before(base, admin, tenant, uploaded.id)
            objective = _tenant_objective(base, admin, tenant)
            job = client.fine_tuning.jobs.create(
                model="gft-tiny-chat", training_file=uploaded.id, suffix=suffix, seed=1
            )
            follow_job(client, job.id)
            outcomes.append(Outcome(title, suffix, objective, client.fine_tuning.jobs.retrieve(job.id)))
        report(
            outcomes,
            summary_path=settings.data_dir / "demo" / "summary.json",
            api_url=f"http://{settings.api_host}:{settings.api_port}",
            tenant_key=tenant["api_key"],
            cli=_cli(),
        )
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
