"""Isolation matrix: two tenants, every tenant route of the app. Another tenant's ids answer 404 and change
nothing, lists never show them; tenant keys (and wrong keys) on every admin route answer 403, no key 401.
The routes are read from the app's OpenAPI document, so a route added later is covered without editing this
test."""

import re

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.state.checkpoints import add_checkpoint
from service.state.db import session_scope
from tests.service.calls import ONE_ROW_FILE, admin_headers, assert_envelope, tenant, upload
from tests.service.live import release

PARAM = re.compile(r"{(\w+)}")


def routes(prefix: str) -> list[tuple[str, str]]:
    """(method, path) of every route under prefix, from the app's OpenAPI document."""
    paths = create_app().openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() if path.startswith(prefix) for method in ops]


def fill(path: str, ids: dict[str, str]) -> str:
    return PARAM.sub(lambda m: ids[m.group(1)], path)


def owned_resources(api: TestClient, env: dict[str, str], headers: dict[str, str]) -> dict[str, str]:
    """A file, a released job with a checkpoint (so every job route has something to find) for one tenant."""
    file_id = upload(api, headers, ONE_ROW_FILE).json()["id"]
    job = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=headers).json()
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        add_checkpoint(
            session=session,
            job_id=job["id"],
            step=10,
            storage_key="checkpoints/x/10",
            metrics={"step": 10, "train_loss": 1.0},
        )
    release(env, job["id"])
    return {"file_id": file_id, "job_id": job["id"]}


def test_cross_tenant_access_is_404_on_every_tenant_route(api: TestClient, env: dict[str, str]) -> None:
    acme, other = tenant(api, "acme"), tenant(api, "other")
    ids = owned_resources(api, env, acme)
    with_ids = [(m, p) for m, p in routes("/v1/") if PARAM.search(p)]
    assert {
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/fine_tuning/jobs/{job_id}/adapter",
        "/v1/fine_tuning/jobs/{job_id}/pause",
        "/v1/fine_tuning/jobs/{job_id}/resume",
    } <= {p for _, p in with_ids}
    for method, path in with_ids:
        url = fill(path, ids)
        error = assert_envelope(api.request(method, url, headers=other), 404)
        assert error["code"] == "not_found", (method, url, error)
        assert ids["file_id"] in error["message"] or ids["job_id"] in error["message"], (method, url, error)
        if method == "GET":  # the owner's read finds the object: the 404 above is isolation, not absence
            mine = api.get(url, headers=acme)
            assert mine.status_code == 200 or mine.json()["error"]["code"] != "not_found", (url, mine.text)

    # Lists show only the caller's own; creating a job on another tenant's file is refused.
    for method, path in routes("/v1/"):
        if method == "GET" and not PARAM.search(path):
            data = api.get(path, headers=other).json()["data"]
            assert not {item["id"] for item in data} & set(ids.values()), path
            if path == "/v1/models":
                assert all(not m["id"].startswith("ft:") for m in data)
    assert_envelope(
        api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": ids["file_id"]}, headers=other), 400
    )
    # Nothing the other tenant tried changed the owner's objects.
    job = api.get(f"/v1/fine_tuning/jobs/{ids['job_id']}", headers=acme).json()
    assert job["status"] == "succeeded" and job["fine_tuned_model"]
    assert api.get(f"/v1/files/{ids['file_id']}", headers=acme).status_code == 200


@pytest.mark.parametrize("who", ["tenant", "none", "wrong"])
def test_admin_routes_refuse_anyone_but_the_admin(api: TestClient, env: dict[str, str], who: str) -> None:
    acme = tenant(api, "acme")
    ids = owned_resources(api, env, acme)
    org = api.get("/admin/v1/tenants", headers=admin_headers(api)).json()["data"][0]["id"]
    ids |= {"tenant_id": org, "key_id": "key-000000000000000000000000"}
    headers = {"tenant": acme, "none": {}, "wrong": {"Authorization": "Bearer not-the-admin-key"}}[who]
    admin_routes = routes("/admin/")
    assert len(admin_routes) >= 20
    status, code = (401, "invalid_api_key") if who == "none" else (403, "admin_only")
    for method, path in admin_routes:
        error = assert_envelope(api.request(method, fill(path, ids), headers=headers, json={}), status)
        assert error["code"] == code, (method, path)
