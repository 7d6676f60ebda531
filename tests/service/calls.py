"""Calls the service tests share: make a tenant, upload a file, check an error envelope."""

import json

from fastapi.testclient import TestClient
from httpx import Response

ROW = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
ONE_ROW_FILE = (json.dumps(ROW) + "\n").encode()


def admin_headers(api: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.headers['x-admin']}"}


def tenant(api: TestClient, name: str) -> dict[str, str]:
    body = api.post("/admin/v1/tenants", json={"name": name}, headers=admin_headers(api)).json()
    return {"Authorization": f"Bearer {body['api_key']}"}


def upload(api: TestClient, headers: dict[str, str], content: bytes) -> Response:
    return api.post(
        "/v1/files", files={"file": ("train.jsonl", content)}, data={"purpose": "fine-tune"}, headers=headers
    )


def assert_envelope(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers.get("x-request-id")
    return error
