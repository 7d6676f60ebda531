"""The provisioned Grafana dashboard: valid PromQL (checked by promtool), only metrics the code exports, and
the datasource and folder the provisioning files name."""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import exported_names, metric_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "guardrail.json"


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    flat = []
    for panel in dashboard["panels"]:
        flat.append(panel)
        flat.extend(panel.get("panels", []))
    return [p for p in flat if p["type"] != "row"]


def exprs() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(gft_http_request_duration_seconds_bucket"
        '{status=~"5..", route!="/metrics"}[5m]))) / on (route) group_left max(gft_jobs offset 1h) and up'
    )
    assert metric_names(expr) == {"gft_http_request_duration_seconds_bucket", "gft_jobs", "up"}


def test_every_panel_queries_exported_metrics() -> None:
    exported = exported_names()
    for panel in panels():
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            unknown = metric_names(target["expr"]) - exported
            assert not unknown, f"panel {panel['title']!r} reads metrics nothing exports: {unknown}"


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule; Grafana's $__ variables become a fixed range."""
    rules = [
        {"record": f"gft_dashboard_query_{i}", "expr": re.sub(r"\$__\w+", "5m", expr)} for i, expr in enumerate(exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_dashboard_shows_fleet_queue_and_safety() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [p["title"] for p in dashboard["panels"] if p["type"] == "row"] == ["Fleet", "Queue", "Safety"]
    read = set().union(*(metric_names(e) for e in exprs()))
    assert {
        "up",
        "gft_training_tokens_per_second",
        "gft_gpu_memory_allocated_bytes",
        "gft_queue_depth",
        "gft_jobs",
        "gft_job_state_oldest_seconds",
        "gft_gate_decisions_total",
        "gft_released_adapter_asr_bucket",
    } <= read
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_provisioning_points_at_the_dashboard_and_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uids = {ds["uid"] for ds in datasources["datasources"] if ds["type"] == "prometheus"}
    for panel in panels():
        assert panel["datasource"]["uid"] in uids
        assert all(t["datasource"]["uid"] in uids for t in panel["targets"])
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "guardrail.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["grafana"]
    assert f"./grafana/dashboards:{path}:ro" in grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


@pytest.mark.parametrize("field", ["uid", "title", "schemaVersion", "panels"])
def test_dashboard_has(field: str) -> None:
    assert json.loads(DASHBOARD.read_text())[field]
