"""Computing and storing health snapshots with the default scorecard (from the data migration)."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import DailyUsage, DailyUser
from health.models import AccountHealth, HealthScore, Job, JobStatus, ScorecardVersion
from health.services.scores import health_scores_compute
from tests.factories import AccountFactory, SubscriptionFactory, SurveyResponseFactory

AS_OF = dt.date(2025, 6, 30)


def usage(account, days_ago, name, count, users=()):
    day = AS_OF - dt.timedelta(days=days_ago)
    DailyUsage.objects.create(
        account=account, day=day, event_name=name, event_count=count, active_users=len(users)
    )
    DailyUser.objects.bulk_create(
        DailyUser(account=account, day=day, event_name=name, user_id=u) for u in users
    )


@pytest.fixture
def accounts(db):
    """Two accounts with known rollups (hand-computed scores below)."""
    strong = AccountFactory(external_id="strong")
    SubscriptionFactory(account=strong, quantity=4, start_date=dt.date(2024, 1, 1))
    for d in range(20):  # 20 active days, 3 users of 4 seats, 6 event names, steady
        usage(strong, d, "login", 2, users=["a", "b", "c"])
    for name in ["report", "export", "share", "invite", "search"]:
        usage(strong, 0, name, 1)
    for d in range(30, 50):
        usage(strong, d, "login", 2)
    SurveyResponseFactory(
        account=strong, score=10, responded_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    )

    weak = AccountFactory(external_id="weak")
    SubscriptionFactory(account=weak, quantity=10, start_date=dt.date(2024, 1, 1))
    usage(weak, 15, "login", 5, users=["x"])  # 1 day, 1 user of 10, 1 event name
    usage(weak, 40, "login", 10)
    return strong, weak


def test_scores_match_hand_computation_with_the_default_scorecard(accounts):
    strong, weak = accounts
    assert health_scores_compute(as_of=AS_OF, account_ids=[strong.pk, weak.pk]) == 2

    s = HealthScore.objects.get(account=strong, as_of=AS_OF)
    # strong: frequency 20 days -> 100; utilisation .75 -> (0.75-0.2)/0.7 = 78.571;
    # breadth 6 -> 100; trend (45-40)/40 = .125 -> (0.625/0.7) = 89.286; recency 0 -> 100;
    # NPS 100 -> 100. Weights 20/15/15/15/15/20 of 100:
    expected = 20 + 0.15 * 78.5714 + 15 + 0.15 * 89.2857 + 15 + 20
    assert s.score == pytest.approx(expected, abs=0.02)
    assert s.grade == "green"

    w = HealthScore.objects.get(account=weak, as_of=AS_OF)
    # weak: 1 day -> 5; utilisation .1 -> 0; breadth 1 -> 0; trend (5-10)/10 = -.5 -> 0;
    # recency 15 -> 50; NPS missing: its 20 is spread over the other 80.
    expected_weak = (20 * 5 + 15 * 0 + 15 * 0 + 15 * 0 + 15 * 50) / 80
    assert w.score == pytest.approx(expected_weak, abs=0.02)
    assert w.grade == "red"
    nps = next(m for m in w.measures if m["name"] == "nps")
    assert nps["missing"] is True and nps["weight"] == 0 and nps["base_weight"] == 20
    assert sum(m["contribution"] for m in w.measures) == pytest.approx(w.score, abs=1e-9)
    assert w.scorecard_version == ScorecardVersion.objects.get(scorecard__is_default=True)


def test_recomputing_the_same_date_replaces_rather_than_duplicates(accounts):
    strong, weak = accounts
    health_scores_compute(as_of=AS_OF, account_ids=[strong.pk, weak.pk])
    first = HealthScore.objects.get(account=weak).score
    usage(weak, 0, "login", 3, users=["y"])
    health_scores_compute(as_of=AS_OF, account_ids=[strong.pk, weak.pk])
    assert HealthScore.objects.filter(as_of=AS_OF).count() == 2
    assert HealthScore.objects.get(account=weak).score > first
    assert (
        AccountHealth.objects.get(account=weak).score == HealthScore.objects.get(account=weak).score
    )


def test_a_backfill_never_overwrites_the_current_health(accounts):
    strong, weak = accounts
    health_scores_compute(as_of=AS_OF, account_ids=[weak.pk])
    health_scores_compute(as_of=AS_OF - dt.timedelta(days=20), account_ids=[weak.pk])
    current = AccountHealth.objects.get(account=weak)
    assert current.as_of == AS_OF
    assert current.score == HealthScore.objects.get(account=weak, as_of=AS_OF).score
    assert HealthScore.objects.filter(account=weak).count() == 2


def test_churn_risk_on_the_current_row_survives_a_recompute(accounts):
    strong, _ = accounts
    health_scores_compute(as_of=AS_OF, account_ids=[strong.pk])
    AccountHealth.objects.filter(account=strong).update(churn_risk=0.3, churn_model_version=2)
    health_scores_compute(as_of=AS_OF + dt.timedelta(days=1), account_ids=[strong.pk])
    current = AccountHealth.objects.get(account=strong)
    assert (current.as_of, current.churn_risk, current.churn_model_version) == (
        AS_OF + dt.timedelta(days=1),
        0.3,
        2,
    )


def test_an_account_that_stopped_paying_loses_its_snapshot_for_that_date(accounts):
    strong, weak = accounts
    health_scores_compute(as_of=AS_OF, account_ids=[strong.pk, weak.pk])
    weak.subscriptions.update(end_date=AS_OF)  # corrected: it churned on as_of
    assert health_scores_compute(as_of=AS_OF, account_ids=[strong.pk, weak.pk]) == 1
    assert not HealthScore.objects.filter(account=weak, as_of=AS_OF).exists()
    assert not AccountHealth.objects.filter(account=weak).exists()


def test_compute_health_command_runs_a_recompute_job(accounts, django_capture_on_commit_callbacks):
    out = StringIO()
    # The job's chunks are sent after commit, and the test's transaction never commits: run the
    # callbacks by hand instead of waiting for the job.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("compute_health", "--as-of", "2025-06-30", "--no-wait", stdout=out)
    assert "2 paying accounts as of 2025-06-30" in out.getvalue()
    assert Job.objects.get().status == JobStatus.SUCCEEDED
    assert HealthScore.objects.filter(as_of=AS_OF).count() == 2


def test_compute_health_command_rejects_a_bad_date(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("compute_health", "--as-of", "30/06/2025")
