"""Artifact stores: the local one is atomic and content-addressed; the S3 one keeps the same contract against a
real S3-compatible HTTP server (moto's, started as a separate process)."""

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.storage import (
    ArtifactStore,
    ArtifactTooLarge,
    LocalArtifactStore,
    S3ArtifactStore,
    artifact_store,
    blob_key,
)
from tests.stack import S3_TEST_ENV, s3_server


def _visible(root: Path) -> list[str]:
    """Files a reader could find: everything except in-flight staging files."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".staging-") for part in p.parts)
    )


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
    with s3_server(tmp_path / "moto.log") as url:
        yield url


@pytest.fixture()
def s3_store(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3ArtifactStore:
    for key, value in S3_TEST_ENV.items():
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


def test_local_immutable_folder_survives_a_concurrent_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers both find no folder; the one that renames first wins, the other keeps it and fails nothing."""
    store = LocalArtifactStore(tmp_path / "store")
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, text in ((one, "first"), (two, "second")):
        folder.mkdir()
        (folder / "adapter.bin").write_text(text)
    copytree, rival = shutil.copytree, [one]

    def rival_finishes_meanwhile(source: Path, target: Path, **kwargs: Any) -> Any:
        if rival:
            store.put_dir("adapters/j1", rival.pop(), immutable=True)
        return copytree(source, target, **kwargs)

    monkeypatch.setattr(shutil, "copytree", rival_finishes_meanwhile)
    store.put_dir("adapters/j1", two, immutable=True)
    assert (store.path("adapters/j1") / "adapter.bin").read_text() == "first"
    assert _visible(tmp_path / "store") == ["adapters/j1/adapter.bin"]


def test_local_copy_of_the_local_store_is_the_folder_itself(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.bin").write_bytes(b"a")
    store.put_dir("checkpoints/j/step-000001", source)
    with store.local_copy("checkpoints/j/step-000001") as folder:
        assert folder == store.path("checkpoints/j/step-000001") and (folder / "a.bin").read_bytes() == b"a"
    with pytest.raises(FileNotFoundError), store.local_copy("checkpoints/j/step-000002"):
        pass


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def test_s3_folder_moves_between_nodes_with_empty_disks(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    """A folder written on one node is read on another whose disk holds nothing; the copy is temporary."""
    other = S3ArtifactStore(
        "gft-artifacts", tmp_path / "node-b", prefix="fleet", endpoint_url=s3_store.client.meta.endpoint_url
    )
    s3_store.put_dir("checkpoints/j/step-000002", _folder(tmp_path / "ckpt", {"w.bin": b"\x01" * 10, "s/o.pt": b"o"}))
    with other.local_copy("checkpoints/j/step-000002") as folder:
        assert (folder / "w.bin").read_bytes() == b"\x01" * 10 and (folder / "s" / "o.pt").read_bytes() == b"o"
    assert not [p for p in (tmp_path / "node-b").rglob("*") if p.is_file()]
    with pytest.raises(FileNotFoundError), other.local_copy("checkpoints/j/step-000004"):
        pass
    s3_store.put_stream("files/t/f.jsonl", [b'{"a": 1}\n', b'{"a": 2}\n'])
    with other.open("files/t/f.jsonl") as handle:
        assert list(handle) == [b'{"a": 1}\n', b'{"a": 2}\n']
    with pytest.raises(FileNotFoundError):
        other.open("files/t/missing.jsonl")


def test_s3_rewritten_folder_switches_whole_and_leaves_no_old_files(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    s3_store.put_dir("checkpoints/j/step-000002", _folder(tmp_path / "v1", {"w.bin": b"old", "gone.bin": b"x"}))
    s3_store.put_dir("checkpoints/j/step-000002", _folder(tmp_path / "v2", {"w.bin": b"new"}))
    with s3_store.local_copy("checkpoints/j/step-000002") as folder:
        assert sorted(p.name for p in folder.iterdir()) == ["w.bin"] and (folder / "w.bin").read_bytes() == b"new"
    keys = _keys(s3_store)
    assert len([k for k in keys if k.endswith("/w.bin")]) == 1 and not [k for k in keys if "gone.bin" in k]


def test_s3_immutable_folder_keeps_the_first_of_two_concurrent_writers(
    s3_store: S3ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_store.put_dir("adapters/j1", _folder(tmp_path / "a", {"adapter.bin": b"first"}), immutable=True)
    monkeypatch.setattr(s3_store, "exists", lambda key: False)  # the second writer looked before the first finished
    s3_store.put_dir("adapters/j1", _folder(tmp_path / "b", {"adapter.bin": b"second"}), immutable=True)
    with s3_store.local_copy("adapters/j1") as folder:
        assert (folder / "adapter.bin").read_bytes() == b"first"
    assert len([k for k in _keys(s3_store) if k.endswith("adapter.bin")]) == 1  # the loser's files are removed


def test_s3_copy_refuses_a_file_that_does_not_match_its_manifest(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    s3_store.put_dir("adapters/j1", _folder(tmp_path / "a", {"adapter.bin": b"weights"}), immutable=True)
    (stored,) = [k for k in _keys(s3_store) if k.endswith("adapter.bin")]
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=stored, Body=b"tampered")
    with pytest.raises(OSError, match="sha256"), s3_store.local_copy("adapters/j1"):
        pass


def test_artifact_store_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in S3_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    local = artifact_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "artifacts"
    s3 = Settings(data_dir=tmp_path, artifact_store="s3", s3_bucket="b", s3_endpoint_url="http://127.0.0.1:1")
    store = artifact_store(s3)
    assert isinstance(store, S3ArtifactStore) and store is artifact_store(s3)  # one client per process
    assert store.cache_dir == tmp_path / "cache" / "s3" and store.bucket == "b"
