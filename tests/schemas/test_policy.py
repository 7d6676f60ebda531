"""Policy: bounded fields, and per-base-model calibration that replaces training fields for that model only."""

import pytest
from pydantic import ValidationError

from schemas.policy import AugmentationPolicy, BaseModelPolicy, BetaSchedule, GatePolicy, Policy, TrainingPolicy


def test_base_model_calibration_applies_to_that_model_only() -> None:
    policy = Policy(
        base_models={
            "big": BaseModelPolicy(
                base_learning_rate=2e-5,
                beta_schedule=BetaSchedule(first=[1.0], rest=0.2),
                augmentation=AugmentationPolicy(ratio=0.1),
            )
        }
    )
    big = policy.for_model("big")
    assert big.training.base_learning_rate == 2e-5
    assert big.training.beta_schedule.first == [1.0] and big.training.augmentation.ratio == 0.1
    assert big.training.max_epochs == policy.training.max_epochs
    assert big.base_models == {}
    other = policy.for_model("other")
    assert other.training == policy.training


def test_the_default_policy_guards_with_augmentation_and_carries_the_tiny_calibration() -> None:
    policy = Policy()
    assert policy.training.objective == "constrained" and not policy.training.allow_sft
    assert policy.training.augmentation.enabled and policy.training.augmentation.pool == "builtin:general"
    tiny = policy.for_model("gft-tiny-chat").training
    assert tiny.augmentation.pool == "builtin:tiny"


@pytest.mark.parametrize("bad", [{"ratio": -1}, {"p_plain": 1.5}, {"loss": "mse"}, {"pool": ""}, {"extra": 1}])
def test_augmentation_fields_are_bounded(bad: dict) -> None:
    with pytest.raises(ValidationError):
        AugmentationPolicy(**bad)


def test_update_budget_is_steps_times_lr_relative_to_the_default_job_on_the_same_rows() -> None:
    training = TrainingPolicy(default_epochs=3, default_batch_size=8, max_steps=2000)
    # the default job on 100 rows: 3 x ceil(100 / 8) = 39 steps at multiplier 1
    assert training.optimizer_steps(3, 8, 100) == 39
    assert training.update_budget(3, 8, 1.0, 100) == 1.0
    # batch 1: 3 x 100 = 300 steps; 300 / 39 = 7.69x (the "about 8x" of issue 17)
    assert training.update_budget(3, 1, 1.0, 100) == pytest.approx(300 / 39)
    # 6 epochs of batch 4 at multiplier 2: 6 x 25 x 2 / 39
    assert training.update_budget(6, 4, 2.0, 100) == pytest.approx(300 / 39)
    # padding to 600 rows changes the default's steps alike: 1800 / 225 = 8, the large-file limit 3 x 8 / (3 x 1)
    assert training.update_budget(3, 1, 1.0, 600) == 8.0 == training.update_budget(3, 1, 1.0, None)
    # a 4-row file: the default job is one step an epoch, batch 1 four
    assert training.update_budget(3, 1, 1.0, 4) == 4.0
    # max_steps truncates the job and the default alike: 2000 x 2 / 2000
    assert training.update_budget(10, 1, 2.0, 10_000) == 2.0


def test_budget_cap_defaults_to_what_the_per_field_caps_allowed_at_the_default_batch() -> None:
    assert TrainingPolicy().budget_cap == pytest.approx(10 / 3 * 4)
    assert TrainingPolicy(max_update_budget=5).budget_cap == 5
    assert TrainingPolicy(max_epochs=1, default_epochs=5, max_lr_multiplier=1).budget_cap == 1.0  # default job fits
    with pytest.raises(ValidationError):
        TrainingPolicy(max_update_budget=0.5)
    with pytest.raises(ValidationError):
        TrainingPolicy(min_batch_size=16, default_batch_size=8)
    with pytest.raises(ValidationError):
        TrainingPolicy(max_batch_size=4, default_batch_size=8)


def test_strongest_settings_are_the_smallest_batch_at_the_max_multiplier_within_the_budget() -> None:
    tiny = Policy().for_model("gft-tiny-chat").training
    assert (tiny.budget_cap, tiny.max_lr_multiplier, tiny.min_batch_size, tiny.max_batch_size) == (2.0, 1.0, 1, 64)
    # epochs x multiplier allowed at batch 1: 2 x 5 x 1 / 8 = 1.25 -> at multiplier 1, 1 whole epoch
    assert tiny.strongest_settings() == (1, 1, 1.0)
    assert tiny.update_budget(1, 1, 1.0, None) == pytest.approx(1.6)
    assert tiny.optimizer_steps(1, 1, 100) == 100  # the 100-row attack against the default job's 5 x 13 = 65 steps
    assert tiny.update_budget(1, 1, 1.0, 100) == pytest.approx(100 / 65)
    # the shape at the cap the earlier build used (8, multiplier 4): 8 x 5 x 1 / 8 = 5 -> 1 epoch at 4
    earlier = tiny.model_copy(update={"max_update_budget": 8.0, "max_lr_multiplier": 4.0})
    assert earlier.strongest_settings() == (1, 1, 4.0) and earlier.update_budget(1, 1, 4.0, None) == 6.4
    # one epoch at the max multiplier is over a budget of 2 x 8 x 1 / 8 = 2: 1 epoch at 2
    assert TrainingPolicy(max_update_budget=2, default_epochs=8).strongest_settings() == (1, 1, 2.0)
    # min batch 4: 8 x 3 x 4 / 8 = 12 -> 3 epochs at 4
    assert TrainingPolicy(max_update_budget=8, min_batch_size=4).strongest_settings() == (3, 4, 4.0)
    # max_epochs binds before the budget
    assert TrainingPolicy(max_update_budget=100, max_epochs=2).strongest_settings() == (2, 1, 4.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"false_block_rate": 0},
        {"false_block_rate": 0.6},
        {"category_min_extra_answers": 1},
        {"target_detectable_regression": 0},
        {"detection_power": 1.0},
        {"category_max_asr_increase": 1.5},
    ],
)
def test_gate_statistics_fields_are_bounded(bad: dict) -> None:
    with pytest.raises(ValidationError):
        GatePolicy(**bad)


def test_a_stored_gate_policy_from_before_the_paired_rules_still_validates() -> None:
    # Stored policies carry every field of their day, among them the old share-based category rise (now the
    # category paired test's margin).
    old = {"max_asr": 0.2, "max_asr_increase": 0.1, "category_max_asr_increase": 0.34, "prefill_max_asr": 1.0}
    gate = GatePolicy.model_validate(old)
    assert gate.category_max_asr_increase == 0.34 and gate.false_block_rate == 0.05
    assert GatePolicy().max_asr_increase == 0.03 and GatePolicy().category_min_extra_answers == 5
