"""Artifact store: dataset files and adapters, written atomically so a crash never leaves half a file.

A local-filesystem store is the default; keys are relative POSIX paths. Writers stream into a temporary
file in the same folder and rename it into place, the only step readers can observe. `put_blob` stores
content-addressed (key `blobs/sha256/<2 hex>/<sha256>`: written once, deduplicated); folders written with
`immutable=True` (released adapters) are never replaced. `S3ArtifactStore` keeps the same contract on any
S3-compatible service, for fleets of workers that share no disk; `artifact_store(settings)` picks one.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from service.settings import Settings

BLOB_PREFIX = "blobs/sha256"


class ArtifactTooLarge(Exception):
    """The stream passed the caller's size cap; nothing was stored."""


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


def blob_key(sha256: str) -> str:
    return f"{BLOB_PREFIX}/{sha256[:2]}/{sha256}"


def copy_hashed(chunks: Iterable[bytes], out: BinaryIO, max_bytes: int | None) -> tuple[int, str]:
    """Write chunks to out, hashing as they pass; (size, sha256). Raises ArtifactTooLarge past max_bytes."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise ArtifactTooLarge(f"larger than {max_bytes} bytes")
        digest.update(chunk)
        out.write(chunk)
    return size, digest.hexdigest()


class ArtifactStore(Protocol):
    """What the service and the workers need from a store; both backends below implement it."""

    def put_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob: ...
    def put_blob(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob: ...
    def put_dir(self, key: str, source: Path, immutable: bool = False) -> str: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def local_path(self, key: str) -> Path: ...


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        resolved = (self.root / key).resolve()
        if self.root.resolve() not in resolved.parents:
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return resolved

    @contextmanager
    def staged_file(self, key: str) -> Iterator[tuple[BinaryIO, Path]]:
        """A temporary file next to the key's final place; moved there only if the block succeeds."""
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".staging-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, tmp
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def put_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob:
        with self.staged_file(key) as (handle, _tmp):
            size, sha256 = copy_hashed(chunks, handle, max_bytes)
        return StoredBlob(key=key, size=size, sha256=sha256)

    def put_blob(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob:
        """Content-addressed: staged, hashed, then renamed to its digest's key unless that blob exists already."""
        staging_root = self.path(BLOB_PREFIX)
        staging_root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=staging_root, prefix=".staging-")
        try:
            with os.fdopen(fd, "wb") as handle:
                size, sha256 = copy_hashed(chunks, handle, max_bytes)
                handle.flush()
                os.fsync(handle.fileno())
            key = blob_key(sha256)
            final = self.path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if not final.exists():
                os.replace(tmp_name, final)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return StoredBlob(key=key, size=size, sha256=sha256)

    def put_dir(self, key: str, source: Path, immutable: bool = False) -> str:
        """Copy a folder in under key; readers see all of it or nothing (rename of a staged copy). With
        immutable, a folder already there is kept as it is (the first complete write wins)."""
        final = self.path(key)
        if immutable and final.exists():
            return key
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=".staging-"))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return key

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        target = self.path(key)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def iter_file(handle: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := handle.read(chunk_size):
        yield chunk


MANIFEST = ".manifest.json"  # written last by S3ArtifactStore.put_dir: a folder exists once its manifest does


class S3ArtifactStore:
    """The same contract on an S3-compatible service (boto3). An object becomes visible only when its upload
    completes, so a writer that dies mid-way leaves nothing; a folder is its files plus a manifest written
    last. Reads that need a path (model loading) get a verified local copy under `cache_dir`."""

    def __init__(self, bucket: str, cache_dir: Path, prefix: str = "", client: Any = None,
                 endpoint_url: str | None = None) -> None:
        import boto3

        self.bucket, self.cache_dir, self.prefix = bucket, cache_dir, prefix.strip("/")
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url or None)

    def _key(self, key: str) -> str:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or ".." in parts:
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object_exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    @contextmanager
    def staged_file(self, key: str) -> Iterator[tuple[BinaryIO, Path]]:
        """A local temporary file, uploaded under key only if the block succeeds."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.cache_dir, prefix=".staging-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, tmp
            self.client.upload_file(str(tmp), self.bucket, self._key(key))
        finally:
            tmp.unlink(missing_ok=True)

    def put_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob:
        with self.staged_file(key) as (handle, _tmp):
            size, sha256 = copy_hashed(chunks, handle, max_bytes)
        return StoredBlob(key=key, size=size, sha256=sha256)

    def put_blob(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.cache_dir) as spool:
            size, sha256 = copy_hashed(chunks, spool, max_bytes)
            key = blob_key(sha256)
            if not self._object_exists(key):
                spool.seek(0)
                self.client.upload_fileobj(spool, self.bucket, self._key(key))
        return StoredBlob(key=key, size=size, sha256=sha256)

    def put_dir(self, key: str, source: Path, immutable: bool = False) -> str:
        if immutable and self.exists(key):
            return key
        files: dict[str, str] = {}
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = path.relative_to(source).as_posix()
            with path.open("rb") as handle:
                files[relative] = self.put_stream(f"{key}/{relative}", iter_file(handle)).sha256
        manifest = json.dumps({"files": files}, sort_keys=True).encode()
        self.client.put_object(Bucket=self.bucket, Key=self._key(f"{key}/{MANIFEST}"), Body=manifest)
        return key

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]  # type: ignore[no-any-return]

    def exists(self, key: str) -> bool:
        return self._object_exists(key) or self._object_exists(f"{key}/{MANIFEST}")

    def delete(self, key: str) -> None:
        prefix = self._key(key)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{prefix}/")
        doomed = [{"Key": o["Key"]} for page in pages for o in page.get("Contents", [])]
        doomed.sort(key=lambda o: o["Key"].endswith(MANIFEST), reverse=True)  # the manifest first: "gone" at once
        for start in range(0, len(doomed), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed[start:start + 1000]})
        self.client.delete_object(Bucket=self.bucket, Key=prefix)

    def local_path(self, key: str) -> Path:
        """A local copy of a file or folder (cached; a folder is fetched as its manifest lists it)."""
        local = LocalArtifactStore(self.cache_dir)
        target = local.path(key)
        if target.exists():
            return target
        if self._object_exists(key):
            with self.open(key) as body:
                local.put_stream(key, iter_file(body))
            return target
        with self.open(f"{key}/{MANIFEST}") as body:
            files = json.loads(body.read())["files"]
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".staging-"))
        try:
            for relative, sha256 in files.items():
                stored = LocalArtifactStore(staging).put_stream(relative, iter_file(self.open(f"{key}/{relative}")))
                if stored.sha256 != sha256:
                    raise OSError(f"{key}/{relative}: sha256 {stored.sha256} != manifest {sha256}")
            local.put_dir(key, staging, immutable=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def artifact_store(settings: "Settings") -> LocalArtifactStore | S3ArtifactStore:
    """The store the settings name: the local filesystem under data_dir (default), or an S3-compatible bucket
    (with local copies under data_dir/artifacts for model loading)."""
    if settings.artifact_store == "s3":
        return S3ArtifactStore(settings.s3_bucket, settings.artifacts_dir, settings.s3_prefix,
                               endpoint_url=settings.s3_endpoint_url or None)
    return LocalArtifactStore(settings.artifacts_dir)
