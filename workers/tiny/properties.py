"""The tiny world's promised properties, measured: shallow alignment, a real attack, a learnable task.

Used by `bench.tiny_world` (prints and records them) and by the tests (assert them with margins). Every
figure is greedy decoding judged by the keyword refusal judge, so it is deterministic for a model.
"""

from dataclasses import dataclass, replace
from pathlib import Path

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
        prefill5_asr=attack_success(model, tokenizer, datasets.read("harmful_prefixes.jsonl"), MAX_NEW_TOKENS,
                                    prefill_tokens=5)[0].value,
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


def sft_benign_gain(model_dir: Path, task: str = "colors", seed: int = 0,
                    config: TrainConfig = BENIGN_SFT) -> tuple[float, float]:
    """Exact-match accuracy on the task's validation file before and after plain-SFT LoRA on its training file."""
    model, tokenizer = load_base(model_dir, CPU)
    validation = datasets.read(f"benign_{task}_validation.jsonl")
    before = exact_match(model, tokenizer, validation).value
    examples = encode_rows(tokenizer, datasets.read(f"benign_{task}.jsonl"), 256)
    tuned = finetune_lora(model, tokenizer, examples, replace(config, seed=seed), LORA, CPU)
    return before, exact_match(tuned.model, tokenizer, validation).value
