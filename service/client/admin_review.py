"""`guardrail-ft admin review`: the jobs waiting for an admin, and the three decisions on them."""

from typing import Annotated, Any

import typer

from service.client.http import DEFAULT_API_URL
from service.client.options import AdminKey, ApiUrl, AsJson, api_session
from service.client.output import print_json, show_table, when

review_app = typer.Typer(help="Held and blocked jobs: release, reject, override.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="a fine-tuning job id (ftjob-...)")]


@review_app.command("list")
def list_jobs(
    status: Annotated[
        str, typer.Option(help="held (waiting for review), failed (blocked jobs among them), or any job status")
    ] = "held",
    tenant: Annotated[str | None, typer.Option(help="one tenant's jobs")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    after: Annotated[str | None, typer.Option(help="page on from this job id")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Jobs of every tenant in one status, newest first: by default those held for review."""
    with api_session(api_url, api_key) as client:
        page = client.get("/admin/v1/jobs", {"status": status, "tenant_id": tenant, "limit": limit, "after": after})
    if as_json:
        print_json(page)
        return
    rows = [_row(j) for j in page["data"]]
    show_table(
        ("id", "tenant", "status", "model", "finished (UTC)", "ASR base -> candidate", "safety", "error"),
        rows,
        title=f"Jobs {status}",
    )
    if page["has_more"]:
        typer.echo(f"more: --after {page['data'][-1]['id']}")


def _row(job: dict[str, Any]) -> tuple[Any, ...]:
    safety = job.get("safety") or {}
    base, candidate = safety.get("base_asr"), safety.get("candidate_asr")
    asr = f"{base:.1%} -> {candidate:.1%}" if base is not None and candidate is not None else None
    return (
        job["id"],
        job["organization_id"],
        job["status"],
        job["model"],
        when(job["finished_at"]),
        asr,
        safety.get("decision"),
        (job.get("error") or {}).get("code"),
    )


def _decide(action: str, job_id: str, reason: str | None, api_url: str, api_key: str | None, as_json: bool) -> None:
    with api_session(api_url, api_key) as client:
        job = client.post(f"/admin/v1/jobs/{job_id}/{action}", {"reason": reason} if reason is not None else None)
    if as_json:
        print_json(job)
        return
    released = f", released as {job['fine_tuned_model']}" if job.get("fine_tuned_model") else ""
    typer.echo(f"{job['id']}: {job['status']}{released}")


@review_app.command("release")
def release(
    job_id: JobId,
    reason: Annotated[str | None, typer.Option(help="kept on the job")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Release a held job's adapter as its fine-tuned model."""
    _decide("release", job_id, reason, api_url, api_key, as_json)


@review_app.command("reject")
def reject(
    job_id: JobId,
    reason: Annotated[str, typer.Option(help="required; the tenant sees it")],
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Fail a held job with your reason."""
    _decide("reject", job_id, reason, api_url, api_key, as_json)


@review_app.command("override")
def override(
    job_id: JobId,
    reason: Annotated[str, typer.Option(help="required; kept on the job and audited")],
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Publish the adapter of a job the safety gate blocked (failed with safety_regression), for your reason."""
    _decide("override", job_id, reason, api_url, api_key, as_json)
