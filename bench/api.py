"""Tenant API throughput and latency against PostgreSQL, and upload validation speed and memory.

    python -m bench.api [--quick] [--workers 2] [--duration 15] [--concurrency 32]   # writes var/bench/api.json

- GET one job and list jobs (limit 20) with a tenant's key: `guardrail-ft serve --workers N` against PostgreSQL, loaded
  from a separate process by a keep-alive HTTP/1.1 load generator (raw asyncio streams on uvloop, so the client
  is not the bottleneck it would be with a full HTTP library). Reports requests per second, latency
  percentiles, and the CPU per request of the server processes and of the client (CPU per request moves less
  than throughput when other work shares the cores).
- Upload: a 10 MB and a 200 MB chat JSONL file streamed by another process to POST /v1/files; reports MB/s of
  the whole upload (receive, store, validate, record), per second of wall time and per second of the server's
  CPU, and the API process's peak RSS during it (sampled every 20 ms), plus the validator alone
  (service.datasets over the file) in MB/s of wall and of CPU time.

Targets (issue 6): >= 1,000 rps and p99 <= 50 ms on 2 cores; >= 50 MB/s upload validation; memory flat in file
size. Load generator and server share the machine's cores, as they would on a 2-core box.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "get_job_rps": 1000,
    "get_job_p99_ms": 50,
    "list_jobs_rps": 1000,
    "list_jobs_p99_ms": 50,
    "upload_mb_per_s": 50,
}


# The load generator (runs in its own process: `python -m bench.api --load ...`)


async def _connection(
    host: str, port: int, requests: list[bytes], stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            request = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(url: str, paths: list[str], key: str, concurrency: int, duration: float) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    requests = [(f"GET {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n").encode() for p in paths]
    latencies: list[float] = []
    errors: list[int] = []
    warm_up: list[float] = []
    warm_until = time.perf_counter() + min(2.0, duration / 5)
    await asyncio.gather(*[_connection(host, int(port), requests, warm_until, warm_up, []) for _ in range(concurrency)])
    started, cpu_started = time.perf_counter(), time.process_time()
    stop_at = started + duration
    await asyncio.gather(
        *[_connection(host, int(port), requests, stop_at, latencies, errors) for _ in range(concurrency)]
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "non_200": len(errors),
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "warm_up_requests": len(warm_up),
        "client_cpu_percent": round(100 * cpu / elapsed, 1),
        "client_cpu_ms_per_request": round(1000 * cpu / len(latencies), 3),
    }


def _run_loop(main: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_load(
    url: str, paths: list[str], key: str, concurrency: int, duration: float, server: subprocess.Popen[bytes]
) -> dict[str, Any]:
    """Run the load generator in a separate process; its JSON result, plus the server's CPU per request (its
    processes' CPU over the whole run, warm-up included, divided by every request sent)."""
    paths_args = [arg for p in paths for arg in ("--path", p)]
    pids = _server_pids(server)
    cpu_before = _cpu_seconds(pids)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.api",
            "--load",
            url,
            "--key",
            key,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            *paths_args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    result: dict[str, Any] = json.loads(out.stdout)
    served = result["requests"] + result["warm_up_requests"]
    result["server_cpu_ms_per_request"] = round(1000 * (_cpu_seconds(pids) - cpu_before) / served, 3)
    return result


def _upload(url: str, key: str, path: Path) -> None:
    """The uploading client (its own process): streams the file as multipart; prints the response."""
    import httpx

    with path.open("rb") as handle, httpx.Client(timeout=600) as client:
        client.get(f"{url}/healthz")  # connect first: time the upload, not the connection
        started = time.perf_counter()
        response = client.post(
            f"{url}/v1/files",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": (path.name, handle)},
            data={"purpose": "fine-tune"},
        )
        elapsed = time.perf_counter() - started
    print(json.dumps({"status": response.status_code, "body": response.json(), "seconds": elapsed}))


# The server side


