"""Released adapters as downloads: the peft folder packed as a deterministic tar with its SHA-256."""

import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from schemas.job_status import JobStatus
from service.errors import NotFound
from service.state.jobs import get_job
from service.storage import ArtifactStore, iter_file


@dataclass(frozen=True)
class AdapterArchive:
    path: Path
    filename: str
    sha256: str
    size: int


def released_adapter(*, session: Session, store: ArtifactStore, tenant_id: str, job_id: str) -> AdapterArchive:
    """The adapter of a released job, packed (see pack_adapter) from whichever store holds it; NotFound for
    anything else (another tenant's job, a job not released, a blocked or held one, or a released job whose files
    are gone), so nothing unreleased can be fetched."""
    row = get_job(session=session, job_id=job_id, tenant_id=tenant_id)
    if row is None or row.status != JobStatus.SUCCEEDED or not row.fine_tuned_model or not row.adapter_key:
        raise NotFound("released adapter for fine-tuning job", job_id, param="fine_tuning_job_id")
    try:
        with store.local_copy(row.adapter_key) as folder:
            return pack_adapter(folder, job_id)
    except FileNotFoundError:
        raise NotFound("released adapter for fine-tuning job", job_id, param="fine_tuning_job_id") from None


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def pack_adapter(folder: Path, job_id: str) -> AdapterArchive:
    """A tar of the folder (sorted entries, zeroed owners and times: the same files give the same bytes) in a
    temporary file the caller deletes."""
    fd, name = tempfile.mkstemp(prefix="gft-adapter-", suffix=".tar")
    os.close(fd)
    path = Path(name)
    try:
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for item in sorted(folder.rglob("*")):
                if item.is_file() and not item.is_symlink():
                    tar.add(item, arcname=f"{job_id}/{item.relative_to(folder).as_posix()}", filter=_reset)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter_file(handle):
                digest.update(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return AdapterArchive(
        path=path, filename=f"{job_id}-adapter.tar", sha256=digest.hexdigest(), size=path.stat().st_size
    )
