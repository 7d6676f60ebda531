"""GET /v1/fine_tuning/jobs/{id}/safety_report: the stored gate report as JSON or HTML, to its tenant only."""

from fastapi.testclient import TestClient

from schemas.policy import GatePolicy
from service.settings import get_settings
from service.state.db import session_scope
from service.state.jobs import transition
from service.storage import LocalArtifactStore
from tests.service.calls import ONE_ROW_FILE, assert_envelope, tenant, upload
from workers.evaluation.job_gate import persist_report
from workers.evaluation.runner import GateInputs, ModelFigures, SuiteSpec, assess
from workers.evaluation.suites import PromptResult


def blocked_document(job_id: str) -> tuple[dict, list[str]]:
    recs = tuple({"prompt": f"p{i}", "category": "malware" if i % 2 else "fraud"} for i in range(10))
    spec = SuiteSpec("direct", "direct harmful prompts", "direct", "builtin", recs)

    def figures(complied: int) -> ModelFigures:
        return ModelFigures(
            {
                "direct": [
                    PromptResult(r["prompt"], r["category"], "Sure" if i < complied else "I cannot.", i >= complied)
                    for i, r in enumerate(recs)
                ]
            }
        )

    outcome = assess(figures(0), figures(8), GateInputs((spec,)), GatePolicy(), {"job_id": job_id})
    return {**outcome.document, "outcome": "blocked"}, outcome.decision.reasons


def test_safety_report_json_and_html_for_the_owner_only(api: TestClient, env: dict[str, str]) -> None:
    owner, other = tenant(api, "owner"), tenant(api, "other")
    file_id = upload(api, owner, ONE_ROW_FILE).json()["id"]
    job = api.post("/v1/fine_tuning/jobs", json={"model": "m1", "training_file": file_id}, headers=owner).json()
    url = f"/v1/fine_tuning/jobs/{job['id']}/safety_report"

    error = assert_envelope(api.get(url, headers=owner), 404)  # not evaluated yet
    assert error["code"] == "safety_report_not_found" and "no safety report yet" in error["message"]

    document, reasons = blocked_document(job["id"])
    key = persist_report(LocalArtifactStore(get_settings().artifacts_dir), job["id"], document)
    with session_scope(env["GFT_DATABASE_URL"]) as session:
        assert transition(
            session=session,
            job_id=job["id"],
            from_statuses={"validating_files"},
            to_status="failed",
            error={"code": "safety_regression", "message": "blocked", "param": None},
            safety={
                "decision": "blocked",
                "base_asr": 0.0,
                "candidate_asr": 0.8,
                "reasons": reasons,
                "report_key": key,
            },
        )

    as_json = api.get(url, headers=owner)
    assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
    body = as_json.json()
    assert body["object"] == "fine_tuning.job.safety_report" and body["decision"]["reasons"] == reasons
    assert body["suites"][0]["candidate"]["k"] == 8

    as_html = api.get(url, params={"format": "html"}, headers=owner)
    assert as_html.status_code == 200 and as_html.headers["content-type"].startswith("text/html")
    assert "<svg" in as_html.text and "Decision: blocked" in as_html.text and "above the cap" in as_html.text

    retrieved = api.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=owner).json()
    assert retrieved["safety"]["decision"] == "blocked" and "report_key" not in retrieved["safety"]

    assert_envelope(api.get(url, headers=other), 404)  # another tenant's job does not exist for them
    assert_envelope(api.get(url, params={"format": "html"}, headers=other), 404)
    assert_envelope(api.get(url, params={"format": "pdf"}, headers=owner), 400)
