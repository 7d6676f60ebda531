"""/admin/v1: keys, quotas, policy versions, review of held jobs and the audit log, against real PostgreSQL."""

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from schemas.policy import Policy
from service.state.db import session_scope
from service.state.jobs import transition
from service.state.models import ApiKeyRow, AuditRow, JobRow
from tests.service.calls import ONE_ROW_FILE, admin_headers, assert_envelope, upload


def new_tenant(api: TestClient, name: str) -> tuple[str, str]:
    """(tenant id, plain key)"""
    body = api.post("/admin/v1/tenants", json={"name": name}, headers=admin_headers(api)).json()
    return body["id"], body["api_key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def works(api: TestClient, key: str) -> bool:
    status = api.get("/v1/files", headers=bearer(key)).status_code
    assert status in (200, 401)
    return status == 200


def create_job(api: TestClient, key: str) -> dict:
    file_id = upload(api, bearer(key), ONE_ROW_FILE).json()["id"]
    response = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def hold(database_url: str, job_id: str) -> None:
    """What the gate in review mode does: the job waits, trained and evaluated, for an admin."""
    with session_scope(database_url) as session:
        assert transition(
            session=session,
            job_id=job_id,
            from_statuses={"validating_files"},
            to_status="held",
            adapter_key=f"adapters/{job_id}",
            safety={"decision": "held", "base_asr": 0.03, "candidate_asr": 0.05, "reasons": []},
        )


def audit_actions(api: TestClient) -> list[str]:
    return [
        e["action"]
        for e in api.get("/admin/v1/audit", params={"limit": 1000}, headers=admin_headers(api)).json()["data"]
    ]


def test_key_lifecycle_create_rotate_revoke(api: TestClient, env: dict[str, str]) -> None:
    admin = admin_headers(api)
    org, first = new_tenant(api, "acme")
    other_org, _ = new_tenant(api, "other")
    keys = api.get(f"/admin/v1/tenants/{org}/keys", headers=admin).json()["data"]
    assert len(keys) == 1 and keys[0]["prefix"] == first[:12] and "api_key" not in keys[0]
    first_id = keys[0]["id"]

    second = api.post(f"/admin/v1/tenants/{org}/keys", headers=admin).json()
    assert second["api_key"].startswith(second["prefix"]) and works(api, first) and works(api, second["api_key"])

    rotated = api.post(f"/admin/v1/tenants/{org}/keys/{first_id}/rotate", headers=admin).json()
    assert not works(api, first) and works(api, rotated["api_key"])
    assert_envelope(api.get("/v1/files", headers=bearer(first)), 401)

    graced = api.post(
        f"/admin/v1/tenants/{org}/keys/{second['id']}/rotate", json={"grace_seconds": 3600}, headers=admin
    ).json()
    assert works(api, second["api_key"]) and works(api, graced["api_key"])
    revoked = api.post(f"/admin/v1/tenants/{org}/keys/{second['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert not works(api, second["api_key"])

    for key_id in (first_id, second["id"]):
        error = assert_envelope(api.post(f"/admin/v1/tenants/{org}/keys/{key_id}/revoke", headers=admin), 409)
        assert error["code"] == "key_revoked"
        assert_envelope(api.post(f"/admin/v1/tenants/{org}/keys/{key_id}/rotate", headers=admin), 409)
    # Another tenant's key id, an unknown tenant: 404.
    assert_envelope(api.post(f"/admin/v1/tenants/{other_org}/keys/{rotated['id']}/revoke", headers=admin), 404)
    assert_envelope(api.get("/admin/v1/tenants/org-nope/keys", headers=admin), 404)
    assert_envelope(
        api.post(f"/admin/v1/tenants/{org}/keys/{first_id}/rotate", json={"grace_seconds": -1}, headers=admin), 400
    )

    listed = api.get(f"/admin/v1/tenants/{org}/keys", headers=admin).json()["data"]
    assert [k["id"] for k in listed] == [first_id, second["id"], rotated["id"], graced["id"]]
    secrets = [first, second["api_key"], rotated["api_key"], graced["api_key"]]
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        stored = [json.dumps([k.key_hash, k.prefix]) for k in session.scalars(select(ApiKeyRow))]
        stored += [json.dumps(a.details) for a in session.scalars(select(AuditRow))]
    assert not any(secret in row for secret in secrets for row in stored)


def test_admin_routes_refuse_tenant_keys(api: TestClient) -> None:
    org, key = new_tenant(api, "acme")
    calls = [
        ("GET", "/admin/v1/tenants"),
        ("GET", f"/admin/v1/tenants/{org}"),
        ("POST", f"/admin/v1/tenants/{org}/keys"),
        ("PUT", "/admin/v1/policy"),
        ("GET", f"/admin/v1/tenants/{org}/policy"),
        ("GET", "/admin/v1/jobs"),
        ("POST", "/admin/v1/jobs/ftjob-x/release"),
        ("GET", "/admin/v1/audit"),
    ]
    for method, path in calls:
        error = assert_envelope(api.request(method, path, headers=bearer(key)), 403)
        assert error["code"] == "admin_only"
        assert_envelope(api.request(method, path, headers={"x-admin": ""}), 401)


def test_quotas_are_enforced_and_reported(api: TestClient, env: dict[str, str]) -> None:
    admin = admin_headers(api)
    org, key = new_tenant(api, "acme")
    assert api.get(f"/admin/v1/tenants/{org}", headers=admin).json()["quotas"] == {
        "max_concurrent_jobs": None,
        "max_file_bytes": None,
        "max_trained_tokens_per_day": None,
    }
    error = assert_envelope(
        api.put(f"/admin/v1/tenants/{org}/quotas", json={"max_concurrent_jobs": 0}, headers=admin), 400
    )
    assert error["param"] == "max_concurrent_jobs"
    assert_envelope(api.put(f"/admin/v1/tenants/{org}/quotas", json={"max_jobs": 1}, headers=admin), 400)

    quotas = {"max_concurrent_jobs": 1, "max_file_bytes": len(ONE_ROW_FILE), "max_trained_tokens_per_day": 100}
    updated = api.put(f"/admin/v1/tenants/{org}/quotas", json=quotas, headers=admin)
    assert updated.status_code == 200 and updated.json()["quotas"] == quotas

    error = assert_envelope(upload(api, bearer(key), ONE_ROW_FILE * 2), 413)
    assert error["code"] == "file_too_large" and error["param"] == "file"
    job = create_job(api, key)
    file_id = job["training_file"]
    second = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=bearer(key))
    error = assert_envelope(second, 429)
    assert error["code"] == "max_concurrent_jobs_reached" and second.headers["x-should-retry"] == "false"

    api.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=bearer(key))
    with session_scope(env["GFT_DATABASE_URL"]) as session:  # as a finished training run records it
        session.scalar(select(JobRow).where(JobRow.id == job["id"])).trained_tokens = 150
    third = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=bearer(key))
    error = assert_envelope(third, 429)
    assert error["code"] == "daily_token_quota_exceeded" and 0 < int(third.headers["retry-after"]) <= 86_400
    usage = api.get(f"/admin/v1/tenants/{org}", headers=admin).json()["usage"]
    assert usage == {"unfinished_jobs": 0, "trained_tokens_today": 150, "trained_tokens_remaining_today": 0}

    api.put(f"/admin/v1/tenants/{org}/quotas", json={}, headers=admin)  # no limits
    assert (
        api.post(
            "/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=bearer(key)
        ).status_code
        == 200
    )
    assert upload(api, bearer(key), ONE_ROW_FILE * 2).status_code == 200


