"""The guarded LoRA fine-tuning recipe, written out in full (setup, reference pass, train loop).

One step: draw the step's batch (tenant rows from a schedule fixed by the seed, plus freshly sampled safety
recovery examples), forward, target log-probs, the objective (constrained by default, SFT when policy
allows), backward over micro-batches (gradient accumulation), clip, AdamW, linear warm-up then linear decay.
Events go to a callback; a stop callback is polled every step so cancellation is cooperative and prompt; a
checkpoint every N steps lets a restarted worker resume where the last one stopped, drawing the same data.
"""

import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from peft import PeftModel
from peft.utils import load_peft_weights, set_peft_model_state_dict
from torch import nn

from workers.chat_data import EncodedChat
from workers.training.augmentation import AugmentationConfig, EncodedTriplet, draw
from workers.training.batches import Batch, collate, length_grouped_batches, micro_batches
from workers.training.loss import (
    beta_for_positions,
    cross_entropy_loss,
    target_logprobs,
    token_constrained_loss,
)
from workers.training.memory import (
    MicroBatchSetting,
    activation_bytes_per_token,
    memory_budget,
    micro_batch_rows,
    shape_of,
)

EventFn = Callable[[str, dict[str, Any]], None]
STATE_FILE = "trainer_state.pt"


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
    micro_batch_size: MicroBatchSetting = None  # rows per forward pass; "auto"/None: see memory.memory_budget
    gradient_checkpointing: bool = False  # set on the model before LoRA (finetune_lora); counted in the memory plan
    checkpoint_every: int = 0  # steps; 0 = never
    cpu_bf16: bool = False  # bf16 autocast on CPU too (CUDA always uses it)
    augmentation: AugmentationConfig | None = field(default=None)


@dataclass
class TrainResult:
    """`steps` counts this run's steps; `trained_tokens` counts the whole job's, resumed part included."""

    steps: int
    trained_tokens: int
    final_loss: float
    stopped: bool
    reference_seconds: float
    train_seconds: float
    resumed_from: int = 0


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    remaining = max(total - warmup, 1)
    return max(0.0, 1.0 - (step - warmup) / remaining)


def newest_checkpoint_folder(directory: Path) -> Path | None:
    """The newest complete checkpoint under `directory` (incomplete ones never get their final name)."""
    done = sorted(p for p in directory.glob("step-*") if (p / STATE_FILE).is_file()) if directory.is_dir() else []
    return done[-1] if done else None


def longest_row(examples: Sequence[EncodedChat], pool: Sequence[EncodedTriplet], max_prefix: int) -> int:
    """The most tokens one row of a step can hold: a tenant row, or a recovery example at its longest prefix."""
    tenant = max((len(e.input_ids) for e in examples), default=0)
    recovery = max(
        (
            len(t.prompt_ids) + min(len(t.harmful_ids), max_prefix) + max(len(t.target_ids), len(t.continued_ids))
            for t in pool
        ),
        default=0,
    )
    return max(tenant, recovery, 1)


def loss_divisors(rows: Sequence[EncodedChat], recovery_weight: float | None) -> list[float]:
    """What each row's summed token loss is divided by. Without a recovery weight: the step's supervised token
    count, one token-level mean over tenant and recovery tokens alike. With one: tenant rows are averaged over
    tenant tokens and recovery rows over recovery tokens, times the weight, so mixing recovery examples in
    does not shrink the tenant task's gradient by the recovery tokens' share."""
    if recovery_weight is None:
        return [float(max(sum(e.n_supervised for e in rows), 1))] * len(rows)
    recovery = [bool(e.meta.get("recovery")) for e in rows]
    tenant = max(sum(e.n_supervised for e, r in zip(rows, recovery, strict=True) if not r), 1)
    extra = max(sum(e.n_supervised for e, r in zip(rows, recovery, strict=True) if r), 1)
    return [extra / recovery_weight if r else float(tenant) for r in recovery]


