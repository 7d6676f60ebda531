"""The PostgreSQL pool pings a connection only when it was idle long enough to have been dropped, and replaces
a dropped one without the caller seeing an error; JSON columns read back exactly as json.loads reads them."""

import json

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import service.state.db as db
from service.state.db import engine_for, loads_json, session_scope


def backend_pid(url: str) -> int:
    with session_scope(url) as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")))


def terminate(url: str, pid: int) -> None:
    """Drop one connection from the server's side, as a restart or an idle timeout would."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def count_pings(monkeypatch: pytest.MonkeyPatch, url: str) -> list[int]:
    dialect = engine_for(url).dialect
    pings: list[int] = []
    real = dialect.do_ping

    def do_ping(dbapi_connection: object) -> bool:
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", do_ping)
    return pings


def test_busy_connections_are_not_pinged(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = count_pings(monkeypatch, database_url)
    pids = {backend_pid(database_url) for _ in range(5)}
    assert len(pids) == 1 and pings == []  # one connection, reused at once: no round trip spent on pings


def test_a_connection_dropped_while_idle_is_replaced(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = count_pings(monkeypatch, database_url)
    first = backend_pid(database_url)
    terminate(database_url, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection counts as idle now
    second = backend_pid(database_url)
    assert second != first and pings == [1]


def test_without_the_ping_the_dropped_connection_fails(database_url: str) -> None:
    """The control: the same drop, within PING_AFTER_IDLE_S, reaches the caller as an error."""
    terminate(database_url, backend_pid(database_url))
    with pytest.raises(OperationalError):
        backend_pid(database_url)
    assert backend_pid(database_url)  # SQLAlchemy discarded the pool: the next one works


DOCUMENTS = [
    '{"n_epochs": "auto", "batch_size": 4, "lr": 1e-05, "big": 123456789012345678901234567890}',
    "[]",
    '{"text": "caf\\u00e9 \\ud83d\\ude00", "nested": {"a": [1, 2.5, null, true]}, "a": 1, "a": 2}',
    '"\\ud800 lone surrogate"',
    "[" * 300 + "]" * 300,
    "NaN",
    "-0.0",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_json_is_read_as_json_loads_reads_it(document: str) -> None:
    expected, got = json.loads(document), loads_json(document.encode())
    assert repr(got) == repr(expected)  # repr: NaN never equals itself, -0.0 equals 0.0


def test_json_columns_are_read_with_it(database_url: str) -> None:
    """PostgreSQL JSON values round-trip through the engine's reader (the lone surrogate takes the fallback)."""
    assert engine_for(database_url).dialect._json_deserializer is loads_json
    with session_scope(database_url) as session:
        session.execute(text("CREATE TEMP TABLE docs (doc json)"))
        session.execute(text("INSERT INTO docs VALUES (:a), (:b)"), {"a": DOCUMENTS[0], "b": DOCUMENTS[3]})
        rows = session.execute(text("SELECT doc FROM docs")).scalars().all()
    assert rows == [json.loads(DOCUMENTS[0]), json.loads(DOCUMENTS[3])]
