"""The training-overhead benchmark's quick mode runs end to end and reports every figure (no timing thresholds:
the figures depend on the machine and its load)."""

import json
import math
from pathlib import Path

import pytest

from bench import train_overhead

HEADLINE = ("step_throughput_ratio", "peak_memory_ratio", "reference_pass_seconds", "vs_trl_tokens_per_s_ratio")
PER_VARIANT = ("tokens_per_s", "peak_memory_mib", "timed_seconds", "timed_tokens", "params", "trainable_params",
               "wall_seconds")


def positive_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def report(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "train_overhead.json"
    train_overhead.run_benchmark(models=("tiny",), timed=2, warmup=1, out=out)
    return json.loads(out.read_text())


def test_headline_figures_are_positive_numbers(report: dict) -> None:
    assert report["headline_model"] == "tiny"
    for key in HEADLINE:
        assert positive_finite(report[key]), key


def test_every_variant_has_its_raw_figures(report: dict) -> None:
    section = report["models"]["tiny"]
    assert set(section["variants"]) == set(train_overhead.VARIANTS)
    for name, run in section["variants"].items():
        for key in PER_VARIANT:
            assert positive_finite(run[key]), (name, key)
        assert run["timed_steps"] >= 1
    guarded = section["variants"]["guarded"]
    assert positive_finite(guarded["reference_seconds"])
    assert section["reference_pass_seconds"] == guarded["reference_seconds"]
    assert section["step_throughput_ratio"] == pytest.approx(
        guarded["tokens_per_s"] / section["variants"]["sft"]["tokens_per_s"])