class GuardedTrainer:
    def __init__(
        self,
        model: PeftModel | nn.Module,
        examples: Sequence[EncodedChat],
        config: TrainConfig,
        pad_id: int,
        device: torch.device,
        on_event: EventFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        recovery_pool: Sequence[EncodedTriplet] = (),
        checkpoint_dir: Path | None = None,
        on_checkpoint: Callable[[int, Path, dict[str, float]], None] | None = None,
    ) -> None:
        self.model, self.examples, self.config = model, list(examples), config
        self.pad_id, self.device = pad_id, device
        self.on_event = on_event or (lambda _m, _d: None)
        self.should_stop = should_stop or (lambda: False)
        self.recovery_pool = list(recovery_pool) if config.augmentation else []
        self.checkpoint_dir, self.on_checkpoint = checkpoint_dir, on_checkpoint
        self.references: list[list[float]] | None = None
        use_bf16 = device.type == "cuda" or config.cpu_bf16
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
        self.memory_plan = self._plan_memory(2 if use_bf16 else next(model.parameters()).element_size())
        self.micro_batch_size: int | None = self.memory_plan["micro_batch_size"]

    def _plan_memory(self, dtype_bytes: int) -> dict[str, Any]:
        """Rows per forward pass: the policy's number, or the largest micro-batch the device's free memory holds
        for the longest row a step can hold (memory.py), or None: the whole step at once."""
        setting, shape, augmentation = self.config.micro_batch_size, shape_of(self.model), self.config.augmentation
        budget = memory_budget(setting, self.device) if shape is not None else None  # no shape, nothing to size
        seq = longest_row(self.examples, self.recovery_pool, augmentation.max_prefix if augmentation else 0)
        batch = self.config.batch_size
        rows = max(batch, math.ceil(augmentation.ratio * batch)) if augmentation else batch
        per_token = (
            activation_bytes_per_token(shape, dtype_bytes, self.config.gradient_checkpointing, seq)
            if shape is not None
            else 0.0
        )
        micro = micro_batch_rows(setting, rows, per_token, seq, budget)
        return {
            "micro_batch_size": micro,
            "sized_from_memory": not isinstance(setting, int) and micro is not None,
            "bytes_per_row": per_token * seq,
            "seq_len": seq,
            "budget_bytes": budget,
        }

    def _batches_per_epoch(self) -> int:
        return math.ceil(len(self.examples) / self.config.batch_size)

    def total_steps(self) -> int:
        return min(self.config.max_steps, self.config.epochs * self._batches_per_epoch())

    def schedule(self) -> list[list[int]]:
        """Every step's tenant rows, fixed by the seed: length-grouped batches, reshuffled each epoch."""
        rng = random.Random(self.config.seed)
        lengths = [len(e.input_ids) for e in self.examples]
        steps: list[list[int]] = []
        while len(steps) < self.total_steps():
            steps += length_grouped_batches(lengths, self.config.batch_size, rng)
        return steps[: self.total_steps()]

    @property
    def adapted(self) -> PeftModel:
        """The model as a PEFT model: the reference pass (adapter off) and checkpoints (adapter only) need one."""
        if not isinstance(self.model, PeftModel):
            raise TypeError("the constrained objective and checkpoints need a LoRA model (add_lora)")
        return self.model

    @torch.no_grad()
    def _reference_logps(self, examples: Sequence[EncodedChat]) -> list[list[float]]:
        """The aligned model's log-prob of every token, with the adapter disabled (no second weight copy)."""
        was_training = self.model.training
        self.model.eval()
        out: list[list[float]] = []
        size = self.micro_batch_size or self.config.batch_size  # chunked as training is: it fits where training does
        with self.adapted.disable_adapter():
            for begin in range(0, len(examples), size):
                chunk = examples[begin : begin + size]
                batch = collate(chunk, None, self.pad_id).to(self.device)
                with self.autocast:
                    logits = self.model(
                        input_ids=batch.input_ids, attention_mask=batch.attention, use_cache=False
                    ).logits
                logps = target_logprobs(logits, batch.input_ids).cpu()
                out += [[0.0, *logps[row, : len(e.input_ids) - 1].tolist()] for row, e in enumerate(chunk)]
        self.model.train(was_training)
        return out

    def compute_reference(self) -> float:
        """One no-grad pass over the tenant data before training; reused every epoch."""
        start = time.perf_counter()
        self.references = self._reference_logps(self.examples)
        return time.perf_counter() - start

    def _loss(self, batch: Batch, denominator: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with self.autocast:
            logits = self.model(input_ids=batch.input_ids, attention_mask=batch.attention, use_cache=False).logits
        logps = target_logprobs(logits, batch.input_ids)  # fp32 even under bf16 autocast
        mask = batch.supervised[:, 1:]
        if self.config.objective == "sft":
            return cross_entropy_loss(logps, mask, denominator)
        betas = beta_for_positions(batch.positions[:, 1:], self.config.beta_first, self.config.beta_rest)
        augmentation = self.config.augmentation
        if augmentation is None or augmentation.loss == "constrained":
            return token_constrained_loss(logps, batch.reference[:, 1:], betas, mask, denominator)
        recovery = mask & batch.recovery[:, None]
        constrained, stats = token_constrained_loss(logps, batch.reference[:, 1:], betas, mask & ~recovery, denominator)
        return constrained + cross_entropy_loss(logps, recovery, denominator)[0], stats

    def _rows(self, step: int, indices: list[int]) -> tuple[list[EncodedChat], list[list[float]] | None]:
        """The step's rows and their reference log-probs; recovery examples are drawn from a per-step RNG."""
        rows = [self.examples[i] for i in indices]
        refs = [self.references[i] for i in indices] if self.references is not None else None
        if self.recovery_pool and self.config.augmentation is not None:
            extra = draw(
                random.Random(f"{self.config.seed}/{step}"), self.recovery_pool, len(rows), self.config.augmentation
            )
            rows += extra
            if refs is not None:
                needs_ref = self.config.augmentation.loss == "constrained"
                refs += (
                    self._reference_logps(extra) if needs_ref and extra else [[0.0] * len(e.input_ids) for e in extra]
                )
        return rows, refs

    def _step(
        self, step: int, indices: list[int], optimizer: torch.optim.Optimizer, params: list[nn.Parameter]
    ) -> tuple[float, dict[str, float], int, int]:
        rows, refs = self._rows(step, indices)
        supervised = sum(e.n_supervised for e in rows)
        weight = self.config.augmentation.weight if self.config.augmentation is not None else None
        divisors = loss_divisors(rows, weight)
        optimizer.zero_grad(set_to_none=True)
        total, n_tokens = 0.0, 0
        weighted: dict[str, float] = {}
        for chunk in micro_batches([bool(e.meta.get("recovery")) for e in rows], self.micro_batch_size):
            chunk_refs = refs[chunk.start : chunk.stop] if refs is not None else None
            batch = collate(rows[chunk.start : chunk.stop], chunk_refs, self.pad_id).to(self.device)
            divisor = torch.tensor(divisors[chunk.start : chunk.stop], device=self.device)[:, None]
            loss, chunk_stats = self._loss(batch, divisor)
            loss.backward()
            total += float(loss.detach())
            n_tokens += batch.n_tokens
            share = sum(e.n_supervised for e in rows[chunk.start : chunk.stop])
            for key, value in chunk_stats.items():
                weighted[key] = weighted.get(key, 0.0) + value * share
        torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        optimizer.step()
        return total, {k: v / max(supervised, 1) for k, v in weighted.items()}, n_tokens, supervised

    def _save_checkpoint(
        self, step: int, tokens: int, optimizer: torch.optim.Optimizer, scheduler: Any, metrics: dict[str, float]
    ) -> None:
        assert self.checkpoint_dir is not None
        final = self.checkpoint_dir / f"step-{step:06d}"
        staging = self.checkpoint_dir / f".staging-{step:06d}"
        shutil.rmtree(staging, ignore_errors=True)
        self.adapted.save_pretrained(str(staging))
        torch.save(
            {
                "step": step,
                "trained_tokens": tokens,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "config": asdict(self.config),
                "metrics": metrics,
            },
            staging / STATE_FILE,
        )
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        if self.on_checkpoint is not None:
            self.on_checkpoint(step, final, metrics)

    def _load_checkpoint(self, path: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> tuple[int, int]:
        """Restores adapter, optimizer, scheduler and RNG; returns (step, tokens trained so far)."""
        state = torch.load(path / STATE_FILE, weights_only=True)
        if isinstance(self.model, PeftModel):
            set_peft_model_state_dict(self.model, load_peft_weights(str(path), device=str(self.device)))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]), int(state["trained_tokens"])

    def train(self, resume_from: Path | None = None) -> TrainResult:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        plan = self.memory_plan
        if plan["sized_from_memory"]:
            self.on_event(
                f"Micro-batches of {plan['micro_batch_size']} rows, sized from memory: about "
                f"{plan['bytes_per_row'] / 2**20:,.0f} MiB of activations per row of {plan['seq_len']} "
                f"tokens, {plan['budget_bytes'] / 2**30:,.1f} GiB planned.",
                plan,
            )
        reference_seconds = self.compute_reference() if cfg.objective == "constrained" else 0.0
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, 0.999), weight_decay=0.0)
        total = self.total_steps()
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.warmup_steps, total))
        first, tokens = self._load_checkpoint(resume_from, optimizer, scheduler) if resume_from else (0, 0)
        if first:
            self.on_event(f"Resumed from the checkpoint at step {first}.", {"step": first, "total_steps": total})
        self.model.train()
        schedule = self.schedule()
        step, loss_value, stopped = first, float("nan"), False
        start = window_start = time.perf_counter()
        window_tokens = 0
        while step < total:
            if self.should_stop():
                stopped = True
                break
            loss_value, stats, n_tokens, supervised = self._step(step, schedule[step], optimizer, params)
            scheduler.step()
            step += 1
            tokens += supervised
            window_tokens += n_tokens
            metrics = {
                "step": step,
                "total_steps": total,
                "train_loss": loss_value,
                "learning_rate": float(scheduler.get_last_lr()[0]),
                **stats,
            }
            if step % cfg.log_every == 0 or step == total:
                now = time.perf_counter()
                self.on_event(
                    f"Step {step}/{total}: training loss={loss_value:.4f}",
                    {**metrics, "tokens_per_s": window_tokens / max(now - window_start, 1e-9)},
                )
                window_tokens, window_start = 0, now
            if (
                self.checkpoint_dir is not None
                and cfg.checkpoint_every
                and step % cfg.checkpoint_every == 0
                and step < total
            ):
                self._save_checkpoint(step, tokens, optimizer, scheduler, metrics)
        return TrainResult(
            step - first, tokens, loss_value, stopped, reference_seconds, time.perf_counter() - start, first
        )
