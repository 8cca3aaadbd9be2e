"""Why an account's churn risk is what it is: the features that raise or lower it most, in words.

An effect is the change in predicted risk (in probability) attributable to one feature, measured
against a typical account. For logistic regression it is exact: the feature's coefficient × its
standardised distance from the typical value, taken out of the log-odds. For gradient boosting
it is model-agnostic: the risk minus the risk with that feature set to its training median (or
most common level), all features' perturbed copies scored in one vectorised prediction.
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
        out[:] = risk[:, None] - _risk_with_typical_values(
            predictor, matrix, risk, features, groups
        )
    return risk, out


def _risk_with_typical_values(
    predictor: ChurnPredictor,
    matrix: np.ndarray,
    risk: np.ndarray,
    features: list[str],
    groups: np.ndarray,
) -> np.ndarray:
    """Risk per (row, feature) with that feature set to its typical value. Only the copies that
    differ from the row are scored (a feature already at its typical value, or never split on,
    leaves the risk exactly as it is), through the model in one call, or tree by tree when the
    ensemble allows it (see _TreeEnsemble)."""
    reference = predictor.encoder.reference_row()
    out = np.repeat(risk[:, None], len(features), axis=1)
    trees = _TreeEnsemble.of(predictor, matrix, risk)
    used = trees.used if trees else np.ones(matrix.shape[1], dtype=bool)
    blocks, places = [], []
    for j, name in enumerate(features):
        columns = groups == name
        rows = np.flatnonzero((matrix[:, columns & used] != reference[columns & used]).any(axis=1))
        if len(rows):
            block = matrix[rows]
            block[:, columns] = reference[columns]
            blocks.append(block)
            places.append((rows, j, np.flatnonzero(columns)))
    if trees:
        for block, (rows, j, columns) in zip(blocks, places, strict=True):
            out[rows, j] = trees.risk_with(block, rows, columns)
    elif blocks:
        predicted = predictor.predict_encoded(np.vstack(blocks))
        offset = 0
        for rows, j, _ in places:
            out[rows, j] = predicted[offset : offset + len(rows)]
            offset += len(rows)
    return out


class _TreeEnsemble:
    """A binary gradient-boosted model's trees, evaluated once per row; a feature's perturbed
    copy then re-runs only the trees that split on that feature (a tree of 8 leaves uses a few
    of ~50 columns), and sums the trees in the model's own order, so the risk is bit-for-bit
    what predict_proba gives. Built only when the scikit-learn internals it reads are as
    expected and reproduce the model's risk; otherwise callers use predict_proba."""

    @classmethod
    def of(cls, predictor: ChurnPredictor, matrix: np.ndarray, risk: np.ndarray):
        try:
            if predictor.algorithm == LOGISTIC or predictor.estimator._preprocessor is not None:
                return None
            ensemble = cls(predictor, matrix)
            return ensemble if np.array_equal(ensemble.risk(ensemble.leaves), risk) else None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            return None

    def __init__(self, predictor: ChurnPredictor, matrix: np.ndarray):
        estimator = self.estimator = predictor.estimator
        self.predictor = predictor
        self.trees = [tree for (tree,) in estimator._predictors]  # one tree per round: binary
        self.bitsets = estimator._bin_mapper.make_known_categories_bitsets()
        # splits[i, c]: tree i splits on encoded column c.
        self.splits = np.zeros((len(self.trees), matrix.shape[1]), dtype=bool)
        for i, tree in enumerate(self.trees):
            self.splits[i, tree.nodes["feature_idx"][~tree.nodes["is_leaf"].astype(bool)]] = True
        self.used = self.splits.any(axis=0)
        data = estimator._preprocess_X(matrix, reset=False)
        self.leaves = np.column_stack([t.predict(data, *self.bitsets, 1) for t in self.trees])

    def risk(self, leaves: np.ndarray) -> np.ndarray:
        raw = np.zeros((len(leaves), 1), dtype=self.estimator._baseline_prediction.dtype)
        raw += self.estimator._baseline_prediction
        for i in range(leaves.shape[1]):
            raw[:, 0] += leaves[:, i]
        return self.predictor.calibrate(self.estimator._loss.predict_proba(raw)[:, 1])

    def risk_with(self, block: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        leaves = self.leaves[rows]
        data = self.estimator._preprocess_X(block, reset=False)
        for i in np.flatnonzero(self.splits[:, columns].any(axis=1)):
            leaves[:, i] = self.trees[i].predict(data, *self.bitsets, 1)
        return self.risk(leaves)


def explain(predictor: ChurnPredictor, frame: pd.DataFrame, *, top: int = 5) -> list[list[dict]]:
    """Top drivers per row of `frame`, largest absolute effect first."""
    return risk_and_drivers(predictor, frame, top=top)[1]


def risk_and_drivers(
    predictor: ChurnPredictor, frame: pd.DataFrame, *, top: int = 5
) -> tuple[np.ndarray, list[list[dict]]]:
    """(risk per row, top drivers per row): the risk comes out of the effects computation, so
    scoring a chunk runs the model once for the risk and once for all drivers."""
    risk, matrix = effects(predictor, frame)
    features = predictor.encoder.features
    order = np.argsort(-np.abs(matrix), axis=1, kind="stable")[:, :top]
    # Only the features that can be a driver are read back row by row.
    values = {
        name: frame[name].tolist() if name in frame else [None] * len(frame)
        for name in {features[j] for j in np.unique(order)}
    }
    explained = []
    for i in range(len(frame)):
        explained.append(
            [
                driver(predictor, features[j], values[features[j]][i], float(matrix[i, j]))
                for j in order[i].tolist()
                if abs(matrix[i, j]) >= MIN_EFFECT
            ]
        )
    return risk, explained


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
