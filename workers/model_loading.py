"""Load base models with from_pretrained from a local folder, attach or load LoRA adapters."""

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils.logging import disable_progress_bar

from schemas.policy import LoraPolicy


def pick_device(preference: str) -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def load_base(path: str | Path, device: torch.device) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Weights stay fp32 on CPU; on CUDA they load in bf16 (training runs under bf16 autocast)."""
    disable_progress_bar()  # per-load progress bars are noise in worker logs
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype).to(device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def enable_checkpointing(model: PreTrainedModel) -> None:
    """Per-layer activation checkpointing, set before LoRA is attached: get_peft_model sees it and hooks the input
    embeddings to require grad, so gradients reach the adapters inside checkpointed layers even though every base
    weight is frozen (the reentrant variant needs that; peft's prepare_model_for_kbit_training does the same for
    quantised models, which we never load). Non-reentrant checkpointing, the variant torch recommends: it
    recomputes only what the backward pass needs and works with an input that does not require grad. Only layers
    in training mode are checkpointed, so the reference pass and generation are untouched. transformers 5 names
    it activation_checkpointing_enable (gradient_checkpointing_enable is its deprecated alias)."""
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": False})


def add_lora(model: PreTrainedModel, policy: LoraPolicy) -> PeftModel:
    config = LoraConfig(
        r=policy.rank,
        lora_alpha=policy.alpha,
        lora_dropout=policy.dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PeftModel:
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
