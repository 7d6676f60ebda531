"""Validation of chat JSONL training files, streamed line by line so memory stays flat."""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.chat import ChatRow


@dataclass
class DatasetError(Exception):
    """A row a tenant must fix; `line` is 1-based as in any editor."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def validate_chat_jsonl(lines: Iterable[bytes], max_rows: int = 1_000_000) -> int:
    """Check every line is a valid chat row; return the row count or raise DatasetError."""
    rows = 0
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(number, f"not valid UTF-8 (byte {exc.start})") from None
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DatasetError(number, "each line must be a JSON object with a 'messages' list")
        try:
            ChatRow.model_validate(obj)
        except ValidationError as exc:
            raise DatasetError(number, _describe(exc)) from None
        rows += 1
        if rows > max_rows:
            raise DatasetError(number, f"more than {max_rows} rows")
    if rows == 0:
        raise DatasetError(1, "the file has no rows")
    return rows
