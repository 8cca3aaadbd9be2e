import datetime as dt

import numpy as np
import pandas as pd
import pytest

from health.churn.backtest import (
    auc_score,
    backtest_report,
    brier_score,
    calibration_table,
    median_lead_time,
    stability,
    top_decile_lift,
    top_decile_threshold,
)


def test_auc_counts_correctly_ordered_pairs():
    # Pairs (churned, stayed): (0.8,0.1) ok, (0.8,0.4) ok, (0.3,0.1) ok, (0.3,0.4) wrong -> 3/4.
    assert auc_score([1, 0, 1, 0], [0.8, 0.1, 0.3, 0.4]) == pytest.approx(0.75)


def test_auc_is_undefined_with_a_single_outcome():
    assert auc_score([0, 0, 0], [0.1, 0.2, 0.3]) is None


def test_brier_is_the_mean_squared_error_of_probabilities():
    assert brier_score([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)


def test_lift_is_the_top_decile_churn_rate_over_the_overall_rate():
    labels = np.array([1] + [0] * 9 + [1] * 1 + [0] * 9)  # 2 churns in 20: rate 0.1
    predicted = np.linspace(1, 0, 20)  # the riskiest two: positions 0 and 1
    # Top decile = 2 accounts, 1 churned: 0.5 / 0.1 = 5.
    assert top_decile_lift(labels, predicted) == pytest.approx(5.0)
    assert top_decile_threshold(predicted) == pytest.approx(predicted[1])


def test_lift_is_undefined_when_nobody_churned():
    assert top_decile_lift([0, 0, 0], [0.5, 0.2, 0.1]) is None


def test_calibration_bins_hold_equal_counts_with_mean_predicted_and_observed_rate():
    table = calibration_table([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], bins=2)
    assert table == [
        {"predicted": 0.2, "observed": 0.0, "count": 2},
        {"predicted": 0.7, "observed": 1.0, "count": 2},
    ]


def test_lead_time_is_the_median_days_from_first_flag_to_churn_of_flagged_churners():
    flagged = pd.Series(
        {
            1: pd.Timestamp(2025, 1, 1),
            2: pd.Timestamp(2025, 1, 8),
            3: pd.Timestamp(2025, 1, 1),  # never churned: no lead time
            4: pd.Timestamp(2025, 3, 1),  # flagged after its churn: ignored
        }
    )
    churned = pd.Series(
        {
            1: pd.Timestamp(2025, 1, 31),  # 30 days
            2: pd.Timestamp(2025, 2, 17),  # 40 days
            4: pd.Timestamp(2025, 2, 1),
            5: pd.Timestamp(2025, 2, 1),  # churned without a flag
        }
    )
    assert median_lead_time(flagged, churned) == pytest.approx(35.0)


def test_lead_time_is_none_when_no_churner_was_flagged():
    assert (
        median_lead_time(pd.Series(dtype="datetime64[ns]"), pd.Series({1: dt.date(2025, 1, 1)}))
        is None
    )


def test_backtest_report_includes_base_rate_and_counts():
    report = backtest_report([1, 0, 0, 0], [0.9, 0.2, 0.1, 0.3])
    assert report["auc"] == 1.0
    assert report["base_rate"] == 0.25
    assert report["scored_accounts"] == 4 and report["churned_accounts"] == 1
    assert sum(row["count"] for row in report["calibration"]) == 4


def test_stability_spans_the_cutoffs_that_could_be_backtested():
    reports = [
        {"available": True, "auc": 0.7, "lift": 3.0},
        {"available": True, "auc": 0.6, "lift": None},
        {"available": False, "reason": "not enough churn history"},
    ]
    assert stability(reports) == {
        "cutoffs": 3,
        "available": 2,
        "auc": {"min": 0.6, "mean": 0.65, "max": 0.7},
        "lift": {"min": 3.0, "mean": 3.0, "max": 3.0},
    }
    assert stability(reports[2:])["auc"] is None
