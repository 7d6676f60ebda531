"""`guardrail-ft serve`: the served app's garbage-collector settings, and several workers each on a socket of its
own (SO_REUSEPORT), restarted by the supervisor when one dies, with the port answering throughout."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from service.api.serving import GC_GEN0_THRESHOLD
from tests.stack import ROOT, free_port, spawn, stop_process_group, wait_for, wait_until_up


def test_served_app_freezes_what_startup_built(env: dict[str, str]) -> None:
    script = (
        "import gc, json; from service.api.serving import create_served_app; create_served_app(); "
        "print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    frozen, threshold = json.loads(out.stdout)
    assert frozen > 50_000  # the app, its schemas and SQLAlchemy's mappers
    assert threshold == GC_GEN0_THRESHOLD


def _listening_inodes(proc: psutil.Process, port: int) -> set[int]:
    """The inodes of the listening TCP sockets on `port` that `proc` holds open."""
    inodes = set()
    for fd in proc.net_connections("tcp"):
        if fd.status == psutil.CONN_LISTEN and fd.laddr.port == port:
            link = os.readlink(f"/proc/{proc.pid}/fd/{fd.fd}")
            inodes.add(int(link.removeprefix("socket:[").removesuffix("]")))
    return inodes


def _workers(supervisor: subprocess.Popen[bytes], port: int) -> dict[int, set[int]]:
    """Worker pid -> the listening sockets it serves (children without one are multiprocessing helpers)."""
    found = {}
    for child in psutil.Process(supervisor.pid).children():
        try:
            if inodes := _listening_inodes(child, port):
                found[child.pid] = inodes
        except psutil.NoSuchProcess:
            continue
    return found


def test_each_worker_serves_its_own_socket_and_a_dead_one_is_replaced(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    proc = spawn(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2", "--quiet"], env, log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, proc, log, 90)
        workers = wait_for(lambda: (w := _workers(proc, port)) and len(w) == 2 and w, 60, "two workers listening")
        sockets = list(workers.values())
        assert all(len(s) == 1 for s in sockets) and sockets[0] != sockets[1]
        assert _listening_inodes(psutil.Process(proc.pid), port) == sockets[0] | sockets[1]

        victim = next(iter(workers))
        os.kill(victim, signal.SIGKILL)
        # Fresh connections keep being answered: those hashed to the dead worker's socket wait for its successor.
        for _ in range(20):
            assert httpx.get(f"{base}/healthz", timeout=60).status_code == 200
        replaced = wait_for(
            lambda: (w := _workers(proc, port)) and len(w) == 2 and victim not in w and w,
            60,
            "the dead worker replaced",
        )
        assert sorted(map(sorted, replaced.values())) == sorted(map(sorted, sockets))
    finally:
        stop_process_group(proc)
