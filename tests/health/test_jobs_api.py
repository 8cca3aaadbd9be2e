import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from health.models import HealthScore, Job, JobStatus
from tests.factories import AccountFactory, SubscriptionFactory, UserFactory

RECOMPUTE = "/api/v1/health/recompute"


@pytest.fixture
def paying(db):
    accounts = [AccountFactory() for _ in range(3)]
    for account in accounts:
        SubscriptionFactory(account=account, start_date=dt.date(2025, 1, 1))
    return accounts


@pytest.fixture
def post_recompute(django_capture_on_commit_callbacks):
    def post(client: APIClient, body=None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(RECOMPUTE, body if body is not None else {}, format="json")

    return post


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_a_recompute_answers_202_with_a_job_that_can_be_polled(
    paying, token_client, post_recompute
):
    response = post_recompute(token_client("accounts:write"), {"as_of": "2025-06-30"})

    assert response.status_code == 202
    job_id = response.json()["id"]
    job = token_client("read").get(f"/api/v1/jobs/{job_id}").json()
    assert job["id"] == job_id
    assert job["kind"] == "recompute"
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": 1, "total": 1}
    assert job["result"]["accounts"] == 3
    assert job["error"] == ""
    assert job["created_at"] and job["started_at"] and job["finished_at"]
    assert HealthScore.objects.filter(as_of=dt.date(2025, 6, 30)).count() == 3


def test_a_recompute_without_a_date_is_for_today(paying, token_client, post_recompute):
    response = post_recompute(token_client("accounts:write"))

    job = Job.objects.get(pk=response.json()["id"])
    assert job.params["as_of"] == timezone.now().date().isoformat()


def test_the_token_that_started_a_recompute_can_poll_it(paying, token_client, post_recompute):
    client = token_client("accounts:write")
    job_id = post_recompute(client).json()["id"]

    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 200


def test_a_queued_job_shows_no_progress_yet(
    paying, token_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job_id = token_client("accounts:write").post(RECOMPUTE, {}, format="json").json()["id"]

    job = token_client("read").get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "queued"
    assert job["progress"] == {"done": 0, "total": 1}
    assert job["started_at"] is None and job["result"] is None


@pytest.mark.parametrize("as_of", ["2025-13-01", "30/06/2025", "yesterday", 20250630])
def test_a_malformed_date_is_rejected_with_the_field(db, token_client, as_of):
    response = token_client("accounts:write").post(RECOMPUTE, {"as_of": as_of}, format="json")

    assert response.status_code == 400
    assert "as_of" in response.json()["errors"]
    assert not Job.objects.exists()


def test_a_future_date_is_rejected(db, token_client):
    tomorrow = timezone.now().date() + dt.timedelta(days=1)
    response = token_client("accounts:write").post(
        RECOMPUTE, {"as_of": tomorrow.isoformat()}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["as_of"] == ["Must not be in the future."]
    assert not Job.objects.exists()


def test_a_body_that_is_not_an_object_is_rejected(db, token_client):
    response = token_client("accounts:write").post(RECOMPUTE, ["2025-06-30"], format="json")

    assert response.status_code == 400
    assert not Job.objects.exists()


def test_a_body_nested_too_deeply_for_python_is_rejected_not_a_crash(db, token_client):
    response = token_client("accounts:write").post(
        RECOMPUTE,
        data='{"as_of": ' + "[" * 100_000 + "]" * 100_000 + "}",
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not Job.objects.exists()


def test_a_recompute_needs_credentials(db):
    response = APIClient().post(RECOMPUTE, {}, format="json")

    assert response.status_code == 401
    assert not Job.objects.exists()


@pytest.mark.parametrize("scope", ["read", "events:write"])
def test_a_token_without_accounts_write_cannot_start_a_recompute(db, token_client, scope):
    response = token_client(scope).post(RECOMPUTE, {}, format="json")

    assert response.status_code == 403
    assert "accounts:write" in response.json()["detail"]
    assert not Job.objects.exists()


def test_a_csm_login_cannot_start_a_recompute(db):
    response = logged_in(UserFactory()).post(RECOMPUTE, {}, format="json")

    assert response.status_code == 403
    assert not Job.objects.exists()


def test_a_manager_login_starts_a_recompute_and_is_recorded_as_requester(paying, post_recompute):
    manager = UserFactory()
    manager.groups.add(Group.objects.get_or_create(name="Manager")[0])

    response = post_recompute(logged_in(manager))

    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).requested_by == manager


def test_a_staff_login_starts_a_recompute(paying, post_recompute):
    response = post_recompute(logged_in(UserFactory(is_staff=True)))

    assert response.status_code == 202


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_job_is_404(db, token_client, job_id):
    response = token_client("read").get(f"/api/v1/jobs/{job_id}")

    assert response.status_code == 404
    assert response.json()["detail"] == "No such job."


def test_jobs_need_credentials(db):
    job = Job.objects.create(kind="recompute", status=JobStatus.SUCCEEDED)

    assert APIClient().get(f"/api/v1/jobs/{job.pk}").status_code == 401


def test_a_failed_job_shows_its_error(db, token_client):
    job = Job.objects.create(
        kind="recompute", status=JobStatus.FAILED, error="OperationalError: gone"
    )

    body = token_client("read").get(f"/api/v1/jobs/{job.pk}").json()

    assert body["status"] == "failed"
    assert body["error"] == "OperationalError: gone"


def test_the_schema_documents_recompute_and_jobs(db):
    staff = UserFactory(is_staff=True)
    schema = logged_in(staff).get("/api/schema/", {"format": "json"}).json()

    recompute = schema["paths"]["/api/v1/health/recompute"]["post"]
    assert "202" in recompute["responses"]
    job = schema["paths"]["/api/v1/jobs/{job_id}"]["get"]
    properties = schema["components"]["schemas"]["Job"]["properties"]
    assert {"id", "status", "progress", "result", "error"} <= set(properties)
    assert "200" in job["responses"]
