"""The workers' layers only point down. The ML core, workers/training/ (what is supervised, the loss, the loop)
and workers/evaluation/ (the gate's suites, judges, statistics), stand on the shared leaves beside them (chat
templating, the tenant's contexts, model loading) and never on each other: a change to training cannot reach what
the gate measures except through a leaf both read. The steps (screening, the pipeline, orchestration) stand on the
core; the tiny world is test and benchmark material that nothing in production imports; and no worker module
imports the HTTP API."""

from pathlib import Path

from tests.imports import imported_modules, under

WORKERS = Path(__file__).resolve().parents[2] / "workers"
LEAVES = {"workers.chat_data", "workers.tenant_contexts", "workers.model_loading"}
# The evaluation core reads the settings (the learned judge's weights folder) and the artifact store (the admin's
# own evaluation sets); no other part of the control plane.
EVALUATION_SERVICE = {"service.settings", "service.storage"}
# Tools that run the tiny world on purpose: the calibration command's canary and the world's own builder.
TINY_USERS = {"calibration.py"}


def modules_of(folder: str) -> dict[str, set[str]]:
    """The workers modules and service modules each file under workers/`folder` imports."""
    return {
        p.relative_to(WORKERS).as_posix(): {m for m in imported_modules(p) if under(m, {"workers", "service"})}
        for p in (WORKERS / folder).rglob("*.py")
    }


def offenders(folder: str, allowed: set[str]) -> dict[str, list[str]]:
    own = "workers." + folder.replace("/", ".") if folder != "." else "workers"
    return {
        name: sorted(m for m in modules if not under(m, allowed | {own}))
        for name, modules in modules_of(folder).items()
        if any(not under(m, allowed | {own}) for m in modules)
    }


def test_training_stands_on_the_leaves_only() -> None:
    assert offenders("training", LEAVES) == {}


def test_evaluation_stands_on_the_leaves_and_reads_only_settings_and_the_store() -> None:
    assert offenders("evaluation", LEAVES | EVALUATION_SERVICE) == {}


def test_the_leaves_import_nothing_of_the_workers() -> None:
    leaves = {m: WORKERS.parent / (m.replace(".", "/") + ".py") for m in LEAVES}
    assert {
        m: sorted(i for i in imported_modules(p) if under(i, {"workers"}))
        for m, p in leaves.items()
        if any(under(i, {"workers"}) for i in imported_modules(p))
    } == {}


def test_nothing_in_production_imports_the_tiny_world() -> None:
    users = {
        p.relative_to(WORKERS).as_posix()
        for p in WORKERS.rglob("*.py")
        if "tiny" not in p.relative_to(WORKERS).parts and any(under(m, {"workers.tiny"}) for m in imported_modules(p))
    }
    assert users <= TINY_USERS


def test_no_worker_module_imports_the_http_api() -> None:
    assert {
        p.relative_to(WORKERS).as_posix()
        for p in WORKERS.rglob("*.py")
        if any(under(m, {"service.api", "fastapi"}) for m in imported_modules(p))
    } == set()
