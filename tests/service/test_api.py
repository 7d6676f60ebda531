"""The HTTP surface in-process (TestClient) against real PostgreSQL and Redis."""

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.state.db import session_scope
from service.state.models import FileRow, JobRow
from tests.service.calls import ROW, assert_envelope, tenant, upload


def test_auth_errors(api: TestClient) -> None:
    assert_envelope(api.get("/v1/files"), 401)
    assert_envelope(api.get("/v1/files", headers={"Authorization": "Bearer nope"}), 401)
    acme = tenant(api, "acme")
    error = assert_envelope(api.get("/admin/v1/tenants", headers=acme), 403)
    assert error["code"] == "admin_only"


def test_bad_file_gets_line_number_and_leaves_nothing(api: TestClient, env: dict[str, str]) -> None:
    acme = tenant(api, "acme")
    content = (json.dumps(ROW) + "\n" + json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n").encode()
    error = assert_envelope(upload(api, acme, content), 400)
    assert "line 2" in error["message"] and error["param"] == "file"
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        assert session.scalar(select(func.count()).select_from(FileRow)) == 0
    leftovers = [p for p in Path(env["GFT_DATA_DIR"], "artifacts").rglob("*") if p.is_file()]
    assert leftovers == []


def test_job_validation_and_tenant_isolation(api: TestClient, env: dict[str, str]) -> None:
    acme, other = tenant(api, "acme"), tenant(api, "other")
    file_id = upload(api, acme, (json.dumps(ROW) + "\n").encode()).json()["id"]
    error = assert_envelope(
        api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id, "surprise": 1}, headers=acme),
        400,
    )
    assert error["param"] == "surprise"
    error = assert_envelope(
        api.post(
            "/v1/fine_tuning/jobs",
            json={"model": "m1", "training_file": file_id, "hyperparameters": {"n_epochs": 500}},
            headers=acme,
        ),
        400,
    )
    assert error["param"] == "hyperparameters.n_epochs"
    assert_envelope(
        api.post("/v1/fine_tuning/jobs", json={"model": "nope", "training_file": file_id}, headers=acme), 400
    )
    job = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=acme).json()
    assert job["status"] == "validating_files" and job["hyperparameters"]["n_epochs"] == "auto"

    for path in (
        f"/v1/files/{file_id}",
        f"/v1/fine_tuning/jobs/{job['id']}",
        f"/v1/fine_tuning/jobs/{job['id']}/events",
        f"/v1/files/{file_id}/content",
    ):
        assert_envelope(api.get(path, headers=other), 404)
    assert_envelope(api.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=other), 404)
    assert_envelope(
        api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=other), 400
    )
    assert api.get("/v1/fine_tuning/jobs", headers=other).json()["data"] == []

    cancelled = api.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=acme).json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    again = api.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=acme)
    assert_envelope(again, 409)
    assert again.headers["x-should-retry"] == "false"
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        assert session.scalar(select(JobRow.tenant_id)) is not None


def test_list_pagination(api: TestClient) -> None:
    acme = tenant(api, "acme")
    ids = [upload(api, acme, (json.dumps(ROW) + "\n").encode()).json()["id"] for _ in range(3)]
    first = api.get("/v1/files", params={"limit": 2}, headers=acme).json()
    assert [f["id"] for f in first["data"]] == ids[::-1][:2] and first["has_more"]
    second = api.get("/v1/files", params={"limit": 2, "after": first["data"][-1]["id"]}, headers=acme).json()
    assert [f["id"] for f in second["data"]] == [ids[0]] and not second["has_more"]
    deleted = api.delete(f"/v1/files/{ids[0]}", headers=acme).json()
    assert deleted == {"id": ids[0], "object": "file", "deleted": True}
    assert_envelope(api.get(f"/v1/files/{ids[0]}", headers=acme), 404)


def test_checkpoints_are_listed_newest_first_and_tenant_scoped(api: TestClient, env: dict[str, str]) -> None:
    from service.state.checkpoints import add_checkpoint

    acme, other = tenant(api, "acme"), tenant(api, "other")
    file_id = upload(api, acme, (json.dumps(ROW) + "\n").encode()).json()["id"]
    job = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=acme).json()
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        for step in (50, 100, 150):
            add_checkpoint(
                session=session,
                job_id=job["id"],
                step=step,
                storage_key=f"checkpoints/x/{step}",
                metrics={"step": step, "train_loss": 1.0 / step, "learning_rate": 1e-3},
            )
        add_checkpoint(
            session=session,
            job_id=job["id"],
            step=100,
            storage_key="checkpoints/x/100b",
            metrics={"step": 100, "train_loss": 0.5, "learning_rate": 1e-3},
        )
    page = api.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints?limit=2", headers=acme).json()
    assert [c["step_number"] for c in page["data"]] == [150, 100] and page["has_more"]
    first = page["data"][0]
    assert first["object"] == "fine_tuning.job.checkpoint" and first["fine_tuning_job_id"] == job["id"]
    assert first["fine_tuned_model_checkpoint"] is None and first["metrics"]["step"] == 150
    rest = api.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints?after={page['data'][1]['id']}", headers=acme).json()
    assert [c["step_number"] for c in rest["data"]] == [50]
    assert page["data"][1]["metrics"]["train_loss"] == 0.5
    assert_envelope(api.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints", headers=other), 404)
