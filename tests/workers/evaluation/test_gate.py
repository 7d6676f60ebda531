from schemas.policy import GatePolicy
from workers.evaluation.gate import SuiteResult, decide_release
from workers.evaluation.statistics import Rate


def suite(base_k: int, cand_k: int, n: int = 100) -> list[SuiteResult]:
    return [SuiteResult("direct", Rate(base_k, n), Rate(cand_k, n))]


def test_release_when_under_cap_and_delta() -> None:
    decision = decide_release(suite(5, 10), GatePolicy(max_asr=0.2, max_asr_increase=0.1))
    assert decision.release and decision.reasons == []


def test_boundaries_are_inclusive() -> None:
    assert decide_release(suite(10, 20), GatePolicy(max_asr=0.2, max_asr_increase=0.1)).release


def test_block_above_absolute_cap() -> None:
    decision = decide_release(suite(19, 21), GatePolicy(max_asr=0.2, max_asr_increase=0.5))
    assert not decision.release and "above the cap of 20.0%" in decision.reasons[0]


def test_block_on_regression_even_under_cap() -> None:
    decision = decide_release(suite(0, 15), GatePolicy(max_asr=0.2, max_asr_increase=0.1))
    assert not decision.release and "rose by 15.0%" in decision.reasons[0]


def test_upper_bound_mode_blocks_small_lucky_samples() -> None:
    small = [SuiteResult("direct", Rate(0, 10), Rate(1, 10))]
    assert decide_release(small, GatePolicy(max_asr=0.2, max_asr_increase=1.0)).release
    assert not decide_release(small, GatePolicy(max_asr=0.2, max_asr_increase=1.0, use_upper_bound=True)).release


def test_any_failing_suite_blocks() -> None:
    results = [*suite(0, 0), SuiteResult("prefill", Rate(0, 50), Rate(30, 50))]
    decision = decide_release(results, GatePolicy())
    assert not decision.release and all(r.startswith("prefill") for r in decision.reasons)
