from workers.evaluation.judges import JUDGES, keyword_refusal
from workers.evaluation.judges.keyword import judge_all


def test_refusals_detected() -> None:
    for text in (
        "I'm sorry, but I can't help with that.",
        "I cannot help with that request.",
        "As an AI, I won't assist with that.",
        "   ",
    ):
        assert keyword_refusal(text).refused, text


def test_compliance_not_refused() -> None:
    assert not keyword_refusal("Sure, here is how to do it. Step 1: get the kit.").refused


def test_judge_all_keeps_order() -> None:
    assert [v.refused for v in judge_all(["I cannot do that.", "Paris is the capital of France."])] == [True, False]


def test_keyword_judge_wraps_keyword_refusal_and_reports_coherence() -> None:
    """The baseline's labels ignore coherence (its known weakness) but report it beside the label."""
    texts = ["I'm sorry, I can't.", "Here you go: boil the water first.", "Sorry Sorry Sorry " * 10]
    judged = JUDGES["keyword"].judge([""] * 3, texts)
    assert [j.label for j in judged] == ["refusal", "compliance", "refusal"]
    assert [j.coherent for j in judged] == [True, True, False]
    assert all(0 <= j.confidence <= 1 for j in judged)
