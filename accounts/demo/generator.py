"""Public entry points of the demo generator: pure numpy/pandas, no database.

    business = generate_business(n_accounts=500, days=365, seed=42, today=date(2025, 6, 1))
    business.accounts, business.contacts, business.subscriptions, business.surveys, business.notes
    for frame in iter_event_frames(business, accounts_per_chunk=1000):
        ...  # a DataFrame of usage events for one block of accounts

The same arguments always give identical frames. Event frames are produced one block of accounts
at a time, so 100,000 accounts and tens of millions of events never sit in memory at once; with
the default rate there are about 1.8 events per live account-day: 500 accounts x 365 days give
about 300,000 events, 100,000 accounts x 180 days about 30 million (at roughly 1.5 million
events per second of one CPU core). `event_rate` scales the feature events (about 60% of all).
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import business as story
from . import records, usage, voice

DEMO_OWNERS = ["csm", "csm.alex", "csm.priya", "csm.sam"]


@dataclass(frozen=True)
class DemoBusiness:
    """A generated book. `plan` is the hidden story (for tests and benchmarks, never loaded);
    the other frames hold API items, one row each."""

    today: dt.date
    days: int
    seed: int
    plan: pd.DataFrame
    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    contacts: pd.DataFrame
    surveys: pd.DataFrame
    notes: pd.DataFrame


def generate_business(
    n_accounts: int = 500,
    days: int = 365,
    seed: int = 42,
    today: dt.date | None = None,
    owners: list[str] | None = None,
) -> DemoBusiness:
    """The demo book with `days` of history ending `today` (UTC; default: the current date)."""
    if n_accounts < 1 or days < 1:
        raise ValueError("n_accounts and days must be at least 1")
    today = today or dt.datetime.now(dt.UTC).date()
    owners = owners or DEMO_OWNERS
    streams = np.random.SeedSequence(seed).spawn(4)
    plan = story.business_plan(n_accounts, days, np.random.default_rng(streams[0]), today, owners)
    contacts = records.contacts_frame(plan, today, np.random.default_rng(streams[1]))
    return DemoBusiness(
        today=today,
        days=days,
        seed=seed,
        plan=plan,
        accounts=records.accounts_frame(plan, today),
        subscriptions=records.subscriptions_frame(plan, today, np.random.default_rng(streams[2])),
        contacts=contacts,
        surveys=voice.surveys_frame(plan, contacts, days, today, np.random.default_rng(streams[3])),
        notes=voice.notes_frame(plan, days, today),
    )


def iter_event_frames(
    business: DemoBusiness, accounts_per_chunk: int = 1000, event_rate: float = 1.0
) -> Iterator[pd.DataFrame]:
    """Usage events of the `days` full UTC days before `today`, one DataFrame per block of
    accounts: event_id (str), account_id and user_id (categorical str), event (categorical),
    timestamp (datetime64 UTC), value (float, NaN when absent) and properties (categorical JSON
    text). `event_rate` scales feature events per active user-day (logins are unaffected).
    Deterministic for a given business and `accounts_per_chunk`."""
    return usage.iter_event_frames(
        business.plan,
        days=business.days,
        today=business.today,
        seed=business.seed,
        accounts_per_chunk=accounts_per_chunk,
        event_rate=event_rate,
    )
