"""The demo book's hidden story, one row per account: who they are, when they signed, whether
and when they change plan or churn, and how their product usage drifts before that.

Everything is drawn with numpy from one seeded generator. Churn risk depends a little on the
account's visible attributes (channel, size, billing) and a lot on an unobserved latent, so a
model can learn something from attributes but not everything. About 70% of churns are preceded
by a usage decay of 3 to 20 weeks, the rest come without warning, and some healthy accounts have
a scare that recovers: the warning signals are real but noisy."""

import datetime as dt

import numpy as np
import pandas as pd

from . import dates as cal
from . import names
from .dates import NEVER

SEGMENTS = np.array(["enterprise", "mid-market", "smb"])
SEGMENT_SHARE = [0.05, 0.25, 0.70]
# Per segment (enterprise, mid-market, smb).
SEATS_MEDIAN = np.array([60.0, 12.0, 3.0])
SEATS_RANGE = np.array([[25, 250], [5, 40], [1, 8]])
ANNUAL_SHARE = np.array([1.0, 0.8, 0.35])
CHURN_LOGIT = np.array([-3.2, -2.4, -1.8])  # about 4%, 8%, 14% a year before the latent
UPGRADE_RATE = np.array([0.30, 0.20, 0.10])  # per year
OWNED_SHARE = np.array([1.0, 1.0, 0.55])  # the rest of the small accounts are tech-touch
EMPLOYEES_MEDIAN = np.array([8000.0, 600.0, 45.0])

PLANS = np.array(["starter", "growth", "business", "enterprise"])
SEAT_PRICE = np.array([19.0, 39.0, 69.0, 99.0])  # USD per seat per month, monthly billing
# Which plan a new account of each segment starts on (rows: segment, columns: plan).
PLAN_MIX = np.array([[0, 0, 0.3, 0.7], [0, 0.6, 0.4, 0], [0.7, 0.3, 0, 0]])

CHANNELS = np.array(["inbound", "outbound", "partner", "paid_ads", "self_serve"])
CHANNEL_MIX = np.array(
    [[0.2, 0.55, 0.25, 0, 0], [0.35, 0.3, 0.2, 0.1, 0.05], [0.3, 0.05, 0.1, 0.25, 0.3]]
)
CHANNEL_RISK = np.array([0.0, -0.25, -0.45, 0.45, 0.25])
REGIONS = np.array(["north_america", "emea", "apac", "latam"])
REGION_MIX = [0.5, 0.3, 0.12, 0.08]
REGION_UTC_OFFSET = np.array([-5, 1, 8, -3])  # hours, for business-hours timestamps

DECAY_REASONS = np.array(
    [
        "Low adoption",
        "Switched to a competitor",
        "Missing features",
        "Poor onboarding experience",
        "Product did not meet expectations",
    ]
)
SILENT_REASONS = np.array(
    [
        "Budget cuts",
        "Company acquired",
        "Went out of business",
        "Too expensive",
        "Champion left the company",
    ]
)
FUTURE_HORIZON = 150  # churns up to this many days after today already show their decay


def business_plan(
    n_accounts: int, days: int, rng: np.random.Generator, today: dt.date, owners: list[str]
) -> pd.DataFrame:
    """The hidden per-account story (see the module docstring); one row per account."""
    n = n_accounts
    seg = rng.choice(3, size=n, p=SEGMENT_SHARE)
    plan = pd.DataFrame({"segment_code": seg, "segment": SEGMENTS[seg]})
    _identity(plan, rng, owners)
    _contract(plan, rng, days, today)
    _churn(plan, rng, days, today)
    _plan_change(plan, rng, days, today)
    _usage_story(plan, rng, days)
    return plan


