"""The pure scoring code, with small frames and hand-computed numbers; no database."""

import math

import numpy as np
import pandas as pd
import pytest

from health.scoring.changes import snapshot_changes
from health.scoring.definition import definition_errors, measure_errors
from health.scoring.engine import measure_points, measures_render, score_frame
from health.scoring.matching import assign_scorecards


def explained(scored, definition: dict) -> dict[int, list[dict]]:
    """The measures as a snapshot shows them: stored parts rendered with the definition."""
    rows = scored.parts()
    return {
        account_id: measures_render(definition, rows[i])
        for i, account_id in enumerate(scored.totals.index.tolist())
    }


def definition(**overrides) -> dict:
    base = {
        "scorecard": "Test",
        "grades": {"green": 70, "yellow": 40},
        "sentiment_weight": 25,
        "measures": [
            {
                "name": "freq",
                "label": "Frequency",
                "feature": "active_days_30",
                "weight": 50,
                "mapping": "linear",
                "direction": "higher",
                "low": 0,
                "high": 20,
            },
            {
                "name": "recency",
                "label": "Recency",
                "feature": "days_since_last_activity",
                "weight": 30,
                "mapping": "linear",
                "direction": "lower",
                "low": 0,
                "high": 30,
            },
            {
                "name": "nps",
                "label": "NPS",
                "feature": "nps_180",
                "weight": 20,
                "mapping": "thresholds",
                "thresholds": [[-100, 0], [0, 50], [30, 100]],
            },
        ],
    }
    base.update(overrides)
    return base


def frame(rows: dict) -> pd.DataFrame:
    f = pd.DataFrame.from_dict(rows, orient="index")
    f.index.name = "account_id"
    return f


def test_linear_points_clip_and_reverse_for_lower_is_better():
    values = pd.Series([-5, 0, 10, 20, 40, np.nan])
    up = measure_points(values, {"mapping": "linear", "direction": "higher", "low": 0, "high": 20})
    assert up.tolist()[:5] == [0, 0, 50, 100, 100]
    assert math.isnan(up.iloc[5])
    down = measure_points(values, {"mapping": "linear", "direction": "lower", "low": 0, "high": 20})
    assert down.tolist()[:5] == [100, 100, 50, 0, 0]


def test_threshold_points_take_the_highest_bound_reached():
    measure = {"mapping": "thresholds", "thresholds": [[-100, 0], [0, 50], [30, 100]]}
    points = measure_points(pd.Series([-101, -100, -1, 0, 29.9, 30, 100, np.nan]), measure)
    assert points.tolist()[:7] == [0, 0, 0, 50, 50, 100, 100]
    assert math.isnan(points.iloc[7])


def test_scores_are_the_hand_computed_weighted_sums():
    features = frame(
        {
            1: {"active_days_30": 10, "days_since_last_activity": 3, "nps_180": 40},
            2: {"active_days_30": 20, "days_since_last_activity": 0, "nps_180": -20},
        }
    )
    scored = score_frame(features, definition())
    # account 1: 50 pts * 50% + 90 pts * 30% + 100 pts * 20% = 25 + 27 + 20 = 72
    # account 2: 100 * 50% + 100 * 30% + 0 * 20% = 80
    assert scored.totals.loc[1, "score"] == pytest.approx(72.0)
    assert scored.totals.loc[2, "score"] == pytest.approx(80.0)
    assert scored.totals["grade"].tolist() == ["green", "green"]
    measures = explained(scored, definition())[1]
    recency = next(m for m in measures if m["name"] == "recency")
    assert recency == {
        "name": "recency",
        "label": "Recency",
        "raw_value": 3.0,
        "points": 90.0,
        "weight": 30.0,
        "base_weight": 30.0,
        "contribution": 27.0,
        "missing": False,
    }
    # No override: the sentiment measure is shown, missing, with no weight.
    sentiment = next(m for m in measures if m["name"] == "csm_sentiment")
    assert sentiment["missing"] is True and sentiment["weight"] == 0


def test_missing_measures_weight_is_redistributed_visibly():
    features = frame({1: {"active_days_30": 10, "days_since_last_activity": 6, "nps_180": np.nan}})
    scored = score_frame(features, definition())
    by_name = {m["name"]: m for m in explained(scored, definition())[1]}
    # freq and recency share 100%: 50/80 = 62.5%, 30/80 = 37.5%
    assert by_name["freq"]["weight"] == 62.5
    assert by_name["recency"]["weight"] == 37.5
    assert by_name["nps"] == {
        "name": "nps",
        "label": "NPS",
        "raw_value": None,
        "points": None,
        "weight": 0.0,
        "base_weight": 20.0,
        "contribution": 0.0,
        "missing": True,
    }
    # 50 * .625 + 80 * .375 = 31.25 + 30 = 61.25
    assert scored.totals.loc[1, "score"] == pytest.approx(61.25)
    assert scored.totals.loc[1, "grade"] == "yellow"


def test_a_feature_column_the_frame_lacks_counts_as_missing():
    d = definition()
    d["measures"].append(
        {
            "name": "size",
            "feature": "attr_size",
            "weight": 100,
            "mapping": "linear",
            "direction": "higher",
            "low": 0,
            "high": 10,
        }
    )
    features = frame({1: {"active_days_30": 20, "days_since_last_activity": 0, "nps_180": 50}})
    scored = score_frame(features, d)
    assert scored.totals.loc[1, "score"] == 100
    assert scored.missing.loc[1, "size"]


