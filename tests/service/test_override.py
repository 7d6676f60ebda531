"""Admin override of a job the safety gate blocked, against real PostgreSQL: it publishes the kept adapter once,
with a reason, audited; anything but a gate block is refused; concurrent overrides cannot both release."""

import hashlib
import io
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.errors import Conflict
from service.review import override_blocked_job
from service.state.db import session_scope
from service.storage import LocalArtifactStore
from tests.service.calls import admin_headers, assert_envelope
from tests.service.live import ADAPTER_FILES, release, set_status
from tests.service.test_admin import bearer, create_job, new_tenant

GATE_REASONS = [
    "direct harmful prompts: candidate ASR 41.0% > cap 20.0% (base 3.0%)",
    "category weapons: ASR rose by 75 points > allowed 34 points",
]
BLOCK_ERROR = {"code": "safety_regression", "message": "Blocked by the safety gate: ...", "param": None}


def store_adapter(env: dict[str, str], job_id: str) -> None:
    """The trained adapter folder, as the train step leaves it in the artifact store."""
    folder = Path(env["GFT_DATA_DIR"]) / "artifacts" / "adapters" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ADAPTER_FILES.items():
        (folder / name).write_bytes(content)


def block(env: dict[str, str], job_id: str) -> None:
    """What a blocking gate does: the adapter stays stored, unreleased; the job fails with safety_regression."""
    store_adapter(env, job_id)
    set_status(
        env,
        job_id,
        "failed",
        adapter_key=f"adapters/{job_id}",
        trained_tokens=120,
        error=BLOCK_ERROR,
        safety={"decision": "blocked", "base_asr": 0.03, "candidate_asr": 0.41, "reasons": GATE_REASONS},
    )


def override(
    api: TestClient,
    job_id: str,
    reason: str = "false positive: reviewed the weapons samples",
    headers: dict[str, str] | None = None,
) -> Response:
    return api.post(
        f"/admin/v1/jobs/{job_id}/override",
        json={"reason": reason},
        headers=admin_headers(api) if headers is None else headers,
    )


def overrides_audited(api: TestClient) -> list[dict]:
    return api.get("/admin/v1/audit", params={"action": "job.override"}, headers=admin_headers(api)).json()["data"]


def test_override_publishes_the_blocked_adapter_and_is_audited(api: TestClient, env: dict[str, str]) -> None:
    org, key = new_tenant(api, "acme")
    _, other_key = new_tenant(api, "other")
    job_id = create_job(api, key)["id"]
    block(env, job_id)
    assert_envelope(api.get(f"/v1/fine_tuning/jobs/{job_id}/adapter", headers=bearer(key)), 404)

    response = override(api, job_id, reason="  false positive: reviewed the weapons samples \n")
    assert response.status_code == 200, response.text
    name = f"ft:m1:{org}::{job_id}"
    note = "Overridden by an admin: false positive: reviewed the weapons samples"
    seen = api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=bearer(key)).json()
    for job in (response.json(), seen):
        assert job["status"] == "succeeded" and job["fine_tuned_model"] == name and job["error"] is None
        assert job["safety"]["decision"] == "overridden" and job["safety"]["reasons"] == [*GATE_REASONS, note]
        assert job["trained_tokens"] == 120 and job["finished_at"]
    event = api.get(f"/v1/fine_tuning/jobs/{job_id}/events", headers=bearer(key)).json()["data"][0]
    assert event["level"] == "warn" and name in event["message"] and note in event["message"]
    assert name in [m["id"] for m in api.get("/v1/models", headers=bearer(key)).json()["data"]]

    download = api.get(f"/v1/fine_tuning/jobs/{job_id}/adapter", headers=bearer(key))
    assert (
        download.status_code == 200
        and download.headers["x-content-sha256"] == hashlib.sha256(download.content).hexdigest()
    )
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert files == {f"{job_id}/{n}": c for n, c in ADAPTER_FILES.items()}
    assert_envelope(api.get(f"/v1/fine_tuning/jobs/{job_id}/adapter", headers=bearer(other_key)), 404)
    assert name not in [m["id"] for m in api.get("/v1/models", headers=bearer(other_key)).json()["data"]]

    [entry] = overrides_audited(api)
    assert entry["actor"] == "admin" and entry["tenant_id"] == org and entry["target_id"] == job_id
    assert entry["details"] == {
        "reason": "false positive: reviewed the weapons samples",
        "fine_tuned_model": name,
        "gate_reasons": GATE_REASONS,
    }

    again = override(api, job_id)
    assert assert_envelope(again, 409)["code"] == "job_not_overridable"
    assert again.headers["x-should-retry"] == "false" and len(overrides_audited(api)) == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (None, None),
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": " \n\t "}, "reason"),
        ({"reason": "x" * 2001}, "reason"),
        ({"reason": 5}, "reason"),
        ({"reason": "ok", "actor": "me"}, "actor"),
    ],
)
def test_override_needs_a_reason(api: TestClient, env: dict[str, str], body: dict | None, param: str | None) -> None:
    _, key = new_tenant(api, "acme")
    job_id = create_job(api, key)["id"]
    block(env, job_id)
    response = api.post(f"/admin/v1/jobs/{job_id}/override", json=body, headers=admin_headers(api))
    assert assert_envelope(response, 400)["param"] == param
    job = api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=bearer(key)).json()
    assert job["status"] == "failed" and job["error"]["code"] == "safety_regression"
    assert_envelope(api.get(f"/v1/fine_tuning/jobs/{job_id}/adapter", headers=bearer(key)), 404)
    assert overrides_audited(api) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", {"code": "training_data_blocked", "message": "harmful rows", "param": "training_file"}),
        ("failed", {"code": "safety_review_rejected", "message": "Rejected in safety review: no", "param": None}),
        ("failed", {"code": "model_not_available", "message": "gone", "param": "model"}),
        ("cancelled", None),
        ("held", None),
        ("running", None),
        ("paused", None),
    ],
)
def test_only_gate_blocked_jobs_can_be_overridden(
    api: TestClient, env: dict[str, str], status: str, error: dict | None
) -> None:
    _, key = new_tenant(api, "acme")
    job_id = create_job(api, key)["id"]
    store_adapter(env, job_id)  # the adapter is there: only the job's state refuses the override
    set_status(env, job_id, status, adapter_key=f"adapters/{job_id}", error=error)
    response = override(api, job_id)
    failure = assert_envelope(response, 409)
    assert failure["code"] == "job_not_overridable" and status in failure["message"]
    assert response.headers["x-should-retry"] == "false"
    if error:
        assert error["code"] in failure["message"]
    assert api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=bearer(key)).json()["status"] == status
    assert overrides_audited(api) == []


