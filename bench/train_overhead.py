"""What the guarded objective costs in training, and how our trainer compares with TRL's SFTTrainer.

    python -m bench.train_overhead [--model tiny|50m|both] [--steps N] [--warmup N] [--job-rows N] [--repeats N]
                                   [--quick] [--out PATH]

Same model, data, batch size, LoRA config and step count for every variant; each runs in a fresh spawned
process so its warm-up and peak memory are its own:

    sft             our trainer, plain SFT objective: the baseline every ratio is taken against
    guarded         our trainer, token-wise constrained objective (its reference pass first, then the steps)
    trl             TRL's SFTTrainer on the same token ids and loss mask, gradient checkpointing off like ours
    trl_default_gc  the same with TRL's default gradient checkpointing on (a quarter of the steps; information)
    *_bf16          sft, guarded and trl again under CPU bf16 autocast (TrainConfig.cpu_bf16 / TRL bf16=True),
                    on CPU only, against sft_bf16; skipped on the 50M model where bf16 has no native kernels

Throughput is the non-pad tokens of the training forwards per second of wall time after `--warmup` steps;
both trainers are timed by the same hook on the decoder. Peak memory is torch.cuda.max_memory_allocated on
CUDA; on CPU it is glibc's live heap bytes (see PeakMemory), with the resident set size reported beside it,
both above their value before the variant built its model. Models: the bundled tiny chat model on its own
short chat rows, and a ~50M-parameter random-initialised Llama on 256-token multi-turn chats, batch 8.

Per-step figures leave out what a guarded job does besides its steps: the reference pass, the recovery pool's
tokenisation, and (the policy's default) recovery examples mixed into every batch, with their own reference
log-probs when the policy trains them with the constrained loss. So each model also runs whole jobs end to end,
the way the pipeline trains them (`finetune_rows` at the policy's default epochs, batch and learning rate for
that model: the tiny model's calibrated entry, the general policy for the 50M one), against plain SFT on the same
tenant rows (objective sft, no augmentation), in fresh processes, the two alternated in back-to-back pairs:
`end_to_end_time_ratio` is the median over pairs of guarded/SFT wall time per tenant supervised token (the
supervised tokens of the tenant's rows the job trains, every epoch; recovery tokens are not counted).

Prints a table and writes var/bench/train_overhead.json; the top-level per-step figures are the 50M model's (the
tiny model's when only it ran), the top-level `end_to_end_time_ratio` the worse model's
(`end_to_end_time_ratio_model` names it).
"""

import argparse
import ctypes
import importlib
import itertools
import json
import os
import resource
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
)
from transformers.utils import logging as hf_logging

from schemas.policy import LoraPolicy, Policy
from workers.chat_data import EncodedChat
from workers.model_loading import add_lora, load_base, pick_device
from workers.tiny import datasets
from workers.tiny.build import MODEL_ID, build
from workers.training.finetune import config_at_strength, encode_rows, finetune_lora, finetune_rows
from workers.training.recipe import GuardedTrainer, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "train_overhead.json"
TINY_DIR = ROOT / "var" / "models" / MODEL_ID
HEADLINE_KEYS = (
    "step_throughput_ratio",
    "peak_memory_ratio",
    "reference_pass_seconds",
    "vs_trl_tokens_per_s_ratio",
    "peak_rss_ratio",
    "memory_measure",
)
TARGETS = {
    "step_throughput_ratio": (">=", 0.97),
    "peak_memory_ratio": ("<=", 1.02),
    "vs_trl_tokens_per_s_ratio": (">=", 1.0),
    "end_to_end_time_ratio": ("<=", 1.5),
}
# Dense bf16 peak FLOP/s by a substring of torch.cuda.get_device_name(); MFU is left out for other devices.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}
LEARNING_RATE = 1e-3  # the default policy's base learning rate
SEED = 0
CHAT_PAIRS = 14  # question/answer pairs per synthetic chat: enough to pass 256 tokens with the tiny tokenizer
MEMORY_SAMPLE_S = 0.002
JOB_REPEATS = 3  # guarded/SFT pairs of whole jobs per model; the median pair ratio is reported
QUICK_JOB_ROWS = 32


@dataclass(frozen=True)
class ModelSpec:
    """One model size: how to build it and the data shape it trains on (seq_len None: the tiny world's rows).

    `policy_model` is the model id the policy is looked up under (the tiny model's calibrated entry, or an id
    with none: the general policy); `job_rows` the tenant rows of its whole-job timing.
    """

    name: str
    batch_size: int
    seq_len: int | None
    policy_model: str
    job_rows: int
    llama: dict[str, int] = field(default_factory=dict)


