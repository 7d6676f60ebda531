"""The API benchmark's quick mode runs end to end (its own uvicorn, PostgreSQL, a load generator and uploaders
in separate processes) and reports every figure. No thresholds: the figures depend on the machine and its load."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("get_job_rps", "get_job_p99_ms", "list_jobs_rps", "list_jobs_p99_ms", "upload_mb_per_s", "validation_mb_per_s")


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.api",
            "--quick",
            "--workers",
            "1",
            "--duration",
            "1",
            "--concurrency",
            "4",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    for key in KEYS:
        assert positive(report[key]), key
    assert set(report["upload_peak_rss_mb"]) == {"2mb", "8mb"} and all(
        map(positive, report["upload_peak_rss_mb"].values())
    )
    for endpoint in ("get_job", "list_jobs"):
        assert report["detail"][endpoint]["non_200"] == 0 and report["detail"][endpoint]["requests"] > 0
    for upload in report["detail"]["uploads"].values():
        assert upload["file_status"] == "processed"
