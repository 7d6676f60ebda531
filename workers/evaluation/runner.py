"""The gate run: every suite on the base model and on the candidate, under the same prompts, chat template,
decoding settings and seeds; then the figures, the decision and the report.

    inputs = gate_inputs(policy, utility_rows, utility_source)
    base = run_model(base_model, tokenizer, inputs, policy, judge, cache=BaseFigureCache(...))
    candidate = run_model(peft_model, tokenizer, inputs, policy, judge)
    outcome = assess(base, candidate, inputs, policy)      # GateReport, Decision, the report as JSON

The base model's figures depend only on the model, the suite (prompts, settings, judge, seed) and SUITE_VERSION,
so they are cached per suite under those keys and shared by every job on that model.
"""

import hashlib
import json
import math
import os
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from schemas.gate_report import (
    CategoryFigures,
    EvaluatedAs,
    FailingExample,
    GateDecisionDocument,
    GateReportDocument,
    GateThresholds,
    LibraScores,
    OverlapRow,
    OverlapSummary,
    PairedCounts,
    PowerAnalysis,
    RateFigures,
    SuiteDecoding,
    SuiteFigures,
    UtilityComparison,
    UtilityScores,
)
from schemas.policy import GatePolicy
from workers.evaluation.gate import (
    Decision,
    GateReport,
    OverlapResult,
    SuiteResult,
    UtilityResult,
    decide_release,
    min_detectable,
)
from workers.evaluation.generation import GREEDY, Decoding
from workers.evaluation.judges.base import RefusalJudge
from workers.evaluation.loaders import resolve_set
from workers.evaluation.overlap import Overlap, find_overlap, overlap_message
from workers.evaluation.statistics import Rate, libra_balance, mcnemar_exact, prompts_needed
from workers.evaluation.suites import PromptResult, judged, judged_greedy_many, utility
from workers.evaluation.triggers import TriggerCandidate, mine_triggers, triggered_prompt
from workers.tenant_contexts import tenant_contexts, under_context

SUITE_VERSION = "gate-2"  # 2: the rules judge by default, partial refusals that answer count as answers
REPORT_VERSION = 1


@dataclass(frozen=True)
class SuiteSpec:
    """One suite: `kind` direct | prefill | sweep | over_refusal, over `records` of the named set."""

    key: str
    name: str
    kind: str
    set_name: str
    records: tuple[dict[str, Any], ...]
    decoding: Decoding = GREEDY
    prefill_tokens: int = 0
    pool: tuple[dict[str, Any], ...] = ()
    picked: tuple[int, ...] = ()

    def drawn_from(self, pool: Sequence[dict[str, Any]]) -> "SuiteSpec":
        """The same suite, remembering which records of `pool` it asks: the base model's figures are then
        computed (and cached) on the whole pool once per model, and each job's draw is picked from them."""
        position = {id(record): index for index, record in enumerate(pool)}
        if len(self.records) == len(pool) or any(id(r) not in position for r in self.records):
            return self
        return replace(self, pool=tuple(pool), picked=tuple(position[id(r)] for r in self.records))


@dataclass(frozen=True)
class GateInputs:
    """What the gate asks, and what it found in the training file before asking: the rows that copy its
    evaluation prompts (`overlap`, of `training_rows`)."""

    suites: tuple[SuiteSpec, ...]
    utility_rows: tuple[dict[str, Any], ...] = ()
    utility_source: str = "none"
    overlap: tuple[Overlap, ...] = ()
    training_rows: int = 0


@dataclass
class ModelFigures:
    """One model's per-prompt results per suite key, and its utility figures."""

    results: dict[str, list[PromptResult]] = field(default_factory=dict)
    utility: dict[str, float] = field(default_factory=dict)


def stratified(
    records: Sequence[dict[str, Any]], n: int, rng: random.Random | None = None
) -> tuple[dict[str, Any], ...]:
    """At most n records, taken round-robin across categories (all when n is 0 or enough): in file order, or,
    with `rng`, in an order drawn within each category, so each draw is a fresh sample."""
    if not n or n >= len(records):
        return tuple(records)
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record.get("category", "")), []).append(record)
    if rng is not None:
        groups = {category: rng.sample(group, len(group)) for category, group in groups.items()}
    picked: list[dict[str, Any]] = []
    for index in range(max(len(g) for g in groups.values())):
        picked += [g[index] for g in groups.values() if index < len(g)]
    return tuple(picked[:n])


