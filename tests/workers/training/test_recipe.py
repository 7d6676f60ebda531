"""LoRA training on the real tiny model: the right weights move, the reference is the base model."""

from dataclasses import replace
from pathlib import Path

import torch

from schemas.policy import LoraPolicy
from workers.chat_data import EncodedChat, encode_chat
from workers.model_loading import add_lora, load_base
from workers.training.augmentation import AugmentationConfig, Triplet, encode_triplet, load_pool
from workers.training.batches import micro_batches
from workers.training.recipe import GuardedTrainer, TrainConfig, loss_divisors, lr_factor, newest_checkpoint_folder

ROWS = [
    [{"role": "user", "content": f"What color is a {i}?"}, {"role": "assistant", "content": f"A {i} is red."}]
    for i in ("zint", "plov", "mira", "keth")
]


def test_chat_encoding_supervises_only_assistant_turns(tiny_model: Path) -> None:
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "weight": 0},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "hello again"},
    ]
    encoded = encode_chat(tokenizer, messages, max_len=512)
    supervised_text = tokenizer.decode([t for t, s in zip(encoded.input_ids, encoded.supervised, strict=False) if s])
    assert supervised_text == "hello again<|end|>"
    first = encoded.supervised.index(True)
    assert encoded.positions[first] == 1 and encoded.positions[first - 1] == 0
    assert not encode_chat(tokenizer, messages, max_len=512).truncated
    assert encode_chat(tokenizer, messages, max_len=8).truncated


def test_lora_moves_adapter_not_base(tiny_model: Path) -> None:
    model, tokenizer = load_base(tiny_model, torch.device("cpu"))
    peft_model = add_lora(model, LoraPolicy(rank=4))
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    examples = [encode_chat(tokenizer, m, 128) for m in ROWS]
    trainer = GuardedTrainer(
        peft_model,
        examples,
        TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2, seed=0),
        tokenizer.pad_token_id,
        torch.device("cpu"),
    )
    trainer.compute_reference()
    with torch.no_grad(), peft_model.disable_adapter():
        ids = torch.tensor([examples[0].input_ids])
        logps = torch.log_softmax(peft_model(input_ids=ids).logits.float(), -1)[0, :-1].gather(-1, ids[0, 1:, None])
    assert torch.allclose(torch.tensor(trainer.references[0][1:]), logps.squeeze(-1), atol=1e-5)

    result = trainer.train()
    assert result.steps == 6 and result.trained_tokens > 0 and not result.stopped
    for name, param in peft_model.named_parameters():
        moved = not torch.equal(before[name], param.detach())
        if "lora_B" in name:
            assert moved, name
        elif "lora_" not in name:
            assert not moved, name


def test_stop_callback_halts_within_one_step(tiny_model: Path) -> None:
    model, tokenizer = load_base(tiny_model, torch.device("cpu"))
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    trainer = GuardedTrainer(
        add_lora(model, LoraPolicy()),
        [encode_chat(tokenizer, m, 128) for m in ROWS],
        TrainConfig(epochs=50, batch_size=1, learning_rate=1e-3),
        tokenizer.pad_token_id,
        torch.device("cpu"),
        should_stop=stop,
    )
    result = trainer.train()
    assert result.stopped and result.steps == 2


def test_lr_schedule_warmup_then_linear_decay() -> None:
    assert [round(lr_factor(s, 4, 12), 3) for s in (0, 3, 4, 8, 12)] == [0.25, 1.0, 1.0, 0.5, 0.0]


def _trainer(tiny_model: Path, config: TrainConfig, **kwargs: object) -> tuple[GuardedTrainer, object]:
    torch.manual_seed(0)
    model, tokenizer = load_base(tiny_model, torch.device("cpu"))
    peft_model = add_lora(model, LoraPolicy(rank=4))
    examples = [encode_chat(tokenizer, m, 128) for m in ROWS]
    return GuardedTrainer(
        peft_model, examples, config, tokenizer.pad_token_id, torch.device("cpu"), **kwargs
    ), tokenizer  # type: ignore[arg-type]


def _adapter(trainer: GuardedTrainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}


def test_gradient_accumulation_equals_one_big_batch(tiny_model: Path) -> None:
    """Same loss and same gradients whether a step's rows go through in one pass or one row at a time."""
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-2, seed=3)
    grads, losses = [], []
    for micro in (None, 1):
        trainer, _ = _trainer(tiny_model, replace(config, micro_batch_size=micro))
        trainer.compute_reference()
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        frozen = torch.optim.SGD(params, lr=0.0)
        loss, _stats, _tokens, _supervised = trainer._step(0, [0, 1, 2, 3], frozen, params)
        losses.append(loss)
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert abs(losses[0] - losses[1]) < 1e-5
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], rtol=1e-4, atol=1e-7), name


