import datetime as dt
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command

from accounts.models import DailyUsage, DailyUser, Subscription
from health.churn.drivers import explain
from health.models import AccountHealth, ChurnModel, HealthScore
from health.services.churn import (
    _artifact_load,
    churn_model_train,
    churn_risk_score,
    prediction_drivers,
    usable_model,
)
from health.services.churn_data import churn_feature_frame, training_examples
from health.services.scores import health_scores_compute
from tests.factories import SubscriptionFactory

from .churn_history import make_history

START = dt.date(2024, 1, 1)
TODAY = dt.date(2025, 6, 30)

pytestmark = pytest.mark.django_db


@pytest.fixture
def few_churns_needed(settings):
    settings.CHURN_MIN_CHURNS = 5


def predictions(as_of=TODAY):
    """The day's snapshots that carry a churn risk."""
    return HealthScore.objects.filter(as_of=as_of, churn_risk__isnull=False).select_related(
        "churn_model"
    )


def scored(ids, as_of=TODAY) -> int:
    """Health snapshots of the day first (churn risk is stored on them), then churn risk."""
    health_scores_compute(as_of=as_of, account_ids=ids)
    return churn_risk_score(as_of=as_of, account_ids=ids)


def test_too_little_churn_history_is_recorded_and_never_scored():
    SubscriptionFactory.create_batch(3, start_date=START, end_date=None)
    model = churn_model_train(as_of=TODAY, horizon_days=90)
    assert model.status == "insufficient_history"
    assert model.message == "not enough churn history: 0 churns, need 30"
    assert model.artifact is None and model.backtest is None
    ids = list(Subscription.objects.values_list("account_id", flat=True))
    assert scored(ids) == 0
    assert not predictions().exists()


def test_the_command_says_why_no_model_was_trained():
    out = StringIO()
    call_command("train_churn_model", "--as-of", "2025-06-30", stdout=out)
    assert "not enough churn history: 0 churns, need 30" in out.getvalue()


def test_the_command_rejects_a_malformed_date():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("train_churn_model", "--as-of", "30/06/2025")


def test_a_trained_model_scores_paying_accounts_with_probabilities_and_drivers(few_churns_needed):
    accounts = make_history(start=START, today=TODAY)
    model = churn_model_train(as_of=TODAY, horizon_days=90)
    assert model.status == "trained", model.message
    assert model.churn_count >= 5 and model.training_examples > 0
    assert "status" not in model.features and "tenure_days" in model.features
    ids = [a.pk for a in accounts]
    paying = set(
        Subscription.objects.filter(start_date__lte=TODAY, end_date__isnull=True).values_list(
            "account_id", flat=True
        )
    )
    written = scored(ids)
    assert written == len(paying)
    stored = predictions()
    assert {p.account_id for p in stored} == paying
    assert all(0 < p.churn_risk < 1 and p.churn_model == model for p in stored)
    assert all(prediction_drivers(p) and prediction_drivers(p)[0]["text"] for p in stored)
    health = AccountHealth.objects.get(account_id=min(paying))
    assert health.churn_model_version == model.version
    assert health.churn_risk == stored.get(account_id=min(paying)).churn_risk


def test_scoring_the_same_date_again_replaces_rather_than_duplicates(few_churns_needed):
    accounts = make_history(start=START, today=TODAY, seed=1)
    churn_model_train(as_of=TODAY, horizon_days=90)
    ids = [a.pk for a in accounts]
    first = scored(ids)
    second = scored(ids)
    assert first == second == predictions().count() == HealthScore.objects.count()


def test_scoring_an_earlier_date_never_uses_a_model_trained_later(few_churns_needed):
    accounts = make_history(start=START, today=TODAY, seed=2)
    churn_model_train(as_of=TODAY, horizon_days=90)
    assert usable_model(as_of=TODAY - dt.timedelta(days=1)) is None
    assert (
        churn_risk_score(as_of=TODAY - dt.timedelta(days=1), account_ids=[a.pk for a in accounts])
        == 0
    )


