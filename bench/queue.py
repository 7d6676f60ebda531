"""What the orchestration costs per job, and whether a burst from one tenant starves the others.

    python -m bench.queue [--jobs 1000] [--tenants 3] [--burst-share 0.5] [--timeout 900] [--out PATH]
                          [--broker-db 6]

Real PostgreSQL (the local server, else an embedded one) and Redis (db 6 of the local server, or --broker-db:
flushed, so two runs at once need different dbs; else an embedded Valkey), one cpu and one gpu Celery worker
(concurrency 1 each) and Celery beat as subprocesses, and the no-op trainer (GFT_TRAINER=noop: no model work), so
every millisecond measured is orchestration: task messages, step claims, screening, heartbeats, transitions,
events, fair-share admission and the reconciler (every 5 s).

Jobs are created the way POST /v1/fine_tuning/jobs creates them (`service.jobs.submit_job`, committed), before
the clock starts; then their validation messages are sent all at once, the first tenant's burst
(`--burst-share` of the jobs) first, then the others' jobs.

    overhead_ms_per_job  wall time from the first validation message until every job is terminal, over the
                         jobs (both workers run in parallel: the pipeline's cost per job at saturation)
    create_ms_per_job    job creation (submit_job: quotas, policy, insert), outside the clock
    lost / duplicated    jobs not terminal at the end / jobs released more than once
    load_average_1m      the machine's 1-minute load average when the clock started and stopped: on a shared
                         machine the overhead grows with it, so compare runs taken under similar load
    fairness             each tenant's share of the releases while every tenant still had jobs waiting
                         (from the last tenant's first release until one tenant drained), and Jain's index

Writes var/bench/queue.json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from service.dispatch import enqueue_validation
from service.settings import get_settings
from service.state.db import session_scope
from service.state.migrate import upgrade
from service.state.models import JobEventRow, JobRow
from tests.services import fresh_database, postgres_server, redis_broker
from tests.stack import register_model, seed_tenant, start_beat, start_worker, stop_process_group, submit, wait_for

OUT = Path("var/bench/queue.json")
BROKER_DB = 6


def jain(shares: list[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one takes everything."""
    return sum(shares) ** 2 / (len(shares) * sum(s * s for s in shares)) if any(shares) else 0.0


def fairness(release_order: list[str], jobs_per_tenant: dict[str, int]) -> dict[str, object]:
    """Shares of the releases in the contended window (see the module docstring), given releases in order."""
    tenants = list(jobs_per_tenant)
    start = max(release_order.index(t) for t in tenants)
    done = dict.fromkeys(tenants, 0)
    end = len(release_order)
    for i, tenant in enumerate(release_order):
        done[tenant] += 1
        if i >= start and done[tenant] == jobs_per_tenant[tenant]:
            end = i + 1
            break
    window = release_order[start:end]
    shares = [window.count(t) / len(window) for t in tenants] if window else [0.0] * len(tenants)
    return {
        "window_releases": len(window),
        "shares": dict(zip(tenants, shares, strict=True)),
        "jain_index": round(jain(shares), 4),
    }


