"""Ingestion benchmark: events/s through POST /api/v1/events under gunicorn, against a raw COPY of
the same rows into a bare table of the same shape (no indexes), on the same PostgreSQL.

    .venv/bin/python bench/ingest.py [--events 1000000] [--batch 1000] [--workers 4]

Uses DATABASE_URL when set (it is migrated; the run's accounts and events get a unique prefix),
else starts a throwaway PostgreSQL (bench/_pg.py). The last line printed is `ratio: X`, the API
rate divided by the COPY rate.
"""

import argparse
import atexit
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _pg  # noqa: E402

EVENT_NAMES = [
    "login",
    "report_created",
    "report_viewed",
    "dashboard_viewed",
    "export",
    "invite_sent",
    "integration_connected",
    "search",
    "comment_added",
    "api_call",
    "file_uploaded",
    "settings_changed",
]
PLANS = ["free", "starter", "pro", "enterprise"]


def main() -> None:
    args = _arguments()
    database_url = os.environ.get("DATABASE_URL") or _pg.start()
    server_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "csp.settings",
        # Production settings (DEBUG=0: no SQL query log), minus the HTTPS redirect.
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSP_API_RATE_PER_MINUTE": "1000000000",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(server_env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run_id = f"{int(time.time()) % 100000:05d}"
    account_pks, key = _accounts_and_token(run_id, args.accounts)
    print(f"generating {args.events:,} events in batches of {args.batch:,} ...", flush=True)
    bodies, copy_rows = _generate(run_id, account_pks, args.events, args.batch, args.days)

    port = _pg.free_port()
    server = _start_gunicorn(server_env, port, args.workers)
    try:
        cpu_before = _pg.process_tree_cpu_seconds(server.pid), _pg.server_cpu_seconds()
        wal_before = _wal_totals()
        api_seconds = _push(port, key, bodies, args.clients or 2 * args.workers, args.batch)
        cpu_after = _pg.process_tree_cpu_seconds(server.pid), _pg.server_cpu_seconds()
        wal_after = _wal_totals()
    finally:
        server.terminate()
        server.wait(timeout=30)
    _verify(run_id, args.events)
    copy_seconds = _copy(copy_rows)

    api_rate, copy_rate = args.events / api_seconds, args.events / copy_seconds
    print(_machine())
    print(
        f"gunicorn sync workers: {args.workers}, client threads: {args.clients or 2 * args.workers}"
    )
    # CPU per event is far less sensitive than wall time to other jobs on a shared machine.
    python_us = (cpu_after[0] - cpu_before[0]) / args.events * 1e6
    postgres_us = (
        f"{(cpu_after[1] - cpu_before[1]) / args.events * 1e6:.1f} us"
        if cpu_before[1] is not None
        else "not measured (DATABASE_URL server)"
    )
    print(f"server CPU per event: gunicorn {python_us:.1f} us, PostgreSQL {postgres_us}")
    records, full_pages, size = (
        (b - a) / args.events for a, b in zip(wal_before, wal_after, strict=True)
    )
    print(
        f"WAL per event: {records:.1f} records, {size:,.0f} bytes, "
        f"{full_pages:.3f} full-page images (other clients of a DATABASE_URL server included)"
    )
    print(f"API:  {args.events:,} events in {api_seconds:.1f} s = {api_rate:,.0f} events/s")
    print(
        f"COPY: {args.events:,} rows in {copy_seconds:.1f} s = {copy_rate:,.0f} rows/s "
        "(median of 3)"
    )
    print(f"ratio: {api_rate / copy_rate:.3f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=0, help="client threads (2 x workers)")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument(
        "--days",
        type=int,
        default=1,
        help="events occurred within this many days before now (live stream: 1)",
    )
    return parser.parse_args()