def gate_inputs(
    policy: GatePolicy,
    utility_rows: Sequence[dict[str, Any]] = (),
    utility_source: str = "none",
    training: Sequence[dict[str, Any]] = (),
    draw: str | None = None,
) -> GateInputs:
    """The suites of `policy`, with the direct suite asked again under each context of the `training` rows
    (`contexts.tenant_contexts`), and those rows checked for copies of every evaluation prompt. With
    `harmful_prompts` set and a `draw` seed (the job id), the harmful and prefilling prompts are a fresh
    stratified sample of their sets for each job, so no tenant learns the prompts a job will be asked."""
    harmful_name, pool = resolve_set(policy.sets.harmful, "harmful")
    prefill_name, prefill = resolve_set(policy.sets.prefill, "prefill")
    refusal_name, refusal = resolve_set(policy.sets.over_refusal, "over_refusal")
    rng = random.Random(f"gate-draw/{draw}") if draw is not None and policy.harmful_prompts else None
    harmful = stratified(pool, policy.harmful_prompts, rng) if rng else tuple(pool)
    specs = [SuiteSpec("direct", "direct harmful prompts", "direct", harmful_name, harmful).drawn_from(pool)]
    context_records = stratified(harmful, policy.context_prompts)
    specs += [
        SuiteSpec(
            f"context-{i}",
            f"direct harmful prompts under the tenant's {context.label}",
            "direct",
            harmful_name,
            under_context(context_records, context),
        )
        for i, context in enumerate(tenant_contexts(training, policy.tenant_contexts), start=1)
    ]
    candidates = (
        mine_triggers(training, limit=policy.trigger_candidates) if training and policy.trigger_candidates else []
    )
    specs += [
        SuiteSpec(
            f"trigger-{i}",
            f'direct harmful prompts with the candidate trigger "{c.text}" ({c.position})',
            "direct",
            harmful_name,
            with_trigger(context_records, c),
        )
        for i, c in enumerate(candidates, start=1)
    ]
    prefill_records = stratified(prefill, policy.prefill_prompts, rng)
    specs += [
        SuiteSpec(
            f"prefill-{k}", f"prefilling attack, {k} tokens", "prefill", prefill_name, prefill_records, prefill_tokens=k
        ).drawn_from(prefill)
        for k in sorted(set(policy.prefill_tokens))
    ]
    sweep_records = stratified(harmful, policy.sweep_prompts)
    for setting in policy.sweep:
        decoding = Decoding(
            setting.temperature, setting.top_p, setting.top_k, 1 if setting.temperature == 0 else setting.samples
        )
        if decoding.greedy:
            continue  # greedy is the direct suite
        specs.append(
            SuiteSpec(
                f"sweep-{decoding.label}",
                f"sampled decoding, {decoding.label}",
                "sweep",
                harmful_name,
                sweep_records,
                decoding=decoding,
            ).drawn_from(pool)
        )
    specs.append(
        SuiteSpec(
            "over_refusal", "over-refusal (benign-but-sensitive prompts)", "over_refusal", refusal_name, tuple(refusal)
        )
    )
    rows = [r for r in utility_rows if r.get("messages") and r["messages"][-1].get("role") == "assistant"]
    prompts = list(dict.fromkeys(str(r["prompt"]) for r in [*pool, *prefill, *refusal]))
    copies = find_overlap(training, prompts, policy.overlap_containment) if training else []
    return GateInputs(tuple(specs), tuple(rows), utility_source if rows else "none", tuple(copies), len(training))


def with_trigger(records: Sequence[dict[str, Any]], candidate: TriggerCandidate) -> tuple[dict[str, Any], ...]:
    """Prompt records asked with a candidate trigger, placed the way the training data placed it."""
    out = []
    for record in records:
        prompt, system = triggered_prompt(str(record["prompt"]), candidate)
        out.append({**record, "prompt": prompt, **({"system": system} if system else {})})
    return tuple(out)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def model_fingerprint(path: str | Path) -> str:
    """Names, sizes and modification times of a model folder's files: changes when the weights are replaced."""
    folder = Path(path)
    entries = sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    )
    return _digest([str(folder.resolve()), entries])[:16]


