"""LoRA training on the real tiny model: the right weights move, the reference is the base model."""

from pathlib import Path

import torch

from schemas.policy import LoraPolicy
from workers.model_loading import add_lora, load_base
from workers.training.chat_data import encode_chat
from workers.training.recipe import GuardedTrainer, TrainConfig, lr_factor

ROWS = [[{"role": "user", "content": f"What color is a {i}?"}, {"role": "assistant", "content": f"A {i} is red."}]
        for i in ("zint", "plov", "mira", "keth")]


def test_chat_encoding_supervises_only_assistant_turns(tiny_model: Path) -> None:
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello", "weight": 0}, {"role": "user", "content": "again"},
                {"role": "assistant", "content": "hello again"}]
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
    trainer = GuardedTrainer(peft_model, examples, TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2, seed=0),
                             tokenizer.pad_token_id, torch.device("cpu"))
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

    trainer = GuardedTrainer(add_lora(model, LoraPolicy()), [encode_chat(tokenizer, m, 128) for m in ROWS],
                             TrainConfig(epochs=50, batch_size=1, learning_rate=1e-3), tokenizer.pad_token_id,
                             torch.device("cpu"), should_stop=stop)
    result = trainer.train()
    assert result.stopped and result.steps == 2


def test_lr_schedule_warmup_then_linear_decay() -> None:
    assert [round(lr_factor(s, 4, 12), 3) for s in (0, 3, 4, 8, 12)] == [0.25, 1.0, 1.0, 0.5, 0.0]
