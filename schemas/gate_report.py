"""The release gate's report document: what `workers.evaluation.runner.assess` writes to the artifact store as
JSON (and the worker adds its verdict to), and what the worker's readers (the metrics event, the HTML page) read
back. Built and read through these models, a misspelt key fails where it is written, not as a KeyError on GET.

Every shape here is fixed by the gate, so unknown keys are refused. The dump (`model_dump(mode="json")`) is the
stored JSON: the same keys and values as the document the gate wrote before these models existed.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

SuiteKind = Literal["direct", "prefill", "sweep", "over_refusal"]
GateVerdict = Literal["released", "held", "blocked"]
JudgeLabel = Literal["refusal", "compliance"]


class RateFigures(BaseModel):
    """k of n prompts (answered, or refused for the over-refusal suite) and the Wilson 95% interval of k/n."""

    model_config = ConfigDict(extra="forbid")

    k: int
    n: int
    rate: float
    ci_low: float
    ci_high: float


class PairedCounts(BaseModel):
    """The discordant prompts of the paired (McNemar) test and its exact one-sided p-value. For the over-refusal
    suite failing is refusing, so its p-value tests newly refused against newly answered."""

    model_config = ConfigDict(extra="forbid")

    newly_answered: int
    newly_refused: int
    p_value: float


class SuiteDecoding(BaseModel):
    """The decoding the suite ran under (generation.Decoding) and its label; temperature 0 is greedy."""

    model_config = ConfigDict(extra="forbid")

    temperature: float
    top_p: float
    top_k: int
    samples: int
    label: str


class CategoryFigures(BaseModel):
    """One harm category of a suite (listed only when the suite holds more than one)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    base: RateFigures
    candidate: RateFigures
    paired: PairedCounts


class FailingExample(BaseModel):
    """A prompt the candidate failed (answered a harmful one, refused a benign one), with the base's answer."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    category: str
    candidate: str
    candidate_label: JudgeLabel
    candidate_reason: str
    base: str
    base_label: JudgeLabel


class SuiteFigures(BaseModel):
    """One suite on base and candidate: the rates (ASR, or the refusal rate for over-refusal), the rise, the
    paired test, the smallest rise it could detect (None: none, or the over-refusal suite), per category, and
    examples."""

    model_config = ConfigDict(extra="forbid")

    key: str
    name: str
    kind: SuiteKind
    set: str
    decoding: SuiteDecoding
    prefill_tokens: int
    metric: Literal["ASR", "refusal rate"]
    base: RateFigures
    candidate: RateFigures
    regression: float
    paired: PairedCounts
    min_detectable_regression: float | None
    categories: list[CategoryFigures]
    examples: list[FailingExample]


class GateDecisionDocument(BaseModel):
    """gate.Decision as recorded: `codes` name the rule behind each of `reasons`, in order; `notes` did not
    block. `release_mode` is the policy's: a passing job under "review" is held."""

    model_config = ConfigDict(extra="forbid")

    release: bool
    reasons: list[str]
    codes: list[str]
    notes: list[str]
    release_mode: Literal["automatic", "review"]


class GateThresholds(BaseModel):
    """The GatePolicy fields the decision used, recorded so the report explains itself after the policy changes.
    Field names and order are GatePolicy's: `GateThresholds.model_fields` is what the gate copies from it."""

    model_config = ConfigDict(extra="forbid")

    max_asr: float
    max_asr_increase: float
    false_block_rate: float
    detection_power: float
    target_detectable_regression: float | None
    use_upper_bound: bool
    prefill_max_asr: float
    per_category: bool
    category_max_asr: float
    category_min_extra_answers: int
    category_min_extra_share: float | None
    category_max_asr_increase: float | None
    max_over_refusal_increase: float
    max_utility_drop: float
    max_eval_overlap_rows: int


class PowerAnalysis(BaseModel):
    """The direct suite's minimum detectable regression at the policy's false-block rate and power, under the
    stated `model`; with a policy target, about how many prompts would reach it."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    n: int
    base_asr: float
    alpha: float
    power: float
    margin: float
    min_detectable_regression: float | None
    model: str
    target: float | None
    prompts_needed: int | None


class OverlapRow(BaseModel):
    """Training row `line` (1-based) copies evaluation prompt `pool_prompt` (`containment` of its trigrams)."""

    model_config = ConfigDict(extra="forbid")

    line: int
    pool_prompt: str
    containment: float


class OverlapSummary(BaseModel):
    """Training rows that copy the gate's prompts: how many, how many are allowed, and the first few."""

    model_config = ConfigDict(extra="forbid")

    training_rows: int
    rows: int
    allowed: int
    first: list[OverlapRow]


class UtilityScores(BaseModel):
    """One model's utility figures; None where a figure could not be computed (NaN)."""

    model_config = ConfigDict(extra="forbid")

    overlap: float | None
    exact_match: float | None
    loss: float | None


class UtilityComparison(BaseModel):
    """Utility on `n` reference rows from `source` (validation_file, training_file_slice), base and candidate."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    source: str
    n: int
    base: UtilityScores
    candidate: UtilityScores


class LibraScores(BaseModel):
    """Libra balance of utility and safety (1 - worst direct or sampled ASR), and that safety, per model."""

    model_config = ConfigDict(extra="forbid")

    base: float
    candidate: float
    base_safety: float
    candidate_safety: float


class EvaluatedAs(BaseModel):
    """The form ("merged", "peft-unmerged") and dtype the candidate ran in: what was measured."""

    model_config = ConfigDict(extra="forbid")

    form: str
    dtype: str


# Written only when given: the job's meta (absent when the gate runs outside a job) and the worker's verdict.
_OMITTED_WHEN_UNSET = ("job_id", "model", "created_at", "outcome", "seconds")


class GateReportDocument(BaseModel):
    """The whole report. `job_id`, `model` and `created_at` come from the job (assess's `meta`); `outcome` and
    `seconds` are added by the worker once it has the verdict. Those five keys are left out of the dump unless
    they were given, as they were before: a document from `assess` alone holds none of them."""

    model_config = ConfigDict(extra="forbid")

    object: Literal["fine_tuning.job.safety_report"] = "fine_tuning.job.safety_report"
    version: int
    suite_version: str
    job_id: str | None = None
    model: str | None = None
    created_at: int | None = None
    decision: GateDecisionDocument
    judge: str
    evaluated_as: EvaluatedAs | None
    thresholds: GateThresholds
    power: PowerAnalysis | None
    overlap: OverlapSummary
    suites: list[SuiteFigures]
    utility: UtilityComparison | None
    libra: LibraScores | None
    outcome: GateVerdict | None = None
    seconds: float | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in _OMITTED_WHEN_UNSET:
            if key not in self.model_fields_set:
                data.pop(key, None)
        return data
