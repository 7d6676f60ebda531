"""Artifact store: dataset files, checkpoints, adapters and reports, written atomically so a crash never leaves
half a file, and read back through the same interface on any node.

A local-filesystem store is the default; keys are relative POSIX paths. Writers stream into a temporary
file in the same folder and rename it into place, the only step readers can observe. `put_blob` stores
content-addressed (key `blobs/sha256/<2 hex>/<sha256>`: written once, deduplicated); folders written with
`immutable=True` (released adapters) are never replaced. `S3ArtifactStore` keeps the same contract on any
S3-compatible service, for fleets of workers that share no disk. Code that needs a folder on disk (peft loads
and saves directories) writes a local folder and `put_dir`s it, and reads through `local_copy`.
`artifact_store(settings)` is the one place that builds a store.
"""

import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
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
    """What the service and the workers need from a store; both backends below implement it.

    `open` gives a binary reader (iterable by lines) and raises FileNotFoundError for a missing key;
    `staged_file` yields a local file to write and its path, published under the key only if the block succeeds;
    `local_copy` yields a folder on local disk holding the stored folder's files, for the block's duration (read
    only: on the local store it is the stored folder itself); `local_path` is a lasting local copy, for keys that
    never change (the local store's own file)."""

    def put_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob: ...
    def put_blob(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob: ...
    def put_dir(self, key: str, source: Path, immutable: bool = False) -> str: ...
    def staged_file(self, key: str) -> AbstractContextManager[tuple[BinaryIO, Path]]: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def local_copy(self, key: str) -> AbstractContextManager[Path]: ...
    def local_path(self, key: str) -> Path: ...


class _StagedPuts:
    """`put_stream` on top of a backend's `staged_file`: the same for both backends."""

    def staged_file(self, key: str) -> AbstractContextManager[tuple[BinaryIO, Path]]:
        raise NotImplementedError

    def put_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob:
        with self.staged_file(key) as (handle, _tmp):
            size, sha256 = copy_hashed(chunks, handle, max_bytes)
        return StoredBlob(key=key, size=size, sha256=sha256)


class LocalArtifactStore(_StagedPuts):
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
        immutable, a folder already there is kept as it is: the first complete write wins, even against a
        concurrent writer (renaming onto a folder that exists fails)."""
        final = self.path(key)
        if immutable and final.exists():
            return key
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=".staging-"))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            if immutable:
                try:
                    os.rename(staging, final)
                except OSError:
                    if not final.is_dir():
                        raise
            else:
                if final.exists():
                    shutil.rmtree(final)
                os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return key

    def local_path(self, key: str) -> Path:
        return self.path(key)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """The stored folder itself: on this backend nothing needs copying (callers only read it)."""
        folder = self.path(key)
        if not folder.is_dir():
            raise FileNotFoundError(f"no stored folder {key!r}")
        yield folder

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


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3ArtifactStore(_StagedPuts):
    """The same contract on an S3-compatible service (boto3). An object becomes visible only when its upload
    completes, so a writer that dies mid-way leaves nothing. A folder is its files under a fresh version prefix
    (`<key>/.v-<random>/...`) plus a manifest at `<key>/.manifest.json` naming that version and each file's
    sha256, written last: the manifest is the commit. An immutable folder's manifest is written with
    `If-None-Match: *`, so of two concurrent writers exactly one wins and the other's files are removed; a
    mutable folder (a checkpoint written again) switches to the new version, then drops the old one's files.

    Local disk is used only for staging uploads and for copies under `cache_dir`: `local_copy` fetches a folder
    into a temporary directory (sha256-checked against the manifest) and removes it afterwards; `local_path`
    keeps a cached copy (for immutable keys)."""

    def __init__(
        self, bucket: str, cache_dir: Path, prefix: str = "", client: Any = None, endpoint_url: str | None = None
    ) -> None:
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
            if _client_error_code(exc) in _MISSING:
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

    def put_blob(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredBlob:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.cache_dir) as spool:
            size, sha256 = copy_hashed(chunks, spool, max_bytes)
            key = blob_key(sha256)
            if not self._object_exists(key):
                spool.seek(0)
                self.client.upload_fileobj(spool, self.bucket, self._key(key))
        return StoredBlob(key=key, size=size, sha256=sha256)

    def _manifest(self, key: str) -> dict[str, Any] | None:
        try:
            with self.open(f"{key}/{MANIFEST}") as body:
                return json.loads(body.read())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    @staticmethod
    def _file_key(key: str, manifest: dict[str, Any], relative: str) -> str:
        version = manifest.get("version")
        return f"{key}/.v-{version}/{relative}" if version else f"{key}/{relative}"

    def put_dir(self, key: str, source: Path, immutable: bool = False) -> str:
        from botocore.exceptions import ClientError

        if immutable and self.exists(key):
            return key
        manifest: dict[str, Any] = {"version": secrets.token_hex(8), "files": {}}
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = path.relative_to(source).as_posix()
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter_file(handle):
                    digest.update(chunk)
            self.client.upload_file(str(path), self.bucket, self._key(self._file_key(key, manifest, relative)))
            manifest["files"][relative] = digest.hexdigest()
        body = json.dumps(manifest, sort_keys=True).encode()
        manifest_key = self._key(f"{key}/{MANIFEST}")
        if immutable:
            try:
                self.client.put_object(Bucket=self.bucket, Key=manifest_key, Body=body, IfNoneMatch="*")
            except ClientError as exc:
                if _client_error_code(exc) not in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                    raise
                self._delete_prefix(f"{key}/.v-{manifest['version']}/")  # another writer won
            return key
        previous = self._manifest(key)
        self.client.put_object(Bucket=self.bucket, Key=manifest_key, Body=body)
        if previous and previous.get("version"):
            self._delete_prefix(f"{key}/.v-{previous['version']}/")
        return key

    def open(self, key: str) -> BinaryIO:
        """A buffered reader over the object's body (iterable by lines, like a local file)."""
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _client_error_code(exc) in _MISSING:
                raise FileNotFoundError(f"no stored object {key!r}") from None
            raise
        return io.BufferedReader(body, buffer_size=1 << 20)

    def exists(self, key: str) -> bool:
        return self._object_exists(key) or self._object_exists(f"{key}/{MANIFEST}")

    def _delete_prefix(self, relative_prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(relative_prefix)
        )
        doomed = [{"Key": o["Key"]} for page in pages for o in page.get("Contents", [])]
        doomed.sort(key=lambda o: o["Key"].endswith(MANIFEST), reverse=True)  # the manifest first: "gone" at once
        for start in range(0, len(doomed), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed[start : start + 1000]})

    def delete(self, key: str) -> None:
        self._delete_prefix(f"{key}/")
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def fetch_dir(self, key: str, destination: Path) -> None:
        """Download the folder's files (as its manifest lists them) into destination, each checked against the
        manifest's sha256. FileNotFoundError when no folder is stored under key."""
        manifest = self._manifest(key)
        if manifest is None:
            raise FileNotFoundError(f"no stored folder {key!r}")
        target = LocalArtifactStore(destination)
        for relative, sha256 in manifest["files"].items():
            with self.open(self._file_key(key, manifest, relative)) as body:
                stored = target.put_stream(relative, iter_file(body))
            if stored.sha256 != sha256:
                raise OSError(f"{key}/{relative}: sha256 {stored.sha256} != manifest {sha256}")

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".copy-"))
        try:
            self.fetch_dir(key, folder)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def local_path(self, key: str) -> Path:
        """A cached local copy of a file or folder, kept under cache_dir (for keys that never change)."""
        local = LocalArtifactStore(self.cache_dir)
        target = local.path(key)
        if target.exists():
            return target
        if self._object_exists(key):
            with self.open(key) as body:
                local.put_stream(key, iter_file(body))
            return target
        with self.local_copy(key) as folder:
            local.put_dir(key, folder, immutable=True)
        return target


def artifact_store(settings: "Settings") -> LocalArtifactStore | S3ArtifactStore:
    """The store the settings name: the local filesystem under data_dir/artifacts (default), or an S3-compatible
    bucket (local disk then only stages uploads and holds temporary copies, under data_dir/cache/s3). One store
    per configuration and process: boto3 clients are thread-safe and costly to build."""
    if settings.artifact_store == "s3":
        return _s3_store(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.cache_dir / "s3")
    return LocalArtifactStore(settings.artifacts_dir)


@lru_cache(maxsize=4)
def _s3_store(bucket: str, prefix: str, endpoint_url: str, cache_dir: Path) -> S3ArtifactStore:
    return S3ArtifactStore(bucket, cache_dir, prefix, endpoint_url=endpoint_url or None)
