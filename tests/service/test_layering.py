"""The control plane's layers only point down: the API (service/api/) on the logic (service/*.py), the logic on
the state store (service/state/), the store on nothing of ours but schemas and pure leaves. And the control plane
never imports the ML stack or the workers' code: the API image has neither."""

from pathlib import Path

from tests.imports import imported_modules

SERVICE = Path(__file__).resolve().parents[2] / "service"
FORBIDDEN = {"torch", "transformers", "peft", "workers"}
# The command line starts the API server, so it sits above every layer, the API included.
ENTRY_POINTS = {"cli.py"}
# Modules of service/ that import nothing of service/: any layer may use them.
PURE_LEAVES = {"service.ids"}


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


def ours(path: Path) -> set[str]:
    """The service modules `path` imports."""
    return {m for m in imported_modules(path) if m == "service" or m.startswith("service.")}


def relative(path: Path) -> str:
    return path.relative_to(SERVICE).as_posix()


def test_service_imports_neither_the_ml_stack_nor_workers() -> None:
    offenders = {relative(p): sorted(imported_roots(p) & FORBIDDEN) for p in SERVICE.rglob("*.py")}
    assert {name: roots for name, roots in offenders.items() if roots} == {}


def test_no_logic_module_imports_the_api() -> None:
    """Logic raises service.errors' kinds and the API maps them; an import upwards would bring HTTP back in."""
    logic = [p for p in SERVICE.rglob("*.py") if relative(p).split("/")[0] != "api" and relative(p) not in ENTRY_POINTS]
    offenders = {
        relative(p): sorted(m for m in ours(p) if m == "service.api" or m.startswith("service.api.")) for p in logic
    }
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_the_state_store_imports_nothing_above_it() -> None:
    """Workers import service/state/ too; whatever it imports, they carry."""
    offenders = {
        relative(p): sorted(m for m in ours(p) if not m.startswith("service.state") and m not in PURE_LEAVES)
        for p in (SERVICE / "state").rglob("*.py")
    }
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_pure_leaves_import_nothing_of_the_service() -> None:
    leaves = {module: SERVICE.parent / (module.replace(".", "/") + ".py") for module in PURE_LEAVES}
    assert {module: sorted(ours(path)) for module, path in leaves.items() if ours(path)} == {}
