"""Safety recovery augmentation (Qi et al. 2024, section 4): teach the model to refuse even after it has
started a harmful answer.

From a pool of (harmful prompt, harmful answer, refusal) triplets, each drawn example is, with probability
p, prompt -> refusal; otherwise prompt + the first k tokens of the harmful answer -> refusal, with
k ~ Uniform{1..min(C, len(answer))}. Only refusal tokens are supervised: the harmful prefix is context,
never a target. Sampling is a pure function of a seeded RNG, so a resumed run draws the same examples.
"""

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from workers.training.chat_data import EncodedChat, encode_chat

POOL_DIR = Path(__file__).resolve().parent / "pools"
TINY_POOL = Path(__file__).resolve().parents[1] / "tiny" / "data" / "safety_pool.jsonl"
BUILTIN_POOLS = {"general": POOL_DIR / "general.jsonl", "tiny": TINY_POOL}


@dataclass(frozen=True)
class Triplet:
    prompt: str
    harmful: str
    refusal: str


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


def load_pool(spec: str) -> list[Triplet]:
    """Read a pool: one JSON object per line with non-empty string fields prompt, harmful, refusal."""
    path = pool_path(spec)
    triplets = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                triplets.append(Triplet(*(_text(record, key) for key in ("prompt", "harmful", "refusal"))))
            except (ValueError, TypeError) as exc:
                raise PoolError(f"{path}, line {number}: {exc}") from exc
    if not triplets:
        raise PoolError(f"{path} holds no triplets")
    return triplets


def _text(record: dict, key: str) -> str:
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
    """Token ids of a triplet's parts, tokenised once: the prompt up to the assistant header, the harmful
    answer, and the refusal through the template's end-of-turn marker."""

    prompt_ids: list[int]
    harmful_ids: list[int]
    refusal_ids: list[int]


def encode_triplet(tokenizer: PreTrainedTokenizerBase, triplet: Triplet, max_len: int) -> EncodedTriplet:
    chat = encode_chat(tokenizer, [{"role": "user", "content": triplet.prompt},
                                   {"role": "assistant", "content": triplet.refusal}], max_len)
    first = chat.supervised.index(True)
    harmful = list(tokenizer(triplet.harmful, add_special_tokens=False)["input_ids"])
    return EncodedTriplet(chat.input_ids[:first], harmful, chat.input_ids[first:])


def recovery_example(triplet: EncodedTriplet, k: int) -> EncodedChat:
    """prompt + harmful[:k] as context, the refusal supervised (positions counted from its first token)."""
    context = triplet.prompt_ids + triplet.harmful_ids[:k]
    n = len(triplet.refusal_ids)
    return EncodedChat(context + triplet.refusal_ids, [False] * len(context) + [True] * n,
                       [0] * len(context) + list(range(1, n + 1)), meta={"recovery": True, "k": k})


@dataclass(frozen=True)
class AugmentationConfig:
    ratio: float = 0.25
    p_plain: float = 0.5
    max_prefix: int = 100
    loss: str = "cross_entropy"  # or "constrained"
    weight: float | None = None  # None: one token mean with the tenant's rows; else weight x their own mean


def draw(rng: random.Random, pool: Sequence[EncodedTriplet], n_tenant: int, config: AugmentationConfig
         ) -> list[EncodedChat]:
    """Recovery examples to add to a batch of n_tenant rows: ratio * n_tenant of them, rounded stochastically
    so the long-run mix matches the ratio at any batch size."""
    expected = config.ratio * n_tenant
    count = int(expected) + (rng.random() < expected - int(expected))
    out = []
    for _ in range(count):
        triplet = rng.choice(pool)
        out.append(recovery_example(triplet, prefix_length(rng, len(triplet.harmful_ids), config.p_plain,
                                                           config.max_prefix)))
    return out