def _accounts_and_token(run_id: str, count: int) -> tuple[list[int], str]:
    from accounts.models import Account
    from accounts.services.tokens import api_token_create

    Account.objects.bulk_create(
        [Account(external_id=f"b{run_id}-{i}", name=f"Bench customer {i}") for i in range(count)],
        batch_size=2000,
    )
    pks = list(
        Account.objects.filter(external_id__startswith=f"b{run_id}-")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _, key = api_token_create(name=f"bench {run_id}", scopes=["events:write"])
    return pks, key


def _generate(run_id: str, account_pks: list[int], total: int, batch: int, days: int):
    """Request bodies built up front (client JSON building is not server cost), and the same
    rows as COPY text for the baseline."""
    import datetime as dt

    import orjson

    rng = random.Random(42)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    received = now.isoformat()
    bodies, copy_lines = [], []
    for start in range(0, total, batch):
        events = []
        for n in range(start, min(start + batch, total)):
            index = rng.randrange(len(account_pks))
            moment = (now - dt.timedelta(seconds=rng.randrange(days * 86400))).isoformat()
            value = rng.choice([None, None, round(rng.random() * 100, 2)])
            properties = {"plan": rng.choice(PLANS), "source": "web", "n": rng.randrange(50)}
            event = {
                "event_id": f"ev-{run_id}-{n}",
                "account_id": f"b{run_id}-{index}",
                "user_id": f"user-{rng.randrange(40)}",
                "event": rng.choice(EVENT_NAMES),
                "timestamp": moment,
                "value": value,
                "properties": properties,
            }
            events.append(event)
            copy_lines.append(
                "\t".join(
                    [
                        str(account_pks[index]),
                        event["event_id"],
                        event["user_id"],
                        event["event"],
                        moment,
                        "\\N" if value is None else repr(value),
                        orjson.dumps(properties).decode().replace("\\", "\\\\"),
                        received,
                    ]
                )
            )
        bodies.append(orjson.dumps({"events": events}))
    return bodies, ("\n".join(copy_lines) + "\n").encode()


# gunicorn hook (config file written per run): with --preload the master has loaded Django;
# importing the URLconf there too means every forked worker starts warm. Otherwise each worker
# imports the whole project (scikit-learn included, ~2 s of CPU) on its first request, inside
# the timed window, which measures start-up rather than ingestion.
_GUNICORN_CONFIG = """
def when_ready(server):
    from django.urls import get_resolver

    get_resolver().url_patterns
"""


def _start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    log = tempfile.NamedTemporaryFile(
        "w", prefix="csp-bench-gunicorn-", suffix=".log", delete=False
    )  # noqa: SIM115 - lives as long as the server; kept only if the run fails
    config = tempfile.NamedTemporaryFile(
        "w", prefix="csp-bench-gunicorn-", suffix=".conf.py", delete=False
    )  # noqa: SIM115
    with config:
        config.write(_GUNICORN_CONFIG)
    atexit.register(os.unlink, config.name)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "csp.wsgi",
            "--config",
            config.name,
            "--preload",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--chdir",
            str(ROOT),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            atexit.register(_remove_if_clean, log.name)
            return server
        except OSError:
            if server.poll() is not None:
                sys.exit(f"gunicorn exited; see {log.name}")
            time.sleep(0.1)
    server.terminate()
    sys.exit("gunicorn did not answer /healthz")


def _remove_if_clean(path: str) -> None:
    if not sys.exc_info()[0] and "Traceback" not in Path(path).read_text():
        os.unlink(path)
    else:
        print(f"gunicorn log: {path}")


def _wal_totals() -> tuple[int, int, int]:
    """The server's WAL records, full-page images and bytes written so far (PostgreSQL 14+)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
        return cursor.fetchone()


def _post(port: int, key: str, body: bytes) -> tuple[int, bytes]:
    conn = HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST",
            "/api/v1/events",
            body=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _push(port: int, key: str, bodies: list[bytes], clients: int, batch: int) -> float:
    """Send every body once from `clients` threads; returns the wall-clock seconds."""
    import orjson

    for _ in range(clients):  # warm every worker's database connection, not timed
        _post(port, key, b'{"events": []}')
    queue = iter(range(len(bodies)))
    lock = threading.Lock()
    accepted, errors = [0], []

    def client() -> None:
        while True:
            with lock:
                index = next(queue, None)
            if index is None:
                return
            status, reply = _post(port, key, bodies[index])
            if status != 200:
                errors.append((status, reply[:300]))
                return
            result = orjson.loads(reply)
            with lock:
                accepted[0] += result["accepted"]

    elapsed = run_threads([threading.Thread(target=client) for _ in range(clients)])
    if errors:
        sys.exit(f"requests failed: {errors[:3]}")
    print(f"API accepted {accepted[0]:,} events", flush=True)
    return elapsed


def run_threads(threads: list[threading.Thread]) -> float:
    """Start the threads together and wait for all; returns the wall-clock seconds."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _verify(run_id: str, total: int) -> None:
    """The benchmark counts only if every event was stored once and rolled up once."""
    from django.db import connection
    from django.db.models import Sum

    from accounts.models import DailyUsage, UsageEvent

    connection.close()
    stored = UsageEvent.objects.filter(event_id__startswith=f"ev-{run_id}-").count()
    rolled = DailyUsage.objects.filter(account__external_id__startswith=f"b{run_id}-").aggregate(
        n=Sum("event_count")
    )["n"]
    print(f"stored events: {stored:,}; rolled up: {rolled:,}", flush=True)
    if stored != total or rolled != total:
        sys.exit("benchmark invalid: stored or rolled-up count differs from events sent")


def _copy(rows: bytes, repeat: int = 3) -> float:
    """Seconds to COPY the rows into a bare table: the median of `repeat` loads, each into a
    fresh table (one load varies by up to ~15% from run to run on this machine)."""
    from django.db import connection

    columns = "account_id, event_id, user_id, name, occurred_at, value, properties, received_at"
    timings = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            cursor.execute("DROP TABLE IF EXISTS bench_copy_usageevent")
            # Same columns, types and defaults; no primary key, unique constraint or index.
            cursor.execute(
                "CREATE TABLE bench_copy_usageevent (LIKE accounts_usageevent "
                "INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            started = time.perf_counter()
            cursor.cursor.copy_expert(
                f"COPY bench_copy_usageevent ({columns}) FROM STDIN", io.BytesIO(rows)
            )
            timings.append(time.perf_counter() - started)
            cursor.execute("SELECT count(*) FROM bench_copy_usageevent")
            loaded = cursor.fetchone()[0]
        cursor.execute("DROP TABLE bench_copy_usageevent")
    rates = ", ".join(f"{loaded / seconds:,.0f}" for seconds in timings)
    print(f"COPY loaded {loaded:,} rows {repeat} times: {rates} rows/s", flush=True)
    return statistics.median(timings)


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    with open("/proc/meminfo") as meminfo:
        ram_gb = int(meminfo.readline().split()[1]) / 1024 / 1024
    python = platform.python_version()
    return f"machine: {os.cpu_count()} CPUs ({cpu}), {ram_gb:.0f} GB RAM, Python {python}"


if __name__ == "__main__":
    main()
