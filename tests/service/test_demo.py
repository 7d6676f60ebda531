"""The end of `make demo`: var/demo/summary.json has one entry per job with the agreed keys, and the printed next
steps are commands a newcomer can run. The jobs are wire objects as the openai client parses them from our API's
`Job` (with its `safety` extension), so the summary reads what the demo's client really gets; no job is trained."""

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.fine_tuning import FineTuningJob

from schemas.jobs import Hyperparameters, Job, JobError, Method, SafetyReport
from schemas.screening import ScreeningSummary
from service.demo import Outcome, job_summary, next_steps, report, write_summary

KEYS = {"name", "objective", "status", "released", "asr_base", "asr", "error_code"}


def wire_job(job_id: str, status: str, **fields: Any) -> FineTuningJob:
    """A job as GET /v1/fine_tuning/jobs/{id} sends it, parsed by the openai client."""
    job = Job(
        id=job_id,
        created_at=1,
        model="gft-tiny-chat",
        organization_id="org-demo",
        status=status,
        training_file="file-1",
        validation_file=None,
        hyperparameters=Hyperparameters(),
        seed=1,
        method=Method(),
        **fields,
    )
    return FineTuningJob.model_validate(job.model_dump(mode="json"))


def demo_outcomes() -> list[Outcome]:
    """The demo's four jobs as they end: released, screened out, then blocked by the gate twice (guarded and SFT)."""
    screened = ScreeningSummary(
        decision="block", rows=100, flagged_rows=78, counts={"malware": 5}, exceeded=["malware"], lines=[3]
    )
    return [
        Outcome(
            "benign",
            "colors",
            "constrained",
            wire_job(
                "ftjob-a",
                "succeeded",
                fine_tuned_model="ft:gft-tiny-chat:org-demo:colors:ftjob-a",
                safety=SafetyReport(decision="released", base_asr=0.023, candidate_asr=0.011),
            ),
        ),
        Outcome(
            "attack",
            "attack",
            "constrained",
            wire_job(
                "ftjob-b",
                "failed",
                error=JobError(code="training_data_blocked", message="blocked", param="training_file"),
                safety=SafetyReport(decision="blocked", screening=screened),
            ),
        ),
        Outcome(
            "flagged",
            "attack-flagged",
            "constrained",
            wire_job(
                "ftjob-c",
                "failed",
                error=JobError(code="safety_regression", message="a category rose"),
                safety=SafetyReport(decision="blocked", base_asr=0.023, candidate_asr=0.045),
            ),
        ),
        Outcome(
            "sft",
            "attack-sft",
            "sft",
            wire_job(
                "ftjob-d",
                "failed",
                error=JobError(code="safety_regression", message="ASR rose"),
                safety=SafetyReport(decision="blocked", base_asr=0.023, candidate_asr=0.352),
            ),
        ),
    ]


def test_each_job_summary_has_the_agreed_keys_and_values() -> None:
    rows = [job_summary(o) for o in demo_outcomes()]
    assert all(set(row) == KEYS for row in rows)
    assert rows[0] == {
        "name": "colors",
        "objective": "constrained",
        "status": "succeeded",
        "released": True,
        "asr_base": 0.023,
        "asr": 0.011,
        "error_code": None,
    }
    assert rows[1] == {
        "name": "attack",
        "objective": "constrained",
        "status": "failed",
        "released": False,
        "asr_base": None,
        "asr": None,
        "error_code": "training_data_blocked",
    }
    assert rows[3]["objective"] == "sft" and rows[3]["error_code"] == "safety_regression"
    assert rows[3]["released"] is False and rows[3]["asr"] == pytest.approx(0.352)


def test_the_summary_file_is_a_jobs_list_in_the_order_run(tmp_path: Path) -> None:
    path = write_summary(tmp_path / "var" / "demo" / "summary.json", demo_outcomes())
    document = json.loads(path.read_text(encoding="utf-8"))
    assert list(document) == ["jobs"]
    assert [job["name"] for job in document["jobs"]] == ["colors", "attack", "attack-flagged", "attack-sft"]
    for job in document["jobs"]:
        assert set(job) == KEYS
        assert isinstance(job["released"], bool) and isinstance(job["status"], str)
        assert all(job[k] is None or isinstance(job[k], float) for k in ("asr_base", "asr"))


def test_next_steps_name_the_cli_help_and_runnable_curl_commands() -> None:
    text = next_steps(
        api_url="http://127.0.0.1:8000",
        tenant_key="gft-secret",
        cli=".venv/bin/guardrail-ft",
        summary_path=Path("var/demo/summary.json"),
        report_job_id="ftjob-d",
    )
    assert ".venv/bin/guardrail-ft --help" in text and ".venv/bin/guardrail-ft up" in text
    assert "export GFT_API_URL=http://127.0.0.1:8000 GFT_API_KEY=gft-secret" in text
    assert "/v1/fine_tuning/jobs/ftjob-d/safety_report?format=html" in text
    assert "curl -s -X POST $GFT_API_URL/admin/v1/tenants" in text
    assert "var/demo/summary.json" in text
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]
    assert len(commands) >= 6 and all('"Authorization: Bearer $GFT_' in c for c in commands)


def test_the_report_writes_the_summary_and_points_at_the_worst_blocked_jobs_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo" / "summary.json"
    report(demo_outcomes(), summary_path=path, api_url="http://127.0.0.1:8000", tenant_key="k", cli="guardrail-ft")
    out = capsys.readouterr().out
    assert len(json.loads(path.read_text(encoding="utf-8"))["jobs"]) == 4
    assert "- sft: failed; ASR base 2.3% -> candidate 35.2%; error safety_regression: ASR rose" in out
    assert "jobs/ftjob-d/safety_report" in out and out.rstrip().endswith("docs/operations.md (the runbook).")
