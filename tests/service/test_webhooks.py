"""Webhooks against a real local HTTP server: terminal job events are delivered once, signed so that the
official openai client's `webhooks.unwrap` verifies them, and retried with backoff when the endpoint fails."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from sqlalchemy import select

from service import webhooks
from service.settings import get_settings
from service.state.db import session_scope
from service.state.models import WebhookDeliveryRow
from tests.service.calls import ONE_ROW_FILE, admin_headers, upload
from tests.service.live import release, set_status


class Endpoint:
    """Records every POST; answers the statuses queued in `script` first, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                endpoint.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(endpoint.script.pop(0) if endpoint.script else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture()
def endpoint() -> Iterator[Endpoint]:
    hook = Endpoint()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def tenant_with_job(api: TestClient) -> tuple[str, dict[str, str], str]:
    body = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin_headers(api)).json()
    headers = {"Authorization": f"Bearer {body['api_key']}"}
    file_id = upload(api, headers, ONE_ROW_FILE).json()["id"]
    job = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=headers).json()
    return body["id"], headers, job["id"]


def deliveries(env: dict[str, str]) -> dict[str, WebhookDeliveryRow]:
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        return {r.job_id: r for r in session.scalars(select(WebhookDeliveryRow))}


def test_signing_matches_the_standard_webhooks_example() -> None:
    """The worked example of the Standard Webhooks specification (its reference libraries' test vector)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        webhooks.sign(secret=secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_terminal_events_are_delivered_signed_and_retried(
    api: TestClient, env: dict[str, str], endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, headers, before = tenant_with_job(api)
    set_status(env, before, "failed", error={"code": "x", "message": "y"})  # finished before the webhook: none
    time.sleep(1.1)  # finished_at and webhook_since are whole seconds
    hook = api.put(f"/admin/v1/tenants/{org}/webhook", json={"url": endpoint.url}, headers=admin_headers(api))
    assert hook.status_code == 200, hook.text
    secret = hook.json()["secret"]
    assert secret.startswith("whsec_")
    settings = get_settings()

    _, other, elsewhere = tenant_with_job(api)  # another tenant, with no webhook: never delivered
    assert api.post(f"/v1/fine_tuning/jobs/{elsewhere}/cancel", headers=other).json()["status"] == "cancelled"
    jobs = {}
    for kind in ("cancelled", "succeeded", "failed"):
        job_id = api.post(
            "/v1/fine_tuning/jobs",
            json={"model": "m1", "training_file": api.get("/v1/files", headers=headers).json()["data"][0]["id"]},
            headers=headers,
        ).json()["id"]
        jobs[kind] = job_id
    api.post(f"/v1/fine_tuning/jobs/{jobs['cancelled']}/cancel", headers=headers)
    release(env, jobs["succeeded"])
    set_status(env, jobs["failed"], "failed", error={"code": "safety_regression", "message": "blocked"})
    running = api.post(
        "/v1/fine_tuning/jobs",
        json={"model": "m1", "training_file": api.get("/v1/files", headers=headers).json()["data"][0]["id"]},
        headers=headers,
    ).json()["id"]

    endpoint.script = [500]  # the first delivery fails; it is retried after the backoff
    assert webhooks.deliver_pending(settings) == 2
    rows = deliveries(env)
    assert set(rows) == set(jobs.values())  # not the job finished before, not the running one, not the other's
    assert running not in rows and before not in rows and elsewhere not in rows
    failed_first = [r for r in rows.values() if r.status == "pending"]
    assert len(failed_first) == 1 and failed_first[0].attempts == 1 and failed_first[0].last_error == "HTTP 500"
    assert failed_first[0].next_attempt_at > time.time() + webhooks.BACKOFF_BASE_S - 2
    assert webhooks.deliver_pending(settings) == 0  # not due yet

    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 0.0)
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        row = session.get(WebhookDeliveryRow, failed_first[0].seq)
        assert row is not None
        row.next_attempt_at = time.time()
    assert webhooks.deliver_pending(settings) == 1
    assert {r.status for r in deliveries(env).values()} == {"delivered"}
    assert webhooks.deliver_pending(settings) == 0 and len(endpoint.received) == 4  # nothing sent twice

    client = OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    seen = {}
    for hdrs, body in endpoint.received:
        event = client.webhooks.unwrap(body, hdrs, secret=secret)  # raises unless the signature verifies
        assert hdrs["webhook-id"] == event.id
        seen[event.data.id] = event.type
    assert seen == {
        jobs["cancelled"]: "fine_tuning.job.cancelled",
        jobs["succeeded"]: "fine_tuning.job.succeeded",
        jobs["failed"]: "fine_tuning.job.failed",
    }
    with pytest.raises(Exception, match="signature"):
        client.webhooks.unwrap(endpoint.received[0][1], endpoint.received[0][0], secret=webhooks.new_secret())


def test_delivery_gives_up_after_max_attempts(
    api: TestClient, env: dict[str, str], endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, headers, job_id = tenant_with_job(api)
    api.put(f"/admin/v1/tenants/{org}/webhook", json={"url": endpoint.url}, headers=admin_headers(api))
    api.post(f"/v1/fine_tuning/jobs/{job_id}/cancel", headers=headers)
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 0.0)
    endpoint.script = [503] * webhooks.MAX_ATTEMPTS
    for _ in range(webhooks.MAX_ATTEMPTS + 2):
        webhooks.deliver_pending(get_settings())
    row = deliveries(env)[job_id]
    assert row.status == "failed" and row.attempts == webhooks.MAX_ATTEMPTS and row.last_error == "HTTP 503"
    assert len(endpoint.received) == webhooks.MAX_ATTEMPTS


def test_unreachable_endpoint_and_removed_webhook(api: TestClient, env: dict[str, str]) -> None:
    org, headers, job_id = tenant_with_job(api)
    api.put(
        f"/admin/v1/tenants/{org}/webhook",
        json={"url": "http://127.0.0.1:9/nothing-listens"},
        headers=admin_headers(api),
    )
    api.post(f"/v1/fine_tuning/jobs/{job_id}/cancel", headers=headers)
    assert webhooks.deliver_pending(get_settings()) == 0
    row = deliveries(env)[job_id]
    assert row.status == "pending" and row.attempts == 1 and "ConnectError" in (row.last_error or "")
    removed = api.delete(f"/admin/v1/tenants/{org}/webhook", headers=admin_headers(api))
    assert removed.status_code == 200 and removed.json()["url"] is None
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        session.get(WebhookDeliveryRow, row.seq).next_attempt_at = 0  # type: ignore[union-attr]
    webhooks.deliver_pending(get_settings())
    assert deliveries(env)[job_id].status == "failed"
    bad = api.put(
        f"/admin/v1/tenants/{org}/webhook", json={"url": "ftp://x", "secret": "nope"}, headers=admin_headers(api)
    )
    assert bad.status_code == 400


def test_an_override_sends_succeeded_after_failed(api: TestClient, env: dict[str, str], endpoint: Endpoint) -> None:
    """A blocked job's tenant heard `failed`; when an admin overrides the block the job succeeds, and the tenant
    hears that too (once), as a deploy hook waiting for `succeeded` expects."""
    org, _, job_id = tenant_with_job(api)
    hook = api.put(f"/admin/v1/tenants/{org}/webhook", json={"url": endpoint.url}, headers=admin_headers(api))
    folder = Path(env["GFT_DATA_DIR"]) / "artifacts" / "adapters" / job_id
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    set_status(
        env,
        job_id,
        "failed",
        adapter_key=f"adapters/{job_id}",
        error={"code": "safety_regression", "message": "blocked"},
    )
    assert webhooks.deliver_pending(get_settings()) == 1
    overridden = api.post(f"/admin/v1/jobs/{job_id}/override", json={"reason": "reviewed"}, headers=admin_headers(api))
    assert overridden.status_code == 200, overridden.text
    assert webhooks.deliver_pending(get_settings()) == 1 and webhooks.deliver_pending(get_settings()) == 0
    client = OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    events = [client.webhooks.unwrap(body, hdrs, secret=hook.json()["secret"]) for hdrs, body in endpoint.received]
    assert [(e.type, e.data.id) for e in events] == [
        ("fine_tuning.job.failed", job_id),
        ("fine_tuning.job.succeeded", job_id),
    ]
