"""How many rows fit in one forward and backward pass: activation memory per token from the model's shape, and
the largest micro-batch a memory budget holds.

Per token, in bytes, for a decoder with LoRA on every linear layer, b bytes per activation (2 under bf16 autocast,
4 in fp32), h hidden, kv the key/value width (kv heads x head dim), I the MLP width, V the vocabulary, s the
sequence length, n the RMSNorms per layer (2; Gemma 2 has 4):

    layer  = 8 n h                   each RMSNorm's fp32 copies of its input and its normalised output
           + b (4 h + 2 kv + 4 I)    attention input, query, output and o_proj input; keys and values;
                                     the MLP's gate, up, activation and product
           + 8 heads s               only with eager attention: the scores and their fp32 softmax (Gemma 2
                                     without flash attention); SDPA and flash attention keep O(s) per row
    logits = V (12 + 2 b)            logits and their gradient, the fp32 copy `target_logprobs` takes, its
                                     gradient and logsumexp's exp; + 2 b V with a final logit soft-cap (Gemma 2)
    total  = L layer + logits                       without checkpointing
           = L b h + layer + logits                 with per-layer checkpointing: each layer keeps only its
                                                    input; one layer's activations live again while it is
                                                    recomputed in the backward pass

The layer term was fitted on random-init Llama and Qwen 2 configs under CPU bf16 autocast (tensors saved for
backward counted per token with `torch.autograd.graph.saved_tensors_hooks`; tests/workers/training/test_memory.py
keeps it honest); the logits term counts the transient tensors of the loss too, so the estimate errs high.
Weights, the adapter's optimizer state and the allocator's fragmentation are not in it: the budget is the memory
free once the model is loaded, times HEADROOM.
"""

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

import torch

HEADROOM = 0.8  # share of the free memory planned for activations; the rest absorbs what the estimate leaves out
MicroBatchSetting = int | Literal["auto"] | None


@dataclass(frozen=True)
class ModelShape:
    """What activation memory depends on; `eager_attention`: attention scores are materialised."""

    layers: int
    hidden: int
    intermediate: int
    kv_hidden: int
    heads: int
    vocab: int
    norms_per_layer: int = 2
    eager_attention: bool = False
    logit_softcap: bool = False


def layer_bytes_per_token(shape: ModelShape, dtype_bytes: int, seq_len: int) -> float:
    """One decoder layer's activations kept for the backward pass, per token (the module docstring's `layer`)."""
    norms = 8 * shape.norms_per_layer * shape.hidden
    tensors = dtype_bytes * (4 * shape.hidden + 2 * shape.kv_hidden + 4 * shape.intermediate)
    scores = 8 * shape.heads * seq_len if shape.eager_attention else 0
    return float(norms + tensors + scores)


def logits_bytes_per_token(shape: ModelShape, dtype_bytes: int) -> float:
    softcap = 2 * dtype_bytes * shape.vocab if shape.logit_softcap else 0
    return float(shape.vocab * (12 + 2 * dtype_bytes) + softcap)


def activation_bytes_per_token(shape: ModelShape, dtype_bytes: int, checkpointing: bool, seq_len: int) -> float:
    """Peak activation memory of a training step per token of a padded micro-batch (the module docstring's
    `total`)."""
    layer = layer_bytes_per_token(shape, dtype_bytes, seq_len)
    kept = shape.layers * dtype_bytes * shape.hidden + layer if checkpointing else shape.layers * layer
    return kept + logits_bytes_per_token(shape, dtype_bytes)


def largest_micro_batch(budget_bytes: float, bytes_per_token: float, seq_len: int, rows: int) -> int:
    """The most rows of `seq_len` tokens the budget holds, at least 1 (a step must run) and at most `rows`."""
    fits = math.floor(budget_bytes / max(bytes_per_token * seq_len, 1.0))
    return max(1, min(rows, fits))


def micro_batch_rows(
    setting: MicroBatchSetting, rows: int, bytes_per_token: float, seq_len: int, budget_bytes: float | None
) -> int | None:
    """The policy's `micro_batch_size` resolved: a number as given; otherwise the largest micro-batch the budget
    holds, or None (the whole step at once) when there is no budget to size against."""
    if isinstance(setting, int):
        return setting
    if budget_bytes is None:
        return None
    return largest_micro_batch(budget_bytes, bytes_per_token, seq_len, rows)


def memory_budget(setting: MicroBatchSetting, device: torch.device) -> float | None:
    """Bytes to plan activations in: HEADROOM of the free memory for "auto" (GPU memory on CUDA, available RAM on
    a CPU) and for null on CUDA, where a whole step that does not fit would fail the job; None otherwise (a number
    is used as given; null on a CPU trains the whole step at once)."""
    if isinstance(setting, int) or (setting is None and device.type != "cuda"):
        return None
    return HEADROOM * free_bytes(device)


def shape_of(model: Any) -> ModelShape | None:
    """The shape of a transformers causal LM (a peft wrapper included); None when it has no such config."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "num_hidden_layers"):
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    norms = sum(1 for name, _ in model.named_modules() if re.search(r"layers\.0\.\w*norm$", name))
    return ModelShape(
        layers=text.num_hidden_layers,
        hidden=text.hidden_size,
        intermediate=getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
        kv_hidden=kv_heads * head_dim,
        heads=heads,
        vocab=text.vocab_size,
        norms_per_layer=norms or 2,
        eager_attention=getattr(text, "_attn_implementation", None) == "eager",
        logit_softcap=bool(getattr(text, "final_logit_softcapping", None)),
    )


def free_bytes(device: torch.device) -> float:
    """Memory free now on `device`: the GPU's (after the model is loaded), else the host's available RAM."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
