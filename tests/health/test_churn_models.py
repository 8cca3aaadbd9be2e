import numpy as np
import pandas as pd
import pytest

from health.churn.drivers import explain
from health.churn.features import FeatureEncoder
from health.churn.models import (
    BOOSTING,
    LOGISTIC,
    fit_predictor,
    select_and_fit,
    time_split,
)


def synthetic(n=4000, seed=0):
    """Churn driven by low utilisation and region APAC; MRR is noise."""
    rng = np.random.default_rng(seed)
    util = rng.uniform(0, 1, n)
    region = rng.choice(["EMEA", "NA", "APAC"], n, p=[0.4, 0.4, 0.2])
    logit = -1.5 - 4 * (util - 0.5) + 1.0 * (region == "APAC")
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "utilisation": util,
            "attr_region": region,
            "mrr": rng.uniform(100, 1000, n),
            "nps_180": np.where(rng.uniform(size=n) < 0.3, np.nan, rng.uniform(-100, 100, n)),
        }
    )
    dates = pd.Series(pd.Timestamp(2025, 1, 1) + pd.to_timedelta(rng.integers(0, 20, n) * 14, "D"))
    return frame, churned, dates


def test_encoder_drops_empty_and_constant_columns_and_keeps_missing_indicators():
    frame = pd.DataFrame(
        {
            "empty": [np.nan] * 4,
            "constant": [3.0] * 4,
            "nps_180": [10.0, np.nan, 30.0, 50.0],
            "segment": ["smb"] * 4,
        }
    )
    encoder = FeatureEncoder(min_level_count=1).fit(frame)
    assert encoder.features == ["nps_180"]
    assert encoder.columns == ["nps_180", "nps_180__missing"]
    encoded = encoder.transform(frame)
    assert encoded[1, 0] == 30.0  # the training median stands in for the missing value
    np.testing.assert_array_equal(encoded[:, 1], [0, 1, 0, 0])


def test_encoder_holds_values_beyond_the_training_range_at_its_edge():
    encoder = FeatureEncoder().fit(pd.DataFrame({"tenure_days": np.arange(1000.0)}))
    encoded = encoder.transform(pd.DataFrame({"tenure_days": [5000.0, -50.0]}))
    assert encoded[0, 0] == pytest.approx(np.quantile(np.arange(1000.0), 0.99))
    assert encoded[1, 0] == pytest.approx(np.quantile(np.arange(1000.0), 0.01))


def test_encoder_groups_rare_levels_and_ignores_unseen_ones():
    frame = pd.DataFrame({"attr_region": ["EMEA"] * 20 + ["NA"] * 20 + ["Mars"]})
    encoder = FeatureEncoder(min_level_count=10).fit(frame)
    assert encoder.columns == ["attr_region=EMEA", "attr_region=NA", "attr_region=(other)"]
    encoded = encoder.transform(pd.DataFrame({"attr_region": ["Mars", "Venus", "EMEA", None]}))
    np.testing.assert_array_equal(encoded, [[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]])


def test_encoder_never_uses_outcome_revealing_columns():
    frame = pd.DataFrame(
        {"status": ["active", "churned"] * 20, "churned_on": [1.0, 2.0] * 20, "mrr": range(40)}
    )
    assert FeatureEncoder().fit(frame).features == ["mrr"]


def test_encoder_treats_columns_absent_at_scoring_as_missing():
    encoder = FeatureEncoder().fit(pd.DataFrame({"mrr": [1.0, np.nan, 3.0]}))
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame(index=[0])), [[2.0, 1.0]])


def test_time_split_validates_on_later_dates_with_a_gap_of_one_horizon():
    dates = pd.Series(pd.Timestamp(2025, 1, 1) + pd.to_timedelta(np.arange(20) * 14, "D"))
    train, val = time_split(dates, horizon_days=90)
    assert dates[val].min() > dates[train].max() + pd.Timedelta(days=89)
    assert val.sum() == 6 and train.sum() == 8  # 7 × 14 = 98 days before the first validation date


