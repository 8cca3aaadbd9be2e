"""As-of results use only data up to the as-of date: adding later events, survey answers and
subscription changes must not move features or scores at that date."""

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from accounts.models import DailyUsage, DailyUser
from health.features import account_feature_frame
from health.models import HealthScore, SentimentOverride
from health.services.scores import health_scores_compute
from tests.factories import AccountFactory, SubscriptionFactory, SurveyResponseFactory

AS_OF = dt.date(2025, 6, 30)
LATER = dt.datetime(2025, 7, 1, 0, 0, tzinfo=dt.UTC)


def activity(account, day, name="login", count=3, users=("u1",)):
    DailyUsage.objects.create(
        account=account, day=day, event_name=name, event_count=count, active_users=len(users)
    )
    DailyUser.objects.bulk_create(
        DailyUser(account=account, day=day, event_name=name, user_id=u) for u in users
    )


@pytest.fixture
def book(db):
    accounts = []
    for i in range(3):
        account = AccountFactory(segment="smb")
        SubscriptionFactory(
            account=account,
            quantity=5,
            start_date=dt.date(2024, 3, 1),
            renewal_date=dt.date(2025, 9, 1),
        )
        for d in range(0, 70, 3 + i):
            activity(account, AS_OF - dt.timedelta(days=d), users=tuple({"u1", f"u{d % 4}"}))
        SurveyResponseFactory(
            account=account,
            score=8 + i,
            responded_at=dt.datetime(2025, 6, 30, 23, 59, tzinfo=dt.UTC),
        )
        accounts.append(account)
    return accounts


def add_the_future(accounts):
    for account in accounts:
        for d in range(1, 20):
            activity(account, AS_OF + dt.timedelta(days=d), name="new_feature", users=("z1", "z2"))
        SurveyResponseFactory(account=account, score=0, responded_at=LATER)
        # Seats changed and the account churned, both after as_of.
        account.subscriptions.update(end_date=dt.date(2025, 7, 15))
        SubscriptionFactory(
            account=account, quantity=50, mrr=Decimal("9000"), start_date=dt.date(2025, 7, 1)
        )
        SentimentOverride.objects.create(
            account=account,
            grade="red",
            reason="later",
            created_at=LATER,
            expires_on=dt.date(2025, 12, 1),
        )


def test_future_data_does_not_move_features_or_scores(book):
    ids = [a.pk for a in book]
    before = account_feature_frame(as_of=AS_OF, account_ids=ids)
    health_scores_compute(as_of=AS_OF, account_ids=ids)
    scores_before = {s.account_id: (s.score, s.measures) for s in HealthScore.objects.all()}

    add_the_future(book)

    after = account_feature_frame(as_of=AS_OF, account_ids=ids)
    pd.testing.assert_frame_equal(before, after)
    health_scores_compute(as_of=AS_OF, account_ids=ids)
    scores_after = {s.account_id: (s.score, s.measures) for s in HealthScore.objects.all()}
    assert scores_after == scores_before
    assert before["nps_responses_180"].tolist() == [1.0, 1.0, 1.0]  # the 23:59 answer counts
