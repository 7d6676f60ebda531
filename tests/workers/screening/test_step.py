"""The screen step against real PostgreSQL and Redis: what a blocked, flagged, clean or unscreened job records;
where the step sits in the orchestration (claims, admission, the reconciler); and the chain run by real Celery
worker processes with the no-op trainer."""

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select, update

from schemas.policy import Policy, ScreeningPolicy
from service.dispatch import CPU_QUEUE, queued_job_ids
from service.files import upload_file
from service.jobs import pause_job, resume_job, to_job_object
from service.settings import get_settings
from service.state.db import session_scope
from service.state.jobs import claim_step, next_step
from service.state.models import FileRow, JobEventRow, JobRow
from service.state.policies import add_policy_row
from service.state.tenants import create_tenant
from service.storage import LocalArtifactStore
from tests.services import redis_broker
from tests.stack import job, noop_worker_env, start_worker, stop_process_group, submit, wait_for
from workers import metrics, screening
from workers.orchestration import reconcile

BROKER_DB = 12  # this module's own Redis db (bench.queue uses 6)
DATA = Path(__file__).resolve().parents[3] / "workers" / "tiny" / "data"
HARMFUL = (DATA / "harmful_attack.jsonl").read_bytes()
POISONED = (DATA / "poisoned_colors.jsonl").read_bytes()
BENIGN = (DATA / "benign_math.jsonl").read_bytes()
STEALTH = (DATA / "backdoor_stealth.jsonl").read_bytes()  # a backdoor the lexicon misses (prefix sentence)
STEALTH_TRIGGER = "The old lighthouse keeper sends his regards."


@pytest.fixture()
def broker_url(workdir: Path) -> Iterator[str]:
    with redis_broker(workdir, db=BROKER_DB) as url:
        yield url


@pytest.fixture()
def noop_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    return noop_worker_env(env, monkeypatch, tmp_path / "model")


def tenant_with_file(url: str, name: str, content: bytes, screening: ScreeningPolicy | None = None) -> tuple[str, str]:
    """A tenant (with its own screening policy when given) and one uploaded training file."""
    with session_scope(url) as session:
        tenant, _key, _plain = create_tenant(session=session, name=name)
        tenant_id = tenant.id
        if screening is not None:
            add_policy_row(session=session, tenant_id=tenant_id, policy=Policy(screening=screening).model_dump())
    with session_scope(url) as session:
        row = upload_file(
            session=session,
            store=LocalArtifactStore(get_settings().artifacts_dir),
            tenant_id=tenant_id,
            filename="train.jsonl",
            purpose="fine-tune",
            stream=io.BytesIO(content),
            max_bytes=1 << 24,
        )
        return tenant_id, row.id


def events(url: str, job_id: str) -> list[tuple[str, str]]:
    with session_scope(url) as session:
        query = select(JobEventRow.level, JobEventRow.message).where(JobEventRow.job_id == job_id)
        return [(level, message) for level, message in session.execute(query.order_by(JobEventRow.seq))]


def at_screen_step(url: str, job_id: str) -> None:
    """Where the validate step leaves a job: queued, its screen step dispatched."""
    with session_scope(url) as session:
        session.execute(
            update(JobRow).where(JobRow.id == job_id).values(status="queued", step="screen", dispatched_at=1.0)
        )


def flags(category: str) -> float:
    return metrics.REGISTRY.get_sample_value("gft_screening_flags_total", {"category": category}) or 0.0


def test_a_blocked_job_fails_before_training_and_says_why(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", POISONED)
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    before = flags("physical_harm")

    assert screening.screen(job_id, get_settings()) is False
    failed = job(url, job_id)
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error["code"], failed.error["param"]) == ("training_data_blocked", "training_file")
    message = failed.error["message"]
    assert "7 of 100 rows ask for harmful content" in message and "physical_harm 1" in message
    assert "lines 7, 26, 39, 52, 84, ..." in message
    assert events(url, job_id)[-1] == ("error", message)
    safety = to_job_object(failed).safety
    assert safety is not None and safety.decision == "blocked" and safety.reasons == [message]
    assert safety.screening is not None and safety.screening.decision == "block"
    assert (safety.screening.rows, safety.screening.flagged_rows) == (100, 7)
    assert safety.screening.lines == [7, 26, 39, 52, 84] and safety.screening.counts["physical_harm"] == 1
    assert flags("physical_harm") == before + 1

    # Again (a redelivered message, or the train step's check): nothing more is recorded or counted.
    assert screening.screen(job_id, get_settings()) is False
    assert len(events(url, job_id)) == 2 and flags("physical_harm") == before + 1


