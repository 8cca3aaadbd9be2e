"""Scoring benchmark: a full recompute of health and churn risk by two Celery worker processes,
against a bare SQL baseline over the same rollup rows, and an incremental recompute of 1%.

    .venv/bin/python bench/scoring.py [--accounts 100000] [--days 180] [--event-rate 0.6]

Data comes from the demo generator (accounts/demo/) and is loaded with COPY: this measures
scoring, not ingestion. Events, DailyUsage and DailyUser rows are built from the generated events
with pandas per block of accounts, while a second thread COPYs the previous block. The big tables'
indexes and constraints are dropped during the load and rebuilt after it, as a bulk load would.

PostgreSQL: with DATABASE_URL set, a fresh database `<name>_scoring_bench` on that server
(dropped at the end unless --keep); otherwise a throwaway server (bench/_pg.py). Redis: REDIS_URL,
else a throwaway redis-server on loopback. The churn model is trained in this process by the real
service (which trains on a fixed random subsample of CHURN_MAX_TRAINING_ACCOUNTS accounts).

Baseline: one GROUP BY account over the DailyUsage days the recompute reads (120; the 30-day
figure is printed too) plus one INSERT of those rows into a bare table without indexes. The last
line printed is `ratio: X`, the full recompute's wall time divided by the baseline's.
"""

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _pg, _scoring_data  # noqa: E402
from health.churn.dataset import BASELINE_DAYS, RECENT_DAYS  # noqa: E402

WORKER_START_SECONDS = 90
# What a full recompute writes (and autovacuum then visits).
RECOMPUTE_TABLES = (
    "health_healthscore",
    "health_accounthealth",
    "health_job",
    "health_jobchunk",
)


def main() -> None:
    args = _arguments()
    database_url, drop_database = _database(args)
    redis_url, redis_process = _redis()
    os.environ.update(_django_env(database_url, redis_url, args.chunk_size))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    today = dt.datetime.now(dt.UTC).date()
    workers: list[subprocess.Popen] = []
    try:
        sizes = (
            _scoring_data.sizes()
            if args.reuse
            else _scoring_data.load_business(args, today, database_url)
        )
        if args.reuse:
            _as_the_first_run_of_the_day(today)
        train_seconds, model = _train(today, args.horizon_days)
        workers = _start_workers(args.workers)
        full_seconds, full_job = _full_recompute(today)
        chunk_stats = _chunk_stats(full_job)
        # The recompute reads DailyUsage back RECENT_DAYS + BASELINE_DAYS (the churn model's
        # usage-against-usual feature): the baseline aggregates those same rows. The 30-day
        # figure is printed too, for comparison with earlier runs.
        # Autovacuum reacts to the recompute's writes within seconds; left alone it ran during
        # the baseline and slowed it by up to 60%. Vacuumed first, the baseline has the server
        # to itself; timed three times, its median counts. The account table is analysed too:
        # with stale statistics (after --reuse runs touched accounts) the planner picked a hash
        # join that spilled to disk and took twice as long as its usual plan.
        _vacuum(*RECOMPUTE_TABLES, "accounts_account", "accounts_dailyusage")
        baseline_runs = [_baseline(today, days=RECENT_DAYS + BASELINE_DAYS) for _ in range(3)]
        baseline_seconds = statistics.median(baseline_runs)
        baseline_30_seconds = _baseline(today, days=30)
        incremental_seconds, incremental_job = _incremental(args.touch_share)
        machine = _machine()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        if redis_process:
            redis_process.terminate()
        if drop_database:
            drop_database()

    print(machine)
    print(
        f"data: {sizes['accounts']:,} accounts ({full_job.params['accounts']:,} paying), "
        f"{sizes['events']:,} events over {args.days} days, {sizes['daily_usage']:,} DailyUsage "
        f"rows, {sizes['daily_user']:,} DailyUser rows; loaded in {sizes['seconds']:.0f} s"
    )
    print(
        f"churn model: v{model.version} {model.status} ({model.algorithm or '-'}, "
        f"{model.training_examples:,} examples, {model.churn_count:,} churns) "
        f"trained in {train_seconds:.1f} s"
    )
    print(
        f"full recompute ({args.workers} worker processes, {full_job.chunks_total} chunks of "
        f"{args.chunk_size}): {full_seconds:.1f} s; {full_job.result}"
    )
    print(f"  chunks in the workers: {chunk_stats}")
    print(
        f"baseline (GROUP BY account over the {RECENT_DAYS + BASELINE_DAYS} days of DailyUsage "
        f"the recompute reads + bulk insert): {baseline_seconds:.2f} s, the median of "
        f"{', '.join(f'{b:.2f}' for b in baseline_runs)} "
        f"(over 30 days only: {baseline_30_seconds:.2f} s)"
    )
    print(
        f"incremental recompute of {incremental_job.params['accounts']:,} accounts "
        f"({args.touch_share:.0%}): {incremental_seconds:.2f} s = "
        f"{incremental_seconds / full_seconds:.1%} of the full recompute"
    )
    print(f"ratio: {full_seconds / baseline_seconds:.2f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--event-rate", type=float, default=0.6,
        help="Feature events per active user-day (demo generator); 0.6 gives ~24M events",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=5000, help="HEALTH_CHUNK_SIZE")
    parser.add_argument("--touch-share", type=float, default=0.01)
    parser.add_argument("--block", type=int, default=2000, help="Accounts per generated block")
    parser.add_argument(
        "--horizon-days", type=int, default=45,
        help="Churn horizon to train with: 180 days of usage leave no 90-day label window "
        "after the churn service's usage warm-up",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database")
    parser.add_argument(
        "--reuse", action="store_true",
        help="Reuse the database a --keep run left (DATABASE_URL only): skip generation and load",
    )  # fmt: skip
    return parser.parse_args()


def _database(args) -> tuple[str, object]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return _pg.start(), None
    import psycopg2

    parts = urlparse(url)
    name = f"{parts.path.lstrip('/')}_scoring_bench"
    admin = psycopg2.connect(urlunparse(parts._replace(path="/postgres")))
    admin.autocommit = True
    if not args.reuse:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return urlunparse(parts._replace(path=f"/{name}")), drop


def _redis() -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    port = _pg.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", process


def _django_env(database_url: str, redis_url: str, chunk_size: int) -> dict:
    # Production settings (DEBUG=0: no SQL query log), shared with the worker processes.
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "csp.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "HEALTH_CHUNK_SIZE": str(chunk_size),
    }


