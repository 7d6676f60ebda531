import json

import pytest

from service.datasets import DatasetError, validate_chat_jsonl

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})


def lines(*rows: str) -> list[bytes]:
    return [(r + "\n").encode() if isinstance(r, str) else r for r in rows]


def error_for(data: list[bytes]) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        validate_chat_jsonl(data)
    return info.value


def test_valid_rows_counted_and_blank_lines_skipped() -> None:
    assert validate_chat_jsonl(lines(GOOD, "", GOOD)) == 2


@pytest.mark.parametrize(
    ("row", "line", "fragment"),
    [
        (b"\xff\xfe not utf8\n", 2, "not valid UTF-8"),
        ("{not json", 2, "not valid JSON"),
        ("[1, 2]", 2, "JSON object"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}), 2, "messages.0.role"),
        (json.dumps({"messages": [{"role": "user", "content": "only a question"}]}), 2, "assistant"),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "extra": 1}
            ),
            2,
            "extra",
        ),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]}
            ),
            2,
            "weight",
        ),
    ],
)
def test_bad_rows_name_line_and_field(row: str | bytes, line: int, fragment: str) -> None:
    error = error_for(lines(GOOD, row))
    assert error.line == line and fragment in error.message


def test_empty_file() -> None:
    assert "no rows" in error_for([]).message


def test_fast_path_agrees_with_the_chat_row_schema() -> None:
    """service.datasets checks rows with plain typed dicts first; it must accept exactly what ChatRow accepts,
    and estimate the same tokens as estimate_tokens over ChatRow's contents."""
    from pydantic import ValidationError

    from schemas.chat import ChatMessage, ChatRow
    from service.datasets import FAST_PATH_FIELDS, _fast_tokens, estimate_tokens
    from tests.service.test_malformed_files import CASES

    assert frozenset(ChatMessage.model_fields) == FAST_PATH_FIELDS
    rows = [
        GOOD.encode(),
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "s", "name": "n"},
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a", "weight": 0},
                    {"role": "user", "content": "q2"},
                    {"role": "assistant", "content": "b", "weight": 1},
                ]
            }
        ).encode(),
        json.dumps({"messages": [{"role": "assistant", "content": "a", "weight": None}]}).encode(),
        json.dumps(
            {"messages": [{"role": "user", "content": "q", "weight": None}, {"role": "assistant", "content": "a"}]}
        ).encode(),
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "q"},
                ]
            }
        ).encode(),
        json.dumps({"messages": []}).encode(),
        b'{"messages": null}',
        b'"x"',
        b"",
        json.dumps({"messages": [{"role": "assistant", "content": "a", "name": "x" * 65}]}).encode(),
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "caf\u00e9 \u65e5\u672c " * 7},
                    {"role": "assistant", "content": "\U0001f600" * 5 + "abc"},
                ]
            }
        ).encode(),
    ]
    rows += [line for content, _, _ in CASES.values() for line in content.splitlines() if len(line) < 10**6]
    for raw in rows:
        try:
            tokens: int | None = estimate_tokens(m.content for m in ChatRow.model_validate_json(raw).messages)
        except ValidationError:
            tokens = None
        assert _fast_tokens(raw) == tokens, raw[:200]
