import datetime as dt
import math
from decimal import Decimal

import pytest

from accounts.models import DailyUsage, DailyUser
from health.features import FEATURE_COLUMNS, account_feature_frame, paying_account_ids
from tests.factories import AccountFactory, SubscriptionFactory, SurveyResponseFactory

AS_OF = dt.date(2025, 6, 30)


def usage(account, day, name, count, users=()):
    DailyUsage.objects.create(
        account=account, day=day, event_name=name, event_count=count, active_users=len(users)
    )
    DailyUser.objects.bulk_create(
        DailyUser(account=account, day=day, event_name=name, user_id=u) for u in users
    )


def nps(account, score, when):
    SurveyResponseFactory(
        account=account, score=score, responded_at=dt.datetime.combine(when, dt.time(12), dt.UTC)
    )


@pytest.fixture
def busy(db):
    """A year-old account with 10 seats on two live periods, steady usage and NPS answers."""
    account = AccountFactory(
        segment="mid", industry="retail", attributes={"plan_tier": 3, "region": "eu"}
    )
    SubscriptionFactory(
        account=account,
        quantity=6,
        mrr=Decimal("300"),
        start_date=dt.date(2024, 6, 1),
        renewal_date=dt.date(2025, 8, 1),
        billing_period_months=12,
    )
    SubscriptionFactory(
        account=account,
        quantity=4,
        mrr=Decimal("200"),
        start_date=dt.date(2025, 3, 1),
        renewal_date=dt.date(2025, 9, 1),
        billing_period_months=1,
    )
    # An ended period (upgrade) does not count towards seats or MRR.
    SubscriptionFactory(
        account=account,
        quantity=99,
        mrr=Decimal("9999"),
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2024, 6, 1),
    )
    usage(account, AS_OF, "login", 5, users=["a", "b"])
    usage(account, AS_OF, "report_created", 2, users=["a"])
    usage(account, AS_OF - dt.timedelta(days=10), "export", 3, users=["c"])
    usage(account, AS_OF - dt.timedelta(days=29), "login", 2, users=["d"])
    usage(account, AS_OF - dt.timedelta(days=30), "login", 8, users=["e"])  # previous window
    usage(account, AS_OF - dt.timedelta(days=59), "login", 2, users=["e"])  # previous window
    usage(account, AS_OF - dt.timedelta(days=60), "login", 50, users=["f"])  # outside both
    nps(account, 10, AS_OF)
    nps(account, 9, AS_OF - dt.timedelta(days=100))
    nps(account, 3, AS_OF - dt.timedelta(days=179))
    nps(account, 7, AS_OF - dt.timedelta(days=30))
    nps(account, 0, AS_OF - dt.timedelta(days=181))  # older than 180 days
    return account


def test_busy_account_features_match_hand_computed_rollups(busy):
    frame = account_feature_frame(as_of=AS_OF)
    row = frame.loc[busy.pk]
    assert row["active_days_30"] == 3
    assert row["active_users_30"] == 4  # a, b, c, d
    assert row["seats"] == 10
    assert row["utilisation"] == pytest.approx(0.4)
    assert row["breadth_30"] == 3
    assert row["events_30"] == 12
    assert row["events_prev_30"] == 10
    assert row["usage_trend"] == pytest.approx(0.2)
    assert row["days_since_last_activity"] == 0
    # 2 promoters, 1 detractor, 1 passive: (2 - 1) / 4 = 25
    assert row["nps_180"] == pytest.approx(25.0)
    assert row["nps_responses_180"] == 4
    assert row["tenure_days"] == (AS_OF - dt.date(2024, 1, 1)).days
    assert row["mrr"] == pytest.approx(500.0)
    assert row["billing_period_months"] == 12
    # The monthly period started 2025-03-01 renews on the 1st: one day after AS_OF. Stored
    # renewal dates are ignored (they are rewritten at each renewal, so they leak the future).
    assert row["days_to_renewal"] == 1
    assert row["segment"] == "mid"
    assert row["industry"] == "retail"
    assert row["attr_plan_tier"] == 3.0
    assert row["attr_region"] == "eu"
    assert set(FEATURE_COLUMNS) <= set(frame.columns)


