"""The API's /metrics in-process against real PostgreSQL and Redis: request series by route template, job and
queue figures read at scrape time, no tenant secret or free text in any label."""

import subprocess
import sys
import time

import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from service import metrics
from service.settings import Settings, get_settings
from service.state.db import session_scope
from service.state.jobs import transition
from service.state.models import JobRow
from tests.service.calls import ONE_ROW_FILE, admin_headers, upload


def scrape(api: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def new_tenant(api: TestClient, name: str) -> tuple[str, str]:
    body = api.post("/admin/v1/tenants", json={"name": name}, headers=admin_headers(api)).json()
    return body["id"], body["api_key"]


def create_job(api: TestClient, key: str) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    file_id = upload(api, headers, ONE_ROW_FILE).json()["id"]
    response = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_requests_are_labelled_by_route_template_and_status(api: TestClient) -> None:
    before = scrape(api)
    template = "/v1/fine_tuning/jobs/{job_id}"
    count = value(before, "gft_http_requests_total", method="GET", route=template, status="401") or 0.0
    api.get("/v1/fine_tuning/jobs/ftjob-abc")
    api.get("/v1/fine_tuning/jobs/ftjob-def")
    api.get("/no/such/path")
    after = scrape(api)
    assert value(after, "gft_http_requests_total", method="GET", route=template, status="401") == count + 2
    assert value(after, "gft_http_request_duration_seconds_count", method="GET", route=template, status="401") >= 2
    assert value(after, "gft_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    routes = {dict(labels).get("route") for (name, labels) in after if name == "gft_http_requests_total"}
    assert not any("ftjob-" in r or "/no/such" in r for r in routes)  # raw paths never become labels


def test_job_figures_come_from_the_database(api: TestClient, env: dict[str, str]) -> None:
    tenant_id, key = new_tenant(api, "acme")
    other_id, _ = new_tenant(api, "quiet")
    first, second = create_job(api, key), create_job(api, key)
    samples = scrape(api)
    assert value(samples, "gft_jobs", state="validating_files") == 2
    assert value(samples, "gft_jobs", state="succeeded") == 0  # every state is present, empty ones at 0
    assert value(samples, "gft_jobs_created_total", tenant=tenant_id) == 2
    assert value(samples, "gft_jobs_created_total", tenant=other_id) == 0
    assert value(samples, "gft_source_up", source="database") == 1
    assert value(samples, "gft_source_up", source="broker") == 1

    with session_scope(env["GFT_DATABASE_URL"]) as session:
        transition(
            session=session,
            job_id=first["id"],
            from_statuses={"validating_files"},
            to_status="failed",
            error={"code": "internal_error", "message": "boom", "param": None},
        )
        session.execute(update(JobRow).where(JobRow.id == second["id"]).values(updated_at=int(time.time()) - 600))
    samples = scrape(api)
    assert value(samples, "gft_jobs", state="validating_files") == 1
    assert value(samples, "gft_jobs", state="failed") == 1
    assert value(samples, "gft_jobs_failed_total", code="internal_error") == 1
    assert 600 <= value(samples, "gft_job_state_oldest_seconds", state="validating_files") < 900
    assert value(samples, "gft_job_state_oldest_seconds", state="queued") == 0


def test_queue_depth_counts_every_priority_list(api: TestClient, env: dict[str, str]) -> None:
    client = redis.Redis.from_url(env["GFT_BROKER_URL"])
    _, key = new_tenant(api, "acme")
    create_job(api, key)  # enqueues its validation on the cpu queue; no worker runs here
    samples = scrape(api)
    assert value(samples, "gft_queue_depth", queue="cpu") == client.llen("cpu") >= 1
    gpu = value(samples, "gft_queue_depth", queue="gpu")
    client.rpush("gpu\x06\x163", b"{}")  # kombu's list for priority 3
    try:
        assert value(scrape(api), "gft_queue_depth", queue="gpu") == gpu + 1
    finally:
        client.delete("gpu\x06\x163")


def test_no_secret_or_free_text_in_any_label(api: TestClient) -> None:
    tenant_id, key = new_tenant(api, "Tenant With A Secret-ish Name")
    job = create_job(api, key)
    values = {v for (_, labels) in scrape(api) for _, v in labels}
    assert tenant_id in values
    for forbidden in (key, "Tenant With A Secret-ish Name", job["id"], job["training_file"], "train.jsonl"):
        assert not any(forbidden in v for v in values), forbidden


def test_a_source_that_does_not_answer_is_reported_not_raised() -> None:
    unreachable = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", broker_url="redis://127.0.0.1:1/0"
    )
    families = list(metrics.FleetCollector(lambda: unreachable).collect())
    assert [f.name for f in families] == ["gft_source_up"]
    assert {s.labels["source"]: s.value for s in families[0].samples} == {"database": 0, "broker": 0}


def test_readiness_follows_the_database(api: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").json() == {"status": "ok"}
    monkeypatch.setenv("GFT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    response = api.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"
    assert api.get("/healthz").status_code == 200  # liveness does not depend on the database


def test_the_api_and_its_metrics_never_import_torch() -> None:
    code = (
        "import sys; from service.api.app import create_app; import service.metrics; create_app(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
