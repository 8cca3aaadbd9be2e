"""Why an account's churn risk is what it is: the features that raise or lower it most, in words.

An effect is the change in predicted risk (in probability) attributable to one feature, measured
against a typical account. For logistic regression it is exact: the feature's coefficient × its
standardised distance from the typical value, taken out of the log-odds. For gradient boosting
it is model-agnostic: the risk minus the risk with that feature set to its training median (or
most common level), one vectorised prediction per feature for the whole chunk.
"""

import numpy as np
import pandas as pd

from .models import LOGISTIC, ChurnPredictor, _logit, _sigmoid

# Feature name -> (words a CSM understands, how to show the value).
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "active_days_30": ("Active days in the last 30", "count"),
    "active_users_30": ("Active users in the last 30 days", "count"),
    "seats": ("Seats", "count"),
    "utilisation": ("Seat utilisation", "percent"),
    "breadth_30": ("Distinct features used in the last 30 days", "count"),
    "events_30": ("Events in the last 30 days", "count"),
    "events_prev_30": ("Events in the 30 days before", "count"),
    "usage_trend": ("Usage trend vs previous 30 days", "trend"),
    "days_since_last_activity": ("Days since last activity", "days"),
    "nps_180": ("NPS (last 180 days)", "number"),
    "nps_responses_180": ("NPS responses (last 180 days)", "count"),
    "usage_vs_baseline": ("Events in the last 30 days vs the account's usual", "ratio"),
    "tenure_days": ("Tenure", "days"),
    "mrr": ("MRR", "money"),
    "billing_period_months": ("Billing period", "months"),
    "days_to_renewal": ("Days to renewal", "days"),
    "segment": ("Segment", "level"),
    "industry": ("Industry", "level"),
}
MIN_EFFECT = 0.0005  # under 0.05 pts of risk is noise, not a reason


def effects(predictor: ChurnPredictor, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(risk per row, effect matrix rows × encoder.features) in probability units."""
    encoder = predictor.encoder
    matrix = encoder.transform(frame)
    risk = predictor.predict_encoded(matrix)
    features = encoder.features
    groups = np.array(encoder.groups)
    out = np.zeros((len(frame), len(features)))
    if not encoder.columns:
        return risk, out
    if predictor.algorithm == LOGISTIC:
        scaler = predictor.estimator.named_steps["scale"]
        coef = predictor.estimator.named_steps["model"].coef_[0]
        # Measured from the typical account (not the training mean), so an account at the
        # typical value of a feature gets no effect from it, as with gradient boosting.
        contributions = (matrix - encoder.reference_row()) / scaler.scale_ * coef
        logit = _logit(predictor.estimator.predict_proba(matrix)[:, 1])
        slope, intercept = predictor.platt or (1.0, 0.0)
        for j, name in enumerate(features):
            without = logit - contributions[:, groups == name].sum(axis=1)
            out[:, j] = risk - _sigmoid(slope * without + intercept)
    else:
        reference = encoder.reference_row()
        for j, name in enumerate(features):
            columns = groups == name
            replaced = matrix.copy()
            replaced[:, columns] = reference[columns]
            out[:, j] = risk - predictor.predict_encoded(replaced)
    return risk, out


def explain(predictor: ChurnPredictor, frame: pd.DataFrame, *, top: int = 5) -> list[list[dict]]:
    """Top drivers per row of `frame`, largest absolute effect first."""
    _, matrix = effects(predictor, frame)
    features = predictor.encoder.features
    explained = []
    for i, row in enumerate(frame.to_dict("records")):
        order = np.argsort(-np.abs(matrix[i]), kind="stable")[:top]
        explained.append(
            [
                driver(predictor, name, row.get(name), float(matrix[i, j]))
                for j, name in ((j, features[j]) for j in order)
                if abs(matrix[i, j]) >= MIN_EFFECT
            ]
        )
    return explained


def driver(predictor: ChurnPredictor, name: str, value, effect: float) -> dict:
    label, kind = feature_label(name)
    if name in predictor.encoder.categorical:
        kind = "level"
    typical = predictor.encoder.typical_value(name)
    direction = "raises" if effect > 0 else "lowers"
    points = round(abs(effect) * 100, 1)
    if kind == "level":
        shown = _level(value)
        text = f"{label} = {shown} (most common: {typical}) — {direction} risk by {points} pts"
    else:
        shown = format_value(value, kind)
        text = (
            f"{label} is {shown} (typical: {format_value(typical, kind)})"
            f" — {direction} risk by {points} pts"
        )
    return {
        "feature": name,
        "label": label,
        "value": _jsonable(value),
        "display_value": shown,
        "typical": _jsonable(typical),
        "direction": direction,
        "effect_pts": round(effect * 100, 2),
        "text": text,
    }


def feature_label(name: str) -> tuple[str, str]:
    if name in FEATURE_LABELS:
        return FEATURE_LABELS[name]
    if name.startswith("attr_"):
        return f"Attribute: {name[5:]}", "number"
    return name.replace("_", " ").capitalize(), "number"


def format_value(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unknown"
    if isinstance(value, str):
        return value
    value = float(value)
    if kind == "percent":
        return f"{value * 100:.0f}%"
    if kind == "ratio":  # stored as a log ratio
        return f"{(np.exp(value) - 1) * 100:+.0f}%"
    if kind == "trend":
        return f"{value * 100:+.0f}%"
    if kind == "money":
        return f"{value:,.0f}"
    if kind in ("days", "months"):
        unit = kind[:-1] if round(value) == 1 else kind
        return f"{value:.0f} {unit}"
    if kind == "count":
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _level(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return "(none)"
    return str(value)


def _jsonable(value):
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