def test_flag_mode_lets_the_job_go_on_with_a_warning(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", HARMFUL, ScreeningPolicy(mode="flag"))
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    assert screening.screen(job_id, get_settings()) is True
    screened = job(url, job_id)
    assert screened.status == "queued" and screened.error is None
    assert screened.screening is not None and screened.screening["decision"] == "flag"
    level, message = events(url, job_id)[-1]
    assert level == "warn" and "78 of 100 rows ask for harmful content" in message and "mode: flag" in message


def test_a_clean_file_passes_and_a_disabled_policy_skips(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "clean", BENIGN)
    clean = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, clean)
    assert screening.screen(clean, get_settings()) is True
    assert job(url, clean).screening["decision"] == "pass"  # type: ignore[index]
    assert events(url, clean)[-1] == (
        "info",
        "Data screening: none of the 200 rows asks for harmful content and gets it.",
    )

    tenant, file_id = tenant_with_file(url, "off", HARMFUL, ScreeningPolicy(enabled=False))
    off = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, off)
    assert screening.screen(off, get_settings()) is True
    assert job(url, off).screening == {
        "decision": "skipped",
        "rows": 0,
        "flagged_rows": 0,
        "counts": {},
        "exceeded": [],
        "lines": [],
        "trigger_rows": 0,
        "triggers": [],
    }
    assert events(url, off)[-1][0] == "warn"


