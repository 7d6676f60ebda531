"""The job pipeline, one function per step: validate -> train -> evaluate + gate -> release or block.

Each step reads the job from the database, does its work, and records the result and the next status.
Steps are idempotent: a redelivered message for a job that has moved on does nothing.
"""

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from schemas.job_status import LIVE_STATUSES, JobStatus
from schemas.jobs import HyperparameterOutOfRange, Hyperparameters, JobError, SafetyReport, check_hyperparameters
from schemas.policy import Policy
from service.settings import Settings
from service.state import lifecycle
from service.state.base_models import get_base_model
from service.state.checkpoints import add_checkpoint, latest_checkpoint
from service.state.db import session_scope
from service.state.files import get_file
from service.state.jobs import add_event, fine_tuned_model_name, get_job
from service.state.models import JobRow
from service.storage import ArtifactStore, artifact_store
from workers.evaluation.job_gate import (
    CACHE_PREFIX,
    block_message,
    headline,
    persist_report,
    run_job_gate,
    utility_rows,
)
from workers.evaluation.loaders import UnsuitableEvalSets, sets_for_model
from workers.metrics import EVALUATION_SECONDS, TrainingObserver, record_gate_decision, record_state_exit
from workers.model_loading import load_base, pick_device
from workers.training.finetune import config_from_policy, encode_rows, finetune_lora, recovery_pool
from workers.training.recipe import GuardedTrainer

log = logging.getLogger(__name__)