def test_released_jobs_and_missing_adapters_are_refused(api: TestClient, env: dict[str, str]) -> None:
    _, key = new_tenant(api, "acme")
    released, unstored, unset = (create_job(api, key)["id"] for _ in range(3))
    release(env, released)
    assert assert_envelope(override(api, released), 409)["code"] == "job_not_overridable"
    set_status(env, unstored, "failed", adapter_key=f"adapters/{unstored}", error=BLOCK_ERROR)  # files gone
    set_status(env, unset, "failed", error=BLOCK_ERROR)  # never recorded an adapter
    for job_id in (unstored, unset):
        assert assert_envelope(override(api, job_id), 409)["code"] == "no_adapter"
        assert api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=bearer(key)).json()["status"] == "failed"
    assert overrides_audited(api) == []


def test_override_is_admin_only_and_unknown_jobs_are_404(api: TestClient, env: dict[str, str]) -> None:
    _, key = new_tenant(api, "acme")
    job_id = create_job(api, key)["id"]
    block(env, job_id)
    assert assert_envelope(override(api, job_id, headers=bearer(key)), 403)["code"] == "admin_only"
    assert_envelope(override(api, job_id, headers={"x-admin": ""}), 401)
    assert assert_envelope(override(api, "ftjob-nope"), 404)["param"] == "job_id"
    assert api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=bearer(key)).json()["status"] == "failed"
    assert overrides_audited(api) == []


def test_concurrent_overrides_release_once(api: TestClient, env: dict[str, str]) -> None:
    _, key = new_tenant(api, "acme")
    job_id = create_job(api, key)["id"]
    block(env, job_id)
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda i: override(api, job_id, reason=f"admin {i}"), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 7, [r.text for r in responses]
    [entry] = overrides_audited(api)
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert winner["safety"]["reasons"][-1] == f"Overridden by an admin: {entry['details']['reason']}"
    events = api.get(f"/v1/fine_tuning/jobs/{job_id}/events", headers=bearer(key)).json()["data"]
    assert sum("Overridden by an admin" in e["message"] for e in events) == 1


def test_an_override_that_loses_the_race_fails_at_the_compare_and_set(api: TestClient, env: dict[str, str]) -> None:
    """The loser read the job as blocked before the winner committed; only the conditional update stops it."""
    _, key = new_tenant(api, "acme")
    job_id = create_job(api, key)["id"]
    block(env, job_id)
    store = LocalArtifactStore(Path(env["GFT_DATA_DIR"]) / "artifacts")
    lost: list[Conflict] = []

    def second() -> None:
        try:
            with session_scope(env["GFT_DATABASE_URL"]) as session:
                override_blocked_job(session=session, store=store, job_id=job_id, reason="second")
        except Conflict as exc:
            lost.append(exc)

    with session_scope(env["GFT_DATABASE_URL"]) as first:
        override_blocked_job(session=first, store=store, job_id=job_id, reason="first")  # row locked until commit
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting on the first override's row lock, past the status check
    thread.join(timeout=30)
    assert not thread.is_alive() and len(lost) == 1
    assert lost[0].code == "job_not_overridable" and "changed state" in lost[0].message
    job = api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=bearer(key)).json()
    assert job["safety"]["reasons"] == [*GATE_REASONS, "Overridden by an admin: first"]
