"""Validation of chat JSONL training files, streamed line by line so memory stays flat.

Speed: each line is parsed and checked by pydantic-core against `_FastRow`, plain typed dicts with the same
field rules as `schemas.chat.ChatRow` but no Python validators, and the two cross-field rules of ChatRow are
then checked on the dicts. That is much faster than building ChatRow models (docs/benchmarks.md). Any line the
fast path refuses goes through ChatRow itself, which words the error; tests check both paths agree.

Token counts here are an estimate: a file is uploaded before any job names the model it will train, so no
tokenizer is known yet, and the API process loads no model code. `estimate_tokens` counts one token per 4 bytes
of UTF-8 text (the usual figure for BPE vocabularies on English) plus 4 per message for the chat template. The
worker encodes every row with the base model's real tokenizer and truncates at `max_seq_len`; the estimate
only refuses files that are clearly over the limits, at upload, with the line that is.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas.chat import ChatRow

MAX_LINE_BYTES = 8 * 1024 * 1024  # one row; a longer line is refused before it is held in memory whole
BYTES_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


@dataclass
class DatasetError(Exception):
    """A row a tenant must fix; `line` is 1-based as in any editor."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class TokenLimits:
    """Per-row and whole-file caps on estimated tokens; None means no cap."""

    per_row: int | None = None
    total: int | None = None


NO_LIMITS = TokenLimits()


@dataclass(frozen=True)
class DatasetStats:
    rows: int
    estimated_tokens: int


class _FastMessage(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=200_000)]
    weight: NotRequired[Literal[0, 1] | None]
    name: NotRequired[Annotated[str, Field(max_length=64)] | None]


class _FastRow(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    messages: Annotated[list[_FastMessage], Field(min_length=1, max_length=512)]


# The core validator itself: TypeAdapter.validate_json adds a Python call per line around it.
_VALIDATE_ROW_JSON = TypeAdapter(_FastRow).validator.validate_json
FAST_PATH_FIELDS = frozenset(_FastMessage.__annotations__)  # tests check these are ChatMessage's fields


def _content_tokens(content: str) -> int:
    """One message's estimate. An ASCII string's length is its UTF-8 size (isascii reads a flag), so only other
    text is encoded to be measured."""
    size = len(content) if content.isascii() else len(content.encode("utf-8"))
    return -(-size // BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE


def estimate_tokens(contents: Iterable[str]) -> int:
    """A cheap, tokenizer-free estimate of a row's tokens from its messages' contents (see the module
    docstring)."""
    return sum(map(_content_tokens, contents))


def _fast_tokens(raw: bytes) -> int | None:
    """The row's estimated tokens when it passes every ChatRow rule, else None (the slow path words the error).
    One pass over the messages checks the rules and adds up the estimate, as estimate_tokens does (tests check
    the two agree): this loop runs for every row of every upload."""
    try:
        messages: list[dict[str, Any]] = _VALIDATE_ROW_JSON(raw)["messages"]
    except ValidationError:
        return None
    tokens = 0
    trainable = False
    for m in messages:
        content = m["content"]
        size = len(content) if content.isascii() else len(content.encode("utf-8"))
        tokens += -(-size // BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE
        if m["role"] == "assistant":
            trainable = trainable or m.get("weight") != 0
        elif m.get("weight") is not None:
            return None
    if not trainable or messages[-1]["role"] != "assistant":
        return None
    return tokens


def bounded_lines(handle: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The file's lines, never reading more than max_line_bytes + 1 of one line into memory."""
    number = 0
    while line := handle.readline(max_line_bytes + 1):
        number += 1
        if len(line) > max_line_bytes:
            raise DatasetError(number, f"the row is longer than {max_line_bytes} bytes")
        yield line


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _row_tokens(number: int, raw: bytes) -> int:
    """The row's estimated tokens, or a DatasetError naming what is wrong."""
    fast = _fast_tokens(raw)
    if fast is not None:
        return fast
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(number, f"not valid UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DatasetError(number, "each line must be a JSON object with a 'messages' list")
    try:
        row = ChatRow.model_validate(obj)
    except ValidationError as exc:
        raise DatasetError(number, _describe(exc)) from None
    return estimate_tokens(m.content for m in row.messages)  # the fast path is stricter somewhere: trust ChatRow


def check_chat_jsonl(
    lines: Iterable[bytes], *, max_rows: int = 1_000_000, limits: TokenLimits = NO_LIMITS
) -> DatasetStats:
    """Check every line is a valid chat row within the token limits; raise DatasetError at the first that
    is not."""
    rows = total = 0
    for number, raw in enumerate(lines, start=1):
        if not raw or raw.isspace():  # blank: skipped (isspace, unlike strip, copies nothing)
            continue
        tokens = _row_tokens(number, raw)
        if limits.per_row is not None and tokens > limits.per_row:
            raise DatasetError(
                number,
                f"messages: about {tokens} tokens (estimated), above the limit of {limits.per_row} tokens per row",
            )
        total += tokens
        if limits.total is not None and total > limits.total:
            raise DatasetError(
                number,
                f"the file reaches about {total} tokens (estimated) here, above the limit "
                f"of {limits.total} tokens per file",
            )
        rows += 1
        if rows > max_rows:
            raise DatasetError(number, f"more than {max_rows} rows")
    if rows == 0:
        raise DatasetError(1, "the file has no rows")
    return DatasetStats(rows=rows, estimated_tokens=total)


def validate_chat_jsonl(lines: Iterable[bytes], max_rows: int = 1_000_000) -> int:
    """Check every line is a valid chat row; return the row count or raise DatasetError."""
    return check_chat_jsonl(lines, max_rows=max_rows).rows
