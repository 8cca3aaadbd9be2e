"""Data for bench/scoring.py: the demo business generated block by block and loaded with COPY
(events, DailyUsage and DailyUser built with pandas per block, the big tables' indexes dropped
during the load and rebuilt after it), plus the account facts ingestion would have set."""

import datetime as dt
import io
import queue
import threading
import time

import numpy as np
import pandas as pd

BIG_TABLES = ["accounts_usageevent", "accounts_dailyusage", "accounts_dailyuser"]


def load_business(args, today: dt.date, database_url: str) -> dict:
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


def sizes() -> dict:
    from django.db import connection

    counts = {"accounts": "accounts_account", "events": "accounts_usageevent"}
    counts |= {"daily_usage": "accounts_dailyusage", "daily_user": "accounts_dailyuser"}
    with connection.cursor() as cursor:
        for key, table in counts.items():
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[key] = cursor.fetchone()[0]
    return {**counts, "seconds": 0.0}
