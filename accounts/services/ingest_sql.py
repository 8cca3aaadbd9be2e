"""The bulk writes behind events_ingest: new events, their DailyUser rows and DailyUsage rollups,
and the account's last_event_received_at, all in one transaction.

PostgreSQL: one statement (one round trip) of data-modifying CTEs over unnest() arrays; the
unique indexes decide which events and daily users are new, so concurrent batches carrying the
same events store and count each exactly once (the second waits for the first and skips).
SQLite: transactions are IMMEDIATE, so writers are serialised; the new events are known by a
lookup before inserting, then executemany and SQL upserts do the rest.
"""

import datetime as dt
import time
from collections import Counter, defaultdict

from django.db import OperationalError, connection, transaction
from django.db.models import Q

from accounts.models import Account, DailyUsage, DailyUser, UsageEvent

# (account pk, event_id, user_id, name, occurred_at in UTC, value, properties as JSON text)
EventRow = tuple[int, str, str, str, dt.datetime, float | None, str]

THROTTLE_LAST_RECEIVED = dt.timedelta(minutes=1)
_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_ATTEMPTS = 4


def events_write(*, rows: list[EventRow], received_at: dt.datetime) -> dict[int, int]:
    """Insert the rows not stored yet and update rollups; returns new events per account pk.

    Rows must be unique by (account, event_id) and sorted by it, so that concurrent batches
    take their row locks in the same order.
    """
    if not rows:
        return {}
    write = _write_postgresql if connection.vendor == "postgresql" else _write_sqlite
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return write(rows, received_at)
        except OperationalError as exc:
            code = getattr(exc.__cause__, "pgcode", None)
            if code not in _RETRY_SQLSTATES or attempt == _ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "event": quote(UsageEvent._meta.db_table),
        "daily_usage": quote(DailyUsage._meta.db_table),
        "daily_user": quote(DailyUser._meta.db_table),
        "account": quote(Account._meta.db_table),
    }


# unnest() keeps array order, and the rows arrive sorted by key, so the inserts lock in key
# order; the rollup inserts sort explicitly.
_PG_STATEMENT = """
WITH input AS (
    SELECT * FROM unnest(
        %(account)s::bigint[], %(event_id)s::text[], %(user_id)s::text[], %(name)s::text[],
        %(occurred_at)s::timestamptz[], %(value)s::float8[], %(properties)s::jsonb[]
    ) AS t(account_id, event_id, user_id, name, occurred_at, value, properties)
),
new_event AS (
    INSERT INTO {event} (account_id, event_id, user_id, name, occurred_at, value, properties,
                         received_at)
    SELECT account_id, event_id, user_id, name, occurred_at, value, properties, %(now)s
    FROM input
    ON CONFLICT (account_id, event_id) DO NOTHING
    RETURNING account_id, user_id, name, (occurred_at AT TIME ZONE 'UTC')::date AS day, value
),
new_user AS (
    INSERT INTO {daily_user} (account_id, day, event_name, user_id)
    SELECT DISTINCT account_id, day, name, user_id FROM new_event WHERE user_id <> ''
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (account_id, day, event_name, user_id) DO NOTHING
    RETURNING account_id, day, event_name
),
user_count AS (
    SELECT account_id, day, event_name, count(*) AS n FROM new_user GROUP BY 1, 2, 3
),
event_count AS (
    SELECT account_id, day, name AS event_name, count(*) AS n, coalesce(sum(value), 0) AS s
    FROM new_event GROUP BY 1, 2, 3
),
rollup AS (
    INSERT INTO {daily_usage} AS d
        (account_id, day, event_name, event_count, value_sum, active_users)
    SELECT e.account_id, e.day, e.event_name, e.n, e.s, coalesce(u.n, 0)
    FROM event_count e LEFT JOIN user_count u USING (account_id, day, event_name)
    ORDER BY 1, 2, 3
    ON CONFLICT (account_id, day, event_name) DO UPDATE SET
        event_count = d.event_count + EXCLUDED.event_count,
        value_sum = d.value_sum + EXCLUDED.value_sum,
        active_users = d.active_users + EXCLUDED.active_users
    RETURNING 1
),
touched AS (
    UPDATE {account} SET last_event_received_at = %(now)s
    WHERE id IN (SELECT account_id FROM new_event)
      AND (last_event_received_at IS NULL OR last_event_received_at < %(stale)s)
    RETURNING 1
)
SELECT account_id, count(*) FROM new_event GROUP BY account_id
"""


