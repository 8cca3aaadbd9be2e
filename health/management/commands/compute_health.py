import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from health.models import JobStatus
from health.services.recompute import health_recompute, health_recompute_incremental, job_wait


class Command(BaseCommand):
    help = (
        "Recompute health scores and churn risk of every paying account as of a date, as a job: "
        "in-process on the embedded default, on the Celery workers when REDIS_URL is set "
        "(the same path as POST /api/v1/health/recompute)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="YYYY-MM-DD (default: today, UTC)")
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="only the accounts that changed since the last successful run (today only)",
        )
        parser.add_argument("--no-wait", action="store_true", help="print the job id and return")
        parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait")

    def handle(self, *args, **options):
        as_of = _parse_as_of(options["as_of"])
        if options["incremental"]:
            if as_of is not None:
                raise CommandError("--incremental always recomputes today; drop --as-of")
            job = health_recompute_incremental()
        else:
            job = health_recompute(as_of=as_of)
        self.stdout.write(
            f"job {job.pk}: {job.params['accounts']} paying accounts as of {job.params['as_of']}, "
            f"{job.chunks_total} chunks"
        )
        if options["no_wait"]:
            return
        try:
            job = job_wait(job_id=job.pk, timeout=options["timeout"])
        except TimeoutError as exc:
            raise CommandError(str(exc)) from exc
        if job.status == JobStatus.FAILED:
            raise CommandError(f"job {job.pk} failed: {job.error}")
        result = job.result
        self.stdout.write(
            f"{result['health_scores']} health scores, {result['churn_predictions']} churn "
            f"predictions in {result.get('elapsed_seconds', 0)}s"
        )


def _parse_as_of(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        as_of = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError("--as-of must be a date as YYYY-MM-DD") from exc
    if as_of > timezone.now().date():
        raise CommandError("--as-of must not be in the future")
    return as_of
