"""Restart the API in the middle of a streaming upload: no half-written file is ever visible, neither through
the API (list, retrieve, content) nor in the artifact store."""

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import redis_broker
from tests.stack import free_port, spawn, stop_process_group, wait_for

BROKER_DB = 9  # this module's own Redis db (the API only needs it for rate limits, off here)


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


def _start_api(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = spawn([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--quiet"], env, log)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, "the API to answer")
    return proc, base


def _visible_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".staging-")]


def test_api_killed_mid_upload_leaves_no_visible_file(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    api, base = _start_api(env, port, tmp_path / "api.log")
    admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
    tenant = httpx.post(f"{base}/admin/v1/tenants", json={"name": "acme"}, headers=admin).json()
    auth = {"Authorization": f"Bearer {tenant['api_key']}"}
    line = (
        json.dumps(
            {"messages": [{"role": "user", "content": "hi " * 50}, {"role": "assistant", "content": "hello " * 50}]}
        )
        + "\n"
    ).encode()
    boundary = "gftboundary"
    sent = threading.Event()

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        for i in range(100_000):  # ~50 MB, never finished: the API dies first
            yield line * 16
            if i == 200:
                sent.set()
            time.sleep(0.001)

    def upload() -> None:
        try:
            httpx.post(
                f"{base}/v1/files",
                content=body(),
                timeout=60,
                headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        except httpx.HTTPError:
            pass  # the server went away mid-request, as intended

    uploader = threading.Thread(target=upload, daemon=True)
    try:
        uploader.start()
        assert sent.wait(60)
        stop_process_group(api, signal.SIGKILL)
        uploader.join(timeout=60)
        api, base = _start_api(env, port, tmp_path / "api-2.log")
        listed = httpx.get(f"{base}/v1/files", headers=auth).json()
        assert listed["data"] == []
        complete = httpx.post(
            f"{base}/v1/files", headers=auth, data={"purpose": "fine-tune"}, files={"file": ("ok.jsonl", line * 3)}
        )
        assert complete.status_code == 200, complete.text
        files = httpx.get(f"{base}/v1/files", headers=auth).json()["data"]
        assert [f["filename"] for f in files] == ["ok.jsonl"] and files[0]["bytes"] == len(line) * 3
        assert httpx.get(f"{base}/v1/files/{files[0]['id']}/content", headers=auth).content == line * 3
    finally:
        stop_process_group(api)
    stored = _visible_files(Path(env["GFT_DATA_DIR"]) / "artifacts")
    assert [p.name for p in stored] == [f"{files[0]['id']}.jsonl"]  # only the complete upload
    assert stored[0].read_bytes() == line * 3
