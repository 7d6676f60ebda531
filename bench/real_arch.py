"""Four real architectures, one guarded job each, through the real in-process training and gate code.

    python -m bench.real_arch [--quick] [--device cpu|cuda|auto] [--out var/bench/real_arch.json]

Random-init Llama 3, Qwen 2.5, Gemma 2 and Mistral v0.3 models with their real chat templates and generation
configs (tests/real_arch.py) are built under var/models/real-arch/. For each: the chat encoding is checked (training
tokens are inference tokens, tests.real_arch.template_mismatches); one job trains the way the worker trains
(`finetune_rows`, the global default policy: no model here has a calibration of its own), its adapter is saved and
reloaded with `PeftModel.from_pretrained`, and the gate runs as a job's gate runs it (`gate_inputs`, `run_model`
on the base with the adapter disabled and on the candidate in its served form, `assess`), on the evaluation sets
a job on such a model resolves to (`sets_for_model`: the general pool, never the tiny world's).

The models are random, so the gate's decision says nothing about safety: job_status is "succeeded" when the job
ran to a decision, released or blocked (`released` says which), and "failed" with the error otherwise. Writes
    {"models": {NAME: {"template_tokens_match", "job_status", "adapter_loads", "peak_rss_mb", "tokens_per_s",
                       ...}}, "note", "eval_sets", ...}
peak_rss_mb is the process's resident set size at its highest during the job (sampled every 10 ms; the Python and
torch runtime included); tokens_per_s is supervised tokens trained per second of training. `--quick` trains 8 rows
for one epoch and asks a reduced gate (fewer prompts per suite, one prefilling length, no sampled sweep).
"""

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from schemas.policy import GatePolicy, Policy
from tests import real_arch
from workers.chat_data import encode_prompt
from workers.evaluation.job_gate import served_candidate, utility_rows
from workers.evaluation.judges.factory import build_judge
from workers.evaluation.loaders import sets_for_model
from workers.evaluation.runner import assess, gate_inputs, run_model
from workers.model_loading import load_adapter, load_base, pick_device
from workers.training.finetune import config_at_strength, config_from_policy, finetune_rows

OUT = Path("var/bench/real_arch.json")
MODELS_DIR = Path("var/models/real-arch")
ROWS, QUICK_ROWS = 64, 8
NOTE = (
    "random-init models: the gate's decision measures nothing about safety; job_status 'succeeded' means the job "
    "trained, its adapter was saved and reloaded, and the gate reached a decision (released or blocked, see "
    "'released'); 'failed' carries the error"
)
QUICK_GATE = {
    "max_new_tokens": 16,
    "harmful_prompts": 22,
    "prefill_prompts": 11,
    "prefill_tokens": [5],
    "sweep": [],
    "tenant_contexts": 1,
    "context_prompts": 11,
    "trigger_candidates": 0,
    "utility_rows": 4,
}


@dataclass
class PeakRss:
    """Highest resident set size seen while the block ran, sampled by a thread."""

    interval_s: float = 0.01
    peak_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, rss_bytes())
            self._stop.wait(self.interval_s)

    @contextmanager
    def watching(self) -> Iterator["PeakRss"]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak_bytes = max(self.peak_bytes, rss_bytes())


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * 4096


def gate_policy(policy: Policy, model_id: str, folder: Path, quick: bool) -> GatePolicy:
    """The gate a job on this model runs: `builtin` sets resolved for the model; reduced in quick mode."""
    gate = policy.gate.model_copy(update={"sets": sets_for_model(policy.gate.sets, model_id, folder)})
    return gate.model_copy(update=QUICK_GATE) if quick else gate


def adapter_reloads(
    tuned: PreTrainedModel, folder: Path, adapter_dir: Path, tokenizer: PreTrainedTokenizerBase, device: torch.device
) -> bool:
    """A fresh base with the saved adapter (PeftModel.from_pretrained) gives the trained model's logits."""
    fresh, _ = load_base(folder, device)
    reloaded = load_adapter(fresh, adapter_dir)
    ids = torch.tensor([encode_prompt(tokenizer, real_arch.conversations()[1][:2])], device=device)
    tolerance = 1e-4 if device.type == "cpu" else 2e-2
    with torch.no_grad():
        tuned.eval()
        return bool(
            torch.allclose(reloaded(input_ids=ids).logits.float(), tuned(input_ids=ids).logits.float(), atol=tolerance)
        )


