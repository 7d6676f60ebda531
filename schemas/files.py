"""File objects as the openai client expects them."""

from typing import Literal

from pydantic import BaseModel

FilePurpose = Literal["fine-tune"]
FileStatus = Literal["uploaded", "processed", "error"]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: FileStatus
    status_details: str | None = None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool
