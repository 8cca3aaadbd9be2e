import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from accounts.services.revenue import account_revenue_refresh_due


class Command(BaseCommand):
    help = (
        "Refresh the status, MRR and churn facts of accounts whose subscriptions started or ended "
        "in the last week (Celery beat runs this daily; the embedded default at every start)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--today", help="Date to refresh as of, YYYY-MM-DD (default today)")

    def handle(self, *args, today: str | None = None, **options) -> None:
        try:
            day = dt.date.fromisoformat(today) if today else None
        except ValueError as exc:
            raise CommandError(f"--today must be a date, YYYY-MM-DD: {exc}") from exc
        count = account_revenue_refresh_due(today=day)
        self.stdout.write(f"Refreshed the revenue facts of {count} accounts.")
