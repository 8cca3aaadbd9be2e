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

Baseline: one GROUP BY account over the last 30 days of DailyUsage (sums and counts, one row per
account) plus one INSERT of those rows into a bare table without indexes. The last line printed
is `ratio: X`, the full recompute's wall time divided by the baseline's.
"""

import argparse
import datetime as dt
import io
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _pg  # noqa: E402
from health.churn.dataset import BASELINE_DAYS, RECENT_DAYS  # noqa: E402

BIG_TABLES = ["accounts_usageevent", "accounts_dailyusage", "accounts_dailyuser"]
WORKER_START_SECONDS = 90


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
        sizes = _sizes() if args.reuse else _load(args, today, database_url)
        train_seconds, model = _train(today, args.horizon_days)
        workers = _start_workers(args.workers)
        full_seconds, full_job = _full_recompute(today)
        chunk_stats = _chunk_stats(full_job)
        # The recompute reads DailyUsage back RECENT_DAYS + BASELINE_DAYS (the churn model's
        # usage-against-usual feature): the baseline aggregates those same rows. The 30-day
        # figure is printed too, for comparison with earlier runs.
        baseline_seconds = _baseline(today, days=RECENT_DAYS + BASELINE_DAYS)
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
        f"the recompute reads + bulk insert): {baseline_seconds:.2f} s "
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
    parser.add_argument("--chunk-size", type=int, default=2000)
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


def _load(args, today: dt.date, database_url: str) -> dict:
    from accounts.demo.generator import generate_business, iter_event_frames

    started = time.monotonic()
    business = generate_business(
        n_accounts=args.accounts, days=args.days, seed=args.seed, today=today
    )
    loaded_at = pd.Timestamp(today - dt.timedelta(days=1), tz="UTC")
    pk_by_external = pd.Series(
        np.arange(1, len(business.accounts) + 1), index=business.accounts["external_id"]
    )
    _copy_now("accounts_account", _accounts(business.accounts, loaded_at))
    contacts = _contacts(business.contacts, pk_by_external, loaded_at)
    _copy_now("accounts_contact", contacts)
    _copy_now(
        "accounts_subscription", _subscriptions(business.subscriptions, pk_by_external, loaded_at)
    )
    contact_pk = pd.Series(contacts["id"].to_numpy(), index=contacts["external_id"])
    _copy_now(
        "accounts_surveyresponse", _surveys(business.surveys, pk_by_external, contact_pk, loaded_at)
    )

    print(f"generating and loading events of {args.accounts:,} accounts ...", flush=True)
    saved = _drop_indexes(BIG_TABLES)
    sizes = {"accounts": args.accounts, "events": 0, "daily_usage": 0, "daily_user": 0}
    last_seen = []
    with _Copier(database_url) as copier:
        for frame in iter_event_frames(
            business, accounts_per_chunk=args.block, event_rate=args.event_rate
        ):
            events, usage, users, seen = _event_tables(frame, pk_by_external)
            copier.put("accounts_usageevent", events)
            copier.put("accounts_dailyusage", usage)
            copier.put("accounts_dailyuser", users)
            sizes["events"] += len(events)
            sizes["daily_usage"] += len(usage)
            sizes["daily_user"] += len(users)
            last_seen.append(seen)
    print(
        f"{sizes['events']:,} events loaded in {time.monotonic() - started:.0f} s; "
        "rebuilding indexes ...",
        flush=True,
    )
    _restore_indexes(saved)
    print(f"indexes rebuilt at {time.monotonic() - started:.0f} s", flush=True)
    _account_facts(pd.concat(last_seen), today)
    sizes["seconds"] = time.monotonic() - started
    return sizes


def _accounts(frame: pd.DataFrame, loaded_at: pd.Timestamp) -> pd.DataFrame:
    import json

    return pd.DataFrame({
        "id": np.arange(1, len(frame) + 1),
        "external_id": frame["external_id"], "name": frame["name"], "domain": frame["domain"],
        "industry": frame["industry"], "segment": frame["segment"],
        "lifecycle_stage": frame["lifecycle_stage"], "owner_id": None,
        "attributes": [json.dumps(a) for a in frame["attributes"]],
        "status": "prospect", "mrr": 0, "customer_since": None, "churned_on": None,
        "churn_reason": "", "last_event_received_at": None,
        "created_at": loaded_at, "updated_at": loaded_at,
    })  # fmt: skip


def _contacts(frame: pd.DataFrame, pks: pd.Series, loaded_at: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame({
        "id": np.arange(1, len(frame) + 1),
        "account_id": pks.reindex(frame["account_id"]).to_numpy(),
        "external_id": frame["external_id"], "email": frame["email"], "name": frame["name"],
        "title": frame["title"], "role": frame["role"], "last_seen_at": None,
        "created_at": loaded_at, "updated_at": loaded_at,
    })  # fmt: skip


def _subscriptions(frame: pd.DataFrame, pks: pd.Series, loaded_at: pd.Timestamp) -> pd.DataFrame:
    out = frame.drop(columns=["account_id"]).copy()
    out.insert(0, "account_id", pks.reindex(frame["account_id"]).to_numpy())
    for column in ("start_date", "renewal_date", "end_date"):
        out[column] = out[column].dt.date
    out["created_at"] = loaded_at
    out["updated_at"] = loaded_at
    return out


def _surveys(frame, pks: pd.Series, contact_pks: pd.Series, loaded_at) -> pd.DataFrame:
    out = frame.drop(columns=["account_id", "contact_id"]).copy()
    out.insert(0, "account_id", pks.reindex(frame["account_id"]).to_numpy())
    out.insert(1, "contact_id", contact_pks.reindex(frame["contact_id"]).astype("Int64").to_numpy())
    out["created_at"] = loaded_at
    return out


def _event_tables(frame: pd.DataFrame, pks: pd.Series):
    """The rows of UsageEvent, DailyUsage and DailyUser for one block of generated events, and
    each account's last event time (which ingestion would have recorded)."""
    account = frame["account_id"].map(pks).astype("int64")
    # Naive UTC (the COPY connection's time zone is UTC): pandas writes it three times faster.
    utc = frame["timestamp"].dt.tz_localize(None)
    day = utc.dt.floor("D")  # written as YYYY-MM-DD
    events = pd.DataFrame({
        "account_id": account, "event_id": frame["event_id"], "user_id": frame["user_id"],
        "name": frame["event"], "occurred_at": utc, "value": frame["value"],
        "properties": frame["properties"], "received_at": utc,
    })  # fmt: skip
    keyed = pd.DataFrame({
        "account_id": account, "day": day, "event_name": frame["event"].astype(str),
        "user_id": frame["user_id"].astype(str), "value": frame["value"],
    })  # fmt: skip
    keys = ["account_id", "day", "event_name"]
    users = keyed.drop_duplicates([*keys, "user_id"])[[*keys, "user_id"]]
    usage = keyed.groupby(keys, sort=False).agg(
        event_count=("user_id", "size"), value_sum=("value", "sum")
    )
    usage["active_users"] = users.groupby(keys, sort=False).size()
    seen = frame.groupby(account.to_numpy())["timestamp"].max()
    return events, usage.reset_index(), users, seen


