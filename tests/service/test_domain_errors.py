"""The logic's errors (service/errors.py) reach the caller as the envelope, mapped in one place: every kind has a
status, none is retried by the openai client, and a quota that resets says when."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.errors import DOMAIN_STATUS, install_error_handlers
from service.errors import Conflict, DomainError, InvalidInput, KeyReused, NotFound, QuotaExceeded, TooLarge

RAISED: dict[str, DomainError] = {
    "invalid": InvalidInput("Invalid cursor 'x'.", code="invalid_cursor", param="after"),
    "missing": NotFound("fine-tuning job", "ftjob-1", param="fine_tuning_job_id"),
    "conflict": Conflict("Job ftjob-1 has already succeeded; it cannot be cancelled.", code="job_already_finished"),
    "large": TooLarge("File is larger than the limit of 10 bytes.", code="file_too_large", param="file"),
    "reused": KeyReused(
        "Idempotency-Key 'k' was already used.", code="idempotency_key_reused", param="idempotency-key"
    ),
    "quota": QuotaExceeded(
        "This organization has trained 9 tokens today (UTC).", code="daily_token_quota_exceeded", retry_after=120
    ),
}


def all_kinds(kind: type[DomainError] = DomainError) -> set[type[DomainError]]:
    return {sub for direct in kind.__subclasses__() for sub in {direct, *all_kinds(direct)}}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    def raise_(name: str) -> None:
        raise RAISED[name]

    return TestClient(app)


def test_every_kind_has_a_status() -> None:
    assert all_kinds() == set(DOMAIN_STATUS)


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("invalid", 400, "invalid_request_error"),
        ("missing", 404, "not_found_error"),
        ("conflict", 409, "conflict_error"),
        ("large", 413, "invalid_request_error"),
        ("reused", 422, "invalid_request_error"),
        ("quota", 429, "rate_limit_error"),
    ],
)
def test_each_kind_becomes_its_envelope(client: TestClient, name: str, status: int, kind: str) -> None:
    response = client.get(f"/raise/{name}")
    assert response.status_code == status
    error = response.json()["error"]
    raised = RAISED[name]
    assert error == {"message": raised.message, "type": kind, "param": raised.param, "code": raised.code}
    assert response.headers["x-should-retry"] == "false"


def test_not_found_names_the_thing_and_its_id(client: TestClient) -> None:
    error = client.get("/raise/missing").json()["error"]
    assert (error["message"], error["code"]) == ("No fine-tuning job found with id 'ftjob-1'.", "not_found")


def test_a_quota_that_resets_says_when(client: TestClient) -> None:
    assert client.get("/raise/quota").headers["retry-after"] == "120"
    assert "retry-after" not in client.get("/raise/conflict").headers
