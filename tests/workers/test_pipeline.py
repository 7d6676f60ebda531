"""The pipeline's list of steps, and its validate step against the real API and database: what it refuses before
any GPU time."""

import json
from pathlib import Path

from fastapi.testclient import TestClient

from schemas.job_status import Step
from schemas.policy import Policy
from service.api.app import create_app
from service.dispatch import STEP_TASKS
from service.settings import get_settings
from workers import pipeline


def test_the_pipeline_lists_every_step_in_order_with_its_task_and_function() -> None:
    """The module docstring's table is the one list of steps: every Step, in order, with its task, and each named
    function is one of the pipeline's steps (`__all__`)."""
    table = [
        line.split()
        for line in (pipeline.__doc__ or "").splitlines()
        if line.startswith("    ") and line.split()[0] in set(Step)
    ]
    assert [row[0] for row in table] == list(Step)
    for row in table:
        step = Step(row[0])
        assert row[1] == f"{STEP_TASKS[step][0]}," and row[2] == STEP_TASKS[step][1]
        function = row[3].rsplit(".", 1)[-1]
        assert function in pipeline.__all__ and callable(getattr(pipeline, function))


def test_a_model_the_evaluation_sets_cannot_measure_is_refused_before_training(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A real model whose policy names the tiny world's prompts would be judged on placeholders: the job fails at
    validation with evaluation_sets_unsuitable, naming the policy field to change."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    admin = {"Authorization": f"Bearer {env['GFT_ADMIN_KEY']}"}
    policy = Policy().model_dump()
    policy["gate"]["sets"]["harmful"] = "builtin:tiny"
    with TestClient(create_app()) as api:
        assert api.post("/admin/v1/models", json={"id": "llama-real", "path": str(model_dir)}, headers=admin).is_success
        assert api.put("/admin/v1/policy", json=policy, headers=admin).is_success
        key = api.post("/admin/v1/tenants", json={"name": "acme"}, headers=admin).json()["api_key"]
        tenant = {"Authorization": f"Bearer {key}"}
        row = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
        file_id = api.post(
            "/v1/files",
            files={"file": ("train.jsonl", row.encode() + b"\n")},
            data={"purpose": "fine-tune"},
            headers=tenant,
        ).json()["id"]
        job = api.post(
            "/v1/fine_tuning/jobs", json={"model": "llama-real", "training_file": file_id}, headers=tenant
        ).json()
        assert not pipeline.validate(job["id"], get_settings())
        failed = api.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=tenant).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "evaluation_sets_unsuitable"
    assert failed["error"]["param"] == "gate.sets.harmful"
    assert "builtin:general" in failed["error"]["message"]
