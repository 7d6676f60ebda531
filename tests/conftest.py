"""Session fixtures start real services: PostgreSQL, a Redis-protocol broker, the tiny model."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import get_settings
from service.state.migrate import upgrade
from tests.services import fresh_database, postgres_server, redis_broker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gft")


@pytest.fixture(scope="session")
def pg_admin_uri(workdir: Path) -> Iterator[str]:
    with postgres_server(workdir) as uri:
        yield uri


@pytest.fixture()
def database_url(pg_admin_uri: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database per test."""
    with fresh_database(pg_admin_uri) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The bundled tiny aligned chat model, built once and cached under var/models."""
    from workers.tiny.build import MODEL_ID, build

    return build(ROOT / "var" / "models" / MODEL_ID, log=False)


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, broker_url: str) -> dict[str, str]:
    """Environment for one test's settings (and for any subprocess it starts)."""
    values = {
        "GFT_DATABASE_URL": database_url,
        "GFT_BROKER_URL": broker_url,
        "GFT_DATA_DIR": str(tmp_path / "var"),
        "GFT_ADMIN_KEY": "test-admin-key",
        "GFT_TORCH_THREADS": "2",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()
