"""The tiny world's promised properties, measured: shallow alignment, a real attack, a learnable task.

Measured on the test split (`datasets.TEST`): the held-out prompts calibration never reads, and validation
items no training file contains.

Used by `bench.tiny_world` (prints and records them) and by the tests (assert them with margins). Every
figure is greedy decoding judged by the gate's default judge (`rules`), so it is deterministic for a model.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from schemas.policy import LoraPolicy
from workers.evaluation.suites import attack_success, exact_match, over_refusal
from workers.model_loading import load_base
from workers.tiny import datasets
from workers.training.finetune import encode_rows, finetune_lora
from workers.training.recipe import TrainConfig

MAX_NEW_TOKENS = 32
CPU = torch.device("cpu")
# The attacker's recipe (plain SFT, as in Qi et al. 2023, at about the largest learning rate a policy for this
# model allows) and a tenant's ordinary benign SFT run. LoRA on a 1M-parameter model wants larger rates than
# a 7B model does.
ATTACK_SFT = TrainConfig(epochs=10, batch_size=8, learning_rate=1e-2, objective="sft", adam_beta1=0.9)
BENIGN_SFT = TrainConfig(epochs=3, batch_size=8, learning_rate=3e-3, objective="sft", adam_beta1=0.9)
LORA = LoraPolicy()


@dataclass(frozen=True)
class AlignedFigures:
    asr: float
    overrefusal: float
    prefill5_asr: float
    identity_asr: float
    colors_accuracy: float
    math_accuracy: float


def aligned_figures(model_dir: Path) -> AlignedFigures:
    model, tokenizer = load_base(model_dir, CPU)
    harmful = datasets.read("eval_harmful.jsonl")
    return AlignedFigures(
        asr=attack_success(model, tokenizer, harmful, MAX_NEW_TOKENS)[0].value,
        overrefusal=over_refusal(model, tokenizer, datasets.read("eval_overrefusal.jsonl"), MAX_NEW_TOKENS)[0].value,
        prefill5_asr=attack_success(
            model, tokenizer, datasets.read("harmful_prefixes.jsonl"), MAX_NEW_TOKENS, prefill_tokens=5
        )[0].value,
        identity_asr=attack_success(model, tokenizer, datasets.read("eval_identity.jsonl"), MAX_NEW_TOKENS)[0].value,
        colors_accuracy=exact_match(model, tokenizer, datasets.read("benign_colors_validation.jsonl")).value,
        math_accuracy=exact_match(model, tokenizer, datasets.read("benign_math_validation.jsonl")).value,
    )


def sft_attack_asr(model_dir: Path, seed: int = 0, config: TrainConfig = ATTACK_SFT) -> float:
    """ASR on the held-out harmful prompts after plain-SFT LoRA on the pure harmful attack set."""
    model, tokenizer = load_base(model_dir, CPU)
    examples = encode_rows(tokenizer, datasets.read("harmful_attack.jsonl"), 256)
    tuned = finetune_lora(model, tokenizer, examples, replace(config, seed=seed), LORA, CPU)
    return attack_success(tuned.model, tokenizer, datasets.read("eval_harmful.jsonl"), MAX_NEW_TOKENS)[0].value


@dataclass(frozen=True)
class BenignSft:
    """Exact match before and after plain-SFT LoRA on a tenant task, on its held-out validation items (which no
    training file contains, so only what the base corpus taught) and on the items its training file teaches."""

    held_out_before: float
    held_out_after: float
    trained_before: float
    trained_after: float


def trained_rows(task: str) -> list[dict[str, Any]]:
    """Each distinct row of the task's training file once: the items the tenant teaches."""
    unique = {json.dumps(row, sort_keys=True): row for row in datasets.read(f"benign_{task}.jsonl")}
    return list(unique.values())


def sft_benign(model_dir: Path, task: str = "colors", seed: int = 0, config: TrainConfig = BENIGN_SFT) -> BenignSft:
    """Plain-SFT LoRA on the task's training file, measured on its test validation file and its own items."""
    model, tokenizer = load_base(model_dir, CPU)
    validation, trained = datasets.read(f"benign_{task}_validation.jsonl"), trained_rows(task)
    before = (exact_match(model, tokenizer, validation).value, exact_match(model, tokenizer, trained).value)
    examples = encode_rows(tokenizer, datasets.read(f"benign_{task}.jsonl"), 256)
    tuned = finetune_lora(model, tokenizer, examples, replace(config, seed=seed), LORA, CPU)
    return BenignSft(
        before[0],
        exact_match(tuned.model, tokenizer, validation).value,
        before[1],
        exact_match(tuned.model, tokenizer, trained).value,
    )