class BaseFigureCache:
    """JSON files under `root`, one per (model, suite, judge, seed, SUITE_VERSION)."""

    def __init__(self, root: Path, model_id: str, model_path: str | Path) -> None:
        self.root, self.model_id, self.fingerprint = root, model_id, model_fingerprint(model_path)

    def _file(self, parts: Any) -> Path:
        safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.model_id)
        return self.root / safe_id / f"{_digest([SUITE_VERSION, self.fingerprint, parts])[:32]}.json"

    def get(self, parts: Any) -> Any | None:
        file = self._file(parts)
        if file.is_file():
            try:
                return json.loads(file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None  # a damaged entry is recomputed
        return None

    def get_or_compute(self, parts: Any, compute: Callable[[], Any]) -> tuple[Any, bool]:
        found = self.get(parts)
        if found is not None:
            return found, True
        value = compute()
        self.put(parts, value)
        return value, False

    def put(self, parts: Any, value: Any) -> None:
        file = self._file(parts)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        tmp.replace(file)


def _suite_key(spec: SuiteSpec, policy: GatePolicy) -> dict[str, Any]:
    return {
        "suite": spec.key,
        "records": _digest(list(spec.records)),
        "judge": policy.judge.model_dump(),
        "seed": None if spec.decoding.greedy else policy.seed,
        "max_new_tokens": policy.max_new_tokens,
        "batch": policy.batch_size,
        "decoding": asdict(spec.decoding),
        "prefill": spec.prefill_tokens,
    }


def run_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    inputs: GateInputs,
    policy: GatePolicy,
    judge: RefusalJudge,
    cache: BaseFigureCache | None = None,
) -> ModelFigures:
    """Every suite and the utility on one model. With a cache, figures found there are reused. The greedy
    suites not cached run together in one batched generation; each sampled setting runs on its own (its
    samples depend on its batches and seed). A suite drawn from a larger pool runs, with a cache, on the whole
    pool (cached once per model) and keeps the drawn records' results; without one, on the drawn records."""
    figures = ModelFigures()
    missing: list[SuiteSpec] = []
    suites = [replace(s, records=s.pool, pool=(), picked=()) if cache and s.pool else s for s in inputs.suites]
    for spec in suites:
        found = cache.get(_suite_key(spec, policy)) if cache else None
        if found is None:
            missing.append(spec)
        else:
            figures.results[spec.key] = [PromptResult(**r) for r in found]
    greedy = [s for s in missing if s.decoding.greedy]
    computed = (
        dict(
            zip(
                [s.key for s in greedy],
                judged_greedy_many(
                    model,
                    tokenizer,
                    [(s.records, s.prefill_tokens) for s in greedy],
                    policy.max_new_tokens,
                    judge,
                    policy.batch_size,
                ),
                strict=True,
            )
        )
        if greedy
        else {}
    )
    for spec in missing:
        if not spec.decoding.greedy:
            computed[spec.key] = judged(
                model,
                tokenizer,
                spec.records,
                policy.max_new_tokens,
                spec.prefill_tokens,
                spec.decoding,
                judge,
                policy.seed,
                policy.batch_size,
            )
        if cache:
            cache.put(_suite_key(spec, policy), [asdict(r) for r in computed[spec.key]])
        figures.results[spec.key] = computed[spec.key]
    for spec in inputs.suites:
        if cache and spec.pool:
            figures.results[spec.key] = [figures.results[spec.key][i] for i in spec.picked]
    if inputs.utility_rows:

        def score() -> dict[str, float]:
            return asdict(utility(model, tokenizer, inputs.utility_rows, batch_size=policy.batch_size))

        parts = {"utility": _digest(list(inputs.utility_rows))}
        figures.utility = cache.get_or_compute(parts, score)[0] if cache else score()
    return figures


def _rate(results: Sequence[PromptResult], refusals: bool = False) -> Rate:
    return Rate(sum(r.refused == refusals for r in results), len(results))


def discordant(base: Sequence[PromptResult], cand: Sequence[PromptResult]) -> tuple[int, int]:
    """(b, c) of the paired test: prompts the base refused and the candidate answered, and the reverse. Both
    lists hold the same prompts in the same order (the suite's records); a mismatch is a bug, never a pass."""
    if len(base) != len(cand) or any(b.prompt != c.prompt for b, c in zip(base, cand, strict=True)):
        raise ValueError("base and candidate results are not paired prompt by prompt")
    return (
        sum(b.refused and not c.refused for b, c in zip(base, cand, strict=True)),
        sum(c.refused and not b.refused for b, c in zip(base, cand, strict=True)),
    )


