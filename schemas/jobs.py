"""Fine-tuning job, event and request types (OpenAI's fine_tuning.job shapes plus our `safety`)."""

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.job_status import JobStatus
from schemas.policy import TrainingPolicy
from schemas.screening import ScreeningSummary


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: Literal["auto"] | int = Field(default="auto")
    batch_size: Literal["auto"] | int = Field(default="auto")
    learning_rate_multiplier: Literal["auto"] | float = Field(default="auto")

    def check_bounds(self) -> "Hyperparameters":
        """Positive numbers only; the policy's caps are applied later, per tenant."""
        for name in ("n_epochs", "batch_size", "learning_rate_multiplier"):
            value = getattr(self, name)
            if value != "auto" and not value > 0:
                raise ValueError(f"hyperparameters.{name} must be 'auto' or a positive number")
        return self


BUDGET_TOLERANCE = 1e-9  # relative: a job computed to sit exactly at the cap is within it


@dataclass(frozen=True)
class ResolvedHyperparameters:
    """A job's settings with "auto" replaced by the policy's defaults."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float

    def learning_rate(self, training: TrainingPolicy) -> float:
        return training.base_learning_rate * self.learning_rate_multiplier


class HyperparameterOutOfRange(ValueError):
    """A job's settings exceed the policy's caps: `param` names the field to change."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param, self.message = param, message


def resolve_hyperparameters(hp: Hyperparameters, training: TrainingPolicy) -> ResolvedHyperparameters:
    return ResolvedHyperparameters(
        n_epochs=training.default_epochs if hp.n_epochs == "auto" else int(hp.n_epochs),
        batch_size=training.default_batch_size if hp.batch_size == "auto" else int(hp.batch_size),
        learning_rate_multiplier=1.0 if hp.learning_rate_multiplier == "auto" else float(hp.learning_rate_multiplier),
    )


def _out_of_range(name: str, message: str) -> HyperparameterOutOfRange:
    return HyperparameterOutOfRange(f"hyperparameters.{name}", message)


def check_hyperparameters(hp: Hyperparameters, training: TrainingPolicy, rows: int | None) -> ResolvedHyperparameters:
    """The job's resolved settings, or HyperparameterOutOfRange: each explicit value within its own cap, then
    the update budget (TrainingPolicy.update_budget on `rows` training rows; None: not known) within
    TrainingPolicy.budget_cap. The API checks at creation (rows counted at upload) and the worker again before
    training (rows it read), so a job stored before a policy tightened cannot train past the caps. "auto"
    values are the defaults, which always fit."""
    if hp.n_epochs != "auto" and hp.n_epochs > training.max_epochs:
        raise _out_of_range(
            "n_epochs", f"n_epochs {hp.n_epochs} is above this service's limit of {training.max_epochs}."
        )
    if hp.learning_rate_multiplier != "auto" and hp.learning_rate_multiplier > training.max_lr_multiplier:
        raise _out_of_range(
            "learning_rate_multiplier",
            f"learning_rate_multiplier {hp.learning_rate_multiplier} "
            f"is above this service's limit of {training.max_lr_multiplier}.",
        )
    if hp.batch_size != "auto" and not training.min_batch_size <= hp.batch_size <= training.max_batch_size:
        raise _out_of_range(
            "batch_size",
            f"batch_size {hp.batch_size} is outside this service's range of "
            f"{training.min_batch_size} to {training.max_batch_size}.",
        )
    resolved = resolve_hyperparameters(hp, training)
    e, b, m = resolved.n_epochs, resolved.batch_size, resolved.learning_rate_multiplier
    budget, cap = training.update_budget(e, b, m, rows), training.budget_cap
    if budget <= cap * (1 + BUDGET_TOLERANCE):
        return resolved
    raise _out_of_range(_budget_param(hp, training, resolved, rows), _budget_message(training, resolved, rows))


def _fits(training: TrainingPolicy, e: int, b: int, m: float, rows: int | None) -> bool:
    return training.update_budget(e, b, m, rows) <= training.budget_cap * (1 + BUDGET_TOLERANCE)


def _budget_param(hp: Hyperparameters, training: TrainingPolicy, r: ResolvedHyperparameters, rows: int | None) -> str:
    """The explicitly set field that multiplies the budget most."""
    factors = {
        "n_epochs": r.n_epochs / training.default_epochs,
        "batch_size": training.update_budget(training.default_epochs, r.batch_size, 1.0, rows),
        "learning_rate_multiplier": r.learning_rate_multiplier,
    }
    explicit = [name for name in factors if getattr(hp, name) != "auto"] or ["batch_size"]
    return max(explicit, key=lambda name: factors[name])