def _identity(plan: pd.DataFrame, rng: np.random.Generator, owners: list[str]) -> None:
    n, seg = len(plan), plan["segment_code"].to_numpy()
    plan["external_id"] = [f"demo-{i + 1:06d}" for i in range(n)]
    plan["name"], plan["domain"] = names.company_names(n, rng)
    plan["industry"] = rng.choice(names.INDUSTRIES, size=n)
    region = rng.choice(len(REGIONS), size=n, p=REGION_MIX)
    plan["region"] = REGIONS[region]
    plan["utc_offset"] = REGION_UTC_OFFSET[region]
    employees = EMPLOYEES_MEDIAN[seg] * rng.lognormal(0.0, 0.7, size=n)
    plan["employees"] = np.maximum(np.round(employees), 2).astype("int64")
    plan["channel_code"] = _pick_rows(CHANNEL_MIX[seg], rng)
    plan["acquisition_channel"] = CHANNELS[plan["channel_code"]]
    owned = rng.random(n) < OWNED_SHARE[seg]
    # `csm` (the demo login) carries about a third of the book; the others share the rest.
    weights = np.array([0.34] + [0.66 / max(len(owners) - 1, 1)] * (len(owners) - 1))
    owner = np.array(owners)[rng.choice(len(owners), size=n, p=weights / weights.sum())]
    plan["owner"] = np.where(owned, owner, "")


def _contract(plan: pd.DataFrame, rng: np.random.Generator, days: int, today: dt.date) -> None:
    n, seg = len(plan), plan["segment_code"].to_numpy()
    annual = rng.random(n) < ANNUAL_SHARE[seg]
    plan["period"] = np.where(annual, 12, 1)
    # About a fifth are new logos signed inside the window; the rest have up to four years of
    # tenure when it opens.
    new_logo = rng.random(n) < 0.2
    signed_in_window = -rng.integers(2, max(days, 3), size=n)
    tenure = days + np.round(rng.gamma(1.6, 260.0, size=n)).astype("int64") + 1
    plan["start"] = np.where(new_logo, signed_in_window, -tenure)
    plan_code = _pick_rows(PLAN_MIX[seg], rng)
    lo, hi = SEATS_RANGE[seg, 0], SEATS_RANGE[seg, 1]
    seats = np.round(SEATS_MEDIAN[seg] * rng.lognormal(0.0, 0.45, size=n))
    plan["plan0"] = plan_code
    plan["seats0"] = np.clip(seats, lo, hi).astype("int64")
    # Negotiated discounts grow with deal size; annual prepay earns 15% more.
    plan["discount"] = np.round(
        np.where(seg == 0, rng.uniform(0.05, 0.25, n), 0.0) + np.where(annual, 0.15, 0.0), 2
    )


def _churn(plan: pd.DataFrame, rng: np.random.Generator, days: int, today: dt.date) -> None:
    """Churn happens at a renewal: annual contracts once a year, monthly ones at any month end."""
    n, seg = len(plan), plan["segment_code"].to_numpy()
    size = np.log(plan["employees"].to_numpy() / EMPLOYEES_MEDIAN[seg])
    latent = rng.normal(0.0, 0.9, size=n)
    logit = (
        CHURN_LOGIT[seg]
        + CHANNEL_RISK[plan["channel_code"].to_numpy()]
        - 0.2 * size
        + 0.35 * (plan["period"].to_numpy() == 1)
        + latent
    )
    yearly = 1.0 / (1.0 + np.exp(-logit))
    period = plan["period"].to_numpy()
    per_renewal = np.where(period == 12, yearly, 1.0 - (1.0 - yearly) ** (1 / 12))
    start = plan["start"].to_numpy()
    first = cal.next_renewal(start, period, np.full(n, -days), today)
    k_first = np.round(cal.months_between(start, first, today) / period).astype("int64")
    attempts = rng.geometric(np.clip(per_renewal, 1e-6, 1.0), size=n)
    churn = cal.add_months(start, (k_first + attempts - 1) * period, today)
    plan["risk"] = yearly
    plan["churn"] = np.where(churn <= FUTURE_HORIZON, churn, NEVER)
    silent = rng.random(n) < 0.3
    plan["silent_churn"] = silent & (plan["churn"].to_numpy() < NEVER)
    reason = np.where(silent, rng.choice(SILENT_REASONS, n), rng.choice(DECAY_REASONS, n))
    plan["churn_reason"] = np.where(plan["churn"].to_numpy() < NEVER, reason, "")