def test_a_tampered_model_artifact_is_never_loaded(few_churns_needed):
    accounts = make_history(start=START, today=TODAY, seed=3)
    model = churn_model_train(as_of=TODAY, horizon_days=90)
    ChurnModel.objects.filter(pk=model.pk).update(artifact=bytes(model.artifact) + b"x")
    assert churn_risk_score(as_of=TODAY, account_ids=[a.pk for a in accounts]) == 0


def test_training_features_do_not_move_when_later_data_is_added(few_churns_needed):
    make_history(start=START, today=TODAY, seed=4)
    as_of = dt.date(2025, 3, 31)
    before, labels_before, _ = training_examples(as_of=as_of, horizon_days=60)
    # Data after the training as-of date: new usage, a new survey-free account, churns.
    account_ids = list(before["account_id"].unique()[:10])
    later = [as_of + dt.timedelta(days=d) for d in (1, 5, 20)]
    DailyUsage.objects.bulk_create(
        DailyUsage(account_id=a, day=d, event_name="export", event_count=50, active_users=9)
        for a in account_ids
        for d in later
    )
    DailyUser.objects.bulk_create(
        DailyUser(account_id=a, day=d, event_name="export", user_id="late")
        for a in account_ids
        for d in later
    )
    Subscription.objects.filter(account_id__in=account_ids, end_date__isnull=True).update(
        end_date=as_of + dt.timedelta(days=10)
    )
    SubscriptionFactory(start_date=as_of + dt.timedelta(days=2))
    after, labels_after, _ = training_examples(as_of=as_of, horizon_days=60)
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_series_equal(labels_before, labels_after)


def test_features_at_an_observation_date_ignore_everything_after_it(few_churns_needed):
    make_history(start=START, today=TODAY, seed=5)
    as_of = dt.date(2025, 6, 30)
    before, _, _ = training_examples(as_of=as_of, horizon_days=90)
    last_obs = before["obs_date"].max()
    # Usage in the label window of the last observation date: labels may see it, features not.
    ids = list(before.loc[before["obs_date"] == last_obs, "account_id"].unique()[:5])
    DailyUsage.objects.bulk_create(
        DailyUsage(
            account_id=a,
            day=last_obs.date() + dt.timedelta(days=3),
            event_name="x",
            event_count=99,
            active_users=1,
        )
        for a in ids
    )
    after, _, _ = training_examples(as_of=as_of, horizon_days=90)
    pd.testing.assert_frame_equal(before, after)


def test_drivers_read_from_stored_inputs_are_those_of_the_account_as_scored(few_churns_needed):
    accounts = make_history(start=START, today=TODAY)
    model = churn_model_train(as_of=TODAY, horizon_days=90)
    assert model.status == "trained", model.message
    ids = [a.pk for a in accounts]
    scored(ids)
    predictor = _artifact_load(model)
    frame = churn_feature_frame(as_of=TODAY, account_ids=ids)
    live = dict(zip(frame.index, explain(predictor, frame), strict=True))
    stored = list(predictions())
    assert stored and all(len(p.churn_inputs) == len(model.features) for p in stored)
    for snapshot in stored:
        assert prediction_drivers(snapshot) == live[snapshot.account_id]
        assert snapshot.churn_risk == pytest.approx(
            float(predictor.predict(frame.loc[[snapshot.account_id]])[0])
        )


def test_a_prediction_without_inputs_or_loadable_model_has_no_drivers(few_churns_needed):
    accounts = make_history(start=START, today=TODAY)
    model = churn_model_train(as_of=TODAY, horizon_days=90)
    scored([a.pk for a in accounts])
    snapshot = predictions().first()
    assert prediction_drivers(snapshot)
    snapshot.churn_inputs = []
    assert prediction_drivers(snapshot) == []
    snapshot.refresh_from_db()
    ChurnModel.objects.filter(pk=model.pk).update(artifact_signature="0" * 64)
    snapshot.churn_model.refresh_from_db()
    assert prediction_drivers(snapshot) == []
