"""The job row's JSON documents (`safety`, `error`) read back through their schemas, never by string keys: a
misspelt field is then an attribute error a test finds, not a silent None, and a row written before a field
existed reads with that field's default."""

from schemas.jobs import JobError, SafetyReport
from service.state.models import JobRow


def stored_safety(row: JobRow) -> SafetyReport | None:
    """The gate's (or a review's) summary as stored, report_key included; None before anyone wrote one."""
    return SafetyReport.model_validate(row.safety) if row.safety else None


def stored_error(row: JobRow) -> JobError | None:
    return JobError.model_validate(row.error) if row.error else None
