"""The job's `safety` and `error` documents: written through their schemas, read back through them, and rows
stored before a field existed still read."""

from schemas.jobs import JobError, SafetyReport
from schemas.screening import ScreeningSummary
from service.job_documents import stored_error, stored_safety
from service.state.models import JobRow


def test_stored_safety_keeps_the_report_key_and_leaves_screening_to_its_column() -> None:
    report = SafetyReport(
        decision="blocked",
        base_asr=0.1,
        candidate_asr=0.3,
        reasons=["rose"],
        report_key="reports/ftjob-1.json",
        screening=ScreeningSummary(decision="pass"),
    )
    stored = report.stored()
    assert stored["report_key"] == "reports/ftjob-1.json" and "screening" not in stored
    assert "report_key" not in report.model_dump()  # the API never shows where the report is kept
    assert stored_safety(JobRow(safety=stored)) == report.model_copy(update={"screening": None})


def test_an_older_row_reads_with_defaults() -> None:
    safety = stored_safety(JobRow(safety={"decision": "released", "base_asr": 0.02, "candidate_asr": 0.01}))
    assert safety is not None and safety.reasons == [] and safety.report_key is None and safety.worst_suite is None


def test_absent_documents_read_as_none() -> None:
    assert stored_safety(JobRow(safety=None)) is None and stored_error(JobRow(error=None)) is None


def test_stored_error_round_trips() -> None:
    error = JobError(code="safety_regression", message="ASR rose")
    assert stored_error(JobRow(error=error.model_dump())) == error
