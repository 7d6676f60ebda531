"""`guardrail-ft jobs`: create, list, follow and control fine-tuning jobs; fetch their report and adapter."""

import hashlib
import tempfile
import webbrowser
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from service.client.follow import follow_job
from service.client.http import DEFAULT_API_URL, ApiClient, ClientFailure
from service.client.options import ApiUrl, AsJson, TenantKey, api_session
from service.client.output import console, print_json, show_fields, show_table, transfer_progress, when

jobs_app = typer.Typer(help="Fine-tuning jobs (tenant).", no_args_is_help=True)
JOBS = "/v1/fine_tuning/jobs"

JobId = Annotated[str, typer.Argument(help="a fine-tuning job id (ftjob-...)")]


def job_fields(job: dict[str, Any]) -> list[tuple[str, Any]]:
    safety = job.get("safety") or {}
    error = job.get("error")
    hyper = job["hyperparameters"]
    return [
        ("id", job["id"]),
        ("status", job["status"]),
        ("model", job["model"]),
        ("training file", job["training_file"]),
        ("validation file", job["validation_file"]),
        (
            "hyperparameters",
            f"n_epochs {hyper['n_epochs']}, batch_size {hyper['batch_size']}, "
            f"learning_rate_multiplier {hyper['learning_rate_multiplier']}",
        ),
        ("created (UTC)", when(job["created_at"])),
        ("finished (UTC)", when(job["finished_at"])),
        ("fine-tuned model", job["fine_tuned_model"]),
        ("safety decision", safety.get("decision")),
        ("safety reasons", "; ".join(safety.get("reasons") or [])),
        ("error", f"{error['code']}: {error['message']}" if error else None),
    ]


def _parse_metadata(pairs: list[str]) -> dict[str, str] | None:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ClientFailure(f"Invalid --metadata '{pair}': write KEY=VALUE.")
        metadata[key] = value
    return metadata or None


