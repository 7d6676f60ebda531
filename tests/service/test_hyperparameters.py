"""Issue 17, hole 4: a job's update budget (optimizer steps x learning rate, relative to the default job on the
same file) is capped at creation, so batch size cannot multiply the steps the defence was calibrated for."""

import json

from fastapi.testclient import TestClient
from httpx import Response

from tests.service.calls import ROW, assert_envelope, tenant, upload

JOBS = "/v1/fine_tuning/jobs"


def _file(api: TestClient, headers: dict[str, str], rows: int) -> str:
    return upload(api, headers, (json.dumps(ROW) + "\n").encode() * rows).json()["id"]


def test_batch_size_that_exceeds_the_update_budget_is_refused_and_the_cap_itself_accepted(api: TestClient) -> None:
    # m1 runs under the global policy: default 3 epochs x batch 8, budget cap 10 / 3 x 4 = 13.33x.
    # On 24 rows the default job is 3 x ceil(24 / 8) = 9 steps.
    acme = tenant(api, "acme")
    file_id = _file(api, acme, 24)

    def create(**hp: object) -> Response:
        return api.post(JOBS, json={"model": "m1", "training_file": file_id, "hyperparameters": hp}, headers=acme)

    # batch 1 x 6 epochs = 144 steps = 16x the default's 9: over 13.33x; batch is the biggest factor (8x)
    response = create(batch_size=1, n_epochs=6)
    error = assert_envelope(response, 400)
    assert response.headers["x-should-retry"] == "false"
    assert error["code"] == "hyperparameter_out_of_range" and error["param"] == "hyperparameters.batch_size"
    message = error["message"]
    assert "16.00x" in message and "13.33x" in message and "144 optimizer steps" in message
    # what fits: batch 2 (6 x 12 = 72 steps, 8x), 5 epochs (120 steps, 13.33x), multiplier 13.33 / 16
    assert "batch_size to at least 2" in message and "n_epochs to at most 5" in message
    assert "learning_rate_multiplier to at most 0.833" in message
    # the same through `method`, and the multiplier as the biggest factor
    hp = {"n_epochs": 4, "batch_size": 3, "learning_rate_multiplier": 4}
    error = assert_envelope(
        api.post(
            JOBS,
            json={
                "model": "m1",
                "training_file": file_id,
                "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            },
            headers=acme,
        ),
        400,
    )
    assert error["param"] == "hyperparameters.learning_rate_multiplier"  # 4 x 8 x 4 / 9 = 14.2x
    # exactly at the cap: batch 1 x 5 epochs = 120 steps = 13.33x
    job = create(batch_size=1, n_epochs=5)
    assert job.status_code == 200, job.text
    assert job.json()["hyperparameters"] == {"n_epochs": 5, "batch_size": 1, "learning_rate_multiplier": "auto"}
    # "auto" stays the default job (1x), with or without an explicit batch
    assert create().status_code == 200
    assert create(batch_size=1).status_code == 200  # 72 steps, 8x


def test_batch_size_is_bounded_both_ways_by_policy(api: TestClient) -> None:
    acme = tenant(api, "acme")
    file_id = _file(api, acme, 24)
    error = assert_envelope(
        api.post(
            JOBS, json={"model": "m1", "training_file": file_id, "hyperparameters": {"batch_size": 4096}}, headers=acme
        ),
        400,
    )
    assert error["code"] == "hyperparameter_out_of_range" and error["param"] == "hyperparameters.batch_size"
    assert "1 to 1024" in error["message"]


def test_padding_the_file_does_not_escape_the_budget(api: TestClient) -> None:
    # 240 rows: the default job is 3 x 30 = 90 steps; batch 1 x 6 epochs is 1440 steps: still 16x
    acme = tenant(api, "acme")
    file_id = _file(api, acme, 240)
    error = assert_envelope(
        api.post(
            JOBS,
            json={"model": "m1", "training_file": file_id, "hyperparameters": {"batch_size": 1, "n_epochs": 6}},
            headers=acme,
        ),
        400,
    )
    assert "16.00x" in error["message"]
