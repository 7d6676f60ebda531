"""Fuzz the API with schemathesis: every operation of the app's OpenAPI schema, with inputs generated from it
(valid ones and, with --negative, invalid ones), sent with a tenant's key (admin routes: the admin key) to the
app in-process against real PostgreSQL and Redis. Checks: no 5xx, no status the schema does not document, and
every response matches its documented schema (errors: the `4XX` envelope).

    python -m bench.fuzz [--examples 300] [--negative]   # writes var/bench/fuzz.json

tests/service/test_fuzz.py runs the same with a few examples per operation.
"""

import argparse
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI


@dataclass
class FuzzReport:
    operations: int = 0
    calls: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "calls": self.calls,
            "failures": self.failures,
            "seconds": round(self.seconds, 1),
        }


def _run_cases(strategy: Any, headers: dict[str, str], max_examples: int, report: FuzzReport) -> None:
    """Hypothesis drives the cases; the first failing one (shrunk) is raised."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        report.calls += 1
        case.call_and_validate(
            headers={**(case.headers or {}), **headers},
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        )

    run()


def fuzz_app(
    app: FastAPI,
    *,
    tenant_key: str,
    admin_key: str,
    max_examples: int,
    negative: bool = False,
    skip: Callable[[str, str], bool] = lambda method, path: False,
) -> FuzzReport:
    """Run every operation's generated cases through the app; collect failures instead of stopping."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negative else [])
    report = FuzzReport()
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if skip(method, path):
            continue
        report.operations += 1
        key = admin_key if path.startswith("/admin/") else tenant_key
        headers = {"Authorization": f"Bearer {key}"}
        for mode in modes:
            if mode == GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.query)):
                continue  # only free-form strings in the path (ids): no input violates the schema
            try:
                _run_cases(operation.as_strategy(generation_mode=mode), headers, max_examples, report)
            except Unsatisfiable:
                continue  # hypothesis found no input that violates this operation's schema
            except Exception as exc:
                report.failures.append(
                    {
                        "operation": f"{method} {path}",
                        "mode": mode.value,
                        "error": "".join(traceback.format_exception_only(exc)).strip()[:4000],
                    }
                )
    report.seconds = time.perf_counter() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=300, help="generated cases per operation and mode")
    parser.add_argument("--negative", action="store_true", help="also send inputs that violate the schema")
    parser.add_argument("--out", type=Path, default=Path("var/bench/fuzz.json"))
    args = parser.parse_args()

    import os

    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.settings import get_settings
    from service.state.migrate import upgrade
    from tests.services import fresh_database, postgres_server, redis_broker

    with tempfile.TemporaryDirectory(prefix="gft-fuzz-") as tmp:
        work = Path(tmp)
        with postgres_server(work) as pg, fresh_database(pg) as db_url, redis_broker(work) as broker:
            upgrade(db_url)
            os.environ.update(
                {
                    "GFT_DATABASE_URL": db_url,
                    "GFT_BROKER_URL": broker,
                    "GFT_DATA_DIR": str(work / "var"),
                    "GFT_ADMIN_KEY": "fuzz-admin-key",
                }
            )
            get_settings.cache_clear()
            app = create_app()
            (work / "model").mkdir()
            (work / "model" / "config.json").write_text("{}")
            with TestClient(app) as client:
                admin = {"Authorization": "Bearer fuzz-admin-key"}
                client.post("/admin/v1/models", json={"id": "m1", "path": str(work / "model")}, headers=admin)
                tenant_key = client.post("/admin/v1/tenants", json={"name": "fuzz"}, headers=admin).json()["api_key"]
            report = fuzz_app(
                app,
                tenant_key=tenant_key,
                admin_key="fuzz-admin-key",
                max_examples=args.examples,
                negative=args.negative,
            )
    result = {"examples_per_operation": args.examples, "negative": args.negative, **report.as_dict()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{report.operations} operations, {report.calls} calls in {report.seconds:.0f} s, "
        f"{len(report.failures)} failing operations"
    )
    for failure in report.failures:
        print(f"- {failure['operation']} ({failure['mode']}): {failure['error'][:300]}")
    raise SystemExit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
