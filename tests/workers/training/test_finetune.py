"""The strengths the defence is measured at, and the worker's own check of a job's update budget."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from schemas.jobs import Hyperparameters
from schemas.policy import Policy, TrainingPolicy
from service.api.app import create_app
from service.settings import get_settings
from service.state.db import session_scope
from service.state.jobs import get_job, list_events, transition
from tests.service.calls import ROW, admin_headers, tenant, upload
from workers import pipeline
from workers.training.finetune import config_at_strength


def test_max_strength_is_the_smallest_batch_at_the_max_multiplier_within_the_update_budget() -> None:
    policy = Policy().for_model("gft-tiny-chat")
    default = config_at_strength(policy, "default", 3)
    assert (default.epochs, default.batch_size, default.learning_rate, default.seed) == (5, 8, 3e-3, 3)
    strongest = config_at_strength(policy, "max", 3)
    # budget 2 x (5 epochs x batch 8 at multiplier 1) = 1.25 epoch-multipliers at batch 1: 1 epoch at 1
    assert (strongest.epochs, strongest.batch_size, strongest.seed) == (1, 1, 3)
    assert strongest.learning_rate == pytest.approx(3e-3)
    assert strongest.objective == "constrained" and strongest.augmentation is not None
    # the global policy: budget 10 / 3 x 4, defaults 3 x 8: 5 at batch 1 again
    plain = config_at_strength(Policy(), "max", 0)
    assert (plain.epochs, plain.batch_size) == (1, 1) and plain.learning_rate == pytest.approx(1e-3 * 4)
    # the per-field caps still bind: max_epochs 1 leaves 1 epoch at the max multiplier
    capped = Policy(training=TrainingPolicy(max_epochs=1, max_update_budget=100))
    assert (config_at_strength(capped, "max", 0).epochs, config_at_strength(capped, "max", 0).learning_rate) == (
        1,
        pytest.approx(4e-3),
    )
    with pytest.raises(ValueError, match="strength"):
        config_at_strength(policy, "strong", 0)


def test_worker_resolve_refuses_settings_over_the_budget() -> None:
    policy = Policy().for_model("gft-tiny-chat")  # defaults 5 x batch 8, budget 2
    assert pipeline._resolve(Hyperparameters(), policy, 100) == (5, 8, 3e-3)
    epochs, batch, lr = pipeline._resolve(
        Hyperparameters(n_epochs=1, batch_size=1, learning_rate_multiplier=1), policy, 100
    )  # the strongest job: 100 steps x 1 / 65 = 1.5x
    assert (epochs, batch) == (1, 1) and lr == pytest.approx(3e-3)
    with pytest.raises(pipeline.JobFailure) as failure:  # 5 x 100 steps x 1 / 65 = 7.7x
        pipeline._resolve(Hyperparameters(n_epochs=5, batch_size=1, learning_rate_multiplier=1), policy, 100)
    assert failure.value.code == "hyperparameter_out_of_range"
    assert failure.value.param == "hyperparameters.batch_size" and "7.69x" in failure.value.message


BUNDLED_TINY = Path(__file__).resolve().parents[3] / "workers" / "tiny" / "model"


@pytest.fixture()
def api(env: dict[str, str]) -> Iterator[TestClient]:
    """The bundled tiny model as shipped (the job fails before training, so a rebuild would buy nothing)."""
    with TestClient(create_app()) as client:
        client.headers["x-admin"] = env["GFT_ADMIN_KEY"]
        registered = client.post(
            "/admin/v1/models", json={"id": "gft-tiny-chat", "path": str(BUNDLED_TINY)}, headers=admin_headers(client)
        )
        assert registered.status_code == 200, registered.text
        yield client


def test_a_stored_job_over_its_policys_budget_fails_before_training(api: TestClient, env: dict[str, str]) -> None:
    """A job accepted under a looser policy (or written past the API) does not train past the caps."""
    owner = tenant(api, "t")
    file_id = upload(api, owner, (json.dumps(ROW) + "\n").encode() * 16).json()["id"]
    created = api.post(
        "/v1/fine_tuning/jobs",
        json={"model": "gft-tiny-chat", "training_file": file_id, "hyperparameters": {"batch_size": 4}},
        headers=owner,
    )
    assert created.status_code == 200, created.text  # 5 x 4 / (5 x 2) = 2x: at the tiny model's cap
    job_id = created.json()["id"]
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        row = get_job(session=session, job_id=job_id)
        assert row is not None
        policy = Policy.model_validate(row.policy)
        row.policy = policy.model_copy(
            update={"training": policy.training.model_copy(update={"max_update_budget": 1.5})}
        ).model_dump()
        assert transition(session=session, job_id=job_id, from_statuses={"validating_files"}, to_status="queued")
    assert pipeline.train(job_id, get_settings()) is False
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        row = get_job(session=session, job_id=job_id)
        assert row is not None and row.status == "failed" and not row.adapter_key
        assert row.error["code"] == "hyperparameter_out_of_range"
        assert row.error["param"] == "hyperparameters.batch_size"
        assert "2.00x" in row.error["message"] and "at most 1.50x" in row.error["message"]
        assert "batch_size to at least 6" in row.error["message"]
        messages = [e.message for e in list_events(session=session, job_id=job_id, after_seq=None, limit=50)[0]]
    assert not any(m.startswith("Training ") for m in messages), messages
