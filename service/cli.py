"""`guardrail-ft`: run the API, a worker, everything at once (`up`), build the tiny model, run the demo.

Worker-side commands run in a subprocess, so this module (part of the control plane) never imports torch.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from service.api import serving
from service.client.admin import admin_app
from service.client.files import files_app
from service.client.jobs import jobs_app
from service.client.models import list_models
from service.embedded import ensure_broker
from service.settings import get_settings
from service.state.base_models import get_base_model, register_base_model
from service.state.db import session_scope
from service.state.migrate import upgrade

app = typer.Typer(help="Guardrail FT: safety-preserving fine-tuning as a service.", no_args_is_help=True)
models_app = typer.Typer(help="Base models.", no_args_is_help=True)
db_app = typer.Typer(help="Database.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
# The client side: commands that talk to a running API over HTTP (service/client/).
app.add_typer(files_app, name="files")
app.add_typer(jobs_app, name="jobs")
app.add_typer(admin_app, name="admin")
models_app.command("list")(list_models)

TINY_MODEL_ID = "gft-tiny-chat"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to GFT_DATABASE_URL."""
    upgrade(get_settings().sqlalchemy_url)


def _serve(host: str, port: int, quiet: bool = False, workers: int = 1) -> None:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    serving.serve(host, port, workers, quiet)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="API processes (default: GFT_API_WORKERS)")] = None,
    quiet: bool = False,
) -> None:
    """Run the HTTP API (applies migrations first). One process uses one core (the GIL): on a machine of its
    own, run one worker per core."""
    settings = get_settings()
    _serve(host or settings.api_host, port or settings.api_port, quiet, workers or settings.api_workers)


def worker_command(
    queues: str, concurrency: int, loglevel: str = "INFO", beat_schedule: Path | None = None
) -> list[str]:
    """With beat_schedule, the worker also runs the beat (the reconciler's clock): for a single local process."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "--loglevel",
        loglevel,
        "-n",
        f"gft-{queues.replace(',', '-')}@%h",
    ]
    return command + (["--beat", "--schedule", str(beat_schedule)] if beat_schedule else [])


def beat_command(schedule: Path, loglevel: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "beat",
        "--loglevel",
        loglevel,
        "--schedule",
        str(schedule),
    ]


@app.command()
def worker(queues: str = "cpu,gpu", concurrency: int = 1) -> None:
    """Run a Celery worker (one per GPU, concurrency 1, for the gpu queue).

    The process becomes Celery (exec), so signals from a supervisor reach the worker itself."""
    command = worker_command(queues, concurrency)
    os.execv(command[0], command)


@app.command()
def beat(schedule: Annotated[Path | None, typer.Option(help="default: <data_dir>/celerybeat-schedule")] = None) -> None:
    """Run Celery beat: the reconciler's clock (gft.reconcile every GFT_RECONCILE_EVERY_S seconds). Run exactly
    one per deployment; a second one is harmless (the reconciler is idempotent) but wasteful."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = beat_command(schedule or settings.data_dir / "celerybeat-schedule")
    os.execv(command[0], command)


def _die_with_parent() -> None:
    """Linux: deliver SIGTERM to this child when the parent dies, so `up` never leaves an orphan worker."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@app.command()
def up(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    quiet: bool = False,
) -> None:
    """API + one worker for every queue, with an embedded broker when no Redis answers: local use."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker_url, broker = ensure_broker(settings.broker_url, settings.data_dir / "valkey")
    if broker is not None:
        typer.echo(f"No Redis at {settings.broker_url}; started an embedded Valkey at {broker_url}")
    os.environ["GFT_BROKER_URL"] = broker_url
    get_settings.cache_clear()
    upgrade(get_settings().sqlalchemy_url)
    command = worker_command("cpu,gpu", 1, "WARNING" if quiet else "INFO", settings.data_dir / "celerybeat-schedule")
    worker_proc = subprocess.Popen(
        command, env=os.environ.copy(), preexec_fn=_die_with_parent if sys.platform == "linux" else None
    )
    try:
        _serve(host or settings.api_host, port or settings.api_port, quiet)
    finally:
        worker_proc.terminate()
        worker_proc.wait(timeout=30)
        if broker is not None:
            broker.stop()


@models_app.command("build-tiny")
def build_tiny(
    out: Annotated[Path | None, typer.Option(help="default: <data_dir>/models/gft-tiny-chat")] = None,
    force: bool = False,
    register: bool = True,
) -> None:
    """Build (or reuse, when its recipe is unchanged) the bundled tiny aligned chat model."""
    settings = get_settings()
    target = (out or settings.models_dir / TINY_MODEL_ID).resolve()
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "workers.tiny.build", str(target)] + (["--force"] if force else [])
    if subprocess.call(cmd) != 0:
        raise typer.Exit(1)
    typer.echo(f"{TINY_MODEL_ID} ready at {target} ({time.perf_counter() - started:.0f}s)")
    if register:
        models_register(TINY_MODEL_ID, target)


@models_app.command("register")
def models_register(model_id: str, path: Path) -> None:
    """Register a local model folder as a base model tenants may fine-tune."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        register_base_model(session=session, model_id=model_id, path=str(path.resolve()))
    typer.echo(f"registered {model_id} -> {path.resolve()}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def calibrate(
    ctx: typer.Context,
    base: Annotated[str, typer.Option(help="a registered base model id, or a model folder")],
    seeds: int = 2,
) -> None:
    """Sweep beta schedules x augmentation ratios for a base model and recommend its policy entry.

    Further options (--schedules, --ratios, --attack, --benign, ...) pass through to
    `python -m workers.calibration`."""
    settings = get_settings()
    folder = Path(base)
    if folder.is_dir():
        model_id, path = folder.resolve().name, folder.resolve()
    else:
        upgrade(settings.sqlalchemy_url)
        with session_scope(settings.sqlalchemy_url) as session:
            row = get_base_model(session=session, model_id=base)
        if row is None:
            typer.echo(f"'{base}' is neither a registered base model nor a folder; see `models register`.", err=True)
            raise typer.Exit(2)
        model_id, path = row.id, Path(row.path)
    cmd = [
        sys.executable,
        "-m",
        "workers.calibration",
        "--base",
        str(path),
        "--model-id",
        model_id,
        "--seeds",
        str(seeds),
        *ctx.args,
    ]
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def demo() -> None:
    """Run the main flow end to end on the tiny model and print what happened."""
    from service.demo import run_demo

    raise typer.Exit(run_demo())


if __name__ == "__main__":
    app()
