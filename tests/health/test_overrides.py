import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from health.models import HealthScore, SentimentOverride
from health.services.scores import (
    health_scores_compute,
    sentiment_override_add,
    sentiment_override_revoke,
)
from tests.factories import AccountFactory, SubscriptionFactory, UserFactory

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture
def account(db):
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=dt.date(2024, 1, 1))
    return account


def override(account, *, created, expires, grade="", points=None, revoked=None):
    return SentimentOverride.objects.create(
        account=account,
        grade=grade,
        points=points,
        reason="Exec sponsor left",
        created_at=dt.datetime.combine(created, dt.time(9), dt.UTC),
        expires_on=expires,
        revoked_at=dt.datetime.combine(revoked, dt.time(9), dt.UTC) if revoked else None,
    )


def snapshot(account, as_of=AS_OF):
    health_scores_compute(as_of=as_of, account_ids=[account.pk])
    return HealthScore.objects.get(account=account, as_of=as_of)


def sentiment(score):
    return next(m for m in score.measures if m["name"] == "csm_sentiment")


def test_an_active_override_enters_as_its_own_visible_measure(account):
    # No usage at all: only recency and NPS are missing; frequency, utilisation, breadth are 0.
    without = snapshot(account)
    override(
        account,
        created=AS_OF - dt.timedelta(days=5),
        expires=AS_OF + dt.timedelta(days=30),
        points=100,
    )
    with_override = snapshot(account)
    measure = sentiment(with_override)
    assert measure["missing"] is False
    assert measure["label"] == "CSM sentiment"
    assert measure["points"] == 100 and measure["raw_value"] == 100
    # frequency, utilisation, breadth, trend present (weights 65); sentiment 25 of 90
    assert measure["weight"] == pytest.approx(100 * 25 / 90, abs=0.01)
    # The other measures keep their points; their shares shrink from 65 to 65 of 90.
    assert with_override.score == pytest.approx(
        without.score * 65 / 90 + measure["contribution"], abs=0.02
    )


def test_a_green_grade_lands_in_the_green_band(account):
    override(account, created=AS_OF, expires=AS_OF + dt.timedelta(days=1), grade="green")
    assert sentiment(snapshot(account))["points"] == 85.0


def test_an_expired_or_future_override_does_not_count(account):
    override(account, created=AS_OF - dt.timedelta(days=40), expires=AS_OF, grade="red")
    override(
        account,
        created=AS_OF + dt.timedelta(days=1),
        expires=AS_OF + dt.timedelta(days=9),
        grade="red",
    )
    assert sentiment(snapshot(account))["missing"] is True


def test_an_override_counts_on_dates_before_its_expiry_only(account):
    override(account, created=AS_OF - dt.timedelta(days=10), expires=AS_OF, points=0)
    assert sentiment(snapshot(account, AS_OF - dt.timedelta(days=1)))["missing"] is False
    assert sentiment(snapshot(account, AS_OF))["missing"] is True


def test_a_revoked_override_stops_counting_from_its_revocation(account):
    override(
        account,
        created=AS_OF - dt.timedelta(days=10),
        expires=AS_OF + dt.timedelta(days=10),
        grade="red",
        revoked=AS_OF - dt.timedelta(days=2),
    )
    assert sentiment(snapshot(account, AS_OF - dt.timedelta(days=3)))["missing"] is False
    assert sentiment(snapshot(account, AS_OF))["missing"] is True


def test_the_newest_active_override_wins(account):
    override(
        account,
        created=AS_OF - dt.timedelta(days=10),
        expires=AS_OF + dt.timedelta(days=9),
        grade="red",
    )
    override(
        account,
        created=AS_OF - dt.timedelta(days=2),
        expires=AS_OF + dt.timedelta(days=9),
        grade="green",
    )
    assert sentiment(snapshot(account))["raw_value"] == "green"


def test_recompute_never_touches_overrides(account):
    made = override(account, created=AS_OF, expires=AS_OF + dt.timedelta(days=5), grade="yellow")
    snapshot(account)
    snapshot(account)
    assert SentimentOverride.objects.get() == made
    assert SentimentOverride.objects.get().grade == "yellow"


def test_the_service_validates_grade_points_reason_and_expiry(account):
    user = UserFactory()
    tomorrow = timezone.now().date() + dt.timedelta(days=1)
    with pytest.raises(ValidationError) as both:
        sentiment_override_add(
            account=account, author=user, grade="red", points=5, reason="x", expires_on=tomorrow
        )
    assert "grade" in both.value.message_dict
    with pytest.raises(ValidationError) as bad:
        sentiment_override_add(
            account=account, author=user, points=150, reason=" ", expires_on=timezone.now().date()
        )
    assert set(bad.value.message_dict) == {"points", "reason", "expires_on"}
    made = sentiment_override_add(
        account=account, author=user, grade="red", reason="Budget cut", expires_on=tomorrow
    )
    assert made.author == user and made.created_at is not None
    sentiment_override_revoke(override=made, user=user)
    assert SentimentOverride.objects.get().revoked_at is not None
