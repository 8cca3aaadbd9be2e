import datetime as dt
import importlib

import pytest
from django.db import OperationalError
from django.utils import timezone

from accounts.models import Account, DailyUsage, DailyUser, Subscription, SurveyResponse
from health.models import HealthScore, Job, JobChunk, JobKind, JobStatus
from health.services import recompute
from health.services.recompute import health_recompute, health_recompute_incremental
from health.tasks import MAX_RETRIES, recompute_chunk
from tests.factories import AccountFactory, SubscriptionFactory, SurveyResponseFactory

AS_OF = dt.date(2025, 6, 30)


def paying_account(*, days_active: int = 5, as_of: dt.date = AS_OF, **fields) -> Account:
    account = AccountFactory(**fields)
    SubscriptionFactory(account=account, start_date=as_of - dt.timedelta(days=200), quantity=5)
    add_usage(account, as_of, days_active)
    return account


def add_usage(account: Account, as_of: dt.date, days: int, users: tuple = ("u1", "u2")) -> None:
    for offset in range(days):
        day = as_of - dt.timedelta(days=offset * 3)
        DailyUsage.objects.update_or_create(
            account=account, day=day, event_name="login",
            defaults={"event_count": 4, "active_users": len(users)},
        )  # fmt: skip
        DailyUser.objects.bulk_create(
            [DailyUser(account=account, day=day, event_name="login", user_id=u) for u in users],
            ignore_conflicts=True,
        )


