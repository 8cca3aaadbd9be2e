"""The bulk writes behind events_ingest: new events, their DailyUser rows and DailyUsage rollups,
and the account's last_event_received_at, all in one transaction.

PostgreSQL: one prepared statement (one round trip) of data-modifying CTEs over the batch passed
as a single jsonb array; the unique indexes decide which events and daily users are new, so
concurrent batches carrying the same events store and count each exactly once (the second waits
for the first and skips). Where its time goes is measured in bench/README.md (Ingestion).
SQLite: transactions are IMMEDIATE, so writers are serialised; the new events are known by a
lookup before inserting, then executemany and SQL upserts do the rest.
"""

import datetime as dt
import time
import weakref
from collections import Counter, defaultdict

import orjson
from django.db import OperationalError, connection, transaction
from django.db.models import Q

from accounts.models import Account, DailyUsage, DailyUser, UsageEvent

# (account pk, event_id, user_id, name, occurred_at in UTC, value, properties as JSON bytes)
EventRow = tuple[int, str, str, str, dt.datetime, float | None, bytes]

THROTTLE_LAST_RECEIVED = dt.timedelta(minutes=1)
_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_ATTEMPTS = 4


def accounts_lookup(
    *, external_ids: set[str], received_at: dt.datetime
) -> tuple[dict[str, int], set[int]]:
    """The pks of these accounts by external_id, and which of them have a stale
    last_event_received_at (the only ones events_write needs to consider updating)."""
    if not external_ids:
        return {}, set()
    stale_before = received_at - THROTTLE_LAST_RECEIVED
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _prepare(cursor)
            # One jsonb parameter: psycopg2 adapts a 1,000-string list element by element
            # (~0.6 ms of Python per batch), a JSON text in one piece.
            ids = orjson.dumps(list(external_ids)).decode()
            cursor.execute(f"EXECUTE {_PG_LOOKUP} (%s, %s)", [ids, stale_before])
            found = cursor.fetchall()
    else:
        found = [
            (external_id, pk, last is None or last < stale_before)
            for external_id, pk, last in Account.objects.filter(
                external_id__in=external_ids
            ).values_list("external_id", "pk", "last_event_received_at")
        ]
    return {row[0]: row[1] for row in found}, {row[1] for row in found if row[2]}


def events_write(
    *, rows: list[EventRow], received_at: dt.datetime, stale_accounts: set[int] | None = None
) -> dict[int, int]:
    """Insert the rows not stored yet and update rollups; returns new events per account pk.

    Rows must be unique by (account, event_id) and sorted by it, so that concurrent batches
    take their row locks in the same order. `stale_accounts` (from accounts_lookup) narrows the
    last_event_received_at update to accounts that may need it; None means all of the batch's.
    The condition itself is re-checked inside the transaction either way.
    """
    if not rows:
        return {}
    if stale_accounts is None:
        stale_accounts = {row[0] for row in rows}
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    return _write_postgresql(rows, received_at, stale_accounts)
                return _write_sqlite(rows, received_at, stale_accounts)
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


# The batch travels as ONE jsonb parameter (an array of 7-element arrays, serialised by orjson):
# psycopg2's adaptation of seven 1,000-element lists and PostgreSQL's parsing of the array
# literals cost ~13 ms a batch, the jsonb document ~2 ms. jsonb_array_elements keeps array order,
# and the rows arrive sorted by key, so the event insert locks in key order; the rollup inserts
# sort explicitly. The statement is PREPAREd once per connection: planning it costs ~6 ms.
_PG_NAME = "csp_events_write"
_PG_WRITE = """
WITH input AS (
    SELECT (r->>0)::bigint AS account_id, r->>1 AS event_id, r->>2 AS user_id, r->>3 AS name,
           (r->>4)::timestamptz AS occurred_at, (r->>5)::float8 AS value, r->6 AS properties
    FROM jsonb_array_elements($1) AS r
),
new_event AS (
    INSERT INTO {event} (account_id, event_id, user_id, name, occurred_at, value, properties,
                         received_at)
    SELECT account_id, event_id, user_id, name, occurred_at, value, properties, $2
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
new_per_account AS (
    SELECT account_id, count(*) AS n FROM new_event GROUP BY account_id
),
touched AS (
    -- $4: the batch's accounts whose value was stale at lookup, usually none or few. Primary-key
    -- lookups in ascending id order (= ANY(array) is an index condition), never a table scan.
    UPDATE {account} SET last_event_received_at = $2
    WHERE id = ANY($4)
      AND id IN (SELECT account_id FROM new_per_account)
      AND (last_event_received_at IS NULL OR last_event_received_at < $3)
    RETURNING 1
)
SELECT account_id, n FROM new_per_account
"""
_PG_STATEMENT = "PREPARE {name} (jsonb, timestamptz, timestamptz, bigint[]) AS" + _PG_WRITE


def write_statement() -> str:
    """The PostgreSQL write statement with this project's table names: parameters $1 the batch
    (jsonb), $2 received_at, $3 the staleness limit, $4 the stale account pks. For benchmarks."""
    return _PG_WRITE.format(**_tables())


_PG_LOOKUP = "csp_events_accounts"
_PG_LOOKUP_STATEMENT = """
PREPARE {name} (jsonb, timestamptz) AS
SELECT external_id, id, (last_event_received_at IS NULL OR last_event_received_at < $2)
FROM {account} WHERE external_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1)))
"""
# Raw psycopg2 connections on which the statements are prepared. PREPARE is not transactional
# (it survives a rollback) and lives as long as the session, so one mark per connection
# suffices. (A transaction-pooling PgBouncer in front would need its prepared-statement support.)
_prepared: "weakref.WeakKeyDictionary[object, bool]" = weakref.WeakKeyDictionary()


def _prepare(cursor) -> None:
    raw = connection.connection
    if raw not in _prepared:
        tables = _tables()
        cursor.execute(_PG_LOOKUP_STATEMENT.format(name=_PG_LOOKUP, **tables))
        cursor.execute(_PG_STATEMENT.format(name=_PG_NAME, **tables))
        _prepared[raw] = True


def _write_postgresql(
    rows: list[EventRow], received_at: dt.datetime, stale_accounts: set[int]
) -> dict[int, int]:
    # orjson writes the datetimes as RFC 3339 (with offset) and embeds the already serialised
    # properties as they are (Fragment), so nothing is serialised twice.
    batch = orjson.dumps(
        [(a, e, u, n, t, v, orjson.Fragment(p)) for a, e, u, n, t, v, p in rows],
        default=_isoformat,
    ).decode()
    with connection.cursor() as cursor:
        _prepare(cursor)
        cursor.execute(
            f"EXECUTE {_PG_NAME} (%s, %s, %s, %s::bigint[])",
            [batch, received_at, received_at - THROTTLE_LAST_RECEIVED, sorted(stale_accounts)],
        )
        return dict(cursor.fetchall())


def _isoformat(value: object) -> str:
    """Datetime subclasses orjson does not serialise itself (e.g. a pandas Timestamp from a
    Python caller)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_sqlite(
    rows: list[EventRow], received_at: dt.datetime, stale_accounts: set[int]
) -> dict[int, int]:
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
                (a, e, u, n, ops.adapt_datetimefield_value(t), v, p.decode(), now)
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
        pk__in=[pk for pk in per_account if pk in stale_accounts],
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
