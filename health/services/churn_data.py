"""The churn model's training data, read from the business's own history: one feature frame per
observation date (health.features.account_feature_frame, set-based), labelled by whether the
account churned within the horizon after it, using only what was known at the as-of date."""

import datetime as dt

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Min

from accounts.models import DailyUsage, Subscription
from health.churn import dataset
from health.features import BASELINE_COLUMN, account_feature_frame

OBSERVATION_STEP_DAYS = 14
# Usage windows reach this far back (the baseline: 90 days before the last 30): observation
# dates start once the usage history covers them, or every early date would look like growth.
USAGE_WARMUP_DAYS = dataset.RECENT_DAYS + dataset.BASELINE_DAYS


def churn_min_churns() -> int:
    return settings.CHURN_MIN_CHURNS


def training_examples(
    *, as_of: dt.date, horizon_days: int
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(examples with account_id, obs_date and features; labels; churn dates) for every
    observation date whose label window closes by as_of. Labels use subscriptions as known at
    as_of; each date's features use only data up to that date."""
    first_day = _history_start(as_of)
    if first_day is None:
        empty = pd.DataFrame(columns=["account_id", "obs_date"])
        return empty, pd.Series(dtype=int), pd.Series(dtype="datetime64[ns]")
    dates = dataset.observation_dates(
        first_day=first_day, as_of=as_of, horizon_days=horizon_days, step_days=OBSERVATION_STEP_DAYS
    )
    sample = _training_sample(as_of)
    periods = subscription_periods(as_of)
    frames = [_dated_frame(day, sample) for day in dates]
    frames = [f for f in frames if len(f)]
    if not frames:
        empty = pd.DataFrame(columns=["account_id", "obs_date"])
        return empty, pd.Series(dtype=int), pd.Series(dtype="datetime64[ns]")
    examples = pd.concat(frames, ignore_index=True)
    spells = dataset.paying_spells(periods, known_at=as_of)
    labels = dataset.churn_labels(examples, spells, horizon_days=horizon_days)
    return examples, labels, dataset.churn_dates(examples, spells)


def _history_start(as_of: dt.date) -> dt.date | None:
    first_start = Subscription.objects.filter(start_date__lte=as_of).aggregate(d=Min("start_date"))
    first_usage = DailyUsage.objects.filter(day__lte=as_of).aggregate(d=Min("day"))
    if first_start["d"] is None:
        return None
    if first_usage["d"] is None:
        return first_start["d"]
    return max(first_start["d"], first_usage["d"] + dt.timedelta(days=USAGE_WARMUP_DAYS))


def _training_sample(as_of: dt.date) -> list[int] | None:
    """All accounts, or a fixed random subset when there are more than CHURN_MAX_TRAINING_ACCOUNTS
    (training cost grows with accounts × observation dates; a few tens of thousands suffice)."""
    limit = settings.CHURN_MAX_TRAINING_ACCOUNTS
    ids = np.array(
        Subscription.objects.filter(start_date__lte=as_of)
        .order_by("account_id")
        .values_list("account_id", flat=True)
        .distinct()
    )
    if len(ids) <= limit:
        return None
    return sorted(int(i) for i in np.random.default_rng(0).choice(ids, size=limit, replace=False))


def churn_feature_frame(*, as_of: dt.date, account_ids: list[int] | None) -> pd.DataFrame:
    """The shared account feature frame plus usage against the account's own usual level."""
    frame = account_feature_frame(as_of=as_of, account_ids=account_ids, usage_baseline=True)
    return with_usage_baseline(frame)


def with_usage_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    baseline = frame[[BASELINE_COLUMN]].rename(columns={BASELINE_COLUMN: "events"})
    return dataset.with_baseline_ratios(frame.drop(columns=BASELINE_COLUMN), baseline)


def _dated_frame(day: dt.date, account_ids: list[int] | None) -> pd.DataFrame:
    frame = churn_feature_frame(as_of=day, account_ids=account_ids)
    frame = frame.reset_index()
    frame.insert(1, "obs_date", pd.Timestamp(day))
    return frame


def subscription_periods(as_of: dt.date, account_ids: list[int] | None = None) -> pd.DataFrame:
    rows = Subscription.objects.filter(start_date__lte=as_of)
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    return pd.DataFrame.from_records(
        list(rows.values_list("account_id", "start_date", "end_date", "billing_period_months")),
        columns=["account_id", "start_date", "end_date", "billing_period_months"],
    )
