"""Artifact store: dataset files and adapters, written atomically so a crash never leaves half a file.

A local-filesystem store is the default; keys are relative POSIX paths. Writers stream into a temporary
file in the same folder and rename it into place, the only step readers can observe.
"""

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class ArtifactTooLarge(Exception):
    """The stream passed the caller's size cap; nothing was stored."""


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


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
        digest, size = hashlib.sha256(), 0
        with self.staged_file(key) as (handle, _tmp):
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ArtifactTooLarge(f"larger than {max_bytes} bytes")
                digest.update(chunk)
                handle.write(chunk)
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    def put_dir(self, key: str, source: Path) -> str:
        """Copy a folder in under key; readers see all of it or nothing (rename of a staged copy)."""
        final = self.path(key)
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
