"""The training and gate paths at a real model's size: a random-initialised ~1.1B Llama, LoRA, bf16, on a GPU.

    python -m bench.gpu_scale [--steps 20] [--batch 8] [--seq 512] [--out PATH]

Nothing can be downloaded, so the model is built from a config (TinyLlama-1.1B's shape: hidden 2048, 22 layers,
32 heads, 4 key-value heads, FFN 5632, vocabulary 32,000) with random weights in bf16, and the prompts are random
token ids: what is measured is the cost of our code paths, not what the model says. Per objective (plain SFT,
the guarded constrained loss, and the guarded loss with recovery examples mixed in at the default ratio), the
trainer that jobs use (`GuardedTrainer`, LoRA on every linear layer as the policy attaches it) runs `--steps`
steps after its reference pass; reported: tokens/s over the timed steps, MFU (6 x parameters x tokens/s over
the GPU's dense bf16 peak, the usual convention; LoRA skips the frozen weights' gradients, so the work done is
nearer 4 x), peak GPU memory, and the reference pass's seconds. Then the gate's generation (`generate`, greedy,
32 new tokens, batch 64, the gate's defaults) on the merged model: new tokens per second. Needs CUDA; on a CPU
it runs a 2-layer model so the path can be tried. Writes var/bench/gpu_scale.json.
"""

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from bench.train_overhead import mfu
from schemas.policy import LoraPolicy
from workers.chat_data import EncodedChat
from workers.model_loading import add_lora
from workers.training.augmentation import AugmentationConfig, EncodedTriplet
from workers.training.recipe import GuardedTrainer, TrainConfig

OUT = Path("var/bench/gpu_scale.json")
VOCAB = 32_000
PAD = 0


def model_config(small: bool) -> LlamaConfig:
    if small:
        return LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=256,
            intermediate_size=688,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
        )
    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=False,
    )


def random_chats(n: int, seq: int, rng: random.Random) -> list[EncodedChat]:
    """Chats of `seq` tokens: a prompt of a quarter, the answer supervised after it."""
    prompt = seq // 4
    return [
        EncodedChat(
            input_ids=[rng.randrange(1, VOCAB) for _ in range(seq)],
            supervised=[False] * prompt + [True] * (seq - prompt),
            positions=[0] * prompt + list(range(1, seq - prompt + 1)),
        )
        for _ in range(n)
    ]


def random_pool(n: int, rng: random.Random) -> list[EncodedTriplet]:
    return [
        EncodedTriplet(
            [rng.randrange(1, VOCAB) for _ in range(48)],
            [rng.randrange(1, VOCAB) for _ in range(64)],
            [rng.randrange(1, VOCAB) for _ in range(24)],
            False,
        )
        for _ in range(n)
    ]


def train(
    base: LlamaForCausalLM, variant: str, steps: int, batch: int, seq: int, device: torch.device
) -> dict[str, Any]:
    rng = random.Random(0)
    examples = random_chats(steps * batch, seq, rng)
    augmentation = (
        AugmentationConfig(ratio=0.25, p_plain=0.5, max_prefix=100, loss="cross_entropy", weight=None)
        if variant == "guarded+recovery"
        else None
    )
    config = TrainConfig(
        epochs=1,
        batch_size=batch,
        learning_rate=1e-4,
        warmup_steps=2,
        max_steps=steps,
        objective="sft" if variant == "sft" else "constrained",
        augmentation=augmentation,
    )
    model = add_lora(base, LoraPolicy())
    trainer = GuardedTrainer(model, examples, config, PAD, device, recovery_pool=random_pool(64, rng))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    result = trainer.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    tokens = sum(len(e.input_ids) for e in examples[: result.steps * batch])
    tokens_per_s = tokens / result.train_seconds
    params = sum(p.numel() for p in base.parameters())
    figures = {
        "variant": variant,
        "steps": result.steps,
        "tokens_per_s": tokens_per_s,
        "mfu": mfu(params, tokens_per_s, device),
        "reference_pass_s": result.reference_seconds,
        "train_s": result.train_seconds,
        "final_loss": result.final_loss,
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }
    model.unload()
    return figures


@torch.no_grad()
def generation(
    base: LlamaForCausalLM, device: torch.device, prompts: int = 128, batch: int = 64, new_tokens: int = 32
) -> dict[str, Any]:
    """Greedy generation the way the gate batches it: left-padded prompts of 40-80 tokens."""
    rng = random.Random(1)
    base.eval()
    produced, started = 0, time.perf_counter()
    for begin in range(0, prompts, batch):
        lengths = [rng.randrange(40, 81) for _ in range(min(batch, prompts - begin))]
        width = max(lengths)
        ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for row, length in enumerate(lengths):
            ids[row, width - length :] = torch.tensor([rng.randrange(1, VOCAB) for _ in range(length)])
            attention[row, width - length :] = 1
        out = base.generate(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=PAD,
        )
        produced += (out.shape[1] - width) * len(lengths)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "prompts": prompts,
        "batch": batch,
        "new_tokens": new_tokens,
        "new_tokens_per_s": produced / (time.perf_counter() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    base = LlamaForCausalLM(model_config(small=device.type != "cuda")).to(device=device, dtype=dtype)
    params = sum(p.numel() for p in base.parameters())
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "parameters": params,
        "dtype": str(dtype),
        "batch": args.batch,
        "seq": args.seq,
        "training": [],
        "torch": torch.__version__,
    }
    print(f"{report['device']}: random-init Llama, {params / 1e9:.2f}B parameters, {dtype}", flush=True)
    generation(base, device, prompts=8, batch=8, new_tokens=4)  # warm-up: kernels, allocator
    train(base, "guarded", 2, args.batch, args.seq, device)
    for variant in ("sft", "guarded", "guarded+recovery"):
        figures = train(base, variant, args.steps, args.batch, args.seq, device)
        report["training"].append(figures)
        print(json.dumps(figures), flush=True)
    sft = report["training"][0]["tokens_per_s"]
    for figures in report["training"]:
        figures["tokens_per_s_vs_sft"] = figures["tokens_per_s"] / sft
    report["generation"] = generation(base, device)
    print(json.dumps(report["generation"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