def write_jsonl(path: Path, megabytes: int) -> int:
    """A chat JSONL file of about `megabytes` MB (rows of ~230 bytes); returns its size."""
    row = {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What colour is the sky on a clear day, and why?"},
            {"role": "assistant", "content": "Blue: air scatters short wavelengths more (Rayleigh)."},
        ]
    }
    line = (json.dumps(row) + "\n").encode()
    count = megabytes * 1_000_000 // len(line)
    with path.open("wb") as handle:
        for _ in range(count // 1000):
            handle.write(line * 1000)
        handle.write(line * (count % 1000))
    return path.stat().st_size


def _rss_mb(pids: list[int]) -> float:
    import psutil

    total = 0
    for pid in pids:
        try:
            total = max(total, psutil.Process(pid).memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _server_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    import psutil

    parent = psutil.Process(proc.pid)
    return [parent.pid] + [c.pid for c in parent.children(recursive=True)]


def measure_upload(url: str, key: str, path: Path, server: subprocess.Popen[bytes]) -> dict[str, Any]:
    pids = _server_pids(server)
    baseline = _rss_mb(pids)
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb(pids))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before = _cpu_seconds(pids)
    sampler.start()
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", "--upload", url, "--key", key, "--file", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    done.set()
    sampler.join()
    server_cpu = _cpu_seconds(pids) - cpu_before
    result = json.loads(out.stdout)
    elapsed = result["seconds"]
    assert result["status"] == 200, result
    size = path.stat().st_size
    return {
        "bytes": size,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(size / 1e6 / elapsed, 1),
        "server_cpu_mb_per_s": round(size / 1e6 / server_cpu, 1),
        "server_rss_before_mb": round(baseline, 1),
        "server_peak_rss_mb": round(peak, 1),
        "file_status": result["body"]["status"],
    }


def measure_validator(path: Path) -> dict[str, Any]:
    """MB/s of wall time, and of this process's CPU time (which other work on the machine moves less)."""
    from service.datasets import bounded_lines, check_chat_jsonl

    started, cpu_started = time.perf_counter(), time.process_time()
    with path.open("rb") as handle:
        stats = check_chat_jsonl(bounded_lines(handle), max_rows=10**9)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    size = path.stat().st_size / 1e6
    return {"rows": stats.rows, "mb_per_s": round(size / elapsed, 1), "cpu_mb_per_s": round(size / cpu, 1)}


def seed(database_url: str, n_jobs: int, model_dir: Path) -> tuple[str, str]:
    """A tenant with n_jobs jobs (created as the API would, not enqueued); returns (key, one job id)."""
    from schemas.jobs import JobCreate
    from schemas.policy import Policy
    from service.jobs import create_job
    from service.state.base_models import register_base_model
    from service.state.db import session_scope
    from service.state.files import add_file
    from service.state.models import FileRow
    from service.state.tenants import create_tenant

    with session_scope(database_url) as session:
        tenant, _, key = create_tenant(session=session, name="bench")
        register_base_model(session=session, model_id="m1", path=str(model_dir))
        add_file(
            session=session,
            row=FileRow(
                id="file-bench",
                tenant_id=tenant.id,
                filename="t.jsonl",
                purpose="fine-tune",
                bytes=1,
                status="processed",
                sha256="0" * 64,
                storage_key="files/x",
                rows=1,
            ),
        )
        ids = [
            create_job(
                session=session,
                tenant_id=tenant.id,
                policy=Policy(),
                request=JobCreate(model="m1", training_file="file-bench"),
            ).id
            for _ in range(n_jobs)
        ]
    return key, ids[len(ids) // 2]


def start_server(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    import httpx

    command = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--quiet",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text())
        time.sleep(0.2)
    time.sleep(0.5 * workers)  # every worker up
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run(*, quick: bool, workers: int, duration: float, concurrency: int, workdir: Path) -> dict[str, Any]:
    from service.state.migrate import upgrade
    from tests.services import fresh_database, postgres_server, redis_broker
    from tests.stack import free_port

    sizes = (2, 8) if quick else (10, 200)
    with postgres_server(workdir) as pg, fresh_database(pg) as database_url, redis_broker(workdir) as broker:
        upgrade(database_url)
        (workdir / "model").mkdir(exist_ok=True)
        (workdir / "model" / "config.json").write_text("{}")
        key, job_id = seed(database_url, 50 if quick else 500, workdir / "model")
        env = {
            "GFT_DATABASE_URL": database_url,
            "GFT_BROKER_URL": broker,
            "GFT_DATA_DIR": str(workdir / "var"),
            "GFT_ADMIN_KEY": "bench-admin-key",
        }
        port = free_port()
        load_before = os.getloadavg()[0]
        server = start_server(env, port, workers, workdir / "api.log")
        url = f"http://127.0.0.1:{port}"
        try:
            get_job = run_load(url, [f"/v1/fine_tuning/jobs/{job_id}"], key, concurrency, duration, server)
            list_jobs = run_load(url, ["/v1/fine_tuning/jobs?limit=20"], key, concurrency, duration, server)
            uploads = {}
            for megabytes in sizes:
                path = workdir / f"upload-{megabytes}mb.jsonl"
                write_jsonl(path, megabytes)
                uploads[f"{megabytes}mb"] = {
                    **measure_upload(url, key, path, server),
                    "validator": measure_validator(path),
                }
                path.unlink()
        finally:
            stop_server(server)
    small, large = (uploads[f"{m}mb"] for m in sizes)
    return {
        # Load average before the server starts (other work on the machine) and after the run (ours included).
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_before": round(load_before, 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
        },
        "server": {"uvicorn_workers": workers, "database": "postgresql"},
        "get_job_rps": get_job["rps"],
        "get_job_p99_ms": get_job["p99_ms"],
        "list_jobs_rps": list_jobs["rps"],
        "list_jobs_p99_ms": list_jobs["p99_ms"],
        "get_job_server_cpu_ms": get_job["server_cpu_ms_per_request"],
        "list_jobs_server_cpu_ms": list_jobs["server_cpu_ms_per_request"],
        "upload_mb_per_s": min(small["mb_per_s"], large["mb_per_s"]),
        "validation_mb_per_s": min(small["validator"]["mb_per_s"], large["validator"]["mb_per_s"]),
        "validation_cpu_mb_per_s": min(small["validator"]["cpu_mb_per_s"], large["validator"]["cpu_mb_per_s"]),
        "upload_server_cpu_mb_per_s": min(small["server_cpu_mb_per_s"], large["server_cpu_mb_per_s"]),
        "upload_peak_rss_mb": {f"{m}mb": uploads[f"{m}mb"]["server_peak_rss_mb"] for m in sizes},
        "detail": {"get_job": get_job, "list_jobs": list_jobs, "uploads": uploads},
        "targets": TARGETS,
        "quick": quick,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short load, 2 and 8 MB files (the tests use this)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("var/bench/api.json"))
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--upload", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--path", action="append", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(_run_loop(_load(args.load, args.path, args.key, args.concurrency, args.duration))))
        return
    if args.upload:
        _upload(args.upload, args.key, args.file)
        return
    duration = args.duration or (2.0 if args.quick else 15.0)
    with tempfile.TemporaryDirectory(prefix="gft-bench-api-") as tmp:
        result = run(
            quick=args.quick, workers=args.workers, duration=duration, concurrency=args.concurrency, workdir=Path(tmp)
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'measure':<28}{'value':>12}{'target':>12}")
    rows = [
        ("get_job_rps", result["get_job_rps"], ">= 1000"),
        ("get_job_p99_ms", result["get_job_p99_ms"], "<= 50"),
        ("list_jobs_rps", result["list_jobs_rps"], ">= 1000"),
        ("list_jobs_p99_ms", result["list_jobs_p99_ms"], "<= 50"),
        ("get_job_server_cpu_ms", result["get_job_server_cpu_ms"], ""),
        ("list_jobs_server_cpu_ms", result["list_jobs_server_cpu_ms"], ""),
        ("client_cpu_percent", result["detail"]["get_job"]["client_cpu_percent"], ""),
        ("upload_mb_per_s", result["upload_mb_per_s"], ">= 50"),
        ("validation_mb_per_s", result["validation_mb_per_s"], ">= 50"),
        ("upload_server_cpu_mb_per_s", result["upload_server_cpu_mb_per_s"], ""),
        ("validation_cpu_mb_per_s", result["validation_cpu_mb_per_s"], ""),
    ]
    rows += [(f"upload_peak_rss_mb {k}", v, "flat") for k, v in result["upload_peak_rss_mb"].items()]
    for name, value, target in rows:
        print(f"{name:<28}{value:>12}{target:>12}")
    print(f"machine: {result['machine']}; written to {args.out}")


if __name__ == "__main__":
    main()
