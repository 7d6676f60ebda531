"""The release gate's cost: batched generation against a per-prompt loop, and the gate's wall time as a share
of training time on the demo job.

    python -m bench.gate [--loop-prompts 44]

1. Generation throughput on the tiny model: the 132 held-out harmful prompts, greedy, the gate's max_new_tokens,
   batched with left padding and the KV cache (the gate's batch size) against one prompt at a time (a slice of
   `--loop-prompts` prompts, to keep the loop's run short). Target: batched_over_loop >= 5.
2. The demo job (benign colour task, the policy's guarded objective at default strength) trained in-process,
   then the full gate run on it as the worker runs it: cold (base figures computed) and warm (base figures from
   the cache, what every job after the first on a model pays). Target: gate_share_of_training <= 0.25 (warm).
Writes var/bench/gate.json. Timings depend on the machine and its load; run on an idle one.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from schemas.policy import Policy
from workers.evaluation.generation import generate
from workers.evaluation.job_gate import served_candidate
from workers.evaluation.judges.factory import build_judge
from workers.evaluation.runner import BaseFigureCache, assess, gate_inputs, run_model
from workers.evaluation.suites import prompt_ids
from workers.model_loading import load_base
from workers.tiny import datasets
from workers.tiny.build import MODEL_ID
from workers.training.finetune import config_at_strength, encode_rows, finetune_lora, recovery_pool

OUT = Path("var/bench/gate.json")
MODEL_DIR = Path("var/models") / MODEL_ID
CPU = torch.device("cpu")


def throughput(policy: Policy, loop_prompts: int) -> dict[str, float]:
    model, tokenizer = load_base(MODEL_DIR, CPU)
    ids = [prompt_ids(tokenizer, r) for r in datasets.read("eval_harmful.jsonl")]
    generate(model, tokenizer, ids[:8], 4)  # warm-up
    started = time.perf_counter()
    generate(model, tokenizer, ids, policy.gate.max_new_tokens, batch_size=policy.gate.batch_size)
    batched = len(ids) / (time.perf_counter() - started)
    sample = ids[:: max(1, len(ids) // loop_prompts)][:loop_prompts]
    started = time.perf_counter()
    generate(model, tokenizer, sample, policy.gate.max_new_tokens, batch_size=1)
    loop = len(sample) / (time.perf_counter() - started)
    return {
        "batched_prompts_per_s": batched,
        "loop_prompts_per_s": loop,
        "batched_over_loop": batched / loop,
        "prompts": len(ids),
        "loop_prompts": len(sample),
    }


def demo_job(policy: Policy, seed: int = 0) -> dict[str, Any]:
    """Train the demo's benign job, then time the gate on it with an empty and with a filled base cache."""
    model, tokenizer = load_base(MODEL_DIR, CPU)
    rows = datasets.read("benign_colors.jsonl")
    examples = encode_rows(tokenizer, rows, policy.training.max_seq_len)
    config = config_at_strength(policy, "default", seed)
    pool = recovery_pool(tokenizer, policy.training.augmentation, policy.training.max_seq_len, rows)
    started = time.perf_counter()
    tuned = finetune_lora(model, tokenizer, examples, config, policy.training.lora, CPU, pool=pool)
    training_s = time.perf_counter() - started
    gate = policy.gate
    judge = build_judge(gate.judge)
    validation = datasets.read("benign_colors_validation.jsonl")
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gate_bench_") as scratch:
        for label in ("cold", "warm"):
            started = time.perf_counter()
            inputs = gate_inputs(gate, validation, "validation_file")
            cache = BaseFigureCache(Path(scratch), MODEL_ID, MODEL_DIR)
            with tuned.model.disable_adapter():
                base = run_model(tuned.model, tokenizer, inputs, gate, judge, cache)
            candidate = run_model(served_candidate(tuned.model, keep=True)[0], tokenizer, inputs, gate, judge)
            outcome = assess(base, candidate, inputs, gate)
            timings[label] = time.perf_counter() - started
    generated = sum(len(s.records) * (s.decoding.samples if not s.decoding.greedy else 1) for s in inputs.suites)
    return {
        "training_s": training_s,
        "gate_cold_s": timings["cold"],
        "gate_warm_s": timings["warm"],
        "gate_share_of_training": timings["warm"] / training_s,
        "gate_share_of_training_cold": timings["cold"] / training_s,
        "completions_per_model": generated + len(validation),
        "suites": len(inputs.suites),
        "released": outcome.decision.release,
        "reasons": outcome.decision.reasons,
        "training_steps": tuned.result.steps,
    }


def run_benchmark(loop_prompts: int = 44, out: Path = OUT, with_demo: bool = True) -> dict[str, Any]:
    torch.manual_seed(0)
    policy = Policy().for_model(MODEL_ID)
    report: dict[str, Any] = {"threads": torch.get_num_threads(), **throughput(policy, loop_prompts)}
    if with_demo:
        report |= demo_job(policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop-prompts", type=int, default=44)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    r = run_benchmark(args.loop_prompts, args.out)
    print(
        f"generation, {r['prompts']} prompts: batched {r['batched_prompts_per_s']:.1f} prompts/s, "
        f"per-prompt loop {r['loop_prompts_per_s']:.1f} prompts/s -> {r['batched_over_loop']:.1f}x (target >= 5x)"
    )
    print(
        f"demo job: training {r['training_s']:.1f} s ({r['training_steps']} steps); gate {r['gate_warm_s']:.1f} s "
        f"with cached base figures ({r['gate_share_of_training']:.0%} of training, target <= 25%), "
        f"{r['gate_cold_s']:.1f} s cold ({r['gate_share_of_training_cold']:.0%}); "
        f"{'released' if r['released'] else 'blocked: ' + '; '.join(r['reasons'])}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
