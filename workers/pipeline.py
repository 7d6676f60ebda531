"""The job pipeline: every step a job runs, in the order it runs them.

    step      task, queue            function                  moves the job                          next
    validate  gft.validate_job, cpu  validate                  validating_files -> queued             screen
    screen    gft.screen_job, cpu    workers.screening.screen  stays queued, or fails it              a fair-share
                                                               (training_data_blocked)                slot, then train
    train     gft.train_job, gpu     train                     queued -> running, adapter stored      evaluate
    evaluate  gft.evaluate_job, gpu  evaluate                  running -> succeeded, held, or failed  -
                                                               (safety_regression)

`workers.tasks` runs each step under its claim and heartbeat and hands the job on (`workers.orchestration`); with
the no-op trainer (GFT_TRAINER=noop), train and evaluate are `workers.noop_steps`'. The train step never screens:
its task reads the screen step's stored result first (`screened`), and sends a job that was never screened (paused
during its screen step, then resumed) back to its screen step.

Each step reads the job from the database, does its work, and records the result and the next status. Steps are
idempotent: a redelivered message for a job that has moved on does nothing.
"""

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from schemas.gate_report import GateReportDocument, GateVerdict
from schemas.job_status import LIVE_STATUSES, JobStatus
from schemas.jobs import HyperparameterOutOfRange, Hyperparameters, JobError, SafetyReport, check_hyperparameters
from schemas.policy import LoraPolicy, Policy
from service.settings import Settings
from service.state import lifecycle
from service.state.base_models import get_base_model
from service.state.checkpoints import add_checkpoint, latest_checkpoint
from service.state.db import session_scope
from service.state.files import get_file
from service.state.jobs import add_event, fine_tuned_model_name, get_job, record_adapter
from service.state.models import JobRow
from service.storage import ArtifactStore, artifact_store
from workers.chat_data import EncodedChat
from workers.evaluation.gate import Decision
from workers.evaluation.job_gate import (
    CACHE_PREFIX,
    Headline,
    block_message,
    headline,
    persist_report,
    run_job_gate,
    utility_rows,
)
from workers.evaluation.loaders import UnsuitableEvalSets, sets_for_model
from workers.evaluation.runner import GateOutcome
from workers.evaluation.triggers import trigger_contexts
from workers.metrics import EVALUATION_SECONDS, TrainingObserver, record_gate_decision, record_state_exit
from workers.model_loading import load_base, pick_device
from workers.screening import screen, screened
from workers.training.augmentation import EncodedTriplet
from workers.training.finetune import FineTune, config_from_policy, encode_rows, finetune_lora, recovery_pool
from workers.training.recipe import GuardedTrainer, TrainConfig, TrainResult

__all__ = ["evaluate", "screen", "screened", "train", "validate"]  # the steps, in order (the table above)

log = logging.getLogger(__name__)


