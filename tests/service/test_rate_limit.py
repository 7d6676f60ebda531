"""Per-key request limits counted in the real Redis: 429 with retry-after and the error envelope."""

import pytest
from fastapi.testclient import TestClient

import service.rate_limit
from service.settings import get_settings
from tests.service.calls import admin_headers, assert_envelope

WINDOW_START = 1_900_000_020.0  # a minute boundary (divisible by 60)


def limit_to(monkeypatch: pytest.MonkeyPatch, per_minute: int, url: str | None = None) -> None:
    monkeypatch.setenv("GFT_RATE_LIMIT_PER_MINUTE", str(per_minute))
    if url is not None:
        monkeypatch.setenv("GFT_RATE_LIMIT_URL", url)
    get_settings.cache_clear()


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The limiter's clock, 30 s into a window; tests move it by assigning now[0]."""
    now = [WINDOW_START + 30]
    monkeypatch.setattr(service.rate_limit, "_now", lambda: now[0])
    return now


def new_key(api: TestClient) -> tuple[str, dict[str, str]]:
    body = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin_headers(api)).json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


def test_limit_per_key_with_retry_after(api: TestClient, monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    limit_to(monkeypatch, 3)
    org, headers = new_key(api)
    remaining = [api.get("/v1/files", headers=headers).headers["x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]

    refused = api.get("/v1/fine_tuning/jobs", headers=headers)
    error = assert_envelope(refused, 429)
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert refused.headers["retry-after"] == "30" and refused.headers["x-ratelimit-limit-requests"] == "3"
    assert "x-should-retry" not in refused.headers  # waiting does help

    # Each key has its own budget; admin routes are not limited.
    second = api.post(f"/admin/v1/tenants/{org}/keys", headers=admin_headers(api)).json()["api_key"]
    assert api.get("/v1/files", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert all(api.get("/admin/v1/tenants", headers=admin_headers(api)).status_code == 200 for _ in range(5))

    clock[0] = WINDOW_START + 60  # the next window
    assert api.get("/v1/files", headers=headers).status_code == 200


def test_off_by_default_and_open_when_redis_is_down(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    _, headers = new_key(api)
    responses = [api.get("/v1/files", headers=headers) for _ in range(5)]
    assert all(r.status_code == 200 and "x-ratelimit-limit-requests" not in r.headers for r in responses)

    limit_to(monkeypatch, 1, url="redis://127.0.0.1:1/0")  # nothing listens there
    assert all(api.get("/v1/files", headers=headers).status_code == 200 for _ in range(3))
    # Unauthenticated requests are refused before they can use anyone's budget.
    assert_envelope(api.get("/v1/files", headers={"Authorization": "Bearer nope"}), 401)
