"""A bounded schemathesis run over the whole OpenAPI schema (bench/fuzz.py runs the long one): no 5xx, and
every documented response matches its schema."""

from fastapi.testclient import TestClient

from bench.fuzz import fuzz_app
from tests.service.calls import tenant


def test_schemathesis_finds_no_server_errors_or_schema_violations(api: TestClient) -> None:
    key = tenant(api, "fuzz")["Authorization"].removeprefix("Bearer ")
    report = fuzz_app(api.app, tenant_key=key, admin_key=api.headers["x-admin"], max_examples=6, negative=True)
    assert report.operations >= 30 and report.calls > report.operations
    assert report.failures == []
