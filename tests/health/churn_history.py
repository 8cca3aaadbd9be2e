"""A small made-up business history for churn tests: accounts, subscriptions and usage rollups
where churners' usage fades in the weeks before they leave."""

import datetime as dt
from decimal import Decimal

import numpy as np

from accounts.models import Account, DailyUsage, DailyUser, Subscription


def make_history(
    *, accounts: int = 90, start: dt.date, today: dt.date, churn_share: float = 0.45, seed: int = 0
) -> list[Account]:
    rng = np.random.default_rng(seed)
    days = (today - start).days
    made = Account.objects.bulk_create(
        Account(
            external_id=f"hist-{seed}-{i}",
            name=f"History {i}",
            segment=str(rng.choice(["smb", "mid-market"])),
            industry=str(rng.choice(["software", "retail", "finance"])),
            attributes={
                "region": str(rng.choice(["emea", "na"])),
                "employees": int(rng.integers(5, 500)),
            },
        )
        for i in range(accounts)
    )
    subscriptions, usage, users = [], [], []
    for i, account in enumerate(made):
        signed = start + dt.timedelta(days=int(rng.integers(0, 60)))
        churns = rng.random() < churn_share
        end = signed + dt.timedelta(days=int(rng.integers(120, days))) if churns else None
        if end is not None and end > today:
            end = None
        subscriptions.append(
            Subscription(
                account=account,
                external_id=f"hist-sub-{seed}-{i}",
                plan="pro",
                quantity=5,
                mrr=Decimal("250.00"),
                billing_period_months=1,
                start_date=signed,
                renewal_date=signed + dt.timedelta(days=30),
                end_date=end,
            )
        )
        last = min(end or today, today)
        for offset in range(0, (last - signed).days, 3):
            day = signed + dt.timedelta(days=offset)
            fading = end is not None and (end - day).days < 60
            if fading and rng.random() < 0.8:
                continue
            usage.append(
                DailyUsage(
                    account=account, day=day, event_name="login", event_count=5, active_users=2
                )
            )
            users.extend(
                DailyUser(account=account, day=day, event_name="login", user_id=f"u{k}")
                for k in range(2)
            )
    Subscription.objects.bulk_create(subscriptions)
    DailyUsage.objects.bulk_create(usage, batch_size=2000)
    DailyUser.objects.bulk_create(users, batch_size=2000)
    return made
