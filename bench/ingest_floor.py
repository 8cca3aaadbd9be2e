"""The database-only floor under bench/ingest.py: how close to a raw COPY any implementation of
the events contract can get on this machine, measured in one run.

    .venv/bin/python bench/ingest_floor.py [--events 1000000] [--connections 4]

The same rows as bench/ingest.py (same generator) are written straight from `--connections`
database connections: no HTTP, no Django, no validation, no client-side work in the timed part
(every batch is serialised up to front). Each 1,000-row batch is one multi-row INSERT from one
jsonb parameter (the form CSP sends) in one committed transaction, as each API request must be.
The stages keep progressively more of what the contract needs:

1. insert:      a bare table (the COPY baseline's shape), no index;
2. idempotency: + the unique (account, event_id) index and ON CONFLICT DO NOTHING;
3. newest:      + the (account, newest first) index behind the account's events list;
4. event table: the real accounts_usageevent (+ primary key and the account foreign key);
5. CSP write:   the real ingest statement (accounts.services.ingest_sql), rollups included.

Each stage prints its rate, its PostgreSQL CPU per row (throwaway server only) and its ratio to
the COPY rate of the same run; the API (bench/ingest.py) can only be slower than stage 5. Uses
DATABASE_URL when set, else a throwaway PostgreSQL (bench/_pg.py).
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _pg  # noqa: E402
from bench import ingest as api_bench  # noqa: E402

_COLUMNS = "account_id, event_id, user_id, name, occurred_at, value, properties, received_at"
_SELECT_INPUT = """
    SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, (r->>4)::timestamptz, (r->>5)::float8, r->6, $2
    FROM jsonb_array_elements($1) AS r
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or _pg.start()
    os.environ.update(
        DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="csp.settings", SECRET_KEY="bench-only"
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run_id = f"{int(time.time()) % 100000:05d}"
    account_pks, _ = api_bench._accounts_and_token(run_id, args.accounts)
    print(f"generating {args.events:,} events ...", flush=True)
    bodies, copy_rows = api_bench._generate(run_id, account_pks, args.events, 1000, 1)
    batches = _batches(bodies, run_id, account_pks)
    del bodies

    copy_rate = args.events / api_bench._copy(copy_rows)
    print(api_bench._machine())
    print(f"connections: {args.connections}, batches of 1,000 rows, one transaction each")
    print(f"COPY into a bare table: {copy_rate:,.0f} rows/s (median of 3)")
    rates = {}
    for name, stage in _stages(run_id):
        seconds, cpu = _run_stage(database_url, stage, batches, args.connections)
        rate = rates[name] = args.events / seconds
        cpu_text = f"{cpu / args.events * 1e6:.1f} us" if cpu is not None else "not measured"
        print(
            f"{name:<13} {rate:>9,.0f} rows/s  PostgreSQL CPU/row {cpu_text:>8}  "
            f"ratio {rate / copy_rate:.3f}",
            flush=True,
        )
    print(f"floor ratio (CSP write, no HTTP): {rates['CSP write'] / copy_rate:.3f}")


def _batches(bodies: list[bytes], run_id: str, account_pks: list[int]) -> list[str]:
    """Each API body as the jsonb array the ingest statement reads: [account pk, event_id,
    user_id, name, timestamp, value, properties], sorted by (account, event_id) as CSP sends it."""
    import orjson

    prefix = f"b{run_id}-"
    batches = []
    for body in bodies:
        rows = sorted(
            (
                account_pks[int(event["account_id"].removeprefix(prefix))],
                event["event_id"],
                event["user_id"],
                event["event"],
                event["timestamp"],
                event["value"],
                event["properties"],
            )
            for event in orjson.loads(body)["events"]
        )
        batches.append(orjson.dumps(rows).decode())
    return batches


def _stages(run_id: str) -> list[tuple[str, str]]:
    from accounts.services import ingest_sql

    table = f"bench_floor_{run_id}"
    like = f"CREATE TABLE {table} (LIKE accounts_usageevent INCLUDING DEFAULTS INCLUDING IDENTITY)"
    unique = f"CREATE UNIQUE INDEX ON {table} (account_id, event_id)"
    newest = f"CREATE INDEX ON {table} (account_id, occurred_at DESC)"
    insert = f"INSERT INTO {table} ({_COLUMNS}) {_SELECT_INPUT}"
    conflict = " ON CONFLICT (account_id, event_id) DO NOTHING"
    # The event table's own shape: identity primary key, both indexes, the deferred account FK.
    real_like = f"CREATE TABLE {table} (LIKE accounts_usageevent INCLUDING ALL)"
    foreign_key = (
        f"ALTER TABLE {table} ADD FOREIGN KEY (account_id) REFERENCES accounts_account (id) "
        "DEFERRABLE INITIALLY DEFERRED"
    )
    csp_write = ingest_sql.write_statement()
    drop = f"DROP TABLE IF EXISTS {table}"
    return [
        ("insert", ([drop, like], insert, [drop])),
        ("idempotency", ([drop, like, unique], insert + conflict, [drop])),
        ("newest", ([drop, like, unique, newest], insert + conflict, [drop])),
        ("event table", ([drop, real_like, foreign_key], insert + conflict, [drop])),
        ("CSP write", ([], csp_write, [])),
    ]


def _run_stage(database_url: str, stage: tuple, batches: list[str], connections: int):
    """One stage's wall-clock seconds and PostgreSQL CPU seconds (None on a DATABASE_URL
    server)."""
    import psycopg2

    setup, statement, teardown = stage
    _execute_all(database_url, setup)
    received_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    queue = iter(batches)
    lock = threading.Lock()
    pool = [psycopg2.connect(database_url) for _ in range(connections)]
    # Every stage takes the CSP statement's parameters; only that one reads $3 and $4 (no
    # account's last_event_received_at is stale here).
    for conn in pool:
        with conn.cursor() as cursor:
            cursor.execute(
                "PREPARE floor_write (jsonb, timestamptz, timestamptz, bigint[]) AS " + statement
            )
        conn.commit()

    def writer(conn) -> None:
        with conn.cursor() as cursor:
            while True:
                with lock:
                    batch = next(queue, None)
                if batch is None:
                    return
                cursor.execute(
                    "EXECUTE floor_write (%s, %s, %s, '{}')", [batch, received_at, received_at]
                )
                conn.commit()

    cpu_before = _pg.server_cpu_seconds()
    elapsed = api_bench.run_threads([threading.Thread(target=writer, args=(c,)) for c in pool])
    cpu_after = _pg.server_cpu_seconds()
    for conn in pool:
        conn.close()
    _execute_all(database_url, teardown)
    cpu = cpu_after - cpu_before if cpu_before is not None else None
    return elapsed, cpu


def _execute_all(database_url: str, statements: list[str]) -> None:
    import psycopg2

    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
    conn.close()


if __name__ == "__main__":
    main()
