"""The judge a gate policy names. The configured judges (a local classifier, an HTTP rubric endpoint) are built
here from the policy's bounded fields; the policy never names code to load. The learned judges import torch, so
they are imported only when named."""

import os

from schemas.policy import JudgePolicy
from workers.evaluation.judges import JUDGES, KeywordCoherenceJudge
from workers.evaluation.judges.base import RefusalJudge

LEARNED_JUDGES = ("embedding", "hybrid")


def build_learned(name: str) -> RefusalJudge:
    """A learned judge by name: `embedding` (completion only) or `hybrid` (rules first, then a prompt-aware
    classifier for the outcomes the rules cannot settle)."""
    if name == "embedding":
        from workers.evaluation.judges.embedding import EmbeddingJudge

        return EmbeddingJudge()
    if name == "hybrid":
        from workers.evaluation.judges.hybrid import HybridJudge

        return HybridJudge()
    raise ValueError(f"unknown learned judge {name!r}; known: {', '.join(LEARNED_JUDGES)}")


def build_judge(policy: JudgePolicy) -> RefusalJudge:
    if policy.name == "classifier":
        from workers.evaluation.judges.classifier import ClassifierJudge

        return ClassifierJudge(policy.classifier_path or "")
    if policy.name == "llm_rubric":
        from workers.evaluation.judges.rubric import RubricJudge

        key = os.environ.get(policy.api_key_env) if policy.api_key_env else None
        return RubricJudge(policy.endpoint or "", policy.model or "", api_key=key, timeout_s=policy.timeout_s)
    if policy.name in LEARNED_JUDGES:
        return build_learned(policy.name)
    if policy.name == "keyword_coherence":
        return KeywordCoherenceJudge()
    return JUDGES[policy.name]
