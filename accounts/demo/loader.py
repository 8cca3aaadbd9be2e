"""Loads a generated demo book through the same services the ingestion API calls, so the demo
exercises (and proves) the real write path: validation, idempotency, rollups and the revenue
facts derived from subscriptions."""

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Account, TimelineEntry
from accounts.services.ingest import events_ingest
from accounts.services.revenue import account_revenue_refresh
from accounts.services.upserts import (
    accounts_upsert,
    contacts_upsert,
    subscriptions_upsert,
    survey_responses_upsert,
)

from .generator import DemoBusiness, iter_event_frames

BATCH = 1000
DEMO_PREFIX = "demo-"


class DemoDataRejected(RuntimeError):
    """The generator produced an item the services refused: a bug in the generator."""


@dataclass
class LoadSummary:
    counts: dict[str, int] = field(default_factory=dict)


def demo_business_load(
    *, business: DemoBusiness, progress: Callable[[str], None] | None = None
) -> LoadSummary:
    """Push every record of `business` through the ingestion services, in API-sized batches."""
    say = progress or (lambda message: None)
    summary = LoadSummary()
    summary.counts["accounts"] = _upsert(accounts_upsert, _account_items(business.accounts))
    summary.counts["subscriptions"] = _upsert(
        subscriptions_upsert, _records(business.subscriptions)
    )
    say(f"{summary.counts['accounts']} accounts, {summary.counts['subscriptions']} subscriptions")
    last_seen: dict[str, pd.Timestamp] = {}
    summary.counts["events"] = _load_events(business, last_seen, say)
    contacts = business.contacts.drop(columns=["position"]).assign(
        last_seen_at=business.contacts["external_id"].map(last_seen)
    )
    summary.counts["contacts"] = _upsert(contacts_upsert, _records(contacts))
    summary.counts["survey responses"] = _upsert(
        survey_responses_upsert, _records(business.surveys)
    )
    summary.counts["notes"] = _notes_create(business.notes)
    # The services refresh with the real date; a demo pinned to --today is refreshed as of then.
    account_ids = Account.objects.filter(external_id__startswith=DEMO_PREFIX).values_list(
        "pk", flat=True
    )
    account_revenue_refresh(account_ids=list(account_ids), today=business.today)
    return summary


@transaction.atomic
def demo_business_delete() -> int:
    """Delete the demo accounts and everything hanging off them; returns how many accounts."""
    accounts = Account.objects.filter(external_id__startswith=DEMO_PREFIX)
    count = accounts.count()
    accounts.delete()
    return count


def _load_events(business: DemoBusiness, last_seen: dict, say: Callable[[str], None]) -> int:
    total = 0
    for frame in iter_event_frames(business):
        seen = frame.groupby("user_id", observed=True)["timestamp"].max()
        for user_id, moment in seen.items():
            last_seen[user_id] = max(moment, last_seen.get(user_id, moment))
        for batch in _event_batches(frame):
            result = events_ingest(events=batch)
            if result.rejected:
                raise DemoDataRejected(f"events: {result.rejected[:3]}")
            total += result.accepted
        say(f"{total} events")
    return total


def _event_batches(frame: pd.DataFrame) -> Iterable[list[dict]]:
    """API items from an event frame: aware datetimes, None for absent values, properties as
    objects (parsed once per distinct JSON text)."""
    properties = [json.loads(text) for text in frame["properties"].cat.categories]
    columns = zip(
        frame["event_id"].tolist(),
        frame["account_id"].astype(str).tolist(),
        frame["user_id"].astype(str).tolist(),
        frame["event"].astype(str).tolist(),
        frame["timestamp"].dt.to_pydatetime().tolist(),
        [None if math.isnan(v) else v for v in frame["value"].tolist()],
        [properties[code] for code in frame["properties"].cat.codes.tolist()],
        strict=True,
    )
    keys = ("event_id", "account_id", "user_id", "event", "timestamp", "value", "properties")
    batch: list[dict] = []
    for row in columns:
        batch.append(dict(zip(keys, row, strict=True)))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _upsert(service: Callable, items: list[dict]) -> int:
    created = 0
    for start in range(0, len(items), BATCH):
        result = service(items=items[start : start + BATCH])
        if result.rejected:
            raise DemoDataRejected(f"{service.__name__}: {result.rejected[:3]}")
        created += result.created
    return created


def _account_items(accounts: pd.DataFrame) -> list[dict]:
    items = _records(accounts)
    for item in items:
        item["owner"] = item["owner"] or None  # tech-touch accounts have no CSM
    return items


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-style API items: ISO dates and date-times, money as text, None for gaps."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            if column.dt.tz is None:
                text = column.dt.strftime("%Y-%m-%d")
            else:
                text = column.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            out[name] = text.astype(object).where(column.notna(), None)
        elif name == "mrr":
            out[name] = [f"{value:.2f}" for value in column.tolist()]
    items = out.astype(object).where(out.notna(), None).to_dict("records")
    return [{k: (int(v) if isinstance(v, np.integer) else v) for k, v in i.items()} for i in items]


def _notes_create(notes: pd.DataFrame) -> int:
    """CSM notes have no ingestion endpoint; they are written as the timeline stores them."""
    authors = dict(
        get_user_model()
        .objects.filter(username__in=set(notes["author"]))
        .values_list("username", "pk")
    )
    accounts = dict(
        Account.objects.filter(external_id__in=set(notes["account_id"])).values_list(
            "external_id", "pk"
        )
    )
    entries = [
        TimelineEntry(
            account_id=accounts[row.account_id],
            author_id=authors.get(row.author),
            kind=row.kind,
            title=row.title,
            body=row.body,
            occurred_at=row.occurred_at.to_pydatetime(),
        )
        for row in notes.itertuples(index=False)
    ]
    TimelineEntry.objects.bulk_create(entries, batch_size=BATCH)
    return len(entries)
