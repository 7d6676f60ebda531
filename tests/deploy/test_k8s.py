"""The Kubernetes manifests: valid against Kubernetes' own schemas (kubernetes-validate, strict: unknown fields
fail), and consistent with the code: probes on routes the app has, settings the app reads, GPU workers."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.api.app import create_app
from service.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def named(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("version", ["1.28", kubernetes_validate.utils.latest_version()])
def test_manifests_validate_against_kubernetes_schemas(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)
    assert all("namespace" not in d["metadata"] for d in documents())  # namespace-agnostic


def test_api_probes_use_routes_the_app_has() -> None:
    paths = {getattr(route, "path", None) for route in create_app().routes}
    api = containers(named("Deployment", "gft-api"))[0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz" and "/readyz" in paths
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz" and "/healthz" in paths
    service = named("Service", "gft-api")
    assert (
        service["spec"]["selector"].items()
        <= named("Deployment", "gft-api")["spec"]["template"]["metadata"]["labels"].items()
    )


def test_gpu_worker_takes_one_gpu_and_runs_one_task_at_a_time() -> None:
    worker = containers(named("Deployment", "gft-worker-gpu"))[0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    command = worker["command"]
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--queues") + 1] == "gpu"
    cpu = containers(named("Deployment", "gft-worker-cpu"))[0]
    assert cpu["command"][cpu["command"].index("--queues") + 1] == "cpu"
    assert "nvidia.com/gpu" not in cpu["resources"].get("limits", {})


def test_beat_never_runs_twice() -> None:
    beat = named("Deployment", "gft-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert "beat" in containers(beat)[0]["command"]


def test_config_comes_from_the_configmap_and_secret_and_names_real_settings() -> None:
    fields = {f"GFT_{name.upper()}" for name in Settings.model_fields}
    config, secret = named("ConfigMap", "gft-config"), named("Secret", "gft-secrets")
    assert set(config["data"]) <= fields and set(secret["stringData"]) <= fields
    for doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            for container in containers(doc):
                refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
                assert refs == {"gft-config", "gft-secrets"}, doc["metadata"]["name"]


def test_placeholder_secret_cannot_run_in_production() -> None:
    config, secret = named("ConfigMap", "gft-config"), named("Secret", "gft-secrets")
    assert config["data"]["GFT_ENVIRONMENT"] == "production"
    with pytest.raises(ValueError, match="GFT_ADMIN_KEY"):
        Settings(environment="production", admin_key=secret["stringData"]["GFT_ADMIN_KEY"])


def test_images_match_the_dockerfile_targets() -> None:
    dockerfile = (K8S.parents[1] / "Dockerfile").read_text()
    assert " AS api" in dockerfile and " AS worker" in dockerfile
    for doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            image = containers(doc)[0]["image"]
            component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
            expected = "guardrail-ft-api" if component in ("api", "migrate") else "guardrail-ft-worker"
            assert image.split(":")[0] == expected, doc["metadata"]["name"]


def test_metrics_port_matches_the_worker_setting() -> None:
    port = int(named("ConfigMap", "gft-config")["data"]["GFT_WORKER_METRICS_PORT"])
    for name in ("gft-worker-gpu", "gft-worker-cpu"):
        worker = named("Deployment", name)
        assert [p["containerPort"] for p in containers(worker)[0]["ports"]] == [port]
        assert worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
