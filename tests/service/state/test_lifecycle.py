"""The job lifecycle's table: the allowed transitions, written out here by hand, are exactly the table's; each named
move changes a job's status only from its own sources, in the database; and nothing else in the service or the
workers changes a status without a move."""

import ast
from collections.abc import Callable
from itertools import product
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from schemas.job_status import JobStatus
from schemas.jobs import JobError, SafetyReport
from service.ids import new_id
from service.state import lifecycle
from service.state.db import session_scope
from service.state.jobs import get_job
from service.state.models import JobRow, TenantRow

S = JobStatus
ROOT = Path(__file__).resolve().parents[3]

# Every allowed (from, to) pair; any other pair, same-status ones included, must be refused.
EXPECTED = {
    (S.VALIDATING_FILES, S.QUEUED),
    (S.VALIDATING_FILES, S.FAILED),
    (S.VALIDATING_FILES, S.CANCELLED),
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.PAUSED),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.HELD),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.PAUSED, S.QUEUED),
    (S.PAUSED, S.CANCELLED),
    (S.HELD, S.SUCCEEDED),
    (S.HELD, S.FAILED),
    (S.HELD, S.CANCELLED),
    (S.FAILED, S.SUCCEEDED),  # an admin's override of a gate block
}

SAFETY = SafetyReport(decision="released")
ERROR = JobError(code="internal_error", message="a test failure")
# Each named move as its callers make it (the columns it records included), by the move it makes.
NAMED: dict[lifecycle.Move, Callable[[Session, str], bool]] = {
    lifecycle.QUEUE: lambda s, j: lifecycle.queue(session=s, job_id=j),
    lifecycle.START: lambda s, j: lifecycle.start(session=s, job_id=j),
    lifecycle.PAUSE: lambda s, j: lifecycle.pause(session=s, job_id=j),
    lifecycle.RESUME: lambda s, j: lifecycle.resume(session=s, job_id=j),
    lifecycle.CANCEL: lambda s, j: lifecycle.cancel(session=s, job_id=j),
    lifecycle.FAIL: lambda s, j: lifecycle.fail(session=s, job_id=j, error=ERROR),
    lifecycle.BLOCK: lambda s, j: lifecycle.block(session=s, job_id=j, error=ERROR, safety=SAFETY),
    lifecycle.HOLD: lambda s, j: lifecycle.hold(session=s, job_id=j, safety=SAFETY),
    lifecycle.RELEASE: lambda s, j: lifecycle.release(session=s, job_id=j, fine_tuned_model="ft:m", safety=SAFETY),
    lifecycle.RELEASE_HELD: lambda s, j: lifecycle.release_held(
        session=s, job_id=j, fine_tuned_model="ft:m", safety=SAFETY
    ),
    lifecycle.REJECT: lambda s, j: lifecycle.reject(session=s, job_id=j, error=ERROR, safety=SAFETY),
    lifecycle.OVERRIDE: lambda s, j: lifecycle.override(session=s, job_id=j, fine_tuned_model="ft:m", safety=SAFETY),
}


def test_only_the_tables_transitions_are_allowed() -> None:
    for source, target in product(JobStatus, JobStatus):
        assert lifecycle.allowed(source, target) == ((source, target) in EXPECTED), (source, target)


def test_every_move_has_a_named_function() -> None:
    assert set(NAMED) == set(lifecycle.MOVES)
    assert len({m.name for m in lifecycle.MOVES}) == len(lifecycle.MOVES)


def _job(session: Session, tenant_id: str, status: JobStatus) -> str:
    row = JobRow(
        id=new_id("ftjob"),
        tenant_id=tenant_id,
        model="m1",
        training_file="file-x",
        hyperparameters={},
        method={},
        seed=0,
        status=status,
        policy={},
        result_files=[],
    )
    session.add(row)
    session.flush()
    return row.id


def test_each_named_move_changes_only_its_sources(database_url: str) -> None:
    """Every named move tried on a job in every status: it moves exactly the table's pairs, refuses the rest."""
    accepted = set()
    with session_scope(database_url) as session:
        tenant = TenantRow(id=new_id("org"), name="lifecycle")
        session.add(tenant)
        session.flush()
        for move, call in NAMED.items():
            for status in JobStatus:
                job_id = _job(session, tenant.id, status)
                moved = call(session, job_id)
                session.expire_all()
                now = get_job(session=session, job_id=job_id)
                assert now is not None
                assert moved == (status in move.sources), (move.name, status)
                assert now.status == (move.target if moved else status), (move.name, status)
                if moved:
                    accepted.add((status, move.target))
    assert accepted == EXPECTED


def _calls_transition(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "transition":
                return True
    return False


@pytest.mark.parametrize("package", ["service", "workers"])
def test_statuses_change_only_through_the_named_moves(package: str) -> None:
    callers = {str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py") if _calls_transition(p)}
    assert callers - {"service/state/lifecycle.py"} == set()
