import math

from workers.evaluation.statistics import Rate, wilson_interval


def test_wilson_known_values() -> None:
    # 0/10: upper bound z^2/(n+z^2) = 3.8416/13.8416 = 0.27754
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and math.isclose(high, 0.27754, abs_tol=1e-4)
    # 10% of 330 prompts: about +-3 points (method notes)
    low, high = wilson_interval(33, 330)
    assert 0.025 < 0.1 - low < 0.04 and 0.025 < high - 0.1 < 0.04


def test_all_successes_and_empty() -> None:
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and math.isclose(low, 20 / (20 + 1.96**2), abs_tol=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert Rate(3, 4).value == 0.75 and Rate(0, 0).value == 0.0


def test_libra_balance_rewards_balance() -> None:
    from workers.evaluation.statistics import libra_balance

    assert libra_balance(1.0, 1.0) == 1.0
    assert abs(libra_balance(0.0, 0.0)) < 1e-12
    assert libra_balance(0.8, 0.8) > libra_balance(1.0, 0.6)
    assert abs(libra_balance(0.5, 1.0) - (1 - (0.125 ** 0.5))) < 1e-12
