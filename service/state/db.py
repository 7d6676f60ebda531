"""Engines and sessions, created on demand (never at import time) and cached per URL."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from pydantic_core import from_json
from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# A PostgreSQL pool keeps up to POOL_SIZE connections open and opens up to MAX_OVERFLOW more under bursts. An API
# process holds one connection per request in flight, so the pool is sized for the requests a process serves at
# once (its thread pool has 40 threads): a pool smaller than that closes and reopens connections under load, and
# a new connection costs a PostgreSQL backend process.
POOL_SIZE = 20
MAX_OVERFLOW = 20
# A connection idle for longer than this is pinged before use (one round trip) and replaced if the server dropped
# it (a restart, an idle timeout); a busy connection is not, which saves a round trip on every request. A server
# that goes away under load fails the statements in flight; SQLAlchemy then discards the whole pool.
PING_AFTER_IDLE_S = 1.0


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, json_deserializer=loads_json)
    _ping_idle_connections(engine)
    return engine


def loads_json(data: bytes) -> Any:
    """How a PostgreSQL JSON column is read: pydantic-core's parser, faster than json.loads on the small documents
    a job row holds, of which a page of jobs parses dozens (docs/benchmarks.md, bench.api), or json.loads for a
    document it refuses (a lone surrogate escape, very deep nesting), so what is read never changes."""
    try:
        return from_json(data)
    except ValueError:
        return json.loads(data)


def _ping_idle_connections(engine: Engine) -> None:
    """pool_pre_ping, but only for connections idle longer than PING_AFTER_IDLE_S (see there)."""

    @event.listens_for(engine, "checkin")
    def _note_idle_since(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection dropped while idle: {type(exc).__name__}") from exc


@lru_cache(maxsize=8)
def sessionmaker_for(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = sessionmaker_for(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@lru_cache(maxsize=8)
def _read_engine(url: str) -> Engine:
    """The main pool's connections in autocommit mode (a client-side switch, no round trip)."""
    return engine_for(url).execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def read_scope(url: str) -> Iterator[Session]:
    """A session for reads that need no transaction around them: each statement runs on its own snapshot, with
    no BEGIN and COMMIT round trips (two of a hot read's four). Nothing may be written through it."""
    with Session(bind=_read_engine(url)) as session:
        yield session


@lru_cache(maxsize=8)
def _statement_engine(url: str) -> Engine:
    """Autocommit connections whose commits do not wait for the WAL flush (PostgreSQL), for statement_scope."""
    if url.startswith("sqlite"):
        return _read_engine(url)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=8,
        isolation_level="AUTOCOMMIT",
        connect_args={"options": "-c synchronous_commit=off"},
    )


@contextmanager
def statement_scope(url: str) -> Iterator[Session]:
    """A session whose every statement is its own transaction, committed without BEGIN and COMMIT round trips and
    without waiting for PostgreSQL to flush it to disk (synchronous_commit off): the flush is most of a durable
    commit's cost on a busy disk (docs/benchmarks.md, bench.queue).

    Only for one-statement writes that a database crash may undo without harm: a step's claim, a heartbeat. The
    write is visible to every other transaction at once, like any commit; only its durability waits. Any later
    durable commit flushes it too (the WAL is written in order), so a claim is on disk once the step records
    anything; a database crash before that also fails the step's own writes, and the job is as if the worker had
    died before claiming: the reconciler re-dispatches it."""
    with Session(bind=_statement_engine(url)) as session:
        yield session


def fetch_page(
    session: Session, query: Select[Any], seq_column: Any, before_seq: int | None, limit: int
) -> tuple[list[Any], bool]:
    """Newest-first cursor page: rows with seq below the cursor, plus whether more remain."""
    if before_seq is not None:
        query = query.where(seq_column < before_seq)
    rows = list(session.scalars(query.order_by(seq_column.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