def test_all_measures_missing_gives_no_score_not_a_number():
    features = frame(
        {1: {"active_days_30": np.nan, "days_since_last_activity": np.nan, "nps_180": np.nan}}
    )
    scored = score_frame(features, definition())
    assert math.isnan(scored.totals.loc[1, "score"])
    assert scored.totals.loc[1, "grade"] == "none"


def test_sentiment_override_enters_as_its_own_measure():
    features = frame(
        {
            1: {"active_days_30": 20, "days_since_last_activity": 0, "nps_180": 50},
            2: {"active_days_30": 20, "days_since_last_activity": 0, "nps_180": 50},
        }
    )
    overrides = pd.DataFrame({"grade": ["red"], "points": [np.nan]}, index=[1])
    scored = score_frame(features, definition(), overrides)
    # red = middle of 0..40 = 20 points, weight 25 of 125 = 20%: 100 * 0.8 + 20 * 0.2 = 84
    assert scored.totals.loc[1, "score"] == pytest.approx(84.0)
    assert scored.totals.loc[2, "score"] == pytest.approx(100.0)
    sentiment = explained(scored, definition())[1][-1]
    assert sentiment["label"] == "CSM sentiment"
    assert sentiment["raw_value"] == "red"
    assert sentiment["points"] == 20.0 and sentiment["weight"] == 20.0


def test_override_with_points_alone_can_score_an_account_without_data():
    features = frame(
        {1: {"active_days_30": np.nan, "days_since_last_activity": np.nan, "nps_180": np.nan}}
    )
    overrides = pd.DataFrame({"grade": [""], "points": [35.0]}, index=[1])
    scored = score_frame(features, definition(), overrides)
    assert scored.totals.loc[1, "score"] == 35.0
    assert scored.totals.loc[1, "grade"] == "red"


def test_contributions_always_add_up_to_the_score():
    rng = np.random.default_rng(7)
    features = frame(
        {
            i: {
                "active_days_30": rng.uniform(0, 30),
                "days_since_last_activity": rng.choice([np.nan, rng.uniform(0, 60)]),
                "nps_180": rng.choice([np.nan, rng.uniform(-100, 100)]),
            }
            for i in range(200)
        }
    )
    scored = score_frame(features, definition())
    for account_id, measures in explained(scored, definition()).items():
        total = sum(m["contribution"] for m in measures)
        assert total == pytest.approx(scored.totals.loc[account_id, "score"], abs=1e-9)
        assert sum(m["weight"] for m in measures) == pytest.approx(100, abs=0.05)


def test_scorecards_match_by_segment_in_priority_order_with_a_default():
    features = frame({1: {"segment": "enterprise"}, 2: {"segment": "smb"}, 3: {"segment": ""}})
    definitions = [
        {"scorecard": "Default", "is_default": True, "priority": 1, "match": {}},
        {"scorecard": "Big", "priority": 10, "match": {"segment": ["enterprise", "mid"]}},
        {"scorecard": "Also big", "priority": 20, "match": {"segment": ["enterprise"]}},
        {"scorecard": "Tiered", "priority": 5, "match": {"segment": ["smb"], "tier": ["high"]}},
    ]
    chosen = assign_scorecards(features, definitions)
    # Tier is not in the frame yet, so "Tiered" matches nobody; smb falls to the default.
    assert chosen.to_dict() == {1: 1, 2: 0, 3: 0}


def test_without_a_default_unmatched_accounts_are_left_unscored():
    features = frame({1: {"segment": "enterprise"}, 2: {"segment": "smb"}})
    chosen = assign_scorecards(
        features, [{"scorecard": "Big", "match": {"segment": ["enterprise"]}}]
    )
    assert chosen.to_dict() == {1: 0}


def test_definition_errors_name_the_problem():
    assert definition_errors(definition()) == []
    bad = definition(grades={"green": 30, "yellow": 60})
    bad["measures"][0]["high"] = -1
    problems = definition_errors(bad)
    assert any("Grade thresholds" in p for p in problems)
    assert any("'freq', high" in p for p in problems)
    assert "thresholds" in measure_errors(
        {
            "name": "x",
            "feature": "f",
            "weight": 1,
            "mapping": "thresholds",
            "thresholds": [[5, 1], [1, 2]],
        }
    )
    assert "name" in measure_errors(
        {
            "name": "csm_sentiment",
            "feature": "f",
            "weight": 1,
            "mapping": "linear",
            "low": 0,
            "high": 1,
            "direction": "higher",
        }
    )


def test_changes_compare_two_snapshots_measure_by_measure():
    before = {
        "as_of": "2025-06-01",
        "score": 60.0,
        "grade": "yellow",
        "measures": [
            {
                "name": "freq",
                "label": "Frequency",
                "points": 50.0,
                "contribution": 25.0,
                "missing": False,
            },
            {
                "name": "nps",
                "label": "NPS",
                "points": 100.0,
                "contribution": 35.0,
                "missing": False,
            },
        ],
    }
    after = {
        "as_of": "2025-06-30",
        "score": 75.0,
        "grade": "green",
        "measures": [
            {
                "name": "freq",
                "label": "Frequency",
                "points": 100.0,
                "contribution": 50.0,
                "missing": False,
            },
            {
                "name": "nps",
                "label": "NPS",
                "points": 100.0,
                "contribution": 25.0,
                "missing": False,
            },
        ],
    }
    changes = snapshot_changes(before, after)
    assert changes["score_delta"] == 15.0
    assert [m["name"] for m in changes["measures"]] == ["freq", "nps"]
    assert changes["measures"][0]["points_delta"] == 50.0
    assert changes["measures"][0]["contribution_delta"] == 25.0
    assert changes["measures"][1]["contribution_delta"] == -10.0
