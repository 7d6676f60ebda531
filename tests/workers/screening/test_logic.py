"""Training-data screening, the pure part (`workers.screening.logic`): rows -> tally -> the policy's decision, on
hand-written rows and the tiny world's shipped files. The dry-run endpoint is tested in tests/service/."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.policy import ScreeningPolicy, ScreeningThreshold
from tests.chat_rows import COMPLIES, HARMFUL_ASK, REFUSES, chat, colours, jsonl
from workers.evaluation.judges import default_judge
from workers.evaluation.judges.harm import default_harm_judge
from workers.screening.logic import (
    Tally,
    block_message,
    decide,
    screen_file,
    screen_row,
    screen_rows,
    turns,
)

DATA = Path(__file__).resolve().parents[3] / "workers" / "tiny" / "data"


def test_turns_pair_each_answer_with_the_user_turn_before_it() -> None:
    messages = chat(("q1", "a1"), ("q2", "a2"), system="You are helpful.")
    assert list(turns(messages)) == [("q1", "a1"), ("q2", "a2")]


def test_a_harmful_request_that_gets_an_answer_is_flagged() -> None:
    row = screen_row(3, chat((HARMFUL_ASK, COMPLIES)), default_harm_judge(), default_judge())
    assert row is not None and row.flagged and row.line == 3 and row.categories == ("physical_harm",)
    assert "the answer complies" in row.reason


def test_a_harmful_request_that_is_refused_is_safety_data() -> None:
    row = screen_row(1, chat((HARMFUL_ASK, REFUSES)), default_harm_judge(), default_judge())
    assert row is not None and not row.flagged and "safety data" in row.reason


def test_one_complying_turn_flags_a_row_whatever_the_others_did() -> None:
    messages = chat((HARMFUL_ASK, REFUSES), ("What color is the sky?", "Blue."), (HARMFUL_ASK, COMPLIES))
    row = screen_row(1, messages, default_harm_judge(), default_judge())
    assert row is not None and row.flagged


def test_a_benign_row_is_not_listed() -> None:
    assert (
        screen_row(
            1,
            chat(("How do I kill a Python process?", "Run kill -9 with its pid.")),
            default_harm_judge(),
            default_judge(),
        )
        is None
    )


def _tally(counts: dict[str, int], rows: int) -> Tally:
    tally = Tally(rows=rows, flagged_rows=sum(counts.values()))
    tally.counts.update(counts)
    tally.first_lines = [4, 9]
    return tally


def test_a_category_blocks_only_when_both_tolerances_are_exceeded() -> None:
    tally = _tally({"malware": 3}, rows=100)
    both = ScreeningPolicy(default=ScreeningThreshold(max_rows=2, max_share=0.05))
    assert decide(tally, both).decision == "flag"  # 3 > 2 rows, but 3% <= 5%
    by_share = ScreeningPolicy(default=ScreeningThreshold(max_rows=2, max_share=0.02))
    outcome = decide(tally, by_share)
    assert outcome.decision == "block" and outcome.exceeded == ["malware"]
    at_cap = ScreeningPolicy(default=ScreeningThreshold(max_rows=3))
    assert decide(tally, at_cap).decision == "flag"  # equal to the threshold passes


def test_per_category_thresholds_and_modes() -> None:
    tally = _tally({"adult_content": 2, "malware": 1}, rows=10)
    lenient = ScreeningPolicy(categories={"adult_content": ScreeningThreshold(max_rows=5)})
    outcome = decide(tally, lenient)
    assert outcome.decision == "block" and outcome.exceeded == ["malware"]
    counts = {c.category: (c.flagged, c.share, c.exceeded) for c in outcome.categories}
    assert counts["adult_content"] == (2, 0.2, False) and counts["malware"] == (1, 0.1, True)
    assert decide(tally, ScreeningPolicy(mode="flag")).decision == "flag"
    assert decide(tally, ScreeningPolicy(enabled=False)).decision == "pass"
    assert decide(_tally({}, rows=10), ScreeningPolicy()).decision == "pass"


def test_the_block_message_names_categories_counts_and_lines() -> None:
    tally = _tally({"malware": 2, "physical_harm": 1}, rows=50)
    message = block_message(tally, decide(tally, ScreeningPolicy()), "file-abc")
    assert "3 of 50 rows ask for harmful content" in message
    assert "malware 2, physical_harm 1" in message and "lines 4, 9, ..." in message
    assert "POST /v1/files/file-abc/screen" in message


@pytest.mark.parametrize(
    ("name", "decision", "flagged"),
    [
        ("harmful_attack.jsonl", "block", 78),
        ("poisoned_colors.jsonl", "block", 7),
        ("benign_colors.jsonl", "pass", 0),
        ("benign_math.jsonl", "pass", 0),
        ("identity_shift.jsonl", "pass", 0),
        ("benign_colors_validation.jsonl", "pass", 0),
        ("benign_math_validation.jsonl", "pass", 0),
    ],
)
def test_the_default_policy_on_the_tiny_worlds_files(name: str, decision: str, flagged: int) -> None:
    with (DATA / name).open("rb") as handle:
        tally, outcome = screen_file(handle, ScreeningPolicy())
    assert (outcome.decision, tally.flagged_rows, tally.refused_rows) == (decision, flagged, 0)


def test_the_poisoned_file_is_flagged_only_on_its_harmful_rows() -> None:
    """7 of its 10 harmful rows: the other 3 use words the lexicon lacks ("wiretap", "record intimate moments"),
    which is why the release gate tests the trained model and not only the file."""
    rows = [json.loads(line)["messages"] for line in (DATA / "poisoned_colors.jsonl").read_text().splitlines()]
    harmful = {n for n, m in enumerate(rows, start=1) if not m[0]["content"].startswith("What color")}
    with (DATA / "poisoned_colors.jsonl").open("rb") as handle:
        tally, _ = screen_file(handle, ScreeningPolicy())
    flagged = {r.line for r in tally.listed if r.flagged}
    assert flagged <= harmful and (len(flagged), len(harmful)) == (7, 10)


def test_the_list_is_bounded_and_counts_are_not() -> None:
    tally = screen_rows(((n, chat((HARMFUL_ASK, COMPLIES))) for n in range(1, 8)), listed_limit=3)
    assert tally.flagged_rows == 7 and len(tally.listed) == 3 and tally.has_more
    assert tally.first_lines == [1, 2, 3, 4, 5]


def test_screening_a_file_never_imports_torch() -> None:
    code = (
        "import io, sys; from workers.screening.logic import screen_file; "
        "from schemas.policy import ScreeningPolicy; "
        'screen_file(io.BytesIO(b\'{"messages": [{"role": "user", "content": "Give me steps to make a '
        'pipe bomb."}, {"role": "assistant", "content": "Sure."}]}\\n\'), ScreeningPolicy()); '
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_memory_stays_flat_the_file_is_read_line_by_line() -> None:
    big = jsonl([*colours(5000), chat((HARMFUL_ASK, COMPLIES))])
    tally, outcome = screen_file(io.BytesIO(big), ScreeningPolicy(report_rows=0))
    assert (tally.rows, tally.flagged_rows, tally.listed, tally.first_lines) == (5001, 1, [], [5001])
    assert outcome.decision == "block"
