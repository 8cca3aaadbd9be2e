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


def account_revenue_refresh(*, account_ids: Iterable[int], today: dt.date | None = None) -> int:
    """Recompute the derived revenue facts of these accounts; returns how many were updated."""
    today = today or timezone.now().date()
    ids = list(account_ids)
    if not ids:
        return 0
    # A trial is not revenue: trialing rows neither add MRR nor make a customer, and a trial that
    # ends unconverted is not churn.
    paying = ~Q(subscriptions__status=SubscriptionStatus.TRIALING)
    not_ended = Q(subscriptions__end_date__isnull=True) | Q(subscriptions__end_date__gt=today)
    live = paying & Q(subscriptions__start_date__lte=today) & not_ended
    accounts = list(
        Account.objects.filter(pk__in=ids).annotate(
            live_mrr=Sum("subscriptions__mrr", filter=live),
            not_ended=Count("subscriptions", filter=paying & not_ended),
            subscription_count=Count("subscriptions", filter=paying),
            first_start=Min("subscriptions__start_date", filter=paying),
            last_end=Max("subscriptions__end_date", filter=paying),
        )
    )
    reasons = _last_churn_reasons(ids)
    for account in accounts:
        _apply_facts(account, reasons.get(account.pk, ""))
    Account.objects.bulk_update(
        accounts,
        ["status", "mrr", "customer_since", "churned_on", "churn_reason", "lifecycle_stage"],
        batch_size=1000,
    )
    return len(accounts)


def _apply_facts(account: Account, churn_reason: str) -> None:
    previous_status = account.status
    account.mrr = account.live_mrr or Decimal("0")
    account.customer_since = account.first_start
    if account.subscription_count == 0:
        account.status = AccountStatus.PROSPECT
    elif account.not_ended:
        account.status = AccountStatus.ACTIVE
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


def _last_churn_reasons(ids: list[int]) -> dict[int, str]:
    rows = (
        Subscription.objects.filter(account_id__in=ids, end_date__isnull=False)
        .exclude(status=SubscriptionStatus.TRIALING)
        .order_by("account_id", "end_date", "pk")
        .values_list("account_id", "churn_reason")
    )
    return dict(rows)  # the last row per account wins: its latest-ending subscription
