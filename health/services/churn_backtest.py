"""Backtesting a churn model: trained only on what was known at a cut-off, scored at the cut-off,
compared with who actually churned in the horizon after it (numbers in health.churn.backtest)."""

import datetime as dt

import numpy as np
import pandas as pd
from django.db.models import Min

from health.churn import backtest as metrics
from health.churn import dataset
from health.churn.models import ChurnPredictor, select_and_fit
from health.models import HealthScore
from health.services.churn_data import (
    OBSERVATION_STEP_DAYS,
    churn_feature_frame,
    churn_min_churns,
    subscription_periods,
)

# The backtest is repeated at this many earlier cut-offs, this far apart (a multiple of the
# observation step, so each cut-off is an observation date).
EARLIER_CUTOFFS = 2
EARLIER_CUTOFF_SPACING_DAYS = 2 * OBSERVATION_STEP_DAYS
LEAD_TIME_STEP_DAYS = 7


def churn_backtest(
    *,
    examples: pd.DataFrame,
    labels: pd.Series,
    dates: pd.Series,
    as_of: dt.date,
    horizon_days: int,
) -> dict:
    """Train on examples whose label windows end by the cut-off (as_of − horizon), score the
    accounts paying at the cut-off, compare with who churned in the horizon after it. The same
    is repeated at EARLIER_CUTOFFS earlier cut-offs (each with its own model) under
    `earlier_cutoffs`, with the spread of AUC and lift across all of them under `stability`:
    one cut-off's few dozen churners make a noisy AUC, and a manager should see how much."""
    cutoff = as_of - dt.timedelta(days=horizon_days)
    model, report = _backtest_at(examples, labels, dates, cutoff=cutoff, horizon_days=horizon_days)
    if model is None:
        return report
    predictor, predicted, test = model
    report.update(
        _lead_time(
            predictor=predictor,
            scored=examples.loc[test, "account_id"].to_numpy(),
            predicted=predicted,
            cutoff=cutoff,
            as_of=as_of,
        )
    )
    earlier = [
        _backtest_at(
            examples,
            labels,
            dates,
            cutoff=cutoff - dt.timedelta(days=k * EARLIER_CUTOFF_SPACING_DAYS),
            horizon_days=horizon_days,
        )[1]
        for k in range(1, EARLIER_CUTOFFS + 1)
    ]
    report["earlier_cutoffs"] = [_summary(r) for r in earlier]
    report["stability"] = metrics.stability([report, *earlier])
    return report


def _backtest_at(
    examples: pd.DataFrame,
    labels: pd.Series,
    dates: pd.Series,
    *,
    cutoff: dt.date,
    horizon_days: int,
) -> tuple[tuple | None, dict]:
    """((model, predictions, test mask) or None, report) of one cut-off."""
    obs = pd.to_datetime(examples["obs_date"])
    train = (obs + pd.Timedelta(days=horizon_days) <= pd.Timestamp(cutoff)).to_numpy()
    test = (obs == pd.Timestamp(cutoff)).to_numpy()
    base = {"cutoff": cutoff.isoformat(), "horizon_days": horizon_days}
    churns = dataset.churn_count(examples[train], labels[train], dates[train])
    need = churn_min_churns()
    if churns < need or not test.any() or labels[train].nunique() < 2:
        reason = f"not enough churn history before the cut-off: {churns} churns, need {need}"
        return None, {**base, "available": False, "reason": reason}
    frame = examples.drop(columns=["account_id", "obs_date"])
    predictor, _ = select_and_fit(
        frame[train],
        labels[train].to_numpy(),
        examples.loc[train, "obs_date"],
        horizon_days=horizon_days,
    )
    predicted = predictor.predict(frame[test])
    report = metrics.backtest_report(labels[test].to_numpy(), predicted)
    report.update(base)
    report.update(available=True, algorithm=predictor.algorithm, training_examples=int(train.sum()))
    report["training_churns"] = churns
    return (predictor, predicted, test), report


def _summary(report: dict) -> dict:
    keys = ["cutoff", "available", "reason", "auc", "lift", "brier"]
    return {k: report[k] for k in [*keys, "scored_accounts", "churned_accounts"] if k in report}


def _lead_time(
    *,
    predictor: ChurnPredictor,
    scored: np.ndarray,
    predicted: np.ndarray,
    cutoff: dt.date,
    as_of: dt.date,
) -> dict:
    """Median days between an account first being flagged (risk at or above the cut-off's
    top-decile threshold in weekly re-scorings, or a red health grade) and its churn."""
    threshold = metrics.top_decile_threshold(predicted)
    flagged = {
        int(a): pd.Timestamp(cutoff)
        for a, p in zip(scored, predicted, strict=True)
        if p >= threshold
    }
    periods = subscription_periods(as_of)
    day = cutoff + dt.timedelta(days=LEAD_TIME_STEP_DAYS)
    while day < as_of:
        frame = churn_feature_frame(as_of=day, account_ids=list(scored))
        if len(frame):
            risk = predictor.predict(frame)
            for account_id in frame.index[risk >= threshold]:
                flagged.setdefault(int(account_id), pd.Timestamp(day))
        day += dt.timedelta(days=LEAD_TIME_STEP_DAYS)
    spells = dataset.paying_spells(periods, known_at=as_of)
    at_cutoff = pd.DataFrame({"account_id": scored, "obs_date": cutoff})
    ends = dataset.churn_dates(at_cutoff, spells)
    window_end = pd.Timestamp(as_of)
    churn = pd.Series(ends.to_numpy(), index=scored)
    churn = churn[churn.notna() & (churn <= window_end)]
    by_risk = pd.Series(flagged, dtype="datetime64[ns]")
    red = _first_red(list(churn.index), cutoff, as_of)
    combined = pd.concat([by_risk, red], axis=1).min(axis=1) if len(red) else by_risk
    return {
        "lead_time_days": metrics.median_lead_time(combined, churn),
        "lead_time_days_risk_only": metrics.median_lead_time(by_risk, churn),
        "flag_threshold": round(threshold, 4),
        "flagged_churners": int(len(metrics.lead_times(combined, churn))),
        "red_grade_history": bool(len(red)),
    }


def _first_red(account_ids: list[int], cutoff: dt.date, as_of: dt.date) -> pd.Series:
    rows = (
        HealthScore.objects.filter(
            account_id__in=account_ids, as_of__gte=cutoff, as_of__lte=as_of, grade="red"
        )
        .values("account_id")
        .order_by()
        .annotate(first=Min("as_of"))
        .values_list("account_id", "first")
    )
    data = dict(rows)
    return pd.Series({k: pd.Timestamp(v) for k, v in data.items()}, dtype="datetime64[ns]")
