"""Where the gate's prompt sets come from: a job's gate resolves `builtin` for its model and refuses sets that
cannot measure it before loading anything; the gate never imports the tiny world, whose test sets it reads from
workers/evaluation/sets/data/tiny/ (still found by `workers.tiny.datasets.read`)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from schemas.policy import EvaluationSets, GatePolicy
from workers.evaluation.job_gate import policy_for_model, run_job_gate
from workers.evaluation.loaders import TINY_MODEL_ID, UnsuitableEvalSets
from workers.evaluation.sets import BUILTIN_FILES, TINY_DIR
from workers.tiny import datasets

ROOT = Path(__file__).resolve().parents[3]


def test_the_job_gate_resolves_builtin_for_its_model(tmp_path: Path) -> None:
    policy = GatePolicy(max_asr=0.1)
    real = policy_for_model(policy, "mistral-7b-instruct", tmp_path)
    assert real.sets == EvaluationSets(
        harmful="builtin:general", prefill="builtin:general", over_refusal="builtin:general"
    )
    assert real.max_asr == 0.1 and policy.sets == EvaluationSets()
    assert policy_for_model(policy, TINY_MODEL_ID).sets.harmful == "builtin:tiny"


def test_the_job_gate_refuses_tiny_sets_for_another_model_before_loading_it(tmp_path: Path) -> None:
    """The folders do not exist: the refusal comes first, not a load error."""
    policy = GatePolicy(sets=EvaluationSets(harmful="builtin:tiny"))
    with pytest.raises(UnsuitableEvalSets, match=r"gate\.sets\.harmful is 'builtin:tiny'"):
        run_job_gate(
            model_id="gemma-2-9b-it",
            base_path=tmp_path / "no-model",
            adapter_dir=tmp_path / "no-adapter",
            device=torch.device("cpu"),
            policy=policy,
            rows=[],
            source="none",
            cache_root=None,
            meta={},
        )


def test_the_gate_does_not_import_the_tiny_world() -> None:
    code = (
        "import sys, workers.evaluation.job_gate, workers.evaluation.sets.general; "
        "print(sorted(m for m in sys.modules if m.startswith('workers.tiny')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"OMP_NUM_THREADS": "1", "PATH": ""},
    )
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(datasets.GATE_SETS))
def test_the_tiny_test_sets_live_with_the_gates_sets(name: str) -> None:
    assert datasets.path(name) == TINY_DIR / name and datasets.path(name) in BUILTIN_FILES["tiny"].values()
    assert datasets.path(name).read_text(encoding="utf-8") == datasets.render(name), (
        f"run `python -m workers.tiny.datasets` to regenerate {name}"
    )
    assert not (datasets.DATA_DIR / name).exists()


def test_every_tiny_set_is_still_read_by_its_name() -> None:
    names = [*datasets.SETS, *datasets.GATE_SETS]
    assert all(datasets.read(name) for name in names)
    assert {"eval_harmful.jsonl", "harmful_prefixes.jsonl", "eval_overrefusal.jsonl", "dev_harmful.jsonl"} <= set(names)
    assert len(datasets.read("eval_harmful.jsonl")) == 88 and len(datasets.read("eval_overrefusal.jsonl")) == 32