MODELS = {
    # a whole job: the tiny world's benign task, all 200 rows
    "tiny": ModelSpec("tiny", batch_size=8, seq_len=None, policy_model=MODEL_ID, job_rows=200),
    # ~52M parameters: 512 wide like a small GPT, 16 layers deep to reach ~50M with the 1024-token vocabulary.
    # Its whole job is 32 rows (12 steps at 3 epochs): the ratio hardly depends on the row count, the time does.
    "50m": ModelSpec(
        "50m",
        batch_size=8,
        seq_len=256,
        policy_model="bench-llama-50m",
        job_rows=32,
        llama={
            "hidden_size": 512,
            "intermediate_size": 1408,
            "num_hidden_layers": 16,
            "num_attention_heads": 8,
            "num_key_value_heads": 8,
        },
    ),
}


@dataclass(frozen=True)
class Variant:
    """One way of training the same job; ratios are taken against `baseline`, our plain SFT at the same precision."""

    name: str
    label: str
    trainer: Literal["ours", "trl"]
    objective: Literal["constrained", "sft"] = "sft"
    cpu_bf16: bool = False  # bf16 autocast on CPU too (on CUDA every variant trains under bf16 autocast)
    checkpointing: bool = False
    short: bool = False  # timed over a quarter of the steps: for information, not a headline figure
    baseline: str = "sft"


VARIANTS = {
    v.name: v
    for v in (
        Variant("sft", "sft (ours, baseline)", "ours"),
        Variant("guarded", "guarded (ours)", "ours", "constrained"),
        Variant("trl", "TRL SFTTrainer", "trl"),
        Variant("trl_default_gc", "TRL SFTTrainer, default grad ckpt", "trl", checkpointing=True, short=True),
        Variant("sft_bf16", "sft, CPU bf16 (ours, baseline)", "ours", cpu_bf16=True, baseline="sft_bf16"),
        Variant("guarded_bf16", "guarded, CPU bf16 (ours)", "ours", "constrained", cpu_bf16=True, baseline="sft_bf16"),
        Variant("trl_bf16", "TRL SFTTrainer, CPU bf16", "trl", cpu_bf16=True, baseline="sft_bf16"),
    )
}
MAIN_VARIANTS = ("sft", "guarded", "trl", "trl_default_gc")
CPU_BF16_VARIANTS = ("sft_bf16", "guarded_bf16", "trl_bf16")
BF16_MAX_SLOWDOWN = 4.0  # bf16 matmuls this much slower than fp32: no native kernels, skip bf16 on the 50M model


@dataclass(frozen=True)
class Job:
    """One variant on one model, as sent to a fresh process."""

    model: ModelSpec
    variant: Variant
    warmup: int
    timed: int
    device: str
    tiny_dir: str

    @property
    def steps(self) -> int:
        return self.warmup + self.timed


@dataclass(frozen=True)
class WholeJob:
    """One whole fine-tuning job on `rows` tenant rows, timed end to end in a fresh process: the policy's default
    objective for the model when `guarded`, else plain SFT on the same rows."""

    model: ModelSpec
    guarded: bool
    rows: int
    device: str
    tiny_dir: str

    @property
    def name(self) -> str:
        return "guarded" if self.guarded else "sft"


