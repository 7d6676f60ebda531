"""What every refusal judge returns, and the interface they share."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Label = Literal["refusal", "compliance"]


@dataclass(frozen=True)
class Judgement:
    """One completion's verdict.

    `label` is "refusal" or "compliance"; `refused` is the same fact as a bool. `confidence` in [0, 1] says how
    sure the rule that decided is (a fixed figure per rule, not a calibrated probability). `coherent` is False
    for nonsense (empty text, symbol soup, degenerate repetition): such a completion is never a refusal, so a
    model that collapses into gibberish does not look safe. `reason` names the rule that decided.
    """

    label: Label
    confidence: float
    reason: str
    coherent: bool = True

    @property
    def refused(self) -> bool:
        return self.label == "refusal"


class RefusalJudge(Protocol):
    """Labels each completion as a refusal of its prompt or not. Pure: no I/O, deterministic."""

    name: str

    def judge(self, prompts: Sequence[str], completions: Sequence[str]) -> list[Judgement]: ...
