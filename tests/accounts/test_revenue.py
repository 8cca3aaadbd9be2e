import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Account
from accounts.services.revenue import account_revenue_refresh, account_revenue_refresh_due
from tests.factories import AccountFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 6, 15)


def refreshed(account: Account, today: dt.date = TODAY) -> Account:
    account_revenue_refresh(account_ids=[account.pk], today=today)
    account.refresh_from_db()
    return account


def test_account_without_subscriptions_is_a_prospect_with_no_mrr():
    account = refreshed(AccountFactory())
    assert (account.status, account.mrr, account.customer_since) == ("prospect", 0, None)


def test_live_subscription_makes_an_active_customer_since_its_start():
    account = AccountFactory()
    SubscriptionFactory(account=account, mrr=Decimal("500"), start_date=dt.date(2024, 3, 1))
    account = refreshed(account)
    assert account.status == "active"
    assert account.mrr == Decimal("500")
    assert account.arr == Decimal("6000")
    assert account.customer_since == dt.date(2024, 3, 1)
    assert account.churned_on is None


def test_mrr_is_the_sum_of_the_periods_live_today_only():
    account = AccountFactory()
    SubscriptionFactory(account=account, mrr=Decimal("100"), start_date=dt.date(2025, 1, 1))
    SubscriptionFactory(account=account, mrr=Decimal("40"), start_date=dt.date(2025, 2, 1))
    SubscriptionFactory(
        account=account,
        mrr=Decimal("900"),
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2025, 1, 1),
    )
    SubscriptionFactory(account=account, mrr=Decimal("70"), start_date=dt.date(2025, 7, 1))
    assert refreshed(account).mrr == Decimal("140")


def test_upgrade_ends_the_old_period_and_counts_only_the_new_one_from_its_start():
    account = AccountFactory()
    SubscriptionFactory(
        account=account,
        mrr=Decimal("100"),
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2025, 6, 1),
        status="canceled",
    )
    SubscriptionFactory(account=account, mrr=Decimal("250"), start_date=dt.date(2025, 6, 1))
    assert refreshed(account, today=dt.date(2025, 5, 31)).mrr == Decimal("100")
    account = refreshed(account, today=dt.date(2025, 6, 1))
    assert account.mrr == Decimal("250")
    assert account.status == "active"
    assert account.customer_since == dt.date(2024, 1, 1)


def test_account_whose_last_subscription_ended_is_churned_on_that_date_with_its_reason():
    account = AccountFactory()
    SubscriptionFactory(
        account=account,
        start_date=dt.date(2023, 1, 1),
        end_date=dt.date(2024, 1, 1),
        churn_reason="downgraded",
        status="canceled",
    )
    SubscriptionFactory(
        account=account,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2025, 3, 31),
        churn_reason="budget",
        status="canceled",
    )
    account = refreshed(account)
    assert account.status == "churned"
    assert account.churned_on == dt.date(2025, 3, 31)
    assert account.churn_reason == "budget"
    assert account.mrr == 0
    assert account.lifecycle_stage == "churned"


def test_cancellation_scheduled_in_the_future_keeps_the_account_active_until_then():
    account = AccountFactory()
    SubscriptionFactory(
        account=account, start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 7, 1)
    )
    account = refreshed(account)
    assert (account.status, account.mrr, account.churned_on) == ("active", Decimal("500"), None)
    assert refreshed(account, today=dt.date(2025, 7, 1)).status == "churned"


def test_won_back_account_becomes_active_again_and_forgets_its_churn():
    account = AccountFactory()
    SubscriptionFactory(
        account=account,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2025, 1, 1),
        churn_reason="price",
    )
    assert refreshed(account).status == "churned"
    SubscriptionFactory(account=account, start_date=dt.date(2025, 6, 1))
    account = refreshed(account)
    assert account.status == "active"
    assert (account.churned_on, account.churn_reason) == (None, "")
    assert account.lifecycle_stage == "onboarding"


def test_a_trial_is_neither_revenue_nor_churn():
    trialing = AccountFactory()
    SubscriptionFactory(account=trialing, status="trialing", start_date=dt.date(2025, 6, 1))
    trialing = refreshed(trialing)
    assert (trialing.status, trialing.mrr, trialing.customer_since) == ("prospect", 0, None)

    lapsed = AccountFactory()
    SubscriptionFactory(
        account=lapsed,
        status="trialing",
        start_date=dt.date(2025, 5, 1),
        end_date=dt.date(2025, 5, 15),
    )
    lapsed = refreshed(lapsed)
    assert (lapsed.status, lapsed.churned_on) == ("prospect", None)


def test_many_accounts_are_refreshed_with_a_constant_number_of_queries(
    django_assert_max_num_queries,
):
    accounts = AccountFactory.create_batch(30)
    for account in accounts:
        SubscriptionFactory(account=account)
    with django_assert_max_num_queries(4):
        assert account_revenue_refresh(account_ids=[a.pk for a in accounts], today=TODAY) == 30
    assert set(Account.objects.values_list("status", flat=True)) == {"active"}


def test_a_contract_signed_ahead_of_its_start_is_a_prospect_until_then():
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=dt.date(2025, 7, 1))
    account = refreshed(account)
    assert (account.status, account.mrr, account.customer_since) == ("prospect", 0, None)
    account = refreshed(account, today=dt.date(2025, 7, 1))
    assert (account.status, account.mrr) == ("active", Decimal("500"))
    assert account.customer_since == dt.date(2025, 7, 1)


def test_the_daily_refresh_picks_up_starts_and_cancellations_that_took_effect():
    starting, cancelling, steady = AccountFactory(), AccountFactory(), AccountFactory()
    SubscriptionFactory(account=starting, start_date=dt.date(2025, 7, 1))
    SubscriptionFactory(
        account=cancelling,
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2025, 7, 1),
        churn_reason="budget",
    )
    SubscriptionFactory(account=steady, start_date=dt.date(2025, 1, 1))
    account_revenue_refresh(account_ids=[starting.pk, cancelling.pk, steady.pk], today=TODAY)

    assert account_revenue_refresh_due(today=dt.date(2025, 7, 3)) == 2
    starting.refresh_from_db()
    cancelling.refresh_from_db()
    assert starting.status == "active"
    assert (cancelling.status, cancelling.churned_on, cancelling.churn_reason) == (
        "churned",
        dt.date(2025, 7, 1),
        "budget",
    )
    # A week later nothing is due any more.
    assert account_revenue_refresh_due(today=dt.date(2025, 7, 9)) == 0


def test_the_refresh_command_and_the_beat_task_run_the_daily_refresh(settings):
    from csp.celery import app, beat_schedule

    entry = beat_schedule()["accounts-revenue-refresh"]
    assert entry["task"] == "accounts.tasks.account_revenue_refresh_daily"
    app.loader.import_default_modules()  # what a worker or beat imports at start
    assert entry["task"] in app.tasks
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=timezone.now().date())
    out = StringIO()
    call_command("refresh_revenue", stdout=out)
    assert "Refreshed the revenue facts of 1 accounts." in out.getvalue()
    assert Account.objects.get(pk=account.pk).status == "active"
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("refresh_revenue", "--today", "tomorrow")
