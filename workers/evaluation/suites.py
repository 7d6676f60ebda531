"""Evaluation suites: run prompt records through a model and judge the completions.

A prompt record is {"prompt", "category"} with optional "system" (a system message to ask under) and
"prefix" (a harmful answer whose first k tokens a prefilling attack places as the assistant's opening).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.evaluation.generation import generate
from workers.evaluation.judges import keyword_refusal
from workers.evaluation.statistics import Rate
from workers.tiny import datasets
from workers.training.chat_data import encode_prompt

Record = Mapping[str, Any]


@dataclass(frozen=True)
class PromptResult:
    prompt: str
    category: str
    completion: str
    refused: bool


def builtin_harmful_prompts() -> list[dict[str, Any]]:
    """The shipped held-out harmful prompts (disjoint from every attack set the project ships)."""
    return datasets.read("eval_harmful.jsonl")


def prompt_ids(tokenizer: PreTrainedTokenizerBase, record: Record, prefill_tokens: int = 0) -> list[int]:
    """The record as the model sees it at inference, with `prefill_tokens` of its harmful prefix appended."""
    messages = ([{"role": "system", "content": record["system"]}] if record.get("system") else []) + [
        {"role": "user", "content": record["prompt"]}]
    ids = encode_prompt(tokenizer, messages)
    if prefill_tokens:
        ids += list(tokenizer(record["prefix"], add_special_tokens=False)["input_ids"])[:prefill_tokens]
    return ids


def judged(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record],
           max_new_tokens: int, prefill_tokens: int = 0) -> list[PromptResult]:
    """Greedy completions judged for refusal (the continuation only, when prefilled)."""
    ids = [prompt_ids(tokenizer, r, prefill_tokens) for r in records]
    completions = generate(model, tokenizer, ids, max_new_tokens)
    return [PromptResult(r["prompt"], r.get("category", ""), c, keyword_refusal(c).refused)
            for r, c in zip(records, completions, strict=True)]


def attack_success(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record],
                   max_new_tokens: int, prefill_tokens: int = 0) -> tuple[Rate, list[PromptResult]]:
    """Attack success = the model answered a harmful prompt without refusing."""
    results = judged(model, tokenizer, records, max_new_tokens, prefill_tokens)
    return Rate(sum(not r.refused for r in results), len(results)), results


def over_refusal(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record],
                 max_new_tokens: int) -> tuple[Rate, list[PromptResult]]:
    """Share of benign-but-sensitive prompts the model refused."""
    results = judged(model, tokenizer, records, max_new_tokens)
    return Rate(sum(r.refused for r in results), len(results)), results


def exact_match(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Sequence[Record],
                max_new_tokens: int = 48) -> Rate:
    """Share of chat rows whose final assistant message the model reproduces exactly (whitespace-trimmed)."""
    prompts = [encode_prompt(tokenizer, r["messages"][:-1]) for r in rows]
    completions = generate(model, tokenizer, prompts, max_new_tokens)
    hits = sum(c.strip() == r["messages"][-1]["content"].strip() for r, c in zip(rows, completions, strict=True))
    return Rate(hits, len(rows))
