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


def add_lora(model: PreTrainedModel, policy: LoraPolicy) -> PeftModel:
    config = LoraConfig(r=policy.rank, lora_alpha=policy.alpha, lora_dropout=policy.dropout,
                        target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PeftModel:
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
