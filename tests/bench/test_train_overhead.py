"""The training-overhead benchmark's quick mode runs end to end and reports every figure (no timing thresholds:
the figures depend on the machine and its load)."""

import json
import math
from pathlib import Path

import pytest

from bench import train_overhead

HEADLINE = (
    "step_throughput_ratio",
    "peak_memory_ratio",
    "reference_pass_seconds",
    "vs_trl_tokens_per_s_ratio",
    "end_to_end_time_ratio",
)
JOB_ROWS = 16
PER_VARIANT = (
    "tokens_per_s",
    "peak_memory_mib",
    "timed_seconds",
    "timed_tokens",
    "params",
    "trainable_params",
    "wall_seconds",
)


def positive_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def report(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "train_overhead.json"
    train_overhead.run_benchmark(models=("tiny",), timed=2, warmup=1, out=out, job_rows=JOB_ROWS, repeats=1)
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
        guarded["tokens_per_s"] / section["variants"]["sft"]["tokens_per_s"]
    )


def test_end_to_end_ratio_is_the_median_pair_ratio(report: dict) -> None:
    section = report["models"]["tiny"]
    assert report["end_to_end_time_ratio_model"] == "tiny"
    assert report["end_to_end_time_ratio"] == section["end_to_end_time_ratio"]
    (pair,) = section["end_to_end"]["pairs"]
    for run in pair.values():
        assert positive_finite(run["seconds_per_tenant_token"])
        assert run["wall_seconds"] >= run["reference_seconds"] + run["train_seconds"]
    assert section["end_to_end_time_ratio"] == pytest.approx(
        pair["guarded"]["wall_seconds"] / pair["sft"]["wall_seconds"]
    )


def test_whole_guarded_job_includes_reference_pass_and_augmentation(report: dict) -> None:
    """The guarded job runs the tiny model's calibrated default (constrained loss, recovery examples from its pool
    with their own reference log-probs); the SFT job trains the tenant rows alone, with no reference pass."""
    policy = train_overhead.job_policy(train_overhead.MODELS["tiny"]).training
    pair = report["models"]["tiny"]["end_to_end"]["pairs"][0]
    sft, guarded = pair["sft"], pair["guarded"]
    epochs, rows = policy.default_epochs, JOB_ROWS
    assert (sft["objective"], sft["augmentation"], sft["pool_examples"]) == ("sft", None, 0)
    assert (sft["train_rows"], sft["reference_rows"], sft["recovery_supervised_tokens"]) == (epochs * rows, 0, 0)
    assert sft["reference_seconds"] == 0
    assert guarded["objective"] == "constrained" and guarded["pool"] == policy.augmentation.pool
    assert guarded["augmentation"]["ratio"] == policy.augmentation.ratio
    assert guarded["epochs"] == epochs and guarded["tenant_supervised_tokens"] == sft["tenant_supervised_tokens"]
    assert guarded["pool_examples"] > 0 and guarded["recovery_supervised_tokens"] > 0
    recovery_rows = guarded["train_rows"] - epochs * rows
    assert recovery_rows > 0
    assert positive_finite(guarded["reference_seconds"])
    own_references = recovery_rows if policy.augmentation.loss == "constrained" else 0
    assert guarded["reference_rows"] == rows + own_references  # the tenant pre-pass, then each drawn example's