def test_policy_versions_and_jobs_record_theirs(api: TestClient, env: dict[str, str]) -> None:
    admin = admin_headers(api)
    acme, acme_key = new_tenant(api, "acme")
    other, other_key = new_tenant(api, "other")
    default = api.get("/admin/v1/policy", headers=admin).json()
    assert default["version"] == 0 and default["scope"] == "default" and default["policy"] == Policy().model_dump()

    strict = Policy().model_dump()
    strict["gate"]["max_asr"] = 0.05
    v1 = api.put("/admin/v1/policy", json=strict, headers=admin).json()
    strict["gate"]["max_asr_increase"] = 0.02
    v2 = api.put("/admin/v1/policy", json=strict, headers=admin).json()
    assert v2["version"] > v1["version"] > 0 and v2["scope"] == "global" and v2["policy"] == strict
    assert api.get("/admin/v1/policy", headers=admin).json()["version"] == v2["version"]

    for bad, param in (
        ({"gate": {"max_asr": 2}}, "gate.max_asr"),
        ({"gate": {"surprise": 1}}, "gate.surprise"),
        ({"training": {"lora": {"rank": 0}}}, "training.lora.rank"),
        ({"plugins": []}, "plugins"),
    ):
        error = assert_envelope(api.put("/admin/v1/policy", json=bad, headers=admin), 400)
        assert error["param"] == param, error
        assert_envelope(api.put(f"/admin/v1/tenants/{acme}/policy", json=bad, headers=admin), 400)
    assert api.get("/admin/v1/policy", headers=admin).json()["version"] == v2["version"]

    override = api.put(
        f"/admin/v1/tenants/{acme}/policy", json={"gate": {"release_mode": "review"}}, headers=admin
    ).json()
    assert override["scope"] == "tenant" and override["version"] > v2["version"]
    assert override["policy"]["gate"]["release_mode"] == "review" and override["policy"]["gate"]["max_asr"] == 0.2
    assert api.get(f"/admin/v1/tenants/{other}/policy", headers=admin).json()["version"] == v2["version"]
    assert_envelope(api.get("/admin/v1/tenants/org-nope/policy", headers=admin), 404)

    acme_job, other_job = create_job(api, acme_key), create_job(api, other_key)
    for job, version in ((acme_job, override["version"]), (other_job, v2["version"])):
        assert api.get(f"/admin/v1/jobs/{job['id']}", headers=admin).json()["policy_version"] == version
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        stored = session.scalar(select(JobRow.policy).where(JobRow.id == other_job["id"]))
    assert stored == Policy.model_validate(strict).for_model("m1").model_dump()

    cleared = api.delete(f"/admin/v1/tenants/{acme}/policy", headers=admin).json()
    assert cleared["scope"] == "global" and cleared["version"] == v2["version"]
    assert api.delete("/admin/v1/policy", headers=admin).json()["scope"] == "default"


