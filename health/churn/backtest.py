"""Backtest metrics: how well risk scored at a cut-off date predicted who churned after it.

Plain numpy/pandas on arrays of predicted probabilities and observed outcomes (0/1)."""

import math

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def auc_score(labels, predicted) -> float | None:
    """Area under the ROC curve; None when only one outcome occurred (it is undefined)."""
    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0 or labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, np.asarray(predicted, dtype=float)))


def brier_score(labels, predicted) -> float:
    """Mean squared difference between predicted probability and outcome (lower is better)."""
    labels = np.asarray(labels, dtype=float)
    if len(labels) == 0:
        return float("nan")
    return float(np.mean((np.asarray(predicted, dtype=float) - labels) ** 2))


def top_decile(predicted) -> np.ndarray:
    """Mask of the riskiest 10% (at least one account); ties broken by position, stably."""
    predicted = np.asarray(predicted, dtype=float)
    size = max(1, math.ceil(len(predicted) * 0.1))
    order = np.argsort(-predicted, kind="stable")[:size]
    mask = np.zeros(len(predicted), bool)
    mask[order] = True
    return mask


def top_decile_lift(labels, predicted) -> float | None:
    """Churn rate among the riskiest 10% ÷ churn rate of all scored accounts."""
    labels = np.asarray(labels, dtype=float)
    if len(labels) == 0 or labels.mean() == 0:
        return None
    return float(labels[top_decile(predicted)].mean() / labels.mean())


def top_decile_threshold(predicted) -> float:
    """The lowest probability inside the top decile: re-scorings at or above it count as flagged."""
    predicted = np.asarray(predicted, dtype=float)
    return float(predicted[top_decile(predicted)].min())


def calibration_table(labels, predicted, *, bins: int = 10) -> list[dict]:
    """Equal-count bins of predicted probability: mean predicted, observed churn rate, count."""
    labels = np.asarray(labels, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if len(labels) == 0:
        return []
    order = np.argsort(predicted, kind="stable")
    table = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk) == 0:
            continue
        table.append(
            {
                "predicted": round(float(predicted[chunk].mean()), 4),
                "observed": round(float(labels[chunk].mean()), 4),
                "count": int(len(chunk)),
            }
        )
    return table


def lead_times(first_flagged: pd.Series, churn_dates: pd.Series) -> pd.Series:
    """Days from an account's first flag to its churn, for churned accounts flagged before their
    churn date. Both series are indexed by account; missing values mean never flagged/churned."""
    frame = pd.DataFrame({"flag": first_flagged, "churn": churn_dates}).dropna()
    frame = frame[frame["flag"] < frame["churn"]]
    days = (pd.to_datetime(frame["churn"]) - pd.to_datetime(frame["flag"])).dt.days
    return days.astype(int)


def median_lead_time(first_flagged: pd.Series, churn_dates: pd.Series) -> float | None:
    days = lead_times(first_flagged, churn_dates)
    return float(days.median()) if len(days) else None


def backtest_report(labels, predicted) -> dict:
    """Everything about the cut-off scoring except lead time (which needs re-scorings)."""
    labels = np.asarray(labels, dtype=int)
    predicted = np.asarray(predicted, dtype=float)
    auc = auc_score(labels, predicted)
    lift = top_decile_lift(labels, predicted)
    return {
        "auc": None if auc is None else round(auc, 4),
        "lift": None if lift is None else round(lift, 3),
        "brier": round(brier_score(labels, predicted), 5) if len(labels) else None,
        "calibration": calibration_table(labels, predicted),
        "base_rate": round(float(labels.mean()), 4) if len(labels) else None,
        "mean_predicted": round(float(predicted.mean()), 4) if len(labels) else None,
        "scored_accounts": int(len(labels)),
        "churned_accounts": int(labels.sum()),
    }


def stability(reports: list[dict]) -> dict:
    """AUC and lift across backtests at several cut-offs: how many could be run, and the
    lowest, mean and highest of each (None when no cut-off had the value)."""
    available = [r for r in reports if r.get("available")]
    out = {"cutoffs": len(reports), "available": len(available)}
    for key in ("auc", "lift"):
        values = [r[key] for r in available if r.get(key) is not None]
        out[key] = (
            {
                "min": round(min(values), 4),
                "mean": round(float(np.mean(values)), 4),
                "max": round(max(values), 4),
            }
            if values
            else None
        )
    return out