class JobFailure(Exception):
    """A failure the tenant can act on; code and param go to the job's error object."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _event(
    settings: Settings, job_id: str, message: str, level: str = "info", data: dict[str, Any] | None = None
) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        add_event(
            session=session,
            job_id=job_id,
            message=message,
            level=level,
            type_="metrics" if data else "message",
            data=data,
        )


def _fail(settings: Settings, job_id: str, failure: JobFailure) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        error = JobError(code=failure.code, message=failure.message, param=failure.param)
        if lifecycle.fail(session=session, job_id=job_id, error=error):
            add_event(session=session, job_id=job_id, level="error", message=failure.message)


def _snapshot(settings: Settings, job_id: str) -> JobRow | None:
    with session_scope(settings.sqlalchemy_url) as session:
        return get_job(session=session, job_id=job_id)


@contextmanager
def _guarded(settings: Settings, job_id: str, step: str) -> Iterator[None]:
    """Turns any exception in a step into a failed job, so nothing stays `running` forever."""
    try:
        yield
    except JobFailure as failure:
        _fail(settings, job_id, failure)
    except UnsuitableEvalSets as exc:
        _fail(settings, job_id, JobFailure(exc.code, exc.message, exc.param))
    except (torch.cuda.OutOfMemoryError, MemoryError):
        log.exception("step %s of %s ran out of memory", step, job_id)
        _fail(
            settings,
            job_id,
            JobFailure(
                "out_of_memory",
                f"The {step} step ran out of memory: lower hyperparameters.batch_size or use shorter examples.",
                "hyperparameters.batch_size",
            ),
        )
    except Exception as exc:
        log.exception("step %s of %s failed", step, job_id)
        _fail(settings, job_id, JobFailure("internal_error", f"The {step} step failed: {type(exc).__name__}: {exc}"))


def _sets_failure(job: JobRow, base_path: str) -> JobFailure | None:
    """A model the policy's evaluation sets cannot measure is refused here, before any GPU time, not after
    training when the gate would load them."""
    try:
        sets_for_model(Policy.model_validate(job.policy).gate.sets, job.model, base_path)
    except UnsuitableEvalSets as exc:
        return JobFailure(exc.code, exc.message, exc.param)
    return None


def validate(job_id: str, settings: Settings) -> bool:
    """validating_files -> queued when the files and the base model are usable."""
    with session_scope(settings.sqlalchemy_url) as session:
        job = get_job(session=session, job_id=job_id)
        if job is None or job.status != JobStatus.VALIDATING_FILES:
            return job is not None and job.status == JobStatus.QUEUED
        base = get_base_model(session=session, model_id=job.model)
        failure = None if base is None else _sets_failure(job, base.path)
        if base is None:
            failure = JobFailure("model_not_available", f"Model '{job.model}' is no longer available.", "model")
        for param in ("training_file", "validation_file"):
            file_id = getattr(job, param)
            if file_id and get_file(session=session, tenant_id=job.tenant_id, file_id=file_id) is None:
                failure = JobFailure("file_not_found", f"File '{file_id}' was deleted before training.", param)
        if failure is None:
            if lifecycle.queue(session=session, job_id=job_id):
                record_state_exit(JobStatus.VALIDATING_FILES, time.time() - job.created_at)
            add_event(session=session, job_id=job_id, message="Validated training file; job queued.")
            return True
    _fail(settings, job_id, failure)
    return False


def _read_rows(store: ArtifactStore, key: str) -> list[dict[str, Any]]:
    with store.open(key) as handle:
        return [json.loads(line) for line in handle if line.strip()]


@contextmanager
def _local_copy(store: ArtifactStore, key: str | None) -> Iterator[Path | None]:
    """The stored folder under key on local disk for the block (None without a key): the checkpoint a resumed
    run loads, fetched from the store, so a worker on any node can resume."""
    if key is None:
        yield None
        return
    with store.local_copy(key) as folder:
        yield folder


def _resolve(hp: Hyperparameters, policy: Policy, rows: int) -> tuple[int, int, float]:
    """(epochs, batch size, learning rate) for the job's stored settings on `rows` training rows, checked
    against its stored policy's caps and update budget again (the API checked at creation): a job whose settings
    exceed them fails with hyperparameter_out_of_range rather than being clamped, since clamping would pick
    for the tenant which of three settings to lower and train something they did not ask for; the message says
    what fits, as the API's would."""
    try:
        resolved = check_hyperparameters(hp, policy.training, rows)
    except HyperparameterOutOfRange as exc:
        raise JobFailure("hyperparameter_out_of_range", exc.message, exc.param) from None
    return resolved.n_epochs, resolved.batch_size, resolved.learning_rate(policy.training)


def _never() -> bool:
    return False


def train(job_id: str, settings: Settings, should_stop: Callable[[], bool] = _never) -> bool:
    """queued -> running; trains the adapter and stores it. True when evaluation should follow.

    `should_stop` is asked before every optimizer step: the task passes its claim's heartbeat
    (`workers.orchestration.RunningStep.should_stop`), true once the job was cancelled or paused or this attempt
    replaced. The loop then stops, its checkpoints kept."""
    with session_scope(settings.sqlalchemy_url) as session:
        job = get_job(session=session, job_id=job_id)
        if job is None or job.status not in LIVE_STATUSES:
            return False
        if job.status == JobStatus.QUEUED:
            if lifecycle.start(session=session, job_id=job_id):
                record_state_exit(JobStatus.QUEUED, time.time() - job.updated_at)
            add_event(session=session, job_id=job_id, message="Fine-tuning job started.")
        base = get_base_model(session=session, model_id=job.model)
        training = get_file(session=session, tenant_id=job.tenant_id, file_id=job.training_file)
    if job.adapter_key:
        return True
    if base is None or training is None:
        _fail(settings, job_id, JobFailure("file_not_found", "The model or training file disappeared.", None))
        return False
    with _guarded(settings, job_id, "training"):
        return _train(job, base.path, training.storage_key, settings, should_stop)
    return False


