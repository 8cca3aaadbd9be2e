"""Integrations send external ids such as `acme/eu`; every account route must reach them, whether
the client sends the slash as is or encoded as %2F (which arrives decoded in PATH_INFO)."""

import datetime as dt

import pytest
from django.http import HttpResponse
from django.urls import include, path, resolve, reverse

from accounts.api import bulk, reads
from accounts.api.urls import ACCOUNT_SUBRESOURCES
from accounts.models import TimelineEntry
from tests.factories import AccountFactory, ContactFactory, SubscriptionFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

BOTH_FORMS = pytest.mark.parametrize("account_path", ["acme/eu", "acme%2Feu", "acme%2feu"])


def _stub(request, external_id):
    return HttpResponse(external_id)


# csp/urls.py in small: our routes first, then routes of another app that follow an account, as
# health/api/scores.py's `health` and `sentiment` will once they take `<path:external_id>`.
urlpatterns = [
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/accounts/<path:external_id>/health", _stub, name="stub-health"),
    path("api/v1/accounts/<path:external_id>/sentiment", _stub, name="stub-sentiment"),
]


@pytest.fixture
def acme_eu():
    """`acme/eu` next to accounts called `acme` and `eu`, each with rows of its own."""
    account = AccountFactory(external_id="acme/eu")
    for other in (AccountFactory(external_id="acme"), AccountFactory(external_id="eu")):
        UsageEventFactory(account=other, event_id=f"{other.external_id}-event")
        ContactFactory(account=other, external_id=f"{other.external_id}-contact")
    return account


def results(response, key: str = "external_id") -> list:
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


@BOTH_FORMS
def test_an_account_with_a_slash_in_its_id_is_found(token_client, acme_eu, account_path):
    response = token_client("read").get(f"/api/v1/accounts/{account_path}")
    assert response.status_code == 200, response.content
    assert response.json()["external_id"] == "acme/eu"


@BOTH_FORMS
def test_the_lists_under_a_slashed_account_are_its_own(token_client, acme_eu, account_path):
    UsageEventFactory(account=acme_eu, event_id="eu-login")
    ContactFactory(account=acme_eu, external_id="eu-champion")
    SubscriptionFactory(account=acme_eu, external_id="eu-pro")
    TimelineEntry.objects.create(account=acme_eu, title="eu-note", body="x")
    reader, base = token_client("read"), f"/api/v1/accounts/{account_path}"
    assert results(reader.get(f"{base}/events"), "event_id") == ["eu-login"]
    assert results(reader.get(f"{base}/contacts")) == ["eu-champion"]
    assert results(reader.get(f"{base}/subscriptions")) == ["eu-pro"]
    assert results(reader.get(f"{base}/timeline"), "title") == ["eu-note"]


@BOTH_FORMS
def test_a_note_is_written_on_a_slashed_account(token_client, acme_eu, account_path):
    response = token_client("accounts:write").post(
        f"/api/v1/accounts/{account_path}/notes", {"body": "hello"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["account_id"] == "acme/eu"
    assert TimelineEntry.objects.get().account == acme_eu


def test_an_account_bulk_upserted_with_a_slash_is_then_readable(token_client):
    writer = token_client("accounts:write", "read")
    item = {"external_id": "globex/us-east", "name": "Globex US East"}
    response = writer.post("/api/v1/accounts/bulk", {"items": [item]}, format="json")
    assert response.status_code == 200 and response.json()["created"] == 1, response.content
    assert writer.get("/api/v1/accounts/globex/us-east").json()["name"] == "Globex US East"
    assert resolve("/api/v1/accounts/bulk").func.view_class is bulk.AccountsBulk


@pytest.mark.parametrize("name", sorted(ACCOUNT_SUBRESOURCES - {"health", "sentiment"}))
def test_a_trailing_sub_resource_name_is_the_sub_resource_of_the_id_before_it(name):
    for external_id in ("acme", "acme/eu", "a/b/c"):
        match = resolve(f"/api/v1/accounts/{external_id}/{name}")
        assert (match.url_name, match.kwargs) == (
            f"api-account-{name}",
            {"external_id": external_id},
        )


def test_routes_of_other_apps_after_an_account_are_left_to_them():
    assert resolve("/api/v1/accounts/acme/health").url_name == "api-account-health"
    assert resolve("/api/v1/accounts/acme/sentiment").url_name == "api-account-sentiment"
    for name in ("health", "sentiment"):
        match = resolve(f"/api/v1/accounts/acme/eu/{name}", urlconf=__name__)
        assert (match.url_name, match.kwargs) == (f"stub-{name}", {"external_id": "acme/eu"})


def test_an_id_whose_last_part_is_not_a_sub_resource_is_the_account_itself():
    for external_id in ("acme/eu", "events", "acme/events-archive", "a/b/c"):
        match = resolve(f"/api/v1/accounts/{external_id}")
        assert match.func.view_class is reads.AccountDetail
        assert match.kwargs == {"external_id": external_id}


def test_links_to_a_slashed_account_keep_the_slash():
    assert reverse("api-account", kwargs={"external_id": "acme/eu"}) == "/api/v1/accounts/acme/eu"
    assert (
        reverse("api-account-timeline", kwargs={"external_id": "acme/eu"})
        == "/api/v1/accounts/acme/eu/timeline"
    )


def test_event_windows_still_work_under_a_slashed_account(token_client, acme_eu):
    UsageEventFactory(
        account=acme_eu, event_id="old", occurred_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    UsageEventFactory(
        account=acme_eu, event_id="new", occurred_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    )
    response = token_client("read").get("/api/v1/accounts/acme%2Feu/events?since=2025-03-01")
    assert results(response, "event_id") == ["new"]
