"""The recompute's fast paths give exactly what the straightforward ones give."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from accounts.models import DailyUsage
from health.churn import drivers
from health.churn.models import BOOSTING, fit_predictor
from health.features import account_feature_frame
from health.models import AccountHealth, ChurnModel, HealthScore, ScorecardVersion
from health.services.bulk import rows_update, rows_upsert
from tests.factories import AccountFactory, SubscriptionFactory
from tests.health.test_churn_models import synthetic

AS_OF = dt.date(2025, 6, 30)


def effects_one_feature_at_a_time(predictor, frame):
    """The definition of a driver's effect, one model call per feature."""
    encoder = predictor.encoder
    matrix = encoder.transform(frame)
    risk = predictor.predict_encoded(matrix)
    reference, groups = encoder.reference_row(), np.array(encoder.groups)
    out = np.zeros((len(frame), len(encoder.features)))
    for j, name in enumerate(encoder.features):
        replaced = matrix.copy()
        replaced[:, groups == name] = reference[groups == name]
        out[:, j] = risk - predictor.predict_encoded(replaced)
    return risk, out


def test_boosted_drivers_tree_by_tree_equal_one_model_call_per_feature():
    frame, churned, _ = synthetic()
    predictor = fit_predictor(frame, churned, BOOSTING, {"max_iter": 60, "max_leaf_nodes": 8})
    accounts = frame.iloc[:300].copy()
    accounts.loc[accounts.index[:50], "nps_180"] = predictor.encoder.medians["nps_180"]
    matrix = predictor.encoder.transform(accounts)
    assert drivers._TreeEnsemble.of(predictor, matrix, predictor.predict(accounts)) is not None
    risk, fast = drivers.effects(predictor, accounts)
    expected_risk, expected = effects_one_feature_at_a_time(predictor, accounts)
    assert np.array_equal(risk, expected_risk)
    assert np.array_equal(fast, expected)


def test_boosted_drivers_fall_back_to_model_calls_when_the_trees_cannot_be_read(monkeypatch):
    frame, churned, _ = synthetic()
    predictor = fit_predictor(frame, churned, BOOSTING, {"max_iter": 30})
    monkeypatch.setattr(drivers._TreeEnsemble, "of", classmethod(lambda cls, *a: None))
    accounts = frame.iloc[:100]
    _, fallback = drivers.effects(predictor, accounts)
    assert np.allclose(fallback, effects_one_feature_at_a_time(predictor, accounts)[1])


@pytest.fixture
def consecutive_accounts(db):
    """Six paying accounts with consecutive ids, each with usage and its own attribute."""
    accounts = []
    for n in range(6):
        account = AccountFactory(attributes={f"only_{n}": n})
        SubscriptionFactory(
            account=account, quantity=2, mrr=Decimal("100"), start_date=dt.date(2024, 1, 1)
        )
        DailyUsage.objects.create(account=account, day=AS_OF, event_name="login", event_count=n)
        accounts.append(account)
    return accounts


def test_a_range_read_keeps_only_the_requested_accounts(consecutive_accounts, monkeypatch):
    ids = [a.pk for a in consecutive_accounts]
    wanted = [ids[0], ids[1], ids[3], ids[5]]  # dense enough to be read as a range
    monkeypatch.setattr("health.features.DENSE_MIN_IDS", 2)
    ranged = account_feature_frame(as_of=AS_OF, account_ids=wanted)
    monkeypatch.setattr("health.features.DENSE_MIN_IDS", 10_000)
    listed = account_feature_frame(as_of=AS_OF, account_ids=wanted)
    assert ranged.index.tolist() == wanted
    assert "attr_only_2" not in ranged and "attr_only_4" not in ranged
    pd.testing.assert_frame_equal(ranged, listed)


def test_set_based_upsert_replaces_and_only_moves_current_health_forward(consecutive_accounts):
    first, second = consecutive_accounts[0].pk, consecutive_accounts[1].pk
    later = AS_OF + dt.timedelta(days=1)
    AccountHealth.objects.create(account_id=second, as_of=later, score=90.0, grade="green")

    def upsert(score):
        rows_upsert(
            model=AccountHealth,
            columns={
                "account": [first, second],
                "as_of": [AS_OF, AS_OF],
                "score": [score, score],
                "grade": ["red", "red"],
                "updated_at": [dt.datetime(2025, 6, 30, tzinfo=dt.UTC)] * 2,
            },
            unique=["account"],
            update=["as_of", "score", "grade"],
            only_if="t.as_of <= excluded.as_of",
        )

    upsert(10.0)
    upsert(20.0)  # a re-run replaces, never duplicates
    rows = dict(AccountHealth.objects.values_list("account_id", "score"))
    assert rows == {first: 20.0, second: 90.0}
    rows_update(
        model=AccountHealth,
        key="account",
        columns={"account": [first, second], "churn_risk": [0.25, 0.5]},
        where="t.as_of <= %s",
        params=[AS_OF],
    )
    risks = dict(AccountHealth.objects.values_list("account_id", "churn_risk"))
    assert risks == {first: 0.25, second: None}
    assert HealthScore.objects.count() == 0


def test_json_columns_round_trip_through_the_set_based_upsert(consecutive_accounts):
    model = ChurnModel.objects.create(version=1, as_of=AS_OF, status="trained")
    version = ScorecardVersion.objects.first()
    account = consecutive_accounts[0].pk
    # Quotes, backslashes, commas and braces must survive the array literals the upsert sends.
    inputs = [1000.0, None, 'say "hi", {x} \\ y', 0.25]
    for risk in (0.3, 0.4):
        rows_upsert(
            model=HealthScore,
            columns={
                "account": [account],
                "score": [50.0],
                "grade": ["yellow"],
                "parts": [[[1.0, 50.0, 100.0, 50.0]]],
                "scorecard_version": [version.pk],
                "churn_risk": [risk],
                "churn_inputs": [inputs],
            },
            same={"as_of": AS_OF, "churn_model": model.pk, "computed_at": timezone.now()},
            unique=["account", "as_of"],
            update=["churn_risk", "churn_inputs", "churn_model", "computed_at"],
        )
    stored = HealthScore.objects.get()
    assert stored.churn_risk == 0.4 and stored.churn_inputs == inputs
    assert stored.parts == [[1.0, 50.0, 100.0, 50.0]] and stored.churn_model == model
