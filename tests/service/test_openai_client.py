"""Every tenant call through the official openai client against a real uvicorn, PostgreSQL and Redis."""

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from service.state.checkpoints import add_checkpoint
from service.state.db import session_scope
from service.state.jobs import add_event
from tests.service.live import ADAPTER_FILES, jsonl, new_tenant, register_model, release, set_status
from tests.stack import api_server


@pytest.fixture()
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with api_server(env, tmp_path / "api.log") as base:
        register_model(base, env["GFT_ADMIN_KEY"], tmp_path / "model")
        yield base


def client_for(base: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


def test_files_through_the_client(server: str, env: dict[str, str]) -> None:
    _, key = new_tenant(server, env["GFT_ADMIN_KEY"], "acme")
    client = client_for(server, key)
    content = jsonl(3)
    created = [client.files.create(file=("train.jsonl", content), purpose="fine-tune") for _ in range(5)]
    first = created[0]
    assert first.object == "file" and first.status == "processed" and first.bytes == len(content)
    assert first.filename == "train.jsonl" and first.purpose == "fine-tune"
    assert client.files.wait_for_processing(first.id).status == "processed"
    assert client.files.retrieve(first.id).id == first.id
    assert client.files.content(first.id).content == content

    page = client.files.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert [f.id for f in client.files.list(limit=2)] == [f.id for f in reversed(created)]  # all pages, newest first

    deleted = client.files.delete(first.id)
    assert deleted.deleted and deleted.id == first.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(
            file=("bad.jsonl", b'{"messages": [{"role": "user", "content": "q"}]}\n'), purpose="fine-tune"
        )
    assert "line 1" in info.value.message and info.value.param == "file"


def test_jobs_through_the_client(server: str, env: dict[str, str]) -> None:
    org, key = new_tenant(server, env["GFT_ADMIN_KEY"], "acme")
    client = client_for(server, key)
    training = client.files.create(file=("train.jsonl", jsonl(2)), purpose="fine-tune")
    validation = client.files.create(file=("valid.jsonl", jsonl(1)), purpose="fine-tune")

    job = client.fine_tuning.jobs.create(
        model="m1",
        training_file=training.id,
        validation_file=validation.id,
        hyperparameters={"n_epochs": 2},
        suffix="colors",
        seed=7,
        metadata={"team": "a"},
    )
    assert job.object == "fine_tuning.job" and job.status == "validating_files" and job.organization_id == org
    assert job.hyperparameters.n_epochs == 2 and job.seed == 7 and job.metadata == {"team": "a"}
    assert job.validation_file == validation.id and job.fine_tuned_model is None and job.safety is None  # type: ignore[attr-defined]
    with_method = client.fine_tuning.jobs.create(
        model="m1",
        training_file=training.id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4}}},
    )
    assert with_method.method is not None and with_method.hyperparameters.batch_size == 4
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="m1", training_file=training.id, extra_body={"surprise": 1})
    assert info.value.param == "surprise"
    third = client.fine_tuning.jobs.create(model="m1", training_file=training.id)

    assert client.fine_tuning.jobs.retrieve(job.id).id == job.id
    page = client.fine_tuning.jobs.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert [j.id for j in client.fine_tuning.jobs.list(limit=2)] == [third.id, with_method.id, job.id]

    # pause and resume: a queued job pauses, a paused one resumes (queued again, waiting for a slot)
    set_status(env, job.id, "queued")
    paused = client.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.resume(third.id)  # validating_files: never paused

    cancelled = client.fine_tuning.jobs.cancel(third.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(third.id)
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.pause(third.id)

    # events and checkpoints, paged by the client
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        for step in range(1, 6):
            add_event(
                session=session,
                job_id=job.id,
                message=f"Step {step}",
                type_="metrics",
                data={"step": step, "train_loss": 1.0 / step},
            )
            add_checkpoint(
                session=session,
                job_id=job.id,
                step=step * 10,
                storage_key=f"checkpoints/{step}",
                metrics={"step": step * 10, "train_loss": 0.5},
            )
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=2))
    assert events[0].message == "Step 5" and events[0].data == {"step": 5, "train_loss": 0.2}
    assert len(events) == len({e.id for e in events}) >= 8  # created, paused, resumed and five steps
    assert events[-1].message.startswith("Created fine-tuning job")
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id, limit=2))
    assert [c.step_number for c in checkpoints] == [50, 40, 30, 20, 10]
    assert checkpoints[0].fine_tuning_job_id == job.id and checkpoints[0].metrics.train_loss == 0.5

    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-000000000000000000000000")


def test_models_and_adapter_download(server: str, env: dict[str, str]) -> None:
    org, key = new_tenant(server, env["GFT_ADMIN_KEY"], "acme")
    client = client_for(server, key)
    training = client.files.create(file=("train.jsonl", jsonl(1)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="m1", training_file=training.id, suffix="colors")
    other = client.fine_tuning.jobs.create(model="m1", training_file=training.id)
    headers = {"Authorization": f"Bearer {key}"}
    assert [m.id for m in client.models.list()] == ["m1"]
    assert httpx.get(f"{server}/v1/fine_tuning/jobs/{job.id}/adapter", headers=headers).status_code == 404

    name = release(env, job.id)
    assert name == f"ft:m1:{org}:colors:{job.id}"
    released = client.fine_tuning.jobs.retrieve(job.id)
    assert released.status == "succeeded" and released.fine_tuned_model == name
    safety = released.safety  # type: ignore[attr-defined]  # our extension, kept by the client as an extra field
    assert {k: safety[k] for k in ("decision", "base_asr", "candidate_asr")} == {
        "decision": "released",
        "base_asr": 0.02,
        "candidate_asr": 0.03,
    }
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {"m1", name} and models[name].owned_by == org and models["m1"].owned_by == "system"

    response = httpx.get(f"{server}/v1/fine_tuning/jobs/{job.id}/adapter", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert files == {f"{job.id}/{n}": c for n, c in ADAPTER_FILES.items()}
    again = httpx.get(f"{server}/v1/fine_tuning/jobs/{job.id}/adapter", headers=headers)
    assert again.headers["x-content-sha256"] == response.headers["x-content-sha256"]  # same bytes each time

    # Held, blocked, cancelled: never downloadable, whatever is in the store.
    for status, fields in (
        ("held", {"adapter_key": f"adapters/{job.id}"}),
        ("failed", {"adapter_key": f"adapters/{job.id}", "error": {"code": "safety_regression", "message": "blocked"}}),
    ):
        set_status(env, other.id, status, **fields)
        assert httpx.get(f"{server}/v1/fine_tuning/jobs/{other.id}/adapter", headers=headers).status_code == 404
