"""`python manage.py seed_demo`: load a believable demo SaaS business (see accounts.demo)."""

import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.demo.generator import generate_business
from accounts.demo.loader import DemoDataRejected, demo_business_delete, demo_business_load
from accounts.demo.users import DEMO_PASSWORD, demo_users_ensure
from accounts.models import Account


class Command(BaseCommand):
    help = (
        "Create the demo users and, unless accounts already exist, a demo SaaS business with a "
        "year of subscriptions, usage, surveys and churn. Deterministic for a given --seed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=500, help="number of accounts")
        parser.add_argument("--days", type=int, default=365, help="days of usage history")
        parser.add_argument("--seed", type=int, default=42, help="random seed")
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            default=None,
            help="YYYY-MM-DD the history ends on (default: today, UTC)",
        )
        parser.add_argument(
            "--reset", action="store_true", help="delete the demo business first and reload it"
        )

    def handle(self, *args, accounts: int, days: int, seed: int, today, reset: bool, **options):
        if not settings.CSP_DEMO_ALLOWED:
            # The demo users share a published password: never on a production install.
            raise CommandError("seed_demo is off in production (DEBUG=0); set CSP_DEMO_ALLOWED=1.")
        if accounts < 1 or days < 1:
            raise CommandError("--accounts and --days must be at least 1.")
        if today and today > dt.datetime.now(dt.UTC).date():
            raise CommandError("--today must not be in the future: events cannot happen later.")
        started = time.monotonic()
        self.verbosity = options.get("verbosity", 1)
        users = demo_users_ensure()
        self.stdout.write(f"Demo users ready: {', '.join(users)} (password '{DEMO_PASSWORD}').")
        if reset:
            deleted = demo_business_delete()
            self.stdout.write(f"Deleted {deleted} demo accounts and their data.")
        if Account.objects.exists() and not reset:
            self.stdout.write("Accounts already exist; nothing to do (use --reset to reload).")
            return
        if Account.objects.exists():
            raise CommandError("Accounts other than the demo's exist; not mixing the demo in.")
        business = generate_business(n_accounts=accounts, days=days, seed=seed, today=today)
        self.stdout.write(
            f"Generated {accounts} accounts over {days} days ending {business.today} "
            f"(seed {seed}) in {time.monotonic() - started:.1f}s; loading..."
        )
        try:
            summary = demo_business_load(business=business, progress=self._progress)
        except DemoDataRejected as error:
            raise CommandError(
                f"The demo data was refused, a generator bug: {error}. "
                "Fix it, then rerun with --reset."
            ) from error
        counts = ", ".join(f"{count} {name}" for name, count in summary.counts.items())
        self.stdout.write(
            self.style.SUCCESS(f"Created {counts} in {time.monotonic() - started:.1f}s.")
        )

    def _progress(self, message: str) -> None:
        if self.verbosity > 1:
            self.stdout.write(f"  {message}")