def test_micro_batches_keep_tenant_rows_and_recovery_examples_apart() -> None:
    assert micro_batches([False, False, True], None) == [range(0, 2), range(2, 3)]
    assert micro_batches([False] * 5 + [True] * 3, 2) == [
        range(0, 2),
        range(2, 4),
        range(4, 5),
        range(5, 7),
        range(7, 8),
    ]
    assert micro_batches([False, False], None) == [range(0, 2)]
    assert micro_batches([], None) == []


def test_an_augmented_step_in_two_groups_equals_one_row_at_a_time(tiny_model: Path) -> None:
    """Tenant rows and recovery examples go through apart (less padding): same loss and gradients, whatever the
    micro-batch size."""
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-2, seed=3, augmentation=AugmentationConfig(ratio=1.0))
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    pool = [encode_triplet(tokenizer, t, 128) for t in load_pool("builtin:tiny")]
    grads, losses = [], []
    for micro in (None, 1):
        trainer, _ = _trainer(tiny_model, replace(config, micro_batch_size=micro), recovery_pool=pool)
        trainer.compute_reference()
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        loss, stats, _tokens, _supervised = trainer._step(0, [0, 1, 2, 3], torch.optim.SGD(params, lr=0.0), params)
        losses.append((loss, stats["mean_weight"]))
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert abs(losses[0][0] - losses[1][0]) < 1e-5 and abs(losses[0][1] - losses[1][1]) < 1e-5
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], rtol=1e-4, atol=1e-7), name


def test_resume_from_checkpoint_reproduces_an_uninterrupted_run(tiny_model: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2, seed=5, checkpoint_every=2)
    straight, _ = _trainer(tiny_model, config)
    straight_result = straight.train()
    saved: list[int] = []
    interrupted, _ = _trainer(
        tiny_model,
        config,
        checkpoint_dir=tmp_path,
        should_stop=lambda: len(saved) >= 2,
        on_checkpoint=lambda step, _path, _metrics: saved.append(step),
    )
    result = interrupted.train()
    assert result.stopped and saved == [2, 4]
    assert newest_checkpoint_folder(tmp_path) == tmp_path / "step-000004"
    resumed, _ = _trainer(tiny_model, config)
    result = resumed.train(resume_from=newest_checkpoint_folder(tmp_path))
    assert result.resumed_from == 4 and result.steps == 2
    assert result.trained_tokens == straight_result.trained_tokens
    for name, value in _adapter(straight).items():
        assert torch.allclose(value, _adapter(resumed)[name], atol=1e-6), name


def test_augmentation_adds_recovery_rows_with_only_their_targets_supervised(tiny_model: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, augmentation=AugmentationConfig(ratio=1.0))
    trainer, tokenizer = _trainer(tiny_model, config)
    pool = [encode_triplet(tokenizer, t, 128) for t in load_pool("builtin:tiny")]
    trainer, _ = _trainer(tiny_model, config, recovery_pool=pool)
    trainer.compute_reference()
    rows, refs = trainer._rows(0, [0, 1, 2, 3])
    assert len(rows) == 8 and refs is not None and len(refs) == 8
    recovery = [r for r in rows if r.meta.get("recovery")]
    assert len(recovery) == 4
    targets = {(t.refusal if isinstance(t, Triplet) else t.answer) + "<|end|>" for t in load_pool("builtin:tiny")}
    for row in recovery:
        supervised = tokenizer.decode([t for t, s in zip(row.input_ids, row.supervised, strict=True) if s])
        # a refusal (after a harmful prefix with the separator before it), or the rest of a contrast answer
        assert any(t.endswith(supervised.removeprefix(" ")) for t in targets)
    again, _ = trainer._rows(0, [0, 1, 2, 3])
    assert [r.input_ids for r in again] == [r.input_ids for r in rows]
    assert trainer.train().trained_tokens > 0


def _row(n_supervised: int, recovery: bool) -> EncodedChat:
    return EncodedChat(
        [1] * (n_supervised + 2),
        [False, False] + [True] * n_supervised,
        [0, 0, *range(1, n_supervised + 1)],
        meta={"recovery": True} if recovery else {},
    )


def test_loss_divisors_joint_mean_or_weighted_separate_means() -> None:
    rows = [_row(6, False), _row(4, False), _row(3, True), _row(2, True)]
    assert loss_divisors(rows, None) == [15.0] * 4
    # tenant rows: mean over their 10 tokens; recovery rows: 0.5 x the mean over their 5 tokens
    assert loss_divisors(rows, 0.5) == [10.0, 10.0, 10.0, 10.0]
    assert loss_divisors(rows, 2.0) == [10.0, 10.0, 2.5, 2.5]
    assert loss_divisors(rows[:2], 2.0) == [10.0, 10.0]
