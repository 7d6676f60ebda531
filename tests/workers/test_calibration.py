"""`calibrate`: the sweep runs real training on the tiny model and recommends a valid policy entry."""

import json
from dataclasses import replace
from pathlib import Path

from schemas.policy import BaseModelPolicy, Policy
from workers.calibration import Candidate, capped, main, over_refusal_warning, recommend, tiny_canary
from workers.tiny import datasets


def test_recommend_takes_the_best_balance_and_keeps_the_first_on_ties() -> None:
    a = Candidate("paper", 0.0, None, asr=0.5, utility=0.9, balance=0.6, seeds=1)
    b = Candidate("firm", 0.25, None, asr=0.1, utility=0.8, balance=0.8, seeds=1)
    c = Candidate("strong", 0.5, 1.0, asr=0.1, utility=0.8, balance=0.8, seeds=1)
    assert recommend([a, b, c]) is b


def test_with_caps_swept_the_largest_cap_that_holds_wins() -> None:
    """The cap is a promise to tenants: the strongest training the defence was shown to hold against."""
    low = Candidate("strong", 0.5, 3.0, asr=0.02, utility=1.0, balance=0.98, seeds=1, lr_multiplier=1.0)
    mid = Candidate("strong", 0.5, 3.0, asr=0.06, utility=0.9, balance=0.9, seeds=1, lr_multiplier=2.0)
    mid_sharp = Candidate("sharp", 0.5, 3.0, asr=0.05, utility=1.0, balance=0.95, seeds=1, lr_multiplier=2.0)
    high = Candidate("strong", 0.5, 3.0, asr=0.2, utility=1.0, balance=0.8, seeds=1, lr_multiplier=4.0)
    assert recommend([low, mid, mid_sharp, high], hold_below=0.07) is mid_sharp
    assert recommend([low, mid, mid_sharp, high], hold_below=0.03) is low
    assert recommend([mid, high], hold_below=0.01) is mid  # none holds: the best balance


def test_a_capped_policy_keeps_the_strongest_jobs_shape_and_moves_its_rate() -> None:
    tiny = Policy().for_model("gft-tiny-chat")
    base = tiny.model_copy(
        update={"training": tiny.training.model_copy(update={"max_lr_multiplier": 4.0, "max_update_budget": 8.0})}
    )
    assert base.training.strongest_settings() == (1, 1, 4.0)
    for multiplier in (1.0, 2.0, 3.0):
        training = capped(base, multiplier).training
        assert training.strongest_settings() == (1, 1, multiplier)
        assert training.budget_cap == 8.0 * multiplier / 4.0


def _slice(name: str, n: int, folder: Path) -> str:
    """A small canary, so the test exercises the whole sweep in seconds (the real one uses the full sets)."""
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in datasets.read(name)[:n]))
    return str(path)


def test_calibration_sweep_writes_a_policy_entry(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibration.json"
    canary = [
        "--attack",
        _slice("harmful_attack.jsonl", 16, tmp_path),
        "--harmful-prompts",
        _slice("dev_harmful.jsonl", 24, tmp_path),
        "--benign",
        _slice("benign_colors.jsonl", 16, tmp_path),
        "--benign-validation",
        _slice("dev_colors_validation.jsonl", 8, tmp_path),
        "--overrefusal-prompts",
        _slice("dev_overrefusal.jsonl", 8, tmp_path),
    ]
    code = main(
        [
            "--base",
            str(tiny_model),
            "--model-id",
            "gft-tiny-chat",
            "--seeds",
            "1",
            "--schedules",
            "firm",
            "--ratios",
            "0.25",
            "--weights",
            "1",
            "--out",
            str(out),
            *canary,
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    (candidate,) = report["candidates"]
    assert 0.0 <= candidate["asr"] <= 1.0 and 0.0 <= candidate["utility"] <= 1.0
    assert 0.0 <= candidate["over_refusal"] <= 1.0 and 0.0 <= report["base_over_refusal"] <= 1.0
    assert "over_refusal_warning" in report
    entry = BaseModelPolicy.model_validate(report["base_model_policy"])
    assert entry.beta_schedule is not None and entry.beta_schedule.first == [2.0] * 5
    assert entry.augmentation is not None and entry.augmentation.ratio == 0.25 and entry.augmentation.weight == 1.0
    assert entry.calibrated_with is not None and "--schedules firm" in entry.calibrated_with
    assert "judge rules" in entry.calibrated_with and report["judge"] == "rules"


def test_an_over_refusing_recommendation_is_called_out_against_the_gates_allowance() -> None:
    best = Candidate("strong", 0.5, 3.0, asr=0.02, utility=1.0, balance=0.98, seeds=1, over_refusal=0.3)
    warning = over_refusal_warning(best, 0.0625, 0.15)
    assert warning is not None and "30.0% against the base model's 6.2% (+23.8%)" in warning
    assert "max_over_refusal_increase 15.0%" in warning
    assert over_refusal_warning(replace(best, over_refusal=0.2125), 0.0625, 0.15) is None  # exactly at the allowance


def test_the_canary_reads_the_dev_split_only() -> None:
    """Calibration tunes the defaults: it must never read what benchmarks and the gate report (the test split)."""
    canary = tiny_canary()
    test_prompts = {
        r["prompt"]
        for name in ("eval_harmful.jsonl", "eval_identity.jsonl", "harmful_prefixes.jsonl")
        for r in datasets.read(name)
    }
    assert canary.harmful_prompts and not {r["prompt"] for r in canary.harmful_prompts} & test_prompts
    test_rows = {json.dumps(r, sort_keys=True) for r in datasets.read("benign_colors_validation.jsonl")}
    dev_rows = {json.dumps(r, sort_keys=True) for r in canary.benign_validation}
    assert dev_rows and not dev_rows & test_rows
    test_refusals = {r["prompt"] for r in datasets.read("eval_overrefusal.jsonl")}
    assert canary.overrefusal_prompts and not {r["prompt"] for r in canary.overrefusal_prompts} & test_refusals


def test_unknown_schedule_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    assert (
        main(["--base", str(tiny_model), "--model-id", "x", "--schedules", "nope", "--out", str(tmp_path / "x.json")])
        == 2
    )
