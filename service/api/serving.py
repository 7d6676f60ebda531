"""Running the API under uvicorn: the served app's garbage-collector settings, and several worker processes that
share one port evenly.

Two things set a loaded API's tail latency on a small machine (bench.api, 2 cores, 32 connections):
- Python's cyclic garbage collector. A full collection walks every object the process holds (the app, its
  routes and pydantic schemas, SQLAlchemy's mappers: hundreds of thousands), tens of milliseconds each time, and
  the default thresholds run one every few hundred requests. Freezing what exists once the app is built moves
  those objects out of the collector's sight, and a larger first-generation threshold makes collections of what
  requests allocate rarer: a shorter p99 and less CPU per request (bench.api; figures in docs/benchmarks.md).
- How connections are spread over worker processes. uvicorn's workers share one listening socket, and the
  first worker to wake accepts every connection waiting (asyncio accepts in a batch), so a client that opens its
  connections together often lands them all on one worker while the other idles (bench.api saw it, at a large
  cost in throughput: docs/benchmarks.md). Here each worker listens on a socket of its own bound with
  SO_REUSEPORT, and the kernel spreads new connections over them by hash. On Kubernetes, run one worker per pod
  and let the Service spread connections instead.
"""

import gc
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process, logger

from service.api.app import create_app

# Allocations (minus deallocations) between first-generation collections; CPython's default is 700 (2,000 in
# 3.13). A list-jobs request allocates a few thousand container objects, most freed by reference counting.
GC_GEN0_THRESHOLD = 20_000
APP_FACTORY = "service.api.serving:create_served_app"


def create_served_app() -> FastAPI:
    """The app as a server process runs it: built, then everything it holds frozen out of the cyclic
    collector's reach (see the module docstring). Not for tests, which build many apps in one process."""
    app = create_app()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    return app


def reuse_port_socket(config: uvicorn.Config) -> socket.socket:
    """A listening socket on the config's host and port that other sockets may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.host, config.port))
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    return sock


class ReusePortMultiprocess(Multiprocess):
    """uvicorn's supervisor (health checks, restarts, signals), with worker i serving only socket i. A socket
    stays open in the supervisor while its worker restarts, so connections the kernel hashed to it wait in its
    queue instead of being refused."""

    def _start(self, index: int) -> Process:
        process = Process(self.config, [self.sockets[index]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._start(i) for i in range(len(self.sockets))]

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[index] = self._start(index)

    def restart_all(self) -> None:
        """SIGHUP: replace each worker in turn, the new one serving before the old one stops."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(index)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                logger.error(f"New child process [{new.pid}] was not ready in time; restart aborted.")
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def handle_ttin(self) -> None:
        logger.warning("SIGTTIN ignored: the number of workers is fixed (one socket each); restart to change it.")

    def handle_ttou(self) -> None:
        logger.warning("SIGTTOU ignored: the number of workers is fixed (one socket each); restart to change it.")


def serve(host: str, port: int, workers: int = 1, quiet: bool = False) -> None:
    """Run the API in this process (one worker) or under a supervisor of `workers` processes."""
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
    )
    if workers == 1:
        uvicorn.Server(config).run()
        return
    ReusePortMultiprocess(config, sockets=[reuse_port_socket(config) for _ in range(workers)]).run()