def test_review_releases_or_rejects_only_held_jobs(api: TestClient, env: dict[str, str]) -> None:
    admin = admin_headers(api)
    _, key = new_tenant(api, "acme")
    live, held, rejected = (create_job(api, key) for _ in range(3))
    for action in ("release", "reject"):
        response = api.post(f"/admin/v1/jobs/{live['id']}/{action}", json={"reason": "looked fine"}, headers=admin)
        error = assert_envelope(response, 409)
        assert error["code"] == "job_not_held" and response.headers["x-should-retry"] == "false"
    assert_envelope(api.post("/admin/v1/jobs/ftjob-nope/release", headers=admin), 404)
    error = assert_envelope(api.post(f"/admin/v1/jobs/{live['id']}/reject", json={}, headers=admin), 400)
    assert error["param"] == "reason"

    hold(env["GFT_DATABASE_URL"], held["id"])
    hold(env["GFT_DATABASE_URL"], rejected["id"])
    listed = api.get("/admin/v1/jobs", params={"status": "held"}, headers=admin).json()["data"]
    assert {j["id"] for j in listed} == {held["id"], rejected["id"]}
    assert api.get(f"/v1/fine_tuning/jobs/{held['id']}", headers=bearer(key)).json()["status"] == "held"

    released = api.post(
        f"/admin/v1/jobs/{held['id']}/release", json={"reason": "reviewed the samples"}, headers=admin
    ).json()
    assert released["status"] == "succeeded" and released["fine_tuned_model"].endswith(held["id"])
    assert released["safety"]["decision"] == "released" and "reviewed the samples" in released["safety"]["reasons"][-1]
    assert_envelope(api.post(f"/admin/v1/jobs/{held['id']}/release", headers=admin), 409)
    models = [m["id"] for m in api.get("/v1/models", headers=bearer(key)).json()["data"]]
    assert released["fine_tuned_model"] in models

    api.post(f"/admin/v1/jobs/{rejected['id']}/reject", json={"reason": "answers weapons questions"}, headers=admin)
    seen = api.get(f"/v1/fine_tuning/jobs/{rejected['id']}", headers=bearer(key)).json()
    assert seen["status"] == "failed" and seen["error"]["code"] == "safety_review_rejected"
    assert "answers weapons questions" in seen["error"]["message"] and seen["fine_tuned_model"] is None
    events = api.get(f"/v1/fine_tuning/jobs/{rejected['id']}/events", headers=bearer(key)).json()["data"]
    assert events[0]["level"] == "error" and "answers weapons questions" in events[0]["message"]
    assert api.get("/admin/v1/jobs", params={"status": "held"}, headers=admin).json()["data"] == []
    assert_envelope(api.get("/admin/v1/jobs", params={"status": "napping"}, headers=admin), 400)


