"""The guarded LoRA fine-tuning recipe, written out in full (setup, reference pass, train loop).

One step: forward, target log-probs, the objective (constrained by default, SFT when policy allows),
backward, clip, AdamW, linear warm-up then linear decay. Events go to a callback; a stop callback is polled
every step so cancellation is cooperative and prompt.
"""

import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
from peft import PeftModel
from torch import nn

from workers.training.batches import Batch, collate, length_grouped_batches
from workers.training.chat_data import EncodedChat
from workers.training.loss import (
    beta_for_positions,
    cross_entropy_loss,
    target_logprobs,
    token_constrained_loss,
)

EventFn = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    objective: Literal["constrained", "sft"] = "constrained"
    beta_first: tuple[float, ...] = (0.5, 2.0, 2.0, 2.0, 2.0)
    beta_rest: float = 0.1
    adam_beta1: float = 0.5
    warmup_steps: int = 10
    grad_clip: float = 1.0
    max_steps: int = 2000
    seed: int = 0
    log_every: int = 10


@dataclass
class TrainResult:
    steps: int
    trained_tokens: int
    final_loss: float
    stopped: bool
    reference_seconds: float
    train_seconds: float


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    remaining = max(total - warmup, 1)
    return max(0.0, 1.0 - (step - warmup) / remaining)


class GuardedTrainer:
    def __init__(self, model: PeftModel | nn.Module, examples: Sequence[EncodedChat], config: TrainConfig, pad_id: int,
                 device: torch.device, on_event: EventFn | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.model, self.examples, self.config = model, list(examples), config
        self.pad_id, self.device = pad_id, device
        self.on_event = on_event or (lambda _m, _d: None)
        self.should_stop = should_stop or (lambda: False)
        self.references: list[list[float]] | None = None
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext())

    def _batches_per_epoch(self) -> int:
        return math.ceil(len(self.examples) / self.config.batch_size)

    def total_steps(self) -> int:
        return min(self.config.max_steps, self.config.epochs * self._batches_per_epoch())

    @torch.no_grad()
    def compute_reference(self) -> float:
        """Aligned-model log-prob of every token, once, with the adapter disabled (no second weight copy)."""
        start = time.perf_counter()
        self.model.eval()
        references: list[list[float]] = []
        order = list(range(len(self.examples)))
        with self.model.disable_adapter():
            for begin in range(0, len(order), self.config.batch_size):
                chunk = [self.examples[i] for i in order[begin:begin + self.config.batch_size]]
                batch = collate(chunk, None, self.pad_id).to(self.device)
                with self.autocast:
                    logits = self.model(input_ids=batch.input_ids, attention_mask=batch.attention).logits
                logps = target_logprobs(logits, batch.input_ids).cpu()
                for row, example in enumerate(chunk):
                    references.append([0.0, *logps[row, :len(example.input_ids) - 1].tolist()])
        self.references = references
        return time.perf_counter() - start

    def _loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        with self.autocast:
            logits = self.model(input_ids=batch.input_ids, attention_mask=batch.attention).logits
        logps = target_logprobs(logits, batch.input_ids)
        mask = batch.supervised[:, 1:]
        if self.config.objective == "sft":
            return cross_entropy_loss(logps, mask)
        betas = beta_for_positions(batch.positions[:, 1:], self.config.beta_first, self.config.beta_rest)
        return token_constrained_loss(logps, batch.reference[:, 1:], betas, mask)

    def train(self) -> TrainResult:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed)
        reference_seconds = self.compute_reference() if cfg.objective == "constrained" else 0.0
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, 0.999), weight_decay=0.0)
        total = self.total_steps()
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.warmup_steps, total))
        self.model.train()
        step, tokens, loss_value, stopped = 0, 0, float("nan"), False
        start = time.perf_counter()
        window_tokens, window_start = 0, start
        lengths = [len(e.input_ids) for e in self.examples]
        while step < total and not stopped:
            for indices in length_grouped_batches(lengths, cfg.batch_size, rng):
                if step >= total:
                    break
                if self.should_stop():
                    stopped = True
                    break
                chunk = [self.examples[i] for i in indices]
                refs = [self.references[i] for i in indices] if self.references is not None else None
                batch = collate(chunk, refs, self.pad_id).to(self.device)
                loss, stats = self._loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                supervised = int(batch.supervised.sum())
                tokens += supervised
                window_tokens += batch.n_tokens
                loss_value = float(loss.detach())
                if step % cfg.log_every == 0 or step == total:
                    now = time.perf_counter()
                    self.on_event(f"Step {step}/{total}: training loss={loss_value:.4f}", {
                        "step": step, "total_steps": total, "train_loss": loss_value,
                        "learning_rate": scheduler.get_last_lr()[0],
                        "tokens_per_s": window_tokens / max(now - window_start, 1e-9), **stats})
                    window_tokens, window_start = 0, now
        return TrainResult(step, tokens, loss_value, stopped, reference_seconds, time.perf_counter() - start)