def run(
    n_jobs: int, n_tenants: int, burst_share: float, timeout: float, workdir: Path, broker_db: int = BROKER_DB
) -> dict[str, object]:
    with (
        postgres_server(workdir) as admin_uri,
        fresh_database(admin_uri) as url,
        redis_broker(workdir, db=broker_db) as broker,
    ):
        env = {
            "GFT_DATABASE_URL": url,
            "GFT_BROKER_URL": broker,
            "GFT_DATA_DIR": str(workdir / "var"),
            "GFT_TRAINER": "noop",
            "GFT_ENVIRONMENT": "development",
            "GFT_RECONCILE_EVERY_S": "5",
            "GFT_STALE_AFTER_S": "120",
            "GFT_MAX_ACTIVE_JOBS_PER_TENANT": "2",
        }
        os.environ.update(env)
        get_settings.cache_clear()
        upgrade(url)
        model = workdir / "model"
        model.mkdir(exist_ok=True)
        register_model(url, "m1", model)
        tenants = [seed_tenant(url, f"tenant-{i}") for i in range(n_tenants)]
        burst = round(n_jobs * burst_share)
        counts = [burst] + [(n_jobs - burst) // (n_tenants - 1)] * (n_tenants - 1)
        counts[-1] += n_jobs - sum(counts)
        procs = [
            start_worker(env, "cpu", workdir / "cpu.log"),
            start_worker(env, "gpu", workdir / "gpu.log"),
            start_beat(env, workdir),
        ]
        try:
            created = time.perf_counter()
            job_ids = [
                submit(url, broker, tenant, file_id, "m1", send=False)
                for (tenant, file_id), count in zip(tenants, counts, strict=True)
                for _ in range(count)
            ]
            create_s = time.perf_counter() - created
            time.sleep(max(0.0, 10 - create_s))  # workers up before the clock starts
            started, started_epoch, load_before = time.perf_counter(), time.time(), os.getloadavg()[0]
            for job_id in job_ids:
                enqueue_validation(broker_url=broker, job_id=job_id)

            def finished() -> bool:
                with session_scope(url) as session:
                    live = session.scalar(
                        select(func.count())
                        .select_from(JobRow)
                        .where(JobRow.status.not_in(["succeeded", "failed", "cancelled"]))
                    )
                return live == 0

            try:
                wait_for(finished, timeout, "all jobs to finish", every=0.2)
            except AssertionError:
                pass
            wall, load_after = time.perf_counter() - started, os.getloadavg()[0]
        finally:
            for proc in procs:
                stop_process_group(proc)
        with session_scope(url) as session:
            statuses = dict(session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all())
            releases = session.execute(
                select(JobEventRow.job_id, JobRow.tenant_id)
                .join(JobRow, JobRow.id == JobEventRow.job_id)
                .where(JobEventRow.message.startswith("Released "))
                .order_by(JobEventRow.seq)
            ).all()
            redispatched = (
                session.scalar(
                    select(func.count()).select_from(JobEventRow).where(JobEventRow.message.startswith("Re-dispatched"))
                )
                or 0
            )
            latencies = [
                f - started_epoch
                for f in session.scalars(select(JobRow.finished_at).where(JobRow.finished_at.is_not(None)))
            ]
        per_job = {j: 0 for j in job_ids}
        for job_id, _tenant in releases:
            per_job[job_id] += 1
        terminal = sum(v for k, v in statuses.items() if k in {"succeeded", "failed", "cancelled"})
        return {
            "jobs": n_jobs,
            "tenants": n_tenants,
            "jobs_per_tenant": counts,
            "overhead_ms_per_job": round(1000 * wall / n_jobs, 2),
            "wall_s": round(wall, 2),
            "create_ms_per_job": round(1000 * create_s / n_jobs, 2),
            "lost": n_jobs - terminal,
            "duplicated": sum(1 for v in per_job.values() if v > 1),
            "statuses": statuses,
            "redispatched": redispatched,
            "finished_after_s": {
                "p50": round(statistics.median(latencies), 1) if latencies else None,
                "max": round(max(latencies), 1) if latencies else None,
            },
            "fairness": fairness([t for _j, t in releases], {t: c for (t, _f), c in zip(tenants, counts, strict=True)}),
            "target_overhead_ms_per_job": 100,
            "load_average_1m": {"start": round(load_before, 2), "end": round(load_after, 2), "cpus": os.cpu_count()},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--burst-share", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--broker-db", type=int, default=BROKER_DB, help="Redis db number (flushed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gft-bench-queue-") as tmp:
        result = run(args.jobs, args.tenants, args.burst_share, args.timeout, Path(tmp), args.broker_db)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    fair = result["fairness"]
    print(
        f"{result['jobs']} jobs, {result['tenants']} tenants {result['jobs_per_tenant']}: "
        f"{result['overhead_ms_per_job']} ms/job (target <= 100), lost {result['lost']}, "
        f"duplicated {result['duplicated']}, wall {result['wall_s']} s"
    )
    print(
        f"fairness while all tenants waited: shares {fair['shares']}, Jain {fair['jain_index']} "  # type: ignore[index]
        f"over {fair['window_releases']} releases"
    )  # type: ignore[index]
    sys.exit(0 if result["lost"] == 0 and result["duplicated"] == 0 else 1)


if __name__ == "__main__":
    main()