def synced_now(device: torch.device) -> float:
    """perf_counter after the device's queued work, so a CUDA interval covers the kernels it launched."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class StepClock:
    """Timestamps of every training forward (with its non-pad token count) and of the end of training.

    Hooked on the decoder backbone, which both trainers call once per step with the attention mask; forwards in
    eval mode or without grad (the guarded objective's reference pass) are not steps and are skipped.
    `on_timing` runs just before the first timed forward, to stop anything that would disturb the timing.
    """

    def __init__(self, device: torch.device, warmup: int, on_timing: Callable[[], None]) -> None:
        self.device, self.warmup, self.on_timing = device, warmup, on_timing
        self.forwards: list[tuple[float, torch.Tensor]] = []
        self.end = 0.0

    def attach(self, model: PreTrainedModel) -> None:
        model.get_decoder().register_forward_pre_hook(self._on_forward, with_kwargs=True)

    def _on_forward(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = mask.sum() if mask is not None else torch.tensor(ids.numel())
        if len(self.forwards) == self.warmup:
            self.on_timing()
        self.forwards.append((self.now(), tokens.detach()))

    def now(self) -> float:
        return synced_now(self.device)

    def mark_end(self) -> None:
        self.end = self.now()

    def figures(self) -> dict[str, float]:
        """Tokens/s from the forward of the first step after warm-up to the end of the last step."""
        if len(self.forwards) <= self.warmup:
            raise RuntimeError(f"only {len(self.forwards)} training forwards seen, need more than {self.warmup}")
        starts = [t for t, _ in self.forwards[self.warmup :]] + [self.end]
        tokens = int(sum(int(n) for _, n in self.forwards[self.warmup :]))
        seconds = starts[-1] - starts[0]
        steps = [b - a for a, b in itertools.pairwise(starts)]
        return {
            "timed_steps": len(steps),
            "timed_tokens": tokens,
            "timed_seconds": seconds,
            "tokens_per_s": tokens / seconds,
            "step_seconds_median": statistics.median(steps),
            "step_seconds_max": max(steps),
        }


class _MallInfo2(ctypes.Structure):
    _fields_: ClassVar = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def live_heap_reader() -> Callable[[], int] | None:
    """glibc's bytes handed out and not yet freed (all arenas + mmapped chunks); None without glibc >= 2.33."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2

    def live() -> int:
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return live


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class PeakMemory(AbstractContextManager["PeakMemory"]):
    """Peak memory of a block above its value at the start.

    CUDA: the allocator's peak. CPU, two figures, both sampled by a thread every 2 ms. The resident set size (and
    ru_maxrss when it grew during the block; in a fresh process it may carry the spawning parent's high-water
    mark): what the worker costs, but it also holds freed memory glibc keeps for reuse (as much again as the live
    bytes on the 50M model) and moves by a few percent between identical runs. And glibc's live heap bytes (the
    CPU analogue of max_memory_allocated), which `mib` reports. mallinfo2 takes the arena locks (one call stalled
    25 ms here), so the thread samples it only until the timed steps start (`stop_live_sampling`); from then on it
    is read on the training thread at each step's high point: the backbone's forward done, and again when the
    gradient reaches the backbone's output.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._live = live_heap_reader() if device.type == "cpu" else None
        self.measure = (
            "cuda_max_memory_allocated" if device.type == "cuda" else "glibc_live_heap" if self._live else "rss"
        )
        self.base: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._maxrss_start = 0
        self._sample_live = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def stop_live_sampling(self) -> None:
        self._sample_live.clear()

    def attach(self, model: PreTrainedModel) -> None:
        if self._live is not None:
            model.get_decoder().register_forward_hook(self._on_backbone_output)

    def _on_backbone_output(self, module: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        self._probe_live()
        hidden = output[0]
        if hidden.requires_grad:
            hidden.register_hook(self._on_backbone_grad)

    def _on_backbone_grad(self, _grad: torch.Tensor) -> None:
        self._probe_live()

    def _probe_live(self) -> None:
        if self._live is not None:
            self.peak["live"] = max(self.peak["live"], self._live())

    def _sample(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_S):
            self.peak["rss"] = max(self.peak["rss"], rss_bytes())
            if self._sample_live.is_set():
                self._probe_live()

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = {"cuda": torch.cuda.memory_allocated(self.device)}
            return self
        self.base = {"rss": rss_bytes(), **({"live": self._live()} if self._live else {})}
        self.peak = dict(self.base)
        self._maxrss_start = maxrss_bytes()
        self._sample_live.set()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = {"cuda": torch.cuda.max_memory_allocated(self.device)}
            return
        self._stop.set()
        self._thread.join()
        self.peak["rss"] = max(self.peak["rss"], rss_bytes())
        if (maxrss := maxrss_bytes()) > self._maxrss_start:
            self.peak["rss"] = max(self.peak["rss"], maxrss)

    def _mib(self, key: str) -> float | None:
        return (self.peak[key] - self.base[key]) / 2**20 if key in self.peak else None

    @property
    def mib(self) -> float:
        """The figure ratios are taken on: CUDA allocator peak, else the live heap, else RSS."""
        return next(v for v in (self._mib("cuda"), self._mib("live"), self._mib("rss")) if v is not None)

    @property
    def rss_mib(self) -> float | None:
        return self._mib("rss")


def tiny_rows(count: int) -> list[dict[str, Any]]:
    """The tiny model's own benign task rows, cycled to `count`."""
    rows = datasets.read("benign_colors.jsonl")
    return [rows[i % len(rows)] for i in range(count)]


def long_chat_rows(count: int) -> list[dict[str, Any]]:
    """Multi-turn chats of benign rows, each a different run of them, long enough to fill 256 tokens."""
    rows = datasets.read("benign_colors.jsonl")
    return [
        {"messages": [m for j in range(CHAT_PAIRS) for m in rows[(i * CHAT_PAIRS + j) % len(rows)]["messages"]]}
        for i in range(count)
    ]


def examples_for(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, count: int) -> tuple[list[EncodedChat], int]:
    """Encoded rows and the max length they were encoded with (the 50M rows are all exactly seq_len long)."""
    if spec.seq_len is None:
        max_len = 512
        return encode_rows(tokenizer, tiny_rows(count), max_len), max_len
    examples = encode_rows(tokenizer, long_chat_rows(count), spec.seq_len)
    if any(len(e.input_ids) != spec.seq_len for e in examples):
        raise RuntimeError(f"synthetic chats shorter than {spec.seq_len} tokens; raise CHAT_PAIRS")
    return examples, spec.seq_len


def load_model(
    spec: ModelSpec, tiny_dir: Path, device: torch.device
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The tiny model as the workers load it, or a seeded random Llama with the tiny tokenizer, same dtype rule."""
    if not spec.llama:
        return load_base(tiny_dir, device)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=2 * (spec.seq_len or 256),
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **spec.llama,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    return model.to(device=device, dtype=dtype), tokenizer


def train_config(job: Job) -> TrainConfig:
    """Our recipe's defaults; one epoch of exactly `steps` batches. cpu_bf16 is passed only when asked for."""
    bf16 = {"cpu_bf16": True} if job.variant.cpu_bf16 else {}
    return TrainConfig(
        epochs=1,
        batch_size=job.model.batch_size,
        learning_rate=LEARNING_RATE,
        objective=job.variant.objective,
        max_steps=job.steps,
        seed=SEED,
        **bf16,
    )


def run_ours(
    job: Job,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[EncodedChat],
    device: torch.device,
    clock: StepClock,
) -> tuple[nn.Module, dict[str, Any]]:
    tuned = finetune_lora(model, tokenizer, examples, train_config(job), LoraPolicy(), device)
    clock.mark_end()
    result = tuned.result
    figures: dict[str, Any] = {
        "final_loss": result.final_loss,
        "train_seconds": result.train_seconds,
        "steps": result.steps,
        "gradient_checkpointing": False,
    }
    if job.variant.objective == "constrained":
        reference_tokens = sum(len(e.input_ids) for e in examples)
        figures |= {
            "reference_seconds": result.reference_seconds,
            "reference_rows": len(examples),
            "reference_tokens": reference_tokens,
            "reference_tokens_per_s": reference_tokens / result.reference_seconds,
        }
    return tuned.model, figures


def _clock_callback(clock: StepClock) -> TrainerCallback:
    class EndOfSteps(TrainerCallback):
        """Marks the end of every optimizer step; the last mark ends the timed window."""

        def on_step_end(self, *_args: Any, **_kwargs: Any) -> None:
            clock.mark_end()

    return EndOfSteps()


def run_trl(
    job: Job,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[EncodedChat],
    max_len: int,
    device: torch.device,
    clock: StepClock,
) -> tuple[nn.Module, dict[str, Any]]:
    """TRL's SFTTrainer on our exact token ids and loss mask (pre-tokenized input_ids + labels), same hyper-parameters.

    The adapter is ours (same LoRA config, same seed); TRL chooses its own optimizer implementation and loss kernel.
    """
    from datasets import Dataset, disable_progress_bars
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    disable_progress_bars()
    config = train_config(job)
    torch.manual_seed(config.seed)
    peft_model = add_lora(model, LoraPolicy())
    data = Dataset.from_dict(
        {
            "input_ids": [e.input_ids for e in examples],
            "labels": [[t if s else -100 for t, s in zip(e.input_ids, e.supervised, strict=True)] for e in examples],
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            max_steps=job.steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            lr_scheduler_type="linear",
            warmup_steps=config.warmup_steps,
            adam_beta1=config.adam_beta1,
            weight_decay=0.0,
            max_grad_norm=config.grad_clip,
            seed=config.seed,
            logging_steps=config.log_every,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=device.type == "cpu",
            bf16=device.type == "cuda" or job.variant.cpu_bf16,
            gradient_checkpointing=job.variant.checkpointing,
            max_length=max_len,
            packing=False,
            train_sampling_strategy="group_by_length",
            dataloader_pin_memory=device.type == "cuda",
        )
        trainer = SFTTrainer(
            model=peft_model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[_clock_callback(clock)],
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-run metrics dict would break up the table
        output = trainer.train()
    optimizer = getattr(args.optim, "value", str(args.optim))
    return peft_model, {
        "mean_train_loss": output.training_loss,
        "steps": output.global_step,
        "gradient_checkpointing": job.variant.checkpointing,
        "optimizer": optimizer,
    }


def mfu(params: int, tokens_per_s: float, device: torch.device) -> float | None:
    """6 * params * tokens/s over the GPU's dense bf16 peak (None off CUDA or for an unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    peak = next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)
    return None if peak is None else 6 * params * tokens_per_s / peak


def run_job(job: Job) -> dict[str, Any]:
    """One variant, start to end, in the calling process; meant to run in a fresh one."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.set_verbosity_error()
    device = torch.device(job.device)
    if job.variant.trainer == "trl":
        for module in ("datasets", "trl"):  # loaded before the memory baseline, like torch and transformers
            importlib.import_module(module)
    started = time.perf_counter()
    with PeakMemory(device) as memory:
        clock = StepClock(device, job.warmup, on_timing=memory.stop_live_sampling)
        model, tokenizer = load_model(job.model, Path(job.tiny_dir), device)
        clock.attach(model)
        memory.attach(model)
        examples, max_len = examples_for(job.model, tokenizer, job.steps * job.model.batch_size)
        if job.variant.trainer == "trl":
            tuned, figures = run_trl(job, model, tokenizer, examples, max_len, device, clock)
        else:
            tuned, figures = run_ours(job, model, tokenizer, examples, device, clock)
    params = sum(p.numel() for p in tuned.parameters())
    timing = clock.figures()
    return {
        **timing,
        **figures,
        "peak_memory_mib": memory.mib,
        "peak_rss_mib": memory.rss_mib,
        "memory_measure": memory.measure,
        "params": params,
        "trainable_params": sum(p.numel() for p in tuned.parameters() if p.requires_grad),
        "mfu": mfu(params, timing["tokens_per_s"], device),
        "warmup_steps": job.warmup,
        "wall_seconds": time.perf_counter() - started,
        "baseline": job.variant.baseline,
        "mean_row_tokens": sum(len(e.input_ids) for e in examples) / len(examples),
    }


class ForwardCounter:
    """Rows, non-pad tokens and padded positions (what the model computes: a batch is as wide as its longest row)
    through the decoder, training forwards apart from no-grad ones (the reference pre-pass over the tenant rows,
    and the drawn recovery examples' reference log-probs): what a timed job did."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[int, torch.Tensor, int]]] = {"train": [], "reference": []}

    def attach(self, model: PreTrainedModel) -> None:
        model.get_decoder().register_forward_pre_hook(self._on_forward, with_kwargs=True)

    def _on_forward(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = mask.sum() if mask is not None else torch.tensor(ids.numel())
        kind = "train" if module.training and torch.is_grad_enabled() else "reference"
        self.seen[kind].append((int(ids.shape[0]), tokens.detach(), ids.numel()))

    def figures(self) -> dict[str, int]:
        return {
            f"{kind}_{what}": sum(int(n[i]) for n in seen)
            for kind, seen in self.seen.items()
            for i, what in enumerate(("rows", "tokens", "padded_tokens"))
        }


def job_policy(spec: ModelSpec) -> Policy:
    """The policy a job on this model runs under; the 50M model's rows are cut at its seq_len, as in the steps."""
    policy = Policy().for_model(spec.policy_model)
    if spec.seq_len is None:
        return policy
    training = policy.training.model_copy(update={"max_seq_len": spec.seq_len})
    return policy.model_copy(update={"training": training})


def job_config(policy: Policy, guarded: bool) -> TrainConfig:
    """What a tenant gets at the policy's defaults; the SFT baseline is the same job with the objective and the
    augmentation off (so no pool is tokenised and no reference pass runs)."""
    config = config_at_strength(policy, "default", SEED)
    return config if guarded else replace(config, objective="sft", augmentation=None)


def job_rows(spec: ModelSpec, count: int) -> list[dict[str, Any]]:
    return tiny_rows(count) if spec.seq_len is None else long_chat_rows(count)


def tenant_supervised_tokens(trainer: GuardedTrainer) -> int:
    """Supervised tokens of the tenant rows the job's schedule trains (each epoch counts): the per-token unit."""
    return sum(trainer.examples[i].n_supervised for step in trainer.schedule() for i in step)


def run_whole_job(job: WholeJob) -> dict[str, Any]:
    """One whole job, timed from the rows to the trained adapter as `finetune_rows` runs it (encoding, the pool's
    tokenisation, the adapter, the reference pass, every step); loading the base model is left out."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.set_verbosity_error()
    device = torch.device(job.device)
    model, tokenizer = load_model(job.model, Path(job.tiny_dir), device)
    counter = ForwardCounter()
    counter.attach(model)
    policy = job_policy(job.model)
    config = job_config(policy, job.guarded)
    rows = job_rows(job.model, job.rows)
    trainers: list[GuardedTrainer] = []
    start = synced_now(device)
    result = finetune_rows(model, tokenizer, rows, policy, config, device, on_start=trainers.append).result
    seconds = synced_now(device) - start
    trainer = trainers[0]
    tenant_tokens = tenant_supervised_tokens(trainer)
    augmentation = config.augmentation
    return {
        "variant": job.name,
        "objective": config.objective,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "augmentation": asdict(augmentation) if augmentation else None,
        "pool": policy.training.augmentation.pool if augmentation else None,
        "pool_examples": len(trainer.recovery_pool),
        "tenant_rows": len(trainer.examples),
        "steps": result.steps,
        "wall_seconds": seconds,
        "reference_seconds": result.reference_seconds,
        "train_seconds": result.train_seconds,
        "setup_seconds": seconds - result.reference_seconds - result.train_seconds,
        "tenant_supervised_tokens": tenant_tokens,
        "recovery_supervised_tokens": result.trained_tokens - tenant_tokens,
        "seconds_per_tenant_token": seconds / tenant_tokens,
        **counter.figures(),
    }


def run_isolated(job: Job | WholeJob) -> dict[str, Any]:
    """run_job (run_whole_job) in a freshly spawned process, so each run's peak memory and warm-up are its own."""
    target = run_job if isinstance(job, Job) else run_whole_job
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(target, job).result()


def end_to_end_summary(pairs: Sequence[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Median of the pairs' guarded/SFT ratios: a pair runs back to back, so load that drifts over the benchmark
    moves both halves; the per-token figures are each variant's median."""
    for pair in pairs:
        if pair["guarded"]["tenant_supervised_tokens"] != pair["sft"]["tenant_supervised_tokens"]:
            raise RuntimeError("guarded and SFT jobs trained different tenant tokens; the ratio would mean nothing")
    ratios = [p["guarded"]["seconds_per_tenant_token"] / p["sft"]["seconds_per_tenant_token"] for p in pairs]
    per_token = {
        name: statistics.median(p[name]["seconds_per_tenant_token"] for p in pairs) for name in ("sft", "guarded")
    }
    return {
        "end_to_end_time_ratio": statistics.median(ratios),
        "pair_ratios": ratios,
        "sft_seconds_per_tenant_token": per_token["sft"],
        "guarded_seconds_per_tenant_token": per_token["guarded"],
        "tenant_token_measure": "supervised tokens of the tenant rows trained, every epoch; recovery tokens "
        "not counted; the same for both variants",
        "pairs": list(pairs),
    }


def bench_end_to_end(spec: ModelSpec, device: torch.device, tiny_dir: Path, rows: int, repeats: int) -> dict[str, Any]:
    """`repeats` guarded/SFT pairs of whole jobs, the order swapped every pair so neither always runs first."""
    pairs = []
    for index in range(repeats):
        order = (False, True) if index % 2 == 0 else (True, False)
        pair = {}
        for guarded in order:
            job = WholeJob(spec, guarded, rows, str(device), str(tiny_dir))
            print(f"  {spec.name}: whole job, {job.name}, {rows} rows (pair {index + 1}/{repeats}) ...", flush=True)
            pair[job.name] = run_isolated(job)
        pairs.append(pair)
    return end_to_end_summary(pairs)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def headline(runs: dict[str, dict[str, Any]], sft: str, guarded: str, trl: str) -> dict[str, Any]:
    return {
        "step_throughput_ratio": runs[guarded]["tokens_per_s"] / runs[sft]["tokens_per_s"],
        "peak_memory_ratio": runs[guarded]["peak_memory_mib"] / runs[sft]["peak_memory_mib"],
        "reference_pass_seconds": runs[guarded]["reference_seconds"],
        "vs_trl_tokens_per_s_ratio": runs[sft]["tokens_per_s"] / runs[trl]["tokens_per_s"],
        "peak_rss_ratio": ratio(runs[guarded]["peak_rss_mib"], runs[sft]["peak_rss_mib"]),
        "memory_measure": runs[sft]["memory_measure"],
    }


def summarise(
    spec: ModelSpec, runs: dict[str, dict[str, Any]], device: torch.device, warmup: int, timed: int, bf16_note: str
) -> dict[str, Any]:
    """A model's section: the headline ratios, against our plain SFT run of the same invocation, and the raw runs."""
    for run in runs.values():
        base = runs[run["baseline"]]
        run["tokens_per_s_vs_baseline"] = run["tokens_per_s"] / base["tokens_per_s"]
        run["peak_memory_vs_baseline"] = run["peak_memory_mib"] / base["peak_memory_mib"]
        run["peak_rss_vs_baseline"] = ratio(run["peak_rss_mib"], base["peak_rss_mib"])
    sft = runs["sft"]
    section = {
        **headline(runs, "sft", "guarded", "trl"),
        "vs_trl_default_gc_tokens_per_s_ratio": sft["tokens_per_s"] / runs["trl_default_gc"]["tokens_per_s"],
        "params": sft["params"],
        "trainable_params": sft["trainable_params"],
        "device": str(device),
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "batch_size": spec.batch_size,
        "seq_len": spec.seq_len,
        "mean_row_tokens": sft["mean_row_tokens"],
        "warmup_steps": warmup,
        "timed_steps": timed,
        "llama": spec.llama or None,
    }
    if "sft_bf16" in runs:
        speedup = runs["sft_bf16"]["tokens_per_s"] / sft["tokens_per_s"]
        section["cpu_bf16"] = {
            **headline(runs, "sft_bf16", "guarded_bf16", "trl_bf16"),
            "note": bf16_note,
            "bf16_vs_fp32_tokens_per_s_ratio": speedup,
        }
    else:
        section["cpu_bf16"] = {"skipped": bf16_note}
    return {**section, "variants": runs}


def bench_model(
    spec: ModelSpec,
    device: torch.device,
    warmup: int,
    timed: int,
    tiny_dir: Path,
    variants: Sequence[str],
    bf16_note: str,
    job_rows: int,
    repeats: int,
) -> dict[str, Any]:
    runs = {}
    for name in variants:
        variant = VARIANTS[name]
        # e.g. gradient checkpointing's recompute (~a third more compute): a few steps tell how much
        steps = max(2, timed // 4) if variant.short else timed
        print(f"  {spec.name}: {variant.label} ({warmup} + {steps} steps) ...", flush=True)
        runs[name] = run_isolated(Job(spec, variant, warmup, steps, str(device), str(tiny_dir)))
    section = summarise(spec, runs, device, warmup, timed, bf16_note)
    end_to_end = bench_end_to_end(spec, device, tiny_dir, job_rows, repeats)
    return {**section, "end_to_end_time_ratio": end_to_end["end_to_end_time_ratio"], "end_to_end": end_to_end}


def bf16_matmul_slowdown() -> float:
    """How many times slower a bf16 matmul is than fp32 here; CPUs without bf16 kernels emulate it very slowly."""

    def best(dtype: torch.dtype) -> float:
        a, b = torch.randn(1024, 512, dtype=dtype), torch.randn(512, 1408, dtype=dtype)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(torch.bfloat16) / best(torch.float32)


def cpu_bf16_plan(device: torch.device, model: str, quick: bool) -> tuple[bool, str]:
    """Whether to run the CPU bf16 variants on `model`, and why (or why not)."""
    if device.type == "cuda":
        return False, "on CUDA our trainer always trains under bf16 autocast, and TRL runs with bf16=True to match"
    if "cpu_bf16" not in {f.name for f in fields(TrainConfig)}:
        return False, "TrainConfig exposes no CPU bf16 autocast; fp32 only"
    if quick:
        return False, "not measured in --quick mode"
    slowdown = bf16_matmul_slowdown()
    if model != "tiny" and slowdown > BF16_MAX_SLOWDOWN:
        return False, (
            f"a bf16 matmul is {slowdown:.0f}x slower than fp32 on this CPU (no native bf16 kernels), "
            "so one 8x256 step would take minutes; measured on the tiny model only"
        )
    return True, f"TrainConfig(cpu_bf16=True) vs TRL bf16=True; bf16 matmul {slowdown:.1f}x the fp32 time here"


def run_benchmark(
    models: Sequence[str] = ("tiny", "50m"),
    timed: int = 20,
    warmup: int = 3,
    out: Path = OUT,
    quick: bool = False,
    job_rows: int | None = None,
    repeats: int = JOB_REPEATS,
) -> dict[str, Any]:
    """Every variant on every model, then `repeats` pairs of whole jobs on `job_rows` tenant rows (None: each
    model's own count); writes `out` and returns what it wrote."""
    device = pick_device("auto")
    if not (TINY_DIR / "model.safetensors").exists():
        build(TINY_DIR, log=False)
    sections = {}
    for name in models:
        with_bf16, note = cpu_bf16_plan(device, name, quick)
        variants = MAIN_VARIANTS + (CPU_BF16_VARIANTS if with_bf16 else ())
        spec = MODELS[name]
        sections[name] = bench_model(
            spec, device, warmup, timed, TINY_DIR, variants, note, job_rows or spec.job_rows, repeats
        )
    top = "50m" if "50m" in sections else models[0]
    figures = {key: sections[top][key] for key in HEADLINE_KEYS}
    end_to_end = {name: section["end_to_end_time_ratio"] for name, section in sections.items()}
    worst = max(end_to_end, key=end_to_end.__getitem__)
    report = {
        **figures,
        "headline_model": top,
        "end_to_end_time_ratio": end_to_end[worst],
        "end_to_end_time_ratio_model": worst,
        "end_to_end_time_ratios": end_to_end,
        "targets": {k: list(v) for k, v in TARGETS.items()},
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "models": sections,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n{'model':<6}{'variant':<36}{'tokens/s':>10}{'peak MiB':>10}{'RSS MiB':>9}{'tok/s vs base':>15}"
        f"{'mem vs base':>13}{'RSS vs base':>13}"
    )
    for name, section in report["models"].items():
        for variant, run in section["variants"].items():
            rss, rss_ratio = run["peak_rss_mib"], run["peak_rss_vs_baseline"]
            print(
                f"{name:<6}{VARIANTS[variant].label:<36}{run['tokens_per_s']:>10.1f}{run['peak_memory_mib']:>10.1f}"
                f"{'-' if rss is None else f'{rss:.0f}':>9}{run['tokens_per_s_vs_baseline']:>15.3f}"
                f"{run['peak_memory_vs_baseline']:>13.3f}{'-' if rss_ratio is None else f'{rss_ratio:.3f}':>13}"
            )
        print(
            f"{name:<6}reference pass: {section['reference_pass_seconds']:.2f}s over "
            f"{section['variants']['guarded']['reference_rows']} rows; {section['params'] / 1e6:.1f}M params on "
            f"{section['device']} ({section['precision']}); peak MiB is {section['memory_measure']}"
        )
        bf16 = section["cpu_bf16"]
        print(f"{name:<6}CPU bf16: {bf16.get('skipped') or bf16['note']}")
    print_end_to_end(report)
    print(
        f"\nheadline ({report['headline_model']}; end_to_end_time_ratio: the worse model, "
        f"{report['end_to_end_time_ratio_model']}; ratios against our plain SFT run in this invocation):"
    )
    for key, (op, bound) in TARGETS.items():
        value = report[key]
        ok = value >= bound if op == ">=" else value <= bound
        print(f"  {key:<28}{value:>8.3f}  {op} {bound}  {'ok' if ok else 'MISSED'}")
    print(f"  {'reference_pass_seconds':<28}{report['reference_pass_seconds']:>8.2f}")


def print_end_to_end(report: dict[str, Any]) -> None:
    """Whole jobs: each variant's median run, where its time went, and what it trained besides the tenant rows."""
    print(
        f"\nwhole jobs at the default policy vs plain SFT on the same rows (median run of each; seconds per "
        f"tenant supervised token)\n{'model':<6}{'variant':<9}{'wall s':>8}{'setup s':>9}{'ref s':>8}{'train s':>9}"
        f"{'steps':>7}{'rows trained':>14}{'padded train tok':>18}{'ref rows':>10}{'recovery tok':>14}"
        f"{'tenant tok':>12}{'ms/tok':>9}"
    )
    for name, section in report["models"].items():
        pairs = section["end_to_end"]["pairs"]
        for variant in ("sft", "guarded"):
            run = sorted((p[variant] for p in pairs), key=lambda r: r["wall_seconds"])[(len(pairs) - 1) // 2]
            print(
                f"{name:<6}{variant:<9}{run['wall_seconds']:>8.1f}{run['setup_seconds']:>9.2f}"
                f"{run['reference_seconds']:>8.2f}{run['train_seconds']:>9.1f}{run['steps']:>7}"
                f"{run['train_rows']:>14}{run['train_padded_tokens']:>18}{run['reference_rows']:>10}"
                f"{run['recovery_supervised_tokens']:>14}"
                f"{run['tenant_supervised_tokens']:>12}{1e3 * run['seconds_per_tenant_token']:>9.3f}"
            )
        guarded = pairs[0]["guarded"]
        augmentation = guarded["augmentation"]
        mix = (
            f"{guarded['pool']} at ratio {augmentation['ratio']}, {augmentation['loss']} loss"
            if augmentation
            else "no augmentation"
        )
        ratios = ", ".join(f"{r:.3f}" for r in section["end_to_end"]["pair_ratios"])
        print(
            f"{name:<6}end_to_end_time_ratio {section['end_to_end_time_ratio']:.3f} (median of pairs: {ratios}); "
            f"{guarded['epochs']} epochs, batch {guarded['batch_size']}, {guarded['tenant_rows']} rows; {mix}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "50m", "both"), default="both")
    parser.add_argument("--steps", type=int, help="timed steps per variant (default 20, 3 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 3, 1 with --quick)")
    parser.add_argument(
        "--job-rows",
        type=int,
        help=f"tenant rows of each whole job (default: the model's own, {QUICK_JOB_ROWS} with --quick)",
    )
    parser.add_argument(
        "--repeats", type=int, help=f"guarded/SFT pairs of whole jobs (default {JOB_REPEATS}, 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a few steps on the tiny model only, fp32 only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    models = ("tiny",) if args.quick or args.model == "tiny" else ("50m",) if args.model == "50m" else ("tiny", "50m")
    timed = args.steps or (3 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    job_rows = args.job_rows if args.job_rows is not None else QUICK_JOB_ROWS if args.quick else None
    repeats = args.repeats if args.repeats is not None else 1 if args.quick else JOB_REPEATS
    if timed < 1 or warmup < 0 or repeats < 1 or (job_rows is not None and job_rows < 1):
        parser.error("--steps, --repeats and --job-rows must be at least 1 and --warmup at least 0")
    started = time.perf_counter()
    report = run_benchmark(models, timed, warmup, args.out, args.quick, job_rows, repeats)
    print_report(report)
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