def _train(today: dt.date, horizon_days: int):
    from health.services.churn import churn_model_train

    print(f"training the churn model (horizon {horizon_days} days) ...", flush=True)
    started = time.monotonic()
    model = churn_model_train(as_of=today, horizon_days=horizon_days)
    return time.monotonic() - started, model


def _start_workers(count: int) -> list[subprocess.Popen]:
    from csp.celery import Queue, app

    app.control.purge()
    names = [f"bench-scoring-{n}-{os.getpid()}@localhost" for n in range(count)]
    log = open(
        os.path.join(tempfile.gettempdir(), f"csp-bench-scoring-workers-{os.getpid()}.log"), "w"
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "csp",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                name,
                "--queues",
                ",".join(q.value for q in Queue),
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for name in names
    ]
    deadline = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < deadline:
        if len(app.control.ping(destination=names, timeout=1.0)) == count:
            return workers
    raise RuntimeError(f"the Celery workers did not start; see {log.name}")


def _as_the_first_run_of_the_day(today: dt.date) -> None:
    """A reused database may hold today's snapshots from an earlier run, which the recompute
    would then update in place (dead rows, vacuum running during the timing). A fresh load
    times the day's first full recompute, which inserts them: remove them to time the same."""
    from health.models import HealthScore

    HealthScore.objects.filter(as_of=today).delete()
    _vacuum(*RECOMPUTE_TABLES)


def _vacuum(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def _full_recompute(today: dt.date):
    from health.services.recompute import health_recompute, job_wait

    print("full recompute ...", flush=True)
    started = time.monotonic()
    job = health_recompute(as_of=today)
    job = job_wait(job_id=job.pk, poll_seconds=0.02)
    seconds = time.monotonic() - started
    if job.status != "succeeded":
        raise RuntimeError(f"the full recompute failed: {job.error}")
    return seconds, job


def _chunk_stats(job) -> str:
    """Seconds per chunk as the workers measured them: with the wall time, shows how much of
    it is waiting (two workers and PostgreSQL sharing the cores) rather than work."""
    seconds = sorted(job.chunks.values_list("elapsed_seconds", flat=True))
    if not seconds:
        return "none"
    return (
        f"median {seconds[len(seconds) // 2]:.2f} s, max {seconds[-1]:.2f} s, "
        f"sum {sum(seconds):.1f} s over {len(seconds)}"
    )


def _baseline(today: dt.date, *, days: int) -> float:
    from django.db import connection
    from psycopg2.extras import execute_values

    since = today - dt.timedelta(days=days)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_baseline (account_id bigint, events bigint, value_sum double "
            "precision, rows bigint)"
        )  # fmt: skip
        started = time.monotonic()
        cursor.execute(
            "SELECT a.id, COALESCE(SUM(d.event_count), 0), COALESCE(SUM(d.value_sum), 0), "
            "COUNT(d.id) FROM accounts_account a LEFT JOIN accounts_dailyusage d "
            "ON d.account_id = a.id AND d.day > %s AND d.day <= %s GROUP BY a.id", [since, today]
        )  # fmt: skip
        rows = cursor.fetchall()
        execute_values(
            cursor.cursor, "INSERT INTO bench_baseline VALUES %s", rows, page_size=len(rows)
        )
        seconds = time.monotonic() - started
        cursor.execute("DROP TABLE bench_baseline")
    return seconds


def _incremental(share: float):
    from django.db import connection

    from health.services.recompute import health_recompute_incremental, job_wait

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_account SET last_event_received_at = now() WHERE id IN "
            "(SELECT id FROM accounts_account ORDER BY md5(id::text) LIMIT "
            "(SELECT ceil(count(*) * %s) FROM accounts_account))", [share]
        )  # fmt: skip
    print("incremental recompute ...", flush=True)
    started = time.monotonic()
    job = health_recompute_incremental()
    job = job_wait(job_id=job.pk, poll_seconds=0.02)
    seconds = time.monotonic() - started
    if job.status != "succeeded":
        raise RuntimeError(f"the incremental recompute failed: {job.error}")
    return seconds, job


def _machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {memory:.0f} GB RAM, "
        f"Python {platform.python_version()}, PostgreSQL {version}"
    )


if __name__ == "__main__":
    main()