class JobFailure(Exception):
    """A failure the tenant can act on; code and param go to the job's error object."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _event(settings: Settings, job_id: str, message: str, level: str = "info",
           data: dict[str, Any] | None = None) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        add_event(session=session, job_id=job_id, message=message, level=level,
                  type_="metrics" if data else "message", data=data)


def _fail(settings: Settings, job_id: str, failure: JobFailure) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        error = JobError(code=failure.code, message=failure.message, param=failure.param).model_dump()
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
        _fail(settings, job_id, JobFailure(
            "out_of_memory", f"The {step} step ran out of memory: lower hyperparameters.batch_size or use shorter "
            "examples.", "hyperparameters.batch_size"))
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


def train(job_id: str, settings: Settings, superseded: Callable[[], bool] = lambda: False) -> bool:
    """queued -> running; trains the adapter and stores it. True when evaluation should follow.

    `superseded` is asked before every step with the job's status: true when this attempt was replaced (see
    workers.orchestration), so the loop stops like it does on cancel or pause, checkpoints kept."""
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
        return _train(job, base.path, training.storage_key, settings, superseded)
    return False


def _train(job: JobRow, base_path: str, file_key: str, settings: Settings,
           superseded: Callable[[], bool] = lambda: False) -> bool:
    policy = Policy.model_validate(job.policy)
    store = artifact_store(settings)
    device = pick_device(settings.worker_device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    model, tokenizer = load_base(base_path, device)
    rows = _read_rows(store, file_key)
    examples = encode_rows(tokenizer, rows, policy.training.max_seq_len)
    truncated = sum(e.truncated for e in examples)
    if examples and truncated == len(examples):
        raise JobFailure("sequence_too_long", f"Every example is longer than this model's limit of "
                         f"{policy.training.max_seq_len} tokens; shorten them.", "training_file")
    if truncated:
        _event(settings, job.id, f"{truncated} of {len(examples)} examples were longer than "
               f"{policy.training.max_seq_len} tokens and were truncated.", level="warn")
    epochs, batch, lr = _resolve(Hyperparameters.model_validate(job.hyperparameters), policy, len(examples))
    try:
        config = config_from_policy(policy, epochs, batch, lr, job.seed,
                                    checkpoint_every=policy.training.checkpoint_every_steps)
    except ValueError as exc:
        raise JobFailure("invalid_hyperparameters", f"Invalid hyperparameters: {exc}.", "hyperparameters") from None
    pool = recovery_pool(tokenizer, policy.training.augmentation, policy.training.max_seq_len, rows)
    with session_scope(settings.sqlalchemy_url) as session:
        latest = latest_checkpoint(session=session, job_id=job.id)
    resume_key = latest.storage_key if latest and store.exists(latest.storage_key) else None

    def announce(trainer: GuardedTrainer) -> None:
        mix = (f", {config.augmentation.ratio:g} safety recovery examples per row from {len(pool)} triplets"
               if config.augmentation and pool else "")
        _event(settings, job.id, f"Training {len(examples)} examples for {epochs} epochs "
               f"({trainer.total_steps()} steps, objective: {config.objective}{mix}).")

    def checkpointed(step: int, folder: Path, metrics: dict[str, float]) -> None:
        key = store.put_dir(f"checkpoints/{job.id}/step-{step:06d}", folder)
        shutil.rmtree(folder, ignore_errors=True)
        with session_scope(settings.sqlalchemy_url) as session:
            add_checkpoint(session=session, job_id=job.id, step=step, storage_key=key,
                           metrics={k: metrics[k] for k in ("step", "train_loss", "learning_rate")})

    observer = TrainingObserver()

    def on_event(message: str, data: dict[str, Any]) -> None:
        observer.on_event(data)
        _event(settings, job.id, message, data=data)

    def should_stop() -> bool:  # asked before every step
        observer.on_step()
        return superseded() or (_snapshot(settings, job.id) or job).status != JobStatus.RUNNING

    scratch = Path(tempfile.mkdtemp(prefix=f"gft-{job.id}-"))
    try:
        with observer, _local_copy(store, resume_key) as resume_from:
            tuned = finetune_lora(
                model, tokenizer, examples, config, policy.training.lora, device, on_event=on_event,
                should_stop=should_stop, on_start=announce,
                pool=pool, checkpoint_dir=scratch, on_checkpoint=checkpointed, resume_from=resume_from)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    peft_model, result = tuned.model, tuned.result
    if result.stopped:
        _event(settings, job.id, f"Training stopped at step {result.resumed_from + result.steps}: the job was "
               f"{(_snapshot(settings, job.id) or job).status}; its checkpoints are kept.",
               data={"step": result.resumed_from + result.steps})
        return False
    staging = Path(tempfile.mkdtemp(prefix="gft-adapter-"))
    try:
        peft_model.save_pretrained(staging)
        key = store.put_dir(f"adapters/{job.id}", staging, immutable=True)  # first complete write wins
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with session_scope(settings.sqlalchemy_url) as session:
        row = get_job(session=session, job_id=job.id)
        if row is None or row.status != JobStatus.RUNNING:
            return False
        row.adapter_key, row.trained_tokens = key, result.trained_tokens
        add_event(session=session, job_id=job.id, message=f"Training finished: {result.steps} steps, "
                  f"{result.trained_tokens} trained tokens; evaluating safety.")
    return True


def evaluate(job_id: str, settings: Settings) -> None:
    """Runs the safety suites on base and candidate, then releases or blocks the adapter."""
    job = _snapshot(settings, job_id)
    if job is None or job.status != JobStatus.RUNNING or not job.adapter_key:
        return
    with _guarded(settings, job_id, "evaluation"):
        _evaluate(job, settings)


def _evaluation_rows(job: JobRow, store: ArtifactStore, settings: Settings,
                     limit: int) -> tuple[list[dict[str, Any]], str, list[dict[str, Any]]]:
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


def _evaluate(job: JobRow, settings: Settings) -> None:
    """Every suite on base (cached) and candidate; the report is stored, then the job is released, held for
    review (release_mode "review") or failed with error.code safety_regression."""
    policy = Policy.model_validate(job.policy)
    with session_scope(settings.sqlalchemy_url) as session:
        base = get_base_model(session=session, model_id=job.model)
    if base is None:
        raise JobFailure("model_not_available", f"Model '{job.model}' is no longer available.", "model")
    device = pick_device(settings.worker_device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    store = artifact_store(settings)
    rows, source, training = _evaluation_rows(job, store, settings, policy.gate.utility_rows)
    started = time.time()
    with EVALUATION_SECONDS.time(), store.local_copy(job.adapter_key or "") as adapter_dir:
        outcome = run_job_gate(model_id=job.model, base_path=base.path, adapter_dir=adapter_dir,
                               device=device, policy=policy.gate, rows=rows, source=source,
                               cache_root=settings.cache_dir / CACHE_PREFIX,
                               meta={"job_id": job.id, "model": job.model, "created_at": int(time.time())},
                               training=training)
    decision = outcome.decision
    held = decision.release and policy.gate.release_mode == "review"
    verdict = "held" if held else "released" if decision.release else "blocked"
    document = {**outcome.document, "outcome": verdict, "seconds": round(time.time() - started, 2)}
    report_key = persist_report(store, job.id, document)
    top = headline(document)
    safety = SafetyReport(decision=verdict, base_asr=top.base_asr, candidate_asr=top.candidate_asr,
                          reasons=decision.reasons, report_key=report_key, worst_suite=top.worst_suite,
                          worst_asr=top.worst_asr).stored()
    _event(settings, job.id, f"Safety evaluation: ASR {top.candidate_asr:.1%} on direct harmful prompts (base model "
           f"{top.base_asr:.1%}); worst setting {top.worst_suite} at {top.worst_asr:.1%}; "
           f"{len(document['suites'])} suites, decision: {verdict}.",
           data={"base_asr": top.base_asr, "candidate_asr": top.candidate_asr, "worst_asr": top.worst_asr,
                 "decision": verdict, "report_key": report_key,
                 **{f"asr.{s['key']}": s["candidate"]["rate"] for s in document["suites"]}})
    with session_scope(settings.sqlalchemy_url) as session:
        if held:
            if lifecycle.hold(session=session, job_id=job.id, safety=safety):
                add_event(session=session, job_id=job.id, message="Passed the safety gate; held for an admin's "
                          "review before release (policy release_mode: review).")
                record_gate_decision("held", decision.codes, top.worst_asr)
        elif decision.release:
            name = fine_tuned_model_name(job)
            if lifecycle.release(session=session, job_id=job.id, fine_tuned_model=name, safety=safety):
                add_event(session=session, job_id=job.id, message=f"Released {name}: passed the safety gate.")
                record_gate_decision("released", decision.codes, top.worst_asr)
        else:
            message = block_message(decision, job.id, top)
            error = JobError(code="safety_regression", message=message).model_dump()
            if lifecycle.block(session=session, job_id=job.id, error=error, safety=safety):
                add_event(session=session, job_id=job.id, level="error", message=message)
                record_gate_decision("blocked", decision.codes, top.worst_asr)
