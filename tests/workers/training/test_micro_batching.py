"""Memory options of the recipe on the tiny model: the reference pass chunked as training is, micro-batches sized
from free memory, gradient checkpointing (the same gradients, layers recomputed), and the policy fields."""

from pathlib import Path
from typing import Any

import pytest
import torch

from schemas.policy import LoraPolicy, Policy
from workers.chat_data import encode_chat
from workers.model_loading import add_lora, enable_checkpointing, load_base
from workers.training import memory
from workers.training.augmentation import AugmentationConfig, encode_triplet, load_pool
from workers.training.finetune import config_from_policy, finetune_rows
from workers.training.recipe import GuardedTrainer, TrainConfig, longest_row

CPU = torch.device("cpu")
ROWS = [
    [{"role": "user", "content": f"What color is a {i}?"}, {"role": "assistant", "content": f"A {i} is red."}]
    for i in ("zint", "plov", "mira", "keth")
]
torch.set_num_threads(1)


def _trainer(
    tiny_model: Path, config: TrainConfig, checkpointing: bool = False, **kwargs: Any
) -> tuple[GuardedTrainer, Any]:
    model, tokenizer = load_base(tiny_model, CPU)
    if checkpointing:
        enable_checkpointing(model)
    torch.manual_seed(0)
    peft_model = add_lora(model, LoraPolicy(rank=4))
    examples = [encode_chat(tokenizer, m, 128) for m in ROWS]
    return GuardedTrainer(peft_model, examples, config, tokenizer.pad_token_id, CPU, **kwargs), tokenizer


def _forward_calls(module: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_pre_hook(lambda _m, _a: calls.append(1))
    return calls


def test_reference_pass_is_chunked_like_training(tiny_model: Path) -> None:
    """One forward per micro-batch (not per batch), and the same log-probs however the rows are chunked."""
    refs = {}
    for micro, expected_calls in ((None, 1), (1, 4), (3, 2)):
        trainer, _ = _trainer(
            tiny_model, TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, micro_batch_size=micro)
        )
        calls = _forward_calls(trainer.model.get_base_model())
        trainer.compute_reference()
        assert len(calls) == expected_calls, micro
        refs[micro] = trainer.references
    for micro in (1, 3):
        for a, b in zip(refs[None], refs[micro], strict=True):
            assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)


def test_auto_sizes_micro_batches_from_free_memory(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` plans in HEADROOM of the free memory: a budget of one row gives micro-batches of one row, said in an
    event; plenty of memory gives the whole step."""
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, max_steps=1, micro_batch_size="auto")
    events: list[tuple[str, dict[str, Any]]] = []
    trainer, _ = _trainer(tiny_model, config, on_event=lambda m, d: events.append((m, d)))
    row = trainer.memory_plan["bytes_per_row"]
    assert trainer.memory_plan["seq_len"] == longest_row(trainer.examples, [], 0)
    monkeypatch.setattr(memory, "free_bytes", lambda _device: 1.5 * row / memory.HEADROOM)
    tight, _ = _trainer(tiny_model, config, on_event=lambda m, d: events.append((m, d)))
    assert tight.micro_batch_size == 1
    tight.train()
    assert events and events[0][0].startswith("Micro-batches of 1 rows, sized from memory")
    monkeypatch.setattr(memory, "free_bytes", lambda _device: 1e12)
    assert _trainer(tiny_model, config)[0].micro_batch_size == 4
    assert _trainer(tiny_model, TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3))[0].micro_batch_size is None


def test_longest_row_counts_recovery_examples_at_their_longest_prefix(tiny_model: Path) -> None:
    _, tokenizer = load_base(tiny_model, CPU)
    pool = [encode_triplet(tokenizer, t, 128) for t in load_pool("builtin:tiny")]
    longest = max(len(t.prompt_ids) + len(t.harmful_ids) + max(len(t.target_ids), len(t.continued_ids)) for t in pool)
    assert longest_row([], pool, 10_000) == longest
    assert longest_row([], pool, 1) < longest


def test_gradient_checkpointing_recomputes_layers_and_keeps_the_gradients(tiny_model: Path) -> None:
    """The same loss and gradients with and without checkpointing; with it, each layer runs again in the backward
    pass (two forwards a step), and the reference pass (eval mode) is not checkpointed."""
    config = TrainConfig(
        epochs=1,
        batch_size=4,
        learning_rate=1e-2,
        seed=3,
        augmentation=AugmentationConfig(ratio=0.5, loss="constrained"),
    )
    _, tokenizer = load_base(tiny_model, CPU)
    pool = [encode_triplet(tokenizer, t, 128) for t in load_pool("builtin:tiny")]
    grads, losses = [], []
    for checkpointing in (False, True):
        trainer, _ = _trainer(tiny_model, config, checkpointing=checkpointing, recovery_pool=pool)
        assert trainer.model.get_base_model().is_activation_checkpointing == checkpointing
        calls = _forward_calls(trainer.model.get_base_model().model.layers[0].mlp)  # inside the checkpoint
        trainer.compute_reference()
        assert len(calls) == 1
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        trainer.model.train()  # as train() does: only layers in training mode are checkpointed
        loss, *_ = trainer._step(0, [0, 1, 2, 3], torch.optim.SGD(params, lr=0.0), params)
        groups = 2  # tenant rows, then recovery examples, whose reference pass runs first (constrained loss)
        assert len(calls) == 2 + groups * (2 if checkpointing else 1)
        losses.append(loss)
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert abs(losses[0] - losses[1]) < 1e-6 and grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], rtol=1e-5, atol=1e-8), name


def test_policy_memory_fields_reach_the_trainer(tiny_model: Path) -> None:
    """training.micro_batch_size and training.gradient_checkpointing, through config_from_policy and finetune_rows:
    the base is checkpointed before LoRA is attached, micro-batches of 1 row, and the adapter learns."""
    policy = Policy().for_model("gft-tiny-chat")
    policy = policy.model_copy(
        update={"training": policy.training.model_copy(update={"micro_batch_size": 1, "gradient_checkpointing": True})}
    )
    config = config_from_policy(policy, epochs=1, batch_size=2, learning_rate=1e-2, seed=0)
    assert config.micro_batch_size == 1 and config.gradient_checkpointing
    auto = config_from_policy(
        policy.model_copy(update={"training": policy.training.model_copy(update={"micro_batch_size": "auto"})}),
        1,
        2,
        1e-2,
        0,
    )
    assert auto.micro_batch_size == "auto"
    model, tokenizer = load_base(tiny_model, CPU)
    rows = [{"messages": m} for m in ROWS]
    tuned = finetune_rows(model, tokenizer, rows, policy, config, CPU)
    assert tuned.model.get_base_model().is_activation_checkpointing and tuned.result.steps == 2
    assert any(p.abs().sum() > 0 for n, p in tuned.model.named_parameters() if "lora_B" in n)
