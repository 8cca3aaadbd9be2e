import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from health.models import JobStatus
from health.services.recompute import health_recompute, health_recompute_incremental, job_wait


class Command(BaseCommand):
    help = (
        "Start a recompute job of health and churn risk through Celery (the workers when REDIS_URL "
        "is set, in-process otherwise), like POST /api/v1/health/recompute, and wait for it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="YYYY-MM-DD (default: today, UTC)")
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Only accounts that changed since the last successful run (today only)",
        )
        parser.add_argument("--no-wait", action="store_true", help="Print the job id and return")
        parser.add_argument("--timeout", type=float, default=6 * 3600, help="Seconds to wait")

    def handle(self, *args, **options):
        as_of = None
        if options["as_of"]:
            try:
                as_of = dt.date.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError("--as-of must be a date as YYYY-MM-DD") from exc
            if as_of > timezone.now().date():
                raise CommandError("--as-of must not be in the future")
        if options["incremental"]:
            if as_of is not None:
                raise CommandError("--incremental always recomputes today; drop --as-of")
            job = health_recompute_incremental()
        else:
            job = health_recompute(as_of=as_of)
        self.stdout.write(
            f"job {job.pk}: {job.params['accounts']} accounts, {job.chunks_total} chunks"
        )
        if options["no_wait"]:
            return
        try:
            job = job_wait(job_id=job.pk, timeout=options["timeout"])
        except TimeoutError as exc:
            raise CommandError(str(exc)) from exc
        if job.status == JobStatus.FAILED:
            raise CommandError(f"job {job.pk} failed: {job.error}")
        self.stdout.write(f"job {job.pk} {job.status}: {job.result}")
