"""Churn training examples: observation dates, paying spells and churn labels.

Plain pandas, no ORM. A *paying spell* is a run of subscription periods with no gap between them
(an upgrade ends one row and starts the next on the same day); the spell's end is a churn. What
counts as known is always relative to a `known_at` date: periods that start after it do not exist
yet, and end dates after it are not known yet (the period is still running then).
"""

import datetime as dt

import numpy as np
import pandas as pd

SPELL_COLUMNS = ["account_id", "spell_start", "spell_end"]
DAYS_PER_MONTH = 365.25 / 12
RECENT_DAYS = 30
BASELINE_DAYS = 90


def observation_dates(
    *, first_day: dt.date, as_of: dt.date, horizon_days: int, step_days: int = 14
) -> list[dt.date]:
    """Every `step_days` back from as_of − horizon (the last date whose label is fully observed
    by as_of) to first_day, oldest first. Anchoring at the end makes the newest observation date
    the backtest cut-off, so the backtest reuses the training frames."""
    if step_days < 1 or horizon_days < 1:
        raise ValueError("step_days and horizon_days must be positive")
    last = as_of - dt.timedelta(days=horizon_days)
    dates = []
    day = last
    while day >= first_day:
        dates.append(day)
        day -= dt.timedelta(days=step_days)
    return sorted(dates)


def paying_spells(periods: pd.DataFrame, *, known_at: dt.date) -> pd.DataFrame:
    """Merge subscription periods (account_id, start_date, end_date; end exclusive) into paying
    spells as known at `known_at`. spell_end is NaT while the spell is still running then."""
    if periods.empty:
        return pd.DataFrame(columns=SPELL_COLUMNS).astype(
            {"spell_start": "datetime64[ns]", "spell_end": "datetime64[ns]"}
        )
    known = pd.Timestamp(known_at)
    frame = pd.DataFrame(
        {
            "account_id": periods["account_id"].to_numpy(),
            "start": _ns(periods["start_date"]),
            "end": _ns(periods["end_date"]),
        }
    )
    frame = frame[frame["start"] <= known]
    # An end after known_at has not happened yet: the period is still running at known_at.
    frame.loc[frame["end"] > known, "end"] = pd.NaT
    frame = frame[frame["end"].isna() | (frame["end"] > frame["start"])]
    # Open periods sort as ending at +infinity so the running maximum carries them.
    frame["end_key"] = frame["end"].fillna(pd.Timestamp.max)
    frame = frame.sort_values(["account_id", "start", "end_key"]).reset_index(drop=True)
    reach = frame.groupby("account_id")["end_key"].cummax()
    previous_reach = reach.groupby(frame["account_id"]).shift()
    # A new spell starts when an account's period begins after everything before it had ended.
    new_spell = previous_reach.isna() | (frame["start"] > previous_reach)
    frame["spell"] = new_spell.cumsum()
    frame["reach"] = reach
    spells = frame.groupby("spell").agg(
        account_id=("account_id", "first"), spell_start=("start", "min"), spell_end=("reach", "max")
    )
    spells.loc[spells["spell_end"] == pd.Timestamp.max, "spell_end"] = pd.NaT
    return spells.reset_index(drop=True)[SPELL_COLUMNS]


def churn_labels(examples: pd.DataFrame, spells: pd.DataFrame, *, horizon_days: int) -> pd.Series:
    """1 when the paying spell that covers an example's obs_date ends within (obs_date,
    obs_date + horizon], else 0. `examples` has account_id and obs_date columns; the result is
    aligned to its index. An example no spell covers (inconsistent input) is labelled 0."""
    ends = churn_dates(examples, spells)
    window_end = _ns(examples["obs_date"]).to_numpy() + np.timedelta64(horizon_days, "D")
    churned = ends.notna() & (ends <= window_end)
    return churned.astype(int).rename("churned")


def churn_dates(examples: pd.DataFrame, spells: pd.DataFrame) -> pd.Series:
    """The end of the spell covering each example's obs_date (NaT if it is still running)."""
    left = pd.DataFrame(
        {
            "row": np.arange(len(examples)),
            "account_id": examples["account_id"].to_numpy(),
            "obs": _ns(examples["obs_date"]).to_numpy(),
        }
    )
    merged = left.merge(spells, on="account_id", how="inner")
    merged = merged[
        (merged["spell_start"] <= merged["obs"])
        & (merged["spell_end"].isna() | (merged["spell_end"] > merged["obs"]))
    ]
    out = pd.Series(pd.NaT, index=range(len(examples)), dtype="datetime64[ns]")
    out.iloc[merged["row"].to_numpy()] = merged["spell_end"].to_numpy()
    out.index = examples.index
    return out.rename("churn_date")


def churn_count(examples: pd.DataFrame, labels: pd.Series, dates: pd.Series) -> int:
    """Distinct churns (account, churn date) that at least one positive example sees."""
    positive = pd.DataFrame({"account_id": examples["account_id"], "date": dates})[labels == 1]
    return int(len(positive.drop_duplicates()))


def _ns(values) -> pd.Series:
    """Dates as nanosecond timestamps: pandas infers coarser units from date objects, which
    cannot hold the open-ended sentinel used for running periods."""
    return pd.Series(pd.to_datetime(pd.Series(values)).astype("datetime64[ns]").to_numpy())


def days_to_renewal(periods: pd.DataFrame, *, as_of: dt.date) -> pd.Series:
    """Days from as_of to the next renewal of each account's live periods, from each period's
    start date and billing period (renewals fall every `billing_period_months` after the start).

    Stored renewal dates cannot be used for past dates: they are overwritten as contracts renew
    and, on a churned subscription, equal the churn date, which would reveal the outcome."""
    day = pd.Timestamp(as_of)
    starts = _ns(periods["start_date"])
    ends = _ns(periods["end_date"])
    live = ((starts <= day) & (ends.isna() | (ends > day))).to_numpy()
    months = pd.to_numeric(periods["billing_period_months"], errors="coerce").to_numpy()[live]
    cycle = np.maximum(np.nan_to_num(months, nan=1.0), 1.0) * DAYS_PER_MONTH
    elapsed = (day - starts[live]).dt.days.to_numpy()
    remaining = cycle - np.mod(elapsed, cycle)
    out = pd.Series(np.round(remaining), index=periods["account_id"].to_numpy()[live])
    return out.groupby(level=0).min().rename("days_to_renewal")


def with_baseline_ratios(frame: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Add events in the last 30 days relative to the account's own usual 30 days (from the 90
    before them), as a log ratio: 0 is as usual, −0.7 about half. NaN for accounts without a
    baseline period (younger than 120 days), so newcomers are not read as declining."""
    out = frame.copy()
    base = baseline.reindex(out.index)
    young = out["tenure_days"] < RECENT_DAYS + BASELINE_DAYS if "tenure_days" in out else False
    scale = RECENT_DAYS / BASELINE_DAYS
    usual_30 = base["events"].fillna(0.0) * scale
    ratio = np.log((out["events_30"].astype(float) + 1.0) / (usual_30 + 1.0))
    out["usage_vs_baseline"] = ratio.where(~young)
    return out
