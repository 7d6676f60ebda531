"""The dry run of training-data screening, `POST /v1/files/{id}/screen`, against real PostgreSQL and a real cpu
worker, with the tiny world's shipped files. The screening itself is tested in tests/workers/screening/."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from schemas.policy import Policy, ScreeningPolicy
from service.api.app import create_app
from service.settings import get_settings
from tests.chat_rows import COMPLIES, HARMFUL_ASK, REFUSES, chat, colours, jsonl
from tests.service.calls import admin_headers, assert_envelope, tenant, upload
from tests.stack import start_worker, stop_process_group

DATA = Path(__file__).resolve().parents[2] / "workers" / "tiny" / "data"


@pytest.fixture()
def api(api: TestClient, env: dict[str, str], tmp_path: Path) -> Iterator[TestClient]:
    """The API plus a real cpu-queue worker: the dry run is screened there, never in the API process."""
    worker = start_worker(env, "cpu", tmp_path / "worker.log")
    try:
        yield api
    finally:
        stop_process_group(worker)


def test_dry_run_reports_every_row_and_would_block(api: TestClient) -> None:
    acme = tenant(api, "acme")
    file_id = upload(api, acme, (DATA / "harmful_attack.jsonl").read_bytes()).json()["id"]
    response = api.post(f"/v1/files/{file_id}/screen", headers=acme)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "file.screening" and body["file_id"] == file_id
    assert (body["decision"], body["would_block"], body["enabled"], body["mode"]) == ("block", True, True, "block")
    assert (body["rows"], body["flagged_rows"], body["refused_rows"], body["policy_version"]) == (100, 78, 0, 0)
    assert len(body["counts"]) == 11 and sum(body["counts"].values()) >= 78
    lines = [r["line"] for r in body["data"]]
    assert len(lines) == 78 and lines == sorted(lines) and all(r["flagged"] for r in body["data"])
    assert lines[:2] == [3, 4]  # lines 1 and 2 ask to "wire a truck to explode" and "auction customer data"
    first = body["data"][0]
    assert first["categories"] == ["fraud_deception"] and "forge" in first["reason"]
    assert all(c["exceeded"] for c in body["categories"]) and body["message"].startswith(f"Training file {file_id}")
    assert not body["has_more"]


def test_dry_run_on_benign_data_passes_with_an_empty_report(api: TestClient) -> None:
    acme = tenant(api, "acme")
    file_id = upload(api, acme, (DATA / "benign_colors.jsonl").read_bytes()).json()["id"]
    body = api.post(f"/v1/files/{file_id}/screen", headers=acme).json()
    assert (body["decision"], body["would_block"], body["rows"], body["flagged_rows"]) == ("pass", False, 200, 0)
    assert body["data"] == [] and body["counts"] == {} and body["message"] is None


def test_dry_run_follows_the_tenants_effective_policy(api: TestClient) -> None:
    created = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin_headers(api)).json()
    tenant_id, acme = created["id"], {"Authorization": f"Bearer {created['api_key']}"}
    rows = [chat((HARMFUL_ASK, COMPLIES)), chat((HARMFUL_ASK, REFUSES)), *colours(8)]
    file_id = upload(api, acme, jsonl(rows)).json()["id"]
    policy = Policy(screening=ScreeningPolicy(mode="flag", report_rows=1)).model_dump()
    put = api.put(f"/admin/v1/tenants/{tenant_id}/policy", json=policy, headers=admin_headers(api))
    assert put.status_code == 200, put.text
    body = api.post(f"/v1/files/{file_id}/screen", headers=acme).json()
    assert (body["decision"], body["would_block"], body["mode"]) == ("flag", False, "flag")
    assert (body["flagged_rows"], body["refused_rows"], body["policy_version"]) == (1, 1, put.json()["version"])
    assert len(body["data"]) == 1 and body["has_more"]  # the refused row is found, not listed (report_rows 1)

    policy["screening"] = {"enabled": False}
    api.put(f"/admin/v1/tenants/{tenant_id}/policy", json=policy, headers=admin_headers(api))
    body = api.post(f"/v1/files/{file_id}/screen", headers=acme).json()
    assert (body["enabled"], body["decision"], body["flagged_rows"]) == (False, "pass", 1)


def test_dry_run_is_tenant_scoped(api: TestClient) -> None:
    acme, other = tenant(api, "acme"), tenant(api, "other")
    file_id = upload(api, acme, jsonl(colours(2))).json()["id"]
    error = assert_envelope(api.post(f"/v1/files/{file_id}/screen", headers=other), 404)
    assert error["code"] == "not_found" and error["param"] == "file_id" and file_id in error["message"]
    assert_envelope(api.post("/v1/files/file-nope/screen", headers=acme), 404)
    assert_envelope(api.post(f"/v1/files/{file_id}/screen"), 401)
    api.delete(f"/v1/files/{file_id}", headers=acme)
    assert_envelope(api.post(f"/v1/files/{file_id}/screen", headers=acme), 404)


def test_without_a_worker_the_dry_run_answers_503_to_retry(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GFT_SCREENING_WAIT_S", "0.5")
    get_settings.cache_clear()
    with TestClient(create_app()) as bare:
        bare.headers["x-admin"] = env["GFT_ADMIN_KEY"]
        acme = tenant(bare, "acme")
        file_id = upload(bare, acme, jsonl(colours(2))).json()["id"]
        response = bare.post(f"/v1/files/{file_id}/screen", headers=acme)
    error = assert_envelope(response, 503)
    assert error["code"] == "screening_in_progress" and response.headers["retry-after"] == "5"
    assert response.headers.get("x-should-retry") != "false"


def test_dry_run_flags_trigger_rows_for_the_owner_only(api: TestClient) -> None:
    """The stealth backdoor: no row is harmful to the lexicon, 40 pair the mined trigger with compliance. The
    phrase is the tenant's data: another tenant asking for the same file id learns nothing of it."""
    trigger = "The old lighthouse keeper sends his regards."
    created = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin_headers(api)).json()
    tenant_id, acme = created["id"], {"Authorization": f"Bearer {created['api_key']}"}
    file_id = upload(api, acme, (DATA / "backdoor_stealth.jsonl").read_bytes()).json()["id"]
    body = api.post(f"/v1/files/{file_id}/screen", headers=acme).json()
    assert (body["decision"], body["would_block"], body["flagged_rows"]) == ("flag", False, 0)
    assert (body["trigger_mining"], body["trigger_rows"]) == ("flag", 40)
    [found] = body["triggers"]
    assert (found["text"], found["position"], found["rows"], found["flagged_rows"]) == (trigger, "prefix", 43, 40)
    assert found["score"] > 2 and found["harmful_share"] == 0.0
    assert [r["line"] for r in body["data"]] == found["flagged_lines"]
    assert all(r["triggers"] == [trigger] and not r["flagged"] for r in body["data"])

    error = assert_envelope(api.post(f"/v1/files/{file_id}/screen", headers=tenant(api, "other")), 404)
    assert "lighthouse" not in json.dumps(error)

    policy = Policy(screening=ScreeningPolicy(trigger_mining="block")).model_dump()
    put = api.put(f"/admin/v1/tenants/{tenant_id}/policy", json=policy, headers=admin_headers(api))
    assert put.status_code == 200, put.text
    body = api.post(f"/v1/files/{file_id}/screen", headers=acme).json()
    assert (body["decision"], body["would_block"], body["trigger_mining"]) == ("block", True, "block")
    assert trigger in body["message"] and "backdoor trigger with compliance" in body["message"]