def _plan_change(plan: pd.DataFrame, rng: np.random.Generator, days: int, today: dt.date) -> None:
    """At most one upgrade or downgrade per account, at least 45 days from signing and from churn;
    changes up to 60 days ahead are not booked yet but already show in usage."""
    n, seg = len(plan), plan["segment_code"].to_numpy()
    start, churn = plan["start"].to_numpy(), plan["churn"].to_numpy()
    span = (days + 60) / 365
    risk = plan["risk"].to_numpy()
    up = rng.random(n) < UPGRADE_RATE[seg] * span * (1.3 - risk)
    down = ~up & (rng.random(n) < (0.03 + 0.25 * risk) * span)
    lo = np.maximum(start + 45, -days + 30)
    hi = np.minimum(60, churn - 45)
    day = lo + np.floor(rng.random(n) * np.maximum(hi - lo, 0)).astype("int64")
    ok = (up | down) & (hi > lo)
    plan["change"] = np.where(ok, day, NEVER)
    plan["change_kind"] = np.where(ok, np.where(up, 1, -1), 0)
    seats0, plan0 = plan["seats0"].to_numpy(), plan["plan0"].to_numpy()
    grown = np.ceil(seats0 * rng.uniform(1.2, 2.0, n)).astype("int64")
    shrunk = np.floor(seats0 * rng.uniform(0.45, 0.8, n)).astype("int64")
    seats1 = np.where(up, np.maximum(grown, seats0 + 1), np.maximum(shrunk, 1))
    tier_move = rng.random(n) < np.where(up, 0.3, 0.2)
    plan1 = np.clip(plan0 + np.where(tier_move, np.where(up, 1, -1), 0), 0, len(PLANS) - 1)
    unchanged = ~ok | ((seats1 == seats0) & (plan1 == plan0))
    plan["change"] = np.where(unchanged, NEVER, plan["change"])
    plan["change_kind"] = np.where(unchanged, 0, plan["change_kind"])
    plan["seats1"] = np.where(unchanged, seats0, seats1)
    plan["plan1"] = np.where(unchanged, plan0, plan1)


def _usage_story(plan: pd.DataFrame, rng: np.random.Generator, days: int) -> None:
    """How engagement drifts: decays before most churns, scares that recover, ramps to a full
    seat count before upgrades, and thin use before downgrades."""
    n = len(plan)
    churn, silent = plan["churn"].to_numpy(), plan["silent_churn"].to_numpy()
    churner = churn < NEVER
    decays = churner & ~silent & (rng.random(n) < 0.97)
    scare = ~churner & (rng.random(n) < 0.13)
    lead = rng.integers(21, 150, size=n)
    scare_start = rng.integers(-days, 0, size=n)
    scare_len = rng.integers(20, 80, size=n)
    plan["decay_kind"] = np.where(decays, 1, np.where(scare, 2, 0))
    plan["decay_start"] = np.where(decays, churn - lead, np.where(scare, scare_start, NEVER))
    plan["decay_bottom"] = np.where(decays, churn, np.where(scare, scare_start + scare_len, NEVER))
    plan["recover_end"] = np.where(scare, scare_start + scare_len + rng.integers(20, 90, n), NEVER)
    plan["decay_floor"] = np.where(decays, rng.uniform(0.05, 0.55, n), rng.uniform(0.25, 0.7, n))
    plan["decay_shape"] = rng.uniform(0.6, 2.0, n)
    # Share of paid seats that are engaged users; thin before a downgrade, and some healthy
    # accounts simply use few seats (so low use alone does not mean churn).
    eng = rng.beta(4.5, 2.5, size=n)
    downgrade = plan["change_kind"].to_numpy() == -1
    plan["eng_base"] = np.where(downgrade, rng.uniform(0.3, 0.55, n), eng)
    plan["ramp_days"] = rng.integers(30, 90, size=n)
    plan["ramp_target"] = rng.uniform(0.97, 1.0, size=n)
    plan["satisfaction"] = rng.normal(0.0, 1.0, size=n)
    # Which optional features each account adopted (bit f set = uses feature f).
    adopt = rng.random((n, 8)) < np.array([0.95, 0.9, 0.7, 0.6, 0.5, 0.45, 0.35, 0.3])
    plan["features"] = (adopt * (1 << np.arange(8))).sum(axis=1).astype("int64")


def _pick_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row, each row with its own probabilities."""
    cum = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities))[:, None] * cum[:, -1:]
    return (u > cum).sum(axis=1).astype("int64")
