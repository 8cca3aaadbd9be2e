"""A scorecard definition is plain JSON (what a ScorecardVersion stores):

    {"scorecard_id": 1, "scorecard": "Default", "version": 3, "priority": 1000,
     "is_default": true, "match": {"segment": ["smb"], "tier": []},
     "grades": {"green": 70, "yellow": 40}, "sentiment_weight": 25,
     "measures": [{"name": "usage_frequency", "label": "...", "feature": "active_days_30",
                   "weight": 20, "mapping": "linear", "direction": "higher",
                   "low": 0, "high": 20, "thresholds": []}, ...]}

Weights are relative: a measure's share of the score is its weight over the sum of the weights
of the measures present for that account (plus the sentiment weight while an override is
active). `linear` maps low..high to 0..100 points (reversed when lower is better) and clips
outside; `thresholds` ([[bound, points], ...], ascending) gives the points of the highest bound
the value reaches, 0 below the first.
"""

import math
from typing import Any

__all__ = [
    "SENTIMENT_MEASURE",
    "definition_errors",
    "grade_for",
    "measure_errors",
    "sentiment_grade_points",
]

SENTIMENT_MEASURE = "csm_sentiment"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def measure_errors(measure: dict) -> dict[str, str]:
    """Field -> reason for one measure's settings; empty when it can be scored."""
    errors: dict[str, str] = {}
    if not measure.get("name"):
        errors["name"] = "A measure needs a name."
    elif measure["name"] == SENTIMENT_MEASURE:
        errors["name"] = f"'{SENTIMENT_MEASURE}' is reserved for the CSM sentiment override."
    if not measure.get("feature"):
        errors["feature"] = "Name the feature column this measure reads."
    if not _number(measure.get("weight")) or measure["weight"] < 0:
        errors["weight"] = "The weight must be a number of at least 0."
    mapping = measure.get("mapping")
    if mapping == "linear":
        low, high = measure.get("low"), measure.get("high")
        if not (_number(low) and _number(high)):
            errors["low"] = "A linear range needs both a low and a high value."
        elif low >= high:
            errors["high"] = "High must be greater than low (use the direction to reverse)."
        if measure.get("direction") not in ("higher", "lower"):
            errors["direction"] = "Direction must be 'higher' or 'lower'."
    elif mapping == "thresholds":
        reason = _thresholds_error(measure.get("thresholds"))
        if reason:
            errors["thresholds"] = reason
    else:
        errors["mapping"] = "Mapping must be 'linear' or 'thresholds'."
    return errors


def _thresholds_error(thresholds: Any) -> str | None:
    if not isinstance(thresholds, list) or not thresholds:
        return "Give at least one [bound, points] pair."
    for pair in thresholds:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            return "Each threshold is a [bound, points] pair."
        bound, points = pair
        if not (_number(bound) and _number(points)) or not 0 <= points <= 100:
            return "Bounds are numbers and points are between 0 and 100."
    bounds = [pair[0] for pair in thresholds]
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        return "Bounds must be strictly ascending."
    return None


def definition_errors(definition: dict) -> list[str]:
    """Readable problems with a whole definition; empty when it can be published."""
    problems = []
    grades = definition.get("grades", {})
    green, yellow = grades.get("green"), grades.get("yellow")
    if not (_number(green) and _number(yellow) and 0 <= yellow <= green <= 100):
        problems.append("Grade thresholds need 0 <= yellow <= green <= 100.")
    weight = definition.get("sentiment_weight")
    if not _number(weight) or weight < 0:
        problems.append("The sentiment weight must be a number of at least 0.")
    measures = definition.get("measures", [])
    if not measures:
        problems.append("A scorecard needs at least one measure.")
    names = [m.get("name") for m in measures]
    if len(set(names)) != len(names):
        problems.append("Measure names must be unique within a scorecard.")
    for measure in measures:
        for field, reason in measure_errors(measure).items():
            problems.append(f"Measure '{measure.get('name', '?')}', {field}: {reason}")
    if measures and not any(_number(m.get("weight")) and m["weight"] > 0 for m in measures):
        problems.append("At least one measure needs a weight above 0.")
    return problems


def grade_for(score: float, grades: dict) -> str:
    if score is None or math.isnan(score):
        return "none"
    if score >= grades["green"]:
        return "green"
    if score >= grades["yellow"]:
        return "yellow"
    return "red"


def sentiment_grade_points(grade: str, grades: dict) -> float:
    """A CSM's grade becomes the middle of that grade's band on this scorecard, so 'green'
    always lands in green territory whatever the thresholds are."""
    green, yellow = float(grades["green"]), float(grades["yellow"])
    bands = {"green": (green + 100.0) / 2, "yellow": (yellow + green) / 2, "red": yellow / 2}
    return bands[grade]
