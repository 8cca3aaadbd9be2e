"""The visible records of the demo book, derived from its hidden story (`business.plan`): the
rows an integration would send through the API for accounts, subscriptions and contacts."""

import datetime as dt

import numpy as np
import pandas as pd

from . import dates as cal
from .business import PLANS, SEAT_PRICE
from .dates import NEVER
from .names import FIRST_NAMES, LAST_NAMES, TITLES

CONTACTS_RANGE = np.array([[6, 11], [4, 7], [2, 5]])  # per segment, [low, high)
ROLE_BY_POSITION = ["champion", "decision_maker", "billing"]


def accounts_frame(plan: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """One API item per account; `attributes` feed scorecards and the churn model."""
    current_plan = np.where(plan["change"].to_numpy() <= 0, plan["plan1"], plan["plan0"])
    attributes = [
        {"employees": int(e), "region": r, "plan_tier": str(t), "acquisition_channel": c}
        for e, r, t, c in zip(
            plan["employees"].tolist(),
            plan["region"].tolist(),
            PLANS[current_plan].tolist(),
            plan["acquisition_channel"].tolist(),
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "external_id": plan["external_id"],
            "name": plan["name"],
            "domain": plan["domain"],
            "industry": plan["industry"],
            "segment": plan["segment"],
            "lifecycle_stage": _lifecycle_stage(plan, today),
            "owner": plan["owner"],
            "attributes": attributes,
        }
    )


def _lifecycle_stage(plan: pd.DataFrame, today: dt.date) -> np.ndarray:
    start, churn = plan["start"].to_numpy(), plan["churn"].to_numpy()
    change, kind = plan["change"].to_numpy(), plan["change_kind"].to_numpy()
    period = plan["period"].to_numpy()
    renewal = cal.next_renewal(start, period, np.zeros(len(plan), dtype="int64"), today)
    expanding = (kind == 1) & (change > -120) & (change <= 60)
    return np.select(
        [churn <= 0, start > -90, (period == 12) & (renewal <= 90), expanding],
        ["churned", "onboarding", "renewal", "expansion"],
        default="adoption",
    )


def subscriptions_frame(plan: pd.DataFrame, today: dt.date, rng: np.random.Generator):
    """One priced period per row. A booked plan change ends the first row and starts the second
    on the same day; a churn ends the last row with its reason. Annual renewals keep the row and
    move its renewal date, co-termed with the original contract."""
    start, churn, change = (plan[c].to_numpy() for c in ("start", "churn", "change"))
    changed = change <= 0
    churned = churn <= 0
    first_end = np.where(changed, change, np.where(churned, churn, NEVER))
    first = _period_rows(
        plan,
        "s1",
        start,
        first_end,
        plan["plan0"],
        plan["seats0"],
        np.where(changed, "", plan["churn_reason"]),
        today,
    )
    second = _period_rows(
        plan,
        "s2",
        change,
        np.where(churned, churn, NEVER),
        plan["plan1"],
        plan["seats1"],
        plan["churn_reason"],
        today,
    )[changed]
    rows = pd.concat([first, second]).sort_values(["account_id", "start_date"], kind="stable")
    rows = rows.reset_index(drop=True)
    _open_row_status(rows, plan, rng)
    return rows


def _period_rows(plan, suffix, start, end, plan_code, seats, reason, today) -> pd.DataFrame:
    plan_code, seats = np.asarray(plan_code), np.asarray(seats)
    period = plan["period"].to_numpy()
    ended = end < NEVER
    renew_after = np.where(ended, end - 1, 0)
    renewal = cal.next_renewal(plan["start"].to_numpy(), period, renew_after, today)
    mrr = np.round(seats * SEAT_PRICE[plan_code] * (1.0 - plan["discount"].to_numpy()), 2)
    return pd.DataFrame(
        {
            "external_id": plan["external_id"] + f"-{suffix}",
            "account_id": plan["external_id"],
            "plan": PLANS[plan_code],
            "quantity": seats,
            "mrr": mrr,
            "currency": "USD",
            "billing_period_months": period,
            "start_date": cal.as_dates(start, today),
            "renewal_date": cal.as_dates(renewal, today),
            "end_date": cal.as_dates(end, today),
            "status": np.where(ended, "canceled", "active"),
            "churn_reason": np.where(ended, reason, ""),
        }
    )


def _open_row_status(rows: pd.DataFrame, plan: pd.DataFrame, rng: np.random.Generator) -> None:
    """Self-serve sign-ups of the last two weeks are still trialing (no revenue yet); some
    accounts weeks from churning have a failed payment."""
    story = plan.set_index("external_id").loc[rows["account_id"]]
    open_row = rows["status"].to_numpy() == "active"
    trial = (
        open_row
        & (story["start"].to_numpy() > -14)
        & (story["acquisition_channel"].to_numpy() == "self_serve")
    )
    churn = story["churn"].to_numpy()
    past_due = open_row & ~trial & (churn > 0) & (churn <= 45) & (rng.random(len(rows)) < 0.4)
    rows.loc[trial, "status"] = "trialing"
    rows.loc[trial, "mrr"] = 0.0
    rows.loc[past_due, "status"] = "past_due"


def contacts_frame(plan: pd.DataFrame, today: dt.date, rng: np.random.Generator):
    """A champion, a decision maker, usually someone in billing, and a few users per account.
    The contact at position k is the product user `<account>-u<k>`, so their external_id is the
    user_id on that user's events."""
    seg = plan["segment_code"].to_numpy()
    count = rng.integers(CONTACTS_RANGE[seg, 0], CONTACTS_RANGE[seg, 1])
    account = np.repeat(np.arange(len(plan)), count)
    position = np.arange(len(account)) - np.repeat(np.cumsum(count) - count, count)
    roles = np.array(ROLE_BY_POSITION + ["user"])[np.minimum(position, 3)]
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), len(account))]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), len(account))]
    external = plan["external_id"].to_numpy()[account]
    domain = plan["domain"].to_numpy()[account]
    frame = pd.DataFrame(
        {
            "account_id": external,
            "external_id": [
                f"{e}-u{k:04d}" for e, k in zip(external, position.tolist(), strict=True)
            ],
            "name": np.char.add(np.char.add(first, " "), last),
            "local": np.char.lower(
                np.char.replace(np.char.add(np.char.add(first, "."), last), " ", "")
            ),
            "domain": domain,
            "role": roles,
            "title": [
                TITLES[r][i % len(TITLES[r])]
                for r, i in zip(
                    roles.tolist(), rng.integers(0, 60, len(account)).tolist(), strict=True
                )
            ],
            "position": position,
        }
    )
    # Two people with the same name at one company get numbered addresses, as mail systems do.
    dup = frame.groupby(["account_id", "local"]).cumcount().to_numpy()
    frame["email"] = frame["local"] + np.where(dup > 0, dup.astype(str), "") + "@" + frame["domain"]
    return frame.drop(columns=["local", "domain"])