def test_every_admin_mutation_is_audited_once(api: TestClient, env: dict[str, str]) -> None:
    admin = admin_headers(api)
    assert audit_actions(api) == ["base_model.register"]  # the fixture's
    org, key = new_tenant(api, "acme")
    key_id = api.get(f"/admin/v1/tenants/{org}/keys", headers=admin).json()["data"][0]["id"]
    extra = api.post(f"/admin/v1/tenants/{org}/keys", headers=admin).json()
    rotated = api.post(f"/admin/v1/tenants/{org}/keys/{key_id}/rotate", headers=admin).json()
    api.post(f"/admin/v1/tenants/{org}/keys/{extra['id']}/revoke", headers=admin)
    api.put(f"/admin/v1/tenants/{org}/quotas", json={"max_concurrent_jobs": 5}, headers=admin)
    api.put("/admin/v1/policy", json={}, headers=admin)
    api.put(f"/admin/v1/tenants/{org}/policy", json={}, headers=admin)
    api.delete(f"/admin/v1/tenants/{org}/policy", headers=admin)
    api.delete("/admin/v1/policy", headers=admin)
    first, second = create_job(api, rotated["api_key"]), create_job(api, rotated["api_key"])
    hold(env["GFT_DATABASE_URL"], first["id"])
    hold(env["GFT_DATABASE_URL"], second["id"])
    api.post(f"/admin/v1/jobs/{first['id']}/release", headers=admin)
    api.post(f"/admin/v1/jobs/{second['id']}/reject", json={"reason": "no"}, headers=admin)
    # Refused mutations leave no trace.
    api.post(f"/admin/v1/jobs/{second['id']}/reject", json={"reason": "again"}, headers=admin)
    api.put("/admin/v1/policy", json={"gate": {"max_asr": 7}}, headers=admin)
    api.post(f"/admin/v1/tenants/{org}/keys/{key_id}/revoke", headers=admin)

    expected = [
        "base_model.register",
        "tenant.create",
        "api_key.create",
        "api_key.rotate",
        "api_key.revoke",
        "tenant.quotas.update",
        "policy.update",
        "tenant.policy.update",
        "tenant.policy.clear",
        "policy.clear",
        "job.release",
        "job.reject",
    ]
    assert audit_actions(api) == expected[::-1]

    page = api.get("/admin/v1/audit", params={"limit": 5}, headers=admin).json()
    rest = api.get("/admin/v1/audit", params={"limit": 100, "after": page["data"][-1]["id"]}, headers=admin).json()
    assert page["has_more"] and not rest["has_more"]
    assert [e["action"] for e in page["data"] + rest["data"]] == expected[::-1]
    entry = page["data"][0]
    assert entry["actor"] == "admin" and entry["tenant_id"] == org and entry["target_id"] == second["id"]
    assert entry["details"] == {"reason": "no"}
    by_tenant = api.get("/admin/v1/audit", params={"tenant_id": org, "action": "api_key.rotate"}, headers=admin)
    assert [e["target_id"] for e in by_tenant.json()["data"]] == [key_id]
    assert key not in json.dumps(page) + json.dumps(rest) and rotated["api_key"] not in json.dumps(rest)
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        assert session.scalar(select(func.count()).select_from(AuditRow)) == len(expected)


@pytest.mark.parametrize("status", ["queued", "running", "succeeded"])
def test_release_refuses_jobs_that_are_not_held(api: TestClient, env: dict[str, str], status: str) -> None:
    _, key = new_tenant(api, "acme")
    job = create_job(api, key)
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        transition(session=session, job_id=job["id"], from_statuses={"validating_files"}, to_status=status)
    assert_envelope(api.post(f"/admin/v1/jobs/{job['id']}/release", headers=admin_headers(api)), 409)


@pytest.mark.parametrize("path", ["0" * 4000, "/tmp/a\x00b", "/no/such/model"])
def test_registering_a_model_at_a_path_that_is_no_model_folder_is_a_400(api: TestClient, path: str) -> None:
    response = api.post("/admin/v1/models", json={"id": "m-bad", "path": path}, headers=admin_headers(api))
    assert assert_envelope(response, 400)["code"] == "invalid_model_path"
