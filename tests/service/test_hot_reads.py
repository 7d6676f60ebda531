"""GET one job and list jobs do their work in one trip to a thread pool of their own (service.api.hot_reads):
they must check the caller exactly as every other tenant route does, and never run more reads at once than
GFT_API_READ_THREADS."""

import asyncio
import threading
import time

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import service.rate_limit
from service.api.hot_reads import read_as_caller
from service.settings import get_settings
from service.state.models import TenantRow
from tests.service.calls import ONE_ROW_FILE, admin_headers, assert_envelope, upload


def new_tenant(api: TestClient) -> tuple[str, str, dict[str, str]]:
    body = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin_headers(api)).json()
    return body["id"], body["api_key"], {"Authorization": f"Bearer {body['api_key']}"}


def new_job(api: TestClient, headers: dict[str, str]) -> str:
    file_id = upload(api, headers, ONE_ROW_FILE).json()["id"]
    created = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=headers)
    return created.json()["id"]


def test_hot_reads_check_the_caller(api: TestClient) -> None:
    org, _, headers = new_tenant(api)
    _, _, other = new_tenant(api)
    job_id = new_job(api, headers)
    job, jobs = f"/v1/fine_tuning/jobs/{job_id}", "/v1/fine_tuning/jobs"
    assert api.get(job, headers=headers).json()["id"] == job_id
    assert [j["id"] for j in api.get(jobs, headers=headers).json()["data"]] == [job_id]

    for path in (job, jobs):
        for bad in ({}, {"Authorization": "Bearer gft-nope"}, {"Authorization": "Basic x"}):
            refused = api.get(path, headers=bad)
            assert assert_envelope(refused, 401)["code"] == "invalid_api_key"
            assert refused.headers["x-should-retry"] == "false"
    assert assert_envelope(api.get(job, headers=other), 404)["code"] == "not_found"
    assert api.get(jobs, headers=other).json()["data"] == []

    # Revocation holds from the very next request: nothing about the key is cached.
    key_id = api.get(f"/admin/v1/tenants/{org}/keys", headers=admin_headers(api)).json()["data"][0]["id"]
    api.post(f"/admin/v1/tenants/{org}/keys/{key_id}/revoke", headers=admin_headers(api))
    for path in (job, jobs):
        assert_envelope(api.get(path, headers=headers), 401)


def test_hot_reads_count_against_the_rate_limit(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, headers = new_tenant(api)
    job_id = new_job(api, headers)  # two requests (upload, create) before the limit is set
    monkeypatch.setattr(service.rate_limit, "_now", lambda: 1_900_000_070.0)  # 10 s before a window ends
    monkeypatch.setenv("GFT_RATE_LIMIT_PER_MINUTE", "2")
    get_settings.cache_clear()
    first = api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=headers)
    second = api.get("/v1/fine_tuning/jobs", headers=headers)
    assert [first.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-requests"]] == [
        "1",
        "0",
    ]
    refused = api.get(f"/v1/fine_tuning/jobs/{job_id}", headers=headers)
    assert assert_envelope(refused, 429)["code"] == "rate_limit_exceeded" and refused.headers["retry-after"] == "10"


def test_reads_run_on_a_pool_of_their_own_no_wider_than_read_threads(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GFT_API_READ_THREADS", "3")
    get_settings.cache_clear()
    threads_allowed = get_settings().api_read_threads
    _, key, _ = new_tenant(api)
    running, widest, threads = [0], [0], set()
    lock = threading.Lock()

    def read(_session: Session, tenant: TenantRow) -> str:
        with lock:
            running[0] += 1
            widest[0] = max(widest[0], running[0])
            threads.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return tenant.id

    async def many() -> list[str]:
        calls = [read_as_caller(get_settings(), Response(), f"Bearer {key}", read) for _ in range(3 * threads_allowed)]
        return await asyncio.gather(*calls)

    loop_thread = threading.get_ident()
    assert len(set(asyncio.run(many()))) == 1
    assert widest[0] == threads_allowed == 3 and loop_thread not in threads
