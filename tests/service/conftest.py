"""The API in-process (TestClient) against real PostgreSQL and Redis, with one base model `m1` registered."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app


@pytest.fixture()
def api(env: dict[str, str], tmp_path: Path) -> Iterator[TestClient]:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    with TestClient(create_app()) as client:
        admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
        registered = client.post("/admin/v1/models", json={"id": "m1", "path": str(model_dir)}, headers=admin)
        assert registered.status_code == 200
        client.headers["x-admin"] = env["GFT_ADMIN_KEY"]
        yield client
