"""Prometheus' scrape configs, alert rules and the rules' unit tests, checked by Debian's promtool; and the
alerts read only metrics the code exports, from targets the deploy files define."""

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import exported_names, metric_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"


def promtool_run(promtool: str, *args: str, cwd: Path = PROMETHEUS) -> str:
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_scrape_config_is_valid(promtool: str, config: str) -> None:
    out = promtool_run(promtool, "check", "config", config)
    assert "SUCCESS" in out and "alerts.yml" in out  # the config loads the alert rules too


def test_alert_rules_are_valid(promtool: str) -> None:
    out = promtool_run(promtool, "check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


def test_alert_unit_tests_pass(promtool: str) -> None:
    assert "SUCCESS" in promtool_run(promtool, "test", "rules", "alerts_test.yml")


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")}
    assert {rule["alert"] for rule in alert_rules()} == firing


def test_the_issue_asks_for_these_alerts() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {"GftQueueStuck", "GftJobsFailing", "GftGateBlockRateSpike", "GftWorkerDown"} <= names


def test_alerts_read_only_exported_metrics() -> None:
    exported = exported_names()
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} reads metrics nothing exports: {unknown}"


def test_compose_targets_match_the_compose_fleet() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]] for job in config["scrape_configs"]
    }
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert targets["gft-api"] == ["api:8000"] and "8000:8000" in compose["services"]["api"]["ports"]
    worker_port = compose["x-env"]["GFT_WORKER_METRICS_PORT"]
    assert targets["gft-worker"] == [f"worker:{worker_port}"]  # concurrency 1: one pool process, one port
    assert "--concurrency" in compose["services"]["worker"]["command"]
    assert compose["services"]["worker"]["command"][-1] == "1"
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in mounts


def test_k8s_targets_are_the_headless_services() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus-k8s.yml").read_text())
    services = {
        doc["metadata"]["name"]: doc
        for path in (DEPLOY / "k8s").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "Service"
    }
    for job in config["scrape_configs"]:
        for sd in job["dns_sd_configs"]:
            for name in sd["names"]:
                service = services[name]
                assert service["spec"]["clusterIP"] == "None"
                assert sd["port"] in [p["port"] for p in service["spec"]["ports"]]