def _csv(frame: pd.DataFrame) -> io.StringIO:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    return buffer


def _copy_sql(table: str, frame: pd.DataFrame) -> str:
    return f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"


def _copy_now(table: str, frame: pd.DataFrame) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(_copy_sql(table, frame), _csv(frame))
        if "id" in frame.columns:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [len(frame)]
            )


class _Copier:
    """COPYs in a second thread (its own connection) while the main thread generates the next
    block; the bounded queue keeps memory bounded."""

    def __init__(self, database_url: str):
        import psycopg2

        self.connection = psycopg2.connect(database_url)
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        self.queue: queue.Queue = queue.Queue(maxsize=6)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_Copier":
        self.thread.start()
        return self

    def put(self, table: str, frame: pd.DataFrame) -> None:
        if self.error:
            raise self.error
        self.queue.put((_copy_sql(table, frame), _csv(frame)))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            try:
                with self.connection.cursor() as cursor:
                    cursor.copy_expert(*item)
            except BaseException as exc:  # reported to the main thread by put() / __exit__
                self.error = exc

    def __exit__(self, *exc_info) -> None:
        self.queue.put(None)
        self.thread.join()
        self.connection.close()
        if self.error and not exc_info[0]:
            raise self.error


def _drop_indexes(tables: list[str]) -> list[str]:
    """Drop the tables' unique/foreign-key constraints and secondary indexes; return the SQL that
    recreates them."""
    from django.db import connection

    restore = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')", [table]
            )  # fmt: skip
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                "WHERE conrelid = %s::regclass)", [table, table]
            )  # fmt: skip
            indexes = cursor.fetchall()
            for name, _ in constraints:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            restore += [definition for _, definition in indexes]
            restore += [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d in constraints]
    return restore


def _restore_indexes(statements: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("VACUUM ANALYZE")


def _account_facts(last_seen: pd.Series, today: dt.date) -> None:
    """Status and MRR through the real service; last_event_received_at as ingestion sets it."""
    from django.db import connection

    from accounts.services.revenue import account_revenue_refresh

    ids = list(range(1, int(last_seen.index.max() if len(last_seen) else 0) + 1))
    for first in range(0, len(ids), 5000):
        account_revenue_refresh(account_ids=ids[first : first + 5000], today=today)
    frame = pd.DataFrame({"id": last_seen.index, "seen": last_seen.to_numpy()})
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_seen (id bigint, seen timestamptz)")
        cursor.cursor.copy_expert(_copy_sql("bench_seen", frame), _csv(frame))
        cursor.execute(
            "UPDATE accounts_account a SET last_event_received_at = s.seen "
            "FROM bench_seen s WHERE s.id = a.id"
        )
        cursor.execute("DROP TABLE bench_seen")
        cursor.execute("ANALYZE accounts_account")


def _sizes() -> dict:
    from django.db import connection

    counts = {"accounts": "accounts_account", "events": "accounts_usageevent"}
    counts |= {"daily_usage": "accounts_dailyusage", "daily_user": "accounts_dailyuser"}
    with connection.cursor() as cursor:
        for key, table in counts.items():
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[key] = cursor.fetchone()[0]
    return {**counts, "seconds": 0.0}


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


def _full_recompute(today: dt.date):
    from health.services.recompute import health_recompute, job_wait

    print("full recompute ...", flush=True)
    started = time.monotonic()
    job = health_recompute(as_of=today)
    job = job_wait(job_id=job.pk, poll_seconds=0.1)
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
    job = job_wait(job_id=job.pk, poll_seconds=0.05)
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
