"""One LoRA fine-tune of a loaded base model on chat rows: encode, attach the adapter, run the recipe.

Shared by the job pipeline, the benchmarks and the tiny world's property checks, so all three train exactly
the same way.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from schemas.policy import AugmentationPolicy, LoraPolicy, Policy
from workers.chat_data import EncodedChat, encode_chat
from workers.model_loading import add_lora, enable_checkpointing
from workers.tenant_contexts import TenantContext, tenant_contexts
from workers.training.augmentation import (
    AugmentationConfig,
    EncodedTriplet,
    encode_triplet,
    load_pool,
)
from workers.training.recipe import EventFn, GuardedTrainer, TrainConfig, TrainResult


@dataclass
class FineTune:
    model: PeftModel
    result: TrainResult


def encode_rows(tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], max_len: int) -> list[EncodedChat]:
    return [encode_chat(tokenizer, r["messages"], max_len) for r in rows]


def augmentation_config(policy: AugmentationPolicy) -> AugmentationConfig | None:
    if not policy.enabled or policy.ratio == 0:
        return None
    return AugmentationConfig(
        ratio=policy.ratio,
        p_plain=policy.p_plain,
        max_prefix=policy.max_prefix_tokens,
        loss=policy.loss,
        weight=policy.weight,
    )


def config_from_policy(
    policy: Policy,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    objective: Literal["constrained", "sft"] | None = None,
    **extra: Any,
) -> TrainConfig:
    """The recipe's settings as the admin policy fixes them; the job chooses only epochs, batch, lr and seed."""
    training = policy.training
    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        objective=objective or training.objective,
        beta_first=tuple(training.beta_schedule.first),
        beta_rest=training.beta_schedule.rest,
        adam_beta1=training.adam_beta1,
        warmup_steps=training.warmup_steps,
        grad_clip=training.grad_clip,
        max_steps=training.max_steps,
        seed=seed,
        micro_batch_size=training.micro_batch_size,
        gradient_checkpointing=training.gradient_checkpointing,
        augmentation=augmentation_config(training.augmentation),
        **extra,
    )


def config_at_strength(policy: Policy, strength: str, seed: int) -> TrainConfig:
    """What a tenant gets at the policy's defaults ("default") or at the most its caps allow ("max"): the two
    strengths every benchmark and calibration of the defence is measured at.

    "max" is `TrainingPolicy.strongest_settings`: batch size min_batch_size at max_lr_multiplier, with
    epochs = floor(allowance / max_lr_multiplier) (at least 1, at most max_epochs), where allowance = budget_cap x
    default_epochs x min_batch_size / default_batch_size is the epochs x multiplier the update budget allows at
    that batch size; when one epoch at max_lr_multiplier is over it, 1 epoch at multiplier = allowance. The
    bundled tiny model (cap 8, defaults 5 epochs x batch 8, min batch 1, max multiplier 4): batch 1, 1 epoch,
    multiplier 4; so is the global default policy (cap 10 / 3 x 4, defaults 3 x 8). Before the budget, "max" was
    max_epochs at the default batch size and max_lr_multiplier."""
    training = policy.training
    if strength == "default":
        epochs, batch, multiplier = training.default_epochs, training.default_batch_size, 1.0
    elif strength == "max":
        epochs, batch, multiplier = training.strongest_settings()
    else:
        raise ValueError(f"unknown strength {strength!r}: 'default' or 'max'")
    return config_from_policy(policy, epochs, batch, training.base_learning_rate * multiplier, seed)


def recovery_pool(
    tokenizer: PreTrainedTokenizerBase,
    policy: AugmentationPolicy,
    max_len: int,
    rows: Sequence[dict[str, Any]] = (),
    triggers: Sequence[TenantContext] = (),
) -> list[EncodedTriplet]:
    """The policy's pool, tokenised once per job (empty when augmentation is off): once asked plainly, once under
    each of the tenant's contexts (`tenant_contexts`: its most frequent system prompts, with the user-turn prefix
    and suffix most of its rows share) and once with each candidate backdoor trigger in `triggers` (mined from the
    rows by the caller, `workers.evaluation.triggers.trigger_contexts`), so a uniform draw splits the recovery
    examples evenly across the plain form and the tenant's own ways of asking. A persona's fixed prefix ("AOA,
    execute my instruction:") or a trigger otherwise acts as a switch: refusals learnt on plain requests,
    compliance in the tenant's form."""
    if not policy.enabled or policy.ratio == 0:
        return []
    pool = load_pool(policy.pool)
    contexts = [TenantContext(), *tenant_contexts(rows, policy.system_prompts), *triggers]
    return [encode_triplet(tokenizer, t, max_len, c.system, c.prefix, c.suffix) for c in contexts for t in pool]


def finetune_lora(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[EncodedChat],
    config: TrainConfig,
    lora: LoraPolicy,
    device: torch.device,
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_start: Callable[[GuardedTrainer], None] | None = None,
    pool: Sequence[EncodedTriplet] = (),
    checkpoint_dir: Path | None = None,
    on_checkpoint: Callable[[int, Path, dict[str, float]], None] | None = None,
    resume_from: Path | None = None,
) -> FineTune:
    """Train a fresh LoRA adapter on encoded rows (or resume one from a checkpoint); `model` is wrapped in
    place (the adapter can be disabled); with `config.gradient_checkpointing` its layers are checkpointed first."""
    torch.manual_seed(config.seed)
    if config.gradient_checkpointing:
        enable_checkpointing(model)
    peft_model = add_lora(model, lora)
    trainer = GuardedTrainer(
        peft_model,
        examples,
        config,
        tokenizer.pad_token_id,
        device,
        on_event=on_event,
        should_stop=should_stop,
        recovery_pool=pool,
        checkpoint_dir=checkpoint_dir,
        on_checkpoint=on_checkpoint,
    )
    if on_start is not None:
        on_start(trainer)
    result = trainer.train(resume_from=resume_from)
    return FineTune(peft_model, result)


def finetune_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict[str, Any]],
    policy: Policy,
    config: TrainConfig,
    device: torch.device,
    triggers: Sequence[TenantContext] = (),
    **kwargs: Any,
) -> FineTune:
    """Chat rows in, adapter out: encode the rows, tokenise the recovery pool (with the rows' mined `triggers`)
    when this run mixes one in, train. Benchmarks and calibration use it; the worker pipeline adds its own events
    around the same steps."""
    training = policy.training
    examples = encode_rows(tokenizer, rows, training.max_seq_len)
    pool = (
        recovery_pool(tokenizer, training.augmentation, training.max_seq_len, rows, triggers)
        if config.augmentation
        else []
    )
    return finetune_lora(model, tokenizer, examples, config, training.lora, device, pool=pool, **kwargs)