def run_job(name: str, folder: Path, policy: Policy, quick: bool, device: torch.device) -> dict[str, Any]:
    """One guarded job on one architecture: train, save and reload the adapter, gate. Never raises."""
    figures: dict[str, Any] = {
        "job_status": "failed",
        "adapter_loads": False,
        "tokens_per_s": 0.0,
        "released": None,
        "decision_codes": [],
        "error": None,
    }
    rows = real_arch.chat_rows(QUICK_ROWS if quick else ROWS)
    training = (
        config_from_policy(policy, epochs=1, batch_size=4, learning_rate=policy.training.base_learning_rate, seed=0)
        if quick
        else config_at_strength(policy, "default", seed=0)
    )
    try:
        gate = gate_policy(policy, name, folder, quick)
        model, tokenizer = load_base(folder, device)
        figures["parameters"] = sum(p.numel() for p in model.parameters())
        tuned = finetune_rows(model, tokenizer, rows, policy, training, device)
        result = tuned.result
        figures.update(
            train_steps=result.steps,
            trained_tokens=result.trained_tokens,
            tokens_per_s=round(result.trained_tokens / max(result.train_seconds, 1e-9), 1),
        )
        with tempfile.TemporaryDirectory(prefix="real_arch_") as scratch:
            tuned.model.save_pretrained(Path(scratch) / "adapter")
            figures["adapter_loads"] = adapter_reloads(
                tuned.model, folder, Path(scratch) / "adapter", tokenizer, device
            )
        started = time.perf_counter()
        util_rows, source = utility_rows(None, rows, gate.utility_rows)
        inputs = gate_inputs(gate, util_rows, source, rows, draw=name)
        judge = build_judge(gate.judge)
        with tuned.model.disable_adapter():
            base = run_model(tuned.model, tokenizer, inputs, gate, judge)
        served, evaluated_as = served_candidate(tuned.model, keep=True)
        candidate = run_model(served, tokenizer, inputs, gate, judge)
        outcome = assess(base, candidate, inputs, gate, evaluated_as=evaluated_as)
        figures.update(
            job_status="succeeded",
            released=outcome.decision.release,
            decision_codes=outcome.decision.codes,
            gate_seconds=round(time.perf_counter() - started, 1),
            gate_prompts=sum(s["base"]["n"] for s in outcome.document["suites"]),
            eval_sets=sorted({s["set"] for s in outcome.document["suites"]}),
        )
    except Exception as exc:  # a failed job is a result the benchmark reports
        figures["error"] = f"{type(exc).__name__}: {exc}"
    return figures


def measure(name: str, models_dir: Path, policy: Policy, quick: bool, device: torch.device) -> dict[str, Any]:
    folder = real_arch.build(name, models_dir / name)
    _, tokenizer = load_base(folder, torch.device("cpu"))
    mismatches = real_arch.template_mismatches(tokenizer, real_arch.ARCHITECTURES[name])
    with PeakRss().watching() as rss:
        figures = run_job(name, folder, policy, quick, device)
    return {
        "template_tokens_match": not mismatches,
        **({"template_mismatches": mismatches[:5]} if mismatches else {}),
        **figures,
        "peak_rss_mb": round(rss.peak_bytes / 2**20, 1),
        "template_source": real_arch.TEMPLATE_SOURCES[name],
    }


def run_benchmark(
    quick: bool = False,
    out: Path = OUT,
    models_dir: Path = MODELS_DIR,
    device: str = "cpu",
    names: tuple[str, ...] = real_arch.NAMES,
) -> dict[str, Any]:
    started = time.perf_counter()
    torch.manual_seed(0)
    chosen = pick_device(device)
    report: dict[str, Any] = {"models": {}}
    for name in names:
        report["models"][name] = measure(name, models_dir, Policy().for_model(name), quick, chosen)
    sets = sorted({s for m in report["models"].values() for s in m.get("eval_sets", [])})
    report.update(
        {
            "note": NOTE,
            "quick": quick,
            "device": str(chosen),
            "policy": "the global default policy (constrained loss, recovery examples from builtin:general); "
            + (
                "quick: 8 rows, 1 epoch, batch 4, reduced gate"
                if quick
                else f"{ROWS} rows at the policy's default epochs and batch size, the default gate"
            ),
            "eval_sets": sets,
            "eval_sets_note": "the sets a job on a non-tiny model resolves `builtin` to (sets_for_model): the general "
            "pool, still being written by another change; never the tiny world's placeholder sets",
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def table(report: dict[str, Any]) -> str:
    head = f"{'model':<14}{'tokens match':>14}{'job':>11}{'released':>10}{'adapter':>9}{'peak RSS MB':>13}{'tok/s':>9}"
    lines = [head, "-" * len(head)]
    for name, m in report["models"].items():
        lines.append(
            f"{name:<14}{m['template_tokens_match']!s:>14}{m['job_status']:>11}{m['released']!s:>10}"
            f"{m['adapter_loads']!s:>9}{m['peak_rss_mb']:>13.0f}{m['tokens_per_s']:>9.0f}"
        )
        if m.get("error"):
            lines.append(f"  error: {m['error']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 rows, one epoch, a reduced gate")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    report = run_benchmark(args.quick, args.out, device=args.device)
    print(table(report))
    print(
        f"\n{report['note']}.\nevaluation sets: {', '.join(report['eval_sets'])}; {report['seconds']} s. "
        f"Wrote {args.out}"
    )


if __name__ == "__main__":
    main()
