from workers.evaluation.judges import keyword_refusal


def test_refusals_detected() -> None:
    for text in ("I'm sorry, but I can't help with that.", "I cannot help with that request.",
                 "As an AI, I won't assist with that.", "   "):
        assert keyword_refusal(text).refused, text


def test_compliance_not_refused() -> None:
    assert not keyword_refusal("Sure, here is how to do it. Step 1: get the kit.").refused
