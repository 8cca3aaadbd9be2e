"""A recompute through a real Celery worker on Redis and PostgreSQL (the CI's second pass)."""

import datetime as dt
import importlib
import time

import pytest

from accounts.models import DailyUsage
from health.models import HealthScore, Job, JobChunk, JobStatus
from health.tasks import recompute_chunk
from tests.factories import AccountFactory, SubscriptionFactory

AS_OF = dt.date(2025, 6, 30)
TIMEOUT_SECONDS = 90

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def default_scorecard():
    """A transactional test earlier in the session flushes the database, taking the default
    scorecard its data migration created with it; put it back (a no-op when it is there)."""
    from django.apps import apps

    migration = importlib.import_module("health.migrations.0002_default_scorecard")
    migration.create_default_scorecard(apps, None)


@pytest.fixture
def book(settings, default_scorecard):
    settings.HEALTH_CHUNK_SIZE = 3
    accounts = [AccountFactory() for _ in range(7)]
    for n, account in enumerate(accounts):
        SubscriptionFactory(account=account, start_date=dt.date(2025, 1, 1), quantity=5)
        DailyUsage.objects.create(
            account=account, day=AS_OF - dt.timedelta(days=n), event_name="login", event_count=3
        )
    return accounts


def poll(client, job_id: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {TIMEOUT_SECONDS}s: {job}")


def test_a_worker_recomputes_every_chunk_of_a_posted_recompute(book, token_client):
    client = token_client("accounts:write")

    response = client.post("/api/v1/health/recompute", {"as_of": AS_OF.isoformat()}, format="json")

    assert response.status_code == 202
    job = poll(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": 3, "total": 3}
    assert job["result"]["accounts"] == 7, job
    scored = set(HealthScore.objects.filter(as_of=AS_OF).values_list("account_id", flat=True))
    assert scored == {a.pk for a in book}


def test_a_chunk_delivered_twice_to_the_worker_changes_nothing(book, token_client):
    client = token_client("accounts:write")
    job_id = client.post(
        "/api/v1/health/recompute", {"as_of": AS_OF.isoformat()}, format="json"
    ).json()["id"]
    assert poll(client, job_id)["status"] == "succeeded"
    before = list(
        HealthScore.objects.filter(as_of=AS_OF)
        .order_by("account_id")
        .values("account_id", "score", "parts")
    )
    ids = sorted(a.pk for a in book)[:3]

    result = recompute_chunk.delay(job_id, AS_OF.isoformat(), ids, 0)

    assert result.get(timeout=TIMEOUT_SECONDS) == 3
    after = list(
        HealthScore.objects.filter(as_of=AS_OF)
        .order_by("account_id")
        .values("account_id", "score", "parts")
    )
    assert after == before
    assert JobChunk.objects.filter(job_id=job_id).count() == 3
    assert Job.objects.get(pk=job_id).status == JobStatus.SUCCEEDED


def test_a_chunk_that_fails_on_the_worker_fails_its_job(token_client):
    job = Job.objects.create(kind="recompute", chunks_total=1)

    result = recompute_chunk.delay(str(job.pk), "not-a-date", [1], 0)

    with pytest.raises(ValueError):
        result.get(timeout=TIMEOUT_SECONDS)
    body = poll(token_client("read"), str(job.pk))
    assert body["status"] == "failed"
    assert body["error"].startswith("ValueError: Invalid isoformat string")
