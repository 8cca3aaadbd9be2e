"""DailyUsage and DailyUser are kept by events_ingest in the same transaction as the events, so
they always equal a recount from the raw events."""

import datetime as dt
import random

import pytest
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from accounts.models import DailyUsage, DailyUser, UsageEvent
from accounts.services.ingest import events_ingest
from tests.factories import AccountFactory

RECEIVED = dt.datetime(2025, 6, 5, 12, 0, tzinfo=dt.UTC)


def recount() -> dict[tuple, tuple]:
    rows = (
        UsageEvent.objects.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("account_id", "day", "name")
        .annotate(
            n=Count("id"),
            total=Sum("value", default=0.0),
            users=Count("user_id", distinct=True, filter=~Q(user_id="")),
        )
    )
    return {(r["account_id"], r["day"], r["name"]): (r["n"], r["total"], r["users"]) for r in rows}


def rollups() -> dict[tuple, tuple]:
    return {
        (r.account_id, r.day, r.event_name): (r.event_count, r.value_sum, r.active_users)
        for r in DailyUsage.objects.all()
    }


def assert_rollups_match_recount():
    expected, actual = recount(), rollups()
    assert actual.keys() == expected.keys()
    for key, (count, total, users) in expected.items():
        assert actual[key][0] == count, key
        assert actual[key][1] == pytest.approx(total), key
        assert actual[key][2] == users, key
    recounted_users = set(
        UsageEvent.objects.exclude(user_id="")
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values_list("account_id", "day", "name", "user_id")
        .distinct()
    )
    assert set(DailyUser.objects.values_list("account_id", "day", "event_name", "user_id")) == (
        recounted_users
    )


def make_event(rng: random.Random, externals: list[str]) -> dict:
    moment = dt.datetime(2025, 6, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=rng.randrange(3 * 1440))
    return {
        "event_id": f"e-{rng.randrange(400)}",
        "account_id": rng.choice(externals),
        "user_id": rng.choice(["u-1", "u-2", "u-3", "", None]),
        "event": rng.choice(["login", "report_created", "export"]),
        "timestamp": rng.choice([moment.isoformat(), moment]),
        "value": rng.choice([None, 1, 2.5, -0.5]),
        "properties": {"n": rng.randrange(9)},
    }


@pytest.mark.django_db
def test_rollups_equal_a_recount_after_overlapping_batches_with_duplicates():
    externals = [AccountFactory(external_id=f"acc-{i}").external_id for i in range(3)]
    rng = random.Random(7)
    totals = {"accepted": 0, "duplicates": 0}
    for _ in range(8):
        result = events_ingest(
            events=[make_event(rng, externals) for _ in range(150)], received_at=RECEIVED
        )
        assert result.rejected == []
        totals["accepted"] += result.accepted
        totals["duplicates"] += result.duplicates

    assert totals["accepted"] == UsageEvent.objects.count()
    assert totals["accepted"] + totals["duplicates"] == 8 * 150
    assert totals["duplicates"] > 0
    assert_rollups_match_recount()


@pytest.mark.django_db
def test_resending_a_batch_changes_no_rollup():
    AccountFactory(external_id="acme")
    batch = [
        {
            "event_id": f"e-{i}",
            "account_id": "acme",
            "user_id": f"u-{i % 2}",
            "event": "login",
            "timestamp": "2025-06-01T10:00:00Z",
            "value": 2,
        }
        for i in range(5)
    ]
    events_ingest(events=batch, received_at=RECEIVED)
    before = rollups()

    again = events_ingest(events=batch, received_at=RECEIVED)

    assert (again.accepted, again.duplicates) == (0, 5)
    assert rollups() == before
    assert list(before.values()) == [(5, 10.0, 2)]


@pytest.mark.django_db
def test_usage_day_is_the_utc_day_of_the_timestamp():
    account = AccountFactory(external_id="acme")
    events_ingest(
        events=[
            {
                "event_id": "late",
                "account_id": "acme",
                "event": "login",
                "user_id": "u",
                "timestamp": "2025-06-01T23:30:00-02:00",
            },
            {
                "event_id": "early",
                "account_id": "acme",
                "event": "login",
                "user_id": "u",
                "timestamp": "2025-06-02T00:30:00+02:00",
            },
        ],
        received_at=RECEIVED,
    )

    days = dict(DailyUsage.objects.filter(account=account).values_list("day", "event_count"))
    assert days == {dt.date(2025, 6, 2): 1, dt.date(2025, 6, 1): 1}


@pytest.mark.django_db
def test_same_user_on_later_batches_counts_once_per_day_and_event():
    AccountFactory(external_id="acme")
    for n in range(3):
        events_ingest(
            events=[
                {
                    "event_id": f"e-{n}",
                    "account_id": "acme",
                    "user_id": "u-1",
                    "event": "login",
                    "timestamp": f"2025-06-01T0{n}:00:00Z",
                }
            ],
            received_at=RECEIVED,
        )

    usage = DailyUsage.objects.get()
    assert (usage.event_count, usage.active_users, usage.value_sum) == (3, 1, 0)


@pytest.mark.django_db
def test_service_accepts_datetimes_and_reports_accounts_with_new_events():
    acme = AccountFactory(external_id="acme")
    AccountFactory(external_id="idle")
    result = events_ingest(
        events=[
            {
                "event_id": "a",
                "account_id": "acme",
                "event": "login",
                "timestamp": dt.datetime(2025, 6, 1, 8, 0),
            },  # naive: taken as UTC
            {"event_id": "b", "account_id": "idle", "event": "login", "timestamp": "junk"},
        ],
        received_at=RECEIVED,
    )

    assert (result.accepted, result.duplicates, result.account_ids) == (1, 0, {acme.pk})
    assert result.rejected[0]["index"] == 1
    stored = UsageEvent.objects.get()
    assert stored.occurred_at == dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
    assert stored.received_at == RECEIVED


@pytest.mark.django_db
def test_future_limit_is_measured_from_received_at():
    AccountFactory(external_id="acme")
    result = events_ingest(
        events=[
            {
                "event_id": "a",
                "account_id": "acme",
                "event": "login",
                "timestamp": (RECEIVED + dt.timedelta(minutes=61)).isoformat(),
            }
        ],
        received_at=RECEIVED,
    )

    assert result.rejected[0]["errors"] == {
        "timestamp": ["Must not be more than 1 hour in the future."]
    }