@jobs_app.command("create")
def create(
    model: Annotated[str, typer.Option(help="a base model id (see `models list`)")],
    training_file: Annotated[str, typer.Option(help="an uploaded file id (see `files upload`)")],
    validation_file: Annotated[str | None, typer.Option()] = None,
    n_epochs: Annotated[int | None, typer.Option(min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    learning_rate_multiplier: Annotated[float | None, typer.Option(min=0)] = None,
    suffix: Annotated[str | None, typer.Option(help="part of the fine-tuned model's name")] = None,
    seed: Annotated[int | None, typer.Option(min=0)] = None,
    metadata: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="a retry with the same key and body returns the first job")
    ] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """Create a fine-tuning job; unset hyperparameters are "auto" (the policy's defaults)."""
    with api_session(api_url, api_key) as client:
        hyper = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": learning_rate_multiplier}
        body = {
            "model": model,
            "training_file": training_file,
            "validation_file": validation_file,
            "hyperparameters": {k: v for k, v in hyper.items() if v is not None} or None,
            "suffix": suffix,
            "seed": seed,
            "metadata": _parse_metadata(metadata or []),
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        job = client.post(JOBS, {k: v for k, v in body.items() if v is not None}, headers=headers)
    if as_json:
        print_json(job)
        return
    typer.echo(f"created {job['id']} ({job['status']}); follow it with: guardrail-ft jobs watch {job['id']}")


@jobs_app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    after: Annotated[str | None, typer.Option(help="page on from this job id")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """Your jobs, newest first."""
    with api_session(api_url, api_key) as client:
        page = client.get(JOBS, {"limit": limit, "after": after})
    if as_json:
        print_json(page)
        return
    rows = [
        (
            j["id"],
            j["status"],
            j["model"],
            when(j["created_at"]),
            j["fine_tuned_model"],
            (j.get("safety") or {}).get("decision"),
            (j.get("error") or {}).get("code"),
        )
        for j in page["data"]
    ]
    show_table(("id", "status", "model", "created (UTC)", "fine-tuned model", "safety", "error"), rows, title="Jobs")
    if page["has_more"]:
        typer.echo(f"more: --after {page['data'][-1]['id']}")


@jobs_app.command("watch")
def watch(
    job_id: JobId,
    interval: Annotated[float, typer.Option(min=0.05, help="seconds between polls")] = 2.0,
    timeout: Annotated[float | None, typer.Option(min=0, help="give up after this many seconds")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """Follow a job's events, training steps on a progress bar, until it succeeds, fails or is cancelled. Exit
    status 0 only when it succeeded, so scripts can chain on it."""
    with api_session(api_url, api_key) as client:
        job = follow_job(client, job_id, interval=interval, timeout=timeout, console=console())
    show_fields(job_fields(job))
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def _control(
    action: Literal["cancel", "pause", "resume"], job_id: str, api_url: str, api_key: str | None, as_json: bool
) -> None:
    with api_session(api_url, api_key) as client:
        job = client.post(f"{JOBS}/{job_id}/{action}")
    if as_json:
        print_json(job)
    else:
        typer.echo(f"{job['id']}: {job['status']}")


@jobs_app.command("cancel")
def cancel(
    job_id: JobId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: TenantKey = None
) -> None:
    """Cancel a job that has not finished; training stops at its next step."""
    _control("cancel", job_id, api_url, api_key, as_json)


@jobs_app.command("pause")
def pause(job_id: JobId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: TenantKey = None) -> None:
    """Pause a queued or running job; its checkpoints are kept."""
    _control("pause", job_id, api_url, api_key, as_json)


@jobs_app.command("resume")
def resume(
    job_id: JobId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: TenantKey = None
) -> None:
    """Resume a paused job from its latest checkpoint."""
    _control("resume", job_id, api_url, api_key, as_json)


@jobs_app.command("report")
def report(
    job_id: JobId,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="save here instead of opening it")] = None,
    format_: Annotated[Literal["html", "json"], typer.Option("--format")] = "html",
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """The release gate's safety report: the HTML page opens in your browser (or is saved with --output); the
    JSON document is printed (or saved)."""
    with api_session(api_url, api_key) as client:
        body = client.request("GET", f"{JOBS}/{job_id}/safety_report", params={"format": format_}).content
        if output is not None:
            _write(output, body)
            typer.echo(f"saved the safety report of {job_id} to {output}")
        elif format_ == "json":
            typer.echo(body.decode())
        else:
            _open_in_browser(job_id, body)


def _write(path: Path, body: bytes) -> None:
    try:
        path.write_bytes(body)
    except OSError as exc:
        raise ClientFailure(f"Cannot write {path}: {exc.strerror or exc}.") from None


def _open_in_browser(job_id: str, page: bytes) -> None:
    """Through a new private temporary file (a fixed name in a shared /tmp could be a planted link); it is left
    for the browser, which reads it after this command has ended."""
    try:
        with tempfile.NamedTemporaryFile(prefix=f"gft-safety-report-{job_id}-", suffix=".html", delete=False) as handle:
            handle.write(page)
    except OSError as exc:
        raise ClientFailure(f"Cannot write the report to a temporary file: {exc.strerror or exc}.") from None
    path = Path(handle.name)
    if webbrowser.open(path.as_uri()):
        typer.echo(f"opened {path}")
    else:
        typer.echo(f"no browser found; the report is at {path}")


@jobs_app.command("download")
def download(
    job_id: JobId,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="default: <job>-adapter.tar")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """Download a released job's LoRA adapter (a tar of the peft folder) and verify its SHA-256; a file that
    does not match is deleted and the command fails."""
    target = output or Path(f"{job_id}-adapter.tar")
    with api_session(api_url, api_key) as client:
        digest = fetch_verified(client, f"{JOBS}/{job_id}/adapter", target)
    typer.echo(f"saved {target} (sha256 {digest}, verified)")


def fetch_verified(client: ApiClient, path: str, target: Path) -> str:
    """Stream to `<target>.part`, hashing as it goes; only a body matching `x-content-sha256` becomes target."""
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with (
            client.stream("GET", path) as response,
            partial.open("wb") as sink,
            transfer_progress("downloading") as progress,
        ):
            expected = response.headers.get("x-content-sha256")
            length = response.headers.get("content-length")
            task = progress.add_task(target.name, total=int(length) if length else None)
            for chunk in response.iter_bytes():
                digest.update(chunk)
                sink.write(chunk)
                progress.advance(task, len(chunk))
        if not expected:
            raise ClientFailure("The API sent no x-content-sha256 header, so the adapter cannot be verified.")
        if digest.hexdigest() != expected:
            raise ClientFailure(
                f"SHA-256 mismatch: the API announced {expected}, the body hashes to "
                f"{digest.hexdigest()}; the download was discarded."
            )
        partial.replace(target)
    except OSError as exc:
        raise ClientFailure(f"Cannot write {target}: {exc.strerror or exc}.") from None
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()
