"""The Dockerfile's two images and the dependency split they rely on (no Docker engine runs here, so this checks
what can be checked without building)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ML_STACK = {"torch", "transformers", "tokenizers", "safetensors", "peft"}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_api_installs_without_the_ml_stack() -> None:
    assert not names(project()["dependencies"]) & ML_STACK
    extras = project()["optional-dependencies"]
    assert names(extras["worker"]) == ML_STACK
    assert "guardrail-ft[worker]" in extras["dev"]  # `pip install -e '.[dev]'` still gets everything


def test_dockerfile_builds_an_api_and_a_worker_image_from_one_wheel() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = {stage: image for image, stage in re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, re.M)}
    assert stages == {"build": "${PYTHON_IMAGE}", "api": "${PYTHON_IMAGE}", "worker": "${CUDA_IMAGE}"}
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-", dockerfile, re.M)
    api = dockerfile.split(" AS api")[1].split(" AS worker")[0]
    worker = dockerfile.split(" AS worker")[1]
    assert "pip install /wheels/*.whl" in api and "[worker]" not in api
    assert '[worker]"' in worker
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (ROOT / source).exists(), source
