import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from health.services.scores import health_compute_all


class Command(BaseCommand):
    help = "Compute health scores (and churn risk, when a model exists) of every paying account."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="YYYY-MM-DD (default: today, UTC)")
        parser.add_argument("--chunk-size", type=int, default=2000)

    def handle(self, *args, **options):
        as_of = timezone.now().date()
        if options["as_of"]:
            try:
                as_of = dt.date.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError("--as-of must be a date as YYYY-MM-DD") from exc
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        result = health_compute_all(as_of=as_of, chunk_size=options["chunk_size"])
        self.stdout.write(
            f"as of {result['as_of']}: {result['accounts']} paying accounts, "
            f"{result['health_scores']} health scores, "
            f"{result['churn_predictions']} churn predictions in {result['seconds']}s"
        )
