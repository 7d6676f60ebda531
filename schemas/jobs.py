"""Fine-tuning job, event and request types (OpenAI's fine_tuning.job shapes plus our `safety`)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.screening import ScreeningSummary

# "held": trained and evaluated, waiting for an admin's review (gate release_mode "review").
JobStatus = Literal["validating_files", "queued", "running", "held", "succeeded", "failed", "cancelled", "paused"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


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
    code: str
    message: str
    param: str | None = None


class SafetySummary(BaseModel):
    """Our extension on the job object: what the gate decided and on which figures (or, for a job blocked before
    training, what data screening found)."""

    decision: Literal["released", "blocked", "held", "overridden"] | None = None
    base_asr: float | None = None
    candidate_asr: float | None = None
    reasons: list[str] = []
    worst_suite: str | None = None
    worst_asr: float | None = None
    screening: ScreeningSummary | None = None  # the training data's screening, before training
    report_key: str | None = Field(default=None, exclude=True)  # internal: where the full report is stored


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
    safety: SafetySummary | None = None


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
