"""Set-up calls shared by tests that talk HTTP to a real API server (`tests.stack.api_server`)."""

import json
from pathlib import Path

import httpx

from service.state.db import session_scope
from service.state.jobs import fine_tuned_model_name, get_job, transition

ROW = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def register_model(base: str, admin_key: str, model_dir: Path, model_id: str = "m1") -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text("{}")
    response = httpx.post(
        f"{base}/admin/v1/models",
        json={"id": model_id, "path": str(model_dir)},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 200, response.text


def new_tenant(base: str, admin_key: str, name: str) -> tuple[str, str]:
    """(tenant id, API key)"""
    response = httpx.post(
        f"{base}/admin/v1/tenants", json={"name": name}, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["id"], response.json()["api_key"]


def jsonl(rows: int = 1) -> bytes:
    return "".join(json.dumps(ROW) + "\n" for _ in range(rows)).encode()


ADAPTER_FILES = {"adapter_config.json": b'{"peft_type": "LORA", "r": 8}', "adapter_model.safetensors": b"\x00" * 4096}


def release(env: dict[str, str], job_id: str, *, from_status: str = "validating_files") -> str:
    """What training and a passing gate do to a job: an adapter folder in the store, the job succeeded and
    released under its fine-tuned model name. Returns that name."""
    folder = Path(env["GFT_DATA_DIR"]) / "artifacts" / "adapters" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ADAPTER_FILES.items():
        (folder / name).write_bytes(content)
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        job = get_job(session=session, job_id=job_id)
        assert job is not None
        name = fine_tuned_model_name(job)
        assert transition(
            session=session,
            job_id=job_id,
            from_statuses={from_status},
            to_status="succeeded",
            fine_tuned_model=name,
            adapter_key=f"adapters/{job_id}",
            trained_tokens=120,
            safety={"decision": "released", "base_asr": 0.02, "candidate_asr": 0.03, "reasons": []},
        )
    return name


def set_status(env: dict[str, str], job_id: str, status: str, **fields: object) -> None:
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        job = get_job(session=session, job_id=job_id)
        assert job is not None
        assert transition(session=session, job_id=job_id, from_statuses={job.status}, to_status=status, **fields)