def _write_postgresql(rows: list[EventRow], received_at: dt.datetime) -> dict[int, int]:
    account, event_id, user_id, name, occurred_at, value, properties = zip(*rows, strict=True)
    params = {
        "account": list(account),
        "event_id": list(event_id),
        "user_id": list(user_id),
        "name": list(name),
        "occurred_at": [moment.isoformat() for moment in occurred_at],
        "value": list(value),
        "properties": list(properties),
        "now": received_at,
        "stale": received_at - THROTTLE_LAST_RECEIVED,
    }
    with connection.cursor() as cursor:
        cursor.execute(_PG_STATEMENT.format(**_tables()), params)
        return dict(cursor.fetchall())


def _write_sqlite(rows: list[EventRow], received_at: dt.datetime) -> dict[int, int]:
    """Relies on the transaction holding SQLite's write lock from its start (IMMEDIATE), so that
    the rows found missing here are still missing when inserted."""
    tables = _tables()
    ops = connection.ops
    with connection.cursor() as cursor:
        stored = _existing_keys(
            cursor, tables["event"], ("account_id", "event_id"), [row[:2] for row in rows]
        )
        new = [row for row in rows if row[:2] not in stored]
        if not new:
            return {}
        now = ops.adapt_datetimefield_value(received_at)
        cursor.executemany(
            f"INSERT INTO {tables['event']} (account_id, event_id, user_id, name, occurred_at,"
            " value, properties, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (a, e, u, n, ops.adapt_datetimefield_value(t), v, p, now)
                for a, e, u, n, t, v, p in new
            ],
        )
        users = sorted(
            {(row[0], row[4].date().isoformat(), row[3], row[2]) for row in new if row[2]}
        )
        known = _existing_keys(
            cursor, tables["daily_user"], ("account_id", "day", "event_name", "user_id"), users
        )
        new_users = [key for key in users if key not in known]
        cursor.executemany(
            f"INSERT INTO {tables['daily_user']} (account_id, day, event_name, user_id)"
            " VALUES (%s, %s, %s, %s)",
            new_users,
        )
        cursor.executemany(
            f"INSERT INTO {tables['daily_usage']} (account_id, day, event_name, event_count,"
            " value_sum, active_users) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (account_id, day, event_name) DO UPDATE SET"
            " event_count = event_count + excluded.event_count,"
            " value_sum = value_sum + excluded.value_sum,"
            " active_users = active_users + excluded.active_users",
            _rollup_rows(new, new_users),
        )
    per_account = Counter(row[0] for row in new)
    Account.objects.filter(
        Q(last_event_received_at__isnull=True)
        | Q(last_event_received_at__lt=received_at - THROTTLE_LAST_RECEIVED),
        pk__in=list(per_account),
    ).update(last_event_received_at=received_at)
    return dict(per_account)


def _rollup_rows(new: list[EventRow], new_users: list[tuple]) -> list[tuple]:
    counts: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0])
    for account, _, _, name, occurred_at, value, _ in new:
        totals = counts[(account, occurred_at.date().isoformat(), name)]
        totals[0] += 1
        totals[1] += value or 0.0
    for account, day, name, _ in new_users:
        counts[(account, day, name)][2] += 1
    return [(*key, *totals) for key, totals in sorted(counts.items())]


def _existing_keys(cursor, table: str, columns: tuple[str, ...], keys: list[tuple]) -> set:
    """Which of these keys are stored: a join against VALUES, which SQLite answers from the
    unique index (a row-value IN would scan the table)."""
    found: set = set()
    width = len(columns)
    chunk = 900 // width  # stays under the oldest SQLite variable limit (999)
    select = ", ".join(f"t.{column}" for column in columns)
    join = " AND ".join(f"t.{column} = v.column{i + 1}" for i, column in enumerate(columns))
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(part))
        cursor.execute(
            f"SELECT {select} FROM (VALUES {values}) AS v JOIN {table} AS t ON {join}",
            [value for key in part for value in key],
        )
        # Django's SQLite connection hands dates back as date objects; the keys hold ISO text.
        found.update(
            tuple(v.isoformat() if isinstance(v, dt.date) else v for v in row)
            for row in cursor.fetchall()
        )
    return found