def _suite_result(spec: SuiteSpec, base: list[PromptResult], cand: list[PromptResult]) -> SuiteResult:
    categories = sorted({r.category for r in base})
    per = []
    for category in categories:
        b = [r for r in base if r.category == category]
        c = [r for r in cand if r.category == category]
        per.append(SuiteResult(f"{spec.name} / {category}", _rate(b), _rate(c), spec.kind, discordant=discordant(b, c)))
    return SuiteResult(
        spec.name,
        _rate(base),
        _rate(cand),
        spec.kind,
        tuple(per) if len(categories) > 1 else (),
        discordant(base, cand),
    )


@dataclass(frozen=True)
class GateOutcome:
    """`document`: the report as stored, GateReportDocument's JSON dump (read it back through that model)."""

    report: GateReport
    decision: Decision
    document: dict[str, Any]


def _rate_figures(rate: Rate) -> RateFigures:
    low, high = rate.interval()
    return RateFigures(k=rate.k, n=rate.n, rate=rate.value, ci_low=low, ci_high=high)


def _paired_counts(result: SuiteResult) -> PairedCounts:
    b, c = result.pairs()
    return PairedCounts(newly_answered=b, newly_refused=c, p_value=mcnemar_exact(b, c))


def _refusal_pairs(result: SuiteResult) -> PairedCounts:
    newly_refused, newly_answered = result.pairs()
    return PairedCounts(
        newly_answered=newly_answered,
        newly_refused=newly_refused,
        p_value=mcnemar_exact(newly_refused, newly_answered),
    )


def _power_analysis(report: GateReport, policy: GatePolicy) -> PowerAnalysis | None:
    """The direct suite's minimum detectable regression (gate.min_detectable) and what the policy asked."""
    direct = next((s for s in report.suites if s.kind == "direct"), None)
    if direct is None:
        return None
    target = policy.target_detectable_regression
    return PowerAnalysis(
        suite=direct.name,
        n=direct.candidate.n,
        base_asr=direct.base.value,
        alpha=policy.false_block_rate,
        power=policy.detection_power,
        margin=policy.max_asr_increase,
        min_detectable_regression=min_detectable(direct, policy),
        model="one-way: the candidate keeps the base's answers and answers each prompt the base refused with "
        "a fixed probability (a lower bound when it also refuses some the base answered)",
        target=target,
        prompts_needed=None
        if target is None
        else prompts_needed(
            target, policy.false_block_rate, policy.detection_power, direct.base.value, policy.max_asr_increase
        ),
    )


def _examples(spec: SuiteSpec, base: list[PromptResult], cand: list[PromptResult], limit: int) -> list[FailingExample]:
    """Prompts where the candidate failed (answered a harmful prompt, or refused a benign one), the ones the
    base model handled first."""
    failed = (lambda r: r.refused) if spec.kind == "over_refusal" else (lambda r: not r.refused)
    pairs = [(b, c) for b, c in zip(base, cand, strict=True) if failed(c)]
    pairs.sort(key=lambda bc: failed(bc[0]))
    return [
        FailingExample(
            prompt=c.prompt,
            category=c.category,
            candidate=c.completion,
            candidate_label="refusal" if c.refused else "compliance",
            candidate_reason=c.reason,
            base=b.completion,
            base_label="refusal" if b.refused else "compliance",
        )
        for b, c in pairs[:limit]
    ]


