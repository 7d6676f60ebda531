"""Idempotency-Key on job creation: same key and body -> the same job; same key, other body -> 422."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import service.jobs
from schemas.jobs import JobCreate
from service.jobs import submit_job
from service.state.db import session_scope
from service.state.models import JobRow, TenantRow
from tests.service.calls import ONE_ROW_FILE, assert_envelope, tenant, upload

JOBS = "/v1/fine_tuning/jobs"
Acme = tuple[dict[str, str], str]  # headers, a file id


def job_count(database_url: str) -> int:
    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(JobRow)) or 0


@pytest.fixture()
def acme(api: TestClient) -> Acme:
    headers = tenant(api, "acme")
    return headers, upload(api, headers, ONE_ROW_FILE).json()["id"]


def test_same_key_same_body_returns_the_first_job(api: TestClient, env: dict[str, str], acme: Acme) -> None:
    headers, file_id = acme
    body = {"model": "m1", "training_file": file_id, "suffix": "a"}
    first = api.post(JOBS, json=body, headers={**headers, "Idempotency-Key": "k1"})
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    # Same request, keys reordered and an explicit null: the same body.
    again = api.post(JOBS, json={"suffix": "a", "seed": None, **body}, headers={**headers, "Idempotency-Key": "k1"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert job_count(env["GFT_DATABASE_URL"]) == 1
    events = api.get(f"{JOBS}/{first.json()['id']}/events", headers=headers).json()["data"]
    assert len(events) == 1

    other = api.post(JOBS, json={**body, "suffix": "b"}, headers={**headers, "Idempotency-Key": "k1"})
    error = assert_envelope(other, 422)
    assert error["code"] == "idempotency_key_reused" and "k1" in error["message"]
    assert other.headers["x-should-retry"] == "false"
    assert job_count(env["GFT_DATABASE_URL"]) == 1


def test_keys_are_per_tenant_and_optional(api: TestClient, env: dict[str, str], acme: Acme) -> None:
    headers, file_id = acme
    other = tenant(api, "other")
    other_file = upload(api, other, ONE_ROW_FILE).json()["id"]
    mine = api.post(JOBS, json={"model": "m1", "training_file": file_id}, headers={**headers, "Idempotency-Key": "k"})
    theirs = api.post(
        JOBS, json={"model": "m1", "training_file": other_file}, headers={**other, "Idempotency-Key": "k"}
    )
    assert mine.status_code == theirs.status_code == 200 and mine.json()["id"] != theirs.json()["id"]
    # The other tenant sending acme's body under the same key: a different body for its key, never acme's job.
    assert (
        api.post(
            JOBS, json={"model": "m1", "training_file": file_id}, headers={**other, "Idempotency-Key": "k"}
        ).status_code
        == 422
    )
    plain = [api.post(JOBS, json={"model": "m1", "training_file": file_id}, headers=headers) for _ in range(2)]
    assert plain[0].json()["id"] != plain[1].json()["id"]
    assert job_count(env["GFT_DATABASE_URL"]) == 4


def test_a_refused_request_does_not_use_up_its_key(api: TestClient, acme: Acme) -> None:
    headers, file_id = acme
    keyed = {**headers, "Idempotency-Key": "retry-me"}
    assert_envelope(api.post(JOBS, json={"model": "nope", "training_file": file_id}, headers=keyed), 400)
    assert api.post(JOBS, json={"model": "m1", "training_file": file_id}, headers=keyed).status_code == 200
    error = assert_envelope(
        api.post(
            JOBS, json={"model": "m1", "training_file": file_id}, headers={**headers, "Idempotency-Key": "x" * 256}
        ),
        400,
    )
    assert error["param"] == "idempotency-key"


def test_concurrent_duplicates_make_one_job(api: TestClient, env: dict[str, str], acme: Acme) -> None:
    headers, file_id = acme
    keyed = {**headers, "Idempotency-Key": "burst"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(
            pool.map(lambda _: api.post(JOBS, json={"model": "m1", "training_file": file_id}, headers=keyed), range(6))
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "no") for r in responses) == ["no"] + ["true"] * 5
    assert job_count(env["GFT_DATABASE_URL"]) == 1


def test_unique_index_settles_a_duplicate_that_passed_the_lookup(
    api: TestClient, env: dict[str, str], acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if another request committed the key between this one's look-up and its insert."""
    headers, file_id = acme
    first = api.post(JOBS, json={"model": "m1", "training_file": file_id}, headers={**headers, "Idempotency-Key": "k"})
    real_lookup, calls = service.jobs.get_idempotency_key, []

    def late_lookup(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["key"])
        return None if len(calls) == 1 else real_lookup(**kwargs)

    monkeypatch.setattr(service.jobs, "get_idempotency_key", late_lookup)
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        tenant_id = session.scalar(select(TenantRow.id).where(TenantRow.name == "acme"))
        row, created = submit_job(
            session=session,
            tenant_id=tenant_id,
            idempotency_key="k",
            request=JobCreate(model="m1", training_file=file_id),
        )
        assert (row.id, created) == (first.json()["id"], False)
    assert calls == ["k", "k"] and job_count(env["GFT_DATABASE_URL"]) == 1
