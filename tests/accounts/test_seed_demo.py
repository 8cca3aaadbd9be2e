"""`manage.py seed_demo` end to end, on a small book: users, records, derived revenue facts,
events and their rollups, rerun and reset."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Q, Sum

from accounts.demo.loader import DemoDataRejected, _upsert
from accounts.models import (
    Account,
    Contact,
    DailyUsage,
    DailyUser,
    Subscription,
    SurveyResponse,
    TimelineEntry,
    UsageEvent,
)
from accounts.services.upserts import accounts_upsert

TODAY = "2025-06-01"
SMALL = ["--accounts", "40", "--days", "60", "--today", TODAY]

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_creates_the_demo_logins():
    seed(*SMALL)
    users = {u.username: u for u in get_user_model().objects.all()}
    assert {"csm", "manager", "admin", "csm.alex", "csm.priya"} <= set(users)
    assert all(users[name].check_password("csp-demo") for name in ("csm", "manager", "admin"))
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert users["manager"].groups.filter(name="Manager").exists()
    assert users["csm"].groups.filter(name="CSM").exists()
    assert not users["csm"].is_staff
    book = Account.objects.visible_to(users["csm"])
    assert 0 < book.count() < Account.objects.visible_to(users["manager"]).count() == 40


def test_seed_demo_loads_a_small_business_with_derived_revenue_facts():
    output = seed(*SMALL)
    assert "Created 40 accounts" in output
    assert Account.objects.count() == 40
    assert Contact.objects.filter(role="champion").count() == 40
    assert SurveyResponse.objects.exists()
    today = dt.date.fromisoformat(TODAY)
    for account in Account.objects.prefetch_related("subscriptions"):
        paying = [s for s in account.subscriptions.all() if s.status != "trialing"]
        live = [s for s in paying if s.end_date is None or s.end_date > today]
        assert account.mrr == sum((s.mrr for s in live), Decimal("0"))
        if not paying:
            assert account.status == "prospect"
        elif live:
            assert account.status == "active" and account.churned_on is None
        else:
            assert account.status == "churned" and account.lifecycle_stage == "churned"
            assert account.churned_on == max(s.end_date for s in paying)
    assert Account.objects.filter(segment="smb", owner__isnull=True).exists()
    assert not Account.objects.exclude(segment="smb").filter(owner__isnull=True).exists()
    assert Subscription.objects.filter(end_date__isnull=True).exists()


def test_seed_demo_events_are_rolled_up_exactly():
    seed(*SMALL)
    events = UsageEvent.objects.count()
    assert events > 1000
    assert DailyUsage.objects.aggregate(total=Sum("event_count"))["total"] == events
    assert DailyUsage.objects.aggregate(total=Sum("active_users"))["total"] == (
        DailyUser.objects.count()
    )
    last = UsageEvent.objects.order_by("-occurred_at").first().occurred_at
    assert last < dt.datetime.fromisoformat(TODAY).replace(tzinfo=dt.UTC)
    seen = Contact.objects.filter(last_seen_at__isnull=False)
    assert seen.exists()
    # A contact's last_seen_at is the last event of the product user with their external_id.
    contact = seen.first()
    newest = UsageEvent.objects.filter(user_id=contact.external_id).order_by("-occurred_at")
    assert newest.first().occurred_at == contact.last_seen_at


def test_rerunning_seed_demo_changes_nothing():
    seed(*SMALL)
    before = (Account.objects.count(), UsageEvent.objects.count(), TimelineEntry.objects.count())
    output = seed(*SMALL)
    assert "already exist" in output
    after = (Account.objects.count(), UsageEvent.objects.count(), TimelineEntry.objects.count())
    assert after == before


def test_reset_deletes_the_demo_and_loads_the_same_business_again():
    seed(*SMALL)
    events = set(UsageEvent.objects.values_list("event_id", flat=True))
    mrr = Account.objects.aggregate(total=Sum("mrr"))["total"]
    output = seed(*SMALL, "--reset")
    assert "Deleted 40 demo accounts" in output
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == events
    assert Account.objects.aggregate(total=Sum("mrr"))["total"] == mrr
    assert not Account.objects.annotate(n=Count("subscriptions")).filter(Q(n=0)).exists()


def test_reset_with_another_size_replaces_the_demo():
    seed(*SMALL)
    seed("--accounts", "15", "--days", "30", "--today", TODAY, "--reset")
    assert Account.objects.count() == 15


def test_a_rejected_demo_item_stops_the_load_loudly():
    with pytest.raises(DemoDataRejected, match="segment|name"):
        _upsert(accounts_upsert, [{"external_id": "demo-x", "name": "", "segment": 5}])


def test_seed_demo_refuses_a_future_today():
    with pytest.raises(CommandError, match="--today"):
        seed("--accounts", "5", "--today", "2999-01-01")
    assert not Account.objects.exists()


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.CSP_DEMO_ALLOWED = False
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo", "--accounts", "5", "--days", "5")
