"""Refusal judges behind one interface (`RefusalJudge.judge(prompts, completions) -> list[Judgement]`).

- `rules` (the default everywhere: the release gate's policy default, the suites', screening's, every benchmark's
  and calibration's): sentence rules that weigh where a refusal stands, partial refusals, apologies, disclaimers and
  lectures, and a coherence check so nonsense never counts as a refusal. See docs/judges.md.
- `keyword`: the standard baseline, the GCG/AdvBench refusal substrings (`keyword_refusal`); `keyword_coherence`
  the same with nonsense counted as compliance. An opening phrase ("Sorry for the wait! Here is how ...") fools
  both, so neither is a default.
- `classifier`, `llm_rubric` (configured by the gate policy) and the learned judges `embedding` and `hybrid`
  (the rules, then a prompt-aware classifier for the outcomes they cannot settle; both import torch) are built
  by `workers.evaluation.judges.factory`.

The default has one source, the gate policy's (`schemas.policy.JudgePolicy().name`): `DEFAULT_JUDGE` is its name
and `default_judge()` the judge, for everything that judges without a policy (the suites, screening and trigger
mining, calibration, the benchmarks). It must be one of `JUDGES` (no model, no torch: the cpu queue screens with it).
"""

from schemas.policy import JudgePolicy
from workers.evaluation.judges.base import Judgement, Label, RefusalJudge
from workers.evaluation.judges.coherence import coherence_problem, is_coherent
from workers.evaluation.judges.keyword import (
    REFUSAL_SUBSTRINGS,
    KeywordCoherenceJudge,
    KeywordJudge,
    Verdict,
    judge_all,
    keyword_refusal,
)
from workers.evaluation.judges.rules import RuleJudge, judge_completion

JUDGES: dict[str, RefusalJudge] = {"keyword": KeywordJudge(), "rules": RuleJudge()}
DEFAULT_JUDGE: str = JudgePolicy().name


def default_judge() -> RefusalJudge:
    """The judge named `DEFAULT_JUDGE`."""
    return JUDGES[DEFAULT_JUDGE]


__all__ = [
    "DEFAULT_JUDGE",
    "JUDGES",
    "REFUSAL_SUBSTRINGS",
    "Judgement",
    "KeywordCoherenceJudge",
    "KeywordJudge",
    "Label",
    "RefusalJudge",
    "RuleJudge",
    "Verdict",
    "coherence_problem",
    "default_judge",
    "is_coherent",
    "judge_all",
    "judge_completion",
    "keyword_refusal",
]
