"""The `guardrail-ft` client commands (service/client/) against a real API server, PostgreSQL and a private
broker: every command, its tables and JSON, and its errors as one line on stderr with a non-zero exit.

One server for the module (each test makes its own tenants); jobs are moved through the states a worker would
give them with the shared set-up calls (tests/service/live.py), except for `files screen`, which a real cpu
worker answers."""

import hashlib
import json
import subprocess
import sys
import tarfile
import threading
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from service.cli import app
from service.client.policy_file import MISSING, flatten, policy_diff
from service.embedded import start_valkey
from service.state.db import session_scope
from service.state.jobs import add_event
from tests.service.live import ADAPTER_FILES, jsonl, register_model, release, set_status
from tests.services import fresh_database
from tests.stack import api_server, free_port, start_worker, stop_process_group

ADMIN_KEY = "cli-test-admin-key"
TINY_DATA = Path(__file__).resolve().parents[2] / "workers" / "tiny" / "data"


@dataclass(frozen=True)
class Stack:
    base: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(pg_admin_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API as `guardrail-ft serve` runs it, with a broker of its own (a screening message must reach this
    module's worker, not another test session's) and base model `m1` registered."""
    tmp = tmp_path_factory.mktemp("cli")
    broker_url, broker = start_valkey(tmp / "valkey")
    try:
        with fresh_database(pg_admin_uri) as database_url:
            env = {
                "GFT_DATABASE_URL": database_url,
                "GFT_BROKER_URL": broker_url,
                "GFT_DATA_DIR": str(tmp / "var"),
                "GFT_ADMIN_KEY": ADMIN_KEY,
            }
            with api_server(env, tmp / "api.log") as base:
                register_model(base, ADMIN_KEY, tmp / "model")
                yield Stack(base, env)
    finally:
        broker.stop()


def run(stack: Stack, *args: object, key: str | None = None, admin: bool = False) -> Result:
    """The command in-process, configured the way a user's shell would: GFT_API_URL and GFT_API_KEY (or
    GFT_ADMIN_KEY), and a wide terminal so table cells are not folded."""
    env = {
        "GFT_API_URL": stack.base,
        "GFT_API_KEY": key,
        "GFT_ADMIN_KEY": ADMIN_KEY if admin else None,
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok(stack: Stack, *args: object, key: str | None = None, admin: bool = False) -> str:
    result = run(stack, *args, key=key, admin=admin)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(stack: Stack, *args: object, key: str | None = None, admin: bool = False) -> Any:
    return json.loads(ok(stack, *args, "--json", key=key, admin=admin))


def fails(stack: Stack, *args: object, key: str | None = None, admin: bool = False) -> str:
    """The one line on stderr of a command that failed with exit status 1."""
    result = run(stack, *args, key=key, admin=admin)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def new_tenant(stack: Stack, name: str) -> tuple[str, str]:
    """(tenant id, API key), made with the CLI."""
    created = as_json(stack, "admin", "tenants", "create", name, admin=True)
    return created["id"], created["api_key"]


def training_file(stack: Stack, key: str, folder: Path, rows: int = 3) -> str:
    path = folder / "train.jsonl"
    path.write_bytes(jsonl(rows))
    return as_json(stack, "files", "upload", path, key=key)["id"]


def new_job(stack: Stack, key: str, folder: Path) -> str:
    file_id = training_file(stack, key, folder)
    return as_json(stack, "jobs", "create", "--model", "m1", "--training-file", file_id, key=key)["id"]


def store_adapter(stack: Stack, job_id: str) -> str:
    """What training leaves in the artifact store; returns its key."""
    folder = Path(stack.env["GFT_DATA_DIR"]) / "artifacts" / "adapters" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ADAPTER_FILES.items():
        (folder / name).write_bytes(content)
    return f"adapters/{job_id}"


# Files ------------------------------------------------------------------------------------------------------------


def test_files_upload_and_list(stack: Stack, tmp_path: Path) -> None:
    _, key = new_tenant(stack, "files-co")
    path = tmp_path / "colors.jsonl"
    path.write_bytes(jsonl(3))
    out = ok(stack, "files", "upload", path, key=key)
    assert out.startswith("uploaded file-") and "colors.jsonl" in out and "processed" in out
    first = out.split()[1]
    second = as_json(stack, "files", "upload", path, key=key)
    assert second["object"] == "file" and second["bytes"] == len(jsonl(3))

    table = ok(stack, "files", "list", key=key)
    assert first in table and second["id"] in table and "colors.jsonl" in table
    assert [f["id"] for f in as_json(stack, "files", "list", key=key)["data"]] == [second["id"], first]
    page = as_json(stack, "files", "list", "--limit", 1, key=key)
    assert [f["id"] for f in page["data"]] == [second["id"]] and page["has_more"]


def test_file_errors_are_one_line(stack: Stack, tmp_path: Path) -> None:
    _, key = new_tenant(stack, "bad-files-co")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}]}\n')
    line = fails(stack, "files", "upload", bad, key=key)
    assert "line 1" in line and "HTTP 400" in line and "param file" in line and "request req_cli_" in line
    assert "Cannot read" in fails(stack, "files", "upload", tmp_path / "absent.jsonl", key=key)
    assert "HTTP 404" in fails(stack, "files", "screen", "file-nope", key=key)
    assert "Incorrect API key provided" in fails(stack, "files", "list", key="sk-wrong")
    assert "No API key" in fails(stack, "files", "list")


def test_connection_problems_are_one_line(stack: Stack) -> None:
    result = CliRunner().invoke(
        app, ["files", "list", "--api-url", f"http://127.0.0.1:{free_port()}", "--api-key", "k"]
    )
    assert result.exit_code == 1 and result.stderr.startswith("error: Cannot reach the API at http://127.0.0.1:")
    assert result.stderr.count("\n") == 1
    result = CliRunner().invoke(app, ["files", "list", "--api-url", "localhost:8000", "--api-key", "k"])
    assert result.exit_code == 1 and "Invalid API URL 'localhost:8000'" in result.stderr


# Jobs -------------------------------------------------------------------------------------------------------------


def test_jobs_create_list_pause_resume_cancel(stack: Stack, tmp_path: Path) -> None:
    tenant_id, key = new_tenant(stack, "jobs-co")
    file_id = training_file(stack, key, tmp_path)
    create = ("jobs", "create", "--model", "m1", "--training-file", file_id, "--n-epochs", 2, "--batch-size", 4)
    create += ("--suffix", "colors", "--seed", 7, "--metadata", "team=a", "--idempotency-key", "k-1")
    job = as_json(stack, *create, key=key)
    assert (job["status"], job["organization_id"], job["seed"], job["metadata"]) == (
        "validating_files",
        tenant_id,
        7,
        {"team": "a"},
    )
    assert job["hyperparameters"]["n_epochs"] == 2 and job["hyperparameters"]["batch_size"] == 4
    replayed = as_json(stack, *create, key=key)  # the same idempotency key: the same job back
    assert replayed["id"] == job["id"]
    second = ok(stack, "jobs", "create", "--model", "m1", "--training-file", file_id, key=key)
    assert second.startswith("created ftjob-") and "jobs watch" in second

    table = ok(stack, "jobs", "list", key=key)
    assert job["id"] in table and "validating_files" in table
    assert len(as_json(stack, "jobs", "list", key=key)["data"]) == 2

    assert "job_not_pausable" in fails(stack, "jobs", "pause", job["id"], key=key)
    set_status(stack.env, job["id"], "queued")
    assert ok(stack, "jobs", "pause", job["id"], key=key).strip() == f"{job['id']}: paused"
    assert as_json(stack, "jobs", "resume", job["id"], key=key)["status"] == "queued"
    assert ok(stack, "jobs", "cancel", job["id"], key=key).strip() == f"{job['id']}: cancelled"
    line = fails(stack, "jobs", "cancel", job["id"], key=key)
    assert "already cancelled" in line and "HTTP 409" in line and "code job_already_finished" in line

    assert "hyperparameter" in fails(
        stack, "jobs", "create", "--model", "m1", "--training-file", file_id, "--n-epochs", 1000, key=key
    )
    assert "KEY=VALUE" in fails(
        stack, "jobs", "create", "--model", "m1", "--training-file", file_id, "--metadata", "oops", key=key
    )
    assert "HTTP 404" in fails(stack, "jobs", "cancel", "ftjob-000000000000000000000000", key=key)


def _finish_later(env: dict[str, str], job_id: str, errors: list[BaseException]) -> None:
    """What a worker writes while `jobs watch` polls: messages, four training steps, then the release."""
    try:
        time.sleep(0.5)
        with session_scope(env["GFT_DATABASE_URL"]) as session:
            add_event(session=session, job_id=job_id, message="Fine-tuning job started.")
            for step in range(1, 5):
                add_event(
                    session=session,
                    job_id=job_id,
                    message=f"Step {step}/4: training loss={1 / step:.4f}",
                    type_="metrics",
                    data={"step": step, "total_steps": 4, "train_loss": 1 / step},
                )
        time.sleep(0.3)
        with session_scope(env["GFT_DATABASE_URL"]) as session:
            add_event(session=session, job_id=job_id, level="warn", message="A warning the tenant should see.")
            add_event(session=session, job_id=job_id, message="Training finished: 4 steps.")
        release(env, job_id)
    except BaseException as exc:
        errors.append(exc)


def test_watch_follows_events_until_the_job_succeeds(stack: Stack, tmp_path: Path) -> None:
    _, key = new_tenant(stack, "watch-co")
    job_id = new_job(stack, key, tmp_path)
    errors: list[BaseException] = []
    worker = threading.Thread(target=_finish_later, args=(stack.env, job_id, errors))
    worker.start()
    try:
        out = ok(stack, "jobs", "watch", job_id, "--interval", 0.1, "--timeout", 60, key=key)
    finally:
        worker.join()
    assert not errors, errors
    started, warned, finished = (
        out.index(m) for m in ("Fine-tuning job started.", "[WARN] A warning", "Training finished: 4 steps.")
    )
    assert started < warned < finished
    assert "Step 2/4" not in out  # training steps go to the progress bar, not the log
    assert "succeeded" in out and "ft:m1:" in out


def test_watch_exits_non_zero_unless_the_job_succeeded(stack: Stack, tmp_path: Path) -> None:
    _, key = new_tenant(stack, "watch-fail-co")
    live = new_job(stack, key, tmp_path)
    assert f"Job {live} is still validating_files after 0.3s" in fails(
        stack, "jobs", "watch", live, "--interval", 0.1, "--timeout", 0.3, key=key
    )
    ok(stack, "jobs", "cancel", live, key=key)
    result = run(stack, "jobs", "watch", live, "--interval", 0.1, key=key)
    assert result.exit_code == 1 and "Job cancelled by the tenant." in result.stdout and "cancelled" in result.stdout
    assert "HTTP 404" in fails(stack, "jobs", "watch", "ftjob-000000000000000000000000", key=key)


def test_report_saves_prints_or_opens_the_safety_report(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = new_tenant(stack, "report-co")
    job_id = new_job(stack, key, tmp_path)
    line = fails(stack, "jobs", "report", job_id, "-o", tmp_path / "r.html", key=key)
    assert "no safety report yet" in line and "code safety_report_not_found" in line
    assert not (tmp_path / "r.html").exists()

    reports = Path(stack.env["GFT_DATA_DIR"]) / "artifacts" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{job_id}.json").write_text(json.dumps({"object": "fine_tuning.job.safety_report", "job": job_id}))
    (reports / f"{job_id}.html").write_text("<html><body><svg></svg>Decision: blocked</body></html>")
    set_status(
        stack.env,
        job_id,
        "failed",
        error={"code": "safety_regression", "message": "blocked", "param": None},
        safety={"decision": "blocked", "reasons": ["ASR rose"], "report_key": f"reports/{job_id}.json"},
    )

    assert ok(stack, "jobs", "report", job_id, "-o", tmp_path / "r.html", key=key).startswith("saved")
    assert "Decision: blocked" in (tmp_path / "r.html").read_text()
    assert json.loads(ok(stack, "jobs", "report", job_id, "--format", "json", key=key))["job"] == job_id

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda uri: opened.append(uri) or True)
    out = ok(stack, "jobs", "report", job_id, key=key)
    assert len(opened) == 1 and opened[0].startswith("file://") and out.startswith("opened")
    assert "Decision: blocked" in Path(out.split(maxsplit=1)[1].strip()).read_text()


def test_download_verifies_the_adapter_and_models_list_shows_it(stack: Stack, tmp_path: Path) -> None:
    _, key = new_tenant(stack, "download-co")
    job_id = new_job(stack, key, tmp_path)
    target = tmp_path / "adapter.tar"
    assert "No released adapter" in fails(stack, "jobs", "download", job_id, "-o", target, key=key)
    assert not target.exists() and not target.with_name("adapter.tar.part").exists()

    name = release(stack.env, job_id)
    out = ok(stack, "jobs", "download", job_id, "-o", target, key=key)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert out.strip() == f"saved {target} (sha256 {digest}, verified)"
    with tarfile.open(target) as tar:
        assert sorted(tar.getnames()) == sorted(f"{job_id}/{n}" for n in ADAPTER_FILES)

    models = {m["id"]: m["owned_by"] for m in as_json(stack, "models", "list", key=key)["data"]}
    assert models["m1"] == "system" and name in models
    table = ok(stack, "models", "list", key=key)
    assert "m1" in table and name in table


class _CorruptingServer(BaseHTTPRequestHandler):
    """Announces a SHA-256 the body does not have: a transfer corrupted on the way."""

    def do_GET(self) -> None:
        body = b"not the adapter"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-content-sha256", "0" * 64)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_download_discards_a_body_that_does_not_match_its_sha256(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CorruptingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = tmp_path / "adapter.tar"
        result = CliRunner().invoke(
            app,
            [
                "jobs",
                "download",
                "ftjob-x",
                "-o",
                str(target),
                "--api-url",
                f"http://127.0.0.1:{server.server_port}",
                "--api-key",
                "k",
            ],
        )
    finally:
        server.shutdown()
    assert result.exit_code == 1 and "SHA-256 mismatch" in result.stderr and result.stderr.count("\n") == 1
    assert not target.exists() and not target.with_name("adapter.tar.part").exists()


# Admin ------------------------------------------------------------------------------------------------------------


def test_admin_tenants_keys_and_audit(stack: Stack) -> None:
    out = ok(stack, "admin", "tenants", "create", "keys-co", admin=True)
    assert "API key" in out and "not shown again" in out
    tenant_id = next(w for w in out.split() if w.startswith("org-"))
    key = next(w for w in out.split() if w.startswith("gft-"))
    assert tenant_id in ok(stack, "admin", "tenants", "list", admin=True)
    assert any(t["id"] == tenant_id for t in as_json(stack, "admin", "tenants", "list", admin=True)["data"])

    [first] = as_json(stack, "admin", "tenants", "keys", "list", tenant_id, admin=True)["data"]
    assert first["id"] in ok(stack, "admin", "tenants", "keys", "list", tenant_id, admin=True)
    rotated = as_json(
        stack, "admin", "tenants", "keys", "rotate", tenant_id, first["id"], "--grace-seconds", 300, admin=True
    )
    ok(stack, "files", "list", key=rotated["api_key"])
    ok(stack, "files", "list", key=key)  # still inside its grace period
    assert ok(stack, "admin", "tenants", "keys", "revoke", tenant_id, first["id"], admin=True).startswith("revoked")
    assert "Incorrect API key" in fails(stack, "files", "list", key=key)
    assert "code key_revoked" in fails(stack, "admin", "tenants", "keys", "revoke", tenant_id, first["id"], admin=True)
    table = ok(stack, "admin", "tenants", "keys", "rotate", tenant_id, rotated["id"], admin=True)
    assert "revoked" in table and "not shown again" in table

    actions = [e["action"] for e in as_json(stack, "admin", "audit", "--tenant", tenant_id, admin=True)["data"]]
    assert actions == ["api_key.rotate", "api_key.revoke", "api_key.rotate", "tenant.create"]
    assert "api_key.revoke" in ok(stack, "admin", "audit", "--tenant", tenant_id, admin=True)
    only = as_json(stack, "admin", "audit", "--tenant", tenant_id, "--action", "tenant.create", admin=True)
    assert [e["target_id"] for e in only["data"]] == [tenant_id]

    assert "code admin_only" in fails(stack, "admin", "tenants", "list", key=rotated["api_key"])
    assert "HTTP 404" in fails(stack, "admin", "tenants", "keys", "list", "org-nope", admin=True)


def test_admin_policy_get_diff_set(stack: Stack, tmp_path: Path) -> None:
    tenant_id, _ = new_tenant(stack, "policy-co")
    shown = ok(stack, "admin", "policy", "get", "--tenant", tenant_id, admin=True)
    assert shown.startswith("# policy v") and "training:" in shown
    current = as_json(stack, "admin", "policy", "get", "--tenant", tenant_id, admin=True)
    assert current["scope"] in {"default", "global"}

    path = tmp_path / "policy.yaml"
    assert ok(stack, "admin", "policy", "get", "--tenant", tenant_id, "-o", path, admin=True).startswith("saved")
    document = yaml.safe_load(path.read_text())
    assert document == current["policy"]
    document["training"]["lora"]["rank"] = current["policy"]["training"]["lora"]["rank"] * 2
    path.write_text(yaml.safe_dump(document))

    diff = ok(stack, "admin", "policy", "diff", path, "--tenant", tenant_id, admin=True)
    assert "training.lora.rank" in diff and str(document["training"]["lora"]["rank"]) in diff
    assert as_json(stack, "admin", "policy", "get", "--tenant", tenant_id, admin=True) == current  # unchanged

    out = ok(stack, "admin", "policy", "set", path, "--tenant", tenant_id, admin=True)
    assert "training.lora.rank" in out and "now in force: policy v" in out and f"tenant {tenant_id}" in out
    after = as_json(stack, "admin", "policy", "get", "--tenant", tenant_id, admin=True)
    assert after["scope"] == "tenant" and after["version"] > current["version"] and after["policy"] == document
    assert "no field differs" in ok(stack, "admin", "policy", "diff", path, "--tenant", tenant_id, admin=True)

    as_file = tmp_path / "policy.json"
    as_file.write_text(ok(stack, "admin", "policy", "get", "--tenant", tenant_id, "--json", admin=True))
    again = as_json(stack, "admin", "policy", "set", as_file, "--tenant", tenant_id, admin=True)  # get's own JSON
    assert again["version"] > after["version"] and again["policy"] == document

    document["training"]["surprise"] = 1
    path.write_text(yaml.safe_dump(document))
    assert "invalid policy at 'training.surprise': unknown field" in fails(
        stack, "admin", "policy", "set", path, "--tenant", tenant_id, admin=True
    )
    del document["training"]["surprise"]
    document["training"]["lora"]["rank"] = 0
    path.write_text(yaml.safe_dump(document))
    assert "invalid policy at 'training.lora.rank'" in fails(stack, "admin", "policy", "diff", path, admin=True)
    path.write_text("[1, 2")
    assert "neither valid JSON nor YAML" in fails(stack, "admin", "policy", "set", path, admin=True)
    path.write_text("- 1\n")
    assert "must hold a policy object" in fails(stack, "admin", "policy", "set", path, admin=True)
    assert as_json(stack, "admin", "policy", "get", "--tenant", tenant_id, admin=True)["version"] == again["version"]
    assert "HTTP 404" in fails(stack, "admin", "policy", "get", "--tenant", "org-nope", admin=True)


def test_policy_diff_names_each_changed_leaf() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": 1, "a.c": [1, 2], "d": {}}
    current = {"training": {"lora": {"rank": 8, "alpha": 16.0}, "beta": [0.5, 2.0]}, "gate": {"x": 1}}
    new = {"training": {"lora": {"rank": 16, "alpha": 16.0}, "beta": [0.5, 1.0]}, "gate": {"y": 2}}
    assert policy_diff(current, new) == [
        ("gate.x", 1, MISSING),
        ("gate.y", MISSING, 2),
        ("training.beta", [0.5, 2.0], [0.5, 1.0]),
        ("training.lora.rank", 8, 16),
    ]


def _gated(stack: Stack, key: str, folder: Path, status: str = "held", **fields: object) -> str:
    """A trained job the gate held for review (or, with status "failed", blocked), its adapter stored."""
    job_id = new_job(stack, key, folder)
    decision = "held" if status == "held" else "blocked"
    set_status(
        stack.env,
        job_id,
        status,
        adapter_key=store_adapter(stack, job_id),
        safety={"decision": decision, "base_asr": 0.02, "candidate_asr": 0.05, "reasons": ["gate said so"]},
        **fields,
    )
    return job_id


def test_admin_review_release_reject_override(stack: Stack, tmp_path: Path) -> None:
    tenant_id, key = new_tenant(stack, "review-co")
    to_release, to_reject = _gated(stack, key, tmp_path), _gated(stack, key, tmp_path)
    blocked = _gated(
        stack, key, tmp_path, "failed", error={"code": "safety_regression", "message": "ASR rose", "param": None}
    )

    held = as_json(stack, "admin", "review", "list", "--tenant", tenant_id, admin=True)["data"]
    assert {j["id"] for j in held} == {to_release, to_reject} and all(j["status"] == "held" for j in held)
    table = ok(stack, "admin", "review", "list", "--tenant", tenant_id, admin=True)
    assert to_release in table and "2.0% -> 5.0%" in table
    failed = as_json(stack, "admin", "review", "list", "--status", "failed", "--tenant", tenant_id, admin=True)
    assert [j["id"] for j in failed["data"]] == [blocked]

    out = ok(stack, "admin", "review", "release", to_release, "--reason", "looked fine", admin=True)
    assert out.startswith(f"{to_release}: succeeded, released as ft:m1:")
    rejected = as_json(stack, "admin", "review", "reject", to_reject, "--reason", "too risky", admin=True)
    assert rejected["status"] == "failed" and rejected["error"]["code"] == "safety_review_rejected"
    assert ok(stack, "admin", "review", "override", blocked, "--reason", "accepted risk", admin=True).startswith(
        f"{blocked}: succeeded, released as ft:m1:"
    )

    line = fails(stack, "admin", "review", "override", to_reject, "--reason", "again", admin=True)
    assert "HTTP 409" in line and "code job_not_overridable" in line
    assert "code job_not_held" in fails(stack, "admin", "review", "release", to_release, admin=True)
    assert run(stack, "admin", "review", "reject", to_release, admin=True).exit_code == 2  # --reason is required
    assert "held" in ok(stack, "admin", "review", "list", "--tenant", tenant_id, admin=True)  # the empty table


# Screening (a real cpu worker) and layering ------------------------------------------------------------------------


@pytest.fixture()
def cpu_worker(stack: Stack, tmp_path: Path) -> Iterator[None]:
    """The API runs no judges: a cpu-queue worker screens the file."""
    worker = start_worker(stack.env, "cpu", tmp_path / "worker.log")
    try:
        yield
    finally:
        stop_process_group(worker)


def test_files_screen_reports_what_a_job_would_meet(stack: Stack, cpu_worker: None, tmp_path: Path) -> None:
    _, key = new_tenant(stack, "screen-co")
    harmful = tmp_path / "harmful.jsonl"
    harmful.write_bytes((TINY_DATA / "harmful_attack.jsonl").read_bytes())
    file_id = as_json(stack, "files", "upload", harmful, key=key)["id"]
    report = as_json(stack, "files", "screen", file_id, key=key)
    assert (report["decision"], report["would_block"], report["flagged_rows"]) == ("block", True, 78)
    out = ok(stack, "files", "screen", file_id, "--rows", 2, key=key)  # answered from the kept report
    assert "would block a job" in out and "Categories" in out and "Harmful rows" in out
    assert "76 more harmful rows: --rows 78" in out


def test_the_client_imports_neither_torch_nor_workers() -> None:
    code = (
        "import sys, service.cli, service.client.admin, service.client.files, service.client.jobs, "
        "service.client.models; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'workers', 'transformers'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
