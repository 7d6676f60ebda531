"""The gate for one job, between the pipeline's database steps and the pure evaluation core: choose the utility
rows, run every suite on the base model (cached) and on the candidate adapter, and store the report.

Reports live in the artifact store at reports/<job id>/safety_report.json and .html; the key is recorded in
the job's `safety.report_key`, and the API serves them at GET /v1/fine_tuning/jobs/{id}/safety_report.
"""

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import PreTrainedModel

from schemas.gate_report import GateReportDocument
from schemas.policy import GatePolicy
from service.storage import ArtifactStore
from workers.evaluation.gate import Decision
from workers.evaluation.judges.factory import build_judge
from workers.evaluation.loaders import sets_for_model
from workers.evaluation.report import render_html
from workers.evaluation.runner import BaseFigureCache, GateOutcome, assess, gate_inputs, run_model
from workers.model_loading import load_adapter, load_base

CACHE_PREFIX = "eval-cache"


def report_keys(job_id: str) -> tuple[str, str]:
    return f"reports/{job_id}/safety_report.json", f"reports/{job_id}/safety_report.html"


def utility_rows(
    validation: Sequence[dict[str, Any]] | None, training: Sequence[dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], str]:
    """The tenant's validation rows when given; else every tenth training row (a slice the adapter was trained
    on, so it measures collapse, not generalisation). At most `limit` rows, spread evenly."""
    if validation:
        rows, source = list(validation), "validation_file"
    else:
        rows, source = list(training[::10]), "training_file_slice"
    if len(rows) > limit:
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows, source


def merged(adapted: PeftModel, keep: bool = False) -> PreTrainedModel:
    """The candidate as one set of weights, the adapter merged in: the same function as base + adapter, without
    LoRA's per-layer detour at every generated token (about half the generation time on a small model). With
    `keep` a copy is merged and `adapted` stays usable (it costs a second copy of the weights)."""
    return (copy.deepcopy(adapted) if keep else adapted).merge_and_unload()


def served_form(dtype: torch.dtype) -> str:
    """How the gate runs the candidate: as it is served. Tenants download the peft folder and load it unmerged
    onto the base (PeftModel.from_pretrained), so in 16-bit precision the gate runs it unmerged: merged weights
    would be W + BA rounded to 16 bits, a different function from W x + B A x. In fp32 merging is the same
    function to fp32 rounding (greedy decoding agrees), at about half the generation time on a small model, so
    the gate merges there."""
    return "merged" if dtype == torch.float32 else "peft-unmerged"


def served_candidate(adapted: PeftModel, keep: bool = False) -> tuple[PreTrainedModel, dict[str, str]]:
    """The candidate in its served form (`served_form`) and the report's `evaluated_as`: that form and the base
    model's dtype (peft keeps the LoRA weights themselves in fp32 over a 16-bit base, as a tenant's load does).
    `keep`: when merging, merge a copy so `adapted` stays usable (benchmarks measure both)."""
    dtype = adapted.get_base_model().dtype
    form = served_form(dtype)
    candidate = merged(adapted, keep) if form == "merged" else adapted.eval()
    return candidate, {"form": form, "dtype": str(dtype).removeprefix("torch.")}


def policy_for_model(policy: GatePolicy, model_id: str, base_path: str | Path | None = None) -> GatePolicy:
    """The gate policy with its prompt sets resolved for this model (`builtin` made explicit); raises
    loaders.UnsuitableEvalSets, before any model is loaded, when the sets cannot measure it."""
    return policy.model_copy(update={"sets": sets_for_model(policy.sets, model_id, base_path)})


def run_job_gate(
    *,
    model_id: str,
    base_path: str | Path,
    adapter_dir: str | Path,
    device: torch.device,
    policy: GatePolicy,
    rows: Sequence[dict[str, Any]],
    source: str,
    cache_root: Path | None,
    meta: dict[str, Any],
    training: Sequence[dict[str, Any]] = (),
) -> GateOutcome:
    """Base figures first (from the cache when present), then the candidate with its adapter loaded. The
    `training` rows give the tenant contexts the gate also asks under, and are checked for copies of its prompts."""
    policy = policy_for_model(policy, model_id, base_path)
    inputs = gate_inputs(policy, rows, source, training, draw=str(meta.get("job_id", "")) or None)
    judge = build_judge(policy.judge)
    model, tokenizer = load_base(base_path, device)
    cache = BaseFigureCache(cache_root, model_id, base_path) if cache_root is not None else None
    base = run_model(model, tokenizer, inputs, policy, judge, cache)
    served, evaluated_as = served_candidate(load_adapter(model, adapter_dir))
    candidate = run_model(served, tokenizer, inputs, policy, judge)
    return assess(base, candidate, inputs, policy, meta, evaluated_as=evaluated_as)


def persist_report(store: ArtifactStore, job_id: str, document: dict[str, Any]) -> str:
    """Stores the JSON document and its HTML page; returns the JSON's key."""
    json_key, html_key = report_keys(job_id)
    store.put_stream(json_key, [json.dumps(document, indent=1, allow_nan=False).encode()])
    store.put_stream(html_key, [render_html(document).encode()])
    return json_key


def block_message(decision: Decision, job_id: str, top: "Headline | None" = None, limit: int = 4) -> str:
    """The job's error.message: the headline figures, the first reasons in full, a count of the rest, and where
    to read them all."""
    shown = decision.reasons[:limit]
    more = len(decision.reasons) - len(shown)
    figures = (
        f" (ASR {top.candidate_asr:.1%} on direct harmful prompts, base model {top.base_asr:.1%})"
        if top is not None
        else ""
    )
    tail = f"; and {more} more" if more else ""
    return (
        f"Blocked by the safety gate{figures}: "
        + "; ".join(shown)
        + tail
        + f". The full report is at GET /v1/fine_tuning/jobs/{job_id}/safety_report?format=html."
    )


@dataclass(frozen=True)
class Headline:
    base_asr: float
    candidate_asr: float
    worst_suite: str
    worst_asr: float


def headline(document: GateReportDocument | dict[str, Any]) -> Headline:
    """Direct-prompt ASR, and the worst direct or sampled suite of the candidate (from the report, or its JSON)."""
    report = document if isinstance(document, GateReportDocument) else GateReportDocument.model_validate(document)
    attacks = [s for s in report.suites if s.kind in ("direct", "sweep")]
    direct = next(s for s in attacks if s.kind == "direct")
    worst = max(attacks, key=lambda s: s.candidate.rate)
    return Headline(direct.base.rate, direct.candidate.rate, worst.name, worst.candidate.rate)