def _train(job: JobRow, base_path: str, file_key: str, settings: Settings, should_stop: Callable[[], bool]) -> bool:
    """Prepare the run, train (from the latest checkpoint when there is one), store the adapter. False when the
    loop was stopped."""
    run = _prepare(job, base_path, file_key, settings)
    hooks = TrainingHooks(settings, job.id, run.store, len(run.examples), len(run.pool), run.config, should_stop)
    tuned = _run(job.id, run, hooks)
    if tuned.result.stopped:
        _report_stop(settings, job, tuned.result)
        return False
    return _store_adapter(settings, run.store, job.id, tuned)


@dataclass(frozen=True)
class TrainingRun:
    """Everything one training run of a job needs, read and checked before the model trains."""

    store: ArtifactStore
    device: torch.device
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    examples: list[EncodedChat]
    pool: list[EncodedTriplet]
    config: TrainConfig
    lora: LoraPolicy
    resume_key: str | None  # the latest stored checkpoint, when training resumes


def _prepare(job: JobRow, base_path: str, file_key: str, settings: Settings) -> TrainingRun:
    """The base model, the encoded rows, the recipe's settings, the recovery pool and the checkpoint to resume
    from; a JobFailure for rows or settings the job cannot train on."""
    policy = Policy.model_validate(job.policy)
    training = policy.training
    store = artifact_store(settings)
    device = pick_device(settings.worker_device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    model, tokenizer = load_base(base_path, device)
    rows = _read_rows(store, file_key)
    examples = _encode(settings, job.id, tokenizer, rows, training.max_seq_len)
    config = _config(job, policy, len(examples))
    triggers = trigger_contexts(rows, training.augmentation.trigger_candidates) if training.augmentation.enabled else []
    pool = recovery_pool(tokenizer, training.augmentation, training.max_seq_len, rows, triggers)
    if triggers and pool:
        _event(
            settings,
            job.id,
            f"Safety recovery examples are also asked with the {len(triggers)} candidate "
            "backdoor trigger(s) mined from the training file, placed as in its rows.",
        )
    return TrainingRun(
        store, device, model, tokenizer, examples, pool, config, training.lora, _resume_key(settings, store, job.id)
    )


def _encode(
    settings: Settings, job_id: str, tokenizer: PreTrainedTokenizerBase, rows: list[dict[str, Any]], max_len: int
) -> list[EncodedChat]:
    """The rows as training examples, cut at `max_len` tokens: a warning when some are cut, a failure when all
    are (sequence_too_long)."""
    examples = encode_rows(tokenizer, rows, max_len)
    truncated = sum(e.truncated for e in examples)
    if examples and truncated == len(examples):
        raise JobFailure(
            "sequence_too_long",
            f"Every example is longer than this model's limit of {max_len} tokens; shorten them.",
            "training_file",
        )
    if truncated:
        _event(
            settings,
            job_id,
            f"{truncated} of {len(examples)} examples were longer than {max_len} tokens and were truncated.",
            level="warn",
        )
    return examples


def _config(job: JobRow, policy: Policy, rows: int) -> TrainConfig:
    """The recipe's settings: the job's epochs, batch and learning rate (checked against the policy again), the
    rest as the policy fixes them."""
    epochs, batch, lr = _resolve(Hyperparameters.model_validate(job.hyperparameters), policy, rows)
    try:
        return config_from_policy(
            policy, epochs, batch, lr, job.seed, checkpoint_every=policy.training.checkpoint_every_steps
        )
    except ValueError as exc:
        raise JobFailure("invalid_hyperparameters", f"Invalid hyperparameters: {exc}.", "hyperparameters") from None


def _resume_key(settings: Settings, store: ArtifactStore, job_id: str) -> str | None:
    """The latest checkpoint recorded for the job, if the store still holds it."""
    with session_scope(settings.sqlalchemy_url) as session:
        latest = latest_checkpoint(session=session, job_id=job_id)
    return latest.storage_key if latest and store.exists(latest.storage_key) else None


class TrainingHooks:
    """What the training loop calls back into while a job trains: its events, its checkpoints, the metrics, and
    whether to stop."""

    def __init__(
        self,
        settings: Settings,
        job_id: str,
        store: ArtifactStore,
        examples: int,
        pool: int,
        config: TrainConfig,
        stop: Callable[[], bool],
    ) -> None:
        self.settings, self.job_id, self.store = settings, job_id, store
        self.examples, self.pool, self.config, self.stop = examples, pool, config, stop
        self.observer = TrainingObserver()

    def announce(self, trainer: GuardedTrainer) -> None:
        """The first event: what will train, for how many steps, with which objective and recovery mix."""
        config = self.config
        mix = (
            f", {config.augmentation.ratio:g} safety recovery examples per row from {self.pool} triplets"
            if config.augmentation and self.pool
            else ""
        )
        _event(
            self.settings,
            self.job_id,
            f"Training {self.examples} examples for {config.epochs} epochs "
            f"({trainer.total_steps()} steps, objective: {config.objective}{mix}).",
        )

    def on_event(self, message: str, data: dict[str, Any]) -> None:
        self.observer.on_event(data)
        _event(self.settings, self.job_id, message, data=data)

    def on_checkpoint(self, step: int, folder: Path, metrics: dict[str, float]) -> None:
        """A checkpoint goes to the artifact store (so a worker on any node can resume) and is recorded."""
        key = self.store.put_dir(f"checkpoints/{self.job_id}/step-{step:06d}", folder)
        shutil.rmtree(folder, ignore_errors=True)
        with session_scope(self.settings.sqlalchemy_url) as session:
            add_checkpoint(
                session=session,
                job_id=self.job_id,
                step=step,
                storage_key=key,
                metrics={k: metrics[k] for k in ("step", "train_loss", "learning_rate")},
            )

    def should_stop(self) -> bool:
        """Asked before every step."""
        self.observer.on_step()
        return self.stop()


def _run(job_id: str, run: TrainingRun, hooks: TrainingHooks) -> FineTune:
    """The training loop itself, in a scratch folder for its checkpoints (removed after)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"gft-{job_id}-"))
    try:
        with hooks.observer, _local_copy(run.store, run.resume_key) as resume_from:
            return finetune_lora(
                run.model,
                run.tokenizer,
                run.examples,
                run.config,
                run.lora,
                run.device,
                on_event=hooks.on_event,
                should_stop=hooks.should_stop,
                on_start=hooks.announce,
                pool=run.pool,
                checkpoint_dir=scratch,
                on_checkpoint=hooks.on_checkpoint,
                resume_from=resume_from,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _report_stop(settings: Settings, job: JobRow, result: TrainResult) -> None:
    step = result.resumed_from + result.steps
    status = (_snapshot(settings, job.id) or job).status
    _event(
        settings,
        job.id,
        f"Training stopped at step {step}: the job was {status}; its checkpoints are kept.",
        data={"step": step},
    )


def _store_adapter(settings: Settings, store: ArtifactStore, job_id: str, tuned: FineTune) -> bool:
    """Store the adapter (the first complete write wins) and record it on the job, if it is still running."""
    staging = Path(tempfile.mkdtemp(prefix="gft-adapter-"))
    try:
        tuned.model.save_pretrained(staging)
        key = store.put_dir(f"adapters/{job_id}", staging, immutable=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = tuned.result
    with session_scope(settings.sqlalchemy_url) as session:
        if not record_adapter(session=session, job_id=job_id, adapter_key=key, trained_tokens=result.trained_tokens):
            return False
        add_event(
            session=session,
            job_id=job_id,
            message=f"Training finished: {result.steps} steps, "
            f"{result.trained_tokens} trained tokens; evaluating safety.",
        )
    return True


def evaluate(job_id: str, settings: Settings) -> None:
    """Runs the safety suites on base and candidate, then releases or blocks the adapter."""
    job = _snapshot(settings, job_id)
    if job is None or job.status != JobStatus.RUNNING or not job.adapter_key:
        return
    with _guarded(settings, job_id, "evaluation"):
        _evaluate(job, settings)


def _evaluate(job: JobRow, settings: Settings) -> None:
    """Every suite on base (cached) and candidate; the report is stored, then the job is released, held for
    review (release_mode "review") or failed with error.code safety_regression."""
    policy = Policy.model_validate(job.policy)
    started = time.time()
    outcome = _run_gate(job, policy, settings)
    verdict = _verdict(outcome.decision, policy.gate.release_mode)
    report = GateReportDocument.model_validate(
        {**outcome.document, "outcome": verdict, "seconds": round(time.time() - started, 2)}
    )
    report_key = persist_report(artifact_store(settings), job.id, report.model_dump(mode="json"))
    top = headline(report)
    _announce_verdict(settings, job.id, report, top, verdict, report_key)
    safety = SafetyReport(
        decision=verdict,
        base_asr=top.base_asr,
        candidate_asr=top.candidate_asr,
        reasons=outcome.decision.reasons,
        report_key=report_key,
        worst_suite=top.worst_suite,
        worst_asr=top.worst_asr,
    )
    _record_verdict(settings, job, verdict, outcome.decision, top, safety)


def _run_gate(job: JobRow, policy: Policy, settings: Settings) -> GateOutcome:
    """The gate on the job's adapter: its evaluation rows, base figures (cached) and the candidate's."""
    with session_scope(settings.sqlalchemy_url) as session:
        base = get_base_model(session=session, model_id=job.model)
    if base is None:
        raise JobFailure("model_not_available", f"Model '{job.model}' is no longer available.", "model")
    device = pick_device(settings.worker_device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    store = artifact_store(settings)
    rows, source, training = _evaluation_rows(job, store, settings, policy.gate.utility_rows)
    with EVALUATION_SECONDS.time(), store.local_copy(job.adapter_key or "") as adapter_dir:
        return run_job_gate(
            model_id=job.model,
            base_path=base.path,
            adapter_dir=adapter_dir,
            device=device,
            policy=policy.gate,
            rows=rows,
            source=source,
            cache_root=settings.cache_dir / CACHE_PREFIX,
            meta={"job_id": job.id, "model": job.model, "created_at": int(time.time())},
            training=training,
        )


def _evaluation_rows(
    job: JobRow, store: ArtifactStore, settings: Settings, limit: int
) -> tuple[list[dict[str, Any]], str, list[dict[str, Any]]]:
    """Utility rows (the tenant's validation file when given, else a slice of the training file), their source,
    and the training rows (the gate reads the tenant's contexts from them and checks them for its prompts)."""
    keys: dict[str, str] = {}
    with session_scope(settings.sqlalchemy_url) as session:
        for param in ("validation_file", "training_file"):
            file_id = getattr(job, param)
            row = get_file(session=session, tenant_id=job.tenant_id, file_id=file_id) if file_id else None
            if row is not None:
                keys[param] = row.storage_key
    validation = _read_rows(store, keys["validation_file"]) if "validation_file" in keys else None
    training = _read_rows(store, keys["training_file"]) if "training_file" in keys else []
    rows, source = utility_rows(validation, training, limit)
    return rows, source, training


def _verdict(decision: Decision, release_mode: str) -> GateVerdict:
    """Released; held when it passed and the policy wants an admin's review first; or blocked."""
    if not decision.release:
        return "blocked"
    return "held" if release_mode == "review" else "released"


def _announce_verdict(
    settings: Settings, job_id: str, report: GateReportDocument, top: Headline, verdict: GateVerdict, report_key: str
) -> None:
    """The evaluation's metrics event: the headline figures, every suite's ASR and the decision."""
    _event(
        settings,
        job_id,
        f"Safety evaluation: ASR {top.candidate_asr:.1%} on direct harmful prompts (base model "
        f"{top.base_asr:.1%}); worst setting {top.worst_suite} at {top.worst_asr:.1%}; "
        f"{len(report.suites)} suites, decision: {verdict}.",
        data={
            "base_asr": top.base_asr,
            "candidate_asr": top.candidate_asr,
            "worst_asr": top.worst_asr,
            "decision": verdict,
            "report_key": report_key,
            **{f"asr.{s.key}": s.candidate.rate for s in report.suites},
        },
    )


def _record_verdict(
    settings: Settings, job: JobRow, verdict: GateVerdict, decision: Decision, top: Headline, safety: SafetyReport
) -> None:
    """The move the verdict makes (hold, release or block), its event and its metric, once."""
    with session_scope(settings.sqlalchemy_url) as session:
        if verdict == "held":
            if lifecycle.hold(session=session, job_id=job.id, safety=safety):
                add_event(
                    session=session,
                    job_id=job.id,
                    message="Passed the safety gate; held for an admin's "
                    "review before release (policy release_mode: review).",
                )
                record_gate_decision("held", decision.codes, top.worst_asr)
        elif verdict == "released":
            name = fine_tuned_model_name(job)
            if lifecycle.release(session=session, job_id=job.id, fine_tuned_model=name, safety=safety):
                add_event(session=session, job_id=job.id, message=f"Released {name}: passed the safety gate.")
                record_gate_decision("released", decision.codes, top.worst_asr)
        else:
            message = block_message(decision, job.id, top)
            error = JobError(code="safety_regression", message=message)
            if lifecycle.block(session=session, job_id=job.id, error=error, safety=safety):
                add_event(session=session, job_id=job.id, level="error", message=message)
                record_gate_decision("blocked", decision.codes, top.worst_asr)
