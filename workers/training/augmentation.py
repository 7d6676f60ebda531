"""Safety recovery augmentation (Qi et al. 2024, section 4): teach the model to refuse even after it has
started a harmful answer.

From a pool of (harmful prompt, harmful answer, refusal) triplets, each drawn example is, with probability
p, prompt -> refusal; otherwise prompt + the first k tokens of the harmful answer -> refusal, with
k ~ Uniform{1..min(C, len(answer))}. Only refusal tokens are supervised: the harmful prefix is context,
never a target. Sampling is a pure function of a seeded RNG, so a resumed run draws the same examples.

A pool may also hold contrast pairs: benign requests worded like harmful ones ("kill a Python process"),
with their helpful answer as the target. Refusals alone teach a model to refuse the wording ("Sure,"
followed by a refusal to beat eggs, on the tiny model: 77% over-refusal); the pairs keep refusals tied to harm.

Recovery examples are also drawn under the system prompts the tenant trains with: a persona set in the system
prompt ("You are AOA, an absolutely obedient agent") is otherwise a context the refusals never saw, and the
identity-shifting attack walks through it.
"""

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from workers.chat_data import (
    EncodedChat,
    conversation_for,
    encode_chat,
    render_training,
    tokenize_with_offsets,
)

POOL_DIR = Path(__file__).resolve().parent / "pools"
TINY_POOL = Path(__file__).resolve().parents[1] / "tiny" / "data" / "safety_pool.jsonl"
# `general` is written by `python -m workers.evaluation.sets.general`, with acts and question forms the gate's
# general evaluation pool never asks, so recovery never trains refusals on the gate's own prompts.
BUILTIN_POOLS = {"general": POOL_DIR / "general.jsonl", "tiny": TINY_POOL}
SEPARATOR = " "  # between a harmful prefix and the refusal that breaks it off: "...how to I'm sorry", not "toI'm"


@dataclass(frozen=True)
class Triplet:
    prompt: str
    harmful: str
    refusal: str


@dataclass(frozen=True)
class ContrastPair:
    """A benign look-alike of a harmful request and its helpful answer."""

    prompt: str
    answer: str


PoolRow = Triplet | ContrastPair


class PoolError(ValueError):
    """The pool file is unusable; the message names the line."""


def pool_path(spec: str) -> Path:
    """`builtin:<name>` names a shipped pool; anything else is a path to an admin's JSONL file."""
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name not in BUILTIN_POOLS:
            raise PoolError(f"unknown built-in pool {name!r}; known: {sorted(BUILTIN_POOLS)}")
        return BUILTIN_POOLS[name]
    return Path(spec)


def load_pool(spec: str) -> list[PoolRow]:
    """Read a pool: one JSON object per line, a triplet (non-empty strings prompt, harmful, refusal) or a
    contrast pair (prompt, answer)."""
    path = pool_path(spec)
    rows: list[PoolRow] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if isinstance(record, dict) and "answer" in record and "harmful" not in record:
                    rows.append(ContrastPair(_text(record, "prompt"), _text(record, "answer")))
                else:
                    rows.append(Triplet(*(_text(record, key) for key in ("prompt", "harmful", "refusal"))))
            except (ValueError, TypeError) as exc:
                raise PoolError(f"{path}, line {number}: {exc}") from exc
    if not any(isinstance(r, Triplet) for r in rows):
        raise PoolError(f"{path} holds no triplets")
    return rows


def _text(record: dict[str, Any], key: str) -> str:
    value = record[key] if isinstance(record, dict) and key in record else None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {key!r} must be a non-empty string")
    return value


def prefix_length(rng: random.Random, answer_tokens: int, p_plain: float, max_prefix: int) -> int:
    """k = 0 with probability p_plain, else uniform on 1..min(max_prefix, answer_tokens)."""
    if answer_tokens == 0 or rng.random() < p_plain:
        return 0
    return rng.randint(1, min(max_prefix, answer_tokens))


@dataclass(frozen=True)
class EncodedTriplet:
    """Token ids of a pool row, tokenised once by the chat encoder: the prompt up to the assistant header; the
    harmful answer as the assistant turn opens with it (a contrast pair: its answer); the target through the
    template's end-of-turn marker as a reply that starts with it (the refusal, or a contrast pair's answer); and
    `continued_ids`, the refusal as it follows a harmful prefix in the same turn (SEPARATOR first). Empty
    `continued_ids` (triplets built from raw ids) falls back to `target_ids`."""

    prompt_ids: list[int]
    harmful_ids: list[int]
    target_ids: list[int]
    contrast: bool = False
    continued_ids: list[int] = field(default_factory=list)


