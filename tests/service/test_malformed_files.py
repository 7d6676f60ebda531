"""Malformed training files: each gets a precise 4xx naming the line (and the field where there is one), and
leaves no partial state: no file row, no blob, no staging file."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.datasets import MAX_LINE_BYTES
from service.state.db import session_scope
from service.state.models import FileRow
from tests.service.calls import ROW, admin_headers, assert_envelope, upload

GOOD = json.dumps(ROW)


def lines(*rows: str | bytes) -> bytes:
    return b"".join((r.encode() if isinstance(r, str) else r) + b"\n" for r in rows)


def chat(*messages: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": role, "content": content} for role, content in messages]})


CASES = {
    "bad utf-8 inside a string": (
        lines(GOOD, b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'),
        400,
        ["line 2", "not valid UTF-8"],
    ),
    "bad utf-8 bytes": (lines(GOOD, GOOD, b"\xff\xfe\x00"), 400, ["line 3", "not valid UTF-8"]),
    "not json": (lines(GOOD, "{'messages': []}"), 400, ["line 2", "not valid JSON"]),
    "truncated json": (lines(GOOD[:-5]), 400, ["line 1", "not valid JSON"]),
    "not an object": (lines(GOOD, "[1, 2]"), 400, ["line 2", "JSON object"]),
    "wrong role": (lines(chat(("user", "q"), ("robot", "a"))), 400, ["line 1", "messages.1.role"]),
    "tool role": (lines(GOOD, chat(("tool", "q"), ("assistant", "a"))), 400, ["line 2", "messages.0.role"]),
    "no assistant turn": (lines(GOOD, chat(("system", "s"), ("user", "q"))), 400, ["line 2", "assistant"]),
    "only weight-0 assistant": (
        lines(
            json.dumps(
                {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}
            )
        ),
        400,
        ["line 1", "assistant"],
    ),
    "no messages": (lines(GOOD, '{"prompt": "x"}'), 400, ["line 2", "messages"]),
    "content not a string": (
        lines('{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}'),
        400,
        ["line 1", "messages.0.content"],
    ),
    "unknown field": (lines(json.dumps({**ROW, "extra": 1})), 400, ["line 1", "extra"]),
    "row over the token limit": (
        lines(GOOD, chat(("user", "word " * 800), ("assistant", "a"))),
        400,
        ["line 2", "messages", "tokens", "512"],
    ),
    "line over the byte limit": (lines(GOOD, "x" * (MAX_LINE_BYTES + 10)), 400, ["line 2", "longer than"]),
    "empty": (b"", 400, ["line 1", "no rows"]),
    "blank lines only": (b"\n  \n\n", 400, ["no rows"]),
}


def assert_nothing_left(env: dict[str, str]) -> None:
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        assert session.scalar(select(func.count()).select_from(FileRow)) == 0
    artifacts = Path(env["GFT_DATA_DIR"], "artifacts")
    assert [p for p in artifacts.rglob("*") if p.is_file()] == []


def new_tenant(api: TestClient) -> tuple[str, dict[str, str]]:
    body = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin_headers(api)).json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_file_is_refused_precisely(api: TestClient, env: dict[str, str], case: str) -> None:
    content, status, fragments = CASES[case]
    _, headers = new_tenant(api)
    error = assert_envelope(upload(api, headers, content), status)
    assert error["param"] == "file" and error["code"] == "invalid_file_format"
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    assert_nothing_left(env)
    assert api.get("/v1/files", headers=headers).json()["data"] == []


def test_huge_file_is_refused_at_the_size_cap(api: TestClient, env: dict[str, str]) -> None:
    org, headers = new_tenant(api)
    api.put(f"/admin/v1/tenants/{org}/quotas", json={"max_file_bytes": 64 * 1024}, headers=admin_headers(api))
    error = assert_envelope(upload(api, headers, lines(*[GOOD] * 2000)), 413)
    assert error["code"] == "file_too_large" and "65536" in error["message"]
    assert_nothing_left(env)


def test_file_over_the_total_token_limit(api: TestClient, env: dict[str, str]) -> None:
    org, headers = new_tenant(api)
    api.put(f"/admin/v1/tenants/{org}/quotas", json={"max_trained_tokens_per_day": 100}, headers=admin_headers(api))
    error = assert_envelope(upload(api, headers, lines(*[GOOD] * 50)), 400)
    assert "line 11" in error["message"] and "100 tokens per file" in error["message"]  # 10 estimated per row
    assert_nothing_left(env)


def test_bad_purpose_and_missing_file(api: TestClient, env: dict[str, str]) -> None:
    _, headers = new_tenant(api)
    response = api.post(
        "/v1/files", files={"file": ("t.jsonl", lines(GOOD))}, data={"purpose": "batch"}, headers=headers
    )
    assert assert_envelope(response, 400)["param"] == "purpose"
    assert (
        assert_envelope(api.post("/v1/files", data={"purpose": "fine-tune"}, headers=headers), 400)["param"] == "file"
    )
    assert_nothing_left(env)


def test_nul_characters_anywhere_are_a_400_not_a_500(api: TestClient) -> None:
    """Found by bench.fuzz: PostgreSQL text cannot hold NUL, so such values used to raise in the database."""
    _, headers = new_tenant(api)
    for path in (
        "/v1/fine_tuning/jobs?after=a%00b",
        "/v1/files?after=%00",
        "/v1/files/file-%00",
        "/v1/fine_tuning/jobs/ftjob-%00/events",
    ):
        error = assert_envelope(api.get(path, headers=headers), 400)
        assert error["code"] == "invalid_value" and "NUL" in error["message"], path
    assert_envelope(api.get("/admin/v1/audit?action=%00", headers=admin_headers(api)), 400)
    assert_envelope(api.post("/admin/v1/tenants", json={"name": "a\u0000b"}, headers=admin_headers(api)), 400)