def test_only_paying_accounts_get_a_row(db):
    paying = AccountFactory()
    SubscriptionFactory(account=paying, start_date=dt.date(2025, 1, 1))
    churned = AccountFactory()
    SubscriptionFactory(
        account=churned, start_date=dt.date(2024, 1, 1), end_date=dt.date(2025, 6, 30)
    )
    future = AccountFactory()
    SubscriptionFactory(account=future, start_date=dt.date(2025, 7, 1))
    AccountFactory()  # prospect
    # Ended after as_of: still paying on as_of.
    later_churn = AccountFactory()
    SubscriptionFactory(
        account=later_churn, start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 7, 1)
    )

    frame = account_feature_frame(as_of=AS_OF)

    assert sorted(frame.index) == sorted([paying.pk, later_churn.pk])
    assert paying_account_ids(as_of=AS_OF) == sorted([paying.pk, later_churn.pk])
    assert frame.index.name == "account_id"


def test_account_ids_restrict_the_frame(busy):
    other = AccountFactory()
    SubscriptionFactory(account=other)
    assert list(account_feature_frame(as_of=AS_OF, account_ids=[other.pk]).index) == [other.pk]
    assert account_feature_frame(as_of=AS_OF, account_ids=[]).empty


def test_account_without_usage_or_surveys_has_zero_counts_and_missing_ratios(db):
    account = AccountFactory(attributes={})
    SubscriptionFactory(account=account, quantity=0, start_date=AS_OF - dt.timedelta(days=20))
    row = account_feature_frame(as_of=AS_OF).loc[account.pk]
    assert row["active_days_30"] == 0
    assert row["events_30"] == 0
    assert math.isnan(row["utilisation"])  # no seats
    assert math.isnan(row["usage_trend"])  # young and silent: no trend yet
    assert math.isnan(row["days_since_last_activity"])
    assert math.isnan(row["nps_180"])
    assert row["nps_responses_180"] == 0


def test_old_silent_account_has_a_flat_trend_and_long_inactivity(db):
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=dt.date(2024, 1, 1))
    usage(account, AS_OF - dt.timedelta(days=100), "login", 1, users=["x"])
    row = account_feature_frame(as_of=AS_OF).loc[account.pk]
    assert row["usage_trend"] == 0
    assert row["days_since_last_activity"] == 100
    assert row["active_users_30"] == 0


def test_usage_that_stops_gives_a_negative_trend(db):
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=dt.date(2024, 1, 1))
    usage(account, AS_OF - dt.timedelta(days=40), "login", 20)
    usage(account, AS_OF - dt.timedelta(days=5), "login", 5)
    row = account_feature_frame(as_of=AS_OF).loc[account.pk]
    assert row["usage_trend"] == pytest.approx(-0.75)
    assert row["days_since_last_activity"] == 5


def test_mixed_attribute_values_stay_text_and_booleans_become_numbers(db):
    a = AccountFactory(attributes={"size": 10, "sso": True, "code": "x1"})
    b = AccountFactory(attributes={"size": 20.5, "sso": False, "code": 7})
    for account in (a, b):
        SubscriptionFactory(account=account)
    frame = account_feature_frame(as_of=AS_OF)
    assert frame.loc[a.pk, "attr_size"] == 10.0
    assert frame.loc[b.pk, "attr_size"] == 20.5
    assert frame.loc[b.pk, "attr_sso"] == 0.0
    assert frame.loc[b.pk, "attr_code"] == "7"


def test_large_id_lists_are_split_without_changing_the_result(busy, monkeypatch):
    import health.features as features

    others = [AccountFactory() for _ in range(3)]
    for account in others:
        SubscriptionFactory(account=account)
    ids = [busy.pk, *(a.pk for a in others)]
    whole = account_feature_frame(as_of=AS_OF, account_ids=ids)
    monkeypatch.setattr(features, "MAX_IDS_PER_QUERY", 2)
    split = account_feature_frame(as_of=AS_OF, account_ids=ids)
    assert split.loc[busy.pk, "events_30"] == whole.loc[busy.pk, "events_30"]
    assert sorted(split.index) == sorted(whole.index)
