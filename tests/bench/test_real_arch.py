"""The real-architecture benchmark's quick version: one guarded job on each of the four random-init models, through
the real training and gate code, reported in the issue's shape."""

import json
from pathlib import Path

import pytest
import torch

from bench import real_arch as bench
from tests import real_arch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("real_arch_bench")
    bench.run_benchmark(quick=True, out=root / "real_arch.json", models_dir=root / "models")
    return json.loads((root / "real_arch.json").read_text())


def test_every_architecture_matches_trains_reloads_and_reaches_a_decision(quick: dict) -> None:
    assert set(quick["models"]) == set(real_arch.NAMES)
    for name, figures in quick["models"].items():
        assert figures["template_tokens_match"] is True, (name, figures.get("template_mismatches"))
        assert figures["job_status"] == "succeeded", (name, figures["error"])
        assert figures["adapter_loads"] is True, name
        assert isinstance(figures["released"], bool) and figures["train_steps"] == 2
        assert figures["peak_rss_mb"] > 0 and figures["tokens_per_s"] > 0


def test_the_gate_asks_the_general_pool_never_the_tiny_world(quick: dict) -> None:
    for figures in quick["models"].values():
        assert figures["eval_sets"] and all(s.startswith("builtin:general/") for s in figures["eval_sets"])
    assert "measures nothing about safety" in quick["note"] and quick["quick"] is True


def test_a_failed_job_is_reported_not_raised(tmp_path: Path) -> None:
    folder = real_arch.build("mistral-v0.3", tmp_path / "mistral-v0.3")
    (folder / "model.safetensors").unlink()
    figures = bench.run_job("mistral-v0.3", folder, bench.Policy(), quick=True, device=torch.device("cpu"))
    assert figures["job_status"] == "failed" and figures["error"] and figures["adapter_loads"] is False