@pytest.mark.parametrize("algorithm", [LOGISTIC, BOOSTING])
def test_drivers_point_the_right_way_on_a_known_logistic_relationship(algorithm):
    frame, churned, _ = synthetic()
    params = {"C": 1.0} if algorithm == LOGISTIC else {"max_iter": 100, "learning_rate": 0.1}
    predictor = fit_predictor(frame, churned, algorithm, params)
    accounts = pd.DataFrame(
        {"utilisation": [0.05, 0.95], "attr_region": ["APAC", "EMEA"], "mrr": [550.0, 550.0]}
    )
    risk = predictor.predict(accounts)
    assert risk[0] > risk[1]
    low_use, high_use = explain(predictor, accounts)
    first = low_use[0]
    assert first["feature"] == "utilisation" and first["direction"] == "raises"
    assert first["text"].startswith("Seat utilisation is 5% (typical: ")
    assert "raises risk by" in first["text"]
    assert high_use[0]["feature"] == "utilisation" and high_use[0]["direction"] == "lowers"
    region = next(d for d in low_use if d["feature"] == "attr_region")
    assert region["direction"] == "raises"
    assert region["text"].startswith("Attribute: region = APAC")


def test_logistic_driver_sizes_are_the_risk_change_at_the_typical_value_of_that_feature():
    frame, churned, _ = synthetic()
    predictor = fit_predictor(frame, churned, LOGISTIC, {"C": 1.0})
    account = pd.DataFrame({"utilisation": [0.1], "attr_region": ["NA"], "mrr": [500.0]})
    (drivers,) = explain(predictor, account, top=10)
    util = next(d for d in drivers if d["feature"] == "utilisation")
    scaler = predictor.estimator.named_steps["scale"]
    coef = predictor.estimator.named_steps["model"].coef_[0]
    encoded = predictor.encoder.transform(account)
    column = predictor.encoder.columns.index("utilisation")
    logit = np.log(predictor.predict(account) / (1 - predictor.predict(account)))[0]
    typical = predictor.encoder.reference_row()[column]
    contribution = (encoded[0, column] - typical) / scaler.scale_[column] * coef[column]
    expected = 1 / (1 + np.exp(-logit)) - 1 / (1 + np.exp(-(logit - contribution)))
    assert util["effect_pts"] == pytest.approx(expected * 100, abs=0.01)


def test_selection_prefers_the_model_that_validates_better_and_gives_probabilities():
    frame, churned, dates = synthetic(n=5000, seed=3)
    predictor, selection = select_and_fit(frame, churned, dates, horizon_days=90)
    assert predictor.algorithm == selection.algorithm
    aucs = {k: v["auc"] for k, v in selection.scores.items() if k != "calibration"}
    assert max(aucs.values()) > 0.7
    risk = predictor.predict(frame)
    assert ((risk > 0) & (risk < 1)).all()
    assert abs(risk.mean() - churned.mean()) < 0.03  # calibrated on average


def test_selection_skips_validation_when_the_later_dates_have_a_single_outcome():
    frame, churned, dates = synthetic(n=600, seed=4)
    churned = churned.copy()
    churned[(dates >= dates.quantile(0.7)).to_numpy()] = 0
    predictor, selection = select_and_fit(frame, churned, dates, horizon_days=14)
    assert "skipped" in selection.note
    assert predictor.algorithm == LOGISTIC


def test_an_account_at_the_typical_value_gets_no_effect_from_that_feature():
    frame, churned, _ = synthetic()
    predictor = fit_predictor(frame, churned, LOGISTIC, {"C": 1.0})
    typical = predictor.encoder.typical_value("utilisation")
    account = pd.DataFrame({"utilisation": [typical], "attr_region": ["APAC"], "mrr": [500.0]})
    (drivers,) = explain(predictor, account, top=10)
    assert "utilisation" not in {d["feature"] for d in drivers}
