"""Artifact stores: the local one is atomic and content-addressed; the S3 one keeps the same contract against a
real S3-compatible HTTP server (moto's, started as a separate process)."""

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.storage import ArtifactStore, ArtifactTooLarge, LocalArtifactStore, S3ArtifactStore, blob_key
from tests.stack import free_port, stop_process_group


def _visible(root: Path) -> list[str]:
    """Files a reader could find: everything except in-flight staging files."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".staging-") for part in p.parts))


def test_local_blob_is_content_addressed_and_deduplicated(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    first = store.put_blob([b"hello ", b"world"])
    again = store.put_blob([b"hello world"])
    digest = hashlib.sha256(b"hello world").hexdigest()
    assert first == again and first.key == blob_key(digest) == f"blobs/sha256/{digest[:2]}/{digest}"
    assert first.size == 11 and store.open(first.key).read() == b"hello world"
    assert _visible(tmp_path) == [first.key] and not list(tmp_path.rglob(".staging-*"))


def test_local_writes_are_atomic(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    store.put_stream("files/a.jsonl", [b"old"])

    def failing() -> Iterator[bytes]:
        yield b"half of a new"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_stream("files/a.jsonl", failing())
    with pytest.raises(ArtifactTooLarge):
        store.put_blob([b"x" * 10], max_bytes=5)
    assert store.open("files/a.jsonl").read() == b"old"  # the old content, never half of the new
    assert _visible(tmp_path) == ["files/a.jsonl"] and not list(tmp_path.rglob(".staging-*"))


def test_local_immutable_folder_keeps_the_first_write(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, text in ((one, "first"), (two, "second")):
        folder.mkdir()
        (folder / "adapter.bin").write_text(text)
    store.put_dir("adapters/j1", one, immutable=True)
    store.put_dir("adapters/j1", two, immutable=True)
    assert (store.path("adapters/j1") / "adapter.bin").read_text() == "first"


@pytest.fixture()
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
                time.sleep(0.2)
        yield url
    finally:
        stop_process_group(proc)
        log.close()


@pytest.fixture()
def s3_store(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3ArtifactStore:
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    store = S3ArtifactStore("gft-artifacts", tmp_path / "cache", prefix="fleet", endpoint_url=s3_endpoint)
    store.client.create_bucket(Bucket="gft-artifacts")
    return store


def _keys(store: S3ArtifactStore) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_s3_store_keeps_the_contract(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    store: ArtifactStore = s3_store
    blob = store.put_blob([b"hello ", b"world"])
    assert blob == store.put_blob([b"hello world"])
    assert blob.key == blob_key(hashlib.sha256(b"hello world").hexdigest())
    assert store.exists(blob.key) and store.open(blob.key).read() == b"hello world"

    def failing() -> Iterator[bytes]:
        yield b"half"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_stream("files/t/f.jsonl", failing())
    assert not store.exists("files/t/f.jsonl")  # nothing half-written became visible

    adapter = tmp_path / "adapter"
    (adapter / "sub").mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00weights")
    (adapter / "sub" / "config.json").write_text("{}")
    store.put_dir("adapters/j1", adapter, immutable=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00changed")
    store.put_dir("adapters/j1", adapter, immutable=True)  # released adapters are immutable
    assert store.exists("adapters/j1") and not store.exists("adapters/j2")
    local = store.local_path("adapters/j1")
    assert (local / "adapter_model.safetensors").read_bytes() == b"\x00weights"
    assert (local / "sub" / "config.json").read_text() == "{}"
    assert all(k.startswith("fleet/") for k in _keys(s3_store))

    store.delete("adapters/j1")
    assert not store.exists("adapters/j1") and not [k for k in _keys(s3_store) if "adapters/" in k]
