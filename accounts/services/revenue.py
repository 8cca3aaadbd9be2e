"""The account's revenue facts (status, MRR, customer since, churn date and reason) are derived
from its subscriptions here whenever subscriptions change; nobody types them."""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from accounts.models import Account, Subscription
from accounts.models.customers import AccountStatus, LifecycleStage
from accounts.models.subscriptions import SubscriptionStatus

# How far back the daily refresh looks for start and end dates: a few missed runs (beat down
# over a weekend) are caught up, and refreshing an account twice is harmless.
DUE_LOOKBACK_DAYS = 7
BATCH = 5000


def account_revenue_refresh(*, account_ids: Iterable[int], today: dt.date | None = None) -> int:
    """Recompute the derived revenue facts of these accounts; returns how many were updated."""
    today = today or timezone.now().date()
    ids = list(account_ids)
    if not ids:
        return 0
    # A trial is not revenue: trialing rows neither add MRR nor make a customer, and a trial that
    # ends unconverted is not churn.
    paying = ~Q(subscriptions__status=SubscriptionStatus.TRIALING)
    started = paying & Q(subscriptions__start_date__lte=today)
    not_ended = Q(subscriptions__end_date__isnull=True) | Q(subscriptions__end_date__gt=today)
    live = started & not_ended
    accounts = list(
        Account.objects.filter(pk__in=ids).annotate(
            live_mrr=Sum("subscriptions__mrr", filter=live),
            live_count=Count("subscriptions", filter=live),
            started_count=Count("subscriptions", filter=started),
            first_start=Min("subscriptions__start_date", filter=started),
            last_end=Max("subscriptions__end_date", filter=started & ~not_ended),
        )
    )
    reasons = _last_churn_reasons(ids, today)
    for account in accounts:
        _apply_facts(account, reasons.get(account.pk, ""))
    Account.objects.bulk_update(
        accounts,
        ["status", "mrr", "customer_since", "churned_on", "churn_reason", "lifecycle_stage"],
        batch_size=1000,
    )
    return len(accounts)


def account_revenue_refresh_due(*, today: dt.date | None = None) -> int:
    """Refresh the accounts whose facts changed with the date alone: a subscription started (a
    contract signed ahead of its start) or ended (a cancellation scheduled for the end of its
    term) in the last DUE_LOOKBACK_DAYS. Run daily; returns how many accounts were refreshed."""
    today = today or timezone.now().date()
    since = today - dt.timedelta(days=DUE_LOOKBACK_DAYS)
    ids = sorted(
        Subscription.objects.filter(
            Q(start_date__gt=since, start_date__lte=today)
            | Q(end_date__gt=since, end_date__lte=today)
        )
        .order_by()
        .values_list("account_id", flat=True)
        .distinct()
    )
    return sum(
        account_revenue_refresh(account_ids=ids[i : i + BATCH], today=today)
        for i in range(0, len(ids), BATCH)
    )


def _apply_facts(account: Account, churn_reason: str) -> None:
    """Active while a paid period is live; a prospect until the first one starts (a contract
    signed ahead of its start date); churned once every started period has ended."""
    previous_status = account.status
    account.mrr = account.live_mrr or Decimal("0")
    account.customer_since = account.first_start
    if account.live_count:
        account.status = AccountStatus.ACTIVE
    elif not account.started_count:
        account.status = AccountStatus.PROSPECT
    else:
        account.status = AccountStatus.CHURNED
    if account.status == AccountStatus.CHURNED:
        account.churned_on = account.last_end
        account.churn_reason = churn_reason
        account.lifecycle_stage = LifecycleStage.CHURNED
    else:
        account.churned_on = None
        account.churn_reason = ""
        if previous_status == AccountStatus.CHURNED:
            account.lifecycle_stage = LifecycleStage.ONBOARDING


def _last_churn_reasons(ids: list[int], today: dt.date) -> dict[int, str]:
    rows = (
        Subscription.objects.filter(account_id__in=ids, end_date__lte=today)
        .exclude(status=SubscriptionStatus.TRIALING)
        .order_by("account_id", "end_date", "pk")
        .values_list("account_id", "churn_reason")
    )
    return dict(rows)  # the last row per account wins: its latest-ending subscription
