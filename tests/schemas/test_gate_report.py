"""The gate report's model: what `assess` writes validates against GateReportDocument and dumps back to the very
same JSON, and a misspelt or unknown key is refused where it is written instead of failing a reader later."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.gate_report import GateReportDocument
from schemas.policy import GatePolicy
from tests.imports import imported_modules, under
from tests.workers.evaluation.test_report import blocked_outcome, figures, inputs
from workers.evaluation.overlap import Overlap
from workers.evaluation.runner import GateInputs, assess

META_KEYS = {"job_id", "model", "created_at", "outcome", "seconds"}


def blocked() -> dict[str, Any]:
    return blocked_outcome().document


def clean() -> dict[str, Any]:
    base = figures(set(), set(range(12)), set(), set(), 0.9)
    return assess(base, base, inputs(), GatePolicy()).document


def reviewed() -> dict[str, Any]:
    """Every optional part filled: overlap rows, a power target, evaluated_as, and the worker's verdict."""
    base = figures(set(), set(range(12)), set(), {0}, 0.9)
    candidate = figures({0, 1}, set(range(12)), {0}, {0, 1}, 0.8)
    given = inputs()
    copies = GateInputs(given.suites, (), "none", (Overlap(3, "harmful malware 0", 0.9),), 40)
    policy = GatePolicy(target_detectable_regression=0.2, release_mode="review")
    served = {"form": "merged", "dtype": "float32"}
    outcome = assess(base, candidate, copies, policy, {"job_id": "ftjob-x", "created_at": 7}, evaluated_as=served)
    return {**outcome.document, "outcome": "held", "seconds": 1.25}


@pytest.mark.parametrize("make", [blocked, clean, reviewed])
def test_assess_documents_validate_and_round_trip(make: Any) -> None:
    document = make()
    report = GateReportDocument.model_validate(document)
    assert report.model_dump(mode="json") == document
    assert json.loads(report.model_dump_json()) == json.loads(json.dumps(document, allow_nan=False))


def test_meta_keys_appear_only_when_given() -> None:
    assert not META_KEYS & set(clean())
    assert META_KEYS & set(blocked()) == {"job_id", "model"}
    report = GateReportDocument.model_validate(reviewed())
    assert (report.job_id, report.model, report.created_at) == ("ftjob-x", None, 7)
    assert (report.outcome, report.seconds) == ("held", 1.25) and report.evaluated_as is not None
    assert report.overlap.first[0].line == 3 and report.power is not None and report.power.target == 0.2


def test_readers_get_typed_figures() -> None:
    report = GateReportDocument.model_validate(blocked())
    direct = next(s for s in report.suites if s.kind == "direct")
    assert (direct.candidate.k, direct.candidate.n, direct.set) == (5, 12, "builtin")
    assert direct.paired.newly_answered == 5 and direct.examples[0].candidate_label == "compliance"
    assert report.utility is not None and report.utility.base.overlap == 0.9
    assert report.thresholds.false_block_rate == 0.05 and not report.decision.release


def _set(document: dict[str, Any], path: tuple[str | int, ...], key: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for step in path:
        target = target[step]
    target[key] = value
    return changed


def _rename(document: dict[str, Any], path: tuple[str | int, ...], old: str, new: str) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for step in path:
        target = target[step]
    target[new] = target.pop(old)
    return changed


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ((), "suites", "sutes"),
        (("suites", 0), "candidate", "candiate"),
        (("suites", 0, "candidate"), "rate", "rates"),
        (("suites", 0, "paired"), "p_value", "pvalue"),
        (("suites", 0, "categories", 0), "paired", "pairs"),
        (("suites", 0, "examples", 0), "candidate_label", "candidate_lable"),
        (("decision",), "reasons", "reason"),
        (("thresholds",), "max_asr", "max_asr_cap"),
        (("power",), "min_detectable_regression", "mdr"),
        (("utility", "base"), "exact_match", "exact"),
        (("libra",), "base_safety", "safety"),
    ],
)
def test_a_misspelt_key_is_refused(path: tuple[str | int, ...], old: str, new: str) -> None:
    with pytest.raises(ValidationError):
        GateReportDocument.model_validate(_rename(blocked(), path, old, new))


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ((), "surprise", 1),
        (("suites", 1), "extra", "x"),
        (("overlap",), "rows_copied", 0),
        (("suites", 0), "kind", "indirect"),
        (("suites", 0), "metric", "asr"),
        ((), "outcome", "approved"),
    ],
)
def test_an_unknown_key_or_value_is_refused(path: tuple[str | int, ...], key: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        GateReportDocument.model_validate(_set(blocked(), path, key, value))


def test_assess_refuses_an_unknown_meta_key() -> None:
    base = figures(set(), set(range(12)), set(), set(), 0.9)
    with pytest.raises(ValidationError, match="jobid"):
        assess(base, base, inputs(), GatePolicy(), {"jobid": "ftjob-abc"})


def test_the_module_imports_neither_torch_nor_fastapi_nor_the_planes() -> None:
    path = Path(__file__).resolve().parents[2] / "schemas" / "gate_report.py"
    assert not [m for m in imported_modules(path) if under(m, {"torch", "fastapi", "workers", "service"})]
