"""Usage-event ingestion: the hot path behind POST /api/v1/events and the demo generator.

A batch is validated in one tight loop over plain dicts (no serializer objects, no model
instances), the accounts are resolved with one query, and the valid events are written in bulk
together with their rollups (see accounts.services.ingest_sql).

Rollups (DailyUsage, DailyUser) are updated in the same transaction as the event insert, from
exactly the events that insert added. A resent event is not inserted, so it adds nothing to a
rollup; a batch that fails rolls back its events and its rollup changes together. The rollups
therefore always equal a recount from the raw events, without a periodic rebuild, and never
count an event twice, also when the same batch is sent concurrently.

Timestamps are ISO 8601 strings (or datetime objects from Python callers). A timestamp without
an offset is taken as UTC. Usage days are UTC days.
"""

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.utils import timezone

from accounts.services import ingest_sql

MAX_PROPERTIES_BYTES = 32 * 1024
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE = dt.timedelta(hours=1)
_TIMESTAMP_MAX_CHARS = 64
# "\u0000" in serialised JSON that is not itself an escaped backslash: PostgreSQL's jsonb
# refuses it, so it is rejected on every database to keep the contract the same.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

REQUIRED = "This field is required."


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    account_ids: set[int] = field(default_factory=set)


def events_ingest(*, events: list[dict], received_at: dt.datetime | None = None) -> IngestResult:
    """Store the valid events of a batch once each and update their rollups; report the rest.

    Each item is a raw API item: event_id, account_id (the account's external_id), user_id,
    event, timestamp, value, properties. Valid items are stored even when others are rejected.
    An event_id already stored for the account, or repeated within the batch, is a duplicate.
    """
    now = received_at or timezone.now()
    result = IngestResult()
    accounts, stale_accounts = ingest_sql.accounts_lookup(
        external_ids=_external_ids(events), received_at=now
    )
    rows: dict[tuple[int, str], ingest_sql.EventRow] = {}
    latest = now + MAX_FUTURE
    for index, item in enumerate(events):
        row, errors = _event_row(item, accounts, latest)
        if errors:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            if not isinstance(event_id, str | int | float | None):
                event_id = None  # echo only scalars back, never a client's object
            result.rejected.append({"index": index, "event_id": event_id, "errors": errors})
        elif (row[0], row[1]) in rows:
            result.duplicates += 1
        else:
            rows[(row[0], row[1])] = row
    # Sorted by key so concurrent batches lock rows in the same order (no deadlock cycles).
    ordered = [rows[key] for key in sorted(rows)]
    new_per_account = ingest_sql.events_write(
        rows=ordered, received_at=now, stale_accounts=stale_accounts
    )
    result.accepted = sum(new_per_account.values())
    result.duplicates += len(ordered) - result.accepted
    result.account_ids = set(new_per_account)
    return result


def _external_ids(events: list[Any]) -> set[str]:
    # Only ids that can name an account: PostgreSQL refuses a NUL even in a lookup, and the
    # items carrying such ids are rejected by _event_row anyway.
    return {
        item["account_id"]
        for item in events
        if isinstance(item, dict)
        and _text_error(item.get("account_id"), 255, required=True) is None
    }


def _event_row(
    item: Any, accounts: dict[str, int], latest: dt.datetime
) -> tuple[ingest_sql.EventRow | None, dict[str, list[str]]]:
    """One item's stored row, or its errors by field. Written as straight-line checks because it
    runs a million times per benchmark."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Must be an object."]}
    errors: dict[str, list[str]] = {}

    event_id = item.get("event_id")
    if (reason := _text_error(event_id, 255, required=True)) is not None:
        errors["event_id"] = [reason]

    external_id = item.get("account_id")
    account_pk = None
    if (reason := _text_error(external_id, 255, required=True)) is not None:
        errors["account_id"] = [reason]
    elif (account_pk := accounts.get(external_id)) is None:
        errors["account_id"] = ["Unknown account."]

    name = item.get("event")
    if (reason := _text_error(name, 100, required=True)) is not None:
        errors["event"] = [reason]

    user_id = item.get("user_id")
    if user_id is None:
        user_id = ""
    elif (reason := _text_error(user_id, 255, required=False)) is not None:
        errors["user_id"] = [reason]

    occurred_at, reason = _parse_timestamp(item.get("timestamp"), latest)
    if reason is not None:
        errors["timestamp"] = [reason]

    value, reason = _parse_value(item.get("value"))
    if reason is not None:
        errors["value"] = [reason]

    properties, reason = _serialise_properties(item.get("properties"))
    if reason is not None:
        errors["properties"] = [reason]

    if errors:
        return None, errors
    return (account_pk, event_id, user_id, name, occurred_at, value, properties), errors


def _text_error(value: Any, max_length: int, *, required: bool) -> str | None:
    # The common case first, in one expression: this runs four times per event.
    if (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isascii()
        and "\x00" not in value
        and not value.isspace()
    ):
        return None
    if value is None:
        return REQUIRED if required else None
    if not isinstance(value, str):
        return "Must be a string."
    if not value.strip():
        if required:
            return "Must not be blank."
        if value:  # "" means none; spaces alone would count as a product user
            return "Must not be only whitespace."
    if len(value) > max_length:
        return f"Must be at most {max_length} characters."
    if "\x00" in value:
        return "Must not contain NUL characters."
    try:
        value.encode()
    except UnicodeEncodeError:  # lone surrogates, only possible from Python callers
        return "Must be valid Unicode text."
    return None


def _parse_timestamp(value: Any, latest: dt.datetime) -> tuple[dt.datetime | None, str | None]:
    if value is None:
        return None, REQUIRED
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= _TIMESTAMP_MAX_CHARS:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None, "Must be an ISO 8601 date-time, e.g. 2025-06-01T12:00:00Z."
    else:
        return None, "Must be an ISO 8601 date-time string, e.g. 2025-06-01T12:00:00Z."
    try:
        moment = (
            moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
        )
    except OverflowError:
        return None, "Is out of range."
    if moment < EARLIEST:
        return None, "Must not be before 2000-01-01."
    if moment > latest:
        return None, "Must not be more than 1 hour in the future."
    return moment, None


def _parse_value(value: Any) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "Must be a number."
    try:
        number = float(value)
    except OverflowError:
        return None, "Must be a finite number."
    if not math.isfinite(number):
        return None, "Must be a finite number."
    return number, None


def _serialise_properties(value: Any) -> tuple[bytes | None, str | None]:
    if value is None:
        return b"{}", None
    if not isinstance(value, dict):
        return None, "Must be an object."
    try:
        data = orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: too deep, surrogates, non-JSON types
        return None, f"Must be plain JSON: {exc}."
    if len(data) > MAX_PROPERTIES_BYTES:
        return None, f"Must be at most {MAX_PROPERTIES_BYTES // 1024} KB when serialised."
    if b"\\u0000" in data and _JSON_NUL.search(data):
        return None, "Must not contain NUL characters."
    return data, None