def snapshot(as_of: dt.date) -> dict:
    return {
        row["account_id"]: row
        for row in HealthScore.objects.filter(as_of=as_of).values(
            "account_id", "score", "grade", "parts", "scorecard_version_id"
        )
    }


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Recomputes enqueue their chunks only once the transaction commits, as in production."""

    def run(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            job = function(**kwargs)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def errors_stay_in_the_worker():
    """As on a worker: a task's errors do not propagate to the caller, so Celery's retries and
    on_failure run (in-process, retries do not wait for their backoff)."""
    conf = recompute_chunk.app.conf
    previous = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = previous


@pytest.fixture
def default_scorecard():
    """A transactional test earlier in the session flushes the database, taking the default
    scorecard its data migration created with it; put it back (a no-op when it is there)."""
    from django.apps import apps

    migration = importlib.import_module("health.migrations.0002_default_scorecard")
    migration.create_default_scorecard(apps, None)


@pytest.fixture
def book(db, settings):
    """Five paying accounts in chunks of two, one prospect and one account that churned."""
    settings.HEALTH_CHUNK_SIZE = 2
    paying = [paying_account(days_active=n) for n in range(1, 6)]
    AccountFactory()  # a prospect: no subscription
    churned = AccountFactory()
    SubscriptionFactory(
        account=churned, start_date=dt.date(2024, 1, 1), end_date=dt.date(2025, 1, 1)
    )
    return paying


def test_a_recompute_scores_every_paying_account_in_chunks(book, run_on_commit):
    job = run_on_commit(health_recompute, as_of=AS_OF)

    assert job.status == JobStatus.SUCCEEDED
    assert job.chunks_total == 3
    assert JobChunk.objects.filter(job=job).count() == 3
    assert set(snapshot(AS_OF)) == {a.pk for a in book}
    assert job.result["accounts"] == 5
    assert job.result["health_scores"] == 5
    assert job.params["as_of"] == "2025-06-30"
    assert job.started_at <= job.finished_at


def test_a_recompute_of_some_accounts_scores_only_those_that_are_paying(book, run_on_commit):
    prospect = Account.objects.filter(subscriptions__isnull=True).get()
    job = run_on_commit(health_recompute, as_of=AS_OF, account_ids=[book[0].pk, prospect.pk])

    assert job.params["accounts"] == 1
    assert set(snapshot(AS_OF)) == {book[0].pk}


def test_running_a_chunk_twice_writes_no_duplicates_and_counts_once(book, run_on_commit):
    job = run_on_commit(health_recompute, as_of=AS_OF)
    before = snapshot(AS_OF)
    chunk = JobChunk.objects.get(job=job, index=1)
    first_ids = sorted(snapshot(AS_OF))[2:4]

    recompute_chunk.apply(args=[str(job.pk), AS_OF.isoformat(), first_ids, 1]).get()

    job.refresh_from_db()
    assert HealthScore.objects.filter(as_of=AS_OF).count() == 5
    assert snapshot(AS_OF) == before
    assert JobChunk.objects.filter(job=job).count() == 3
    assert JobChunk.objects.get(job=job, index=1).pk == chunk.pk
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["accounts"] == 5


def test_a_job_succeeds_only_when_its_last_chunk_is_done(book, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = health_recompute(as_of=AS_OF)
    assert job.status == JobStatus.QUEUED
    ids = sorted(a.pk for a in book)
    chunks = [ids[0:2], ids[2:4], ids[4:]]

    for index in (2, 0):
        recompute_chunk.apply(args=[str(job.pk), AS_OF.isoformat(), chunks[index], index]).get()
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING
        assert job.started_at is not None and job.finished_at is None
    recompute_chunk.apply(args=[str(job.pk), AS_OF.isoformat(), chunks[1], 1]).get()

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.finished_at is not None


def test_a_chunk_that_keeps_losing_the_database_fails_the_job_after_retries(
    book, run_on_commit, monkeypatch, errors_stay_in_the_worker
):
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["account_ids"])
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(recompute, "health_scores_compute", flaky)
    job = run_on_commit(health_recompute, as_of=AS_OF)

    assert job.status == JobStatus.FAILED
    assert job.error == "OperationalError: server closed the connection unexpectedly"
    assert job.finished_at is not None
    first_chunk = sorted(a.pk for a in book)[:2]
    assert calls.count(first_chunk) == MAX_RETRIES + 1  # retried, then given up
    assert not JobChunk.objects.filter(job=job).exists()


def test_a_chunk_that_fails_in_process_fails_the_job_and_the_others_still_run(
    book, run_on_commit, monkeypatch
):
    real = recompute.health_scores_compute
    first_chunk = sorted(a.pk for a in book)[:2]

    def fails_on_first_chunk(**kwargs):
        if kwargs["account_ids"] == first_chunk:
            raise OperationalError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(recompute, "health_scores_compute", fails_on_first_chunk)
    job = run_on_commit(health_recompute, as_of=AS_OF)

    assert job.status == JobStatus.FAILED
    assert job.error == "OperationalError: database is locked"
    assert set(snapshot(AS_OF)) == {a.pk for a in book} - set(first_chunk)
    assert job.result["accounts"] == 3


def test_a_chunk_that_fails_once_is_retried_and_the_job_succeeds(
    book, run_on_commit, monkeypatch, errors_stay_in_the_worker
):
    real = recompute.health_scores_compute
    failures = []

    def fails_once(**kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("deadlock detected")
        return real(**kwargs)

    monkeypatch.setattr(recompute, "health_scores_compute", fails_once)
    job = run_on_commit(health_recompute, as_of=AS_OF)

    assert job.status == JobStatus.SUCCEEDED
    assert HealthScore.objects.filter(as_of=AS_OF).count() == 5


def test_a_bug_in_a_chunk_fails_the_job_without_retrying(
    book, run_on_commit, monkeypatch, errors_stay_in_the_worker
):
    calls = []

    def broken(**kwargs):
        calls.append(kwargs["account_ids"])
        raise ValueError("scorecard has no measures")

    monkeypatch.setattr(recompute, "health_scores_compute", broken)
    job = run_on_commit(health_recompute, as_of=AS_OF)

    assert job.status == JobStatus.FAILED
    assert job.error == "ValueError: scorecard has no measures"
    assert len(calls) == 3  # each chunk once: a bug is not worth retrying
    assert len({tuple(ids) for ids in calls}) == 3


def test_a_failed_job_stays_failed_when_its_other_chunks_finish(book, run_on_commit):
    job = run_on_commit(health_recompute, as_of=AS_OF)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="worker lost")
    JobChunk.objects.filter(job=job, index=0).delete()

    ids = sorted(a.pk for a in book)[0:2]
    recompute_chunk.apply(args=[str(job.pk), AS_OF.isoformat(), ids, 0]).get()

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "worker lost"


def test_a_chunk_of_a_deleted_job_or_deleted_accounts_does_no_harm(book, run_on_commit):
    job = run_on_commit(health_recompute, as_of=AS_OF)
    gone = book[0].pk
    Account.objects.filter(pk=gone).delete()

    recompute_chunk.apply(args=[str(job.pk), AS_OF.isoformat(), [gone, book[1].pk], 0]).get()
    job_id = str(job.pk)
    job.delete()
    assert recompute_chunk.apply(args=[job_id, AS_OF.isoformat(), [book[1].pk], 0]).get() == 0


def test_a_recompute_without_paying_accounts_succeeds_at_once(db, run_on_commit):
    AccountFactory()
    job = run_on_commit(health_recompute, as_of=AS_OF)

    assert job.status == JobStatus.SUCCEEDED
    assert job.chunks_total == 0
    assert job.result["accounts"] == 0


def test_the_job_is_sent_only_once_the_transaction_commits(
    book, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = health_recompute(as_of=AS_OF)

    assert len(callbacks) == 1
    assert not HealthScore.objects.exists()
    callbacks[0]()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


@pytest.fixture
def recomputed_an_hour_ago(db, settings, run_on_commit):
    """Three paying accounts recomputed for today by a full run; their data is an hour old."""
    settings.HEALTH_CHUNK_SIZE = 2
    today = timezone.now().date()
    accounts = [paying_account(days_active=n, as_of=today) for n in (2, 4, 6)]
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    Account.objects.update(updated_at=hour_ago, last_event_received_at=hour_ago)
    Subscription.objects.update(updated_at=hour_ago)
    SurveyResponse.objects.update(created_at=hour_ago)
    full = run_on_commit(health_recompute)
    assert full.status == JobStatus.SUCCEEDED
    return accounts


def test_the_incremental_recompute_matches_the_full_one_for_changed_accounts(
    recomputed_an_hour_ago, run_on_commit
):
    active, surveyed, quiet = recomputed_an_hour_ago
    today = timezone.now().date()
    add_usage(active, today, 10, users=("u1", "u2", "u3", "u4"))
    Account.objects.filter(pk=active.pk).update(last_event_received_at=timezone.now())
    SurveyResponseFactory(account=surveyed, score=0, responded_at=timezone.now())
    before = snapshot(today)
    quiet_before = HealthScore.objects.get(account=quiet, as_of=today)

    incremental = run_on_commit(health_recompute_incremental)
    after_incremental = snapshot(today)
    quiet_after_incremental = HealthScore.objects.get(account=quiet, as_of=today)
    full = run_on_commit(health_recompute)

    assert incremental.kind == JobKind.RECOMPUTE_INCREMENTAL
    assert incremental.status == JobStatus.SUCCEEDED
    assert incremental.params["accounts"] == 2
    assert quiet_after_incremental.computed_at == quiet_before.computed_at
    assert full.status == JobStatus.SUCCEEDED
    after_full = snapshot(today)
    for account in (active, surveyed):
        # The changes moved these scores, so the comparison is not between untouched rows.
        assert after_incremental[account.pk]["parts"] != before[account.pk]["parts"]
        assert after_incremental[account.pk] == after_full[account.pk]


def test_the_incremental_recompute_leaves_unchanged_accounts_alone(
    recomputed_an_hour_ago, run_on_commit
):
    today = timezone.now().date()
    before = HealthScore.objects.filter(as_of=today).values_list("account_id", "computed_at")

    job = run_on_commit(health_recompute_incremental)

    assert job.status == JobStatus.SUCCEEDED
    assert job.params["accounts"] == 0
    assert set(
        HealthScore.objects.filter(as_of=today).values_list("account_id", "computed_at")
    ) == set(before)


def test_the_incremental_recompute_looks_back_from_the_last_successful_run(
    recomputed_an_hour_ago, run_on_commit
):
    active = recomputed_an_hour_ago[0]
    first = run_on_commit(health_recompute_incremental)
    # Events received within the overlap before the previous run started still count.
    started = dt.datetime.fromisoformat(first.params["until"])
    Account.objects.filter(pk=active.pk).update(
        last_event_received_at=started - dt.timedelta(seconds=90)
    )
    Job.objects.create(
        kind=JobKind.RECOMPUTE_INCREMENTAL, status=JobStatus.FAILED,
        params={"until": timezone.now().isoformat()},
    )  # fmt: skip

    second = run_on_commit(health_recompute_incremental)

    assert second.params["since"] == (started - recompute.INCREMENTAL_OVERLAP).isoformat()
    assert second.params["accounts"] == 1


def test_the_first_incremental_recompute_covers_every_paying_account(book, run_on_commit):
    for account in book:
        add_usage(account, timezone.now().date(), 1)
    job = run_on_commit(health_recompute_incremental)

    assert job.params["since"] is None
    assert job.params["accounts"] == 5
    assert job.status == JobStatus.SUCCEEDED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_chunks_finishing_at_once_on_several_workers_count_once_and_succeed_once(
    settings, default_scorecard
):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    settings.HEALTH_CHUNK_SIZE = 1
    accounts = [paying_account(days_active=2) for _ in range(6)]
    job = Job.objects.create(kind=JobKind.RECOMPUTE, chunks_total=len(accounts))
    # Every chunk twice (a re-delivery racing the first run), all at once.
    work = [(index, account.pk) for index, account in enumerate(accounts)] * 2

    def run(item):
        try:
            recompute.recompute_chunk_run(
                job_id=job.pk, chunk_index=item[0], as_of=AS_OF, account_ids=[item[1]]
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, work))

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert JobChunk.objects.filter(job=job).count() == 6
    assert job.result["accounts"] == 6
    assert HealthScore.objects.filter(as_of=AS_OF).count() == 6


def test_a_small_job_is_cut_into_pieces_so_every_worker_takes_a_share(settings):
    settings.HEALTH_CHUNK_SIZE = 5000

    assert recompute._chunk_size(100_000) == 5000
    assert recompute._chunk_size(20_000) == 2500  # eight pieces
    assert recompute._chunk_size(1000) == 500  # an incremental run of 1% of 100,000: two
    assert recompute._chunk_size(40) == 500
    settings.HEALTH_CHUNK_SIZE = 2
    assert recompute._chunk_size(1000) == 2


def test_the_beat_schedule_recomputes_daily_incrementally_and_retrains_weekly(settings):
    from csp.celery import app, beat_schedule

    settings.HEALTH_FULL_RECOMPUTE_CRON = "30 4 * * *"
    settings.HEALTH_INCREMENTAL_MINUTES = 10
    schedule = beat_schedule()

    full = schedule["health-full-recompute"]
    assert full["task"] == "health.tasks.health_recompute_daily"
    assert full["schedule"].hour == {4} and full["schedule"].minute == {30}
    incremental = schedule["health-incremental-recompute"]
    assert incremental["schedule"] == dt.timedelta(minutes=10)
    assert schedule["churn-model-retrain"]["schedule"].day_of_week == {0}
    assert set(schedule) == set(app.conf.beat_schedule)
    app.loader.import_default_modules()  # what a worker or beat imports at start
    assert all(entry["task"] in app.tasks for entry in schedule.values())


def test_a_malformed_recompute_time_is_a_clear_configuration_error(settings):
    from csp.celery import beat_schedule

    settings.HEALTH_FULL_RECOMPUTE_CRON = "at two"
    with pytest.raises(ValueError, match="5 crontab fields"):
        beat_schedule()


def test_a_weekly_retraining_without_enough_history_is_recorded_not_hidden(db):
    job = recompute.churn_model_retrain(as_of=AS_OF)

    assert job.kind == JobKind.CHURN_TRAIN
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["model_status"] == "insufficient_history"
    assert "not enough churn history" in job.result["message"]
