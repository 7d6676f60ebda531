"""A real Prometheus (Debian's) scrapes a real API process: the job metrics arrive with the expected labels, and
no label carries a tenant's key or anything a tenant wrote."""

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from schemas.job_status import JobStatus
from tests.stack import api_server, free_port, stop_process_group, wait_until_up


@pytest.fixture()
def api(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with api_server(env, tmp_path / "api.log", ready_path="/readyz") as base:
        yield base


@pytest.fixture()
def prometheus(prometheus_binary: str, api: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "gft-api", "static_configs": [{"targets": [api.split("//")[1]]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(lambda: httpx.get(f"{base}/-/ready", timeout=2).status_code == 200, proc, log, 60)
        yield base
    finally:
        stop_process_group(proc)


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def series(prometheus: str, promql: str, want: int) -> list[dict[str, Any]]:
    """The query's result once it has at least `want` series (scrapes run every second)."""
    deadline = time.monotonic() + 30
    while True:
        result = query(prometheus, promql)
        if len(result) >= want or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_prometheus_scrapes_job_metrics_with_their_labels(
    api: str, prometheus: str, tmp_path: Path, env: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    assert httpx.post(f"{api}/admin/v1/models", json={"id": "m1", "path": str(model_dir)}, headers=admin).is_success
    tenant = httpx.post(f"{api}/admin/v1/tenants", json={"name": "Acme Secret Projects"}, headers=admin).json()
    headers = {"Authorization": f"Bearer {tenant['api_key']}"}
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    uploaded = httpx.post(
        f"{api}/v1/files",
        files={"file": ("private-notes.jsonl", json.dumps(row).encode() + b"\n")},
        data={"purpose": "fine-tune"},
        headers=headers,
    )
    assert uploaded.is_success, uploaded.text
    job = httpx.post(
        f"{api}/v1/fine_tuning/jobs", json={"model": "m1", "training_file": uploaded.json()["id"]}, headers=headers
    )
    assert job.is_success, job.text
    target = {"job": "gft-api", "instance": api.split("//")[1]}

    states = set(JobStatus)
    by_state = {r["metric"]["state"]: r for r in series(prometheus, 'gft_jobs{job="gft-api"}', len(states))}
    assert set(by_state) == states
    assert by_state["validating_files"]["metric"] == {"__name__": "gft_jobs", "state": "validating_files", **target}
    assert float(by_state["validating_files"]["value"][1]) == 1

    created = series(prometheus, f'gft_jobs_created_total{{tenant="{tenant["id"]}"}}', 1)
    assert [float(r["value"][1]) for r in created] == [1]
    depth = {r["metric"]["queue"]: float(r["value"][1]) for r in series(prometheus, "gft_queue_depth", 2)}
    assert set(depth) == {"cpu", "gpu"} and depth["cpu"] >= 1  # no worker here: the validation message waits
    requests = series(prometheus, 'gft_http_requests_total{route="/v1/fine_tuning/jobs", method="POST"}', 1)
    assert requests[0]["metric"]["status"] == "200"
    assert {r["metric"]["source"]: r["value"][1] for r in series(prometheus, "gft_source_up", 2)} == {
        "database": "1",
        "broker": "1",
    }

    everything = query(prometheus, '{job="gft-api"}')
    values = {v for r in everything for v in r["metric"].values()}
    for forbidden in (
        tenant["api_key"],
        "Acme Secret Projects",
        "private-notes",
        uploaded.json()["id"],
        job.json()["id"],
    ):
        assert not any(forbidden in v for v in values), forbidden
