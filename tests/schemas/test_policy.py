"""Policy: bounded fields, and per-base-model calibration that replaces training fields for that model only."""

import pytest
from pydantic import ValidationError

from schemas.policy import AugmentationPolicy, BaseModelPolicy, BetaSchedule, Policy


def test_base_model_calibration_applies_to_that_model_only() -> None:
    policy = Policy(base_models={"big": BaseModelPolicy(base_learning_rate=2e-5,
                                                        beta_schedule=BetaSchedule(first=[1.0], rest=0.2),
                                                        augmentation=AugmentationPolicy(ratio=0.1))})
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