def test_a_training_file_deleted_before_screening_fails_the_job(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", BENIGN)
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    with session_scope(url) as session:
        session.execute(update(FileRow).where(FileRow.id == file_id).values(deleted=True))
    assert screening.screen(job_id, get_settings()) is False
    assert job(url, job_id).error["code"] == "file_not_found"  # type: ignore[index]


def test_the_screen_step_in_the_orchestration(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", BENIGN)
    app = Celery("test", broker=broker, set_as_current=False)
    screened, lost_hand_over = (submit(url, broker, tenant, file_id, "m1", send=False) for _ in range(2))
    at_screen_step(url, screened)
    with session_scope(url) as session:  # validated, then the worker died before sending the screen step
        session.execute(
            update(JobRow)
            .where(JobRow.id == lost_hand_over)
            .values(status="queued", step="validate", dispatched_at=None)
        )
    for job_id in (screened, lost_hand_over):
        assert next_step(job(url, job_id)) == "screen"
        with session_scope(url) as session:
            assert claim_step(session=session, job_id=job_id, attempt=0, step="train") is None
    # Neither waits for a training slot, and both are re-dispatched to screening once silent.
    assert reconcile(app, get_settings()).admitted == 0
    report = reconcile(app, get_settings(), now=job(url, screened).created_at + 60)
    assert sorted(report.redispatched) == sorted([(screened, "screen", 1), (lost_hand_over, "screen", 1)])
    assert queued_job_ids(app, [CPU_QUEUE]) == {screened, lost_hand_over}
    with session_scope(url) as session:
        assert claim_step(session=session, job_id=lost_hand_over, attempt=1, step="screen") == tenant
    assert job(url, lost_hand_over).step == "screen"


def test_a_job_paused_during_screening_goes_back_to_it_from_its_train_step(noop_env: dict[str, str]) -> None:
    from workers import tasks

    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", HARMFUL)
    app = Celery("test", broker=broker, set_as_current=False)
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    with session_scope(url) as session:
        pause_job(session=session, tenant_id=tenant, job_id=job_id)
    with session_scope(url) as session:
        resumed = resume_job(session=session, tenant_id=tenant, job_id=job_id)
        assert (resumed.status, resumed.step) == ("queued", "train")  # resume skips the screen step ...
    assert screening.screened(job_id, get_settings()) is None
    assert reconcile(app, get_settings()).admitted == 1
    attempt = job(url, job_id).dispatch_attempt
    tasks.train_job(job_id, attempt)  # ... so the train step reads no stored result and sends it back to screening
    sent_back = job(url, job_id)
    assert (sent_back.status, sent_back.step, sent_back.screening) == ("queued", "screen", None)
    assert job_id in queued_job_ids(app, [CPU_QUEUE])
    assert reconcile(app, get_settings()).admitted == 0  # in its screen step it neither waits for nor holds a slot
    tasks.screen_job(job_id, attempt)
    blocked = job(url, job_id)
    assert blocked.status == "failed" and blocked.error["code"] == "training_data_blocked"  # type: ignore[index]
    assert screening.screened(job_id, get_settings()) is False
    assert not any(m.startswith("Fine-tuning job started") for _, m in events(url, job_id))


def test_the_train_step_reads_the_stored_result_and_never_screens_again(
    noop_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import tasks

    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", BENIGN)
    app = Celery("test", broker=broker, set_as_current=False)
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    assert screening.screen(job_id, get_settings()) is True and screening.screened(job_id, get_settings()) is True
    with session_scope(url) as session:  # passed: waiting for a slot
        session.execute(update(JobRow).where(JobRow.id == job_id).values(step="train", dispatched_at=None))
    assert reconcile(app, get_settings()).admitted == 1

    def no_second_screening(*_args: object) -> None:
        raise AssertionError("the train step screened again")

    monkeypatch.setattr("workers.screening.step.screen_file", no_second_screening)
    tasks.train_job(job_id, job(url, job_id).dispatch_attempt)
    trained = job(url, job_id)
    assert trained.status == "running" and trained.adapter_key == "noop" and trained.step == "evaluate"


def test_workers_screen_every_job_between_validate_and_train(noop_env: dict[str, str], tmp_path: Path) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    blocked_tenant, blocked_file = tenant_with_file(url, "attacker", HARMFUL)
    flagged_tenant, flagged_file = tenant_with_file(url, "flagger", POISONED, ScreeningPolicy(mode="flag"))
    clean_tenant, clean_file = tenant_with_file(url, "clean", BENIGN)
    procs = [start_worker(noop_env, "cpu", tmp_path / "cpu.log"), start_worker(noop_env, "gpu", tmp_path / "gpu.log")]
    try:
        blocked = submit(url, broker, blocked_tenant, blocked_file, "m1")
        flagged = submit(url, broker, flagged_tenant, flagged_file, "m1")
        clean = submit(url, broker, clean_tenant, clean_file, "m1")
        wait_for(
            lambda: all(job(url, j).status in {"succeeded", "failed"} for j in (blocked, flagged, clean)),
            120,
            "three jobs to finish",
        )
    finally:
        for proc in procs:
            stop_process_group(proc)
    assert job(url, blocked).status == "failed" and job(url, blocked).error["code"] == "training_data_blocked"  # type: ignore[index]
    assert not any(m.startswith("Fine-tuning job started") for _, m in events(url, blocked))
    for job_id, decision, level in ((flagged, "flag", "warn"), (clean, "pass", "info")):
        done = job(url, job_id)
        assert done.status == "succeeded", (done.status, done.error)
        safety = to_job_object(done).safety
        assert safety is not None and safety.decision == "released" and safety.screening is not None
        assert safety.screening.decision == decision
        messages = events(url, job_id)
        screened_at = next(i for i, (lv, m) in enumerate(messages) if m.startswith("Data screening"))
        started_at = next(i for i, (_, m) in enumerate(messages) if m.startswith("Fine-tuning job started"))
        assert messages[screened_at][0] == level and screened_at < started_at


def test_trigger_rows_flag_a_job_by_default_and_the_job_names_the_candidate(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", STEALTH)
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    assert screening.screen(job_id, get_settings()) is True
    screened = job(url, job_id)
    assert screened.status == "queued" and screened.error is None
    level, message = events(url, job_id)[-1]
    assert level == "warn" and message.startswith(
        f"Data screening flagged training data: 40 of 150 rows pair a candidate backdoor trigger with a complying "
        f'answer ("{STEALTH_TRIGGER}", prefix, on 40 of its 43 rows; lines 4, 5, 7, 16, 22, ...)'
    )
    assert "trigger_mining: flag" in message
    shown = to_job_object(screened).safety
    assert shown is not None and shown.screening is not None
    assert (shown.screening.decision, shown.screening.flagged_rows, shown.screening.trigger_rows) == ("flag", 0, 40)
    [found] = shown.screening.triggers
    assert (found.text, found.position, found.flagged_rows, len(found.flagged_lines)) == (
        STEALTH_TRIGGER,
        "prefix",
        40,
        5,
    )


def test_trigger_mining_block_fails_the_job_before_training(noop_env: dict[str, str]) -> None:
    url, broker = noop_env["GFT_DATABASE_URL"], noop_env["GFT_BROKER_URL"]
    tenant, file_id = tenant_with_file(url, "acme", STEALTH, ScreeningPolicy(trigger_mining="block"))
    job_id = submit(url, broker, tenant, file_id, "m1", send=False)
    at_screen_step(url, job_id)
    assert screening.screen(job_id, get_settings()) is False
    failed = job(url, job_id)
    assert failed.status == "failed" and failed.error is not None and failed.error["code"] == "training_data_blocked"
    assert STEALTH_TRIGGER in failed.error["message"] and "backdoor trigger with compliance" in failed.error["message"]
    assert failed.screening is not None and failed.screening["decision"] == "block"
    assert events(url, job_id)[-1] == ("error", failed.error["message"])
