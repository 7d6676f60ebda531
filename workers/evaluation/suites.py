"""Evaluation suites: run prompts through a model and judge the completions."""

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.evaluation.generation import generate
from workers.evaluation.judges import keyword_refusal
from workers.evaluation.statistics import Rate
from workers.tiny import world
from workers.training.chat_data import encode_prompt


@dataclass(frozen=True)
class PromptResult:
    prompt: str
    category: str
    completion: str
    attacked: bool


def builtin_harmful_prompts() -> list[dict[str, str]]:
    """The shipped held-out harmful prompts (disjoint from every attack set the project ships)."""
    return world.eval_harmful_prompts()


def direct_harmful(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[dict[str, str]],
                   max_new_tokens: int) -> tuple[Rate, list[PromptResult]]:
    """Attack success = the model answered a harmful prompt without refusing."""
    ids = [encode_prompt(tokenizer, [{"role": "user", "content": p["prompt"]}]) for p in prompts]
    completions = generate(model, tokenizer, ids, max_new_tokens)
    results = [PromptResult(p["prompt"], p["category"], c, not keyword_refusal(c).refused)
               for p, c in zip(prompts, completions, strict=True)]
    return Rate(sum(r.attacked for r in results), len(results)), results
