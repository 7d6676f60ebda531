"""Activation memory per token and the micro-batch a budget holds: pure functions, worked by hand, and the layer
term checked against the tensors a real forward pass keeps for backward."""

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig

from tests import real_arch
from workers.model_loading import load_base
from workers.training.loss import target_logprobs
from workers.training.memory import (
    HEADROOM,
    ModelShape,
    activation_bytes_per_token,
    largest_micro_batch,
    layer_bytes_per_token,
    logits_bytes_per_token,
    memory_budget,
    micro_batch_rows,
    shape_of,
)

CPU = torch.device("cpu")
# Meta-Llama-3-8B: 32 layers, hidden 4096, 8 key/value heads of 128, MLP 14336, vocabulary 128256.
LLAMA3_8B = ModelShape(layers=32, hidden=4096, intermediate=14336, kv_hidden=1024, heads=32, vocab=128256)


def test_llama3_8b_by_hand() -> None:
    """bf16 (2 bytes), SDPA attention:
    layer  = 8 x 2 x 4096 + 2 x (4 x 4096 + 2 x 1024 + 4 x 14336) = 65,536 + 151,552 = 217,088
    logits = 128,256 x (12 + 4) = 2,052,096
    total  = 32 x 217,088 + 2,052,096 = 8,998,912 (about 8.6 MiB a token: 18.4 GB for a row of 2,048)
    checkpointed: 32 x 2 x 4096 + 217,088 + 2,052,096 = 2,531,328 (3.6 times less)."""
    assert layer_bytes_per_token(LLAMA3_8B, 2, 2048) == 217_088
    assert logits_bytes_per_token(LLAMA3_8B, 2) == 2_052_096
    assert activation_bytes_per_token(LLAMA3_8B, 2, False, 2048) == 8_998_912
    assert activation_bytes_per_token(LLAMA3_8B, 2, True, 2048) == 2_531_328
    # 100 GB free: 80 GB planned holds 4 rows of 2,048 tokens (4 x 18.43 GB), checkpointed 15 (15 x 5.18 GB)
    budget = HEADROOM * 100e9
    assert largest_micro_batch(budget, 8_998_912, 2048, 64) == 4
    assert largest_micro_batch(budget, 2_531_328, 2048, 64) == 15


def test_eager_attention_and_logit_softcap_add_their_terms() -> None:
    """Eager attention keeps heads x s scores per token and layer at 8 bytes; a logit soft-cap two more
    vocabulary-wide tensors."""
    eager = ModelShape(2, 64, 128, 32, 4, 1000, norms_per_layer=4, eager_attention=True, logit_softcap=True)
    flash = ModelShape(2, 64, 128, 32, 4, 1000, norms_per_layer=4)
    assert layer_bytes_per_token(eager, 2, 100) - layer_bytes_per_token(flash, 2, 100) == 8 * 4 * 100
    assert layer_bytes_per_token(flash, 2, 100) == 8 * 4 * 64 + 2 * (4 * 64 + 2 * 32 + 4 * 128)
    assert logits_bytes_per_token(eager, 2) - logits_bytes_per_token(flash, 2) == 2 * 2 * 1000


def test_micro_batch_is_at_least_one_row_and_at_most_the_batch() -> None:
    assert largest_micro_batch(1.0, 1e6, 512, 8) == 1  # a step must run; the allocator has the last word
    assert largest_micro_batch(1e12, 1e3, 512, 8) == 8
    assert largest_micro_batch(10_000, 10, 100, 64) == 10


def test_the_policy_setting_resolves_as_documented() -> None:
    assert micro_batch_rows(4, 8, 1e6, 512, 1e3) == 4  # a number is used as given
    assert micro_batch_rows(None, 8, 1e6, 512, None) is None  # null on a CPU: the whole step
    assert micro_batch_rows("auto", 8, 1000.0, 100, 250_000.0) == 2
    assert memory_budget(4, CPU) is None and memory_budget(None, CPU) is None
    assert memory_budget("auto", CPU) > 0  # the host's available RAM, times HEADROOM


def _kept_bytes(model: torch.nn.Module, ids: torch.Tensor, params: set[int]) -> int:
    """Bytes of the tensors autograd keeps for backward in one bf16-autocast forward and loss (weights aside)."""
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        target_logprobs(model(input_ids=ids, use_cache=False).logits, ids)
    return sum(kept.values())


def _saved_bytes_per_token(model: torch.nn.Module, vocab: int) -> float:
    """Per token: the slope between 64- and 128-token rows (weights and per-step constants cancel). Causal without
    a padding mask, so SDPA keeps no score matrix."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    short, long = (_kept_bytes(model, torch.randint(0, vocab, (2, seq)), params) for seq in (64, 128))
    return (long - short) / (2 * 64)


@pytest.mark.parametrize("layers", [2, 4])
def test_layer_term_matches_what_a_bf16_llama_keeps_for_backward(layers: int) -> None:
    """A random-init Llama in bf16 with LoRA on every linear layer, under bf16 autocast as on a GPU: the tensors
    kept per token are the estimate's layers plus the fp32 logits copy (4 V), within 5%; the estimate's own
    logits term (12 + 2b per vocabulary entry) also counts the loss's transient tensors, so it is higher."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=896,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
    )
    base = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").to(torch.bfloat16)
    model = get_peft_model(base, LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM")).train()
    shape = shape_of(model)
    assert shape == ModelShape(layers, 256, 896, 64, 8, 512)
    measured = _saved_bytes_per_token(model, 512)
    kept = shape.layers * layer_bytes_per_token(shape, 2, 128) + 4 * shape.vocab
    assert abs(measured - kept) / measured < 0.05, (measured, kept)
    assert activation_bytes_per_token(shape, 2, False, 128) > measured


def test_shape_of_a_real_gemma2_and_llama3(tmp_path: Path) -> None:
    """Gemma 2: four norms a layer, eager attention (no SDPA support), a final logit soft-cap."""
    gemma, _ = load_base(real_arch.build("gemma2", tmp_path / "gemma2"), CPU)
    llama, _ = load_base(real_arch.build("llama3", tmp_path / "llama3"), CPU)
    assert shape_of(gemma) == ModelShape(
        2, 64, 128, 2 * 16, 4, gemma.config.vocab_size, norms_per_layer=4, eager_attention=True, logit_softcap=True
    )
    heads = llama.config.num_attention_heads
    assert shape_of(llama) == ModelShape(
        2,
        64,
        128,
        llama.config.num_key_value_heads * 64 // heads,
        heads,
        llama.config.vocab_size,
        eager_attention=False,
    )
    assert shape_of(torch.nn.Linear(2, 2)) is None
