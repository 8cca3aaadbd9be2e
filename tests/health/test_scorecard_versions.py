import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from health.models import HealthScore, Scorecard, ScorecardMeasure, ScorecardVersion
from health.services.scores import health_scores_compute, scorecard_publish
from tests.factories import AccountFactory, SubscriptionFactory, UserFactory

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture
def default(db):
    return Scorecard.objects.get(is_default=True)


def test_every_install_has_a_published_default_scorecard(default):
    version = default.versions.get()
    assert version.number == 1
    names = [m["name"] for m in version.definition["measures"]]
    assert names == ["usage_frequency", "utilisation", "breadth", "usage_trend", "recency", "nps"]
    assert version.definition["grades"] == {"green": 70.0, "yellow": 40.0}


def test_an_edit_publishes_a_new_version_and_old_scores_keep_theirs(default):
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=dt.date(2024, 1, 1))
    health_scores_compute(as_of=AS_OF - dt.timedelta(days=1), account_ids=[account.pk])
    default.green_threshold = 80
    default.save()
    ScorecardMeasure.objects.filter(scorecard=default, name="nps").update(weight=40)
    v2 = scorecard_publish(scorecard=default, user=UserFactory())
    assert v2.number == 2 and v2.definition["grades"]["green"] == 80
    health_scores_compute(as_of=AS_OF, account_ids=[account.pk])
    old, new = HealthScore.objects.filter(account=account).order_by("as_of")
    assert old.scorecard_version.number == 1
    assert new.scorecard_version.number == 2
    assert ScorecardVersion.objects.get(number=1).definition["grades"]["green"] == 70


def test_saving_without_a_change_keeps_the_version(default):
    assert scorecard_publish(scorecard=default).number == 1
    assert default.versions.count() == 1


def test_an_invalid_definition_is_refused(default):
    ScorecardMeasure.objects.filter(scorecard=default, name="nps").update(low=50, high=-50)
    with pytest.raises(ValidationError, match="High must be greater than low"):
        scorecard_publish(scorecard=default)
    assert default.versions.count() == 1


def test_segment_scorecards_apply_first_and_the_default_catches_the_rest(default):
    enterprise = Scorecard.objects.create(
        name="Enterprise", priority=10, segments="enterprise, mid"
    )
    ScorecardMeasure.objects.create(
        scorecard=enterprise,
        name="seats",
        feature="seats",
        weight=1,
        mapping="thresholds",
        thresholds=[[0, 0], [50, 100]],
    )
    scorecard_publish(scorecard=enterprise)
    big = AccountFactory(segment="enterprise")
    small = AccountFactory(segment="smb")
    for account in (big, small):
        SubscriptionFactory(account=account, quantity=60, start_date=dt.date(2024, 1, 1))
    health_scores_compute(as_of=AS_OF, account_ids=[big.pk, small.pk])
    big_score = HealthScore.objects.get(account=big)
    assert big_score.scorecard_version.scorecard == enterprise
    assert big_score.score == 100
    assert HealthScore.objects.get(account=small).scorecard_version.scorecard == default


def test_a_tier_scorecard_waits_for_the_touch_model(default):
    tiered = Scorecard.objects.create(name="High touch", priority=1, tiers="high")
    ScorecardMeasure.objects.create(
        scorecard=tiered, name="seats", feature="seats", weight=1, mapping="linear", low=0, high=10
    )
    scorecard_publish(scorecard=tiered)
    account = AccountFactory()
    SubscriptionFactory(account=account, start_date=dt.date(2024, 1, 1))
    health_scores_compute(as_of=AS_OF, account_ids=[account.pk])
    assert HealthScore.objects.get().scorecard_version.scorecard == default


def test_admin_save_publishes_a_version(default, client):
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    measures = list(default.measures.order_by("position"))
    data = {
        "name": "Default",
        "description": "",
        "priority": 1000,
        "is_default": "on",
        "is_active": "on",
        "segments": "",
        "tiers": "",
        "green_threshold": 75,
        "yellow_threshold": 40,
        "sentiment_weight": 25,
        "measures-TOTAL_FORMS": len(measures),
        "measures-INITIAL_FORMS": len(measures),
        "measures-MIN_NUM_FORMS": 0,
        "measures-MAX_NUM_FORMS": 1000,
    }
    for i, m in enumerate(measures):
        data.update(
            {
                f"measures-{i}-id": m.pk,
                f"measures-{i}-scorecard": default.pk,
                f"measures-{i}-name": m.name,
                f"measures-{i}-label": m.label,
                f"measures-{i}-feature": m.feature,
                f"measures-{i}-weight": m.weight,
                f"measures-{i}-mapping": m.mapping,
                f"measures-{i}-direction": m.direction,
                f"measures-{i}-low": m.low,
                f"measures-{i}-high": m.high,
                f"measures-{i}-thresholds": "[]",
                f"measures-{i}-position": m.position,
            }
        )
    response = client.post(f"/admin/health/scorecard/{default.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = default.versions.order_by("-number").first()
    assert latest.number == 2 and latest.created_by == admin
    assert latest.definition["grades"]["green"] == 75

    data["measures-0-high"] = -5  # below low: the admin shows an error, nothing is published
    response = client.post(f"/admin/health/scorecard/{default.pk}/change/", data)
    assert response.status_code == 200
    assert "High must be greater than low" in response.content.decode()
    assert default.versions.count() == 2
