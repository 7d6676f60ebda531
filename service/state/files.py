"""Uploaded files, always scoped by tenant."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.state.db import fetch_page
from service.state.models import FileRow


def add_file(*, session: Session, row: FileRow) -> FileRow:
    session.add(row)
    session.flush()
    return row


def get_file(*, session: Session, tenant_id: str, file_id: str) -> FileRow | None:
    return session.scalar(
        select(FileRow).where(FileRow.id == file_id, FileRow.tenant_id == tenant_id, FileRow.deleted.is_(False))
    )


def list_files(*, session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[list[FileRow], bool]:
    query = select(FileRow).where(FileRow.tenant_id == tenant_id, FileRow.deleted.is_(False))
    anchor = get_file(session=session, tenant_id=tenant_id, file_id=after) if after else None
    return fetch_page(session, query, FileRow.seq, anchor.seq if anchor else None, limit)