def _budget_message(training: TrainingPolicy, r: ResolvedHyperparameters, rows: int | None) -> str:
    e, b, m = r.n_epochs, r.batch_size, r.learning_rate_multiplier
    budget, cap = training.update_budget(e, b, m, rows), training.budget_cap
    if rows:
        steps = training.optimizer_steps(e, b, rows)
        default = training.optimizer_steps(training.default_epochs, training.default_batch_size, rows)
        detail = (
            f"n_epochs {e} x ceil({rows} rows / batch_size {b}) = {steps} optimizer steps at "
            f"learning_rate_multiplier {m:g}, against the default job's {training.default_epochs} x "
            f"ceil({rows} / {training.default_batch_size}) = {default} steps at 1"
        )
    else:
        detail = (
            f"n_epochs {e}, batch_size {b}, learning_rate_multiplier {m:g}, against the default job's "
            f"n_epochs {training.default_epochs}, batch_size {training.default_batch_size}, multiplier 1"
        )
    fixes = []
    batch = next((x for x in range(b + 1, training.max_batch_size + 1) if _fits(training, e, x, m, rows)), None)
    if batch is not None:
        fixes.append(f"batch_size to at least {batch}")
    epochs = next((x for x in range(e - 1, 0, -1) if _fits(training, x, b, m, rows)), None)
    if epochs is not None:
        fixes.append(f"n_epochs to at most {epochs}")
    multiplier = math.floor(m * cap / budget * 1000) / 1000
    if multiplier > 0:
        fixes.append(f"learning_rate_multiplier to at most {multiplier:g}")
    hint = f" To fit, set {', or '.join(fixes)}." if fixes else ""
    return (
        f"These hyperparameters use {budget:.2f}x the update budget (optimizer steps x learning rate) of this "
        f"model's default job on this training file ({detail}); this service allows at most {cap:.2f}x, the "
        f"strength its safety defence is calibrated for.{hint}"
    )


class SupervisedMethod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: Hyperparameters = Hyperparameters()


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["supervised"] = "supervised"
    supervised: SupervisedMethod = SupervisedMethod()


class JobCreate(BaseModel):
    """What a tenant may send. Unknown fields are refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(default=None, max_length=64)
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    suffix: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    integrations: list[dict[str, Any]] | None = Field(default=None, max_length=0)

    def effective_hyperparameters(self) -> Hyperparameters:
        if self.method is not None:
            return self.method.supervised.hyperparameters.check_bounds()
        return (self.hyperparameters or Hyperparameters()).check_bounds()


class JobError(BaseModel):
    """The job's `error` object (OpenAI's shape): written by whoever fails the job, stored as `model_dump()`."""

    code: str
    message: str
    param: str | None = None


SafetyDecision = Literal["released", "blocked", "held", "overridden"]


class SafetyReport(BaseModel):
    """Our extension on the job object: what the gate decided and on which figures (or, for a job blocked before
    training, what data screening found). The job row stores it as `stored()` and the service reads it back
    through this model; every field has a default, so rows written before a field existed still read."""

    decision: SafetyDecision | None = None
    base_asr: float | None = None
    candidate_asr: float | None = None
    reasons: list[str] = []
    worst_suite: str | None = None
    worst_asr: float | None = None
    screening: ScreeningSummary | None = None  # the training data's screening, before training
    report_key: str | None = Field(default=None, exclude=True)  # internal: where the full report is stored

    def stored(self) -> dict[str, Any]:
        """The job row's `safety` column: report_key kept (the API hides it), screening left out (the screen step
        stores it in a column of its own, and the API puts it back inside)."""
        return {**self.model_dump(mode="json", exclude={"screening"}), "report_key": self.report_key}


class Job(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    model: str
    organization_id: str
    status: JobStatus
    training_file: str
    validation_file: str | None
    hyperparameters: Hyperparameters
    result_files: list[str] = []
    seed: int
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    trained_tokens: int | None = None
    error: JobError | None = None
    estimated_finish: int | None = None
    metadata: dict[str, str] | None = None
    method: Method
    integrations: list[dict[str, Any]] | None = None
    user_provided_suffix: str | None = None
    safety: SafetyReport | None = None


EventLevel = Literal["info", "warn", "error"]


class JobEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: EventLevel
    message: str
    type: Literal["message", "metrics"] = "message"
    data: dict[str, Any] | None = None


class CheckpointMetrics(BaseModel):
    step: int
    train_loss: float | None = None
    learning_rate: float | None = None


class JobCheckpoint(BaseModel):
    """OpenAI's fine_tuning.job.checkpoint. A checkpoint is training state, not a released model: it has not
    been through the safety gate, so fine_tuned_model_checkpoint is always null."""

    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuning_job_id: str
    step_number: int
    metrics: CheckpointMetrics
    fine_tuned_model_checkpoint: None = None
