"""File uploads: stream to a staged artifact, validate line by line, publish only when valid."""

import hashlib
from typing import BinaryIO

from sqlalchemy.orm import Session

from schemas.files import FileObject
from service.datasets import NO_LIMITS, DatasetError, TokenLimits, bounded_lines, check_chat_jsonl
from service.errors import InvalidInput, TooLarge
from service.ids import new_id
from service.state.files import add_file
from service.state.models import FileRow
from service.storage import ArtifactStore, ArtifactTooLarge, iter_file


def file_key(tenant_id: str, file_id: str) -> str:
    return f"files/{tenant_id}/{file_id}.jsonl"


def upload_file(
    *,
    session: Session,
    store: ArtifactStore,
    tenant_id: str,
    filename: str,
    purpose: str,
    stream: BinaryIO,
    max_bytes: int,
    limits: TokenLimits = NO_LIMITS,
) -> FileRow:
    """Stored and recorded only if valid; a bad file leaves nothing behind (no row, no blob). The stream is
    copied in 1 MiB chunks and validated line by line (each line bounded), so memory stays flat in file size."""
    if purpose != "fine-tune":
        raise InvalidInput(
            f"Unsupported purpose '{purpose}': only 'fine-tune' is accepted.", param="purpose", code="invalid_purpose"
        )
    file_id = new_id("file")
    key = file_key(tenant_id, file_id)
    digest, size = hashlib.sha256(), 0
    try:
        with store.staged_file(key) as (handle, staged):
            for chunk in iter_file(stream):
                size += len(chunk)
                if size > max_bytes:
                    raise ArtifactTooLarge(f"larger than {max_bytes} bytes")
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            with staged.open("rb") as lines:
                rows = check_chat_jsonl(bounded_lines(lines), limits=limits).rows
    except ArtifactTooLarge:
        raise TooLarge(
            f"File is larger than the limit of {max_bytes} bytes.", param="file", code="file_too_large"
        ) from None
    except DatasetError as exc:
        raise InvalidInput(
            f"Invalid training file '{filename}', {exc}.", param="file", code="invalid_file_format"
        ) from None
    row = FileRow(
        id=file_id,
        tenant_id=tenant_id,
        filename=filename[:256],
        purpose=purpose,
        bytes=size,
        status="processed",
        sha256=digest.hexdigest(),
        storage_key=key,
        rows=rows,
    )
    return add_file(session=session, row=row)


def to_file_object(row: FileRow) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,  # type: ignore[arg-type]
        status_details=row.status_details,
    )