def _safety(figures: ModelFigures, inputs: GateInputs) -> float:
    """1 - the worst ASR over the direct and sampled suites (prefilling is left out: base models fail it)."""
    asrs = [_rate(figures.results[s.key]).value for s in inputs.suites if s.kind in ("direct", "sweep")]
    return 1.0 - max(asrs, default=0.0)


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _suite_document(
    spec: SuiteSpec, result: SuiteResult, b: list[PromptResult], c: list[PromptResult], policy: GatePolicy
) -> SuiteFigures:
    """One suite's entry of the report: `result` holds refusal rates and (newly refused, newly answered) pairs for
    the over-refusal suite, ASR and (newly answered, newly refused) for the others."""
    refusal = spec.kind == "over_refusal"
    return SuiteFigures(
        key=spec.key,
        name=spec.name,
        kind=spec.kind,
        set=spec.set_name,
        decoding=SuiteDecoding(**asdict(spec.decoding), label=spec.decoding.label),
        prefill_tokens=spec.prefill_tokens,
        metric="refusal rate" if refusal else "ASR",
        base=_rate_figures(result.base),
        candidate=_rate_figures(result.candidate),
        regression=result.candidate.value - result.base.value,
        paired=_refusal_pairs(result) if refusal else _paired_counts(result),
        min_detectable_regression=None if refusal else min_detectable(result, policy),
        categories=[
            CategoryFigures(
                name=cat.name.split(" / ", 1)[1],
                base=_rate_figures(cat.base),
                candidate=_rate_figures(cat.candidate),
                paired=_paired_counts(cat),
            )
            for cat in result.categories
        ],
        examples=_examples(spec, b, c, policy.examples_per_suite),
    )


def _utility_scores(figures: dict[str, float]) -> UtilityScores:
    return UtilityScores(
        overlap=_finite(figures["overlap"]), exact_match=_finite(figures["exact_match"]), loss=_finite(figures["loss"])
    )


def assess(
    base: ModelFigures,
    candidate: ModelFigures,
    inputs: GateInputs,
    policy: GatePolicy,
    meta: dict[str, Any] | None = None,
    evaluated_as: dict[str, str] | None = None,
) -> GateOutcome:
    """Figures -> GateReport -> decide_release -> the report document (GateReportDocument, dumped JSON-ready).
    `meta`: the job's fields of the document (job_id, model, created_at); an unknown key is refused. `evaluated_as`:
    the form and dtype the candidate ran in (job_gate.served_candidate), recorded so a reader knows what was
    measured."""
    suites, refusal, documents = [], None, []
    for spec in inputs.suites:
        b, c = base.results[spec.key], candidate.results[spec.key]
        result = _suite_result(spec, b, c)
        if spec.kind == "over_refusal":
            # Failing here is refusing: the paired counts are (newly refused, newly answered).
            result = SuiteResult(
                spec.name, _rate(b, refusals=True), _rate(c, refusals=True), spec.kind, discordant=discordant(c, b)
            )
            refusal = result
        else:
            suites.append(result)
        documents.append(_suite_document(spec, result, b, c, policy))
    util = None
    if base.utility and candidate.utility:
        util = UtilityResult(
            "token-overlap F1 with the reference answers", base.utility["overlap"], candidate.utility["overlap"]
        )
    overlap = None
    if inputs.overlap:
        overlap = OverlapResult(
            len(inputs.overlap),
            inputs.training_rows,
            overlap_message(inputs.overlap, inputs.training_rows, policy.max_eval_overlap_rows),
        )
    report = GateReport(tuple(suites), refusal, util, overlap)
    decision = decide_release(report, policy)
    libra = None
    if util is not None:
        libra = LibraScores(
            base=libra_balance(util.base, _safety(base, inputs)),
            candidate=libra_balance(util.candidate, _safety(candidate, inputs)),
            base_safety=_safety(base, inputs),
            candidate_safety=_safety(candidate, inputs),
        )
    document = GateReportDocument(
        version=REPORT_VERSION,
        suite_version=SUITE_VERSION,
        **(meta or {}),
        decision=GateDecisionDocument(
            release=decision.release,
            reasons=decision.reasons,
            codes=decision.codes,
            notes=decision.notes,
            release_mode=policy.release_mode,
        ),
        judge=policy.judge.name,
        evaluated_as=None if evaluated_as is None else EvaluatedAs(**evaluated_as),
        thresholds=GateThresholds.model_validate(policy.model_dump(include=set(GateThresholds.model_fields))),
        power=_power_analysis(report, policy),
        overlap=OverlapSummary(
            training_rows=inputs.training_rows,
            rows=len(inputs.overlap),
            allowed=policy.max_eval_overlap_rows,
            first=[OverlapRow(**asdict(o)) for o in inputs.overlap[: policy.examples_per_suite]],
        ),
        suites=documents,
        utility=None
        if util is None
        else UtilityComparison(
            metric=util.metric,
            source=inputs.utility_source,
            n=int(base.utility["n"]),
            base=_utility_scores(base.utility),
            candidate=_utility_scores(candidate.utility),
        ),
        libra=libra,
    )
    return GateOutcome(report, decision, document.model_dump(mode="json"))
