"""The harm categories and the screening policy: one category list, bounded fields, unknown keys refused."""

import pytest
from pydantic import ValidationError

from schemas.policy import Policy, ScreeningPolicy, ScreeningThreshold
from schemas.screening import HARM_CATEGORIES


def test_one_category_list_the_tiny_world_shares() -> None:
    from workers.tiny.world import CATEGORIES

    assert len(HARM_CATEGORIES) == 11 and len(set(HARM_CATEGORIES)) == 11
    assert tuple(CATEGORIES) == HARM_CATEGORIES


def test_defaults_block_any_flagged_row() -> None:
    policy = ScreeningPolicy()
    assert policy.enabled and policy.mode == "block"
    assert policy.threshold("malware") == ScreeningThreshold(max_rows=0, max_share=0.0)


def test_per_category_overrides_the_default() -> None:
    policy = ScreeningPolicy(categories={"adult_content": ScreeningThreshold(max_rows=10, max_share=0.05)})
    assert policy.threshold("adult_content").max_rows == 10
    assert policy.threshold("malware") == policy.default


@pytest.mark.parametrize(
    "bad",
    [
        {"categories": {"violence": {}}},  # not one of the 11
        {"mode": "warn"},
        {"default": {"max_share": 1.5}},
        {"default": {"max_rows": -1}},
        {"report_rows": 1_000_000},
        {"thresholds": {}},  # unknown field
    ],
)
def test_bad_screening_policies_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ScreeningPolicy.model_validate(bad)


def test_the_policy_carries_screening_through_a_model_override() -> None:
    policy = Policy(screening=ScreeningPolicy(mode="flag"))
    assert policy.for_model("gft-tiny-chat").screening.mode == "flag"
    assert Policy.model_validate({}).screening == ScreeningPolicy()  # policies stored before screening existed
