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
    assert abs(libra_balance(0.5, 1.0) - (1 - (0.125**0.5))) < 1e-12


def test_exact_mcnemar_hand_worked() -> None:
    from workers.evaluation.statistics import mcnemar_exact

    assert mcnemar_exact(8, 0) == 2**-8 == 0.00390625  # every discordant pair one way
    assert mcnemar_exact(5, 0) == 1 / 32
    assert mcnemar_exact(8, 3) == (165 + 55 + 11 + 1) / 2048  # P(X >= 8 | Bin(11, 1/2)) = 0.113
    assert mcnemar_exact(1, 1) == 0.75 and mcnemar_exact(0, 5) == 1.0  # P(X >= 0) = 1
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: no evidence


def test_binomial_tail_paths_agree() -> None:
    from workers.evaluation.statistics import binomial_tail

    exact = sum(math.comb(1200, i) for i in range(630, 1201)) / 2**1200
    log_space = binomial_tail(630, 1200, 0.5000000001)  # p != 1/2 and n > 1000: the lgamma path
    assert math.isclose(exact, log_space, rel_tol=1e-6)
    assert math.isclose(binomial_tail(2, 3, 0.2), 3 * 0.2**2 * 0.8 + 0.2**3)  # 0.104
    assert binomial_tail(0, 5, 0.3) == 1.0 and binomial_tail(6, 5, 0.3) == 0.0


def test_min_blocking_count() -> None:
    from workers.evaluation.statistics import min_blocking_count

    assert min_blocking_count(132, 0.05, 0.03) == 5  # 2^-5 = 0.031 < 0.05 <= 2^-4; 4/132 = 3.03% > 3% already
    assert min_blocking_count(330, 0.05, 0.03) == 10  # the margin binds: 9/330 = 2.7%, 10/330 = 3.03%
    assert min_blocking_count(100, 0.0625, 0.0) == 5  # 2^-4 = 0.0625 is not below 0.0625


def test_min_detectable_regression_hand_worked() -> None:
    from workers.evaluation.statistics import min_detectable_regression, prompts_needed

    # 5 prompts, base 0: a block needs all 5 one way (2^-5 < 0.05); power q^5 = 0.8 at q = 0.8^(1/5) = 0.9564.
    assert math.isclose(min_detectable_regression(5, 0.05, 0.8), 0.8**0.2, rel_tol=1e-9)
    assert min_detectable_regression(4, 0.05, 0.8) is None  # 2^-4 = 0.0625: 4 prompts can never block
    assert min_detectable_regression(44, 0.05, 0.8, base_asr=43 / 44) is None  # the base refuses 1: no room
    # the default direct suite (132 prompts, base 1.5%): about 5 points; fewer prompts detect less
    mdr = min_detectable_regression(132, 0.05, 0.8, 2 / 132, 0.03)
    assert mdr is not None and 0.049 < mdr < 0.052
    assert mdr < min_detectable_regression(66, 0.05, 0.8, 2 / 66, 0.03) < min_detectable_regression(44, 0.05, 0.8)
    assert prompts_needed(0.96, 0.05, 0.8) == 5
    assert prompts_needed(0.03, 0.05, 0.8, margin=0.03) is None  # a rise must exceed the margin to block
    needed = prompts_needed(0.04, 0.05, 0.8, 2 / 132, 0.03)
    assert needed is not None and min_detectable_regression(needed, 0.05, 0.8, 2 / 132, 0.03) <= 0.04
