import datetime as dt

import pandas as pd
import pytest

from health.churn.dataset import (
    churn_count,
    churn_dates,
    churn_labels,
    observation_dates,
    paying_spells,
)

D = dt.date


def periods(*rows):
    return pd.DataFrame(rows, columns=["account_id", "start_date", "end_date"])


def test_observation_dates_end_at_the_last_fully_observed_date_and_step_back():
    dates = observation_dates(
        first_day=D(2025, 1, 1), as_of=D(2025, 6, 30), horizon_days=90, step_days=14
    )
    assert dates[-1] == D(2025, 4, 1)  # as_of - 90 days
    assert dates[0] >= D(2025, 1, 1)
    assert all((b - a).days == 14 for a, b in zip(dates, dates[1:], strict=False))
    assert len(dates) == 7


def test_observation_dates_are_empty_when_history_is_shorter_than_the_horizon():
    assert observation_dates(first_day=D(2025, 5, 1), as_of=D(2025, 6, 30), horizon_days=90) == []


def test_an_upgrade_on_the_same_day_continues_the_paying_spell():
    spells = paying_spells(
        periods((1, D(2025, 1, 1), D(2025, 3, 1)), (1, D(2025, 3, 1), None)),
        known_at=D(2025, 12, 31),
    )
    assert len(spells) == 1
    assert pd.isna(spells.iloc[0]["spell_end"])


def test_a_gap_between_periods_ends_a_spell_and_the_return_starts_a_new_one():
    spells = paying_spells(
        periods((1, D(2025, 1, 1), D(2025, 3, 1)), (1, D(2025, 5, 1), D(2025, 8, 1))),
        known_at=D(2025, 12, 31),
    )
    assert list(spells["spell_end"]) == [pd.Timestamp(2025, 3, 1), pd.Timestamp(2025, 8, 1)]


def test_an_end_date_after_known_at_is_not_known_yet():
    spells = paying_spells(periods((1, D(2025, 1, 1), D(2025, 9, 1))), known_at=D(2025, 6, 1))
    assert pd.isna(spells.iloc[0]["spell_end"])


def test_periods_starting_after_known_at_do_not_exist_yet():
    spells = paying_spells(
        periods((1, D(2025, 1, 1), D(2025, 3, 1)), (1, D(2025, 7, 1), None)),
        known_at=D(2025, 6, 1),
    )
    assert len(spells) == 1 and spells.iloc[0]["spell_end"] == pd.Timestamp(2025, 3, 1)


def test_overlapping_periods_merge_into_one_spell_ending_at_the_latest_end():
    spells = paying_spells(
        periods((1, D(2025, 1, 1), D(2025, 6, 1)), (1, D(2025, 2, 1), D(2025, 4, 1))),
        known_at=D(2025, 12, 31),
    )
    assert list(spells["spell_end"]) == [pd.Timestamp(2025, 6, 1)]


def test_label_is_churned_only_when_the_spell_ends_inside_the_horizon():
    spells = paying_spells(
        periods(
            (1, D(2025, 1, 1), D(2025, 3, 15)),  # churns 73 days after obs
            (2, D(2025, 1, 1), D(2025, 6, 1)),  # churns 151 days after obs
            (3, D(2025, 1, 1), None),  # still paying
            (4, D(2025, 1, 1), D(2025, 4, 2)),  # exactly on the horizon's last day
        ),
        known_at=D(2025, 12, 31),
    )
    examples = pd.DataFrame({"account_id": [1, 2, 3, 4], "obs_date": [D(2025, 1, 1)] * 4})
    labels = churn_labels(examples, spells, horizon_days=91)
    assert list(labels) == [1, 0, 0, 1]


def test_a_churn_after_known_at_is_not_a_label():
    spells = paying_spells(periods((1, D(2025, 1, 1), D(2025, 3, 1))), known_at=D(2025, 2, 1))
    examples = pd.DataFrame({"account_id": [1], "obs_date": [D(2025, 1, 15)]})
    assert list(churn_labels(examples, spells, horizon_days=90)) == [0]


def test_churn_count_counts_each_churn_once_across_observation_dates():
    spells = paying_spells(
        periods((1, D(2025, 1, 1), D(2025, 3, 1)), (2, D(2025, 1, 1), None)),
        known_at=D(2025, 12, 31),
    )
    examples = pd.DataFrame(
        {"account_id": [1, 1, 2, 2], "obs_date": [D(2025, 1, 1), D(2025, 1, 15)] * 2}
    )
    labels = churn_labels(examples, spells, horizon_days=90)
    dates = churn_dates(examples, spells)
    assert list(labels) == [1, 1, 0, 0]
    assert churn_count(examples, labels, dates) == 1


def test_labels_follow_the_examples_index_whatever_it_is():
    spells = paying_spells(
        periods((1, D(2025, 1, 1), D(2025, 2, 1)), (2, D(2025, 1, 1), None)),
        known_at=D(2025, 12, 31),
    )
    examples = pd.DataFrame(
        {"account_id": [2, 1], "obs_date": [D(2025, 1, 10)] * 2}, index=[70, 30]
    )
    labels = churn_labels(examples, spells, horizon_days=90)
    assert labels.to_dict() == {70: 0, 30: 1}


def test_days_to_renewal_follows_the_billing_cycle_not_the_stored_renewal_date():
    from health.churn.dataset import days_to_renewal

    frame = pd.DataFrame(
        {
            "account_id": [1, 2, 3],
            "start_date": [D(2025, 1, 1), D(2024, 7, 1), D(2025, 1, 1)],
            "end_date": [None, D(2026, 1, 1), D(2025, 2, 1)],  # 3 ended before as_of
            "billing_period_months": [1, 12, 1],
        }
    )
    days = days_to_renewal(frame, as_of=D(2025, 3, 10))
    # Apr 1 and Jul 1, within the two days that averaging month lengths costs.
    assert sorted(days.index) == [1, 2]
    assert days[1] == pytest.approx(22, abs=2) and days[2] == pytest.approx(113, abs=2)


def test_usage_against_the_accounts_own_baseline_is_a_log_ratio_and_unknown_for_newcomers():
    import numpy as np

    from health.churn.dataset import with_baseline_ratios

    frame = pd.DataFrame(
        {
            "events_30": [9.0, 9.0, 5.0],
            "active_days_30": [4.0, 4.0, 1.0],
            "tenure_days": [400, 400, 50],
        },
        index=[1, 2, 3],
    )
    baseline = pd.DataFrame({"events": [57.0]}, index=[1])
    out = with_baseline_ratios(frame, baseline)
    assert out.loc[1, "usage_vs_baseline"] == pytest.approx(np.log(10 / 20))  # half as usual
    assert out.loc[2, "usage_vs_baseline"] == pytest.approx(np.log(10))  # no usage before
    assert np.isnan(out.loc[3, "usage_vs_baseline"])