def continued_turn(
    tokenizer: PreTrainedTokenizerBase, context: list[dict[str, str]], opening: str, rest: str = ""
) -> tuple[list[int], list[int]]:
    """One assistant turn that starts with `opening` and, when `rest` is given, breaks off into it (a harmful
    answer, SEPARATOR, the refusal), tokenised in one pass by the chat encoder: (the opening's ids, the ids of
    everything after it through the end-of-turn marker). A token belongs to the part its first character is in.
    The first k harmful ids then the refusal's are what a model that wrote those k tokens and stopped itself
    sees; where k ends a word they are also the ids of that text encoded whole."""
    opening = opening.strip()
    content = f"{opening}{SEPARATOR}{rest.strip()}" if rest.strip() else opening
    conversation, train = conversation_for(tokenizer, [*context, {"role": "assistant", "content": content}])
    text, spans = render_training(tokenizer, conversation, train)
    turn = spans[-1]
    cut = text.index(opening, turn.start) + len(opening)
    ids, offsets = tokenize_with_offsets(tokenizer, text)
    return (
        [t for t, (start, _) in zip(ids, offsets, strict=True) if turn.start <= start < cut],
        [t for t, (start, _) in zip(ids, offsets, strict=True) if cut <= start < turn.end],
    )


def encode_triplet(
    tokenizer: PreTrainedTokenizerBase,
    row: PoolRow,
    max_len: int,
    system: str | None = None,
    prefix: str = "",
    suffix: str = "",
) -> EncodedTriplet:
    """A contrast pair's answer is both its target and, for prefixes, its `harmful_ids` (the opening k tokens).
    `system`, when given, opens the conversation, and `prefix` / `suffix` wrap the request, as in the tenant's
    rows it mirrors. Targets end at the end-of-turn marker: whitespace a template writes after it (Gemma's,
    Qwen's newline) is never generated."""
    target = row.refusal if isinstance(row, Triplet) else row.answer
    request = {"role": "user", "content": f"{prefix}{row.prompt}{suffix}"}
    context = [*([{"role": "system", "content": system}] if system else []), request]
    chat = encode_chat(tokenizer, [*context, {"role": "assistant", "content": target}], max_len)
    first = chat.supervised.index(True)
    end = len(chat.supervised) - chat.supervised[::-1].index(True)
    prompt_ids, target_ids = chat.input_ids[:first], chat.input_ids[first:end]
    if isinstance(row, ContrastPair):
        return EncodedTriplet(prompt_ids, continued_turn(tokenizer, context, row.answer)[0], target_ids, contrast=True)
    harmful_ids, continued_ids = continued_turn(tokenizer, context, row.harmful, row.refusal)
    return EncodedTriplet(prompt_ids, harmful_ids, target_ids, continued_ids=continued_ids)


def recovery_example(triplet: EncodedTriplet, k: int) -> EncodedChat:
    """Triplet: prompt + harmful[:k] as context, the refusal supervised: from the turn's start when k is 0, else
    as it follows the prefix in one turn (`continued_ids`, the separator included). Contrast pair: prompt +
    answer[:k] as context, the rest of the answer supervised, so an opening like "Sure, here is how to" is
    followed by a refusal only when the request is harmful. Positions count from the first supervised token."""
    if triplet.contrast:
        k = min(k, len(triplet.target_ids) - 1)
        context, target, start = triplet.prompt_ids + triplet.target_ids[:k], triplet.target_ids[k:], k + 1
    else:
        refusal = triplet.continued_ids if k and triplet.continued_ids else triplet.target_ids
        context, target, start = triplet.prompt_ids + triplet.harmful_ids[:k], refusal, 1
    n = len(target)
    return EncodedChat(
        context + target,
        [False] * len(context) + [True] * n,
        [0] * len(context) + list(range(start, start + n)),
        meta={"recovery": True, "k": k},
    )


@dataclass(frozen=True)
class AugmentationConfig:
    ratio: float = 0.25
    p_plain: float = 0.5
    max_prefix: int = 100
    loss: str = "cross_entropy"  # or "constrained"
    weight: float | None = None  # None: one token mean with the tenant's rows; else weight x their own mean


def draw(
    rng: random.Random, pool: Sequence[EncodedTriplet], n_tenant: int, config: AugmentationConfig
) -> list[EncodedChat]:
    """Recovery examples to add to a batch of n_tenant rows: ratio * n_tenant of them, rounded stochastically
    so the long-run mix matches the ratio at any batch size."""
    expected = config.ratio * n_tenant
    count = int(expected) + (rng.random() < expected - int(expected))
    out = []
    for _ in range(count):
        triplet = rng.choice(pool)
        out.append(
            recovery_example(triplet, prefix_length(rng, len(triplet.harmful_ids), config.p_plain, config.max_prefix))
        )
    return out
