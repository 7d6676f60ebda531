"""Deploy tests use the real tools from Debian's prometheus package (`make prometheus-tools` installs it)."""

import shutil

import pytest


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: `make prometheus-tools` installs Debian's prometheus package")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _tool("prometheus")
