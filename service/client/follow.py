"""Following a job: new events in order, training steps on a progress bar, until the job reaches a terminal state.

The API lists events newest first and pages towards older ones (`after`), so each poll reads pages until it
reaches an event already shown."""

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from service.client.http import ApiClient, ClientFailure
from service.client.output import when

EVENT_PAGE = 100
# OpenAI's final statuses, part of the wire contract; `held` and `paused` wait for a person, so watching goes on.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def event_seq(event_id: str) -> int:
    """Events are `ftevent-<n>`, n increasing in the order they were written."""
    return int(event_id.removeprefix("ftevent-"))


def new_events(client: ApiClient, job_id: str, after_seq: int | None) -> list[dict[str, Any]]:
    """The job's events written after `after_seq` (all of them when None), oldest first."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = client.get(f"/v1/fine_tuning/jobs/{job_id}/events", {"limit": EVENT_PAGE, "after": cursor})
        fresh = [e for e in page["data"] if after_seq is None or event_seq(e["id"]) > after_seq]
        found += fresh
        if not page["has_more"] or not fresh or len(fresh) < len(page["data"]):
            return found[::-1]
        cursor = page["data"][-1]["id"]


def is_step(event: dict[str, Any]) -> bool:
    """A training step's metrics: shown on the bar, not as a line."""
    return "train_loss" in (event.get("data") or {}) and event.get("level") == "info"


def event_line(event: dict[str, Any]) -> str:
    level = "" if event["level"] == "info" else f"[{event['level'].upper()}] "
    return f"{when(event['created_at'])}  {level}{event['message']}"


def _advance(progress: Progress, task: TaskID, event: dict[str, Any]) -> None:
    data = event.get("data") or {}
    if "step" not in data:
        return
    loss = data.get("train_loss")
    shown = {"loss": f"loss {loss:.4f}"} if isinstance(loss, int | float) else {}
    # total None leaves the bar's total as it was (a step event may not carry it)
    progress.update(task, completed=data["step"], total=data.get("total_steps"), **shown)


def follow_job(
    client: ApiClient, job_id: str, *, interval: float, timeout: float | None, console: Console
) -> dict[str, Any]:
    """Poll until the job is succeeded, failed or cancelled, and return it; ClientFailure after `timeout` s.
    The job is read before its events, so the events of the poll that sees a terminal state are all there."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_seq: int | None = None
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(job_id, total=None, loss="")
        while True:
            job = client.get(f"/v1/fine_tuning/jobs/{job_id}")
            for event in new_events(client, job_id, last_seq):
                last_seq = event_seq(event["id"])
                _advance(progress, task, event)
                if not is_step(event):
                    progress.console.print(event_line(event), markup=False, highlight=False)
            progress.update(task, description=f"{job_id} {job['status']}")
            if job["status"] in TERMINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ClientFailure(f"Job {job_id} is still {job['status']} after {timeout:g}s of watching.")
            time.sleep(interval)
