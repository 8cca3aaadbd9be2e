"""Date arithmetic on numpy day arrays. The generator counts days relative to `today` (0 is
today, -1 yesterday) so the demo always ends at the current date."""

import datetime as dt

import numpy as np

NEVER = 10**6  # a day offset that never comes: "no churn", "no plan change"


def add_months(days: np.ndarray, months: np.ndarray, today: dt.date) -> np.ndarray:
    """Day offsets `months` calendar months after `days`, the day of month clipped to the
    month's length (Jan 31 + 1 month is Feb 28/29), as contracts renew."""
    dates = np.datetime64(today, "D") + np.asarray(days, dtype="int64")
    month_start = dates.astype("datetime64[M]")
    day_of_month = (dates - month_start.astype("datetime64[D]")).astype("int64")
    target = month_start + np.asarray(months, dtype="int64")
    month_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        "int64"
    )
    out = target.astype("datetime64[D]") + np.minimum(day_of_month, month_len - 1)
    return (out - np.datetime64(today, "D")).astype("int64")


def months_between(start: np.ndarray, end: np.ndarray, today: dt.date) -> np.ndarray:
    """Calendar-month distance from each start day to each end day (ignores the day of month)."""
    base = np.datetime64(today, "D")
    start_m = (base + np.asarray(start, dtype="int64")).astype("datetime64[M]").astype("int64")
    end_m = (base + np.asarray(end, dtype="int64")).astype("datetime64[M]").astype("int64")
    return end_m - start_m


def next_renewal(
    start: np.ndarray, period: np.ndarray, after: np.ndarray, today: dt.date
) -> np.ndarray:
    """The first contract anniversary (start + k * period months, k >= 1) strictly after `after`."""
    period = np.asarray(period, dtype="int64")
    after = np.broadcast_to(np.asarray(after, dtype="int64"), np.shape(start))
    k = np.maximum(months_between(start, after, today) // period, 1)
    date = add_months(start, k * period, today)
    for _ in range(3):  # the month estimate is at most one period early
        late = date <= after
        k = np.where(late, k + 1, k)
        date = np.where(late, add_months(start, k * period, today), date)
    return date


def as_dates(days: np.ndarray, today: dt.date) -> np.ndarray:
    """Day offsets as datetime64[D]; NEVER becomes NaT."""
    days = np.asarray(days, dtype="int64")
    out = np.datetime64(today, "D") + np.where(days >= NEVER, 0, days)
    return np.where(days >= NEVER, np.datetime64("NaT"), out)
